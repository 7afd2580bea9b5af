# Integration tests: TAP shell scripts sourcing tests/integration/lib.sh,
# each with its own throwaway PostgreSQL, private bus and daemons.
EXTRA_DIST += tests/integration/lib.sh

# zpub: a raw ZeroMQ publisher the tests use to feed subscribers.
check_PROGRAMS += tests/integration/zpub
tests_integration_zpub_SOURCES = tests/integration/zpub.c
tests_integration_zpub_LDADD = $(ZMQ_LIBS)

integration_tests = \
	tests/integration/test-ctl.sh
TESTS += $(integration_tests)
EXTRA_DIST += $(integration_tests)
