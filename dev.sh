#!/usr/bin/env bash
# dev.sh: the developer workflow (DESIGN.md "Developer workflow").
#
#   ./dev.sh run     install deps, build, start everything, open the shell, stop on exit
#   ./dev.sh up      the same in the background; prints only `export` lines on stdout
#   ./dev.sh down    stop the daemons, PostgreSQL and the bus started by `up`
#   ./dev.sh test    the test pipeline, .ci/test.sh: both builds, every test,
#                    distcheck, RPM, fuzzing, nspawn; ends with "N passed, N failed, N skipped"
#   ./dev.sh deps | build | status | clean
#
# This file keeps the life cycle of the local suite: build it, start it, stop
# it. The package tables and their installation are in .ci/deps.sh, the test
# pipeline in .ci/test.sh (which sources this file for its build steps:
# sourced, it defines its functions and runs nothing).
#
# Everything it starts lives under .dev/ of the checkout: the PostgreSQL
# cluster (.dev/pg), the private bus (.dev/bus), the generated configuration
# (.dev/callcenter.conf), logs (.dev/log/<binary>.log) and pid files
# (.dev/run/<binary>.pid). Only `export` lines go to stdout; everything else
# goes to stderr, so `eval "$(./dev.sh up)"` works.
#
# One at a time: deps, build, up, down, test and clean hold a lock on the
# checkout; a second one waits for the first and says so. run holds it while
# it starts the suite and while it stops it, not while its shell is open.
# clean removes .dev/ only; build*/ stay (their configure is redone when the
# last one did not finish).

set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$top"
dev=$top/.dev

# The daemons `up` starts, in start order. The first is the event hub: it
# starts first and stops last. Adding a daemon is one word here; its binary
# is build/daemons/<name>/callcenter-<name>.
# Give it a ready_<name> function below if "the process is alive" is not
# enough to know it serves.
DAEMONS=(eventd routerd taskd campaignd dialerd)

EVENTS_PORT=5556        # fixed by DESIGN.md: eventd's XPUB
ROUTER_PORT=5678        # fixed by DESIGN.md: routerd's TCP wire

