# libshared core: time, hash tables, JSON, event envelope, configuration, daemon glue.
libshared_core_sources = \
	libshared/time-util.c libshared/time-util.h \
	libshared/utf8.c libshared/utf8.h \
	libshared/escape.c libshared/escape.h \
	libshared/hashtable.c libshared/hashtable.h \
	libshared/json-util.c libshared/json-util.h \
	libshared/envelope.c libshared/envelope.h \
	libshared/conf.c libshared/conf.h \
	libshared/daemon.c libshared/daemon.h

# The commented example configuration, installed where config_default_path()
# looks for it.
callcenterconfdir = $(sysconfdir)/callcenter
callcenterconf_DATA = conf/callcenter.conf
EXTRA_DIST += conf/callcenter.conf
