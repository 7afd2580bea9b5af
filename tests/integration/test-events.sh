#!/bin/bash
# shellcheck shell=bash
#
# The event path end to end: publishers -> callcenter-eventd -> subscribers,
# and the PostgreSQL archive (DESIGN.md "Events").
#
#  1. two publishers x 50,000 events, two subscribers: everyone gets every
#     event in order; SIGTERM right after exits 0 with the archive holding
#     all 100,000 exactly once, in arrival order;
#  2. the same with PostgreSQL restarted in the middle: still exactly once;
#  3. an unreachable database: events are still forwarded, SIGTERM exits 0;
#  4. a publisher started before eventd: everything arrives once it is up;
#  5. bad configuration / endpoint in use: one clear line, non-zero exit;
#  6. invalid messages from a raw socket: counted (STATUS=), hub keeps serving;
#  7. eventd restarted (SIGTERM) while a publisher sends: nothing is lost;
#  8. socket activation: the XPUB listening socket comes from systemd.
#
# Helpers: tests/integration/event-pub, event-sub, event-raw (C programs).

. "${top_srcdir:?}/tests/integration/lib.sh"

B=${top_builddir:?}
EVENTD=$B/daemons/eventd/callcenter-eventd
PUB=$B/tests/integration/event-pub
SUB=$B/tests/integration/event-sub
RAW=$B/tests/integration/event-raw
for x in "$EVENTD" "$PUB" "$SUB" "$RAW"; do
        [ -x "$x" ] || skip_all "$x not built"
done
pg_bindir >/dev/null || skip_all "PostgreSQL server not installed"
command -v python3 >/dev/null || skip_all "python3 not installed"

# The configuration files below say everything; no overrides from outside.
unset CALLCENTER_DATABASE_URL CALLCENTER_EVENTS CALLCENTER_EVENTS_PUBLISH

T=$(scratch_dir)
PIDS=()
cleanup() {
        local p
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
        [ -n "${EVENTD_PID:-}" ] && kill -9 "$EVENTD_PID" 2>/dev/null
        [ -n "${NOTIFY_PID:-}" ] && kill "$NOTIFY_PID" 2>/dev/null
        pg_stop
        rm -rf "$T"
}
trap cleanup EXIT

pg_start "$T/pg" || { echo "Bail out! cannot start PostgreSQL"; exit 1; }

# A free loopback port for the XPUB side.
PORT=
for _ in $(seq 50); do
        p=$((30000 + RANDOM % 30000))
        tcp_open 127.0.0.1 "$p" || { PORT=$p; break; }
done
[ -n "$PORT" ] || { echo "Bail out! no free port"; exit 1; }
PUBLISH=ipc://$T/run/events-in
SUBSCRIBE=tcp://127.0.0.1:$PORT

# write_conf FILE DATABASE-URL
write_conf() {
        cat >"$1" <<EOF
[database]
url = $2
reconnect_max = 300ms
[events]
publish = $PUBLISH
subscribe = $SUBSCRIBE
EOF
}
write_conf "$T/eventd.conf" "$PG_URL"

# A stand-in for systemd's notify socket: every datagram, one per line.
python3 - "$T/notify" "$T/notify.log" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        f.write(s.recv(4096).decode(errors="replace").replace("\n", " ") + "\n")
EOF
NOTIFY_PID=$!
wait_for 5 test -S "$T/notify"

eventd_up() { tcp_open 127.0.0.1 "$PORT" && [ -S "$T/run/events-in" ]; }

# start_eventd CONF LOG: start and wait until both endpoints are bound.
start_eventd() {
        NOTIFY_SOCKET=$T/notify "$EVENTD" --config="$1" 2>"$2" &
        EVENTD_PID=$!
        wait_for 10 eventd_up
}
# stop_eventd: SIGTERM, wait; the exit status is the function's.
stop_eventd() {
        local rc
        kill -TERM "$EVENTD_PID"
        wait "$EVENTD_PID"
        rc=$?
        EVENTD_PID=
        return $rc
}

