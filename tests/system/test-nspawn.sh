#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The suite under a real systemd: boot Debian bookworm with systemd as PID 1
# in systemd-nspawn (private network), install this tree into it the way a
# package does (make install, prefix /usr), with a PostgreSQL server, and:
#
#  - systemctl start callcenter.target: eventd and taskd run, routerd does
#    not until the first TCP connection to 127.0.0.1:5678 starts it;
#  - busctl on the system bus: every call as root; as a member of group
#    callcenter a mutating call works; as an unprivileged user reads work and
#    a mutating call is AccessDenied;
#  - systemctl status shows the daemons' STATUS= line; journalctl shows their
#    structured fields (ROUTER_PEER=, CODE_FUNC=);
#  - events reach eventd over /run/callcenter and land in PostgreSQL;
#  - systemctl restart callcenter-routerd while clients connect in a loop:
#    zero refused connections, and the queue is the same afterwards;
#  - systemctl reload callcenter-routerd applies a changed ring timeout;
#  - systemctl kill -s KILL: systemd restarts the daemon (Restart=on-failure).
#
# Needs root, systemd-nspawn, nsenter and debootstrap, and a Debian mirror the
# first time (the root file system is cached in $CALLCENTER_NSPAWN_CACHE,
# default /var/cache/callcenter-nspawn, and booted with --volatile=overlay so
# it stays pristine). Prints "1..0 # SKIP" when one of them is missing.
# About 3 minutes the first time (debootstrap), under a minute after that.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

[ "$(id -u)" -eq 0 ] || skip_all "needs root (systemd-nspawn)"
for t in systemd-nspawn nsenter debootstrap; do
        command -v "$t" >/dev/null || skip_all "$t not found (apt-get install systemd-container debootstrap)"
done
[ -d /sys/fs/cgroup ] || skip_all "no cgroup file system"

CACHE=${CALLCENTER_NSPAWN_CACHE:-/var/cache/callcenter-nspawn}
ROOT=$CACHE/bookworm
PKGS=systemd,systemd-sysv,dbus,postgresql,libzmq5,libpq5,libjson-c5,libinih1,python3-minimal,procps,iproute2
log() { printf '# %s %s\n' "$(date +%T)" "$*"; }

