# bench/router: callcenter-routerd under load (TCP wire and D-Bus), next to a
# bare JSON-lines echo server that shows the floor. Not a test: run
#   make bench/router-load bench/echo-server && bench/router.sh
# from the build directory (ROUTER_BENCH_SECONDS=3 sets each run's length).
# bench/seed_router_twisted.py is the seeds' router in their own design (a
# copy of shared/tools/seed_router_twisted.py), the Twisted baseline column.
noinst_PROGRAMS += bench/router-load bench/echo-server
bench_router_load_SOURCES = bench/router-load.c
bench_router_load_LDADD = $(SYSTEMD_LIBS) $(ZMQ_LIBS) -lm
bench_echo_server_SOURCES = bench/echo-server.c
bench_echo_server_LDADD = $(JSONC_LIBS)
dist_noinst_SCRIPTS += bench/router.sh bench/seed_router_twisted.py
