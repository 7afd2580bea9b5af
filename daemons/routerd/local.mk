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