# probe FILE...: publish "probe" events until every subscriber wrote its
# ready file, i.e. its subscription has reached the hub.
probe() {
        local args=() f
        for f in "$@"; do args+=(--until-exists="$f"); done
        timeout 20 "$PUB" --endpoint="$PUBLISH" --source=probe --interval=20 "${args[@]}" >/dev/null
}

archived() {    # archived SOURCE...: rows of these sources
        local list
        list=$(printf "'%s'," "$@")
        psql_cc -c "SELECT count(*) FROM events WHERE source IN (${list%,})"
}
archive_has() { [ "$(archived "${@:2}")" = "$1" ]; }
archive_some() { [ "$(archived "$@")" -gt 0 ]; }

# exactly_once SOURCE N: seq 1..N, each once, and ids in seq order.
exactly_once() {
        psql_cc -c "SELECT count(*) = $2 AND count(DISTINCT seq) = $2 AND min(seq) = 1 AND max(seq) = $2
                    FROM events WHERE source = '$1'" | grep -qx t &&
        psql_cc -c "SELECT count(*) FROM (SELECT seq - lag(seq) OVER (ORDER BY id) AS d
                    FROM events WHERE source = '$1') x WHERE d <> 1" | grep -qx 0
}

# --- 1. 2 x 50,000 events, 2 subscribers, then SIGTERM -----------------------
start_eventd "$T/eventd.conf" "$T/eventd1.log"
ok $? "eventd binds $PUBLISH and $SUBSCRIBE"
wait_for 5 grep -q READY=1 "$T/notify.log"
ok $? "eventd sent READY=1"

"$SUB" --endpoint="$SUBSCRIBE" --count=100000 --timeout=60 --ready-file="$T/s1.ready" >"$T/s1.out" 2>"$T/s1.err" &
S1=$!
"$SUB" --endpoint="$SUBSCRIBE" --count=100000 --timeout=60 --ready-file="$T/s2.ready" --topic=alpha. --topic=beta. --topic=probe. \
        >"$T/s2.out" 2>"$T/s2.err" &
S2=$!
PIDS+=("$S1" "$S2")
probe "$T/s1.ready" "$T/s2.ready"
ok $? "both subscribers are subscribed"

start=$SECONDS
"$PUB" --endpoint="$PUBLISH" --source=alpha --count=50000 >"$T/p1.out" 2>&1 &
P1=$!
"$PUB" --endpoint="$PUBLISH" --source=beta --count=50000 --size=200 >"$T/p2.out" 2>&1 &
P2=$!
wait "$P1"; r1=$?
wait "$P2"; r2=$?
ok $((r1 + r2)) "two publishers sent 50,000 events each without drops"
diag "$(cat "$T/p1.out") / $(cat "$T/p2.out")"
wait "$S1"; r1=$?
wait "$S2"; r2=$?
ok $r1 "subscriber 1 got all 100,000 events, in order per source"
diag "$(cat "$T/s1.out" "$T/s1.err")"
ok $r2 "subscriber 2 (topic filters) got all 100,000 events, in order per source"
diag "$(cat "$T/s2.out" "$T/s2.err")"
diag "forwarding took $((SECONDS - start)) s"

# The archive is written at SIGTERM at the latest.
stop_eventd
ok $? "SIGTERM: eventd exits 0"
check "after SIGTERM the archive holds all 100,000 events" -- archive_has 100000 alpha beta
check "alpha: seq 1..50000 exactly once, in order" -- exactly_once alpha 50000
check "beta: seq 1..50000 exactly once, in order" -- exactly_once beta 50000
check "the archived envelope is the published one" -- \
        test "$(psql_cc -c "SELECT envelope->>'source' || ' ' || (envelope->>'seq') || ' ' || topic FROM events WHERE source = 'alpha' AND seq = 777")" = "alpha 777 alpha.test.event"

