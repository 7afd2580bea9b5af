# taskd: tasks with subtasks, linked to calls (org.callcenter.Tasks1).
#
# Everything except main.c goes into the noinst library libtaskd-core.la, so
# that the daemon and the tests link the same code (the unit tests only pull
# in the pure modules: tasktree, store, conf; taskd-commit drives the
# manager without bus.c).
taskd_core_sources = \
	daemons/taskd/tasktree.c daemons/taskd/tasktree.h \
	daemons/taskd/store.c daemons/taskd/store.h \
	daemons/taskd/conf.c daemons/taskd/conf.h \
	daemons/taskd/manager.c daemons/taskd/manager.h \
	daemons/taskd/bus.c daemons/taskd/bus.h

noinst_LTLIBRARIES += daemons/taskd/libtaskd-core.la
daemons_taskd_libtaskd_core_la_SOURCES = $(taskd_core_sources)
daemons_taskd_libtaskd_core_la_LIBADD = libshared/libshared.la

sbin_PROGRAMS += daemons/taskd/callcenter-taskd
daemons_taskd_callcenter_taskd_SOURCES = daemons/taskd/main.c
daemons_taskd_callcenter_taskd_LDADD = daemons/taskd/libtaskd-core.la $(SHARED_LIBS)

# Unit tests of the pure modules (TAP).
taskd_unit_tests = \
	tests/unit/test-tasktree \
	tests/unit/test-taskd-store
check_PROGRAMS += $(taskd_unit_tests)
TESTS += $(taskd_unit_tests)

tests_unit_test_tasktree_SOURCES = tests/unit/test-tasktree.c tests/tap.h
tests_unit_test_tasktree_LDADD = daemons/taskd/libtaskd-core.la $(SHARED_LIBS)

tests_unit_test_taskd_store_SOURCES = tests/unit/test-taskd-store.c tests/tap.h
tests_unit_test_taskd_store_LDADD = daemons/taskd/libtaskd-core.la $(SHARED_LIBS)

# Integration tests over D-Bus with a throwaway PostgreSQL (need the daemon
# built; they SKIP when dbus-daemon, busctl or PostgreSQL is missing).
taskd_integration_tests = \
	tests/integration/test-tasks.sh \
	tests/integration/test-tasks-followup.sh \
	tests/integration/test-taskd-commit.sh
TESTS += $(taskd_integration_tests)
EXTRA_DIST += $(taskd_integration_tests)

# The Manager's commit hooks without D-Bus, against a throwaway PostgreSQL
# (run by test-taskd-commit.sh).
check_PROGRAMS += tests/integration/taskd-commit
tests_integration_taskd_commit_SOURCES = tests/integration/taskd-commit.c tests/tap.h
tests_integration_taskd_commit_LDADD = daemons/taskd/libtaskd-core.la $(SHARED_LIBS)
tests_integration_taskd_commit_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests

include bench/tasks.mk
