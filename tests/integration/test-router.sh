#!/bin/bash
# SPDX-License-Identifier: MIT
#
# callcenter-routerd over TCP (JSON lines) and D-Bus (org.callcenter.Router1),
# without PostgreSQL ([database] url empty), on a private bus:
#
#  - the seeds' classic session (calls 1-3, answer, reject, hangups, a ring
#    timeout with ring_timeout=1s) gives the exact seed lines over TCP, and
#    the same outcomes over D-Bus (return values, ListOperators, ListCalls,
#    properties, signals, named errors);
#  - pipelining: 400 requests in one write, replies in order;
#  - bad lines (not JSON, not an object, unknown command, missing or bad id,
#    longer than 64 KiB) get error replies, the connection stays usable;
#  - back-pressure: 20000 status requests sent without reading all get
#    their replies; 100 connections at once;
#  - subscribe: a subscriber gets the ring-timeout notices;
#  - the operator objects (ObjectManager, properties, add/remove);
#  - events on ZeroMQ through eventd, when eventd and event-sub are built;
#  - a subscriber that does not read is disconnected;
#  - sd_notify (READY=1, STATUS=, STOPPING=1) and socket activation;
#  - SIGTERM exits 0.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

ROUTERD=$top_builddir/daemons/routerd/callcenter-routerd
WIRE=$top_srcdir/tests/integration/router-wire.py
EVENTD=$top_builddir/daemons/eventd/callcenter-eventd
EVENT_SUB=$top_builddir/tests/integration/event-sub
EVENT_PUB=$top_builddir/tests/integration/event-pub
need_cmds dbus-daemon busctl python3
SUBSCRIBER=$top_builddir/tests/integration/router-subscriber
need_built "$ROUTERD" "$SUBSCRIBER"

T=$(scratch_dir)
routerd_pid='' monitor_pid='' subscriber_pid='' eventd_pid='' sub_pid='' slow_pid='' notify_pid=''
# shellcheck disable=SC2086 # unquoted: the empty ones go
cleanup() { test_cleanup "$T" $routerd_pid $monitor_pid $subscriber_pid $sub_pid $eventd_pid $slow_pid $notify_pid; }
trap cleanup EXIT

dbus_start "$T" || bail_out "cannot start dbus-daemon"
PORT=$(( 20000 + RANDOM % 20000 ))
B=(busctl --user)
R=(org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1)

# Events: eventd as the hub when it is built; otherwise routerd publishes
# into the void (it never blocks on an absent hub).
EVENTS=no
[ -x "$EVENTD" ] && [ -x "$EVENT_SUB" ] && [ -x "$EVENT_PUB" ] && EVENTS=yes

printf '%s\n' '[database]' 'url=' '[events]' "publish=ipc://$T/events-in" \
        "subscribe=ipc://$T/events-out" '[router]' "listen=127.0.0.1:$PORT" 'operators=A B' \
        'ring_timeout=1s' >"$T/routerd.conf"

start_routerd() { routerd_start "$T/routerd.conf" "$T/routerd.log"; }

if [ "$EVENTS" = yes ]; then
        # eventd without a database only relays (no archive).
        CALLCENTER_DATABASE_URL= "$EVENTD" --config="$T/routerd.conf" 2>>"$T/eventd.log" &
        eventd_pid=$!
        # The first 40 router events (the TCP session below has more) of
        # the first routerd process, from seq 1 on: the subscription must
        # be in place before routerd publishes. Probe events through the hub
        # tell when it is (event-sub creates the ready file on the first).
        "$EVENT_SUB" --endpoint="ipc://$T/events-out" --topic=router. --topic=probe. --timeout=30 \
                --count=40 --ready-file="$T/sub.ready" >"$T/sub.out" 2>"$T/sub.err" &
        sub_pid=$!
        "$EVENT_PUB" --endpoint="ipc://$T/events-in" --source=probe --interval=50 \
                --until-exists="$T/sub.ready" >/dev/null 2>&1 &
        probe_pid=$!
        wait_for 10 test -e "$T/sub.ready" || diag "event-sub did not see the probe events"
        { kill "$probe_pid"; wait "$probe_pid"; } 2>/dev/null
