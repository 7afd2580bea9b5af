#!/bin/bash
# SPDX-License-Identifier: MIT
#
# callcenter-routerd when the bus cannot keep up with its signals: dbus-daemon
# is stopped (SIGSTOP) while a TCP client pipelines 20,000 call/hangup pairs
# (some 150,000 signals, far more than the socket to the bus holds: sd-bus
# makes its send buffer 8 MiB). routerd must not queue signals in memory
# without bound: once a few hundred wait beyond the socket's buffer, it
# holds TCP input (the client waits in TCP flow control). When the bus runs again, every request gets its reply, in order,
# and every signal reaches the bus: nothing is lost.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

ROUTERD=$top_builddir/daemons/routerd/callcenter-routerd
need_cmds dbus-daemon busctl python3
SUBSCRIBER=$top_builddir/tests/integration/router-subscriber
need_built "$ROUTERD" "$SUBSCRIBER"

T=$(scratch_dir)
routerd_pid= client_pid= monitor_pid= subscriber_pid=
cleanup() {
        [ -n "${DBUS_PID:-}" ] && kill -CONT "$DBUS_PID" 2>/dev/null
        # shellcheck disable=SC2086 # unquoted: the empty ones go
        test_cleanup "$T" $client_pid $monitor_pid $subscriber_pid $routerd_pid
}
trap cleanup EXIT

dbus_start "$T" || bail_out "cannot start dbus-daemon"
PORT=$(free_port) || bail_out "no free port"
printf '%s\n' '[database]' 'url=' '[events]' 'publish=' '[router]' "listen=127.0.0.1:$PORT" \
        'operators=A B' >"$T/routerd.conf"
routerd_start "$T/routerd.conf" "$T/routerd.log"

# Every CallStateChanged routerd sends, as the bus delivers it.
busctl --user monitor --match="type='signal',sender='org.callcenter.Router1',member='CallStateChanged'" \
        >"$T/monitor.txt" 2>&1 &
monitor_pid=$!
# Signals go out only while a client is subscribed: this one is, and reads
# them as they come (dbus-daemon is stopped below, so it stalls too).
"$SUBSCRIBER" >"$T/subscriber.txt" 2>&1 &
subscriber_pid=$!
wait_for 10 grep -qxm1 subscribed "$T/subscriber.txt" || bail_out "router-subscriber did not subscribe"
sleep 0.5

# PAIRS call/hangup pairs in one write; replies counted while the bus is
# stopped ("before"), then, once $T/go exists, all of them, checked in order.
PAIRS=20000
python3 - "$PORT" "$PAIRS" "$T" >"$T/client.out" 2>&1 <<'PY' &
import json, os, socket, sys, threading, time
port, pairs, tmp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=60)
lines = []
for i in range(pairs):
    lines.append('{"command":"call","id":"b%d"}\n' % i)
    lines.append('{"command":"hangup","id":"b%d"}\n' % i)
threading.Thread(target=lambda: s.sendall("".join(lines).encode()), daemon=True).start()
got, buf = [], b""
def read_until(deadline, want):
    global buf
    s.settimeout(0.2)
    while len(got) < want and time.time() < deadline:
        try:
            data = s.recv(65536)
        except (socket.timeout, TimeoutError):
            continue
        if not data:
            break
        buf += data
        *complete, buf = buf.split(b"\n")
        got.extend(json.loads(l) for l in complete)
read_until(time.time() + 3, len(lines))
print("before=%d" % len(got), flush=True)
open(os.path.join(tmp, "counted"), "w").close()
while not os.path.exists(os.path.join(tmp, "go")):
    time.sleep(0.05)
read_until(time.time() + 60, len(lines))
bad = 0
for i, r in enumerate(got):
    want = "Call b%d %s" % (i // 2, "received" if i % 2 == 0 else "missed")
    if not r.get("ok") or r["messages"][0] != want:
        bad += 1
print("after=%d bad=%d" % (len(got), bad), flush=True)
PY
client_pid=$!
sleep 0.3
kill -STOP "$DBUS_PID"
wait_for 20 test -e "$T/counted"
rss_held=$(awk '/^VmRSS:/ { print $2 }' "/proc/$routerd_pid/status")
kill -CONT "$DBUS_PID"
touch "$T/go"
wait "$client_pid"; client_pid=
sed 's/^/# client: /' "$T/client.out"

before=$(sed -n 's/^before=//p' "$T/client.out")
total=$((PAIRS * 2))
ok "$([ -n "$before" ] && [ "$before" -lt "$total" ]; echo $?)" \
        "bus stopped: routerd holds TCP input (${before:-?} of $total replies came)"
is "$(sed -n 's/^after=\([0-9]*\) .*/\1/p' "$T/client.out")" "$total" "bus running again: every request got its reply"
is "$(sed -n 's/.* bad=//p' "$T/client.out")" 0 "the replies came in order, each the right one"
diag "routerd VmRSS while held: ${rss_held:-?} KiB"

# 2 CallStateChanged per pair (ringing or queued, then ended), all delivered.
signals_seen() { [ "$(grep -c 'Member=CallStateChanged' "$T/monitor.txt")" -ge "$1" ]; }
wait_for 20 signals_seen "$total"
is "$(grep -c 'Member=CallStateChanged' "$T/monitor.txt")" "$total" "every CallStateChanged signal reached the bus"

# routerd served on: a D-Bus call and a TCP request.
check "routerd answers on the bus afterwards" -- \
        busctl --user call org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1 ListOperators
reply=$(printf '{"command":"status"}\n' | python3 "$top_srcdir/tests/integration/router-wire.py" "$PORT" send --timeout 5)
like "$reply" '"ok": ?true' "routerd answers on TCP afterwards"

routerd_stop
is "$?" 0 "SIGTERM exits 0"
like "$(cat "$T/routerd.log")" 'TCP input was held [0-9]+ time' "the hold is logged at exit"

done_testing
