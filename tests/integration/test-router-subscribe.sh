#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Router1 Subscribe()/Unsubscribe() (DESIGN.md "D-Bus"): the per-call signals
# (CallStateChanged, OperatorStateChanged, PropertiesChanged of the operator
# objects and of QueueLength/OperatorsAvailable) go out only while a bus
# client is subscribed. A third client watches everything the router sends
# with a match rule. Each "nothing was sent" check is closed by a signal the
# router always sends (InterfacesAdded of a new operator, or a settings
# PropertiesChanged after a reload): the bus keeps one sender's messages in
# order, so once the watcher has that one, it has everything sent before it.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

ROUTERD=$top_builddir/daemons/routerd/callcenter-routerd
SUBSCRIBER=$top_builddir/tests/integration/router-subscriber
WIRE=$top_srcdir/tests/integration/router-wire.py
need_cmds dbus-daemon busctl python3
need_built "$ROUTERD" "$SUBSCRIBER"

T=$(scratch_dir)
routerd_pid='' watch_pid='' s1_pid='' s2_pid='' s3_pid=''
cleanup() { [ -n "${KEEP:-}" ] && cp -r "$T" "$KEEP"; test_cleanup "$T" $watch_pid $s1_pid $s2_pid $s3_pid $routerd_pid; }
trap cleanup EXIT

dbus_start "$T" || bail_out "cannot start dbus-daemon"
PORT=$(free_port) || bail_out "no free port"
export CALLCENTER_DATABASE_URL=
conf() {
        printf '%s\n' '[database]' 'url=' '[events]' 'publish=' '[router]' "listen=127.0.0.1:$PORT" \
                'operators=A B' "$@" >"$T/routerd.conf"
}
conf 'strategy=longest-idle'
routerd_start "$T/routerd.conf" "$T/routerd.log"

B=(busctl --user)
R=(org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1)
call() { "${B[@]}" call "${R[@]}" "$@" 2>&1; }
count() { grep -cE -- "$1" "$2"; }   # count ERE FILE
has_line() { grep -qxF -- "$1" "$2"; }

# subscriber NAME [OPTION]: start router-subscriber into $T/NAME.txt and wait
# for its first line; sets sub_pid.
subscriber() {
        local out=$T/$1.txt
        : >"$out"
        "$SUBSCRIBER" ${2:+"$2"} >"$out" 2>>"$T/subscriber.err" &
        sub_pid=$!
        wait_for 10 test -s "$out" || bail_out "router-subscriber $1 did not start" "$T/subscriber.err"
}

# pairs PREFIX N: N call/hangup pairs pipelined on the wire; all must be ok.
pairs() {
        local i
        for ((i = 0; i < $2; i++)); do
                printf '{"command":"call","id":"%s%d"}\n{"command":"hangup","id":"%s%d"}\n' "$1" "$i" "$1" "$i"
        done | python3 "$WIRE" "$PORT" send --timeout 30 >"$T/wire-$1.out" ||
                bail_out "wire client failed" "$T/wire-$1.out"
        [ "$(grep -c '"ok": *true' "$T/wire-$1.out")" -eq $(($2 * 2)) ] ||
                bail_out "not every request of $1 was ok" "$T/wire-$1.out"
}

# fence OP: add operator OP (InterfacesAdded is always sent) and wait until
# the watcher has it: everything the router sent before is in watch.txt.
fence() {
        call AddOperator s "$1" >>"$T/fence.out"
        wait_for 10 has_line "InterfacesAdded /org/callcenter/Router1/operator/$1" "$T/watch.txt" ||
                bail_out "the watcher never saw InterfacesAdded for $1"
}

per_call='^(CallStateChanged|OperatorStateChanged|PropertiesChanged)'

"$SUBSCRIBER" --no-call >"$T/watch.txt" 2>>"$T/subscriber.err" &
watch_pid=$!
wait_for 10 test -s "$T/watch.txt" || bail_out "the watcher did not start" "$T/subscriber.err"

# --- no subscriber: nothing per call -------------------------------------------------
pairs n 200
fence F1
is "$(count "$per_call" "$T/watch.txt")" 0 "no subscriber: 200 call/hangup pairs sent no per-call signal"
check "properties are still live without a subscriber" -- bash -c '
        printf "%s\n" "{\"command\":\"call\",\"id\":\"q1\"}" "{\"command\":\"call\",\"id\":\"q2\"}" \
                "{\"command\":\"call\",\"id\":\"q3\"}" "{\"command\":\"call\",\"id\":\"q4\"}" |
                python3 "$1" "$2" send >/dev/null &&
        test "$(busctl --user get-property org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1 QueueLength)" = "u 1" &&
        test "$(busctl --user get-property org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1 OperatorsAvailable)" = "u 0"' \
        _ "$WIRE" "$PORT"
printf '%s\n' '{"command":"hangup","id":"q1"}' '{"command":"hangup","id":"q2"}' \
        '{"command":"hangup","id":"q3"}' '{"command":"hangup","id":"q4"}' | python3 "$WIRE" "$PORT" send >/dev/null
fence F2
is "$(count "$per_call" "$T/watch.txt")" 0 "still no per-call signal (PropertiesChanged of QueueLength included)"
check "Unsubscribe without a subscription is InvalidState" -- bash -c '
        out=$(busctl --user call org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1 Unsubscribe 2>&1)
        [[ $out == *"not subscribed"* ]]'