fi

start_routerd
"${B[@]}" monitor --match="type='signal',sender='org.callcenter.Router1'" >"$T/monitor.txt" 2>&1 &
monitor_pid=$!
# The per-call signals go out only to a subscriber (Router1.Subscribe()).
"$SUBSCRIBER" >"$T/subscriber.txt" 2>&1 &
subscriber_pid=$!
wait_for 10 grep -qx subscribed "$T/subscriber.txt" || bail_out "router-subscriber did not subscribe" "$T/subscriber.txt"
sleep 0.3

wire() { python3 "$WIRE" "$PORT" send "$@"; }

# --- the seeds' classic session over TCP -------------------------------------------
printf '{"command":"%s","id":"%s"}\n' call 1 call 2 call 3 answer A reject B answer B \
        hangup 1 hangup 3 hangup 2 call 4 | wire --notices 1 --timeout 5 >"$T/session.json"
ok $? "TCP session: one reply per request, then the ring-timeout notice"
wire_messages <"$T/session.json" >"$T/session.txt"
printf '%s\n' \
        'Call 1 received' \
        'Call 1 ringing for operator A' \
        'Call 2 received' \
        'Call 2 ringing for operator B' \
        'Call 3 received' \
        'Call 3 waiting in queue' \
        'Call 1 answered by operator A' \
        'Call 2 rejected by operator B' \
        'Call 2 ringing for operator B' \
        'Call 2 answered by operator B' \
        'Call 1 finished and operator A available' \
        'Call 3 ringing for operator A' \
        'Call 3 missed' \
        'Call 2 finished and operator B available' \
        'Call 4 received' \
        'Call 4 ringing for operator A' \
        'Call 4 ignored by operator A' \
        'Call 4 ringing for operator B' >"$T/session.expected"
check "TCP session: the seed's lines, exactly" -- diff -u "$T/session.expected" "$T/session.txt"
check "the ring timeout came as an \"ignored\" notice" -- \
        grep -qx '{"event":"ignored","messages":\["Call 4 ignored by operator A","Call 4 ringing for operator B"\]}' "$T/session.json"
check "every reply says ok" -- test "$(grep -c '"ok":true' "$T/session.json")" -eq 10

# Call 4 still rings (the timeout re-offers it every second): hang it up
# first. Which operator call 8 rings is not the point here.
printf '{"command":"%s","id":"%s"}\n' hangup 4 answer A hangup 99 answer Z hangup 4 call 8 call 8 hangup 8 |
        wire >"$T/errors.json"
wire_messages <"$T/errors.json" | sed 's/operator [AB]$/operator X/' >"$T/errors.txt"
printf '%s\n' 'Call 4 missed' error=invalid_state 'Operator A is not ringing' error=no_such_call 'No such call 99' \
        error=no_such_operator 'No such operator Z' error=no_such_call 'No such call 4' 'Call 8 received' \
        'Call 8 ringing for operator X' error=exists 'Call 8 already exists' 'Call 8 missed' >"$T/errors.expected"
check "TCP errors: codes and human lines" -- diff -u "$T/errors.expected" "$T/errors.txt"

# --- bad lines ---------------------------------------------------------------------
{
        echo 'this is not json'
        echo '[1,2,3]'
        echo '{"command":"fly","id":"1"}'
        echo '{"command":"call"}'
        echo '{"command":"call","id":"has space"}'
        echo '{"command":"call","id":""}'
        python3 -c 'print("{\"command\":\"call\",\"id\":\"" + "x" * 70000 + "\"}")'
        echo '{"id":"5"}'
        echo '{"command":"call","id":"5"}'
        echo '{"command":"hangup","id":"5"}'
} | wire >"$T/bad.json"
ok $? "bad lines: one reply each"
wire_messages <"$T/bad.json" | grep '^error=' >"$T/bad.txt"
printf 'error=%s\n' bad_json not_object unknown_command missing_id bad_id bad_id line_too_long \
        missing_command >"$T/bad.expected"
