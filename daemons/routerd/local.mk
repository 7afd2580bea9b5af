# routerd: the inbound call router.
#
# Everything except main.c goes into the noinst library librouterd-core.la,
# so that the daemon, the unit tests and the fuzzers link the same code.
# Add new modules to routerd_core_sources with +=:
#   routerd_core_sources += daemons/routerd/bus.c daemons/routerd/bus.h
routerd_core_sources = \
	daemons/routerd/acd.c daemons/routerd/acd.h \
	daemons/routerd/wire.c daemons/routerd/wire.h

noinst_LTLIBRARIES += daemons/routerd/librouterd-core.la
daemons_routerd_librouterd_core_la_SOURCES = $(routerd_core_sources)
daemons_routerd_librouterd_core_la_LIBADD = libshared/libshared.la

# Unit tests of the pure modules (TAP).
routerd_unit_tests = \
	tests/unit/test-acd \
	tests/unit/test-wire
check_PROGRAMS += $(routerd_unit_tests)
TESTS += $(routerd_unit_tests)

tests_unit_test_acd_SOURCES = tests/unit/test-acd.c tests/tap.h
tests_unit_test_acd_LDADD = daemons/routerd/librouterd-core.la $(SHARED_LIBS)

tests_unit_test_wire_SOURCES = tests/unit/test-wire.c tests/tap.h
tests_unit_test_wire_LDADD = daemons/routerd/librouterd-core.la $(SHARED_LIBS)

# libFuzzer target for the request-line parser and framer. It compiles the
# modules itself, so that they get coverage instrumentation; needs clang:
#   ../configure CC=clang --enable-fuzzers && make fuzz/fuzz-wire
#   ./fuzz/fuzz-wire -max_len=70000 -runs=100000
if ENABLE_FUZZERS
noinst_PROGRAMS += fuzz/fuzz-wire
fuzz_fuzz_wire_SOURCES = fuzz/fuzz-wire.c \
	daemons/routerd/acd.c daemons/routerd/acd.h \
	daemons/routerd/wire.c daemons/routerd/wire.h
fuzz_fuzz_wire_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address,undefined
fuzz_fuzz_wire_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer,address,undefined
fuzz_fuzz_wire_LDADD = $(SHARED_LIBS)
endif

# The daemon around acd (manager, bus, TCP server, store, configuration).
routerd_core_sources += \
	daemons/routerd/conf.c daemons/routerd/conf.h \
	daemons/routerd/idmap.c daemons/routerd/idmap.h \
	daemons/routerd/record.c daemons/routerd/record.h \
	daemons/routerd/store.c daemons/routerd/store.h \
	daemons/routerd/server.c daemons/routerd/server.h \
	daemons/routerd/bus.c daemons/routerd/bus.h \
	daemons/routerd/manager.c daemons/routerd/manager.h

check_PROGRAMS += tests/unit/test-router-conf tests/unit/test-record
TESTS += tests/unit/test-router-conf tests/unit/test-record
tests_unit_test_record_SOURCES = tests/unit/test-record.c tests/tap.h
tests_unit_test_record_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_unit_test_record_LDADD = daemons/routerd/librouterd-core.la $(SHARED_LIBS)
tests_unit_test_router_conf_SOURCES = tests/unit/test-router-conf.c tests/tap.h
tests_unit_test_router_conf_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_unit_test_router_conf_LDADD = daemons/routerd/librouterd-core.la $(SHARED_LIBS)

sbin_PROGRAMS += daemons/routerd/callcenter-routerd
daemons_routerd_callcenter_routerd_SOURCES = daemons/routerd/main.c
daemons_routerd_callcenter_routerd_LDADD = daemons/routerd/librouterd-core.la $(SHARED_LIBS)

# A bus client that subscribes to Router1's signals and prints them.
check_PROGRAMS += tests/integration/router-subscriber
tests_integration_router_subscriber_SOURCES = tests/integration/router-subscriber.c
tests_integration_router_subscriber_LDADD = $(SYSTEMD_LIBS)

# Integration tests of the daemon (TAP scripts; they skip without their tools).
routerd_integration_tests = \
	tests/integration/test-router-subscribe.sh \
	tests/integration/test-router-ack.sh \
	tests/integration/test-router.sh \
	tests/integration/test-router-restart.sh \
	tests/integration/test-router-backlog.sh \
	tests/integration/test-router-reload.sh \
	tests/integration/test-router-bad-ids.sh \
	tests/integration/test-router-queue-full.sh \
	tests/integration/test-router-fdlimit.sh \
	tests/integration/test-router-queues.sh
TESTS += $(routerd_integration_tests)
EXTRA_DIST += $(routerd_integration_tests) tests/integration/router-wire.py tests/integration/idle-conns.py \
	dbus/org.callcenter.Router1.xml
