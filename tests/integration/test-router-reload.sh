#!/bin/bash
# SPDX-License-Identifier: MIT
#
# callcenter-routerd's configuration reload (SIGHUP, what `systemctl reload`
# sends), on a private bus, with a throwaway PostgreSQL when one can be
# started (the store checks are skipped otherwise):
#
#  - sd_notify: RELOADING=1 with MONOTONIC_USEC, then READY=1;
#  - ring_timeout, strategy and queue membership act on the next decision:
#    a call waiting in a queue that gains an available operator rings it at
#    once; a call ringing before the reload keeps its old ring timeout, one
#    offered after it times out with the new one; the new strategy picks;
#  - D-Bus: Strategy / RingTimeoutUSec change, with PropertiesChanged;
#  - a broken configuration (bad value, bad queues word) keeps the whole
#    old one, logs file:line, and routerd serves on;
#  - listen changed: reported as needing a restart, the old port serves;
#  - [router] operators: an operator never seen is added, one a supervisor
#    removed is not;
#  - a queue dropped from the configuration: its waiting calls move to the
#    default queue in arrival order;
#  - the store: router_queues strategy and the operators' queues.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

ROUTERD=$top_builddir/daemons/routerd/callcenter-routerd
WIRE=$top_srcdir/tests/integration/router-wire.py
need_cmds dbus-daemon busctl python3
need_built "$ROUTERD"

T=$(scratch_dir)
routerd_pid='' monitor_pid='' sub_pid='' notify_pid=''
# shellcheck disable=SC2086 # unquoted: the empty ones go
cleanup() { test_cleanup "$T" $routerd_pid $monitor_pid $sub_pid $notify_pid; }
trap cleanup EXIT

DB=no
pg_usable && pg_start "$T/pg" >/dev/null 2>&1 && DB=yes
[ "$DB" = yes ] || diag "no PostgreSQL: the store checks are skipped"
dbus_start "$T" || bail_out "cannot start dbus-daemon"
PORT=$(free_port)
PORT2=$(free_port)
B=(busctl --user)
R=(org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1)
if [ "$DB" = yes ]; then export CALLCENTER_DATABASE_URL=$PG_URL; else export CALLCENTER_DATABASE_URL=; fi
CONF=$T/routerd.conf

# conf KEY=VALUE...: the configuration file, [router] keys given here.
conf() {
        printf '%s\n' '# routerd reload test' '[database]' 'reconnect_max=300ms' '[events]' 'publish=' \
                '[router]' "listen=127.0.0.1:$PORT" "$@" >"$CONF"
}

call() { "${B[@]}" call "${R[@]}" "$@" 2>&1; }
prop() { "${B[@]}" get-property "${R[@]}" "$1" 2>&1; }
wire() { python3 "$WIRE" "$PORT" send "$@"; }
ops() { call ListOperators; }
calls() { router_list_calls; }
log_has() { grep -qF -- "$1" "$T/routerd.log"; }
sub_has() { grep -qF -- "$1" "$T/sub.json"; }
# reload: SIGHUP, then wait for the READY=1 that ends it (the n-th READY).
readies() { grep -c '^READY=1' "$T/notify.txt"; }
readies_above() { [ "$(readies)" -gt "$1" ]; }
reload() {
        local n
        n=$(readies)
        kill -HUP "$routerd_pid"
        wait_for 10 readies_above "$n"
}

# A notify socket of our own.
notify_listen "$T/notify" "$T/notify.txt"

# --- start: queue sales served by A (paused below), B and C in default ---------
conf 'operators=A B C' 'queues=sales:A' 'ring_timeout=5min' 'strategy=longest-idle'
NOTIFY_SOCKET=$T/notify routerd_start "$CONF" "$T/routerd.log"
wait_for 5 readies_above 0 || bail_out "routerd did not come up" "$T/routerd.log"
"${B[@]}" monitor --match="type='signal',sender='org.callcenter.Router1',member='PropertiesChanged',path='/org/callcenter/Router1'" \
        >"$T/monitor.txt" 2>&1 &
monitor_pid=$!
python3 -u -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"{\"command\":\"subscribe\"}\n")
with open(sys.argv[2], "w") as out:
    for line in s.makefile("rb"):
        out.write(line.decode()); out.flush()' "$PORT" "$T/sub.json" &
sub_pid=$!
wait_for 5 sub_has 'Subscribed'
sleep 0.3

call SetOperatorStatus ss A paused >/dev/null
check "c1 rings B (ring timeout 5min)" -- test "$(call PlaceCall s c1)" = 'ss "ringing" "B"'
check "s1 waits in sales (its only member A is paused)" -- test "$(call PlaceCallInQueue ss s1 sales)" = 'ss "queued" ""'
is "$(prop RingTimeoutUSec)" "t 300000000" "RingTimeoutUSec before: 5min"

