# shellcheck shell=bash
# Shared by the integration tests, the benchmarks and dev.sh: a throwaway
# PostgreSQL cluster, a private D-Bus bus, TAP output and daemon start/stop.
#
# PostgreSQL refuses to run as root, so as root the cluster belongs to the
# "postgres" user (created by the server package); otherwise to the caller.

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"

# --- TAP --------------------------------------------------------------------
tap_n=0
tap_failed=0
ok() {          # ok CONDITION-EXIT-STATUS DESCRIPTION
        local rc=$1; shift
        tap_n=$((tap_n + 1))
        if [ "$rc" -eq 0 ]; then echo "ok $tap_n - $*"; else echo "not ok $tap_n - $*"; tap_failed=$((tap_failed + 1)); fi
}
check() {       # check DESCRIPTION -- COMMAND...
        local desc=$1; shift; [ "$1" = -- ] && shift
        "$@"; ok $? "$desc"
}
diag() { printf '# %s\n' "$*"; }
same() {        # same EXPECTED ACTUAL, with a diagnostic on mismatch (long values cut)
        [ "$1" = "$2" ] && return 0
        if [ ${#1} -le 400 ] && [ ${#2} -le 400 ]; then
                diag "expected: $(printf '%q' "$1")"
                diag "actual:   $(printf '%q' "$2")"
        else
                diag "expected: ${1:0:200}... ${1: -200}"
                diag "actual:   ${2:0:200}... ${2: -200}"
        fi
        return 1
}
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
done_testing() { echo "1..$tap_n"; [ "$tap_failed" -eq 0 ]; }

# --- PostgreSQL ---------------------------------------------------------------
pg_bindir() {
        local d
        for d in "$(pg_config --bindir 2>/dev/null)" /usr/lib/postgresql/*/bin /usr/pgsql-*/bin /usr/bin; do
                [ -x "$d/initdb" ] && { echo "$d"; return 0; }
        done
        return 1
}

pg_as() {       # run a command as the cluster owner
        if [ "$(id -u)" -eq 0 ]; then
                runuser -u postgres -- "$@"
        else
                "$@"
        fi
}

# pg_start DIR: create (if needed) and start a cluster in DIR, listening on a
# unix socket in DIR only. Sets PG_DIR, PG_PORT, PG_URL (database "callcenter").
pg_start() {
        local dir=$1 bin port
        bin=$(pg_bindir) || return 1
        mkdir -p "$dir"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
        chmod 700 "$dir"
        if [ ! -f "$dir/data/PG_VERSION" ]; then
                pg_as "$bin/initdb" -D "$dir/data" -A trust -U postgres --nosync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
        fi
        port=${PG_PORT:-$(( 20000 + (RANDOM % 20000) ))}
        pg_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
                -o "-c listen_addresses='' -c unix_socket_directories='$dir' -p $port -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
                start >/dev/null || { cat "$dir/server.log" >&2; return 1; }
        PG_DIR=$dir PG_PORT=$port PG_BIN=$bin
        PG_URL="postgresql:///callcenter?host=$dir&port=$port&user=postgres"
        "$bin/psql" -qAt -h "$dir" -p "$port" -U postgres -d postgres \
                -c "SELECT 1 FROM pg_database WHERE datname='callcenter'" | grep -q 1 ||
                "$bin/createdb" -h "$dir" -p "$port" -U postgres callcenter
        export PG_DIR PG_PORT PG_URL PG_BIN
}

pg_stop() { [ -n "${PG_DIR:-}" ] && pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1; return 0; }
pg_restart_server() {   # stop and start again on the same port (a server restart)
        pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
        pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
                -o "-c listen_addresses='' -c unix_socket_directories='$PG_DIR' -p $PG_PORT -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
                start >/dev/null
}
psql_cc() { "$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 "$PG_URL" "$@"; }

# A scratch directory that the cluster owner can enter.
scratch_dir() {
        local d
        d=$(mktemp -d "${TMPDIR:-/tmp}/callcenter-test.XXXXXX")
        chmod 755 "$d"
        echo "$d"
}

# --- D-Bus --------------------------------------------------------------------
# dbus_start DIR: a private session-type bus; sets and exports DBUS_SESSION_BUS_ADDRESS.
dbus_start() {
        local dir=$1
        command -v dbus-daemon >/dev/null || return 1
        dbus-daemon --session --address="unix:path=$dir/bus" --fork --print-pid=3 --print-address=4 \
                3>"$dir/dbus.pid" 4>"$dir/dbus.address" 2>"$dir/dbus.log" || return 1
        DBUS_SESSION_BUS_ADDRESS=$(head -n1 "$dir/dbus.address")
        DBUS_PID=$(head -n1 "$dir/dbus.pid")
        export DBUS_SESSION_BUS_ADDRESS DBUS_PID
}
dbus_stop() { [ -n "${DBUS_PID:-}" ] && kill "$DBUS_PID" 2>/dev/null; return 0; }

# --- waiting --------------------------------------------------------------------
# wait_for SECONDS COMMAND...: retry COMMAND every 50 ms until it succeeds.
wait_for() {
        local t=$1; shift
        local end=$((SECONDS + t))
        while ! "$@" >/dev/null 2>&1; do
                [ "$SECONDS" -ge "$end" ] && return 1
                sleep 0.05
        done
}
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# --- more TAP checks (added for test-ctl.sh; usable by every test) ---------------
is() {          # is GOT EXPECTED DESCRIPTION
        local got=$1 exp=$2; shift 2
        if [ "$got" = "$exp" ]; then ok 0 "$*"; else
                ok 1 "$*"; diag "  got:      '$got'"; diag "  expected: '$exp'"; fi
}
like() {        # like STRING ERE DESCRIPTION
        local got=$1 re=$2; shift 2
        if grep -Eq -- "$re" <<<"$got"; then ok 0 "$*"; else
                ok 1 "$*"; diag "  '$(printf '%s' "$got" | head -c 400)'"; diag "  does not match /$re/"; fi
}

# free_port: a loopback TCP port nobody listens on right now.
free_port() {
        local p
        while :; do
                p=$((20000 + RANDOM % 40000))
                tcp_open 127.0.0.1 "$p" || { echo "$p"; return 0; }
        done
}
skip() { tap_n=$((tap_n + 1)); echo "ok $tap_n # SKIP $*"; }   # skip REASON: one skipped check

# --- a test script's start and end ------------------------------------------------
bail_out() {    # bail_out MESSAGE [LOG]: stop the whole test, with LOG as comments
        echo "Bail out! $1"
        [ -n "${2:-}" ] && sed 's/^/# /' "$2"
        exit 1
}
need_cmds() {   # need_cmds COMMAND...: skip the whole test unless each is there
        local c
        for c in "$@"; do command -v "$c" >/dev/null || skip_all "$c not found"; done
}
need_built() {  # need_built FILE...: bail out unless each is built
        local f
        for f in "$@"; do [ -x "$f" ] || bail_out "$f not built"; done
}
# pg_usable: a throwaway cluster can be made here (as root it belongs to "postgres").
pg_usable() { pg_bindir >/dev/null && { [ "$(id -u)" -ne 0 ] || id postgres >/dev/null 2>&1; }; }
need_pg() {     # skip the whole test unless pg_usable
        pg_bindir >/dev/null || skip_all "PostgreSQL server binaries (initdb) not found"
        pg_usable || skip_all "running as root without a postgres user"
}
kill_pids() {   # kill_pids PID...: SIGKILL each and reap it; empty words are skipped
        local p
        for p in "$@"; do { kill -9 "$p"; wait "$p"; } 2>/dev/null; done
}
# test_cleanup DIR PID...: for the EXIT trap: kill_pids, stop the private bus
# and the cluster this test made in DIR (not one it did not make), remove DIR.
test_cleanup() {
        local dir=$1; shift
        kill_pids "$@"
        dbus_stop
        case ${PG_DIR:-} in "$dir"/*) pg_stop ;; esac
        rm -rf "$dir"
}

# --- callcenter-routerd -------------------------------------------------------------
# routerd_start CONF LOG: callcenter-routerd ($ROUTERD, else the build tree's)
# on the private bus with CONF, its stderr appended to LOG; sets routerd_pid.
# Returns once it serves: its listen address ($CALLCENTER_ROUTER, else CONF's
# listen=) takes connections and org.callcenter.Router1 is its own, not a
# previous instance's. Bails out with LOG if it exits or is not up in 30 s.
routerd_start() {
        local conf=$1 log=$2 listen end
        listen=${CALLCENTER_ROUTER:-$(sed -n 's/^listen *= *//p' "$conf" | tail -n 1)}
        "${ROUTERD:-$top_builddir/daemons/routerd/callcenter-routerd}" --user --config="$conf" 2>>"$log" &
        routerd_pid=$!
        end=$((SECONDS + 30))
        until tcp_open "${listen%:*}" "${listen##*:}" && routerd_owns_name; do
                { [ "$SECONDS" -lt "$end" ] && kill -0 "$routerd_pid"; } 2>/dev/null ||
                        bail_out "routerd did not come up" "$log"
                sleep 0.05
        done
}
# router_test_begin: how a routerd test on a private bus starts: its tools
# and build ($ROUTERD, $WIRE), a scratch directory $T removed at exit with
# $routerd_pid, a private bus and a free loopback $PORT.
router_test_begin() {
        ROUTERD=$top_builddir/daemons/routerd/callcenter-routerd
        WIRE=$top_srcdir/tests/integration/router-wire.py
        need_cmds dbus-daemon busctl python3
        need_built "$ROUTERD"
        T=$(scratch_dir)
        routerd_pid=''
        # shellcheck disable=SC2016 # expanded at exit, when the pid is known
        trap 'test_cleanup "$T" $routerd_pid' EXIT
        dbus_start "$T" || bail_out "cannot start dbus-daemon"
        PORT=$(free_port) || bail_out "no free port"
}
routerd_owns_name() {   # org.callcenter.Router1 belongs to $routerd_pid
        [ "$(busctl --user call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                GetConnectionUnixProcessID s org.callcenter.Router1 2>/dev/null)" = "u $routerd_pid" ]
}
# routerd_stop: SIGTERM to $routerd_pid; returns routerd's exit status once
# the bus has dropped its name too (the next instance must not find it taken).
routerd_stop() {
        local rc
        kill -TERM "$routerd_pid"; wait "$routerd_pid"; rc=$?
        routerd_pid=
        wait_for 10 routerd_name_free
        return $rc
}
routerd_name_free() { ! busctl --user status org.callcenter.Router1 >/dev/null 2>&1; }
# router_list_calls: ListCalls as "id:state:operator" words, in its order.
router_list_calls() {
        python3 -c '
import re, sys
print(" ".join("%s:%s:%s" % m[:3] for m in re.findall(r"\"([^\"]*)\" \"([^\"]*)\" \"([^\"]*)\" (\d+)", sys.argv[1])))' \
                "$(busctl --user call org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1 ListCalls 2>&1)"
}
# wire_messages: the "messages" of each reply line (TCP wire, JSON) on stdin,
# one a line, with "error=<code>" before those of a failed reply.
wire_messages() {
        python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    if r.get("ok") is False:
        print("error=" + r["error"])
    for m in r["messages"]:
        print(m)'
}
# notify_listen SOCKET FILE: a notify socket of our own (NOTIFY_SOCKET=SOCKET),
# each message appended to FILE and a newline; sets notify_pid.
notify_listen() {
        python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "w") as out:
    while True:
        out.write(s.recv(4096).decode() + "\n"); out.flush()' "$1" "$2" &
        # shellcheck disable=SC2034 # the caller's
        notify_pid=$!
        wait_for 5 test -S "$1"
}
