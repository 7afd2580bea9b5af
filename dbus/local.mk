# D-Bus data: bus policies (system.d), system-bus activation files,
# introspection XML, and session-bus activation files for development.
# Another daemon adds its files with += to the lists below.
dbuspolicydir = $(datadir)/dbus-1/system.d
dbuspolicy_DATA = \
	dbus/org.callcenter.Router1.conf \
	dbus/org.callcenter.Tasks1.conf

# System bus: Exec=/bin/false + SystemdService=, so systemd starts the unit.
dbussystemservicedir = $(datadir)/dbus-1/system-services
dbussystemservice_DATA = \
	dbus/org.callcenter.Router1.service \
	dbus/org.callcenter.Tasks1.service

dbusinterfacedir = $(datadir)/dbus-1/interfaces
dbusinterface_DATA = \
	dbus/org.callcenter.Router1.xml \
	dbus/org.callcenter.Tasks1.xml

# Session bus (./dev.sh, integration tests): dbus/session/NAME.service in
# the build tree, pointing at the binaries of the build tree. A private bus
# activates them with <servicedir>$(abs_top_builddir)/dbus/session</servicedir>
# in its configuration (tests/integration/test-tasks.sh does). Not installed.
dbus_session_in = \
	dbus/org.callcenter.Router1.session.service.in \
	dbus/org.callcenter.Tasks1.session.service.in
dbus_session_services = \
	dbus/session/org.callcenter.Router1.service \
	dbus/session/org.callcenter.Tasks1.service
noinst_DATA = $(dbus_session_services)
CLEANFILES += $(dbus_session_services)

dbus_session_edit = $(MKDIR_P) dbus/session && \
	sed -e 's|@abs_top_builddir[@]|$(abs_top_builddir)|g' -e 's|@sbindir[@]|$(sbindir)|g'
# One rule per file: '%' pattern rules are a GNU make extension.
dbus/session/org.callcenter.Router1.service: dbus/org.callcenter.Router1.session.service.in Makefile
	$(AM_V_GEN)$(dbus_session_edit) $(srcdir)/dbus/org.callcenter.Router1.session.service.in > $@.tmp && mv $@.tmp $@
dbus/session/org.callcenter.Tasks1.service: dbus/org.callcenter.Tasks1.session.service.in Makefile
	$(AM_V_GEN)$(dbus_session_edit) $(srcdir)/dbus/org.callcenter.Tasks1.session.service.in > $@.tmp && mv $@.tmp $@

EXTRA_DIST += \
	dbus/names.h \
	$(dbuspolicy_DATA) \
	$(dbussystemservice_DATA) \
	$(dbusinterface_DATA) \
	$(dbus_session_in)
