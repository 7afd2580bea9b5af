#!/bin/bash
# shellcheck shell=bash
#
# The archive under a burst (DESIGN.md "Events": eventd stores every event
# in PostgreSQL). One publisher sends as fast as it can; PostgreSQL cannot
# keep up, and eventd spills what it cannot take to the spill file in its
# state directory ($STATE_DIRECTORY), replaying it in order as PostgreSQL
# catches up.
#
#  1. a burst of N events at full speed: the archive holds exactly N, each
#     once, in order, and the spill file ends empty;
#  2. the same with PostgreSQL stopped for 10 s in the middle;
#  3. eventd stopped while events wait in the spill file: the next eventd
#     replays them, each once.
#
# N is $EVENTS_BURST_COUNT, by default 1,000,000; under the sanitizers
# (slower by far) 200,000 with [database] buffer_bytes = 4M, which still
# forces the spill file.

. "${top_srcdir:?}/tests/integration/lib.sh"

B=${top_builddir:?}
EVENTD=${EVENTD:-$B/daemons/eventd/callcenter-eventd}
PUB=$B/tests/integration/event-pub
need_built "$EVENTD" "$PUB"
need_pg
need_cmds python3

unset CALLCENTER_DATABASE_URL CALLCENTER_EVENTS CALLCENTER_EVENTS_PUBLISH
if grep -q '^SANITIZER_CFLAGS = -fsanitize' "$B/Makefile" 2>/dev/null; then
        N=${EVENTS_BURST_COUNT:-200000}
        BUFFER="buffer_bytes = 4M"
else
        N=${EVENTS_BURST_COUNT:-1000000}
        BUFFER=
fi

T=$(scratch_dir)
EVENTD_PID=
P=
trap 'kill_pids "$EVENTD_PID" "$P" "${notify_pid:-}"; test_cleanup "$T"' EXIT

pg_start "$T/pg" || bail_out "cannot start PostgreSQL"
PORT=$(free_port)
PUBLISH=ipc://$T/run/events-in
mkdir -p "$T/state"
SPILL=$T/state/archive.spill
cat >"$T/eventd.conf" <<EOF2
[database]
url = $PG_URL
reconnect_max = 300ms
$BUFFER
[events]
publish = $PUBLISH
subscribe = tcp://127.0.0.1:$PORT
EOF2
notify_listen "$T/notify" "$T/notify.log"

eventd_up() { tcp_open 127.0.0.1 "$PORT" && [ -S "$T/run/events-in" ]; }
start_eventd() {        # start_eventd LOG
        STATE_DIRECTORY=$T/state NOTIFY_SOCKET=$T/notify "$EVENTD" --config="$T/eventd.conf" 2>"$1" &
        EVENTD_PID=$!
        wait_for 30 eventd_up
}
stop_eventd() {
        local rc
        kill -TERM "$EVENTD_PID"; wait "$EVENTD_PID"; rc=$?
        EVENTD_PID=
        return $rc
}
archived() { psql_cc -c "SELECT count(*) FROM events WHERE source = '$1'"; }
archive_has() { [ "$(archived "$1")" = "$2" ]; }
archive_some() { [ "$(archived "$1")" -gt 0 ]; }
# exactly_once SOURCE N: seq 1..N, each once, and ids in seq order.
exactly_once() {
        psql_cc -c "SELECT count(*) = $2 AND count(DISTINCT seq) = $2 AND min(seq) = 1 AND max(seq) = $2
                    FROM events WHERE source = '$1'" | grep -qx t &&
        psql_cc -c "SELECT count(*) FROM (SELECT seq - lag(seq) OVER (ORDER BY id) AS d
                    FROM events WHERE source = '$1') x WHERE d <> 1" | grep -qx 0
}
spill_empty() { [ ! -s "$SPILL" ]; }
pg_start_again() {
        pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
                -o "-c listen_addresses='' -c unix_socket_directories='$PG_DIR' -p $PG_PORT -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
                start >/dev/null
}
diag "$N events per burst${BUFFER:+, $BUFFER}"