# --- 1. the root file system, cached ----------------------------------------------
if [ "$(cat "$ROOT/.callcenter-packages" 2>/dev/null)" != "$PKGS" ]; then
        MIRROR=${CALLCENTER_DEBIAN_MIRROR:-$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v '^[[:space:]]*#' |
                grep -oE 'https?://[^ ]+' | grep -E '/debian/?$' | head -n1)}
        [ -n "$MIRROR" ] || skip_all "no Debian mirror in /etc/apt/sources.list* (set CALLCENTER_DEBIAN_MIRROR)"
        mkdir -p "$CACHE"
        rm -rf "$ROOT" "$ROOT.tmp"
        log "debootstrap bookworm from $MIRROR (once; cached in $ROOT)"
        if ! debootstrap --variant=minbase --include="$PKGS" bookworm "$ROOT.tmp" "$MIRROR" \
                >"$CACHE/debootstrap.log" 2>&1; then
                rm -rf "$ROOT.tmp"
                skip_all "debootstrap failed (no mirror reachable?), see $CACHE/debootstrap.log"
        fi
        rm -rf "$ROOT.tmp"/var/cache/apt/archives/*.deb "$ROOT.tmp"/var/lib/apt/lists/*
        echo "$PKGS" >"$ROOT.tmp/.callcenter-packages"
        mv "$ROOT.tmp" "$ROOT"
fi

# --- 2. this tree, built and installed as a package would be ---------------------------
# A private build (prefix /usr) kept in the build tree, so a rerun is incremental.
B=$top_builddir/tests/system/nspawn-build
T=$(scratch_dir)
STAGE=$T/stage
mkdir -p "$B"
if [ ! -f "$B/Makefile" ]; then
        log "configure --prefix=/usr in $B"
        (cd "$B" && "$top_srcdir/configure" -q --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
                --with-systemdsystemunitdir=/usr/lib/systemd/system) >"$T/configure.log" 2>&1 ||
                { cat "$T/configure.log"; echo "Bail out! configure failed"; exit 1; }
fi
log "make install DESTDIR=$STAGE"
make -C "$B" -j"$(nproc)" >"$T/make.log" 2>&1 && make -C "$B" install DESTDIR="$STAGE" >>"$T/make.log" 2>&1 ||
        { tail -30 "$T/make.log"; echo "Bail out! build or install failed"; exit 1; }

# --- 3. boot ---------------------------------------------------------------------------
NAME=callcenter-test-$$
log "booting $ROOT"
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 timeout 900 \
        systemd-nspawn -q -D "$ROOT" -M "$NAME" --boot --register=no --keep-unit \
        --private-network --volatile=overlay --console=read-only \
        --bind-ro="$STAGE:/opt/stage" --bind-ro="$top_srcdir/tests/system:/opt/tests" \
        </dev/null >"$T/boot.log" 2>&1 &
WRAP=$!
cleanup() {
        if kill -0 "$WRAP" 2>/dev/null; then
                kill -TERM "$WRAP" 2>/dev/null         # nspawn turns SIGTERM into a clean halt
                for _ in $(seq 1 100); do kill -0 "$WRAP" 2>/dev/null || break; sleep 0.2; done
                kill -KILL "$WRAP" 2>/dev/null
        fi
        # --keep-unit leaves empty payload/supervisor cgroups under ours.
        local h cg d
        for h in systemd unified; do
                cg=$(awk -F: -v h="$h" '(h=="systemd" && $2=="name=systemd") || (h=="unified" && $1=="0") {print $3}' /proc/self/cgroup)
                for d in payload supervisor; do
                        [ -d "/sys/fs/cgroup/$h$cg/$d" ] &&
                                find "/sys/fs/cgroup/$h$cg/$d" -depth -type d -exec rmdir {} + 2>/dev/null
                done
        done
        rm -rf "$T"
}
trap cleanup EXIT

LEADER=
for _ in $(seq 1 200); do
        NSP=$(pgrep -P "$WRAP" -x systemd-nspawn)
        [ -n "$NSP" ] && LEADER=$(pgrep -P "$NSP" -x systemd)
        [ -n "$LEADER" ] && break
        sleep 0.1
done
[ -n "$LEADER" ] || { sed 's/^/# /' "$T/boot.log"; echo "Bail out! the container did not start"; exit 1; }
# IN CMD...: run in the container (all its namespaces, clean environment).
IN() { timeout 120 nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb LANG=C.UTF-8 "$@"; }
INQ() { IN "$@" >/dev/null 2>&1; }

state=
for _ in $(seq 1 300); do
        state=$(IN systemctl is-system-running 2>/dev/null)
        case "$state" in running|degraded) break ;; esac
        sleep 0.2
done
is "$state" running "systemd booted as PID 1 in the container"
[ "$state" = running ] || { IN systemctl --failed --no-pager | sed 's/^/# /'; }

# --- 4. install, as the RPM's scriptlets would ------------------------------------------
log "installing"
IN sh -c 'cp -a /opt/stage/. / && systemctl daemon-reload && systemd-sysusers && systemd-tmpfiles --create' 2>&1 | sed 's/^/# /'
INQ id callcenter
ok $? "systemd-sysusers created user callcenter"
is "$(IN stat -c '%a %U %G' /run/callcenter)" "770 callcenter callcenter" "systemd-tmpfiles created /run/callcenter"
# dbus-daemon notices new policy files, but a reload makes it certain.
INQ systemctl reload dbus

# PostgreSQL: the cluster Debian created; role and database callcenter, reached
# over the unix socket with peer authentication (User=callcenter).
IN systemctl start postgresql@15-main
wait_for 30 IN runuser -u postgres -- psql -qAtc 'SELECT 1'
IN runuser -u postgres -- psql -qAt -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE callcenter LOGIN" -c "CREATE DATABASE callcenter OWNER callcenter" >/dev/null
ok $? "PostgreSQL: role and database callcenter"
IN sh -c 'mkdir -p /etc/callcenter/callcenter.conf.d && cat >/etc/callcenter/callcenter.conf.d/10-test.conf' <<'EOF'
[database]
url=postgresql:///callcenter?host=/run/postgresql
EOF
# Debug logging for routerd, so that journalctl has its per-connection fields.
IN sh -c 'mkdir -p /etc/systemd/system/callcenter-routerd.service.d && cat >/etc/systemd/system/callcenter-routerd.service.d/test.conf && systemctl daemon-reload' <<'EOF'
[Service]
Environment=CALLCENTER_LOG_LEVEL=debug
EOF

# --- 5. start ---------------------------------------------------------------------------
log "systemctl start callcenter.target"
out=$(IN systemctl start callcenter.target 2>&1)
ok $? "systemctl start callcenter.target"
[ -z "$out" ] || diag "$out"
for u in callcenter.target callcenter-eventd.socket callcenter-eventd.service \
        callcenter-routerd.socket callcenter-taskd.service; do
        is "$(IN systemctl is-active "$u")" active "$u is active"
done
is "$(IN systemctl is-active callcenter-routerd.service)" inactive \
        "callcenter-routerd.service waits for its first connection"
for u in callcenter-eventd callcenter-taskd; do
        [ "$(IN systemctl is-active "$u")" = active ] ||
                IN journalctl -b -u "$u" --no-pager -n 30 | sed 's/^/# /'
done

# A TCP client inside the container (the seed's JSON-lines protocol).
client() { IN python3 /opt/tests/nspawn-client.py "$@"; }
out=$(client request '{"command":"status"}')
like "$out" '"ok": ?true' "the first connection to 127.0.0.1:5678 gets a reply"
is "$(IN systemctl is-active callcenter-routerd.service)" active "...and socket activation started callcenter-routerd"
[ "$(IN systemctl is-active callcenter-routerd.service)" = active ] ||
        IN journalctl -b -u callcenter-routerd --no-pager -n 30 | sed 's/^/# /'

# --- 6. D-Bus on the system bus ------------------------------------------------------------
R="org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1"
out=$(IN busctl call $R PlaceCall s c1 2>&1)
is "$out" 'ss "ringing" "A"' "busctl as root: PlaceCall c1 rings operator A"
out=$(IN busctl call org.callcenter.Tasks1 /org/callcenter/Tasks1 org.callcenter.Tasks1 CreateTask sts "call c1" 0 c1 2>&1)
like "$out" '^t [1-9][0-9]*$' "busctl as root: CreateTask on org.callcenter.Tasks1"

IN useradd -M -N -g callcenter -G callcenter supervisor1
IN useradd -M -N -g nogroup guest1
asuser() { local u=$1; shift; IN setpriv --reuid="$u" --regid="$(IN id -g "$u")" --init-groups "$@"; }
out=$(asuser supervisor1 busctl call $R PlaceCall s c2 2>&1)
is "$out" 'ss "ringing" "B"' "busctl as a member of group callcenter: PlaceCall c2 rings B"
out=$(asuser guest1 busctl call $R PlaceCall s c3 2>&1)
like "$out" 'Access denied|AccessDenied' "busctl as an unprivileged user: PlaceCall is AccessDenied"
out=$(asuser guest1 busctl get-property $R QueueLength 2>&1)
is "$out" "u 0" "busctl as an unprivileged user: reads QueueLength"
out=$(asuser guest1 busctl call $R ListCalls 2>&1)
like "$out" '^a\(ssst\) 2 "c1" "ringing" "A" [0-9]+ "c2" "ringing" "B" [0-9]+$' \
        "busctl as an unprivileged user: ListCalls"
out=$(asuser guest1 busctl call org.callcenter.Tasks1 /org/callcenter/Tasks1 org.callcenter.Tasks1 CreateTask sts x 0 "" 2>&1)
like "$out" 'Access denied|AccessDenied' "busctl as an unprivileged user: CreateTask is AccessDenied"
out=$(IN runuser -u guest1 -- busctl --system call org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus RequestName su org.callcenter.Router1 0 2>&1)
like "$out" 'not allowed|Access denied|AccessDenied' "an unprivileged user cannot own org.callcenter.Router1"

# --- 7. status and journal ------------------------------------------------------------------
for u in callcenter-eventd callcenter-routerd callcenter-taskd; do
        out=$(IN systemctl status "$u" --no-pager 2>&1)
        like "$out" 'Status: "[^"]+"' "systemctl status $u shows the STATUS= line"
        grep -E 'Status: "' <<<"$out" | sed 's/^ */# /'