# --- reload 1: ring_timeout 2s, top-down, C joins sales ------------------------------
conf 'operators=A B C' 'queues=sales:A,C' 'ring_timeout=2s' 'strategy=top-down'
before=$(date +%s%N)
reload
ok $? "SIGHUP: READY=1 again"
check "sd_notify: RELOADING=1 with MONOTONIC_USEC before READY=1" -- python3 -c '
import sys
msgs = open(sys.argv[1]).read().split("\n")
r = [i for i, m in enumerate(msgs) if m.startswith("RELOADING=1")]
ready = [i for i, m in enumerate(msgs) if m.startswith("READY=1")]
sys.exit(not (r and ready and ready[-1] > r[-1] and
              any(m.startswith("MONOTONIC_USEC=") for m in msgs[r[-1]:r[-1] + 3])))' "$T/notify.txt"
check "sd_notify: a STATUS= line after the reload" -- bash -c 'tail -n 3 "$1" | grep -q "^STATUS=[0-9]* calls\? queued"' _ "$T/notify.txt"
is "$(prop RingTimeoutUSec)" "t 2000000" "RingTimeoutUSec after: 2s"
is "$(prop Strategy)" 's "top-down"' "Strategy after: top-down"
wait_for 5 grep -q 'RingTimeoutUSec' "$T/monitor.txt"
check "PropertiesChanged for Strategy and RingTimeoutUSec" -- bash -c 'grep -q "\"Strategy\"" "$1" && grep -q "\"RingTimeoutUSec\"" "$1"' _ "$T/monitor.txt"
wait_for 5 sub_has 'Call s1 ringing for operator C'
check "the waiting call rings C, who joined sales, at once (notice)" -- sub_has '"messages":["Call s1 ringing for operator C"]'
is "$(ops)" 'a(sss) 3 "A" "paused" "" "B" "ringing" "c1" "C" "ringing" "s1"' "ListOperators after reload 1"
check "log: what changed" -- log_has 'Reloaded configuration: queues "sales:A" -> "sales:A,C", strategy longest-idle -> top-down, ring_timeout 5min -> 2s.'
check "log: C's queues" -- log_has 'Operator C: queues default -> sales.'
check "log: sales follows [router] strategy" -- log_has 'Queue sales: strategy longest-idle -> top-down.'

# s1 began ringing with the new 2 s; c1 keeps its 5 min.
wait_for 6 sub_has 'Call s1 ignored by operator C'
ok $? "s1 rings out after the new ring timeout (2s)"
elapsed=$(( ($(date +%s%N) - before) / 1000000 ))
check "...not before 2 s (${elapsed} ms after the reload)" -- test "$elapsed" -ge 1900
check "c1, ringing since before the reload, keeps its 5min" -- bash -c '! grep -q "Call c1 ignored" "$1"' _ "$T/sub.json"
is "$(calls)" "c1:ringing:B s1:ringing:C" "ListCalls: both still ringing"

# top-down: C, idle longer, would win under longest-idle; A is first.
call Hangup s s1 >/dev/null
sleep 0.1
call SetOperatorStatus ss A available >/dev/null
is "$(call PlaceCallInQueue ss s2 sales)" 'ss "ringing" "A"' "top-down: s2 rings A, not C (idle longer)"
call Hangup s s2 >/dev/null
call Hangup s c1 >/dev/null

# --- a broken configuration keeps the old one --------------------------------------
conf 'operators=A B C' 'queues=sales:A,C' 'ring_timeout=2s' 'strategy=top-down' 'ring_timeout=bogus'
reload
ok $? "broken configuration: READY=1 (still serving)"
line=$(grep -n 'ring_timeout=bogus' "$CONF" | cut -d: -f1)
check "log: the bad value with file:line" -- log_has "$CONF:$line: [router] ring_timeout: invalid value 'bogus'"
check "log: not reloaded" -- log_has 'The configuration was not reloaded (see the error above): the one in use stays.'
is "$(prop RingTimeoutUSec)" "t 2000000" "RingTimeoutUSec unchanged"
check "sd_notify: the failure in STATUS=" -- grep -q '^STATUS=Configuration reload failed, previous one in use; ' "$T/notify.txt"
conf 'operators=A B C' 'queues=sales:A,C support' 'ring_timeout=3s' 'strategy=random'
reload
check "log: a bad queues word" -- log_has '[router] queues: "support" is not NAME[/STRATEGY]:OP[,OP...].'
is "$(prop Strategy)" 's "top-down"' "Strategy unchanged"
is "$(prop RingTimeoutUSec)" "t 2000000" "RingTimeoutUSec unchanged (nothing of the broken file applied)"
out=$(printf '{"command":"call","id":"w1"}\n{"command":"hangup","id":"w1"}\n' | wire)
like "$out" '"Call w1 received","Call w1 ringing for operator ' "TCP serves on after the failed reloads"
is "$(call PlaceCallInQueue ss w2 sales)" 'ss "ringing" "A"' "...and D-Bus (sales: A and C, top-down still)"
call Hangup s w2 >/dev/null
is "$(ops)" 'a(sss) 3 "A" "available" "" "B" "available" "" "C" "available" ""' "operators unchanged"

