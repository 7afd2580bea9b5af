#!/bin/bash
# callcenterctl's router commands against a real callcenter-routerd on a
# private bus, without PostgreSQL ([database] url empty):
#  - the D-Bus commands (call/answer/reject/hangup/operators/calls/status,
#    -o json, exit statuses 1 and 2);
#  - the shell over the TCP wire: the seed's lines, exactly, and a ring
#    timeout's notice printed between two commands;
#  - named queues ([router] queues): a call placed into one over the wire
#    ("queue" in the request), with `call --queue` (PlaceCallInQueue) and in
#    the shell rings only that queue's members; unknown and bad queue names
#    are refused and the connection stays usable.
set -u
: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=lib.sh
. "$top_srcdir/tests/integration/lib.sh"

routerd=$top_builddir/daemons/routerd/callcenter-routerd
ctl=$top_builddir/tools/callcenterctl
[ -x "$routerd" ] || skip_all "callcenter-routerd is not built ($routerd)"
[ -x "$ctl" ] || skip_all "callcenterctl is not built ($ctl)"
command -v dbus-daemon >/dev/null || skip_all "dbus-daemon missing"
command -v busctl >/dev/null || skip_all "busctl missing"

dir=$(scratch_dir)
routerd_pid=
# shellcheck disable=SC2086 # unquoted: none when empty
cleanup() { test_cleanup "$dir" $routerd_pid; }
trap cleanup EXIT
unset CALLCENTER_DATABASE_URL

dbus_start "$dir" || skip_all "cannot start a private dbus-daemon"

# start_routerd RING_TIMEOUT [OPERATORS [QUEUES]]: a fresh routerd
# (operators A B unless given, longest-idle, no named queues unless given).
start_routerd() {
        # routerd takes $CALLCENTER_ROUTER as its listen address: the
        # previous instance's must not leak into this one.
        unset CALLCENTER_ROUTER
        port=$(free_port)
        cat >"$dir/callcenter.conf" <<CONF
[router]
listen = 127.0.0.1:$port
operators = ${2:-A B}
queues = ${3:-}
strategy = longest-idle
ring_timeout = $1
[database]
url =
[events]
publish = ipc://$dir/events-in
subscribe = ipc://$dir/events-out
CONF
        ROUTERD=$routerd routerd_start "$dir/callcenter.conf" "$dir/routerd.log"
        export CALLCENTER_ROUTER=127.0.0.1:$port
}

# expect DESCRIPTION EXPECTED-STATUS EXPECTED-STDOUT -- COMMAND...
expect() {
        local desc=$1 want_rc=$2 want=$3 out rc; shift 3; [ "$1" = -- ] && shift
        out=$("$@" 2>"$dir/stderr"); rc=$?
        if [ "$rc" -eq "$want_rc" ] && [ "$out" = "$want" ]; then
                ok 0 "$desc"
        else
                ok 1 "$desc"
                diag "command: $*"
                diag "exit $rc (want $want_rc); stdout:"; printf '%s\n' "$out" | sed 's/^/#   /'
                diag "want:"; printf '%s\n' "$want" | sed 's/^/#   /'
                sed 's/^/# stderr: /' "$dir/stderr"
        fi
}
cc() { "$ctl" --user "$@"; }

start_routerd 60s

# ---- D-Bus commands ------------------------------------------------------------
expect "call 1 rings A" 0 $'Call 1 received\nCall 1 ringing for operator A' -- cc call 1
expect "call 2 rings B" 0 $'Call 2 received\nCall 2 ringing for operator B' -- cc call 2
expect "call 3 waits" 0 $'Call 3 received\nCall 3 waiting in queue' -- cc call 3
expect "answer A" 0 'Call 1 answered by operator A' -- cc answer A
expect "operators -o json" 0 \
'{"operator":"A","state":"busy","call":"1","status":"available"}
{"operator":"B","state":"ringing","call":"2","status":"available"}' -- cc operators -o json
# ---- bash completion (shell-completion/bash/callcenterctl) ----------------------
# complete_line LINE: what the completion offers for the last word of LINE (empty
# when LINE ends in a blank), one per line, without bash-completion loaded.
complete_line() {
        PATH=$top_builddir/tools:$PATH bash -c '
                . "$1"
                read -ra COMP_WORDS <<<"$2"
                [[ $2 == *" " ]] && COMP_WORDS+=("")
                COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) COMP_LINE=$2 COMP_POINT=${#2}
                _callcenterctl
                printf "%s\n" "${COMPREPLY[@]}"' _ "$top_srcdir/shell-completion/bash/callcenterctl" "$1"
}
check "completion: commands" -- same "answer" "$(complete_line "callcenterctl --user ans")"
check "completion: answer offers the ringing operator" -- same "B" "$(complete_line "callcenterctl --user answer ")"
check "completion: hangup offers the calls" -- same $'3\n2\n1' "$(complete_line "callcenterctl --user hangup ")"
check "completion: operator subcommands" -- same $'add\nrm\nstatus\nqueues' "$(complete_line "callcenterctl --user operator ")"
check "completion: operator status takes an operator" -- same $'A\nB' "$(complete_line "callcenterctl --user operator status ")"
check "completion: then a status" -- same "paused" "$(complete_line "callcenterctl --user operator status A pa")"
check "completion: call's option" -- same "--queue" "$(complete_line "callcenterctl --user call 9 --q")"
check "completion: output formats" -- same "json" "$(complete_line "callcenterctl --user -o j")"
check "completion: nothing from a bus without routerd" -- same "" "$(DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent complete_line "callcenterctl --user hangup ")"

