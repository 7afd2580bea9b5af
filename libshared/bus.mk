# libshared bus: the sd-bus glue every D-Bus daemon shares (named errors,
# name acquisition, async replies).
libshared_bus_sources = \
	libshared/bus-util.c libshared/bus-util.h