check "bad lines: the error codes" -- diff -u "$T/bad.expected" "$T/bad.txt"
check "the connection stays usable after them" -- grep -q '"messages":\["Call 5 received","Call 5 ringing for operator ' "$T/bad.json"
check "failed replies carry one human line" -- python3 -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["ok"] is False:
        assert len(r["messages"]) == 1 and r["messages"][0], r' "$T/bad.json"

# --- pipelining, back-pressure, many connections ---------------------------------
for i in $(seq 1 200); do echo "{\"command\":\"call\",\"id\":\"p$i\"}"; done >"$T/pipe.in"
for i in $(seq 1 200); do echo "{\"command\":\"hangup\",\"id\":\"p$i\"}"; done >>"$T/pipe.in"
wire <"$T/pipe.in" >"$T/pipe.json"
ok $? "pipelining: 400 requests in one write, 400 replies"
check "pipelining: replies in request order" -- python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 400
for i in range(200):
    assert lines[i]["messages"][0] == "Call p%d received" % (i + 1), lines[i]
    assert lines[200 + i]["messages"][0].startswith("Call p%d " % (i + 1)), lines[200 + i]' "$T/pipe.json"
out=$(python3 "$WIRE" "$PORT" flood 20000)
check "back-pressure: 20000 status replies to a client that reads late ($out)" -- test "$out" = "replies=20000 ok=20000"
out=$(python3 "$WIRE" "$PORT" conns 100)
check "100 connections at once ($out)" -- test "$out" = "connections=100 ok=100"
for i in $(seq 0 99); do echo "{\"command\":\"hangup\",\"id\":\"conn-$i\"}"; done | wire >"$T/hang.json"
check "their calls outlive the connections and hang up" -- test "$(grep -c '"ok":true' "$T/hang.json")" -eq 100

# --- subscribe -----------------------------------------------------------------------
# The subscriber gets the notice of a ring timeout of a call placed over D-Bus.
python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=4)
s.sendall(b"{\"command\":\"subscribe\"}\n")
f = s.makefile("rb")
for _ in range(2):
    print(f.readline().decode().rstrip(), flush=True)' "$PORT" >"$T/sub.json" &
subscriber=$!
sleep 0.3
"${B[@]}" call "${R[@]}" PlaceCall s 6 >/dev/null
wait $subscriber
check "subscribe: acknowledged" -- grep -qx '{"ok":true,"messages":\["Subscribed to notices"\]}' "$T/sub.json"
check "subscribe: the ring-timeout notice of a D-Bus call" -- grep -q '^{"event":"ignored","messages":\["Call 6 ignored by operator ' "$T/sub.json"
"${B[@]}" call "${R[@]}" Hangup s 6 >/dev/null

