#!/bin/bash
# SPDX-License-Identifier: MIT
#
# callcenter-taskd over D-Bus (org.callcenter.Tasks1), with a throwaway
# PostgreSQL cluster and a private bus:
#
#  - build a tree; ListTasks order (depth-first, creation order, root
#    included); GetTask; the rows in PostgreSQL;
#  - the completion rule, reopen rules, named errors (NoSuchTask,
#    InvalidState, InvalidArgument for empty and 501-byte titles);
#  - DeleteTask of a subtree, and its TaskChanged signals (children first);
#  - SIGKILL while CreateTask calls are in flight: every acknowledged task
#    is there after the restart, and the tree is unchanged;
#  - PostgreSQL stopped: changes fail fast with Unavailable, reads go on;
#    back again: changes work;
#  - SIGTERM exits 0; bus activation through dbus/session/ brings it back;
#  - a ListTasks reply too large for the bus is LimitsExceeded;
#  - the introspection matches dbus/org.callcenter.Tasks1.xml;
#  - callcenterctl task add/done/reopen/rm/tree (text and -o json).
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

TASKD=$top_builddir/daemons/taskd/callcenter-taskd
BENCH=$top_builddir/bench/tasks-bench
CTL=$top_builddir/tools/callcenterctl
pg_bindir >/dev/null || skip_all "PostgreSQL server binaries (initdb) not found"
[ "$(id -u)" -ne 0 ] || id postgres >/dev/null 2>&1 || skip_all "running as root without a postgres user"
command -v dbus-daemon >/dev/null || skip_all "dbus-daemon not found"
command -v busctl >/dev/null || skip_all "busctl not found"
command -v python3 >/dev/null || skip_all "python3 not found"
for f in "$TASKD" "$BENCH" "$CTL"; do
        [ -x "$f" ] || { echo "Bail out! $f not built"; exit 1; }
done

T=$(scratch_dir)
taskd_pid=
cleanup() {
        [ -n "$taskd_pid" ] && kill -9 "$taskd_pid" 2>/dev/null
        # An activated taskd is a child of dbus-daemon: stop it by its pid.
        local p
        p=$(owner_pid 2>/dev/null) && [ -n "$p" ] && kill -9 "$p" 2>/dev/null
        dbus_stop
        pg_stop
        rm -rf "$T"
}
trap cleanup EXIT

pg_start "$T/pg" || { echo "Bail out! cannot start PostgreSQL"; exit 1; }

# The private bus: session-type, with the activation files of the build
# tree, so that a call to org.callcenter.Tasks1 can start taskd.
cat >"$T/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$T/bus</listen>
  <servicedir>$top_builddir/dbus/session</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
# What an activated taskd inherits from dbus-daemon.
export CALLCENTER_DATABASE_URL=$PG_URL
export CALLCENTER_EVENTS=ipc://$T/events-out
export CALLCENTER_EVENTS_PUBLISH=ipc://$T/events-in
dbus-daemon --config-file="$T/bus.conf" --fork --print-pid=3 --print-address=4 \
        3>"$T/dbus.pid" 4>"$T/dbus.address" 2>"$T/dbus.log" || { echo "Bail out! cannot start dbus-daemon"; exit 1; }
DBUS_SESSION_BUS_ADDRESS=$(head -n1 "$T/dbus.address")
DBUS_PID=$(head -n1 "$T/dbus.pid")
export DBUS_SESSION_BUS_ADDRESS DBUS_PID

printf '[tasks]\nfollowup_on_missed=no\n' >"$T/taskd.conf"