# --- 2. PostgreSQL restarted in the middle ----------------------------------
start_eventd "$T/eventd.conf" "$T/eventd2.log"
ok $? "eventd restarted"
"$SUB" --endpoint="$SUBSCRIBE" --count=100000 --timeout=90 --ready-file="$T/s3.ready" >"$T/s3.out" 2>"$T/s3.err" &
S3=$!
PIDS+=("$S3")
probe "$T/s3.ready"
"$PUB" --endpoint="$PUBLISH" --source=gamma --count=50000 --rate=20000 >"$T/p3.out" 2>&1 &
P3=$!
"$PUB" --endpoint="$PUBLISH" --source=delta --count=50000 --rate=20000 >"$T/p4.out" 2>&1 &
P4=$!
wait_for 20 archive_some gamma delta
ok $? "archiving has begun"
diag "$(archived gamma delta) rows archived when PostgreSQL goes down"
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
sleep 1
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses='' -c unix_socket_directories='$PG_DIR' -p $PG_PORT -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null
ok $? "PostgreSQL stopped for a second and started again"
diag "$(archived gamma delta) rows archived when it is back"
wait "$P3"; r1=$?
wait "$P4"; r2=$?
ok $((r1 + r2)) "publishers sent 2 x 50,000 events without drops"
wait "$S3"
ok $? "the subscriber got all 100,000 meanwhile"
diag "$(cat "$T/s3.out" "$T/s3.err")"
wait_for 60 archive_has 100000 gamma delta
ok $? "the archive caught up: 100,000 events"
check "gamma: exactly once, in order" -- exactly_once gamma 50000
check "delta: exactly once, in order" -- exactly_once delta 50000
stop_eventd
ok $? "SIGTERM: exit 0"
grep -q "Lost the database connection" "$T/eventd2.log"
ok $? "the outage was logged"
diag "$(grep -i "database\|archive" "$T/eventd2.log" | head -5)"

# --- 3. database unreachable: forwarding goes on ----------------------------
write_conf "$T/nodb.conf" "postgresql:///callcenter?host=$T/nopg&port=1&connect_timeout=1"
start_eventd "$T/nodb.conf" "$T/eventd3.log"
ok $? "eventd starts with an unreachable database"
"$SUB" --endpoint="$SUBSCRIBE" --count=20000 --timeout=30 --ready-file="$T/s4.ready" >"$T/s4.out" 2>"$T/s4.err" &
S4=$!
PIDS+=("$S4")
probe "$T/s4.ready"
"$PUB" --endpoint="$PUBLISH" --source=epsilon --count=20000 >/dev/null 2>&1
wait "$S4"
ok $? "events are forwarded without a database"
diag "$(cat "$T/s4.out")"
sleep 1.2
grep -q "database unreachable" "$T/notify.log"
ok $? "STATUS= says the database is unreachable"
t0=$SECONDS
stop_eventd
ok $? "SIGTERM: exit 0 (after giving the database a chance)"
diag "stopped in $((SECONDS - t0)) s; $(grep -c . "$T/eventd3.log") log lines"

# --- 4. publisher first, hub later ------------------------------------------
"$PUB" --endpoint="$PUBLISH" --source=zeta --count=20000 --flush-timeout=30 >"$T/p5.out" 2>&1 &
P5=$!
sleep 0.5
start_eventd "$T/eventd.conf" "$T/eventd4.log"
ok $? "eventd started after the publisher"
wait "$P5"
ok $? "the publisher delivered its queued events once eventd was up"
diag "$(cat "$T/p5.out")"
wait_for 30 archive_has 20000 zeta
ok $? "all 20,000 arrived at the hub"
check "zeta: exactly once, in order" -- exactly_once zeta 20000

# --- 5. bad configuration, endpoint in use ----------------------------------
printf '[events]\nhwm = lots\n' >"$T/bad.conf"
t0=$SECONDS
timeout 10 "$EVENTD" --config="$T/bad.conf" 2>"$T/bad.err"
rc=$?
ok $((rc == 0 || rc == 124)) "bad value: exits non-zero at once (status $rc)"
test "$(grep -c . "$T/bad.err")" -eq 1 && grep -q "hwm" "$T/bad.err"
ok $? "bad value: one line naming the key"
diag "$(cat "$T/bad.err")"
timeout 10 "$EVENTD" --config="$T/nonexistent.conf" 2>"$T/bad2.err"
rc=$?
ok $((rc == 0 || rc == 124)) "missing config file: exits non-zero (status $rc)"
diag "$(cat "$T/bad2.err")"
timeout 10 "$EVENTD" --config="$T/eventd.conf" 2>"$T/busy.err"
rc=$?
ok $((rc == 0 || rc == 124)) "second eventd on the same endpoints: exits non-zero (status $rc)"
test "$(grep -c . "$T/busy.err")" -eq 1 && grep -q "another process" "$T/busy.err"
ok $? "second eventd: one line saying the endpoint is taken"
diag "$(cat "$T/busy.err")"
eventd_up
ok $? "the first eventd still serves"

