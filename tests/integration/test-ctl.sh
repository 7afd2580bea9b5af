#!/bin/bash
# callcenterctl: usage errors, --help for every command, the shell, monitor
# (fed by a raw ZeroMQ publisher, then through callcenter-eventd) and events
# (the archive in a throwaway PostgreSQL).
# shellcheck source=tests/integration/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

CTL_BIN=$top_builddir/tools/callcenterctl
ZPUB=$top_builddir/tests/integration/zpub
EVENTD=$top_builddir/daemons/eventd/callcenter-eventd
[ -x "$CTL_BIN" ] || skip_all "callcenterctl is not built"
[ -x "$ZPUB" ] || skip_all "tests/integration/zpub is not built"

tmp=$(scratch_dir)
bg_pids=()
cleanup() {
        local p
        for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
        wait 2>/dev/null
        pg_stop
        rm -rf "$tmp"
}
trap cleanup EXIT

# Hermetic: no configuration or environment of the machine leaks in, and the
# text output is in a known zone.
unset CALLCENTER_EVENTS CALLCENTER_EVENTS_PUBLISH CALLCENTER_DATABASE_URL NO_COLOR
export TZ=UTC
: >"$tmp/empty.conf"
ctl() { timeout 20 "$CTL_BIN" --config="$tmp/empty.conf" "$@"; }
# run ARGS...: callcenterctl with stdout in $OUT, stderr in $ERR, status in $RC.
run() { OUT=$(ctl "$@" 2>"$tmp/err"); RC=$?; ERR=$(cat "$tmp/err"); }
usage_case() {  # usage_case ERE ARGS...: exit 2 and a message matching ERE
        local re=$1; shift
        run "$@"
        is "$RC" 2 "usage error exits 2: callcenterctl $*"
        like "$ERR" "$re" "  and says: $re"
}
have_python() { command -v python3 >/dev/null; }

# --- usage errors --------------------------------------------------------------------
usage_case 'missing command'
usage_case "unknown command 'frobnicate'" frobnicate
usage_case "unknown option '--bogus'" --bogus
usage_case "invalid output format 'yaml'" -o yaml monitor
usage_case "invalid output format 'xml'" --output=xml events --since -1h
usage_case "invalid --color value" --color=sometimes monitor
usage_case "'--config' needs an argument" --config
usage_case 'events: --since TIME is required' events
usage_case "events: option '--since' needs an argument" events --since
usage_case "events: invalid --since 'yesterdayish'" events --since yesterdayish
usage_case "events: invalid --until '2026-13-45T00:00:00Z'" events --since -1h --until 2026-13-45T00:00:00Z
usage_case 'events: --until .* is before --since' events --since -1h --until -2h
usage_case "events: unexpected argument 'extra'" events --since -1h extra
usage_case "events: unknown option '-x'" events -x
usage_case "monitor: invalid --count '0'" monitor --count 0
usage_case "monitor: invalid --count 'many'" monitor -n many
usage_case 'monitor: empty TOPIC' monitor ''
usage_case "shell: unexpected argument 'now'" shell now
usage_case "unknown command 'nosuch'" help nosuch
like "$ERR" "Try 'callcenterctl --help'" "usage errors point to --help"

