#!/usr/bin/env bash
# dev.sh: the developer workflow (DESIGN.md "Developer workflow").
#
#   ./dev.sh run     install deps, build, start everything, open the shell, stop on exit
#   ./dev.sh up      the same in the background; prints only `export` lines on stdout
#   ./dev.sh down    stop the daemons, PostgreSQL and the bus started by `up`
#   ./dev.sh test    install deps, build (plain and sanitizers), run every test, distcheck;
#                    ends with "N passed, N failed, N skipped"
#   ./dev.sh deps | build | status | clean
#
# Everything it starts lives under .dev/ of the checkout: the PostgreSQL
# cluster (.dev/pg), the private bus (.dev/bus), the generated configuration
# (.dev/callcenter.conf), logs (.dev/log/<binary>.log) and pid files
# (.dev/run/<binary>.pid). Only `export` lines go to stdout; everything else
# goes to stderr, so `eval "$(./dev.sh up)"` works.

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

# --- dependencies ----------------------------------------------------------------
# Package names per distribution. "build" are needed to compile; "run" to run
# and test (PostgreSQL server, dbus-daemon, busctl, the SMTP test server, clang
# for the fuzzers, rpm tools for the spec check). A missing run dependency only
# makes the tests that need it skip.
DEB_BUILD=(gcc make autoconf automake libtool pkg-config libsystemd-dev libzmq3-dev libpq-dev libjson-c-dev libinih-dev)
DEB_RUN=(postgresql dbus systemd python3 python3-aiosmtpd clang libclang-rt-dev rpm rpmlint systemd-container debootstrap)
# Rocky/RHEL 9: zeromq-devel, inih-devel and python3-aiosmtpd come from EPEL,
# json-c-devel (and EPEL's own dependencies) from CRB.
RPM_BUILD=(gcc make autoconf automake libtool pkgconf-pkg-config systemd-devel zeromq-devel libpq-devel json-c-devel inih-devel)
RPM_RUN=(postgresql-server postgresql dbus-daemon systemd python3 python3-aiosmtpd clang compiler-rt rpm-build rpmlint util-linux systemd-container debootstrap)
RPM_EPEL=(zeromq-devel inih-devel python3-aiosmtpd debootstrap)
RPM_CRB=(json-c-devel)

distro() {
        if command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; then
                echo debian
        elif command -v dnf >/dev/null && command -v rpm >/dev/null; then
                echo rocky
        else
                echo unknown
        fi
}

deb_missing() {
        local p
        for p in "$@"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
        done
}
rpm_missing() {
        local p
        for p in "$@"; do
                rpm -q --quiet "$p" 2>/dev/null || rpm -q --quiet --whatprovides "$p" 2>/dev/null || echo "$p"
        done
}

# deb_install PKG...: quietly; `apt-get update` first when the package lists
# are empty (fresh container), and once more if an install fails (stale lists).
deb_install() {
        local log=$dev/log/deps.log
        export DEBIAN_FRONTEND=noninteractive
        if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
                apt-get update -qq >>"$log" 2>&1 || true
        fi
        apt-get install -y -qq --no-install-recommends "$@" >>"$log" 2>&1 && return 0
        apt-get update -qq >>"$log" 2>&1 || true
        apt-get install -y -qq --no-install-recommends "$@" >>"$log" 2>&1
}

# rpm_install PKG...: enables EPEL and CRB only when a package needs them.
rpm_install() {
        local log=$dev/log/deps.log p need_epel=0 need_crb=0
        for p in "$@"; do
                [[ " ${RPM_EPEL[*]} " == *" $p "* ]] && need_epel=1
                [[ " ${RPM_CRB[*]} " == *" $p "* ]] && need_crb=1
        done
        # EPEL packages depend on CRB ones, so EPEL implies CRB.
        [ "$need_epel" = 1 ] && need_crb=1
        if [ "$need_crb" = 1 ]; then
                rpm -q --quiet dnf-plugins-core || dnf -y -q install dnf-plugins-core >>"$log" 2>&1 || true
                dnf config-manager --set-enabled crb >>"$log" 2>&1 ||
                        dnf config-manager --set-enabled powertools >>"$log" 2>&1 || true
        fi
        if [ "$need_epel" = 1 ] && ! rpm -q --quiet epel-release; then
                dnf -y -q install epel-release >>"$log" 2>&1 || true
        fi
        dnf -y -q install "$@" >>"$log" 2>&1
}

