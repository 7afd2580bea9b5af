# libshared: what every daemon needs once. Each part's sources are listed
# in its own variable so that the parts can grow independently.
noinst_LTLIBRARIES += libshared/libshared.la
libshared_libshared_la_SOURCES = \
	libshared/cleanup.h \
	libshared/log.c libshared/log.h \
	$(libshared_core_sources) \
	$(libshared_db_sources) \
	$(libshared_zmq_sources) \
	$(libshared_bus_sources)
nodist_libshared_libshared_la_SOURCES = $(libshared_generated_sources)
libshared_libshared_la_LIBADD = $(SYSTEMD_LIBS) $(ZMQ_LIBS) $(PQ_LIBS) $(JSONC_LIBS) $(INIH_LIBS) -lm

include libshared/core.mk
include libshared/db.mk
include libshared/zmq.mk
include libshared/bus.mk
