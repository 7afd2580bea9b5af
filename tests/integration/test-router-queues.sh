#!/bin/bash
# SPDX-License-Identifier: MIT
#
# callcenter-routerd's queue statistics and run-time queue membership across
# restarts, with a throwaway PostgreSQL cluster and a private bus:
#
#  - GetStats after a graceful restart and after SIGKILL equals GetStats
#    before (the counters are rebuilt from router_call_records, an answered
#    call still live included), not zero;
#  - SetOperatorQueues (D-Bus and "callcenterctl operator queues"): routing
#    follows it at once, it is in router_operators (text[], queues_set), it
#    survives SIGKILL and wins over [router] queues there, a SIGHUP reload
#    that changes [router] queues keeps it, and an empty list is every queue
#    (also the queues a reload adds);
#  - errors: NoSuchOperator, InvalidArgument naming the queue; the CLI's
#    exit statuses (1 refused, 2 bad usage) and -o json;
#  - an upgrade from a 004 database: space-separated queues become text[],
#    and the statistics of its records are there at the first start.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

ROUTERD=$top_builddir/daemons/routerd/callcenter-routerd
CTL=$top_builddir/tools/callcenterctl
WIRE=$top_srcdir/tests/integration/router-wire.py
need_pg
need_cmds dbus-daemon busctl gdbus python3
need_built "$ROUTERD" "$CTL"

T=$(scratch_dir)
routerd_pid=
# shellcheck disable=SC2086 # unquoted: none when empty
cleanup() { test_cleanup "$T" $routerd_pid; }
trap cleanup EXIT

pg_start "$T/pg" || bail_out "cannot start PostgreSQL"
dbus_start "$T" || bail_out "cannot start dbus-daemon"
PORT=$(free_port)
R=(org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1)
export CALLCENTER_DATABASE_URL=$PG_URL
unset CALLCENTER_ROUTER

write_conf() {  # write_conf QUEUES
        printf '%s\n' '[database]' 'reconnect_max=300ms' '[events]' 'publish=' '[router]' \
                "listen=127.0.0.1:$PORT" 'operators=A B C' "queues=$1" 'ring_timeout=5min' \
                'service_level=10s' >"$T/routerd.conf"
}
start_routerd() { routerd_start "$T/routerd.conf" "$T/routerd.log"; }
kill_routerd() {        # SIGKILL after the store's flush window
        sleep 0.3
        kill_pids "$routerd_pid"
        routerd_pid=
}
call() { busctl --user call "${R[@]}" "$@" 2>&1; }
gd() { gdbus call --session --dest org.callcenter.Router1 --object-path /org/callcenter/Router1 \
        --method "org.callcenter.Router1.$1" "${@:2}" 2>&1; }
has() { [[ "$1" == *"$2"* ]] || { echo "# got: $1"; return 1; }; }
wire() { python3 "$WIRE" "$PORT" send "$@"; }
cc() { CALLCENTER_ROUTER=127.0.0.1:$PORT "$CTL" --user "$@"; }
# GetStats as sorted "queue.key=value" lines ("total.key" at the top level).
stats() {
        busctl --user --json=short call "${R[@]}" GetStats | python3 -c '
import json, sys
d = json.load(sys.stdin)["data"][0]
for k, v in sorted(d.items()):
    if k == "queues":
        for q, f in sorted(v["data"].items()):
            for k2, v2 in sorted(f.items()):
                print("%s.%s=%s" % (q, k2, v2["data"]))
    else:
        print("total.%s=%s" % (k, v["data"]))'
}
stat() { stats | sed -n "s/^$1=//p"; }       # stat QUEUE.KEY
stat_is() { [ "$(stat "$1")" = "$2" ]; }      # stat_is QUEUE.KEY VALUE
# The message lines of TCP commands, e.g. tcp call:x:sales answer:A hangup:x
tcp() {
        local w c id q
        for w in "$@"; do
                IFS=: read -r c id q <<<"$w"
                if [ -n "$q" ]; then
                        printf '{"command":"%s","id":"%s","queue":"%s"}\n' "$c" "$id" "$q"
                else
                        printf '{"command":"%s","id":"%s"}\n' "$c" "$id"
                fi
        done | wire | wire_messages
}

write_conf "sales:A support:B"
start_routerd

# --- statistics across restarts ------------------------------------------------------
# A is in sales, B in support, C (in no named queue) serves default. Calls:
# s1 answered by A, s2 rejected by A then missed while ringing, d1 answered
# by C and still talking at the restart, d2 missed while queued (C busy),
# u1 in support answered by B after a reject.
tcp call:s1:sales answer:A hangup:s1 call:s2:sales reject:A hangup:s2 \
        call:d1 answer:C call:d2 hangup:d2 call:u1:support reject:B answer:B hangup:u1 >"$T/m1"
