# libshared, ZeroMQ part: sd-event glue, event publisher and subscriber.
libshared_zmq_sources = \
	libshared/zmq-io.c libshared/zmq-io.h \
	libshared/pub.c libshared/pub.h \
	libshared/sub.c libshared/sub.h

# Unit test of the publisher and subscriber (inproc sockets, one loop).
check_PROGRAMS += tests/unit/test-pub-sub
tests_unit_test_pub_sub_SOURCES = tests/unit/test-pub-sub.c
tests_unit_test_pub_sub_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_unit_test_pub_sub_LDADD = $(SHARED_LIBS)
TESTS += tests/unit/test-pub-sub