# --- helpers ------------------------------------------------------------------
is() { [ "$1" = "$2" ] || { diag "got '$1', expected '$2'"; return 1; }; }
# Calls do not auto-start taskd, except where the test says so: a killed
# taskd must stay dead until the test starts the next one.
B=(busctl --user --auto-start=no)
tcall() {       # tcall METHOD SIGNATURE ARGS...: print the reply; busctl's exit status
        "${B[@]}" call org.callcenter.Tasks1 /org/callcenter/Tasks1 org.callcenter.Tasks1 "$@" 2>"$T/err"
}
# error_name METHOD SIG ARGS...: the D-Bus error name of the call, nothing
# when it succeeds (dbus-send prints "Error org.foo.Bar: message").
error_name() {
        local method=$1 sig=$2 i=0 a; shift 2
        local args=()
        for a in "$@"; do
                case ${sig:$i:1} in
                s) args+=("string:$a") ;;
                t) args+=("uint64:$a") ;;
                esac
                i=$((i + 1))
        done
        dbus-send --session --print-reply --dest=org.callcenter.Tasks1 /org/callcenter/Tasks1 \
                "org.callcenter.Tasks1.$method" "${args[@]}" 2>&1 >/dev/null | sed -n 's/^Error \([^:]*\):.*/\1/p'
}
# expect_error NAME METHOD SIG ARGS...: the call fails with org.callcenter.Error.NAME
expect_error() {
        local name=$1 got
        shift
        got=$(error_name "$@")
        [ "$got" = "org.callcenter.Error.$name" ] || { diag "$1: got '${got:-success}', expected $name"; return 1; }
}
create() {      # create TITLE PARENT [CALL]: print the new id
        tcall CreateTask sts "$1" "$2" "${3:-}" | awk '{print $2}'
}
list_ids() {    # list_ids ROOT: "id:parent:state ..." of ListTasks(ROOT)
        "${B[@]}" --json=short call org.callcenter.Tasks1 /org/callcenter/Tasks1 org.callcenter.Tasks1 \
                ListTasks t "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)["data"][0]
print(" ".join("%d:%d:%s" % (t[0], t[1], t[3]) for t in d))'
}
state_of() {    # state_of ID: the task's state
        "${B[@]}" --json=short call org.callcenter.Tasks1 /org/callcenter/Tasks1 org.callcenter.Tasks1 \
                GetTask t "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"][3])'
}
owner_pid() {
        busctl --user call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                GetConnectionUnixProcessID s org.callcenter.Tasks1 2>/dev/null | awk '{print $2}'
}
start_taskd() {
        "$TASKD" --user --config="$T/taskd.conf" 2>>"$T/taskd.log" &
        taskd_pid=$!
        wait_for 20 tcall ListTasks t 0
}
psql_rows() { psql_cc -c "SELECT id, coalesce(parent, 0), title, state, coalesce(call, '') FROM tasks ORDER BY id" | tr '\n' ' '; }

# --- a tree -------------------------------------------------------------------
check "taskd starts and serves" -- start_taskd

A=$(create "Prepare campaign" 0)
B1=$(create "Write copy" "$A")
C=$(create "Pick list" "$A")
D=$(create "Draft" "$B1")
E=$(create "Call back 42" 0 42)
check "ids are assigned in creation order" -- is "$A $B1 $C $D $E" "1 2 3 4 5"
check "ListTasks(0): depth-first, children in creation order" -- \
        is "$(list_ids 0)" "1:0:open 2:1:open 4:2:open 3:1:open 5:0:open"
check "ListTasks(2): the subtree, root included" -- is "$(list_ids 2)" "2:1:open 4:2:open"
check "ListTasks(leaf) is the leaf" -- is "$(list_ids 4)" "4:2:open"
check "GetTask returns (id, parent, title, state, call)" -- \
        is "$(tcall GetTask t 5)" 'ttsss 5 0 "Call back 42" "open" "42"'
check "the tree is in PostgreSQL" -- is "$(psql_rows)" \
        "1|0|Prepare campaign|open| 2|1|Write copy|open| 3|1|Pick list|open| 4|2|Draft|open| 5|0|Call back 42|open|42 "
check "titles keep UTF-8 and quotes" -- is "$(create "Ligar de volta ao João's \\ cliente" 0)" 6
check "... stored as given" -- is "$(psql_cc -c 'SELECT title FROM tasks WHERE id = 6')" "Ligar de volta ao João's \\ cliente"

# --- the completion rule --------------------------------------------------------
check "a task with open subtasks cannot be completed (InvalidState)" -- expect_error InvalidState CompleteTask t 1
check "... nor its open subtask with an open subtask" -- expect_error InvalidState CompleteTask t 2
check "complete a leaf" -- tcall CompleteTask t 4
check "complete its parent once the subtask is done" -- tcall CompleteTask t 2
check "completing the last subtask leaves the parent open" -- is "$(state_of 1)" open
check "1 still has open subtask 3" -- expect_error InvalidState CompleteTask t 1
check "complete 3" -- tcall CompleteTask t 3
check "1 stays open after its last subtask is done" -- is "$(state_of 1)" open
check "now 1 can be completed" -- tcall CompleteTask t 1
check "completing a done task: InvalidState" -- expect_error InvalidState CompleteTask t 1
check "no subtask under a done task: InvalidState" -- expect_error InvalidState CreateTask sts "late" 1 ""
check "no reopening under a done parent: InvalidState" -- expect_error InvalidState ReopenTask t 4
check "reopen 1" -- tcall ReopenTask t 1
check "reopening an open task: InvalidState" -- expect_error InvalidState ReopenTask t 1
check "states in PostgreSQL" -- is "$(psql_cc -c "SELECT string_agg(id || state, ' ' ORDER BY id) FROM tasks")" \
        "1open 2done 3done 4done 5open 6open"

