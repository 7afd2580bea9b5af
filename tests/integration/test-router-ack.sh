#!/bin/bash
# SPDX-License-Identifier: MIT
#
# "Acknowledged" means "committed" (DESIGN.md "TCP wire"): a client streams
# 5,000 call/hangup pairs, pipelined, while routerd is SIGKILLed twice and
# started again (the client reconnects and goes on with the next pairs).
# Then routerd is SIGKILLed once more and started. Every call whose "call"
# was acknowledged must be in PostgreSQL; every call whose hangup was
# acknowledged must have its record with that outcome and must not come
# back as a live call; and D-Bus replies, too, come after the commit.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

ROUTERD=$top_builddir/daemons/routerd/callcenter-routerd
need_cmds dbus-daemon busctl python3
need_pg
need_built "$ROUTERD"

T=$(scratch_dir)
routerd_pid='' client_pid=''
cleanup() { test_cleanup "$T" $client_pid $routerd_pid; }
trap cleanup EXIT

pg_start "$T/pg" >"$T/pg.log" 2>&1 || bail_out "cannot start PostgreSQL" "$T/pg.log"
dbus_start "$T" || bail_out "cannot start dbus-daemon"
PORT=$(free_port) || bail_out "no free port"
export CALLCENTER_DATABASE_URL=$PG_URL
printf '%s\n' '[events]' 'publish=' '[router]' "listen=127.0.0.1:$PORT" 'operators=A B' >"$T/routerd.conf"
routerd_start "$T/routerd.conf" "$T/routerd.log"

PAIRS=${ROUTER_ACK_PAIRS:-5000}
python3 - "$PORT" "$PAIRS" "$T" >"$T/client.out" 2>&1 <<'PY' &
import json, os, socket, sys, time
port, pairs, tmp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
WINDOW = 64
reqs = []
for i in range(pairs):
    reqs.append(("call", "k%d" % i))
    reqs.append(("hangup", "k%d" % i))
acked = open(os.path.join(tmp, "acked.txt"), "w")
n_acked, nxt, lost = 0, 0, 0
progress = os.path.join(tmp, "progress")

def connect():
    end = time.time() + 120
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=60)
        except OSError:
            if time.time() > end:
                raise
            time.sleep(0.05)

while nxt < len(reqs):
    s = connect()
    f = s.makefile("rb")
    inflight = []
    try:
        while nxt < len(reqs) or inflight:
            batch = []
            while nxt < len(reqs) and len(inflight) < WINDOW:
                cmd, cid = reqs[nxt]
                batch.append('{"command":"%s","id":"%s"}\n' % (cmd, cid))
                inflight.append(reqs[nxt])
                nxt += 1
            if batch:
                s.sendall("".join(batch).encode())
            line = f.readline()
            if not line:
                raise ConnectionError("closed")
            cmd, cid = inflight.pop(0)
            r = json.loads(line)
            if r.get("ok"):
                msgs = r["messages"]
                outcome = ""
                if cmd == "hangup":
                    outcome = "finished" if " finished" in msgs[0] else "missed"
                acked.write("%s %s %s\n" % (cmd, cid, outcome))
                n_acked += 1
                if n_acked % 100 == 0:
                    acked.flush()
                    with open(progress, "w") as p:
                        p.write("%d\n" % n_acked)
    except (ConnectionError, OSError):
        # The requests in flight were never acknowledged: skip them, with
        # the hangup of a call whose "call" was in flight.
        lost += len(inflight)
        if nxt % 2 == 1:
            nxt += 1
    s.close()
acked.close()
with open(progress, "w") as p:
    p.write("done %d\n" % n_acked)
print("acknowledged=%d unacknowledged=%d" % (n_acked, lost))
PY
client_pid=$!

progress() { sed -n 's/^\(done \)\{0,1\}//p' "$T/progress" 2>/dev/null; }
at_least() { local p; p=$(progress); [ -n "$p" ] && [ "$p" -ge "$1" ]; }
kills=0
for mark in $((PAIRS / 2)) $((PAIRS * 6 / 5)); do
        wait_for 120 at_least "$mark" || break
        kill -KILL "$routerd_pid"; wait "$routerd_pid" 2>/dev/null; routerd_pid=
        kills=$((kills + 1))
        routerd_start "$T/routerd.conf" "$T/routerd.log"
done
is "$kills" 2 "routerd was SIGKILLed twice mid-stream"
wait "$client_pid"; rc=$?; client_pid=
check "the client finished the stream ($(cat "$T/client.out"))" -- test "$rc" -eq 0
kill -KILL "$routerd_pid"; wait "$routerd_pid" 2>/dev/null; routerd_pid=
routerd_start "$T/routerd.conf" "$T/routerd.log"

psql_cc -c "SELECT call || ' ' || coalesce(outcome, '-') || ' ' || (ended IS NOT NULL)::text FROM router_calls" \
        >"$T/db.txt" || bail_out "cannot read router_calls"
busctl --user call org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1 ListCalls >"$T/live.txt"
python3 - "$T/acked.txt" "$T/db.txt" "$T/live.txt" >"$T/verdict.txt" <<'PY'
import re, sys
acked = [l.split() for l in open(sys.argv[1])]
db = {}
for l in open(sys.argv[2]):
    w = l.split()
    db[w[0]] = (w[1], w[2])
live = set(re.findall(r'"(k\d+)" "[a-z]+"', open(sys.argv[3]).read()))
calls_lost = sum(1 for a in acked if a[0] == "call" and a[1] not in db)
hangups_lost = sum(1 for a in acked if a[0] == "hangup" and db.get(a[1]) != (a[2], "true"))
back = sum(1 for a in acked if a[0] == "hangup" and a[1] in live)
print("acknowledged=%d calls_lost=%d hangups_lost=%d ended_back=%d" % (len(acked), calls_lost, hangups_lost, back))
PY
read -r verdict <"$T/verdict.txt"
diag "$verdict"
like "$verdict" 'calls_lost=0 ' "every acknowledged call is in PostgreSQL after SIGKILL"
like "$verdict" 'hangups_lost=0 ' "every acknowledged hangup has its record and outcome after SIGKILL"
like "$verdict" 'ended_back=0$' "no ended call came back live after a restart"
like "$verdict" "acknowledged=([4-9][0-9]{3}|[1-9][0-9]{4})" "most of the $((PAIRS * 2)) requests were acknowledged"

# D-Bus: the reply to a change comes after its commit. With PostgreSQL
# stopped, PlaceCall is routed (ListCalls shows it) but not answered; once
# PostgreSQL is back, the reply comes and the row is there.
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
busctl --user --timeout=60 call org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1 \
        PlaceCall s dbus-1 >"$T/dbus-reply.txt" 2>&1 &
dbus_pid=$!
placed() { busctl --user call org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1 ListCalls | grep -q '"dbus-1"'; }
wait_for 30 placed
ok $? "D-Bus PlaceCall is routed while PostgreSQL is away"
sleep 1
check "... but not answered while PostgreSQL is away" -- test ! -s "$T/dbus-reply.txt"
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses='' -c unix_socket_directories='$PG_DIR' -p $PG_PORT -c fsync=off" start >/dev/null
wait "$dbus_pid"
check "... and answered once it is committed ($(cat "$T/dbus-reply.txt"))" -- \
        test "$(psql_cc -c "SELECT count(*) FROM router_calls WHERE call = 'dbus-1'")" = 1 -a -s "$T/dbus-reply.txt"
done_testing