# --- the same session over D-Bus --------------------------------------------------
# A fresh routerd (SIGTERM, start again): both operators idle since the start,
# so the strategy's tie goes to the configured order.
check "SIGTERM: exit status 0" -- routerd_stop
start_routerd
call() { "${B[@]}" call "${R[@]}" "$@" 2>&1; }
check "D-Bus PlaceCall 11 rings A" -- test "$(call PlaceCall s 11)" = 'ss "ringing" "A"'
check "D-Bus PlaceCall 12 rings B" -- test "$(call PlaceCall s 12)" = 'ss "ringing" "B"'
check "D-Bus PlaceCall 13 is queued" -- test "$(call PlaceCall s 13)" = 'ss "queued" ""'
check "QueueLength is 1" -- test "$("${B[@]}" get-property "${R[@]}" QueueLength)" = "u 1"
check "D-Bus Answer A returns call 11" -- test "$(call Answer s A)" = 's "11"'
check "D-Bus Reject B returns call 12" -- test "$(call Reject s B)" = 's "12"'
check "ListOperators after the reject" -- test "$(call ListOperators)" = 'a(sss) 2 "A" "busy" "11" "B" "ringing" "12"'
check "D-Bus Answer B" -- test "$(call Answer s B)" = 's "12"'
check "ListCalls: queue order first" -- python3 -c '
import re, sys
s = sys.argv[1]
m = re.findall(r"\"([^\"]*)\" \"([^\"]*)\" \"([^\"]*)\" (\d+)", s)
assert s.startswith("a(ssst) 3 "), s
assert [x[:3] for x in m] == [("13", "queued", ""), ("11", "answered", "A"), ("12", "answered", "B")], m' "$(call ListCalls)"
check "D-Bus Hangup 11 is finished" -- test "$(call Hangup s 11)" = 's "finished"'
check "A took call 13 at once" -- test "$(call ListOperators)" = 'a(sss) 2 "A" "ringing" "13" "B" "busy" "12"'
check "D-Bus Hangup 13 is missed" -- test "$(call Hangup s 13)" = 's "missed"'
check "D-Bus Hangup 12 is finished" -- test "$(call Hangup s 12)" = 's "finished"'
check "OperatorsAvailable is 2" -- test "$("${B[@]}" get-property "${R[@]}" OperatorsAvailable)" = "u 2"
check "Strategy and RingTimeoutUSec" -- test "$("${B[@]}" get-property "${R[@]}" Strategy RingTimeoutUSec | tr '\n' ' ')" = 's "longest-idle" t 1000000 '
first=$(call PlaceCall s 14 | cut -d' ' -f3 | tr -d '"')
other=A; [ "$first" = A ] && other=B
sleep 1.4
check "D-Bus ring timeout re-offers call 14 to the other operator ($first -> $other)" -- \
        bash -c '[[ "$1" == *"\"$2\" \"ringing\" \"14\""* ]]' _ "$(call ListOperators)" "$other"
call Hangup s 14 >/dev/null

# Named errors, seen through gdbus (which prints the error name).
gd() { gdbus call --session --dest org.callcenter.Router1 --object-path /org/callcenter/Router1 --method "org.callcenter.Router1.$1" "${@:2}" 2>&1; }
has() { [[ "$1" == *"$2"* ]] || { echo "# got: $1"; return 1; }; }
if command -v gdbus >/dev/null; then
        check "NoSuchCall" -- has "$(gd Hangup nope)" org.callcenter.Error.NoSuchCall
        check "NoSuchOperator" -- has "$(gd Answer Z)" org.callcenter.Error.NoSuchOperator
        check "InvalidState" -- has "$(gd Answer A)" org.callcenter.Error.InvalidState
        check "InvalidArgument (bad id)" -- has "$(gd PlaceCall "'a b'")" org.callcenter.Error.InvalidArgument
        check "InvalidArgument (bad status)" -- has "$(gd SetOperatorStatus A sleepy)" org.callcenter.Error.InvalidArgument
        gd PlaceCall 15 >/dev/null
        check "Exists" -- has "$(gd PlaceCall 15)" org.callcenter.Error.Exists
        gd Hangup 15 >/dev/null
fi

# --- introspection ------------------------------------------------------------------
"${B[@]}" introspect --xml-interface org.callcenter.Router1 /org/callcenter/Router1 >"$T/introspect.xml"
"${B[@]}" introspect --xml-interface org.callcenter.Router1 /org/callcenter/Router1/operator/A >"$T/introspect-op.xml"
check "the interfaces match dbus/org.callcenter.Router1.xml" -- python3 -c '
import sys, xml.etree.ElementTree as ET
def ifaces(paths):
    out = {}
    for path in paths:
        for i in ET.parse(path).getroot().iter("interface"):
            name = i.get("name")
            if not name.startswith("org.callcenter."):
                continue
            members = []
            for m in i:
                if m.tag in ("method", "signal", "property"):
                    args = [(a.get("name"), a.get("type"),
                             a.get("direction", "out" if m.tag == "signal" else "in"))
                            for a in m.findall("arg")]
                    members.append((m.tag, m.get("name"), m.get("type"), args))
            out[name] = sorted(members)
    return out
