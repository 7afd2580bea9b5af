#!/bin/bash
# SPDX-License-Identifier: MIT
#
# callcenter-routerd with a long queue: memory and replies stay bounded.
#
#  - [router] max_queued caps the waiting calls: a call that would wait
#    beyond it is refused with "queue_full" on the wire and
#    org.callcenter.Error.Unavailable ("... queue is full ...") on D-Bus; a
#    call whose queue has an available operator still rings; a hangup
#    makes room again;
#  - "status" lists the first 100 calls with the totals ("calls_total",
#    "queue_length") and a line saying how many are not listed, instead of
#    every call (100,000 queued calls made a 12 MB reply that held the loop
#    for a second); {"command":"status","offset":N,"limit":N} pages through
#    them; a limit above 1000 is taken as 1000;
#  - a reload raises the cap.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

router_test_begin
conf() {
        printf '%s\n' '[database]' 'url=' '[events]' 'publish=' '[router]' "listen=127.0.0.1:$PORT" \
                'operators=A B V' 'queues=vip:V' "max_queued=$1" >"$T/routerd.conf"
}
conf 300
routerd_start "$T/routerd.conf" "$T/routerd.log"
R=(org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1)
wire() { python3 "$WIRE" "$PORT" send --timeout 30 "$@"; }
# field JSON-LINE PYTHON-EXPRESSION-OF-r
field() { python3 -c 'import json, sys; r = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

# 400 calls in one write: q0 and q1 ring A and B, 300 wait, 98 are refused.
for i in $(seq 0 399); do printf '{"command":"call","id":"q%d"}\n' "$i"; done | wire >"$T/calls.out"
is "$(grep -c '"ok": *true' "$T/calls.out")" 302 "302 calls taken (2 ringing, 300 waiting)"
is "$(grep -c '"error": *"queue_full"' "$T/calls.out")" 98 "98 refused with queue_full"
is "$(sed -n 303p "$T/calls.out" | wire_messages)" "error=queue_full
Call q302 refused: the queue is full, try again later" "the first refusal names the call"

# D-Bus: the same cap, as Unavailable.
out=$(busctl --user call "${R[@]}" PlaceCall s d1 2>&1)
like "$out" 'queue is full' "D-Bus PlaceCall: the message says the queue is full"
if command -v gdbus >/dev/null; then
        out=$(gdbus call --session --dest org.callcenter.Router1 --object-path /org/callcenter/Router1 \
                --method org.callcenter.Router1.PlaceCall d1 2>&1)
        like "$out" 'org\.callcenter\.Error\.Unavailable' "D-Bus PlaceCall: org.callcenter.Error.Unavailable"
else
        skip "gdbus not found"
fi
# A call whose queue has an available operator rings, full or not.
is "$(busctl --user call "${R[@]}" PlaceCallInQueue ss v1 vip 2>&1)" 'ss "ringing" "V"' \
        "a call that rings at once is taken while the queue is full"
is "$(busctl --user get-property "${R[@]}" QueueLength 2>&1)" "u 300" "QueueLength stays at the cap"

# A hangup makes room for one.
out=$(printf '%s\n' '{"command":"hangup","id":"q2"}' '{"command":"call","id":"n1"}' \
        '{"command":"call","id":"n2"}' | wire | wire_messages)
is "$out" "Call q2 missed
Call n1 received
Call n1 waiting in queue
error=queue_full
Call n2 refused: the queue is full, try again later" "a hangup makes room for exactly one"

# status: the first 100 calls, the totals, and a line for the rest.
st=$(printf '{"command":"status"}\n' | wire)
is "$(field "$st" 'len(r["calls"])')" 100 "status lists 100 calls by default"
is "$(field "$st" 'r["calls_total"], r["queue_length"], r["offset"], r["limit"]')" "(303, 300, 0, 100)" \
        "status: calls_total, queue_length, offset, limit"
is "$(field "$st" 'r["calls"][0]["call"], r["calls"][99]["call"]')" "('q3', 'q102')" \
        "status: the oldest waiting calls first"
is "$(field "$st" 'r["messages"][-1]')" \
        '203 more calls not listed (status with "offset" and "limit" pages through them)' \
        "status: a line says how many are not listed"
is "$(field "$st" 'sum(m.endswith("waiting in queue") for m in r["messages"])')" 100 \
        "status: 100 'waiting in queue' lines"
ok "$([ ${#st} -lt 30000 ]; echo $?)" "status: the reply is bounded (${#st} bytes)"

# Pages: the last waiting calls, then the ringing ones.
st=$(printf '{"command":"status","offset":290,"limit":100}\n' | wire)
is "$(field "$st" '" ".join(c["call"] for c in r["calls"])')" \
        "q293 q294 q295 q296 q297 q298 q299 q300 q301 n1 q0 q1 v1" "status offset=290: the last page"
ok "$(field "$st" 'any(m.endswith("not listed") for m in r["messages"])' | grep -qx False; echo $?)" \
        "status: no 'not listed' line on the last page"
st=$(printf '{"command":"status","limit":5000}\n' | wire)
is "$(field "$st" 'len(r["calls"]), r["limit"]')" "(303, 1000)" "status limit=5000 is taken as 1000"
st=$(printf '{"command":"status","limit":0}\n' | wire)
is "$(field "$st" 'len(r["calls"]), r["calls_total"]')" "(0, 303)" "status limit=0: the totals only"
out=$(printf '{"command":"status","offset":-1}\n' | wire | wire_messages)
is "${out%%$'\n'*}" "error=bad_argument" "status offset=-1: bad_argument"

# A reload that raises the cap lets more in.
conf 1000
kill -HUP "$routerd_pid"
wait_for 10 grep -q 'max_queued 300 -> 1000' "$T/routerd.log"
ok $? "reload: max_queued 300 -> 1000 logged"
out=$(printf '{"command":"call","id":"n2"}\n' | wire | wire_messages)
is "$out" "Call n2 received
Call n2 waiting in queue" "after the reload the call waits"

routerd_stop
is "$?" 0 "SIGTERM exits 0"
done_testing