# --- errors -----------------------------------------------------------------------
check "GetTask of an unknown id: NoSuchTask" -- expect_error NoSuchTask GetTask t 999
check "GetTask(0): NoSuchTask" -- expect_error NoSuchTask GetTask t 0
check "CreateTask under an unknown parent: NoSuchTask" -- expect_error NoSuchTask CreateTask sts x 999 ""
check "CompleteTask of an unknown id: NoSuchTask" -- expect_error NoSuchTask CompleteTask t 999
check "ReopenTask of an unknown id: NoSuchTask" -- expect_error NoSuchTask ReopenTask t 999
check "DeleteTask of an unknown id: NoSuchTask" -- expect_error NoSuchTask DeleteTask t 999
check "ListTasks of an unknown root: NoSuchTask" -- expect_error NoSuchTask ListTasks t 999
check "empty title: InvalidArgument" -- expect_error InvalidArgument CreateTask sts "" 0 ""
long=$(printf 'x%.0s' $(seq 501))
check "501-byte title: InvalidArgument" -- expect_error InvalidArgument CreateTask sts "$long" 0 ""
check "500-byte title is fine" -- is "$(create "${long:1}" 0)" 7
# 499 ASCII bytes and a 2-byte character: 500 characters, 501 bytes.
check "the title limit counts bytes: InvalidArgument" -- expect_error InvalidArgument CreateTask sts "${long:2}é" 0 ""
longcall=$(printf 'c%.0s' $(seq 501))
check "501-byte call id: InvalidArgument" -- expect_error InvalidArgument CreateTask sts "t" 0 "$longcall"
# A long call id with control bytes is echoed escaped and cut, not raw.
badcall=$(python3 -c 'import sys; sys.stdout.write("c\x1b[31m" * 16000)')
out=$(busctl --user call org.callcenter.Tasks1 /org/callcenter/Tasks1 org.callcenter.Tasks1 CreateTask sts t 0 "$badcall" 2>&1)
check "a 96000-byte call id with ESC: a short message (${#out} bytes)" -- test "${#out}" -lt 300
check "... without control bytes, the id's start escaped" -- \
        bash -c '! LC_ALL=C grep -q "[[:cntrl:]]" <<<"$1" && grep -qF "c\x1b[31mc" <<<"$1"' _ "$out"
# D-Bus itself refuses strings that are not UTF-8: the call never leaves busctl.
check "invalid UTF-8 never reaches taskd (the D-Bus library refuses it)" -- \
        bash -c '! busctl --user call org.callcenter.Tasks1 /org/callcenter/Tasks1 org.callcenter.Tasks1 CreateTask sts "$(printf "bad\xff")" 0 "" 2>/dev/null'
check "refusals consumed no id" -- is "$(create "after errors" 0)" 8
check "the error message is human" -- bash -c "busctl --user call org.callcenter.Tasks1 /org/callcenter/Tasks1 org.callcenter.Tasks1 CompleteTask t 999 2>&1 | grep -q 'No task 999'"

# --- delete a subtree, with its signals ------------------------------------------
B2=$(create "Big" 0)
B3=$(create "Big child" "$B2")
B4=$(create "Big grandchild" "$B3")
B5=$(create "Big child 2" "$B2")
dbus-monitor --session "type='signal',interface='org.callcenter.Tasks1'" >"$T/monitor" 2>/dev/null &
mon=$!
sleep 0.3
check "DeleteTask deletes the subtree" -- tcall DeleteTask t "$B2"
sleep 0.3
kill "$mon" 2>/dev/null; wait "$mon" 2>/dev/null
signals=$(awk '/member=TaskChanged/ {getline a; getline b; split(a, x, " "); split(b, y, "\""); printf "%s:%s ", x[2], y[2]}' "$T/monitor")
check "TaskChanged 'deleted' for each task, each before its parent" -- \
        is "$signals" "$B5:deleted $B4:deleted $B3:deleted $B2:deleted "