out=$(cc calls -o json)
check "calls -o json: queue order first, D-Bus field names" -- \
        python3 -c 'import json,sys
rows=[json.loads(l) for l in sys.argv[1].splitlines()]
assert [r["call"] for r in rows] == ["3","2","1"], rows
assert [r["state"] for r in rows] == ["queued","ringing","answered"], rows
assert rows[1]["operator"] == "B" and rows[0]["operator"] == ""
assert all(set(r) == {"call","state","operator","waited_usec"} for r in rows)
assert all(isinstance(r["waited_usec"], int) for r in rows)' "$out"
out=$(cc operators)
check "operators: aligned table with a header" -- \
        grep -qE '^OPERATOR +STATE +CALL +STATUS$' <<<"$out"
check "operators: A busy with 1" -- grep -qE '^A +busy +1 +available$' <<<"$out"
out=$(cc calls)
check "calls: table with 3 rows" -- test "$(wc -l <<<"$out")" -eq 4
expect "hangup 1: finished, A takes the queued call 3" 0 \
        $'Call 1 finished and operator A available\nCall 3 ringing for operator A' -- cc hangup 1
expect "hangup 2 while ringing: missed" 0 'Call 2 missed' -- cc hangup 2
expect "reject A: call 3 goes to B" 0 $'Call 3 rejected by operator A\nCall 3 ringing for operator B' -- cc reject A
expect "call -o json" 0 '{"call":"4","state":"ringing","operator":"A"}' -- cc call 4 -o json
expect "answer -o json" 0 '{"operator":"A","call":"4"}' -- cc -o json answer A
expect "hangup -o json" 0 '{"call":"4","outcome":"finished"}' -- cc hangup 4 -o json
expect "hangup 3" 0 'Call 3 missed' -- cc hangup 3
out=$(cc status -o json)
check "status -o json" -- python3 -c 'import json,sys
s=json.loads(sys.argv[1])
assert s["queue_length"] == 0 and s["operators_available"] == 2, s
assert s["strategy"] == "longest-idle" and s["ring_timeout_usec"] == 60000000, s' "$out"
out=$(cc status)
check "status: text" -- grep -qE '^Queue length: +0$' <<<"$out"
out=$(cc stats -o json)
check "stats -o json: GetStats as one object, queues nested" -- python3 -c 'import json,sys
s=json.loads(sys.argv[1])
assert s["received"] == 4 and s["answered"] == 2, s
assert "default" in s["queues"], s' "$out"
out=$(cc stats)
check "stats: text" -- grep -qE '^received: +4$' <<<"$out"
expect "answer by an operator who is not ringing: refused" 1 '' -- cc answer A
check "  with the router's message on stderr" -- test -s "$dir/stderr"
expect "answer by an unknown operator: refused" 1 '' -- cc answer Z
expect "hangup of an unknown call: refused" 1 '' -- cc hangup 99
expect "call without an id: usage" 2 '' -- cc call
expect "call with two ids: usage" 2 '' -- cc call 1 2
expect "id with a blank: usage" 2 '' -- cc call 'a b'
expect "operator add C" 0 'Operator C added' -- cc operator add C
expect "operator status C paused" 0 'Operator C paused' -- cc operator status C paused
expect "operator status with a bad status: usage" 2 '' -- cc operator status C asleep
expect "operator rm C" 0 'Operator C removed' -- cc operator rm C
expect "operator rm C again: refused" 1 '' -- cc operator rm C

# ---- the shell over the TCP wire: the seed dialogue ----------------------------
expect "shell: call/answer/reject/hangup print the seed lines" 0 \
'Call 10 received
Call 10 ringing for operator A
Call 11 received
Call 11 ringing for operator B
Call 12 received
Call 12 waiting in queue
Call 10 answered by operator A
Call 11 rejected by operator B
Call 11 ringing for operator B
Call 10 finished and operator A available
Call 12 ringing for operator A
Call 11 missed
Call 12 missed' -- bash -c 'printf "%s\n" "call 10" "call 11" "call 12" "answer A" "reject B" "hangup 10" "hangup 11" "hangup 12" quit "call 13" | "$0" --user shell' "$ctl"
expect "shell: quit leaves before later lines" 0 '' -- bash -c 'printf "quit\ncall 20\n" | "$0" --user shell' "$ctl"
check "  and call 20 was never placed" -- bash -c '! "$0" --user calls | grep -q "^20 "' "$ctl"
routerd_stop

