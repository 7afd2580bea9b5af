#!/bin/bash
# SPDX-License-Identifier: MIT
#
# callcenter-taskd and the router: [tasks] followup_on_missed = yes turns
# router.call.missed into the task "Call back <call>" linked to the call,
# once per call. Everything goes through callcenter-eventd (the hub), with a
# throwaway PostgreSQL and a private bus:
#
#  - a router.call.missed event (published by tests/integration/zpub,
#    repeatedly, so ZeroMQ's slow joiner cannot lose it) creates exactly one
#    task however often it arrives; another call makes a second one;
#  - other topics ("router.call.missedX", "router.call.answered") and
#    malformed envelopes create nothing;
#  - taskd publishes tasks.task.created (data id, parent, title, call), which
#    eventd archives;
#  - after SIGKILL and restart, or after the follow-up task was deleted, the
#    same event still creates nothing;
#  - followup_on_missed = no: nothing is created;
#  - end to end with callcenter-routerd: PlaceCall then Hangup over D-Bus
#    (a missed call) makes taskd create "Call back <call>".
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

TASKD=$top_builddir/daemons/taskd/callcenter-taskd
EVENTD=$top_builddir/daemons/eventd/callcenter-eventd
ROUTERD=$top_builddir/daemons/routerd/callcenter-routerd
ZPUB=$top_builddir/tests/integration/zpub
need_pg
need_cmds dbus-daemon busctl python3
need_built "$TASKD" "$EVENTD" "$ZPUB"

T=$(scratch_dir)
taskd_pid='' eventd_pid='' routerd_pid=''
# shellcheck disable=SC2086 # unquoted: the empty ones go
cleanup() { test_cleanup "$T" $taskd_pid $routerd_pid $eventd_pid; }
trap cleanup EXIT

pg_start "$T/pg" || bail_out "cannot start PostgreSQL"
dbus_start "$T" || bail_out "cannot start dbus-daemon"
export CALLCENTER_DATABASE_URL=$PG_URL
IN=ipc://$T/events-in
OUT=ipc://$T/events-out
printf '%s\n' '[events]' "publish=$IN" "subscribe=$OUT" '[tasks]' 'followup_on_missed=yes' >"$T/cc.conf"
sed 's/followup_on_missed=yes/followup_on_missed=no/' "$T/cc.conf" >"$T/cc-off.conf"

is() { [ "$1" = "$2" ] || { diag "got '$1', expected '$2'"; return 1; }; }
B=(busctl --user --auto-start=no)
tcall() { "${B[@]}" call org.callcenter.Tasks1 /org/callcenter/Tasks1 org.callcenter.Tasks1 "$@"; }
start_taskd() {         # start_taskd CONFIG
        "$TASKD" --user --config="$1" 2>>"$T/taskd.log" &
        taskd_pid=$!
        wait_for 20 tcall ListTasks t 0
}
kill_taskd() { kill_pids "$taskd_pid"; taskd_pid=; }
# An envelope as routerd publishes it.
missed() {      # missed CALL [SEQ]
        printf '{"seq":%s,"time":"2026-11-22T10:00:00.000001Z","source":"router","host":"test","type":"call.missed","data":{"call":"%s","queue":"default"}}' \
                "${2:-1}" "$1"
}
# publish SECONDS TOPIC BODY ...: through eventd, one copy every 20 ms.
publish() { "$ZPUB" "$IN" "$@"; }
followups() { psql_cc -c "SELECT string_agg(call || '=' || title, ' ' ORDER BY id) FROM tasks WHERE call IS NOT NULL"; }
sql_is() {      # sql_is QUERY EXPECTED: for wait_for (no diagnostics)
        [ "$(psql_cc -c "$1" 2>/dev/null)" = "$2" ]
}
missed_leaves() {       # missed_leaves CALL SEQ N: CALL's missed event for 1 s, then N tasks for CALL
        publish 1 router.call.missed "$(missed "$1" "$2")"
        sleep 0.5
        is "$(psql_cc -c "SELECT count(*) FROM tasks WHERE call = '$1'")" "$3"
}

"$EVENTD" --config="$T/cc.conf" 2>>"$T/eventd.log" &
eventd_pid=$!
check "taskd starts" -- start_taskd "$T/cc.conf"

# --- one task per missed call ------------------------------------------------------
# 1.5 s at 20 ms: ~75 copies of the same event.
publish 1.5 router.call.missed "$(missed c42)"
check "a missed call creates \"Call back <call>\", once, however often the event comes" -- \
        wait_for 10 sql_is "SELECT count(*) FROM tasks WHERE call = 'c42'" 1
sleep 0.3
check "... exactly one task, top level, open, linked to the call" -- \
        is "$(psql_cc -c "SELECT count(*), min(coalesce(parent, 0)), min(state), min(title) FROM tasks WHERE call = 'c42'")" \
        "1|0|open|Call back c42"
id42=$(psql_cc -c "SELECT id FROM tasks WHERE call = 'c42'")
check "GetTask shows it with its call" -- is "$(tcall GetTask t "$id42")" "ttsss $id42 0 \"Call back c42\" \"open\" \"c42\""
check "the follow-up is recorded" -- is "$(psql_cc -c 'SELECT call FROM task_followups')" c42

publish 1 router.call.missed "$(missed c43 2)" router.call.missedX "$(missed x1 3)" \
        router.call.answered "$(missed x2 4)" router.call.missed '{"seq":5,"not":"an envelope"}' \
        router.call.missed "$(missed '' 6)"
