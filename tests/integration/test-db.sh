#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The database link (libshared/db.c) against a throwaway PostgreSQL cluster,
# through tests/integration/db-driver (one scenario per run; it prints
# PASS/FAIL lines that become TAP here, and key=value figures):
#
#  - migrations: compiled sql/*.sql recorded once, by several daemons
#    starting together; a failing migration rolls back, is logged with its
#    file name and retried until it succeeds;
#  - 50,000 rows through COPY, VALUES and parameterised jobs while the
#    server is stopped and started again: every row exactly once, the loop
#    never blocked;
#  - a job killed on the wire runs again; a database that is not there at
#    start, a bad address, a server that never answers (connect_timeout);
#  - the bounded buffer (-ENOBUFS), SQL errors (-EIO, the queue goes on);
#  - jobs submitted after sd_event_loop() returned, flushed by a drain.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

DRIVER=$top_builddir/tests/integration/db-driver
pg_bindir >/dev/null || skip_all "PostgreSQL server binaries (initdb) not found"
[ "$(id -u)" -ne 0 ] || id postgres >/dev/null 2>&1 || skip_all "running as root without a postgres user"
[ -x "$DRIVER" ] || { echo "Bail out! $DRIVER not built"; exit 1; }

T=$(scratch_dir)
bg_pids=()
cleanup() {
        local p
        for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
        pg_stop
        rm -rf "$T"
}
trap cleanup EXIT

pg_start "$T/pg" || { echo "Bail out! cannot start PostgreSQL"; exit 1; }

db_url() { echo "postgresql:///$1?host=$PG_DIR&port=$PG_PORT&user=postgres"; }
db_create() { "$PG_BIN/createdb" -h "$PG_DIR" -p "$PG_PORT" -U postgres "$1"; }
sql() {         # sql DB QUERY: one value per line, unaligned
        "$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 "$(db_url "$1")" -c "$2" 2>/dev/null
}
pg_down() { pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null; }
pg_up() { pg_restart_server 2>/dev/null; }

# report NAME STATUS: the driver's PASS/FAIL lines become TAP, its figures diagnostics.
report() {
        local name=$1 rc=$2 line
        while IFS= read -r line; do
                case $line in
                "PASS "*) ok 0 "$name: ${line#PASS }" ;;
                "FAIL "*) ok 1 "$name: ${line#FAIL }" ;;
                "#"*) echo "# $name: ${line#\# }" ;;
                *=*) diag "$name: $line" ;;
                esac
        done <"$T/$name.out"
        ok "$rc" "$name: driver exited with status 0 (got $rc)"
        [ "$rc" -eq 0 ] || sed "s/^/# $name stderr: /" "$T/$name.err" | tail -n 20
}
drive() {       # drive NAME MODE URL [ARGS]: run in the foreground and report
        local name=$1 rc; shift
        "$DRIVER" "$@" >"$T/$name.out" 2>"$T/$name.err"; rc=$?
        report "$name" "$rc"
}
drive_bg() {    # drive_bg NAME MODE URL [ARGS]: start; collect with collect NAME
        local name=$1; shift
        "$DRIVER" "$@" >"$T/$name.out" 2>"$T/$name.err" &
        eval "pid_$name=\$!"
        bg_pids+=("$!")
}
collect() {
        local name=$1 pid rc
        eval "pid=\$pid_$name"
        wait "$pid"; rc=$?
        report "$name" "$rc"
}
value() { sed -n "s/^$2=//p" "$T/$1.out" | tail -n 1; }
count_lines() { grep -c -- "$2" "$T/$1.err"; }   # count_lines NAME PATTERN (stderr)
alive() { kill -0 "$1" 2>/dev/null; }

# --- build-aux/embed-sql.sh -------------------------------------------------------------
EMBED=$top_srcdir/build-aux/embed-sql.sh
mkdir -p "$T/sql-empty" "$T/sql-bad" "$T/sql-dup" "$T/sql-ok"
check "embed-sql: an empty folder gives an empty, terminated list" -- \
        sh -c '"$1" "$2" "$3" && grep -q "{ .name = NULL }" "$3" && ! grep -q "\.name = \"" "$3"' _ \
        "$EMBED" "$T/sql-empty" "$T/empty.c"
echo "SELECT 1;" >"$T/sql-bad/Events.sql"
check "embed-sql: a badly named file is refused with its name" -- \
        sh -c '! "$1" "$2" "$3" 2>"$3.err" && grep -q "Events.sql" "$3.err"' _ "$EMBED" "$T/sql-bad" "$T/bad.c"
echo "SELECT 1;" >"$T/sql-dup/001-a.sql"; echo "SELECT 2;" >"$T/sql-dup/001-b.sql"
check "embed-sql: two migrations with one number are refused" -- \
        sh -c '! "$1" "$2" "$3" 2>"$3.err" && grep -q "number 001" "$3.err"' _ "$EMBED" "$T/sql-dup" "$T/dup.c"