# ---- a ring timeout's notice arrives between two commands -------------------------
start_routerd 1s
out=$({ echo "call 30"; sleep 2.5; echo "hangup 30"; echo quit; } | "$ctl" --user shell 2>"$dir/stderr")
want='Call 30 received
Call 30 ringing for operator A
Call 30 ignored by operator A
Call 30 ringing for operator B'
check "shell: the ignored notice is printed as it arrives" -- test "$(head -n4 <<<"$out")" = "$want"
check "  and the next command still works" -- test "$(sed -n '$p' <<<"$out")" = "Call 30 missed"
[ "$(head -n4 <<<"$out")" = "$want" ] || { diag "got:"; printf '%s\n' "$out" | sed 's/^/#   /'; }
routerd_stop

# ---- named queues: C serves only "sales", A and B the default queue -------------------
start_routerd 60s 'A B C' 'sales:C'
wire() { python3 "$top_srcdir/tests/integration/router-wire.py" "${CALLCENTER_ROUTER##*:}" send "$@"; }
out=$(printf '%s\n' \
        '{"command":"call","id":"40","queue":"sales"}' \
        '{"command":"call","id":"41","queue":"sales"}' \
        '{"command":"call","id":"42"}' \
        '{"command":"call","id":"43","queue":"nope"}' \
        '{"command":"call","id":"43","queue":""}' \
        '{"command":"call","id":"43","queue":5}' \
        '{"command":"call","id":"43","queue":"a b"}' \
        '{"command":"call","id":"44","queue":null}' \
        '{"command":"call","id":"45","queue":"default"}' \
        '{"command":"status"}' | wire --timeout 5 2>"$dir/stderr" | tee "$dir/queues.json" | wire_messages)
want='Call 40 received
Call 40 ringing for operator C
Call 41 received
Call 41 waiting in queue
Call 42 received
Call 42 ringing for operator A
error=no_such_queue
No such queue nope
error=bad_queue
Bad queue name (1-64 printable ASCII characters, no spaces)
error=bad_queue
Bad queue name (1-64 printable ASCII characters, no spaces)
error=bad_queue
Bad queue name (1-64 printable ASCII characters, no spaces)
Call 44 received
Call 44 ringing for operator B
Call 45 received
Call 45 waiting in queue'
check "wire: a call into \"sales\" rings only C; unknown and bad queues refused, connection usable" -- \
        test "$(head -n 18 <<<"$out")" = "$want"
[ "$(head -n 18 <<<"$out")" = "$want" ] || { diag "got:"; printf '%s\n' "$out" | sed 's/^/#   /'; }
check "wire status: each call's queue; the refused call 43 was never placed" -- python3 -c 'import json,sys
st=json.loads(sys.argv[1].splitlines()[-1])
q={c["call"]: (c["state"], c["operator"], c["queue"]) for c in st["calls"]}
assert q == {"40": ("ringing","C","sales"), "41": ("queued","","sales"), "42": ("ringing","A","default"),
             "44": ("ringing","B","default"), "45": ("queued","","default")}, q' "$(cat "$dir/queues.json")"
# Call 45 waits in the default queue although C is free later: C serves
# only sales. Hanging up 40 frees C, which takes 41 (sales), not 45.
expect "hangup 40: C takes the sales call 41, not the older default call 45" 0 \
        $'Call 40 missed\nCall 41 ringing for operator C' -- cc hangup 40
out=$(cc operators -o json)
check "  C rings 41" -- grep -qx '{"operator":"C","state":"ringing","call":"41","status":"available"}' <<<"$out"
expect "call --queue nope: refused" 1 '' -- cc call 50 --queue nope
check "  with the router's message on stderr" -- grep -q 'No such queue nope' "$dir/stderr"
expect "call --queue '': usage" 2 '' -- cc call 50 --queue ''
expect "call -q without a name: usage" 2 '' -- cc call 50 -q
expect "call 50 -q sales: waits, C is ringing" 0 $'Call 50 received\nCall 50 waiting in queue' -- cc call 50 -q sales
expect "hangup 41: C is free and takes 50" 0 $'Call 41 missed\nCall 50 ringing for operator C' -- cc hangup 41
out=$(cc operators -o json)
check "  C rings 50" -- grep -qx '{"operator":"C","state":"ringing","call":"50","status":"available"}' <<<"$out"
expect "hangup 50: nothing waits in sales, C stays free (45 is not its call)" 0 'Call 50 missed' -- cc hangup 50
expect "call 51 --queue sales rings C" 0 $'Call 51 received\nCall 51 ringing for operator C' -- cc call 51 --queue sales
expect "call --queue -o json: the queue in the object" 0 \
        '{"call":"52","state":"queued","operator":"","queue":"sales"}' -- cc call 52 --queue=sales -o json
expect "shell: call --queue over the wire" 0 \
'Call 53 received
Call 53 waiting in queue
No such queue nope
Call 54 received
Call 54 waiting in queue' -- bash -c 'printf "%s\n" "call 53 --queue sales" "call 54 -q nope" "call 54" quit | "$0" --user shell' "$ctl"
routerd_stop

done_testing
