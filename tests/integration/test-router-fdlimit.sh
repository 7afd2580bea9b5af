#!/bin/bash
# SPDX-License-Identifier: MIT
#
# callcenter-routerd at its file descriptor limit, and idle connections.
#
#  - Under prlimit --nofile=1024 (a unit's default soft limit), 1,100 idle
#    connections exhaust the descriptors. accept() then fails with EMFILE
#    and the listening socket stays readable: routerd used to spin on it at
#    up to 96% CPU. Now it stops watching the listener, logs that once, and
#    uses (next to) no CPU while the clients wait in the backlog: measured
#    as CPU time over wall time, which must stay under 10%.
#  - It still serves: D-Bus answers, and once 200 idle clients close, a new
#    client is accepted and gets its status reply.
#  - [router] idle_timeout: a connection with no traffic for that long is
#    closed; one that keeps talking is not.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

BIN=$top_builddir/daemons/routerd/callcenter-routerd
WIRE=$top_srcdir/tests/integration/router-wire.py
IDLE=$top_srcdir/tests/integration/idle-conns.py
need_cmds dbus-daemon busctl python3 prlimit
need_built "$BIN"
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge 1300 ] || skip_all "this shell may not open 1,300 descriptors"
ulimit -n "$(ulimit -Hn)" 2>/dev/null

T=$(scratch_dir)
routerd_pid='' idle_pid=''
# shellcheck disable=SC2086 # unquoted: the empty ones go
cleanup() { touch "$T/stop" 2>/dev/null; test_cleanup "$T" $idle_pid $routerd_pid; }
trap cleanup EXIT

dbus_start "$T" || bail_out "cannot start dbus-daemon"
PORT=$(free_port) || bail_out "no free port"
R=(org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1)

# routerd with the soft and hard limit at 1024 (prlimit execs it: same pid).
printf '#!/bin/sh\nexec prlimit --nofile=1024 -- %s "$@"\n' "$BIN" >"$T/routerd-1024"
chmod +x "$T/routerd-1024"
printf '%s\n' '[database]' 'url=' '[events]' 'publish=' '[router]' "listen=127.0.0.1:$PORT" \
        'operators=A B' >"$T/routerd.conf"
ROUTERD=$T/routerd-1024 routerd_start "$T/routerd.conf" "$T/routerd.log"
like "$(grep 'open files' "/proc/$routerd_pid/limits")" ' 1024 +1024 ' "routerd runs with nofile 1024"
like "$(cat "$T/routerd.log")" 'file descriptor limit is 1024, below \[router\] max_connections=4096' \
        "the short limit is reported at start"

python3 "$IDLE" "$PORT" 1100 "$T" &
idle_pid=$!
wait_for 30 test -e "$T/opened" || bail_out "could not open the idle connections"
wait_for 30 grep -q 'Cannot accept connections' "$T/routerd.log"
ok $? "EMFILE is reported (and accepting paused)"
is "$(grep -c 'Cannot accept connections' "$T/routerd.log")" 1 "...once"

# CPU time over 3 s of wall time while 1,100 clients wait.
ticks() { awk '{ print $14 + $15 }' "/proc/$routerd_pid/stat"; }
hz=$(getconf CLK_TCK)
a=$(ticks); s0=$(date +%s%N); sleep 3; b=$(ticks); s1=$(date +%s%N)
pct=$(( (b - a) * 100 * 1000000000 / hz / (s1 - s0) ))
diag "routerd CPU with 1,100 idle connections at nofile=1024: $pct%"
ok "$([ "$pct" -lt 10 ]; echo $?)" "routerd does not spin at the descriptor limit ($pct% CPU < 10%)"

out=$(busctl --user call "${R[@]}" ListOperators 2>&1)
like "$out" '^a\(sss\) 2 "A"' "D-Bus is served at the limit"

# Room again: 200 idle clients leave, a new one is served.
touch "$T/close-200"
wait_for 10 test -e "$T/closed-200"
out=$(printf '{"command":"status"}\n' | python3 "$WIRE" "$PORT" send --timeout 20 2>&1)
like "$out" '"ok": ?true' "once clients close, a new client is accepted and served"
touch "$T/stop"
kill_pids "$idle_pid"
idle_pid=
routerd_stop
is "$?" 0 "SIGTERM exits 0"

# --- [router] idle_timeout ----------------------------------------------------------------
printf '%s\n' 'idle_timeout=2s' >>"$T/routerd.conf"
routerd_start "$T/routerd.conf" "$T/routerd.log"
out=$(python3 - "$PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
idle = socket.create_connection(("127.0.0.1", port), timeout=30)
busy = socket.create_connection(("127.0.0.1", port), timeout=30)
t0 = time.time()
closed_after = None
busy_ok = True
# The busy one sends a status every 0.5 s for 6 s; the idle one sends
# nothing and should see the server close it.
idle.setblocking(False)
while time.time() - t0 < 6:
    busy.sendall(b'{"command":"status"}\n')
    line = b""
    while not line.endswith(b"\n"):
        chunk = busy.recv(65536)
        if not chunk:
            busy_ok = False
            break
        line += chunk
    if not busy_ok:
        break
    if closed_after is None:
        try:
            if idle.recv(1) == b"":
                closed_after = time.time() - t0
        except BlockingIOError:
            pass
    time.sleep(0.5)
print("idle_closed=%s busy_ok=%s" % ("yes" if closed_after is not None else "no", busy_ok))
PY
)
is "$out" "idle_closed=yes busy_ok=True" "idle_timeout=2s: the silent connection is closed, the talking one is not"
like "$(cat "$T/routerd.log")" 'Closed 1 TCP connection idle for 2 s' "the closing is logged"

routerd_stop
is "$?" 0 "SIGTERM exits 0"
done_testing