printf 'SELECT 1;\n' >"$T/sql-ok/010-b.sql"; printf 'SELECT 2;\n' >"$T/sql-ok/002-a.sql"
"$EMBED" "$T/sql-ok" "$T/ok.c"; touch -d '2000-01-01' "$T/ok.c"; "$EMBED" "$T/sql-ok" "$T/ok.c"
check "embed-sql: file-name order, output left alone when unchanged" -- \
        sh -c 'grep -o "name = \"[^\"]*\"" "$1" | tr "\n" " " | grep -qx "name = \"002-a\" name = \"010-b\" " && test "$(stat -c %Y "$1")" -lt 1000000000' _ "$T/ok.c"

# --- migrations compiled from sql/ ------------------------------------------------------
expected=$(for f in "$top_srcdir"/sql/*.sql; do [ -e "$f" ] && basename "$f" .sql; done | LC_ALL=C sort | tr '\n' ' ')
expected=${expected% }
n_expected=$(for f in "$top_srcdir"/sql/*.sql; do [ -e "$f" ] && echo; done | wc -l)
diag "compiled migrations: ${expected:-(none)}"

db_create mig
for i in 1 2 3; do drive_bg "migrate$i" migrate "$(db_url mig)"; done
for i in 1 2 3; do
        collect "migrate$i"
        check "migrate$i: sees every migration recorded" -- test "$(value "migrate$i" versions)" = "$expected"
done
check "three daemons starting together recorded each migration once ($n_expected rows)" -- \
        test "$(sql mig "SELECT count(*) FROM schema_migrations")" -eq "$n_expected"
before=$(sql mig "SELECT string_agg(version || '@' || applied_at, ',' ORDER BY version) FROM schema_migrations")
drive migrate4 migrate "$(db_url mig)"
check "a restart applies nothing again (applied_at unchanged)" -- \
        test "$(sql mig "SELECT string_agg(version || '@' || applied_at, ',' ORDER BY version) FROM schema_migrations")" = "$before"

# The machinery with migrations of the driver's own (the compiled set may be small).
db_create migt
for i in 1 2 3 4; do drive_bg "migtest$i" migrate-test "$(db_url migt)"; done
for i in 1 2 3 4; do collect "migtest$i"; done
check "four concurrent links: versions t001-a t002-b" -- test "$(value migtest1 versions)" = "t001-a t002-b"
check "four concurrent links: each migration ran once" -- \
        test "$(sql migt "SELECT (SELECT count(*) FROM mig_a) || '/' || (SELECT count(*) FROM schema_migrations)")" = "1/2"
check "migration text reaches the server byte for byte" -- \
        test "$(sql migt "SELECT x FROM mig_b")" = "dollar ' \" \\ ??= quoted"

# A failing migration: logged with its file and the server's words, rolled
# back entirely, retried with backoff until the cause is fixed.
db_create migf
drive_bg migfail migrate-fail "$(db_url migf)" --seconds 20 --reconnect-max-ms 300
check "failing migration logged with file name and server message" -- \
        wait_for 10 grep -q 'migration sql/t002-gate.sql failed.*relation "mig_gate" does not exist' "$T/migfail.err"
check "the failed attempt left nothing behind (one transaction)" -- \
        test "$(sql migf "SELECT to_regclass('schema_migrations') IS NULL AND to_regclass('mig_ok') IS NULL")" = t
sleep 0.7
check "the daemon keeps running while migrations fail" -- alive "$pid_migfail"
sql migf "CREATE TABLE mig_gate (x int)" >/dev/null
collect migfail
check "after the fix: both migrations recorded" -- \
        test "$(sql migf "SELECT string_agg(version, ' ' ORDER BY version) FROM schema_migrations")" = "t001-ok t002-gate"
check "the queued job ran once" -- test "$(sql migf "SELECT count(*) FROM mig_job")" = 1
n=$(count_lines migfail 'migration sql/t002-gate.sql failed')
check "retries were logged but rate-limited ($n warnings)" -- test "$n" -ge 1 -a "$n" -le 3
check "the recovery is one notice" -- test "$(count_lines migfail 'Database connection established')" = 1

# --- 50,000 rows while the server restarts -----------------------------------------------
db_create load
rows_ge() { [ "$(sql load "SELECT count(*) >= $1 FROM load_t")" = t ]; }
drive_bg load load "$(db_url load)" --rows 50000 --expect-restart --reconnect-max-ms 400
wait_for 20 rows_ge 5000
at_stop=$(sql load "SELECT count(*) FROM load_t")
pg_down
sleep 0.6
check "the driver keeps running while the server is down" -- alive "$pid_load"
sleep 0.9
pg_up
collect load
check "the server was stopped in the middle of the writes ($at_stop of 50000 rows in)" -- \
        test "${at_stop:-0}" -gt 0 -a "${at_stop:-0}" -lt 50000
check "every row exactly once: count, distinct ids, 1..50000" -- \
        test "$(sql load "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || min(id) || ' ' || max(id) FROM load_t")" = "50000 50000 1 50000"
check "payloads intact through COPY escaping, SQL quoting and parameters" -- \
        test "$(sql load "SELECT count(*) FROM load_t WHERE payload = 'p' || id || E'\\t\\\\x\\n''\"\\u00e9'")" = 50000
check "all three write paths were used" -- \
        test "$(sql load "SELECT count(DISTINCT via) FROM load_t")" = 3
check "one warning for the loss" -- test "$(count_lines load 'Lost the database connection')" = 1
check "one notice for the return" -- test "$(count_lines load 'Database connection restored')" = 1
waiting=$(sed -n 's/.*restored after .*; \([0-9]*\) jobs.*/\1/p' "$T/load.err" | head -n 1)
check "writes were buffered during the outage ($waiting jobs waiting at the return)" -- test "${waiting:-0}" -gt 0
diag "load: $(value load submitted_jobs) jobs, outage $(value load outage_ms) ms as the link saw it, drain after the last submit $(value load drain_ms) ms, worst loop lateness $(value load max_late_ms) ms"

# --- a job interrupted on the wire ----------------------------------------------------
db_create infl
sql infl "CREATE TABLE inflight_t (id int PRIMARY KEY)" >/dev/null
sleeping() {
        [ "$(sql infl "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'db-driver' AND query LIKE '%pg_sleep%' AND wait_event = 'PgSleep'")" = 1 ]
}
CALLCENTER_LOG_LEVEL=debug drive_bg inflight inflight "$(db_url infl)" --seconds 20
check "the job is on the wire (sleeping in the server)" -- wait_for 10 sleeping
sql infl "CREATE TABLE inflight_go ()" >/dev/null
sql infl "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'db-driver'" >/dev/null
collect inflight
check "the interrupted job ran again, to the end" -- test "$(sql infl "SELECT string_agg(id::text, ',' ORDER BY id) FROM inflight_t")" = "1,2"
check "the link noted the re-run" -- grep -q "interrupted; it runs again" "$T/inflight.err"

# --- no server at start ---------------------------------------------------------------
db_create waitdb
pg_down
drive_bg wait wait "$(db_url waitdb)" --rows 100 --seconds 20 --reconnect-max-ms 500
sleep 2
check "with the server away the driver keeps running" -- alive "$pid_wait"
check "one clear line says the database is unreachable" -- test "$(count_lines wait 'Cannot connect to the database')" = 1
pg_up
collect wait
check "the 100 buffered inserts arrived once the server appeared" -- test "$(sql waitdb "SELECT count(*) FROM wait_t")" = 100
check "one notice when it connected" -- test "$(count_lines wait 'Database connection established')" = 1
diag "wait: connected $(value wait connected_after_ms) ms after start"

# A bad address (a socket folder with no server): one warning, retries at debug.
CALLCENTER_LOG_LEVEL=debug drive down down "postgresql:///x?host=$T/nowhere&port=5432" --seconds 1.5
check "bad address: exactly one warning" -- test "$(count_lines down 'Cannot connect to the database')" = 1
n=$(count_lines down 'Database connection failed')
check "bad address: retried with backoff ($n attempts in 1.5 s)" -- test "$n" -ge 4 -a "$n" -le 12
check "drain timeout: the lost jobs are logged" -- grep -q "not written within 300ms" "$T/down.err"

# A server that accepts and never answers: connect_timeout ends each attempt.
drive timeout timeout unused --seconds 2 --connect-timeout-ms 200 --reconnect-max-ms 200
check "silent server: one warning naming the timeout" -- \
        test "$(count_lines timeout 'no answer within 200ms (connect_timeout)')" = 1

# --- bounded buffer, SQL errors ---------------------------------------------------------
db_create ovf
drive overflow overflow "$(db_url ovf)"
check "overflow: exactly the accepted rows are stored" -- \
        test "$(sql ovf "SELECT count(*) FROM ovf_t")" = "$(value overflow accepted)"
n=$(count_lines overflow 'Database write buffer full')
check "overflow: warnings rate-limited ($n lines for $(value overflow refused) refusals)" -- test "$n" -ge 1 -a "$n" -le 3

db_create err
drive sqlerror sqlerror "$(db_url err)"
check "SQL errors are logged with the server's message" -- \
        grep -q 'job failed, not retried: relation "no_such_table" does not exist (SQLSTATE 42P01)' "$T/sqlerror.err"

# --- a flush after sd_event_exit() -----------------------------------------------------
# A daemon's SIGTERM handler ends the loop; main() then writes what it still
# buffers through db_link_exec() + db_link_drain() on the finished loop.
db_create exitdb
drive exitflush exitflush "$(db_url exitdb)"
check "exit flush: the rows submitted after the loop ended are in the database" -- \
        test "$(sql exitdb "SELECT string_agg(id || ':' || what, ',' ORDER BY id) FROM exit_t")" = \
        "1:after the loop,2:after the loop, params,3:second flush"
check "exit flush: no job was reported lost" -- sh -c '! grep -q "not written within" "$1"' _ "$T/exitflush.err"

done_testing
