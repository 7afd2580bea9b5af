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