done
sleep 0.5
out=$(IN journalctl -b -u callcenter-routerd -o verbose --no-pager 2>&1)
like "$out" 'ROUTER_PEER=127\.0\.0\.1:[0-9]+' "journalctl: routerd's ROUTER_PEER= field"
like "$out" 'CODE_FUNC=[a-z_]+' "journalctl: routerd's CODE_FUNC= field"
like "$out" 'SYSLOG_IDENTIFIER=callcenter-routerd' "journalctl: SYSLOG_IDENTIFIER=callcenter-routerd"

# The event path: routerd publishes on /run/callcenter/events-in, eventd
# (sandboxed, PrivateUsers=yes) archives it in PostgreSQL.
evq="SELECT count(*) FROM events WHERE topic = 'router.call.ringing'"
ev_seen() { [ "$(IN runuser -u callcenter -- psql -qAt -d callcenter -c "$evq" 2>/dev/null)" -ge 2 ]; }
wait_for 15 ev_seen
ok $? "router events reach eventd over /run/callcenter and PostgreSQL ($evq)"

# --- 8. restart under load ---------------------------------------------------------------------
# Queue four more calls behind the two ringing ones, then restart while
# clients connect, send status and read the reply, in a loop.
# A and B answer first: busy calls do not ring out during the test.
INQ busctl call $R Answer s A
INQ busctl call $R Answer s B
for c in c3 c4 c5 c6; do INQ busctl call $R PlaceCall s "$c"; done
# ListCalls without the waited times (they grow).
calls() { IN busctl call $R ListCalls | sed -E 's/" [0-9]+( |$)/"\1/g'; }
before=$(calls)
like "$before" '^a\(ssst\) 6 ' "six calls before the restart"
like "$before" '"c1" "answered" "A"|"c1" "busy" "A"' "c1 answered by A"
is "$(grep -o '"queued"' <<<"$before" | wc -l)" 4 "four calls queued"
diag "before: $before"
pid_before=$(IN systemctl show -P MainPID callcenter-routerd)
client load 8 4 >"$T/load.out" 2>&1 &
LOAD=$!
sleep 2
log "systemctl restart callcenter-routerd (under load)"
out=$(IN systemctl restart callcenter-routerd 2>&1)
ok $? "systemctl restart callcenter-routerd"
wait $LOAD
sed 's/^/# /' "$T/load.out"
like "$(cat "$T/load.out")" '^load: [1-9][0-9]* connections, 0 refused,' \
        "zero refused connections across the restart (systemd holds 127.0.0.1:5678)"
