# unit tests: one TAP program per module, linked against libshared.
unit_tests = \
	tests/unit/test-time-util \
	tests/unit/test-escape \
	tests/unit/test-hashtable \
	tests/unit/test-json-util \
	tests/unit/test-envelope \
	tests/unit/test-conf \
	tests/unit/test-log \
	tests/unit/test-daemon

check_PROGRAMS += $(unit_tests)
TESTS += $(unit_tests)
EXTRA_DIST += tests/tap.h

tests_unit_test_time_util_SOURCES = tests/unit/test-time-util.c
tests_unit_test_time_util_LDADD = $(SHARED_LIBS)
tests_unit_test_time_util_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests

tests_unit_test_escape_SOURCES = tests/unit/test-escape.c
tests_unit_test_escape_LDADD = $(SHARED_LIBS)
tests_unit_test_escape_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests

tests_unit_test_hashtable_SOURCES = tests/unit/test-hashtable.c
tests_unit_test_hashtable_LDADD = $(SHARED_LIBS)
tests_unit_test_hashtable_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests

tests_unit_test_json_util_SOURCES = tests/unit/test-json-util.c
tests_unit_test_json_util_LDADD = $(SHARED_LIBS)
tests_unit_test_json_util_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests

tests_unit_test_envelope_SOURCES = tests/unit/test-envelope.c
tests_unit_test_envelope_LDADD = $(SHARED_LIBS)
tests_unit_test_envelope_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests

tests_unit_test_conf_SOURCES = tests/unit/test-conf.c
tests_unit_test_conf_LDADD = $(SHARED_LIBS)
tests_unit_test_conf_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests

tests_unit_test_log_SOURCES = tests/unit/test-log.c
tests_unit_test_log_LDADD = $(SHARED_LIBS)
tests_unit_test_log_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests

tests_unit_test_daemon_SOURCES = tests/unit/test-daemon.c
tests_unit_test_daemon_LDADD = $(SHARED_LIBS)
tests_unit_test_daemon_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
