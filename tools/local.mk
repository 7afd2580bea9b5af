# callcenterctl: the command-line client and interactive shell.
# Everything but main() is in a noinst library, so that unit tests link the
# same code (tests/unit/test-ctl-split.c).
noinst_LTLIBRARIES += tools/libctl.la
tools_libctl_la_SOURCES = \
	tools/ctl.c tools/ctl.h \
	tools/ctl-output.c tools/ctl-output.h \
	tools/ctl-monitor.c tools/ctl-monitor.h \
	tools/ctl-events.c tools/ctl-events.h \
	tools/ctl-shell.c tools/ctl-shell.h \
	tools/ctl-router.c tools/ctl-router.h \
	tools/ctl-task.c tools/ctl-task.h

bin_PROGRAMS += tools/callcenterctl
tools_callcenterctl_SOURCES = tools/callcenterctl.c
tools_callcenterctl_LDADD = tools/libctl.la $(SHARED_LIBS)

check_PROGRAMS += tests/unit/test-ctl-split
tests_unit_test_ctl_split_SOURCES = tests/unit/test-ctl-split.c
tests_unit_test_ctl_split_LDADD = tools/libctl.la $(SHARED_LIBS)
TESTS += tests/unit/test-ctl-split
tests_unit_test_ctl_split_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests

# The router commands against a real routerd (skips while it is not built).
TESTS += tests/integration/test-ctl-router.sh
EXTRA_DIST += tests/integration/test-ctl-router.sh

# Bash completion, found by bash-completion under the command's name.
bashcompletiondir = $(datadir)/bash-completion/completions
dist_bashcompletion_DATA = shell-completion/bash/callcenterctl