# Stricter: a request on a connection the old routerd had accepted is
# answered too (DESIGN.md: SIGTERM finishes in-flight work), no reset.
like "$(cat "$T/load.out")" '^load: [1-9][0-9]* connections, 0 refused, 0 failed' \
        "every request across the restart got its reply (no reset by the stopping routerd)"
after=$(calls)
[ -n "$before" ] && [ "$after" = "$before" ]
ok $? "the calls and the queue are intact after the restart"
[ "$after" = "$before" ] || diag "after: $after"
[ "$(IN systemctl show -P MainPID callcenter-routerd)" != "$pid_before" ]
ok $? "routerd runs with a new pid"

# --- 8b. reload -------------------------------------------------------------------------------
# A drop-in changes the ring timeout; systemctl reload (ExecReload= sends
# SIGHUP, routerd answers RELOADING=1 ... READY=1) applies it in place.
pid_before=$(IN systemctl show -P MainPID callcenter-routerd)
IN sh -c 'printf "[router]\nring_timeout=7s\n" >/etc/callcenter/callcenter.conf.d/20-reload.conf'
out=$(IN systemctl reload callcenter-routerd 2>&1)
ok $? "systemctl reload callcenter-routerd"
[ -z "$out" ] || diag "$out"
ring7() { [ "$(IN busctl get-property $R RingTimeoutUSec)" = "t 7000000" ]; }
wait_for 10 ring7
ok $? "after the reload: RingTimeoutUSec is 7 s"
like "$(IN journalctl -b -u callcenter-routerd --no-pager -o cat | grep 'Reloaded configuration')" \
        'ring_timeout 10s -> 7s' "journal: what the reload changed"
