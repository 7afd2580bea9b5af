#!/bin/bash
# shellcheck shell=bash
#
# Event path benchmark: publisher -> callcenter-eventd -> subscriber against
# a direct publisher -> subscriber connection, and the archive's rows/s.
# Starts a throwaway PostgreSQL (when installed) and eventd, then runs
# bench/events, which prints e.g.
#
#   hub: 412000 ev/s  direct: 650000 ev/s  ratio: 0.63
#   archive: 180000 rows/s
#
# Usage (from the build directory, or via `make bench`):
#   bench/events.sh [--count=N] [--size=BYTES] [--runs=R]
# Not a test: the figures depend on the machine and its load.

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${top_builddir:=$PWD}"
. "$top_srcdir/tests/integration/lib.sh"

B=$top_builddir
EVENTD=$B/daemons/eventd/callcenter-eventd
BENCH=$B/bench/events
for x in "$EVENTD" "$BENCH"; do
        [ -x "$x" ] || { echo "bench/events.sh: $x is not built (make bench)" >&2; exit 1; }
done
unset CALLCENTER_DATABASE_URL CALLCENTER_EVENTS CALLCENTER_EVENTS_PUBLISH

T=$(scratch_dir)
cleanup() {
        [ -n "${EVENTD_PID:-}" ] && kill "$EVENTD_PID" 2>/dev/null && wait "$EVENTD_PID" 2>/dev/null
        pg_stop
        rm -rf "$T"
}
trap cleanup EXIT

DB=
if pg_bindir >/dev/null && pg_start "$T/pg"; then
        DB=$PG_URL
else
        echo "bench/events.sh: PostgreSQL not available, the archive is not measured" >&2
fi

PORT=
for _ in $(seq 50); do
        p=$((30000 + RANDOM % 30000))
        tcp_open 127.0.0.1 "$p" || { PORT=$p; break; }
done
[ -n "$PORT" ] || { echo "bench/events.sh: no free port" >&2; exit 1; }

# buffer_bytes: a burst of events may outrun PostgreSQL for a while; hold it
# all so that the archive figure counts every row.
cat >"$T/eventd.conf" <<EOC
[database]
url = $DB
buffer_bytes = 1G
[events]
publish = ipc://$T/events-in
subscribe = tcp://127.0.0.1:$PORT
EOC
"$EVENTD" --config="$T/eventd.conf" 2>"$T/eventd.log" &
EVENTD_PID=$!
wait_for 10 tcp_open 127.0.0.1 "$PORT" || { cat "$T/eventd.log" >&2; exit 1; }
# Let the archive apply its migrations before the clock starts.
[ -n "$DB" ] && wait_for 20 psql_cc -c "SELECT 1 FROM events LIMIT 1"

"$BENCH" --publish="ipc://$T/events-in" --subscribe="tcp://127.0.0.1:$PORT" --direct="ipc://$T/direct" \
        --database="$DB" --eventd-pid="$EVENTD_PID" "$@"
rc=$?
kill -TERM "$EVENTD_PID"
wait "$EVENTD_PID" || rc=1
EVENTD_PID=
grep -v "Serving\|Stopping\|Archive written" "$T/eventd.log" >&2
exit $rc