wait_for 10 sql_is "SELECT count(*) FROM tasks WHERE call = 'c43'" 1
sleep 0.3
check "another call gets its own task; other topics and bad events none" -- \
        is "$(followups)" "c42=Call back c42 c43=Call back c43"
check "taskd is unharmed by the bad events" -- is "$(tcall GetTask t 2)" 'ttsss 2 0 "Call back c43" "open" "c43"'

# --- events --------------------------------------------------------------------------
check "taskd published tasks.task.created for it, archived by eventd" -- wait_for 10 sql_is \
        "SELECT count(*) FROM events WHERE topic = 'tasks.task.created' AND envelope::jsonb->'data'->>'call' = 'c42'" 1
check "... with data id, parent, title, call" -- is \
        "$(psql_cc -c "SELECT envelope::jsonb->'data' FROM events WHERE topic = 'tasks.task.created' AND envelope::jsonb->'data'->>'call' = 'c42'")" \
        "{\"id\": $id42, \"call\": \"c42\", \"title\": \"Call back c42\", \"parent\": 0}"
check "... source tasks, type task.created" -- is \
        "$(psql_cc -c "SELECT DISTINCT source || ' ' || type FROM events WHERE topic = 'tasks.task.created'")" "tasks task.created"
tcall CompleteTask t "$id42" >/dev/null
tcall ReopenTask t "$id42" >/dev/null
check "done and reopened are published too, in order" -- wait_for 10 sql_is \
        "SELECT string_agg(type, ' ' ORDER BY id) FROM events WHERE source = 'tasks' AND envelope::jsonb->'data'->>'id' = '$id42'" \
        "task.created task.done task.reopened"

# --- restarts and deletes do not bring it back ---------------------------------------------
kill_taskd
check "taskd restarts after SIGKILL" -- start_taskd "$T/cc.conf"
check "after a restart, the same missed call creates nothing" -- missed_leaves c42 7 1
check "delete the follow-up task" -- tcall DeleteTask t "$id42"
check "after its task was deleted, the same missed call creates nothing" -- missed_leaves c42 8 0
check "taskd publishes tasks.task.deleted" -- wait_for 10 sql_is \
        "SELECT count(*) FROM events WHERE topic = 'tasks.task.deleted' AND envelope::jsonb->'data'->>'id' = '$id42'" 1

# --- switched off -----------------------------------------------------------------------------
kill_taskd
check "taskd with followup_on_missed=no" -- start_taskd "$T/cc-off.conf"
check "followup_on_missed=no: a missed call creates nothing" -- missed_leaves c44 9 0
kill_taskd
check "taskd with followup_on_missed=yes again" -- start_taskd "$T/cc.conf"

# --- end to end with routerd -----------------------------------------------------------------
if [ -x "$ROUTERD" ]; then
        PORT=$(( 20000 + RANDOM % 20000 ))
        # routerd keeps no data here: the point is its events.
        printf '%s\n' '[database]' 'url=' '[events]' "publish=$IN" "subscribe=$OUT" \
                '[router]' "listen=127.0.0.1:$PORT" 'operators=A B' >"$T/routerd.conf"
        CALLCENTER_DATABASE_URL='' routerd_start "$T/routerd.conf" "$T/routerd.log"
        R=(org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1)
        check "routerd starts" -- wait_for 10 "${B[@]}" call "${R[@]}" ListOperators
        # routerd's publisher and taskd's subscription need a moment on
        # the hub before the call: ZeroMQ drops what nobody subscribed to.
        sleep 1
        check "PlaceCall e2e-1 rings an operator" -- is "$("${B[@]}" call "${R[@]}" PlaceCall s e2e-1)" 'ss "ringing" "A"'
        check "Hangup before an answer: missed" -- is "$("${B[@]}" call "${R[@]}" Hangup s e2e-1)" 's "missed"'
        check "taskd created \"Call back e2e-1\" from routerd's event" -- wait_for 10 sql_is \
                "SELECT title FROM tasks WHERE call = 'e2e-1'" "Call back e2e-1"
        check "a finished call creates nothing" -- bash -c "
                ${B[*]} call ${R[*]} PlaceCall s e2e-2 >/dev/null &&
                ${B[*]} call ${R[*]} Answer s \$(${B[*]} --json=short call ${R[*]} ListCalls | python3 -c 'import json,sys; print([c[2] for c in json.load(sys.stdin)[\"data\"][0] if c[0] == \"e2e-2\"][0])') >/dev/null &&
                ${B[*]} call ${R[*]} Hangup s e2e-2 | grep -q finished"
        sleep 0.5
        check "... no task for e2e-2" -- is "$(psql_cc -c "SELECT count(*) FROM tasks WHERE call = 'e2e-2'")" 0
        routerd_stop
else
        diag "callcenter-routerd not built: end-to-end part skipped"
        ok 0 "# SKIP routerd not built"
fi

kill -TERM "$taskd_pid"; wait "$taskd_pid"; rc=$?; taskd_pid=
check "SIGTERM: taskd exits 0" -- is "$rc" 0
if grep -q "AddressSanitizer\|runtime error" "$T/taskd.log"; then
        ok 1 "no sanitizer reports"
        grep -A20 "AddressSanitizer\|runtime error" "$T/taskd.log" | sed 's/^/# /' | head -40
fi
done_testing
