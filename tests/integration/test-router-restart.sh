#!/bin/bash
# SPDX-License-Identifier: MIT
#
# callcenter-routerd's persistence, with a throwaway PostgreSQL cluster and a
# private bus:
#
#  - 300 calls placed (pipelined over TCP), one answered, operators added and
#    paused: after SIGKILL and a restart the operators come back in order
#    with their status, the busy call with its operator, and the 299 queued
#    calls in their order (ListCalls);
#  - a ringing call survives SIGKILL: back in its place, offered again;
#  - the busy call can be hung up after the restart (finished, the operator
#    takes the next call), and its record in router_calls is complete;
#  - SIGTERM flushes: the state after a graceful restart is the same;
#  - a removed operator stays removed;
#  - PostgreSQL stopped: routing goes on; once it is back the changes made
#    meanwhile are written, and survive a SIGKILL.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

ROUTERD=$top_builddir/daemons/routerd/callcenter-routerd
WIRE=$top_srcdir/tests/integration/router-wire.py
need_pg
need_cmds dbus-daemon busctl python3
need_built "$ROUTERD"

T=$(scratch_dir)
routerd_pid=
# shellcheck disable=SC2086 # unquoted: none when empty
cleanup() { test_cleanup "$T" $routerd_pid; }
trap cleanup EXIT

pg_start "$T/pg" || bail_out "cannot start PostgreSQL"
dbus_start "$T" || bail_out "cannot start dbus-daemon"
PORT=$(( 20000 + RANDOM % 20000 ))
B=(busctl --user)
R=(org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1)
export CALLCENTER_DATABASE_URL=$PG_URL

printf '%s\n' '[database]' 'reconnect_max=300ms' '[events]' 'publish=' '[router]' \
        "listen=127.0.0.1:$PORT" 'operators=A B' 'ring_timeout=5min' >"$T/routerd.conf"

start_routerd() { routerd_start "$T/routerd.conf" "$T/routerd.log"; }
kill_routerd() {        # SIGKILL after the store's flush window
        sleep 0.3
        kill_pids "$routerd_pid"
        routerd_pid=
}
call() { "${B[@]}" call "${R[@]}" "$@" 2>&1; }
wire() { python3 "$WIRE" "$PORT" send "$@"; }
seq_calls() {   # seq_calls FROM TO STATE: cFROM:STATE: ... cTO:STATE:
        local i out=
        for i in $(seq "$1" "$2"); do out+="c$i:$3: "; done
        echo "${out% }"
}

start_routerd
check "first start: the configured operators" -- test "$(call ListOperators)" = 'a(sss) 2 "A" "available" "" "B" "available" ""'
call AddOperator s C >/dev/null
call SetOperatorStatus ss C offline >/dev/null
call SetOperatorStatus ss B paused >/dev/null

for i in $(seq 1 300); do echo "{\"command\":\"call\",\"id\":\"c$i\"}"; done >"$T/calls.in"
echo '{"command":"answer","id":"A"}' >>"$T/calls.in"
wire <"$T/calls.in" >"$T/calls.json"
ok $? "300 calls and an answer, pipelined"
check "c1 rang A and was answered, c300 waits" -- bash -c '
head -n1 "$1" | grep -q "Call c1 ringing for operator A" &&
sed -n 300p "$1" | grep -q "\"Call c300 waiting in queue\"" &&
tail -n1 "$1" | grep -q "Call c1 answered by operator A"' _ "$T/calls.json"

kill_routerd
check "PostgreSQL has 300 live call records" -- test "$(psql_cc -c "SELECT count(*) FROM router_calls WHERE ended IS NULL")" = 300
start_routerd
check "after SIGKILL: operators in order, with status and the busy call" -- \
        test "$(call ListOperators)" = 'a(sss) 3 "A" "busy" "c1" "B" "paused" "" "C" "offline" ""'
expected="$(seq_calls 2 300 queued) c1:answered:A"
check "after SIGKILL: the 299 queued calls in order, then the busy one" -- same "$expected" "$(router_list_calls)"
check "QueueLength is 299" -- test "$("${B[@]}" get-property "${R[@]}" QueueLength)" = "u 299"

# A ringing call.
call SetOperatorStatus ss B available >/dev/null
check "B available takes c2" -- test "$(call ListOperators)" = 'a(sss) 3 "A" "busy" "c1" "B" "ringing" "c2" "C" "offline" ""'
kill_routerd
start_routerd
check "after SIGKILL: the ringing call is offered again in its place" -- \
        test "$(call ListOperators)" = 'a(sss) 3 "A" "busy" "c1" "B" "ringing" "c2" "C" "offline" ""'
expected="$(seq_calls 3 300 queued) c2:ringing:B c1:answered:A"
check "after SIGKILL: ListCalls" -- same "$expected" "$(router_list_calls)"

# The busy call ends after the restart.
echo '{"command":"hangup","id":"c1"}' | wire >"$T/hangup.json"
check "hangup of the restored busy call" -- \
        grep -qx '{"ok":true,"messages":\["Call c1 finished and operator A available","Call c3 ringing for operator A"\]}' "$T/hangup.json"
sleep 0.3
check "c1's record: answered, ended, finished, waited" -- test "$(psql_cc -c "SELECT state, operator, outcome, answered IS NOT NULL, ended > answered, waited IS NOT NULL FROM router_calls WHERE call = 'c1'")" = "finished|A|finished|t|t|t"