# --- one subscriber gets every change, in order -------------------------------------
subscriber s1; s1_pid=$sub_pid
check "Subscribe() succeeded" -- has_line subscribed "$T/s1.txt"
pairs s 50
fence F3
# Which operator rings is the strategy's choice: the call sequence is
# checked here, the operator against OperatorStateChanged below.
expect=$(for ((i = 0; i < 50; i++)); do
        printf 'CallStateChanged s%d ringing\nCallStateChanged s%d missed\n' "$i" "$i"
done)
got=$(grep '^CallStateChanged s' "$T/s1.txt" | cut -d' ' -f1-3)
same "$expect" "$got"
ok $? "the subscriber got CallStateChanged for all 100 changes, in order"
check "OperatorStateChanged follows each ring and each end" -- test \
        "$(count '^OperatorStateChanged [^ ]* ringing s' "$T/s1.txt")" -eq 50 -a \
        "$(count '^OperatorStateChanged [^ ]* available' "$T/s1.txt")" -ge 50
check "each ringing call's operator has OperatorStateChanged ringing with it" -- python3 -c '
import sys
lines = [l.split() for l in open(sys.argv[1])]
ops = {(w[1], w[3]) for w in lines if w[0] == "OperatorStateChanged" and len(w) == 4 and w[2] == "ringing"}
calls = [(w[3], w[1]) for w in lines if w[0] == "CallStateChanged" and w[2] == "ringing"]
sys.exit(0 if calls and all(c in ops for c in calls) else 1)' "$T/s1.txt"
check "operator objects' PropertiesChanged reach the subscriber" -- \
        grep -q '^PropertiesChanged /org/callcenter/Router1/operator/[A-Z0-9_]* State=' "$T/s1.txt"
printf '%s\n' '{"command":"call","id":"w1"}' '{"command":"call","id":"w2"}' '{"command":"call","id":"w3"}' \
        '{"command":"call","id":"w4"}' '{"command":"call","id":"w5"}' '{"command":"call","id":"w6"}' |
        python3 "$WIRE" "$PORT" send >/dev/null
printf '%s\n' '{"command":"hangup","id":"w1"}' '{"command":"hangup","id":"w2"}' '{"command":"hangup","id":"w3"}' \
        '{"command":"hangup","id":"w4"}' '{"command":"hangup","id":"w5"}' '{"command":"hangup","id":"w6"}' |
        python3 "$WIRE" "$PORT" send >/dev/null
fence F4
check "QueueLength/OperatorsAvailable PropertiesChanged reach the subscriber" -- bash -c '
        grep -q "^PropertiesChanged /org/callcenter/Router1 .*QueueLength=1" "$1" &&
        grep -q "^PropertiesChanged /org/callcenter/Router1 .*OperatorsAvailable=" "$1"' _ "$T/s1.txt"

# --- Unsubscribe() stops them -----------------------------------------------------------
kill -USR1 "$s1_pid"
wait_for 10 has_line unsubscribed "$T/s1.txt"
ok $? "Unsubscribe() succeeded"
before=$(count "$per_call" "$T/watch.txt")
pairs u 50
fence F5
is "$(count "$per_call" "$T/watch.txt")" "$before" "after Unsubscribe() no per-call signal is sent"
kill -USR1 "$s1_pid"
wait_for 10 has_line "unsubscribe-error org.callcenter.Error.InvalidState" "$T/s1.txt"
ok $? "a second Unsubscribe() is org.callcenter.Error.InvalidState"

# --- subscribing twice counts once --------------------------------------------------------
subscriber s2 --twice; s2_pid=$sub_pid
check "Subscribe() twice on one connection succeeded" -- test "$(count "^subscribed$" "$T/s2.txt")" -eq 2
kill -USR1 "$s2_pid"
wait_for 10 has_line unsubscribed "$T/s2.txt"
before=$(count "$per_call" "$T/watch.txt")
pairs d 20
fence F6
is "$(count "$per_call" "$T/watch.txt")" "$before" "a client that subscribed twice is gone after one Unsubscribe()"

# --- a subscriber that dies stops counting ----------------------------------------------
subscriber s3; s3_pid=$sub_pid
before=$(count "$per_call" "$T/watch.txt")
pairs k 5
fence F7
check "signals flow while s3 is subscribed" -- test "$(count "$per_call" "$T/watch.txt")" -gt "$before"
before=$(count "$per_call" "$T/watch.txt")
kill -KILL "$s3_pid"; wait "$s3_pid" 2>/dev/null; s3_pid=''
# The bus tells routerd the name left; until then signals may still go.
gone() { pairs g 1; fence "G$((++fences))"; [ "$(count "$per_call" "$T/watch.txt")" -eq "$before" ] || {
        before=$(count "$per_call" "$T/watch.txt"); return 1; }; }
fences=0
wait_for 10 gone
ok $? "after the subscriber was killed, no per-call signal is sent"

# --- settings are always sent ---------------------------------------------------------
conf 'strategy=round-robin'
kill -HUP "$routerd_pid"
wait_for 10 grep -q '^PropertiesChanged /org/callcenter/Router1 .*Strategy' "$T/watch.txt"
ok $? "a reload's Strategy PropertiesChanged goes out with no subscriber"

check "routerd is still serving" -- test "$(call ListOperators | cut -d' ' -f1)" = "a(sss)"
done_testing