# --- listen needs a restart; operators: new ones added, removed ones stay removed ---
check "RemoveOperator B" -- test "$(call RemoveOperator s B)" = ""
conf 'operators=A B C D' 'queues=sales:A,C' 'ring_timeout=2s' 'strategy=top-down'
sed -i "s/^listen=.*/listen=127.0.0.1:$PORT2/" "$CONF"
reload
check "log: listen needs a restart" -- log_has 'Not applied until callcenter-routerd is restarted: listen.'
check "log: what changed" -- log_has 'Reloaded configuration: operators "A B C" -> "A B C D".'
check "the old port still serves" -- bash -c 'printf "{\"command\":\"status\"}\n" | python3 "$1" "$2" send | grep -q "\"ok\":true"' _ "$WIRE" "$PORT"
check "nothing listens on the new port" -- bash -c '! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null' _ "$PORT2"
is "$(ops)" 'a(sss) 3 "A" "available" "" "C" "available" "" "D" "available" ""' "D added, B (removed by a supervisor) not"
check "log: Operator D added" -- log_has 'Operator D added.'
sed -i "s/^listen=.*/listen=127.0.0.1:$PORT/" "$CONF"
reload
check "same file again: nothing changed" -- bash -c 'tail -n 2 "$1" | grep -qF "Reloaded configuration: nothing changed."' _ "$T/routerd.log"

if [ "$DB" = yes ]; then
        sleep 0.3
        is "$(psql_cc -c "SELECT strategy FROM router_queues WHERE name = 'sales'")" top-down \
                "store: router_queues has sales' new strategy"
        is "$(psql_cc -c "SELECT id || '=' || array_to_string(queues, ' ') FROM router_operators WHERE NOT removed ORDER BY position" | tr '\n' ' ')" \
                "A=sales C=sales D=default " "store: the operators' queues, in configured order"
        is "$(psql_cc -c "SELECT removed FROM router_operators WHERE id = 'B'")" t "store: B stays removed"
else
        skip "store checks (no PostgreSQL)"
        skip "store checks (no PostgreSQL)"
        skip "store checks (no PostgreSQL)"
fi

# --- a queue dropped with calls waiting: they move to default, in order ---------------
for o in A C D; do call SetOperatorStatus ss "$o" paused >/dev/null; done
call PlaceCallInQueue ss q1 sales >/dev/null
call PlaceCall s d1 >/dev/null
call PlaceCallInQueue ss q2 sales >/dev/null
is "$(calls)" "q1:queued: d1:queued: q2:queued:" "three calls waiting: q1, q2 in sales, d1 in default"
conf 'operators=A B C D' 'ring_timeout=2s' 'strategy=top-down'
reload
check "log: the queue removed, its calls moved" -- log_has 'Queue sales removed: its 2 waiting calls moved to the default queue, in order of arrival.'
check "log: A and C back to default" -- bash -c 'grep -qF "Operator A: queues sales -> default." "$1" && grep -qF "Operator C: queues sales -> default." "$1"' _ "$T/routerd.log"
# D serves default only: it gets q1 (the oldest, from sales), then d1, then q2.
is "$(call SetOperatorStatus ss D available; calls)" "d1:queued: q2:queued: q1:ringing:D" "D takes q1, moved from sales"
call Hangup s q1 >/dev/null
is "$(calls)" "q2:queued: d1:ringing:D" "then d1"
call Hangup s d1 >/dev/null
is "$(calls)" "q2:ringing:D" "then q2"
call Hangup s q2 >/dev/null

if [ "$DB" = yes ]; then
        # The stored queues agree with what a restart builds from the file.
        sleep 0.3
        is "$(psql_cc -c "SELECT id || '=' || array_to_string(queues, ' ') FROM router_operators WHERE NOT removed ORDER BY position" | tr '\n' ' ')" \
                "A=default C=default D=default " "store: the operators' queues after the queue went"
else
        skip "store checks (no PostgreSQL)"
fi

routerd_stop
is "$?" 0 "SIGTERM exits 0"
check "no errors in the log but the two broken files" -- bash -c '
test "$(grep -c "^<[0-3]>" "$1")" -eq 2' _ "$T/routerd.log"
grep "^<[0-4]>" "$T/routerd.log" | sed 's/^/# log: /' | head -20
done_testing
