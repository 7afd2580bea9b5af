# callcenter-eventd: the ZeroMQ hub and its archive. Everything but main.c
# goes into a convenience library that the tests and benchmarks link too.
noinst_LTLIBRARIES += daemons/eventd/libeventd-core.la
daemons_eventd_libeventd_core_la_SOURCES = \
	daemons/eventd/manager.c daemons/eventd/manager.h \
	daemons/eventd/archive.c daemons/eventd/archive.h \
	daemons/eventd/scan.c daemons/eventd/scan.h \
	daemons/eventd/spill.c daemons/eventd/spill.h \
	daemons/eventd/subs.c daemons/eventd/subs.h

daemons_eventd_libeventd_core_la_LIBADD = libshared/libshared.la

sbin_PROGRAMS += daemons/eventd/callcenter-eventd
daemons_eventd_callcenter_eventd_SOURCES = daemons/eventd/main.c
daemons_eventd_callcenter_eventd_LDADD = daemons/eventd/libeventd-core.la $(SHARED_LIBS)

# Unit test of the envelope checker.
check_PROGRAMS += tests/unit/test-eventd-scan
tests_unit_test_eventd_scan_SOURCES = tests/unit/test-eventd-scan.c
tests_unit_test_eventd_scan_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_unit_test_eventd_scan_LDADD = daemons/eventd/libeventd-core.la $(SHARED_LIBS)
TESTS += tests/unit/test-eventd-scan

check_PROGRAMS += tests/unit/test-eventd-spill
tests_unit_test_eventd_spill_SOURCES = tests/unit/test-eventd-spill.c
tests_unit_test_eventd_spill_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_unit_test_eventd_spill_LDADD = daemons/eventd/libeventd-core.la $(SHARED_LIBS)
TESTS += tests/unit/test-eventd-spill

check_PROGRAMS += tests/unit/test-eventd-subs
tests_unit_test_eventd_subs_SOURCES = tests/unit/test-eventd-subs.c
tests_unit_test_eventd_subs_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_unit_test_eventd_subs_LDADD = daemons/eventd/libeventd-core.la $(SHARED_LIBS)
TESTS += tests/unit/test-eventd-subs

# Integration: helper programs and the scripts that drive them (they live in
# tests/integration/ but belong to eventd, so they are listed here).
check_PROGRAMS += tests/integration/event-pub tests/integration/event-sub tests/integration/event-raw
tests_integration_event_pub_SOURCES = tests/integration/event-pub.c
tests_integration_event_pub_LDADD = $(SHARED_LIBS)
tests_integration_event_sub_SOURCES = tests/integration/event-sub.c
tests_integration_event_sub_LDADD = daemons/eventd/libeventd-core.la $(SHARED_LIBS)
tests_integration_event_raw_SOURCES = tests/integration/event-raw.c
tests_integration_event_raw_LDADD = $(ZMQ_LIBS)
TESTS += tests/integration/test-events.sh tests/integration/test-events-burst.sh \
	tests/integration/test-events-hostile.sh
EXTRA_DIST += tests/integration/test-events.sh tests/integration/test-events-burst.sh \
	tests/integration/test-events-hostile.sh tests/integration/zmtp-spam.py
