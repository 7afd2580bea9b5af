# bench: benchmarks. Each prints its figures and ratios; none is a test, and
# none is built or run by `make check`. `make bench` builds and runs them.
include bench/router.mk

# bench/events: publisher -> eventd -> subscriber vs direct, archive rows/s.
#   make bench-events      (or: make bench/events && bench/events.sh --runs=5)
noinst_PROGRAMS += bench/events
bench_events_SOURCES = bench/events.c
bench_events_LDADD = daemons/eventd/libeventd-core.la $(SHARED_LIBS)
dist_noinst_SCRIPTS += bench/events.sh

.PHONY: bench bench-events
bench: bench-events
bench-events: bench/events$(EXEEXT) daemons/eventd/callcenter-eventd$(EXEEXT)
	top_srcdir=$(abs_top_srcdir) top_builddir=$(abs_top_builddir) $(BASH) $(top_srcdir)/bench/events.sh