check "the calls were routed" -- grep -q "Call d1 answered by operator C" "$T/m1"
stats >"$T/stats-before"
check "before: sales offered 2 (received), answered 1, missed 1, rejected 1" -- \
        same "2 1 1 1" "$(stat sales.received) $(stat sales.answered) $(stat sales.abandoned) $(stat sales.rejected)"
check "before: default has the live answered call" -- \
        same "2 1 1 1" "$(stat default.received) $(stat default.answered) $(stat default.abandoned) $(stat default.talking)"
check "before: the totals are not zero" -- same "5 3" "$(stat total.received) $(stat total.answered)"

check "SIGTERM exits 0" -- routerd_stop
start_routerd
stats >"$T/stats-term"
check "after SIGTERM: GetStats is what it was" -- same "$(cat "$T/stats-before")" "$(cat "$T/stats-term")"

tcp call:s3:sales answer:A >/dev/null
stats >"$T/stats-before2"
kill_routerd
start_routerd
stats >"$T/stats-kill"
check "after SIGKILL: GetStats is what it was (s3 live and answered)" -- \
        same "$(cat "$T/stats-before2")" "$(cat "$T/stats-kill")"
check "the average wait and service level come back, not reset" -- \
        test "$(stat sales.answered)" = 2 -a "$(stat sales.service_level)" != 1
tcp hangup:s3 hangup:d1 >/dev/null

# --- SetOperatorQueues --------------------------------------------------------------
check "support has B alone at first" -- same "1" "$(stat support.members)"
check "SetOperatorQueues C [support]" -- same "" "$(call SetOperatorQueues sas C 1 support)"
check "support has B and C" -- same "2" "$(stat support.members)"
check "default lost C" -- same "0" "$(stat default.members)"
call SetOperatorStatus ss B paused >/dev/null
check "a support call rings C while B is paused" -- \
        same "Call v1 received
Call v1 ringing for operator C" "$(tcp call:v1:support)"
tcp answer:C hangup:v1 >/dev/null
sleep 0.3
check "router_operators: C's queues as text[], set at run time" -- \
        same "{support}|t|text[]" "$(psql_cc -c "SELECT queues, queues_set, pg_typeof(queues) FROM router_operators WHERE id = 'C'")"

kill_routerd
start_routerd
check "after SIGKILL: C still serves support, not default" -- \
        same "2 0" "$(stat support.members) $(stat default.members)"
check "after SIGKILL: routing honours it" -- \
        same "Call v2 received
Call v2 ringing for operator C" "$(tcp call:v2:support)"
tcp hangup:v2 >/dev/null

# A reload whose [router] queues place C in sales: the run-time setting wins.
write_conf "sales:A,C support:B extra:A"
kill -HUP "$routerd_pid"
wait_for 10 stat_is extra.members 1
check "after a reload: the new queue exists" -- same "1" "$(stat extra.members)"
check "after a reload: C still in support only (sales has A alone)" -- \
        same "1 2" "$(stat sales.members) $(stat support.members)"

# An empty list: every queue, and the queues a reload adds.
check "callcenterctl operator queues A (every queue)" -- same "Operator A serves every queue" "$(cc operator queues A)"
check "A is in default, sales, support and extra" -- \
        same "1 1 3 1" "$(stat default.members) $(stat sales.members) $(stat support.members) $(stat extra.members)"
call SetOperatorStatus ss C paused >/dev/null
check "a default call rings A now" -- same "Call v3 received
Call v3 ringing for operator A" "$(tcp call:v3)"
tcp hangup:v3 >/dev/null
write_conf "sales:A,C support:B extra:A more:B"
kill -HUP "$routerd_pid"
wait_for 10 stat_is more.members 2
check "a reload adding a queue: A (every queue) joins it" -- same "2" "$(stat more.members)"
sleep 0.3
check "router_operators: A's empty list, set" -- \
        same "{}|t" "$(psql_cc -c "SELECT queues, queues_set FROM router_operators WHERE id = 'A'")"
kill_routerd
start_routerd
check "after SIGKILL: A in every queue, C in support" -- \
        same "1 1 3 1 2" "$(stat default.members) $(stat sales.members) $(stat support.members) $(stat extra.members) $(stat more.members)"