# --- 6. invalid messages ---------------------------------------------------
"$RAW" --endpoint="$PUBLISH" "router.call.ringing" "not json" &&
        "$RAW" --endpoint="$PUBLISH" "one frame only" &&
        "$RAW" --endpoint="$PUBLISH" "tasks.task.created" \
                '{"seq":1,"time":"2026-11-22T10:00:00Z","source":"router","host":"h","type":"call.ringing","data":{}}'
ok $? "three invalid messages sent on a raw socket"
"$SUB" --endpoint="$SUBSCRIBE" --count=1000 --timeout=30 --ready-file="$T/s5.ready" >"$T/s5.out" 2>"$T/s5.err" &
S5=$!
PIDS+=("$S5")
probe "$T/s5.ready"
"$PUB" --endpoint="$PUBLISH" --source=eta --count=1000 >/dev/null 2>&1
wait "$S5"
ok $? "the hub keeps serving valid events (and forwarded no invalid one)"
wait_for 5 grep -q "invalid 3" "$T/notify.log"
ok $? "STATUS= counts 3 invalid messages"
diag "$(tail -n 1 "$T/notify.log")"
test "$(grep -c "Dropped invalid event" "$T/eventd4.log")" -eq 3
ok $? "each invalid message was logged once (rate-limited)"
diag "$(grep "Dropped invalid event" "$T/eventd4.log" | tail -n 1)"
stop_eventd
ok $? "SIGTERM: exit 0"
check "eta archived too" -- exactly_once eta 1000

# --- 7. graceful restart under load: no event lost ---------------------------
# At SIGTERM eventd unsubscribes first; publishers then hold their events
# until the next eventd subscribes.
start_eventd "$T/eventd.conf" "$T/eventd8.log"
ok $? "eventd started"
"$PUB" --endpoint="$PUBLISH" --source=iota --count=40000 --rate=20000 >"$T/p8.out" 2>&1 &
P8=$!
wait_for 10 archive_some iota
stop_eventd
ok $? "SIGTERM while a publisher sends: exit 0"
diag "$(archived iota) events archived when it stopped"
start_eventd "$T/eventd.conf" "$T/eventd9.log"
ok $? "eventd started again"
wait "$P8"
ok $? "the publisher lost nothing"
diag "$(cat "$T/p8.out")"
wait_for 30 archive_has 40000 iota
ok $? "all 40,000 archived"
check "iota: exactly once, in order" -- exactly_once iota 40000
stop_eventd
ok $? "SIGTERM: exit 0"

# --- 8. socket activation (ZMQ_USE_FD) --------------------------------------
if command -v systemd-socket-activate >/dev/null; then
        write_conf "$T/sa.conf" ""
        # systemd-socket-activate holds the port and starts eventd on the
        # first connection, passing the listening socket (LISTEN_FDS=1).
        systemd-socket-activate -l "127.0.0.1:$PORT" "$EVENTD" --config="$T/sa.conf" 2>"$T/eventd7.log" &
        EVENTD_PID=$!
        wait_for 5 tcp_open 127.0.0.1 "$PORT"
        "$SUB" --endpoint="$SUBSCRIBE" --count=1000 --timeout=30 --ready-file="$T/s6.ready" >"$T/s6.out" 2>"$T/s6.err" &
        S6=$!
        PIDS+=("$S6")
        wait_for 10 test -S "$T/run/events-in"
        ok $? "the first subscriber's connection started eventd"
        probe "$T/s6.ready"
        "$PUB" --endpoint="$PUBLISH" --source=theta --count=1000 >/dev/null 2>&1
        wait "$S6"
        ok $? "events reach a subscriber on the socket systemd passed"
        stop_eventd
        ok $? "SIGTERM: exit 0"
else
        ok 0 "# SKIP systemd-socket-activate not installed"
fi

done_testing