# Graceful restart.
check "SIGTERM exits 0" -- routerd_stop
start_routerd
# Ringing calls go back to their place and are offered again: c2, the
# older, to A (both operators idle since the start: configured order).
expected="$(seq_calls 4 300 queued) c2:ringing:A c3:ringing:B"
check "after SIGTERM: the same calls, the ringing ones offered again" -- same "$expected" "$(router_list_calls)"
check "RemoveOperator C" -- test "$(call RemoveOperator s C)" = ""
check "SIGTERM exits 0 again" -- routerd_stop
start_routerd
check "a removed operator stays removed" -- same 'a(sss) 2 "A" "ringing" "c2" "B" "ringing" "c3"' "$(call ListOperators)"

# PostgreSQL away: requests are taken and routed, but acknowledged only
# once committed (DESIGN.md "TCP wire"), i.e. when PostgreSQL is back;
# nothing is lost.
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
printf '{"command":"%s","id":"%s"}\n' answer A hangup c3 call d1 call d2 | wire --timeout 90 >"$T/outage.json" &
outage_pid=$!
# Routed at once (a D-Bus read shows it), acknowledged only later.
a_busy() { [[ $(call ListOperators) == *'"A" "busy" "c2"'* ]]; }
wait_for 60 a_busy
ok $? "requests are routed while PostgreSQL is away"
sleep 0.5
check "no acknowledgement while PostgreSQL is away" -- test ! -s "$T/outage.json"
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses='' -c unix_socket_directories='$PG_DIR' -p $PG_PORT -c fsync=off" start >/dev/null
written=no
for _ in $(seq 1 100); do
        [ "$(psql_cc -c "SELECT count(*) FROM router_calls WHERE call IN ('d1', 'd2')" 2>/dev/null)" = 2 ] &&
                { written=yes; break; }
        sleep 0.1
done
check "the calls placed meanwhile reach PostgreSQL once it is back" -- test $written = yes
wait "$outage_pid"
check "the requests made while PostgreSQL was away are acknowledged once it is back" -- \
        test "$(grep -c '"ok":true' "$T/outage.json")" -eq 4
kill_routerd
start_routerd
expected="$(seq_calls 5 300 queued) d1:queued: d2:queued: c4:ringing:B c2:answered:A"
check "changes made while PostgreSQL was away survive SIGKILL" -- same "$expected" "$(router_list_calls)"
check "c3's record says missed" -- test "$(psql_cc -c "SELECT outcome FROM router_calls WHERE call = 'c3'")" = missed

check "SIGTERM exits 0 at the end" -- routerd_stop

# An upgrade: a database at 003-router, with two live calls and a record,
# gets 004-router-live from routerd. The live calls come back in order.
"$PG_BIN/createdb" -h "$PG_DIR" -p "$PG_PORT" -U postgres upgrade
up_url=${PG_URL/callcenter?/upgrade?}
for f in 001-events 002-tasks 003-router; do
        "$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 "$up_url" -f "$top_srcdir/sql/$f.sql" >/dev/null
done
"$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 "$up_url" >/dev/null <<'SQL'
CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
INSERT INTO schema_migrations (version) VALUES ('001-events'), ('002-tasks'), ('003-router');
INSERT INTO router_operators (id, position, status) VALUES ('A', 1, 'paused'), ('B', 2, 'paused');
INSERT INTO router_calls (seq, call, queue, state, arrived) VALUES
        (7, 'old2', 'default', 'queued', now() - interval '1 min'),
        (5, 'old1', 'default', 'queued', now() - interval '2 min');
INSERT INTO router_calls (seq, call, queue, state, operator, arrived, answered, ended, outcome, waited)
        VALUES (3, 'done', 'default', 'finished', 'A', now() - interval '1 h', now() - interval '59 min',
                now() - interval '50 min', 'finished', interval '1 min');
SQL
CALLCENTER_DATABASE_URL=$up_url start_routerd
check "upgraded: the live calls are back in arrival order" -- same "old1:queued: old2:queued:" "$(router_list_calls)"
up_sql() { "$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 "$up_url" -c "$1"; }
check "upgraded: the live calls are in router_live_calls" -- same "5 7" "$(up_sql "SELECT string_agg(seq::text, ' ' ORDER BY seq) FROM router_live_calls")"
check "upgraded: the record is in router_call_records" -- same "done|finished" "$(up_sql "SELECT call, outcome FROM router_call_records")"
check "upgraded: router_calls shows all three" -- same "3" "$(up_sql "SELECT count(*) FROM router_calls")"
printf '{"command":"hangup","id":"old1"}\n{"command":"call","id":"new"}\n' | wire >/dev/null
ended=no
for _ in $(seq 1 100); do
        [ "$(up_sql "SELECT count(*) FROM router_call_records WHERE call = 'old1' AND outcome = 'missed'")" = 1 ] &&
                [ "$(up_sql "SELECT count(*) FROM router_live_calls WHERE call = 'old1'")" = 0 ] && { ended=yes; break; }
        sleep 0.1
done
check "a hangup moves the call from live to the records" -- test $ended = yes
check "the next record number follows the highest" -- test "$(up_sql "SELECT seq FROM router_calls WHERE call = 'new'")" -gt 7
check "SIGTERM exits 0 after the upgrade" -- routerd_stop
check "no errors in the log" -- bash -c '! grep -q "^<[0-3]>" "$1"' _ "$T/routerd.log"
grep "^<[0-4]>" "$T/routerd.log" | sed 's/^/# log: /' | head -20
done_testing
