# bench/tasks: callcenter-taskd under load over D-Bus (included from
# daemons/taskd/local.mk; bench/local.mk belongs to the events benchmarks).
#   make bench/tasks-bench && bench/tasks.sh            # 100000 tasks, depth 10
#   bench/tasks.sh --tasks 20000 --inflight 16          # other sizes
noinst_PROGRAMS += bench/tasks-bench
bench_tasks_bench_SOURCES = bench/tasks-bench.c
bench_tasks_bench_LDADD = $(SYSTEMD_LIBS)
dist_noinst_SCRIPTS += bench/tasks.sh