# --- 1. a burst at full speed ------------------------------------------------
start_eventd "$T/eventd1.log" || bail_out "eventd did not start" "$T/eventd1.log"
ok 0 "eventd started with STATE_DIRECTORY=$T/state"
start=$SECONDS
"$PUB" --endpoint="$PUBLISH" --source=burst --count="$N" >"$T/p1.out" 2>&1
ok $? "one publisher sent $N events at full speed without drops"
diag "$(cat "$T/p1.out")"
wait_for 150 archive_has burst "$N"
ok $? "the archive caught up: $(archived burst) of $N events"
diag "archived in $((SECONDS - start)) s; $(grep -c "wait in" "$T/eventd1.log") spill notice(s)"
check "burst: seq 1..$N exactly once, in order" -- exactly_once burst "$N"
wait_for 10 spill_empty
ok $? "the spill file is empty again"
stop_eventd
ok $? "SIGTERM: exit 0"
! grep -q "not archived" "$T/eventd1.log"
ok $? "nothing was reported lost"
diag "$(grep -i "archive" "$T/eventd1.log" | head -n 4)"

# --- 2. PostgreSQL stopped for 10 s in the middle ------------------------------
start_eventd "$T/eventd2.log" || bail_out "eventd did not start" "$T/eventd2.log"
: >"$T/notify.log"
start=$SECONDS
"$PUB" --endpoint="$PUBLISH" --source=outage --count="$N" >"$T/p2.out" 2>&1 &
P=$!
wait_for 60 archive_some outage
ok $? "archiving has begun"
diag "$(archived outage) rows archived when PostgreSQL stops"
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
sleep 10
pg_start_again
ok $? "PostgreSQL stopped for 10 s and started again"
wait "$P"
ok $? "the publisher sent $N events without drops meanwhile"
P=
diag "$(cat "$T/p2.out")"
grep -aEq "spilled [1-9]" "$T/notify.log"
ok $? "STATUS= showed events waiting in the spill file"
diag "$(grep -aE "spilled [1-9]" "$T/notify.log" | tail -n 1)"
wait_for 150 archive_has outage "$N"
ok $? "the archive caught up: $(archived outage) of $N events"
diag "archived in $((SECONDS - start)) s"
check "outage: seq 1..$N exactly once, in order" -- exactly_once outage "$N"
wait_for 10 spill_empty
ok $? "the spill file is empty again"
stop_eventd
ok $? "SIGTERM: exit 0"
! grep -q "not archived" "$T/eventd2.log"
ok $? "nothing was reported lost"
grep -q "wait in $SPILL" "$T/eventd2.log"
ok $? "the spill was logged"
diag "$(grep -i "archive\|database" "$T/eventd2.log" | head -n 6)"

# --- 3. events left in the spill file at exit ---------------------------------
M=$((N / 10))
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
start_eventd "$T/eventd3.log" || bail_out "eventd did not start" "$T/eventd3.log"
"$PUB" --endpoint="$PUBLISH" --source=left --count="$M" >"$T/p3.out" 2>&1
ok $? "$M events sent while PostgreSQL is away"
stop_eventd
ok $? "SIGTERM with PostgreSQL away: exit 0"
test -s "$SPILL"
ok $? "the spill file keeps them ($(stat -c %s "$SPILL" 2>/dev/null) bytes)"
diag "$(grep -i "archive" "$T/eventd3.log" | tail -n 3)"
pg_start_again
start_eventd "$T/eventd4.log" || bail_out "eventd did not start" "$T/eventd4.log"
wait_for 60 archive_has left "$M"
ok $? "the next eventd replayed them: $(archived left) of $M"
check "left: seq 1..$M exactly once, in order" -- exactly_once left "$M"
wait_for 10 spill_empty
ok $? "the spill file is empty again"
stop_eventd
ok $? "SIGTERM: exit 0"

done_testing
