# libshared, ZeroMQ part: sd-event glue, event publisher and subscriber.
libshared_zmq_sources = \
	libshared/zmq-io.c libshared/zmq-io.h \
	libshared/pub.c libshared/pub.h \
	libshared/sub.c libshared/sub.h