# The command a non-root user should run for packages PKG...
install_hint() {
        local d=$1; shift
        if [ "$d" = debian ]; then
                echo "sudo apt-get install $*"
        else
                echo "sudo dnf install -y epel-release dnf-plugins-core && sudo dnf config-manager --set-enabled crb && sudo dnf install $*"
        fi
}

# Install what is missing. Root installs; anyone else is told what to run.
# A missing build dependency is fatal; a missing run dependency is not.
cmd_deps() {
        local d missing_build=() missing_run=()
        mkdir -p "$dev/log"
        d=$(distro)
        case $d in
        debian)
                mapfile -t missing_build < <(deb_missing "${DEB_BUILD[@]}")
                mapfile -t missing_run < <(deb_missing "${DEB_RUN[@]}")
                ;;
        rocky)
                mapfile -t missing_build < <(rpm_missing "${RPM_BUILD[@]}")
                mapfile -t missing_run < <(rpm_missing "${RPM_RUN[@]}")
                ;;
        *)
                say "dev.sh: unknown distribution (no apt-get or dnf): install the build dependencies by hand:"
                say "  gcc make autoconf automake libtool pkg-config, and the -dev(el) packages of"
                say "  libsystemd, libzmq, libpq, json-c, inih; PostgreSQL server, dbus-daemon"
                return 0 ;;
        esac
        [ ${#missing_build[@]} -eq 0 ] && [ ${#missing_run[@]} -eq 0 ] && return 0

        if ! is_root; then
                if [ ${#missing_build[@]} -gt 0 ]; then
                        say "dev.sh: missing build dependencies: ${missing_build[*]}"
                        say "  install them with: $(install_hint "$d" "${missing_build[@]}" "${missing_run[@]}")"
                        exit 1
                fi
                say "dev.sh: missing run/test dependencies (the tests that need them will skip): ${missing_run[*]}"
                say "  install them with: $(install_hint "$d" "${missing_run[@]}")"
                return 0
        fi

        local all=("${missing_build[@]}" "${missing_run[@]}") install=deb_install p
        [ "$d" = debian ] || install=rpm_install
        say "dev.sh: installing ${all[*]} ($d; log in .dev/log/deps.log)"
        # All at once is fastest; if that fails, one package may be unknown on
        # this release: then the build ones together (fatal), the others one
        # by one (not fatal), so one missing package does not block the rest.
        if ! $install "${all[@]}"; then
                if [ ${#missing_build[@]} -gt 0 ]; then
                        $install "${missing_build[@]}" ||
                                die "could not install ${missing_build[*]}; see .dev/log/deps.log"
                fi
                for p in "${missing_run[@]}"; do $install "$p" || true; done
        fi
        # Some run dependencies may not exist on this release: say which.
        if [ "$d" = debian ]; then
                mapfile -t missing_run < <(deb_missing "${DEB_RUN[@]}")
        else
                mapfile -t missing_run < <(rpm_missing "${RPM_RUN[@]}")
        fi
        [ ${#missing_run[@]} -eq 0 ] ||
                say "dev.sh: could not install ${missing_run[*]}; the tests that need them will skip"
}

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

# build_dir DIR [CONFIGURE-ARGS...]: configure once (again when the
# configure arguments change), then an incremental make. Output to
# .dev/log/<dir>.log; on failure its tail goes to stderr.
build_dir() {
        local dir=$1; shift
        local log=$dev/log/$dir.log args="$*"
        mkdir -p "$top/$dir" "$dev/log"
        : >"$log"       # this run's output only
        if [ ! -f "$top/$dir/Makefile" ] || [ "$(cat "$top/$dir/.dev-configure-args" 2>/dev/null)" != "$args" ]; then
                say "dev.sh: configuring $dir/ $args"
                (cd "$top/$dir" && ../configure "$@") >>"$log" 2>&1 ||
                        { tail -n 30 "$log" >&2; die "configure failed in $dir/; see .dev/log/$dir.log"; }
                printf '%s' "$args" >"$top/$dir/.dev-configure-args"
        fi
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
        env -u CALLCENTER_DATABASE_URL -u CALLCENTER_EVENTS -u CALLCENTER_EVENTS_PUBLISH \
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
        cmd_deps
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

cmd_run() {
        local exports ctl=$top/build/tools/callcenterctl
        exports=$(cmd_up) || exit 1
        trap 'cmd_down' EXIT
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

cmd_clean() {
        cmd_down
        local dir
        dir=$(readlink -f "$dev/pg" 2>/dev/null || true)
        [ -n "$dir" ] && [[ $dir == /tmp/callcenter-dev-pg.* ]] && rm -rf "$dir"
        rm -rf "$dev"
        say "dev.sh: removed .dev/ (build directories are kept; remove build*/ by hand)"
}

# --- test -------------------------------------------------------------------------
# A hung test must not hang CI without a verdict: every make run is bounded
# (seconds; override with CHECK_TIMEOUT).
CHECK_TIMEOUT=${CHECK_TIMEOUT:-2400}

# Sums automake's per-test-case counts ("# PASS:  12") over test-suite.log files.
count_results() {
        local f
        for f in "$@"; do
                [ -f "$f" ] || continue
                awk '/^# (PASS|FAIL|XPASS|ERROR|SKIP|XFAIL):/ { gsub(":", "", $2); print $2, $3 }' "$f"
        done
}

# When make check was cut short there is no test-suite.log: count the
# per-test-case results of the tests that did finish from their .trs files.
count_trs() {
        find "$1" -name '*.trs' -not -path '*/callcenter-[0-9]*' -newer "$2" -print0 2>/dev/null |
                xargs -0r cat | awk '/^:test-result: / { print $2, 1 }'
}

# The tails of failing tests' logs, from the .trs files automake leaves.
show_failures() {
        local dir=$1 trs log
        while IFS= read -r trs; do
                log=${trs%.trs}.log
                say ""
                say "==== ${log#"$top"/} (last 40 lines) ===="
                tail -n 40 "$log" >&2
        done < <(grep -lE '^:test-result: (FAIL|XPASS|ERROR)' -r --include='*.trs' "$@" 2>/dev/null || true)
}

cmd_test() {
        local pass=0 fail=0 skip=0 kind n extra_fail=() d stamp logs=() results
        cmd_deps
        regen
        mkdir -p "$dev/log"
        results=$dev/log/results
        : >"$results"

        # Failures to build count as failures: the tests they gate never ran.
        for d in build build-asan; do
                local args=()
                [ "$d" = build-asan ] && args=(--enable-sanitizers)
                if ! (build_dir "$d" "${args[@]}"); then
                        extra_fail+=("$d: build failed; see .dev/log/$d.log")
                        continue
                fi
                say "dev.sh: make check in $d/ (log in .dev/log/$d-check.log)"
                rm -f "$top/$d/test-suite.log"
                stamp=$dev/log/$d-check.stamp
                touch "$stamp"
                timeout --kill-after=30 "$CHECK_TIMEOUT" make -C "$top/$d" -j"${JOBS:-2}" check \
                        >"$dev/log/$d-check.log" 2>&1 || true
                if [ -f "$top/$d/test-suite.log" ]; then
                        logs+=("$top/$d/test-suite.log")
                        count_results "$top/$d/test-suite.log" >>"$results"
                else
                        tail -n 30 "$dev/log/$d-check.log" >&2
                        extra_fail+=("$d: make check did not finish; see .dev/log/$d-check.log")
                        count_trs "$top/$d" "$stamp" >>"$results"
                fi
                show_failures "$top/$d" --exclude-dir='callcenter-[0-9]*'
        done

        # distcheck: the tarball is complete, builds out of tree, its tests
        # pass, it installs and uninstalls cleanly. Counted as one test case.
        say "dev.sh: make distcheck in build/ (log in .dev/log/distcheck.log)"
        if timeout --kill-after=30 "$CHECK_TIMEOUT" make -C "$top/build" -j"${JOBS:-2}" distcheck \
                >"$dev/log/distcheck.log" 2>&1; then
                pass=$((pass + 1))
        else
                grep -E 'Error|error:|No rule|FAIL' "$dev/log/distcheck.log" | tail -n 20 >&2 || true
                show_failures "$top"/build/callcenter-[0-9]*/_build
                extra_fail+=("make distcheck failed; see .dev/log/distcheck.log")
        fi

        # The RPM: built from make dist with rpmbuild (%check runs the unit
        # tests), then rpmlint, whose errors fail it. One test case.
        if command -v rpmbuild >/dev/null && command -v rpmlint >/dev/null; then
                say "dev.sh: make rpmlint in build/ (log in .dev/log/rpm.log)"
                if make -C "$top/build" rpmlint >"$dev/log/rpm.log" 2>&1; then
                        pass=$((pass + 1))
                        grep -a 'errors, .* warnings' "$dev/log/rpm.log" | sed 's/^/dev.sh: rpmlint: /' >&2 || true
                else
                        tail -n 20 "$dev/log/rpm.log" >&2
                        extra_fail+=("make rpm / rpmlint failed; see .dev/log/rpm.log")
                fi
        else
                skip=$((skip + 1))
                say "dev.sh: rpmbuild or rpmlint missing: RPM build skipped"
        fi

        # The wire parser under libFuzzer for a bounded time (clang only).
        # A crash or sanitizer report fails it; the corpus stays in .dev/.
        if command -v clang >/dev/null; then
                say "dev.sh: fuzzing the wire parser for ${FUZZ_SECONDS:-60} s (log in .dev/log/fuzz.log)"
                if { [ -f "$top/build-fuzz/Makefile" ] ||
                     (mkdir -p "$top/build-fuzz" && cd "$top/build-fuzz" &&
                      ../configure -q CC=clang --enable-fuzzers --enable-sanitizers); } >"$dev/log/fuzz.log" 2>&1 &&
                   make -C "$top/build-fuzz" -j"${JOBS:-2}" fuzz/fuzz-wire >>"$dev/log/fuzz.log" 2>&1 &&
                   mkdir -p "$dev/fuzz-corpus" &&
                   "$top/build-fuzz/fuzz/fuzz-wire" -max_len=70000 -max_total_time="${FUZZ_SECONDS:-60}" \
                        "$dev/fuzz-corpus" >>"$dev/log/fuzz.log" 2>&1; then
                        pass=$((pass + 1))
                else
                        tail -n 30 "$dev/log/fuzz.log" >&2
                        extra_fail+=("fuzz/fuzz-wire failed; see .dev/log/fuzz.log")
                fi
        else
                skip=$((skip + 1))
                say "dev.sh: clang missing: fuzzing skipped"
        fi

        # --- system test under a real systemd (block owned by helper "packaging") ---
        # tests/system/test-nspawn.sh boots systemd in systemd-nspawn and runs the
        # installed suite there. It needs root, systemd-nspawn and debootstrap
        # (and a Debian mirror the first time) and prints "1..0 # SKIP reason"
        # otherwise, which counts as one skipped test.
        say "dev.sh: system test in systemd-nspawn (log in .dev/log/nspawn.log)"
        local nspawn_rc=0
        top_srcdir=$top top_builddir=$top/build timeout --kill-after=30 900 \
                bash "$top/tests/system/test-nspawn.sh" >"$dev/log/nspawn.log" 2>&1 || nspawn_rc=$?
        awk '/^1\.\.0 # SKIP/ || /^ok .*# SKIP/ { print "SKIP", 1; next }
             /^ok / { print "PASS", 1 } /^not ok / { print "FAIL", 1 }' "$dev/log/nspawn.log" >>"$results"
        grep -E '^1\.\.0 # SKIP|^not ok' "$dev/log/nspawn.log" | sed 's/^/dev.sh: test-nspawn.sh: /' >&2 || true
        if [ "$nspawn_rc" -ne 0 ] && ! grep -q '^not ok' "$dev/log/nspawn.log"; then
                tail -n 20 "$dev/log/nspawn.log" >&2
                extra_fail+=("tests/system/test-nspawn.sh exited $nspawn_rc; see .dev/log/nspawn.log")
        fi
        # --- end of the system test block ---

        while read -r kind n; do
                case $kind in
                PASS | XFAIL) pass=$((pass + n)) ;;
                FAIL | XPASS | ERROR) fail=$((fail + n)) ;;
                SKIP) skip=$((skip + n)) ;;
                esac
        done <"$results"

        for d in "${logs[@]}"; do
                say "dev.sh: ${d#"$top"/}: $(grep -E '^# (TOTAL|PASS|FAIL|SKIP|ERROR|XPASS):' "$d" | tr -s ' ' | tr '\n' ' ')"
        done
        for d in "${extra_fail[@]}"; do
                say "dev.sh: FAILED: $d"
                fail=$((fail + 1))
        done
        echo "$pass passed, $fail failed, $skip skipped"
        [ "$fail" -eq 0 ]
}

usage() {
        cat >&2 <<EOF
Usage: ./dev.sh COMMAND
  run     install dependencies, build, start the suite, open callcenterctl shell; stop on exit
  up      the same in the background (idempotent); prints the export lines for another terminal
  down    stop what up started
  test    install, build (plain and with sanitizers), run every test and distcheck
  deps    install missing build and run dependencies (apt-get or dnf)
  build   build into build/
  status  show what up started
  clean   down, then remove .dev/ (the PostgreSQL data, logs)
EOF
}

case ${1:-} in
deps) cmd_deps ;;
build) cmd_deps; cmd_build ;;
up) cmd_up ;;
down) cmd_down ;;
run) cmd_run ;;
test) cmd_test ;;
status) cmd_status ;;
clean) cmd_clean ;;
-h | --help | help) usage ;;
*) usage; exit 2 ;;
esac