live, xml = ifaces(sys.argv[1:3]), ifaces(sys.argv[3:])
if live != xml:
    print("# live:", live); print("# xml: ", xml)
    sys.exit(1)' "$T/introspect.xml" "$T/introspect-op.xml" "$top_srcdir/dbus/org.callcenter.Router1.xml"

# --- operator objects ---------------------------------------------------------------
check "operator objects under the ObjectManager" -- has \
        "$("${B[@]}" call org.callcenter.Router1 /org/callcenter/Router1 org.freedesktop.DBus.ObjectManager GetManagedObjects)" \
        '"/org/callcenter/Router1/operator/B" 4'
check "AddOperator C-1" -- test "$(call AddOperator s C-1)" = ""
check "operator C-1's object (escaped path) and properties" -- test "$("${B[@]}" get-property org.callcenter.Router1 /org/callcenter/Router1/operator/C_2d1 org.callcenter.Router1.Operator Id State Status | tr '\n' ' ')" = 's "C-1" s "available" s "available" '
check "SetOperatorStatus C-1 paused" -- test "$(call SetOperatorStatus ss C-1 paused)" = ""
check "ListOperators in configured order with C-1 paused" -- test "$(call ListOperators)" = 'a(sss) 3 "A" "available" "" "B" "available" "" "C-1" "paused" ""'
check "RemoveOperator C-1" -- test "$(call RemoveOperator s C-1)" = ""
check "C-1's object is gone" -- bash -c '! "$@" >/dev/null 2>&1' _ "${B[@]}" get-property org.callcenter.Router1 /org/callcenter/Router1/operator/C_2d1 org.callcenter.Router1.Operator Id
stats=$(call GetStats)
for k in waiting longest_wait_usec average_wait_usec answered abandoned service_level abandon_rate queues; do
        has "$stats" "\"$k\"" || { ok 1 "GetStats has $k"; continue; }
done
ok 0 "GetStats has the queue figures"

sleep 0.3
kill "$monitor_pid" "$subscriber_pid" 2>/dev/null; wait "$monitor_pid" "$subscriber_pid" 2>/dev/null
monitor_pid='' subscriber_pid=''
check "CallStateChanged signals" -- grep -q "Member=CallStateChanged" "$T/monitor.txt"
check "OperatorStateChanged signals" -- grep -q "Member=OperatorStateChanged" "$T/monitor.txt"
check "PropertiesChanged and InterfacesAdded/Removed" -- bash -c 'grep -q "Member=PropertiesChanged" "$1" && grep -q "Member=InterfacesAdded" "$1" && grep -q "Member=InterfacesRemoved" "$1"' _ "$T/monitor.txt"

# --- events on ZeroMQ -----------------------------------------------------------------
if [ "$EVENTS" = yes ]; then
        wait "$sub_pid"; rc=$?; sub_pid=
        check "event-sub: router events through eventd, no gaps ($(cat "$T/sub.out"))" -- test "$rc" -eq 0
else
        echo "ok $((tap_n += 1)) # SKIP eventd or event-sub not built"
fi

check "SIGTERM: exit status 0" -- routerd_stop

