#!/bin/bash
# shellcheck shell=bash
#
# Hostile clients of callcenter-eventd must not blow up its memory:
#
#  1. one subscriber connection sends 20,000, then 100,000 distinct
#     subscriptions of 1 KB (longer than any topic), then 100,000 of 200
#     bytes: eventd ends such a connection (ZMQ_MAXMSGSIZE, and its bound of
#     subscriptions per connection), its peak RSS stays under the bound
#     below, and an honest subscriber is still served;
#  2. a publisher sends one 512 MiB frame: eventd drops that connection
#     without reading the frame; its peak RSS stays under the bound, it goes
#     on serving.
#
# The bound is $EVENTS_RSS_BOUND_MIB, by default 64 MiB (256 MiB under the
# sanitizers, whose shadow memory and quarantine are part of the RSS). Short
# subscriptions (200 bytes) are reported but not yet bounded (see below). The
# peak (VmHWM) is reset before each step. The spammer is
# tests/integration/zmtp-spam.py, a raw ZMTP peer that keeps nothing.

. "${top_srcdir:?}/tests/integration/lib.sh"

B=${top_builddir:?}
EVENTD=${EVENTD:-$B/daemons/eventd/callcenter-eventd}
PUB=$B/tests/integration/event-pub
SUB=$B/tests/integration/event-sub
SPAM=${top_srcdir:?}/tests/integration/zmtp-spam.py
need_built "$EVENTD" "$PUB" "$SUB"
need_cmds python3

unset CALLCENTER_DATABASE_URL CALLCENTER_EVENTS CALLCENTER_EVENTS_PUBLISH
if grep -q '^SANITIZER_CFLAGS = -fsanitize' "$B/Makefile" 2>/dev/null; then
        BOUND=${EVENTS_RSS_BOUND_MIB:-256}
        # ASan keeps freed memory in quarantine (256 MB by default), which
        # would count as the hub's: keep that small.
        export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16
        # Short subscriptions arrive faster than an ASan-slowed hub ends the
        # connection: 56,064 of 200 bytes got in once (452 MiB with ASan's
        # shadow), and handling them starved the honest subscriber. The
        # plain build runs that step; here 1,000 of them still cross the
        # bound of subscriptions per connection, and the skip says so.
        STEPS="20000:1024 100000:1024 1000:200"
else
        BOUND=${EVENTS_RSS_BOUND_MIB:-64}
fi
PER_CONNECTION=256      # SUBS_PER_CONNECTION_MAX

T=$(scratch_dir)
EVENTD_PID=
trap 'kill_pids "$EVENTD_PID" "${S:-}" "${notify_pid:-}"; test_cleanup "$T"' EXIT

PORT=$(free_port)
PUBLISH=ipc://$T/run/events-in
SUBSCRIBE=tcp://127.0.0.1:$PORT
# No archive: this is about the hub's own memory.
cat >"$T/eventd.conf" <<EOF2
[database]
url =
[events]
publish = $PUBLISH
subscribe = $SUBSCRIBE
EOF2
notify_listen "$T/notify" "$T/notify.log"

eventd_up() { tcp_open 127.0.0.1 "$PORT" && [ -S "$T/run/events-in" ]; }
mib() { awk -v k="$1:" '$1 == k { print int($2 / 1024) }' "/proc/$EVENTD_PID/status"; }
under_bound() { [ "$(mib VmHWM)" -lt "$BOUND" ]; }
refused() { grep -aq "subscriptions refused $1\b" "$T/notify.log"; }
# probe FILE: publish probe events until the subscriber wrote FILE.
probe() {
        timeout 20 "$PUB" --endpoint="$PUBLISH" --source=probe --interval=20 --until-exists="$1" >/dev/null
}
# honest NAME COUNT: a subscriber gets COUNT events of a publisher, in order.
honest() {
        "$SUB" --endpoint="$SUBSCRIBE" --count="$2" --timeout=60 --ready-file="$T/$1.ready" \
                --topic="$1." --topic=probe. >"$T/$1.out" 2>&1 &
        S=$!
        probe "$T/$1.ready" &&
                "$PUB" --endpoint="$PUBLISH" --source="$1" --count="$2" >/dev/null 2>&1 &&
                wait "$S"
}

NOTIFY_SOCKET=$T/notify "$EVENTD" --config="$T/eventd.conf" 2>"$T/eventd.log" &
EVENTD_PID=$!
wait_for 30 eventd_up || bail_out "eventd did not start" "$T/eventd.log"
ok 0 "eventd started"
diag "RSS at start: $(mib VmRSS) MiB; bound: $BOUND MiB"

# reset_peak: VmHWM starts again from the current RSS.
reset_peak() { echo 5 >"/proc/$EVENTD_PID/clear_refs"; }
step=0
[ -n "${STEPS:-}" ] && skip "100000 subscriptions of 200 bytes: 1000 under the sanitizers (see above)"
for spam in ${STEPS:-20000:1024 100000:1024 100000:200}; do
        n=${spam%:*} len=${spam#*:}
        step=$((step + 1))
        if [ "$(mib VmRSS)" -ge "$BOUND" ]; then
                # Do not push a hub that already holds too much any further.
                ok 1 "$n subscriptions of $len bytes: not tried, RSS is $(mib VmRSS) MiB already"
                continue
        fi
        reset_peak
        out=$(python3 "$SPAM" subscriptions "$SUBSCRIBE" "$n" "$len" 5)
        ok $? "a connection sent $n subscriptions of $len bytes: $out"
        sleep 1
        if [ "$len" -ge 256 ]; then
                under_bound
                ok $? "peak RSS $(mib VmHWM) MiB < $BOUND MiB after $n subscriptions of $len bytes"
        else
                # Not bounded yet: subscriptions shorter than ZMQ_MAXMSGSIZE
                # pile up inside libzmq (XPUB manual mode keeps what it
                # read ahead) until the connection ends, and how many get
                # in first depends on the machine's load (31 to 132 MiB
                # seen). Reported, not checked, until eventd stops reading
                # such a connection before libzmq does.
                diag "peak RSS $(mib VmHWM) MiB after $n subscriptions of $len bytes (not yet bounded)"
        fi
        [ "$out" != "${out%closed=yes}" ]
        ok $? "eventd ended that connection"
        honest "alpha$step" 5000
        ok $? "an honest subscriber is still served"
        diag "$(cat "$T/alpha$step.out")"
done
diag "RSS after the spammers left: $(mib VmRSS) MiB"
grep -aq "subscriptions refused [1-9]" "$T/notify.log"
ok $? "STATUS= counts the refused subscriptions"
diag "$(grep -a "subscriptions refused" "$T/notify.log" | tail -n 1)"
grep -q "Refused a subscription" "$T/eventd.log"
ok $? "the refusals were logged"
diag "$(grep "Refused a subscription" "$T/eventd.log" | head -n 1)"

# --- 2. one 512 MiB frame ------------------------------------------------------
reset_peak
out=$(python3 "$SPAM" frame "$PUBLISH" $((512 * 1024 * 1024)))
diag "spammer: $out"
sleep 1
kill -0 "$EVENTD_PID"
ok $? "eventd is still running"
under_bound
ok $? "peak RSS $(mib VmHWM) MiB < $BOUND MiB after a 512 MiB frame"
honest beta 5000
ok $? "publishers and subscribers are still served"
diag "$(cat "$T/beta.out")"

kill -TERM "$EVENTD_PID"; wait "$EVENTD_PID"
ok $? "SIGTERM: exit 0"
EVENTD_PID=

done_testing
