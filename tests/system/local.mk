# System tests: the units and D-Bus files as shipped (test-units.sh, part of
# `make check`), and a real systemd booted in systemd-nspawn with the suite
# installed (test-nspawn.sh: root, systemd-nspawn, debootstrap and a Debian
# mirror; run by ./dev.sh test, skipped otherwise). test-devsh.sh: dev.sh's
# lock, configure stamps and clean, on a scratch copy with a stand-in configure.
TESTS += tests/system/test-units.sh tests/system/test-devsh.sh
EXTRA_DIST += \
	tests/system/test-units.sh \
	tests/system/test-devsh.sh \
	tests/system/dbus-check.py \
	tests/system/test-nspawn.sh \
	tests/system/nspawn-client.py \
	tests/system/container-check.py

# Opt-in (needs root and minutes): make check-system
check-system:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS="tests/system/test-nspawn.sh"
.PHONY: check-system

# test-nspawn.sh keeps its prefix=/usr build here between runs.
distclean-local: distclean-nspawn
distclean-nspawn:
	rm -rf tests/system/nspawn-build
.PHONY: distclean-nspawn