# --- errors and the command line ----------------------------------------------------
check "unknown operator: NoSuchOperator" -- has "$(gd SetOperatorQueues Z "['sales']")" org.callcenter.Error.NoSuchOperator
r=$(gd SetOperatorQueues A "['sales', 'nope']")
check "unknown queue: InvalidArgument" -- has "$r" org.callcenter.Error.InvalidArgument
check "  naming it" -- has "$r" '"nope"'
check "a queue twice: InvalidArgument" -- has "$(gd SetOperatorQueues A "['sales', 'sales']")" \
        org.callcenter.Error.InvalidArgument
check "nothing changed" -- same "1 2" "$(stat sales.members) $(stat more.members)"
check "-o json" -- same '{"operator":"B","queues":["support","more"]}' "$(cc -o json operator queues B support more)"
check "text output" -- same "Operator B serves sales" "$(cc operator queues B sales)"
cc operator queues Z sales >/dev/null 2>&1
check "CLI: unknown operator exits 1" -- test $? -eq 1
cc operator queues A nope >"$T/out" 2>&1
check "CLI: unknown queue exits 1" -- test $? -eq 1
check "  and names it" -- grep -q nope "$T/out"
cc operator queues >/dev/null 2>&1
check "CLI: no operator exits 2" -- test $? -eq 2
cc operator queues A 'a b' >/dev/null 2>&1
check "CLI: a bad queue name exits 2" -- test $? -eq 2
cc operator queues A sales sales >/dev/null 2>&1
check "CLI: a queue twice exits 2" -- test $? -eq 2
check "removing an operator drops its setting" -- \
        same "" "$(call RemoveOperator s B; call AddOperator s B)"
sleep 0.3
check "  (stored with its configured queues)" -- same "{support,more}|f" \
        "$(psql_cc -c "SELECT queues, queues_set FROM router_operators WHERE id = 'B'")"
check "SIGTERM exits 0" -- routerd_stop

# --- an upgrade from 004 --------------------------------------------------------------
"$PG_BIN/createdb" -h "$PG_DIR" -p "$PG_PORT" -U postgres upgrade
up_url=${PG_URL/callcenter?/upgrade?}
for f in 001-events 002-tasks 003-router 004-router-live; do
        "$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 "$up_url" -f "$top_srcdir/sql/$f.sql" >/dev/null
done
"$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 "$up_url" >/dev/null <<'SQL'
CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
INSERT INTO schema_migrations (version) VALUES ('001-events'), ('002-tasks'), ('003-router'), ('004-router-live');
INSERT INTO router_operators (id, position, status, queues) VALUES
        ('A', 1, 'available', 'sales'), ('D', 2, 'paused', 'sales  support'), ('E', 3, 'available', '');
INSERT INTO router_call_records (seq, call, queue, state, operator, arrived, answered, ended, outcome, waited, rejects)
        VALUES (1, 'r1', 'sales', 'finished', 'A', now() - interval '1 h', now() - interval '1 h' + interval '4 s',
                now() - interval '50 min', 'finished', interval '4 s', 1),
               (2, 'r2', 'sales', 'finished', 'A', now() - interval '1 h', now() - interval '1 h' + interval '30 s',
                now() - interval '50 min', 'finished', interval '30 s', 0),
               (3, 'r3', 'sales', 'missed', NULL, now() - interval '1 h', NULL, now() - interval '59 min',
                'missed', interval '60 s', 0);
SQL
write_conf "sales:A support:B"
CALLCENTER_DATABASE_URL=$up_url start_routerd
up_sql() { "$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 "$up_url" -c "$1"; }
check "upgraded: queues are text[], split on blanks" -- \
        same "A={sales}|false D={sales,support}|false E={default}|false" \
        "$(up_sql "SELECT string_agg(id || '=' || queues::text || '|' || queues_set, ' ' ORDER BY position) FROM router_operators WHERE id IN ('A', 'D', 'E')")"
check "upgraded: D (added at run time) serves sales and support" -- \
        same "2 2" "$(stat sales.members) $(stat support.members)"
check "upgraded: the records' statistics: 3 offered, 2 answered, 1 within 10 s, 1 missed" -- \
        same "3 2 1 1 1" "$(stat sales.received) $(stat sales.answered) $(stat sales.answered_within) $(stat sales.abandoned) $(stat sales.rejected)"
check "upgraded: average wait 17 s, service level 1/3" -- \
        same "17000000 0.333" "$(stat sales.average_wait_usec) $(printf '%.3f' "$(stat sales.service_level)")"
check "SIGTERM exits 0 after the upgrade" -- routerd_stop
check "no errors in the log" -- bash -c '! grep -q "^<[0-3]>" "$1"' _ "$T/routerd.log"
grep "^<[0-4]>" "$T/routerd.log" | sed 's/^/# log: /' | head -20
done_testing
