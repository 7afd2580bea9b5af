#!/bin/bash
# SPDX-License-Identifier: MIT
#
# callcenter-routerd against hostile and heavy clients (issue #18, items 3
# and 5). Not a test: it prints figures. Run from anywhere:
#
#   top_builddir=build bench/router-hostile.sh [QUEUED]
#
#  1. routerd under prlimit --nofile=1024 with 1,100 idle connections: its
#     CPU over 5 s (it used to spin on EMFILE), and whether a new client
#     gets a status reply within 5 s (it waits in the backlog while every
#     descriptor is held: expected "timed out");
#  2. QUEUED (default 100000) calls waiting: the time and size of one
#     status reply, the slowest of 4 status requests at once, and a call
#     request sent meanwhile; routerd's VmRSS. max_queued is raised to
#     QUEUED so that all of them wait.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

BIN=$top_builddir/daemons/routerd/callcenter-routerd
QUEUED=${1:-100000}
need_built "$BIN"
ulimit -n "$(ulimit -Hn)" 2>/dev/null

T=$(scratch_dir)
routerd_pid='' client_pid=''
# shellcheck disable=SC2086 # unquoted: the empty ones go
trap 'test_cleanup "$T" $client_pid $routerd_pid' EXIT
dbus_start "$T" || bail_out "cannot start dbus-daemon"

conf() {
        PORT=$(free_port)
        printf '%s\n' '[database]' 'url=' '[events]' 'publish=' '[router]' "listen=127.0.0.1:$PORT" \
                'operators=A B' "$@" >"$T/routerd.conf"
}

# --- 1. the descriptor limit ---------------------------------------------------------
conf
prlimit --nofile=1024 -- "$BIN" --user --config="$T/routerd.conf" 2>>"$T/routerd.log" &
routerd_pid=$!
wait_for 30 tcp_open 127.0.0.1 "$PORT" || bail_out "routerd did not come up" "$T/routerd.log"
python3 - "$PORT" 1100 >"$T/idle.out" <<'PY' &
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.socket(); s.setblocking(False)
    try: s.connect(("127.0.0.1", port))
    except BlockingIOError: pass
    socks.append(s)
time.sleep(1)
t0 = time.time()
try:
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(b'{"command":"status"}\n')
    line = c.makefile("rb").readline()
    print("new client: status reply in %.3f s" % (time.time() - t0), flush=True)
except Exception as e:
    print("new client: %s after %.1f s" % (e, time.time() - t0), flush=True)
time.sleep(30)
PY
client_pid=$!
sleep 4
hz=$(getconf CLK_TCK)
a=$(awk '{ print $14 + $15 }' "/proc/$routerd_pid/stat"); sleep 5
b=$(awk '{ print $14 + $15 }' "/proc/$routerd_pid/stat")
echo "nofile=1024, 1100 idle connections: routerd CPU $(( (b - a) * 100 / hz / 5 ))% over 5 s"
sleep 2
sed 's/^/nofile=1024, 1100 idle connections: /' "$T/idle.out"
kill_pids "$client_pid" "$routerd_pid"
client_pid='' routerd_pid=''

# --- 2. status with a long queue -----------------------------------------------------------
conf "max_queued=$QUEUED"
"$BIN" --user --config="$T/routerd.conf" 2>>"$T/routerd.log" &
routerd_pid=$!
wait_for 30 tcp_open 127.0.0.1 "$PORT" || bail_out "routerd did not come up" "$T/routerd.log"
python3 - "$PORT" "$QUEUED" <<'PY'
import json, socket, sys, threading, time
port, n = int(sys.argv[1]), int(sys.argv[2])
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=300)
    return s, s.makefile("rb")
s, f = conn()
t = threading.Thread(target=lambda: s.sendall(b"".join(b'{"command":"call","id":"q%d"}\n' % i for i in range(n))))
t.start()
for _ in range(n):
    f.readline()
t.join()
t0 = time.time(); s.sendall(b'{"command":"status"}\n'); line = f.readline(); t1 = time.time()
print("%d calls: status alone %.3f s, %d bytes" % (n, t1 - t0, len(line)))
res = []
def status():
    a, b = conn(); t0 = time.time(); a.sendall(b'{"command":"status"}\n'); b.readline(); res.append(time.time() - t0)
threads = [threading.Thread(target=status) for _ in range(4)]
c, cf = conn()
for th in threads: th.start()
time.sleep(0.01)
t0 = time.time(); c.sendall(b'{"command":"call","id":"late"}\n'); cf.readline(); tc = time.time() - t0
for th in threads: th.join()
print("%d calls: 4 status at once, slowest %.3f s; a call sent meanwhile answered in %.3f s" % (n, max(res), tc))
PY
echo "$QUEUED calls: routerd VmRSS $(awk '/VmRSS/ { print $2 " " $3 }' "/proc/$routerd_pid/status")"
