# systemd units, sysusers.d and tmpfiles.d. *.service.in get @sbindir@
# substituted at build time so that a --prefix build points at its binaries.
systemdunit_in = \
	systemd/callcenter-eventd.service.in \
	systemd/callcenter-routerd.service.in \
	systemd/callcenter-taskd.service.in
systemdunit_plain = \
	systemd/callcenter-eventd.socket \
	systemd/callcenter-routerd.socket \
	systemd/callcenter.target

systemdsystemunit_DATA = $(systemdunit_in:.service.in=.service) $(systemdunit_plain)
CLEANFILES += $(systemdunit_in:.service.in=.service)
EXTRA_DIST += $(systemdunit_in) $(systemdunit_plain) \
	systemd/callcenter.sysusers systemd/callcenter.tmpfiles

systemd/%.service: systemd/%.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' -e 's|@bindir[@]|$(bindir)|g' $< > $@.tmp && mv $@.tmp $@

sysusersdir = $(prefix)/lib/sysusers.d
tmpfilesdir = $(prefix)/lib/tmpfiles.d
install-data-local: install-systemd-extras
uninstall-local: uninstall-systemd-extras
install-systemd-extras:
	$(MKDIR_P) $(DESTDIR)$(sysusersdir) $(DESTDIR)$(tmpfilesdir)
	$(INSTALL_DATA) $(srcdir)/systemd/callcenter.sysusers $(DESTDIR)$(sysusersdir)/callcenter.conf
	$(INSTALL_DATA) $(srcdir)/systemd/callcenter.tmpfiles $(DESTDIR)$(tmpfilesdir)/callcenter.conf
uninstall-systemd-extras:
	rm -f $(DESTDIR)$(sysusersdir)/callcenter.conf $(DESTDIR)$(tmpfilesdir)/callcenter.conf
.PHONY: install-systemd-extras uninstall-systemd-extras