say() { printf '%s\n' "$*" >&2; }
die() { printf 'dev.sh: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# shellcheck source=tests/integration/lib.sh
top_srcdir=$top top_builddir=$top/build . "$top/tests/integration/lib.sh"
# shellcheck source=.ci/deps.sh
. "$top/.ci/deps.sh"

# --- one dev.sh at a time in a checkout ------------------------------------------------
# Two overlapping runs in one checkout (an `up` in one terminal while another
# ran `down`, removed .dev/ and ran `up`) configured build/ twice at once and
# left a config.h without _GNU_SOURCE. So the commands that build, start, stop
# or remove hold an flock on the checkout directory itself: not on a file in
# .dev/, which `clean` (or a user) removes while another run holds it.
# The lock lives in an `flock -o` process that runs dev.sh again: dev.sh and
# what it starts (PostgreSQL, the bus, the daemons `up` leaves running) never
# have the descriptor, so nothing it started outlives it holding the lock.
# CALLCENTER_DEV_LOCK=<checkout> marks the process tree that holds it (up's
# and test's own steps): there dev_lock does nothing, so nothing waits for itself.
dev_lock() {    # dev_lock SCRIPT [ARGS...]: unless held, run SCRIPT ARGS again under the lock (exec)
        local pid='' holder=''
        [ "${CALLCENTER_DEV_LOCK:-}" = "$top" ] && return 0
        command -v flock >/dev/null || die "flock not found; install util-linux"
        if ! flock -n "$top" true; then
                read -r pid holder <"$dev/lock-holder" 2>/dev/null || true
                [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || holder="another dev.sh"
                say "dev.sh: $holder is running in this checkout; waiting for it to finish"
        fi
        export CALLCENTER_DEV_LOCK=$top
        exec flock -o "$top" "$BASH" "$@"
}
# Under the lock: who holds it, for the message of the next one that waits.
dev_lock_holder() { mkdir -p "$dev"; echo "$$ ./dev.sh $1 (pid $$)" >"$dev/lock-holder"; }

# --- build -------------------------------------------------------------------------
# configure is regenerated when missing or older than what it is made from
# (configure.ac, Makefile.am, the *.mk fragments). Under a lock: other
# checkouts' tools may share this tree.
autotools_stale() {
        local f
        [ -x configure ] || return 0
        [ -f build-aux/tap-driver.sh ] || return 0
        for f in configure.ac Makefile.am $(find . -name '*.mk' -not -path './build*' -not -path './.dev/*'); do
                [ "$f" -nt configure ] && return 0
        done
        return 1
}

regen() {
        mkdir -p "$dev/log"
        autotools_stale || return 0
        say "dev.sh: autoreconf -fi"
        local lock=${CALLCENTER_AUTOTOOLS_LOCK:-$dev/autotools.lock}
        (
                flock 9
                autotools_stale || exit 0
                autoreconf -fi >"$dev/log/autoreconf.log" 2>&1 ||
                        { tail -n 30 "$dev/log/autoreconf.log" >&2; exit 1; }
        ) 9>"$lock" || die "autoreconf failed; see .dev/log/autoreconf.log"
}

# config_h_complete FILE: FILE is a whole config.h: every macro of config.h.in
# is in it (defined or commented out), and _GNU_SOURCE is defined
# (AC_USE_SYSTEM_EXTENSIONS always defines it; the sources need it for asprintf).
config_h_complete() {
        [ -f "$1" ] && [ -f "$top/config.h.in" ] || return 1
        grep -q '^# *define _GNU_SOURCE 1' "$1" || return 1
        [ -z "$(comm -23 \
                <(sed -n 's/^# *undef \([A-Za-z0-9_]*\).*/\1/p' "$top/config.h.in" | sort -u) \
                <(sed -n -e 's/^# *define \([A-Za-z0-9_]*\).*/\1/p' \
                         -e 's|^/\* # *undef \([A-Za-z0-9_]*\) \*/$|\1|p' "$1" | sort -u))" ]
}

# configure_dir DIR LOG [CONFIGURE-ARGS...]: run configure in DIR (output
# appended to LOG) unless the last one there finished with these arguments.
# The stamp DIR/.dev-configure-args is removed before configure and written
# after it succeeded, so a configure cut short (Ctrl-C, a crash, a closed
# terminal) is redone: a Makefile without a stamp, or a config.status
# without a complete config.h, is an unfinished configure.
configure_dir() {
        local dir=$1 log=$2; shift 2
        local args="$*" stamp=$top/$dir/.dev-configure-args why
        if [ ! -f "$top/$dir/Makefile" ] || [ ! -f "$top/$dir/config.status" ]; then
                why="not configured yet"
        elif [ ! -f "$stamp" ]; then
                why="the last configure did not finish"
        elif [ "$(cat "$stamp")" != "$args" ]; then
                why="the configure arguments changed"
        elif ! config_h_complete "$top/$dir/config.h"; then
                why="its config.h is incomplete"
        else
                return 0
        fi
        say "dev.sh: configuring $dir/ ${args:+$args }($why)"
        mkdir -p "$top/$dir"
        rm -f "$stamp"
        (cd "$top/$dir" && ../configure "$@") >>"$log" 2>&1 ||
                { tail -n 30 "$log" >&2; die "configure failed in $dir/; see ${log#"$top"/}"; }
        config_h_complete "$top/$dir/config.h" ||
                die "configure in $dir/ left an incomplete config.h; see ${log#"$top"/}"
        printf '%s' "$args" >"$stamp"
}

# build_dir DIR [CONFIGURE-ARGS...]: configure when needed (configure_dir),
# then an incremental make. Output to .dev/log/<dir>.log; on failure its
# tail goes to stderr.
build_dir() {
        local dir=$1; shift
        local log=$dev/log/$dir.log
        mkdir -p "$top/$dir" "$dev/log"
        : >"$log"       # this run's output only
        configure_dir "$dir" "$log" "$@"
        say "dev.sh: building $dir/"
        make -C "$top/$dir" -j"${JOBS:-2}" >>"$log" 2>&1 ||
                { grep -E 'error|Error' "$log" | tail -n 30 >&2; die "build failed in $dir/; see .dev/log/$dir.log"; }
}

cmd_build() {
        regen
        build_dir build
}

# --- the local suite: PostgreSQL, bus, configuration, daemons ------------------------
pid_alive() {   # pid_alive PIDFILE [NAME]: the pid in PIDFILE runs (and is NAME)
        local pid
        [ -f "$1" ] || return 1
        pid=$(cat "$1" 2>/dev/null) || return 1
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
        # Guard against a recycled pid after a reboot or crash.
        [ -z "${2:-}" ] || tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

# A unix socket path must fit in sun_path (108 bytes).
sock_path_ok() { [ ${#1} -le 100 ]; }

# The cluster lives in .dev/pg unless the user "postgres" (as root) cannot
# reach into the checkout (a home directory with mode 700) or the socket path
# would be too long: then in /tmp, with .dev/pg a symlink to it.
pg_dir_setup() {
        local target
        if [ -L "$dev/pg" ] && [ ! -d "$dev/pg/" ]; then
                rm -f "$dev/pg"         # the /tmp dir is gone (reboot)
        fi
        [ -e "$dev/pg" ] && return 0
        if { ! is_root || runuser -u postgres -- test -x "$dev"; } && sock_path_ok "$dev/pg/.s.PGSQL.65535"; then
                mkdir -p "$dev/pg"
        else
                target=$(mktemp -d /tmp/callcenter-dev-pg.XXXXXX)
                ln -s "$target" "$dev/pg"
        fi
}

pg_up() {
        local dir bin port _
        pg_dir_setup
        dir=$(readlink -f "$dev/pg")
        bin=$(pg_bindir) || die "PostgreSQL server not found (initdb); run ./dev.sh deps"
        if [ -f "$dir/port" ] && pg_as "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
                port=$(cat "$dir/port")
                PG_DIR=$dir PG_PORT=$port PG_BIN=$bin
                PG_URL="postgresql:///callcenter?host=$dir&port=$port&user=postgres"
                return 0
        fi
        say "dev.sh: starting PostgreSQL in .dev/pg"
        # Keep the port across restarts so that exported URLs stay valid;
        # pick another if it is taken now.
        for _ in 1 2 3 4 5; do
                port=$(cat "$dir/port" 2>/dev/null || echo $((20000 + RANDOM % 20000)))
                PG_PORT=$port
                if pg_start "$dir" 2>"$dev/log/postgresql.log"; then
                        echo "$port" >"$dir/port"
                        is_root && chown postgres: "$dir/port"
                        return 0
                fi
                rm -f "$dir/port"
        done
        cat "$dev/log/postgresql.log" >&2
        die "PostgreSQL did not start; see $dir/server.log"
}

bus_up() {
        sock_path_ok "$dev/bus" || die "the checkout path is too long for a unix socket ($dev/bus)"
        # Exported: the readiness checks (busctl --user) need it too.
        if pid_alive "$dev/run/dbus-daemon.pid" dbus-daemon && [ -S "$dev/bus" ]; then
                export DBUS_SESSION_BUS_ADDRESS=unix:path=$dev/bus
                return 0
        fi
        command -v dbus-daemon >/dev/null || die "dbus-daemon not found; run ./dev.sh deps"
        say "dev.sh: starting a private bus at .dev/bus"
        rm -f "$dev/bus"
        dbus_start "$dev" || die "dbus-daemon did not start; see .dev/dbus.log"
        echo "$DBUS_PID" >"$dev/run/dbus-daemon.pid"
        export DBUS_SESSION_BUS_ADDRESS=unix:path=$dev/bus
}

write_config() {
        local conf=$dev/callcenter.conf new
        sock_path_ok "$dev/events-in" || die "the checkout path is too long for an ipc:// socket"
        new=$(cat <<EOF
# Generated by ./dev.sh up; rewritten on every up. Edit dev.sh, not this file.
[database]
url=$PG_URL

[events]
publish=ipc://$dev/events-in
subscribe=tcp://127.0.0.1:$EVENTS_PORT
EOF
)
        [ "$(cat "$conf" 2>/dev/null)" = "$new" ] || printf '%s\n' "$new" >"$conf"
}

daemon_bin() { echo "$top/build/daemons/$1/callcenter-$1"; }

# Readiness per daemon: what a client needs before it can use it.
ready_eventd() { tcp_open 127.0.0.1 "$EVENTS_PORT"; }
ready_routerd() { bus_name_ready org.callcenter.Router1 && tcp_open 127.0.0.1 "$ROUTER_PORT"; }
ready_taskd() { bus_name_ready org.callcenter.Tasks1; }
ready_campaignd() { bus_name_ready org.callcenter.Campaigns1; }
ready_dialerd() { bus_name_ready org.callcenter.Dialer1; }
bus_name_ready() { busctl --user status "$1" >/dev/null 2>&1; }

# The port a daemon needs must be free before it starts, or it would fail
# (or worse, clients would talk to someone else's server).
port_of() { case $1 in eventd) echo "$EVENTS_PORT" ;; routerd) echo "$ROUTER_PORT" ;; esac; }

daemon_up() {
        local name=$1 bin pidfile log port t
        bin=$(daemon_bin "$name")
        pidfile=$dev/run/callcenter-$name.pid
        log=$dev/log/callcenter-$name.log
        pid_alive "$pidfile" "callcenter-$name" && return 0
        port=$(port_of "$name")
        if [ -n "$port" ] && tcp_open 127.0.0.1 "$port"; then
                die "port $port (needed by callcenter-$name) is in use by another program; find it with: ss -ltnp 'sport = :$port'"
        fi
        say "dev.sh: starting callcenter-$name (log in .dev/log/callcenter-$name.log)"
        # setsid: the daemons must not get the terminal's Ctrl-C meant for
        # the shell. The generated file says everything: drop overrides a
        # previous `eval "$(./dev.sh up)"` may have left in this environment.
        # STATE_DIRECTORY as systemd's StateDirectory=callcenter-NAME sets it
        # (eventd's archive spill file lives there).
        mkdir -p "$dev/state/callcenter-$name"
        env -u CALLCENTER_DATABASE_URL -u CALLCENTER_EVENTS -u CALLCENTER_EVENTS_PUBLISH -u CALLCENTER_DEV_LOCK \
                STATE_DIRECTORY="$dev/state/callcenter-$name" \
                setsid "$bin" --user --config="$dev/callcenter.conf" >>"$log" 2>&1 </dev/null &
        echo $! >"$pidfile"
        t=$((SECONDS + 20))
        while :; do
                if ! pid_alive "$pidfile"; then
                        tail -n 20 "$log" >&2
                        die "callcenter-$name exited during start-up; see .dev/log/callcenter-$name.log"
                fi
                if declare -F "ready_$name" >/dev/null; then
                        "ready_$name" && break
                else
                        break
                fi
                [ "$SECONDS" -lt "$t" ] || die "callcenter-$name is not ready after 20 s; see .dev/log/callcenter-$name.log"
                sleep 0.1
        done
}

# Quote a value for the shell only when it needs it: the lines stay as
# readable as in DESIGN.md, and eval-safe (the database URL has '&' and '?').
shq() {
        if [[ $1 =~ ^[A-Za-z0-9_./:@%+=,-]+$ ]]; then
                printf '%s' "$1"
        elif [[ $1 != *"'"* ]]; then
                printf "'%s'" "$1"
        else
                printf '%q' "$1"
        fi
}

print_exports() {
        local path=$top/build/tools name
        for name in "${DAEMONS[@]}"; do
                [ -x "$(daemon_bin "$name")" ] && path=$path:$top/build/daemons/$name
        done
        echo "export DBUS_SESSION_BUS_ADDRESS=$(shq "unix:path=$dev/bus")"
        echo "export CALLCENTER_DATABASE_URL=$(shq "$PG_URL")"
        echo "export CALLCENTER_EVENTS=$(shq "tcp://127.0.0.1:$EVENTS_PORT")"
        echo "export CALLCENTER_EVENTS_PUBLISH=$(shq "ipc://$dev/events-in")"
        echo "export CALLCENTER_ROUTER=$(shq "127.0.0.1:$ROUTER_PORT")"
        echo "export PATH=$(shq "$path"):\$PATH"
}

cmd_up() {
        local name
        deps_install
        cmd_build
        mkdir -p "$dev/run" "$dev/log"
        pg_up
        bus_up
        write_config
        for name in "${DAEMONS[@]}"; do
                [ -x "$(daemon_bin "$name")" ] || continue
                daemon_up "$name"
        done
        say "dev.sh: up. In another terminal: eval \"\$(./dev.sh up)\"  (it is idempotent)"
        print_exports
}

# stop_pids NAME...: SIGTERM to each .dev/run/NAME.pid that runs, up to 10 s
# for all of them to exit cleanly (they flush to PostgreSQL and the hub),
# then SIGKILL for what is left. The pids are signalled together so that
# `down` takes as long as the slowest, not the sum.
stop_pids() {
        local name pid pids=() names=() t i left
        for name in "$@"; do
                if pid_alive "$dev/run/$name.pid" "$name"; then
                        pid=$(cat "$dev/run/$name.pid")
                        say "dev.sh: stopping $name"
                        kill -TERM "$pid" 2>/dev/null || true
                        pids+=("$pid")
                        names+=("$name")
                fi
                rm -f "$dev/run/$name.pid"
        done
        t=$((SECONDS + 10))
        while :; do
                left=0
                for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
                [ "$left" = 0 ] && return 0
                [ "$SECONDS" -lt "$t" ] || break
                sleep 0.1
        done
        for i in "${!pids[@]}"; do
                if kill -0 "${pids[i]}" 2>/dev/null; then
                        say "dev.sh: ${names[i]} did not stop within 10 s, killing it"
                        kill -KILL "${pids[i]}" 2>/dev/null || true
                fi
        done
}

cmd_down() {
        local name dir bin others=()
        # The hub (DAEMONS[0]) goes last, so that the others' final events
        # still reach it and its archive.
        for name in "${DAEMONS[@]:1}"; do others+=("callcenter-$name"); done
        stop_pids "${others[@]}"
        stop_pids "callcenter-${DAEMONS[0]}"
        if [ -e "$dev/pg" ]; then
                dir=$(readlink -f "$dev/pg")
                if bin=$(pg_bindir) && [ -f "$dir/data/PG_VERSION" ] &&
                        pg_as "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
                        say "dev.sh: stopping PostgreSQL"
                        pg_as "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
                fi
        fi
        if [ -f "$dev/run/dbus-daemon.pid" ]; then
                stop_pids dbus-daemon
                rm -f "$dev/bus"
        fi
}

cmd_status() {
        local name f dir bin any=0
        for f in "$dev"/run/*.pid; do
                [ -e "$f" ] || continue
                any=1
                name=$(basename "$f" .pid)
                if pid_alive "$f" "$name"; then echo "$name: running (pid $(cat "$f"))"; else echo "$name: dead"; fi
        done
        if [ -e "$dev/pg" ]; then
                dir=$(readlink -f "$dev/pg")
                if bin=$(pg_bindir) && pg_as "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
                        any=1
                        echo "postgresql: running (port $(cat "$dir/port" 2>/dev/null), data in $dir)"
                fi
        fi
        [ "$any" = 1 ] || echo "nothing running"
}

# Not under the lock itself: its `up` and its `down` take it, each in a
# dev.sh of its own, so that another terminal's `eval "$(./dev.sh up)"` (or
# `down`) works while the shell is open.
cmd_run() {
        local exports ctl=$top/build/tools/callcenterctl
        exports=$("$BASH" "$top/dev.sh" up) || exit 1
        trap '"$BASH" "$top/dev.sh" down' EXIT
        eval "$exports"
        # Ctrl-C belongs to the shell (it drops the typed line). A no-op trap,
        # not an ignore: an ignored signal would stay ignored in the child.
        trap ':' INT
        if [ -x "$ctl" ] && "$ctl" shell --help >/dev/null 2>&1; then
                # Not exec: the trap must run `down` afterwards.
                "$ctl" --user shell || true
        else
                say "dev.sh: callcenterctl has no shell yet; here is a bash with the environment"
                say "        (callcenterctl, the daemons and the exports above). Type exit to stop everything."
                bash -i || true
        fi
}

# clean removes what up made (.dev/: the database, logs, pid files) and
# keeps the build directories, which are slow to redo and reconfigure
# themselves when their last configure did not finish; it says which it kept.
cmd_clean() {
        local dir kept=()
        cmd_down
        dir=$(readlink -f "$dev/pg" 2>/dev/null || true)
        [ -n "$dir" ] && [[ $dir == /tmp/callcenter-dev-pg.* ]] && rm -rf "$dir"
        rm -rf "$dev"
        for dir in "$top"/build "$top"/build-*; do
                [ -d "$dir" ] && [ "$dir" != "$top/build-aux" ] && kept+=("${dir#"$top"/}/")
        done
        say "dev.sh: removed .dev/ (the PostgreSQL data, logs, pid files)"
        if [ ${#kept[@]} -gt 0 ]; then
                say "dev.sh: kept ${kept[*]} (incremental builds; to start afresh: rm -rf ${kept[*]})"
        fi
}

usage() {
        cat >&2 <<EOF
Usage: ./dev.sh COMMAND
  run     install dependencies, build, start the suite, open callcenterctl shell; stop on exit
  up      the same in the background (idempotent); prints the export lines for another terminal
  down    stop what up started
  test    the test pipeline (.ci/test.sh): both builds, every test, distcheck, RPM, fuzzing,
          nspawn; ends with "N passed, N failed, N skipped"
  deps    install missing build and run dependencies (apt-get or dnf; tables in .ci/deps.sh)
  build   build into build/
  status  show what up started
  clean   down, then remove .dev/ (the PostgreSQL data, logs); keeps build*/
One at a time per checkout: a second dev.sh waits for the first to finish.
EOF
}

main() {
        case ${1:-} in
        deps | build | up | down | test | clean)
                dev_lock "$top/dev.sh" "$@"
                dev_lock_holder "$1" ;;
        esac
        case ${1:-} in
        deps) deps_install ;;
        build) deps_install; cmd_build ;;
        up) cmd_up ;;
        down) cmd_down ;;
        run) cmd_run ;;
        test) exec "$BASH" "$top/.ci/test.sh" ;;
        status) cmd_status ;;
        clean) cmd_clean ;;
        -h | --help | help) usage ;;
        *) usage; exit 2 ;;
        esac
}

# Sourced (.ci/test.sh, tests/system/test-devsh.sh): the functions only.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0
main "$@"