check "the subtree is gone from ListTasks" -- bash -c "! echo ' $(list_ids 0) ' | grep -q ' $B3:'"
check "... and GetTask says NoSuchTask" -- expect_error NoSuchTask GetTask t "$B4"
check "... and from PostgreSQL" -- is "$(psql_cc -c "SELECT count(*) FROM tasks WHERE id BETWEEN $B2 AND $B5")" 0
check "the rest is intact" -- is "$(list_ids 0)" \
        "1:0:open 2:1:done 4:2:done 3:1:done 5:0:open 6:0:open 7:0:open 8:0:open"
check "deleting it again: NoSuchTask" -- expect_error NoSuchTask DeleteTask t "$B2"

# --- SIGKILL with calls in flight ----------------------------------------------------
before=$(list_ids 0)
timeout 120 "$BENCH" --user --tasks 200000 --depth 3 --inflight 64 --until-error --acked="$T/acked" >"$T/bench.out" 2>&1 &
bench=$!
# Kill early, with plenty still to send: a few thousand acknowledged.
wait_for 20 bash -c "[ \$(wc -l <'$T/acked') -gt 2000 ]"
kill -9 "$taskd_pid"
{ wait "$taskd_pid"; } 2>/dev/null
taskd_pid=
wait "$bench"
acked=$(wc -l <"$T/acked")
diag "acknowledged before SIGKILL: $acked"
check "some creates were acknowledged before the kill" -- test "$acked" -gt 1000
check "the kill hit calls in flight ($(cat "$T/bench.out"))" -- grep -q "until-error: [1-9]" "$T/bench.out"
check "taskd comes back after SIGKILL" -- start_taskd
ids_after=$(list_ids 0)
missing=$(echo "$ids_after" | tr ' ' '\n' | cut -d: -f1 | sort | comm -13 - <(sort "$T/acked") | wc -l)
check "every acknowledged task is there after SIGKILL ($acked acknowledged)" -- is "$missing" 0
check "the tasks before the burst are unchanged" -- is "$(echo "$ids_after" | cut -d' ' -f1-8)" "$before"
check "memory and PostgreSQL agree after the restart" -- \
        is "$(echo "$ids_after" | wc -w)" "$(psql_cc -c 'SELECT count(*) FROM tasks')"
next=$(create "after the kill" 0)
check "new ids continue above every stored id" -- \
        is "$next" "$(( $(psql_cc -c 'SELECT max(id) FROM tasks WHERE id <> '"$next") + 1 ))"
check "the highest id is recorded with the rows" -- is "$(psql_cc -c 'SELECT last FROM task_ids')" "$next"

# --- PostgreSQL away ----------------------------------------------------------------
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
sleep 0.5
t0=$(date +%s%N)
check "with PostgreSQL stopped, CreateTask fails with Unavailable" -- expect_error Unavailable CreateTask sts "no db" 0 ""
t1=$(date +%s%N)
check "... fast (under 2 s: $(( (t1 - t0) / 1000000 )) ms for two calls)" -- test $(( (t1 - t0) / 1000000 )) -lt 2000
check "... CompleteTask too" -- expect_error Unavailable CompleteTask t 1
check "reads still answer from memory" -- is "$(state_of 5)" open
pg_restart_server 2>/dev/null
check "PostgreSQL back: changes work again" -- wait_for 20 tcall CompleteTask t 5
check "... and are stored" -- is "$(psql_cc -c 'SELECT state FROM tasks WHERE id = 5')" done

# --- introspection ------------------------------------------------------------------
"${B[@]}" introspect --xml-interface org.callcenter.Tasks1 /org/callcenter/Tasks1 >"$T/introspect.xml"
check "the interface matches dbus/org.callcenter.Tasks1.xml" -- python3 - "$T/introspect.xml" "$top_srcdir/dbus/org.callcenter.Tasks1.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
def iface(path):
    root = ET.parse(path).getroot()
    i = [x for x in root.iter("interface") if x.get("name") == "org.callcenter.Tasks1"][0]
    out = []
    for m in i:
        if m.tag in ("method", "signal", "property"):
            args = [(a.get("name"), a.get("type"), a.get("direction", "out" if m.tag == "signal" else "in"))
                    for a in m.findall("arg")]
            out.append((m.tag, m.get("name"), args))
    return sorted(out)
a, b = iface(sys.argv[1]), iface(sys.argv[2])
if a != b:
    print("# live:", a); print("# xml: ", b)
    sys.exit(1)