# --- help ------------------------------------------------------------------------------
run --help
is "$RC" 0 "--help exits 0"
like "$OUT" '^Usage: callcenterctl \[OPTIONS\] COMMAND' "--help shows the usage line"
like "$OUT" '^ +--user ' "--help lists --user"
like "$OUT" '^ +-o, --output=FORMAT' "--help lists -o/--output"
# Every command of the list, including those added later, has a working --help.
mapfile -t commands < <(sed -n '/^Commands:/,/^$/p' <<<"$OUT" | grep -E '^  [a-z]' | awk '{print $1}')
ok $(( ${#commands[@]} >= 4 ? 0 : 1 )) "--help lists the commands (${commands[*]})"
for c in monitor events shell help; do
        [[ " ${commands[*]} " == *" $c "* ]]; ok $? "  including $c"
done
for c in "${commands[@]}"; do
        run "$c" --help
        is "$RC" 0 "$c --help exits 0"
        like "$OUT" "^Usage: callcenterctl \\[OPTIONS\\] $c( |\$)" "  and shows its usage line"
        help_out=$OUT
        run help "$c"
        is "$OUT" "$help_out" "  help $c says the same"
done
run --version
is "$RC" 0 "--version exits 0"
like "$OUT" '^callcenterctl [0-9]+\.[0-9]+' "--version prints the version"

# --- shell -----------------------------------------------------------------------------
shell_in() { printf '%b' "$1" | timeout 20 "$CTL_BIN" --config="$tmp/empty.conf" shell 2>"$tmp/err"; }
OUT=$(shell_in 'help\nquit\n'); RC=$?
is "$RC" 0 "shell: help, quit: exits 0"
like "$OUT" '^  monitor ' "shell: help lists the commands"
like "$OUT" '^  quit ' "shell: help lists quit"
if grep -q '(callcenter)' <<<"$OUT"; then ok 1 "shell: no prompt when stdin is not a terminal"; else ok 0 "shell: no prompt when stdin is not a terminal"; fi
OUT=$(shell_in 'quit\nhelp\n')
is "$OUT" "" "shell: nothing runs after quit"
OUT=$(shell_in 'help events'); RC=$?
is "$RC" 0 "shell: end of input without newline or quit exits 0"
like "$OUT" '^Usage: events --since' "shell: the last line without newline still runs"
OUT=$(shell_in '\n   \n# a comment\nnosuch\nevents\n? monitor\nevents --since \x27unterminated\nexit\n'); RC=$?
ERR=$(cat "$tmp/err")
is "$RC" 0 "shell: errors do not end the shell"
like "$ERR" "unknown command 'nosuch'" "shell: unknown command reported"
like "$ERR" "Try 'help'" "shell: hint names the shell's help"
like "$ERR" 'events: --since TIME is required' "shell: a command's usage error reported"
like "$ERR" 'unterminated quote' "shell: unterminated quote reported"
like "$OUT" '^Usage: monitor ' "shell: ? is help, and later lines still run"
printf 'help monitor\nquit\n' >"$tmp/cmds"
OUT=$(timeout 20 "$CTL_BIN" --config="$tmp/empty.conf" shell <"$tmp/cmds"); RC=$?
is "$RC" 0 "shell: reads commands from a regular file"
like "$OUT" '^Usage: monitor ' "  and runs them"
if command -v script >/dev/null; then
        # script(1) gives the shell a terminal: now the prompt must show.
        OUT=$(printf 'quit\n' | timeout 20 script -qec "$CTL_BIN --config=$tmp/empty.conf shell" /dev/null 2>&1)
        like "$OUT" '\(callcenter\) ' "shell: prompt '(callcenter) ' on a terminal"
else
        skip "script(1) not installed: no terminal to show the prompt on"
fi

# --- monitor, fed by a raw publisher ------------------------------------------------------
ENV_RING='{"seq":1,"time":"2026-11-22T10:00:00.123456Z","source":"router","host":"cc1","type":"call.ringing","data":{"call":"1","operator":"A"}}'
ENV_DONE='{"seq":7,"time":"2026-11-22T10:00:01Z","source":"tasks","host":"cc1","type":"task.done","data":{"id":5}}'
LINE_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} [a-z._-]+ \{.*\}$'

# An ipc:// socket in our scratch dir: a TCP port picked as free could be
# taken by a test running in parallel before we bind it.
"$ZPUB" --bind "ipc://$tmp/direct" 120 router.call.ringing "$ENV_RING" tasks.task.done "$ENV_DONE" \
        bad.topic 'not an envelope' &
zpub_pid=$!
bg_pids+=("$zpub_pid")
export CALLCENTER_EVENTS=ipc://$tmp/direct

run monitor -n 4
is "$RC" 0 "monitor -n 4 exits 0 after 4 events"
is "$(wc -l <<<"$OUT")" 4 "  printed 4 lines"
bad=$(grep -Evc "$LINE_RE" <<<"$OUT")
is "$bad" 0 "  every line is 'TIME TOPIC DATA'"
like "$OUT" '^2026-11-22 10:00:00\.123 router\.call\.ringing \{"call":"1","operator":"A"\}$' "  router line exact (TZ=UTC)"
like "$OUT" '^2026-11-22 10:00:01\.000 tasks\.task\.done \{"id":5\}$' "  tasks line exact"
like "$ERR" "malformed event on topic 'bad.topic'" "  a malformed event is reported on stderr and skipped"

OUT=$(TZ=UTC-9 timeout 20 "$CTL_BIN" --config="$tmp/empty.conf" monitor -n 1 router 2>/dev/null)
like "$OUT" '^2026-11-22 19:00:00\.123 router\.call\.ringing ' "monitor prints local time (TZ=UTC-9)"

run monitor -n 5 router
is "$RC" 0 "monitor router: exits 0"
is "$(grep -c '^.* router\.call\.ringing ' <<<"$OUT")" 5 "  only topics starting with 'router'"

run monitor -n 2 tasks.task.done router.call.ringing
is "$(wc -l <<<"$OUT")" 2 "monitor with two topic prefixes"

run monitor -n 2 -o json tasks
is "$RC" 0 "monitor -o json exits 0"
if have_python; then
        py_out=$(python3 -c '
import json, sys
for line in sys.stdin:
    o = json.loads(line)
    print(",".join(o.keys()), o["topic"], o["seq"], json.dumps(o["data"], separators=(",", ":")))
' <<<"$OUT" 2>&1)
        is "$(head -n1 <<<"$py_out")" 'topic,seq,time,source,host,type,data tasks.task.done 7 {"id":5}' \
                "  one envelope per line, topic first, fields in envelope order"
else
        like "$OUT" '^\{"topic":"tasks\.task\.done","seq":7,' "  one envelope per line with its topic"
fi

run --color=always monitor -n 1 router
like "$OUT" $'\e\\[36mrouter\\.call\\.ringing\e\\[0m' "--color=always colours the topic by its verb"
run --color=always -o json monitor -n 1 router
if grep -q $'\e' <<<"$OUT"; then ok 1 "  but never JSON"; else ok 0 "  but never JSON"; fi
run monitor -n 1 router
if grep -q $'\e' <<<"$OUT"; then ok 1 "  nor a pipe by default"; else ok 0 "  nor a pipe by default"; fi

timeout 20 "$CTL_BIN" --config="$tmp/empty.conf" monitor 2>/dev/null | head -n 1 >/dev/null
is "${PIPESTATUS[0]}" 0 "monitor exits 0 when its reader goes away (EPIPE)"

for sig in TERM INT; do
        # set -m: a background job of a non-interactive shell has SIGINT
        # ignored; as its own job it gets SIGINT like a foreground program.
        rc=$(
                set -m
                rm -f "$tmp/mon.out"    # the last round's output must not count
                "$CTL_BIN" --config="$tmp/empty.conf" monitor >"$tmp/mon.out" 2>/dev/null &
                p=$!
                wait_for 10 test -s "$tmp/mon.out"
                kill -"$sig" "$p"
                wait "$p"
                echo $?
        )
        is "$rc" 0 "monitor exits 0 on SIG$sig"
done

kill "$zpub_pid" 2>/dev/null
wait "$zpub_pid" 2>/dev/null

CALLCENTER_EVENTS=bogus://nowhere run monitor -n 1
is "$RC" 1 "monitor with a bad endpoint exits 1"
like "$ERR" 'cannot subscribe to bogus://nowhere' "  and says so"
unset CALLCENTER_EVENTS

# --- events, from a throwaway PostgreSQL --------------------------------------------------
schema=$top_srcdir/sql/001-events.sql
if ! pg_bindir >/dev/null; then
        skip "PostgreSQL server not installed: events --since not tested"
elif [ ! -f "$schema" ]; then
        skip "sql/001-events.sql missing: events --since not tested"
elif ! pg_start "$tmp/pg" >"$tmp/pg.log" 2>&1; then
        sed 's/^/# /' "$tmp/pg.log"
        ok 1 "throwaway PostgreSQL starts"
else
        export CALLCENTER_DATABASE_URL=$PG_URL

        run events --since -1h
        is "$RC" 1 "events on a database without the archive exits 1"
        like "$ERR" 'no event archive' "  and says the table is missing"

        CALLCENTER_DATABASE_URL="postgresql:///callcenter?host=$tmp/nowhere&port=1" run events --since -1h
        is "$RC" 1 "events with an unreachable database exits 1"
        like "$ERR" 'cannot connect to the database' "  and says so"

        psql_cc -f "$schema" >/dev/null
        ok $? "sql/001-events.sql applies"
        # id order is not time order on purpose (id 3 was published earlier
        # by a slower clock): events lists by id.
        psql_cc <<'EOF'
INSERT INTO events (topic, source, host, seq, time, type, envelope) VALUES
 ('router.call.ringing', 'router', 'cc1', 1, '2020-01-01T10:00:00.123456Z', 'call.ringing',
  '{"seq":1,"time":"2020-01-01T10:00:00.123456Z","source":"router","host":"cc1","type":"call.ringing","data":{"call":"1","operator":"A"}}'),
 ('router.call.answered', 'router', 'cc1', 2, '2020-01-01T10:00:05Z', 'call.answered',
  '{"seq":2,"time":"2020-01-01T10:00:05Z","source":"router","host":"cc1","type":"call.answered","data":{"call":"1","operator":"A"}}'),
 ('tasks.task.created', 'tasks', 'cc2', 9, '2020-01-01T09:59:59Z', 'task.created',
  '{"seq":9,"time":"2020-01-01T09:59:59Z","source":"tasks","host":"cc2","type":"task.created","data":{"id":1,"parent":0,"title":"Call back","call":"1"}}'),
 ('router.call.missed', 'router', 'cc1', 3, '2019-12-31T00:00:00Z', 'call.missed',
  '{"seq":3,"time":"2019-12-31T00:00:00Z","source":"router","host":"cc1","type":"call.missed","data":{"call":"0"}}'),
 ('routerx.call.finished', 'routerx', 'cc1', 4, '2020-01-01T10:00:06Z', 'call.finished',
  '{"seq":4,"time":"2020-01-01T10:00:06Z","source":"routerx","host":"cc1","type":"call.finished","data":{}}');
INSERT INTO events (topic, source, host, seq, time, type, envelope)
 SELECT 'router.call.finished', 'router', 'cc1', 5, now() - interval '5 min', 'call.finished',
  json_build_object('seq', 5, 'time', to_char((now() - interval '5 min') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                    'source', 'router', 'host', 'cc1', 'type', 'call.finished',
                    'data', json_build_object('call', '2', 'operator', 'B'));
EOF
        ok $? "archive rows inserted"

        day='--since 2020-01-01T00:00:00Z --until 2020-01-02T00:00:00Z'
        # shellcheck disable=SC2086
        run events $day
        is "$RC" 0 "events --since/--until exits 0"
        is "$(awk '{print $3}' <<<"$OUT" | paste -sd' ')" \
                "router.call.ringing router.call.answered tasks.task.created routerx.call.finished" \
                "  the day's events, in id order"
        like "$OUT" '^2020-01-01 10:00:00\.123 router\.call\.ringing \{"call":"1","operator":"A"\}$' "  text line exact"

        # shellcheck disable=SC2086
        run events $day --topic router
        is "$(awk '{print $3}' <<<"$OUT" | paste -sd' ')" "router.call.ringing router.call.answered routerx.call.finished" \
                "--topic router is a plain prefix"
        # shellcheck disable=SC2086
        run events $day --topic router.call.
        is "$(awk '{print $3}' <<<"$OUT" | paste -sd' ')" "router.call.ringing router.call.answered" "--topic router.call."
        # shellcheck disable=SC2086
        run events $day --topic 'router_call%'
        is "$OUT" "" "--topic has no LIKE wildcards"

        run events --since 2020-01-01T10:00:00.123456Z --until 2020-01-01T10:00:05Z
        is "$(awk '{print $3}' <<<"$OUT" | paste -sd' ')" "router.call.ringing router.call.answered" \
                "--since and --until are inclusive, to the microsecond"
        run events --since 2020-01-01T11:00:04+01:00 --topic router.
        is "$(awk '{print $3}' <<<"$OUT" | paste -sd' ')" "router.call.answered router.call.finished" \
                "--since with a UTC offset"
        run events --since -10min
        is "$(awk '{print $3}' <<<"$OUT" | paste -sd' ')" "router.call.finished" "--since -10min (relative)"
        run events --since 2000-01-01T00:00:00Z --until 2000-01-02T00:00:00Z
        is "$RC:$OUT" "0:" "an empty range prints nothing and exits 0"

        # shellcheck disable=SC2086
        run events $day -o json
        is "$RC" 0 "events -o json exits 0"
        if have_python; then
                py_out=$(python3 -c '
import json, sys
for line in sys.stdin:
    o = json.loads(line)
    print(",".join(o.keys()), o["topic"], o["seq"], o["host"])
' <<<"$OUT" 2>&1)
                is "$py_out" "topic,seq,time,source,host,type,data router.call.ringing 1 cc1
topic,seq,time,source,host,type,data router.call.answered 2 cc1
topic,seq,time,source,host,type,data tasks.task.created 9 cc2
topic,seq,time,source,host,type,data routerx.call.finished 4 cc1" "  one envelope per line plus topic, in id order"
        else
                like "$OUT" '^\{"topic":"router\.call\.ringing","seq":1,"time":"2020-01-01T10:00:00\.123456Z",' "  envelope plus topic"
        fi

        OUT=$(shell_in "events $day -o json\nevents $day\n")
        is "$(head -n4 <<<"$OUT" | grep -c '^{"topic":')" 4 "shell: events -o json gives JSON"
        is "$(tail -n4 <<<"$OUT" | grep -Ec "$LINE_RE")" 4 "shell: -o json lasted one command only"

        psql_cc -c "INSERT INTO events (topic, source, host, seq, time, type, envelope)
                SELECT 'bulk.x.y', 'bulk', 'h', g, '2021-01-01T00:00:00Z', 'x.y',
                       '{\"seq\":1,\"time\":\"2021-01-01T00:00:00Z\",\"source\":\"bulk\",\"host\":\"h\",\"type\":\"x.y\",\"data\":{}}'
                FROM generate_series(1, 50000) g" >/dev/null
        ctl events --since 2021-01-01T00:00:00Z 2>/dev/null | head -n 1 >/dev/null
        is "${PIPESTATUS[0]}" 0 "events exits 0 when its reader goes away (EPIPE)"
        unset CALLCENTER_DATABASE_URL
fi

# --- monitor and events through callcenter-eventd -------------------------------------------
if [ ! -x "$EVENTD" ]; then
        skip "callcenter-eventd is not built: monitor through the hub not tested"
elif [ -z "${PG_URL:-}" ]; then
        skip "no PostgreSQL: the hub's archive not tested"
else
        "$PG_BIN/createdb" -h "$PG_DIR" -p "$PG_PORT" -U postgres ctl_hub
        hub_url="postgresql:///ctl_hub?host=$PG_DIR&port=$PG_PORT&user=postgres"
        # The subscriber side is TCP, as in production. A port that was
        # free a moment ago may be taken by a parallel test: then eventd
        # exits and we try another.
        hub_ready=1
        for _ in 1 2 3 4 5; do
                hub_port=$(free_port)
                printf '[database]\nurl=%s\n[events]\npublish=ipc://%s/events-in\nsubscribe=tcp://127.0.0.1:%s\n' \
                        "$hub_url" "$tmp" "$hub_port" >"$tmp/hub.conf"
                "$EVENTD" --config="$tmp/hub.conf" >"$tmp/eventd.log" 2>&1 &
                eventd_pid=$!
                bg_pids+=("$eventd_pid")
                # 0: serving; 1: not yet; 2: exited (port taken?).
                hub_state() { kill -0 "$eventd_pid" 2>/dev/null || return 2; tcp_open 127.0.0.1 "$hub_port"; }
                t=$((SECONDS + 20))
                while hub_state; [ $? -eq 1 ] && [ "$SECONDS" -lt "$t" ]; do sleep 0.05; done
                hub_state && { hub_ready=0; break; }
                kill "$eventd_pid" 2>/dev/null
        done
        ok "$hub_ready" "callcenter-eventd serves subscribers on port $hub_port"

        now=$(date -u +%Y-%m-%dT%H:%M:%S.000000Z)
        env_now='{"seq":1,"time":"'$now'","source":"ctltest","host":"cc1","type":"call.ringing","data":{"call":"42"}}'
        "$ZPUB" "ipc://$tmp/events-in" 60 ctltest.call.ringing "$env_now" &
        hubpub_pid=$!
        bg_pids+=("$hubpub_pid")

        CALLCENTER_EVENTS=tcp://127.0.0.1:$hub_port run monitor -n 1 ctltest
        is "$RC" 0 "monitor through the hub exits 0"
        like "$OUT" '^[0-9-]+ [0-9:.]+ ctltest\.call\.ringing \{"call":"42"\}$' "  and shows the published event"

        archived() { [ -n "$(CALLCENTER_DATABASE_URL=$hub_url ctl events --since -5min --topic ctltest 2>/dev/null)" ]; }
        wait_for 20 archived
        ok $? "events --since -5min finds the event in the hub's archive"
        kill "$hubpub_pid" 2>/dev/null
        kill -TERM "$eventd_pid" 2>/dev/null
        wait "$eventd_pid"
        is "$?" 0 "callcenter-eventd stops cleanly"
        [ "$tap_failed" -eq 0 ] || sed 's/^/# eventd: /' "$tmp/eventd.log" | tail -n 20
fi

done_testing