# --- sd_notify and socket activation -------------------------------------------------
# A notify socket of our own: READY=1 and the one-line STATUS=.
notify_listen "$T/notify" "$T/notify.txt"
NOTIFY_SOCKET=$T/notify start_routerd
printf '{"command":"call","id":"n1"}\n' | wire >/dev/null
# STATUS= is coalesced (250 ms): wait for the one that counts n1.
wait_for 10 grep -q '^STATUS=0 calls queued, 1/2' "$T/notify.txt"
check "sd_notify: READY=1" -- grep -q '^READY=1' "$T/notify.txt"
check "sd_notify: STATUS= one-line summary" -- grep -q '^STATUS=0 calls queued, 1/2 operators available, [0-9]* connections\?$' "$T/notify.txt"
routerd_stop
ok $? "SIGTERM: exit status 0"
sleep 0.2
check "sd_notify: STOPPING=1" -- grep -q "^STOPPING=1" "$T/notify.txt"
{ kill "$notify_pid"; wait "$notify_pid"; } 2>/dev/null; notify_pid=
if command -v systemd-socket-activate >/dev/null; then
        SA_PORT=$((PORT + 1))
        systemd-socket-activate -E DBUS_SESSION_BUS_ADDRESS -l "127.0.0.1:$SA_PORT" \
                "$ROUTERD" --user --config="$T/routerd.conf" 2>>"$T/routerd.log" >/dev/null &
        routerd_pid=$!
        sleep 0.3
        out=$(printf '{"command":"call","id":"sa"}\n' | python3 "$WIRE" "$SA_PORT" send)
        check "socket activation: served on the passed socket" -- test "$out" = '{"ok":true,"messages":["Call sa received","Call sa ringing for operator A"]}'
        check "socket activation: SIGTERM exits 0" -- routerd_stop
else
        echo "ok $((tap_n += 1)) # SKIP systemd-socket-activate not found"
fi

# --- a subscriber that does not read ------------------------------------------------
# Notices cannot wait: past [router] output_buffer_max of unsent notices
# (beyond what the kernel's socket buffers took) the subscriber is
# disconnected, with a warning naming it. 40 operators letting 100 calls
# ring out every 5 ms make about 1 MB/s of notices.
SLOW_PORT=$((PORT + 2))
printf '%s\n' '[database]' 'url=' '[events]' 'publish=' '[router]' "listen=127.0.0.1:$SLOW_PORT" \
        "operators=$(echo O{1..40})" 'ring_timeout=5ms' 'output_buffer_max=64K' >"$T/slow.conf"
"$ROUTERD" --user --config="$T/slow.conf" 2>"$T/slow.log" &
slow_pid=$!
wait_for 10 tcp_open 127.0.0.1 "$SLOW_PORT"
out=$(timeout 60 python3 -c '
import re, socket, sys, time
port, log = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
me = "127.0.0.1:%d " % s.getsockname()[1]
s.sendall(b"{\"command\":\"subscribe\"}\n")
c = socket.create_connection(("127.0.0.1", port))
c.sendall(b"".join(b"{\"command\":\"call\",\"id\":\"s%d\"}\n" % i for i in range(100)))
f = c.makefile("rb")
for _ in range(100):
    f.readline()
c.close()                       # from now on the notices go to the subscriber only
end = time.time() + 30
while time.time() < end and ("Client " + me) not in open(log).read():
    time.sleep(0.2)
s.settimeout(10)
try:
    while s.recv(1 << 20):      # what the kernel holds, then the end
        pass
    print("closed")
except socket.timeout:
    print("still open")' "$SLOW_PORT" "$T/slow.log")
check "a subscriber that does not read is disconnected ($out)" -- test "$out" = closed
check "... with a warning naming it" -- grep -q '^<4>.*Client 127.0.0.1:[0-9]* does not read its replies' "$T/slow.log"
kill -TERM "$slow_pid"; wait "$slow_pid"
ok $? "... and routerd goes on (SIGTERM exits 0)"
slow_pid=

# Without eventd the publisher drops its queue at exit, and says so.
check "no warnings or errors in the log" -- bash -c '! grep -v "No \[database\] url\|Event publisher router: .* dropped" "$1" | grep -q "^<[0-4]>"' _ "$T/routerd.log"
sed 's/^/# log: /' "$T/routerd.log" | head -20
done_testing