EOF

# --- callcenterctl ----------------------------------------------------------------------
ctl() { "$CTL" --user "$@"; }
P=$(ctl task add "ctl parent")
check "task add prints the new id" -- is "$P" "$((next + 1))"
K=$(ctl task add "ctl child" --parent "$P" --call c-77)
check "task add --parent --call" -- is "$(tcall GetTask t "$K")" "ttsss $K $P \"ctl child\" \"open\" \"c-77\""
check "task tree ID: an indented tree" -- is "$(ctl task tree "$P")" "[ ] $P ctl parent
  [ ] $K ctl child (call c-77)"
check "task done" -- ctl task done "$K"
check "task tree -o json: one object per line" -- is "$(ctl task tree "$P" -o json)" \
        "{\"id\":$P,\"parent\":0,\"title\":\"ctl parent\",\"state\":\"open\",\"call\":\"\"}
{\"id\":$K,\"parent\":$P,\"title\":\"ctl child\",\"state\":\"done\",\"call\":\"c-77\"}"
check "task tree without ID lists every task" -- is "$(ctl task tree | wc -l)" "$(psql_cc -c 'SELECT count(*) FROM tasks')"
check "task tree indents by depth" -- bash -c "$CTL --user task tree 1 | sed -n 3p | grep -q '^    \[x\] 4 Draft$'"
check "task done of the parent" -- ctl task done "$P"
ctl task done "$P" 2>/dev/null; rc=$?
check "task done of a done task: exit 1" -- is "$rc" 1
ctl task done "$P" 2>&1 | grep -q "already done"
ok $? "... with the daemon's message"
check "task reopen" -- ctl task reopen "$P"
ctl task reopen 99999 2>/dev/null; rc=$?
check "task reopen of an unknown id: exit 1" -- is "$rc" 1
ctl task add "" 2>/dev/null; rc=$?
check "task add with an empty title: exit 2" -- is "$rc" 2
ctl task add "$long" 2>/dev/null; rc=$?
check "task add with a 501-byte title: exit 2 (InvalidArgument)" -- is "$rc" 2
ctl task done abc 2>/dev/null; rc=$?
check "task done with a bad id: exit 2" -- is "$rc" 2
ctl task frobnicate 2>/dev/null; rc=$?
check "unknown subcommand: exit 2" -- is "$rc" 2
check "task rm deletes the subtree" -- ctl task rm "$P"
check "... both gone" -- is "$(psql_cc -c "SELECT count(*) FROM tasks WHERE id IN ($P, $K)")" 0

# --- SIGTERM, then bus activation ----------------------------------------------------------
kill -TERM "$taskd_pid"
wait "$taskd_pid"; rc=$?
taskd_pid=
check "SIGTERM: exit status 0" -- is "$rc" 0
check "the bus activates taskd again on the next call" -- \
        is "$(busctl --user call org.callcenter.Tasks1 /org/callcenter/Tasks1 org.callcenter.Tasks1 GetTask t 5)" \
        'ttsss 5 0 "Call back 42" "done" "42"'
check "... a process of its own" -- test -n "$(owner_pid)"
check "... which serves the same tree" -- is "$(list_ids 1)" "1:0:open 2:1:done 4:2:done 3:1:done"
check "the activated taskd takes changes; deleted ids are not reused" -- is "$(create "activated" 0)" "$((K + 1))"

# --- a reply too large for one message -------------------------------------------------------
timeout 120 "$BENCH" --user --tasks 60000 --depth 2 --title-bytes 500 --until-error >"$T/big.out" 2>&1
check "60000 more tasks with 500-byte titles ($(cat "$T/big.out"))" -- grep -q "^until-error: 0 failed" "$T/big.out"
check "ListTasks(0) of over 30 MiB: LimitsExceeded, not a message the bus refuses" -- \
        is "$(error_name ListTasks t 0)" org.freedesktop.DBus.Error.LimitsExceeded
check "taskd is still on the bus" -- is "$(state_of 5)" done
check "smaller subtrees still list" -- is "$(list_ids 1)" "1:0:open 2:1:done 4:2:done 3:1:done"

if grep -q "AddressSanitizer\|runtime error" "$T/taskd.log" "$T/dbus.log"; then
        ok 1 "no sanitizer reports"
        grep -A20 "AddressSanitizer\|runtime error" "$T/taskd.log" "$T/dbus.log" | sed 's/^/# /' | head -40
fi
done_testing