is "$(IN systemctl show -P MainPID callcenter-routerd)" "$pid_before" "...in the same process"
is "$(IN systemctl is-active callcenter-routerd)" active "...which is active (READY=1 after RELOADING=1)"

# --- 9. SIGKILL: systemd restarts it --------------------------------------------------------------
for u in callcenter-routerd callcenter-eventd callcenter-taskd; do
        pid=$(IN systemctl show -P MainPID "$u")
        n=$(IN systemctl show -P NRestarts "$u")
        INQ systemctl kill -s KILL "$u"
        restarted() {
                local p; p=$(IN systemctl show -P MainPID "$1")
                [ "$p" != 0 ] && [ "$p" != "$2" ] && [ "$(IN systemctl show -P NRestarts "$1")" -gt "$3" ] &&
                        [ "$(IN systemctl is-active "$1")" = active ]
        }
        wait_for 20 restarted "$u" "$pid" "$n"
        ok $? "systemctl kill -s KILL $u: restarted automatically (NRestarts $n -> $(IN systemctl show -P NRestarts "$u"))"
done
after=$(calls)
[ -n "$before" ] && [ "$after" = "$before" ]
ok $? "the queue survives SIGKILL of routerd"
[ "$after" = "$before" ] || diag "after: $after"

# Nothing failed and the hardening did not get in the way (no seccomp or
# sandbox denials logged by the daemons).
out=$(IN systemctl --failed --no-legend --plain --no-pager)
is "$out" "" "no failed units"
[ -z "$out" ] || IN journalctl -b -u 'callcenter-*' --no-pager -n 60 | sed 's/^/# /' 
out=$(IN journalctl -b -u 'callcenter-*' --no-pager -o cat | grep -Ei 'permission denied|operation not permitted|read-only file system|bad system call|core-dump|dumped core')
is "$out" "" "no sandbox denials in the daemons' journal"

# The exposure the running systemd computes for the loaded units.
for u in callcenter-eventd callcenter-routerd callcenter-taskd; do
        line=$(IN systemd-analyze security --no-pager "$u.service" 2>&1 | grep "Overall exposure level")
        level=$(sed -nE 's/.*: ([0-9]+\.[0-9]+) .*/\1/p' <<<"$line")
        [ -n "$level" ] && awk -v l="$level" 'BEGIN{exit !(l <= 2.0)}'
        ok $? "systemd-analyze security $u.service (loaded): exposure ${level:-?} <= 2.0"
done

# --- 10. shut down ------------------------------------------------------------------------------
INQ systemctl poweroff
rc=0
for _ in $(seq 1 150); do kill -0 "$WRAP" 2>/dev/null || break; sleep 0.2; done
wait "$WRAP" || rc=$?
is "$rc" 0 "the container shuts down cleanly"
done_testing
