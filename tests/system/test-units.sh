#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The systemd units and D-Bus files as shipped, checked without booting:
#
#  - systemd-analyze verify of every unit, with ExecStart= pointing at the
#    binaries of this build tree (so a missing binary or a bad directive fails);
#  - the unit contract of DESIGN.md: Type=notify, WatchdogSec=, Restart=on-failure,
#    User=callcenter, BusName= for the bus daemons, sockets on 5556 and 5678;
#  - systemd-analyze security --offline=true: exposure <= 2.0 for every service;
#  - sysusers.d and tmpfiles.d parse (systemd-sysusers/tmpfiles --dry-run style);
#  - every dbus/*.conf is well-formed and grants what DESIGN.md says: only user
#    callcenter owns the name, root and group callcenter call everything,
#    everyone else only reads; every activation file names an existing unit;
#  - every dbus/*.xml matches the Introspect output of the running daemon on
#    a private bus (routerd without, taskd with a throwaway PostgreSQL).
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

command -v systemd-analyze >/dev/null || skip_all "systemd-analyze not found"
command -v python3 >/dev/null || skip_all "python3 not found"
CHECK="python3 $top_srcdir/tests/system/dbus-check.py"
SERVICES="callcenter-eventd callcenter-routerd callcenter-taskd"
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}

T=$(scratch_dir)
pids=()
cleanup() {
        local p
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
        dbus_stop
        pg_stop
        rm -rf "$T"
}
trap cleanup EXIT

# --- the units, with ExecStart= in this build tree ------------------------------
mkdir -p "$T/units"
for s in $SERVICES; do
        f=$top_builddir/systemd/$s.service
        [ -f "$f" ] || make -C "$top_builddir" "systemd/$s.service" >/dev/null 2>&1
        [ -f "$f" ] || { echo "Bail out! $f not built"; exit 1; }
        bin=$top_builddir/daemons/${s#callcenter-}/$s
        [ -x "$bin" ] || { echo "Bail out! $bin not built"; exit 1; }
        sed -e "s|^ExecStart=[^ ]*/$s|ExecStart=$bin|" "$f" >"$T/units/$s.service"
done
cp "$top_srcdir"/systemd/*.socket "$top_srcdir"/systemd/*.target "$T/units/"

# verify loads the units of the same directory; anything it prints is a problem.
out=$(cd "$T/units" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no ./*.service ./*.socket ./*.target 2>&1)
is "$out" "" "systemd-analyze verify: no complaints"

unit_has() {    # unit_has FILE LINE: the exact directive line is present
        grep -qxF -- "$2" "$1"
}
for s in $SERVICES; do
        u=$top_builddir/systemd/$s.service
        ok=0
        for want in Type=notify Restart=on-failure User=callcenter Group=callcenter; do
                unit_has "$u" "$want" || { diag "$s: no $want"; ok=1; }
        done
        grep -qE '^WatchdogSec=[1-9]' "$u" || { diag "$s: no WatchdogSec="; ok=1; }
        grep -qE '^ExecStart=/' "$u" || { diag "$s: ExecStart= not absolute"; ok=1; }
        ok $ok "$s.service: Type=notify, WatchdogSec, Restart=on-failure, User/Group=callcenter"
done
unit_has "$top_builddir/systemd/callcenter-routerd.service" BusName=org.callcenter.Router1 &&
        unit_has "$top_builddir/systemd/callcenter-taskd.service" BusName=org.callcenter.Tasks1
ok $? "BusName= of routerd and taskd"
grep -qE '^StateDirectory=callcenter-eventd$' "$top_builddir/systemd/callcenter-eventd.service"
ok $? "eventd has StateDirectory= (\$STATE_DIRECTORY, its archive spill file)"
unit_has "$top_srcdir/systemd/callcenter-routerd.socket" ListenStream=127.0.0.1:5678 &&
        unit_has "$top_srcdir/systemd/callcenter-eventd.socket" ListenStream=127.0.0.1:5556
ok $? "socket units listen on 127.0.0.1:5678 (router) and 127.0.0.1:5556 (events)"
ok=0
for s in $SERVICES; do
        grep -q "^Wants=.*$s\b" "$top_srcdir/systemd/callcenter.target" ||
                grep -q "^Wants=.*${s}\.socket" "$top_srcdir/systemd/callcenter.target" ||
                { diag "callcenter.target does not pull in $s"; ok=1; }
done
ok $ok "callcenter.target pulls in every daemon"

# --- hardening -------------------------------------------------------------------
for s in $SERVICES; do
        line=$(systemd-analyze security --offline=true --no-pager "$T/units/$s.service" 2>&1 |
                grep "Overall exposure level")
        level=$(sed -nE 's/.*: ([0-9]+\.[0-9]+) .*/\1/p' <<<"$line")
        if [ -n "$level" ] && awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN{exit !(l <= m)}'; then
                ok 0 "$s.service exposure $level <= $MAX_EXPOSURE"
        else
                ok 1 "$s.service exposure '${level:-?}' <= $MAX_EXPOSURE"
                diag "$line"
        fi
done

# --- sysusers.d and tmpfiles.d ------------------------------------------------
if command -v systemd-sysusers >/dev/null; then
        mkdir -p "$T/root/etc"
        out=$(systemd-sysusers --root="$T/root" "$top_srcdir/systemd/callcenter.sysusers" 2>&1)
        ok=$?
        grep -q '^callcenter:' "$T/root/etc/passwd" 2>/dev/null && grep -q '^callcenter:' "$T/root/etc/group" 2>/dev/null || ok=1
        ok $ok "sysusers.d creates user and group callcenter"
        [ "$ok" -eq 0 ] || diag "$out"
        out=$(systemd-tmpfiles --root="$T/root" --create "$top_srcdir/systemd/callcenter.tmpfiles" 2>&1)
        ok=$?
        [ "$(stat -c %a "$T/root/run/callcenter" 2>/dev/null)" = 770 ] || ok=1
        ok $ok "tmpfiles.d creates /run/callcenter, mode 0770"
        [ "$ok" -eq 0 ] || diag "$out"
else
        skip "systemd-sysusers not found"
        skip "systemd-tmpfiles not found"
fi

# --- D-Bus policy and activation --------------------------------------------------
for conf in "$top_srcdir"/dbus/org.callcenter.*.conf; do
        n=$(basename "$conf" .conf)
        if command -v xmllint >/dev/null; then
                xmllint --noout "$conf" 2>&1
                ok $? "$n.conf is well-formed XML"
        fi
        xml=$top_srcdir/dbus/$n.xml
        [ -f "$xml" ] || { ok 1 "$n.xml exists next to $n.conf"; continue; }
        out=$($CHECK policy "$conf" "$xml")
        ok $? "$n.conf: only callcenter owns, root and group callcenter call all, others read"
        [ -z "$out" ] || diag "$out"
        svc=$top_srcdir/dbus/$n.service
        if [ -f "$svc" ]; then
                out=$($CHECK activation "$svc" "$top_srcdir/systemd")
                ok $? "$n.service: system activation through SystemdService="
                [ -z "$out" ] || diag "$out"
        else
                ok 1 "$n.service (system activation file) exists"
        fi
        grep -q "dbus/$n.service" "$top_srcdir/dbus/local.mk" && grep -q "dbus/$n.xml" "$top_srcdir/dbus/local.mk"
        ok $? "$n: activation file and XML are installed (dbus/local.mk)"
done

# --- the spec and the container files (static) ---------------------------------------
spec=$top_builddir/rpm/callcenter.spec
if [ -f "$spec" ]; then
        ok=0
        for want in '%systemd_post ' '%systemd_preun ' '%systemd_postun_with_restart ' \
                '%sysusers_create_compat ' '%config(noreplace) %{_sysconfdir}/callcenter/callcenter.conf' \
                'make_build check-unit' 'BuildRequires:  pkgconfig(libsystemd)' 'License:        MIT'; do
                grep -qF -- "$want" "$spec" || { diag "spec: no '$want'"; ok=1; }
        done
        for u in callcenter-eventd.service callcenter-routerd.service callcenter-taskd.service \
                callcenter-eventd.socket callcenter-routerd.socket callcenter.target; do
                grep -q "^%{_unitdir}/$u\$" "$spec" || { diag "spec: %files lacks $u"; ok=1; }
        done
        ok $ok "rpm/callcenter.spec: systemd scriptlets, sysusers, %config(noreplace), %check, every unit"
        if command -v rpmspec >/dev/null; then
                # Source1 (the sysusers file) is read while parsing.
                out=$(rpmspec -P --load="$top_srcdir/rpm/macros.fallback" \
                        --define "_sourcedir $top_srcdir/systemd" "$spec" 2>&1 >/dev/null)
                [ $? -eq 0 ] && [ -z "$out" ]
                ok $? "rpmspec parses rpm/callcenter.spec without complaints"
                [ -z "$out" ] || diag "$out"
        fi
else
        ok 1 "rpm/callcenter.spec generated by configure"
fi
sh -n "$top_srcdir/container/entrypoint.sh"
ok $? "container/entrypoint.sh: sh -n"
if command -v xmllint >/dev/null; then
        xmllint --noout "$top_srcdir/container/bus.conf"
        ok $? "container/bus.conf is well-formed XML"
fi
out=$(python3 "$top_srcdir/tests/system/container-check.py" "$top_srcdir" "$spec" 2>&1)
ok $? "container/: Rocky 9 multi-stage Containerfile, compose.yaml with PostgreSQL and every daemon"
[ -z "$out" ] || diag "$out"

# --- introspection XML against the running daemons ---------------------------------
command -v dbus-daemon >/dev/null && command -v busctl >/dev/null || {
        skip "dbus-daemon or busctl not found"; done_testing; exit; }
dbus_start "$T" || { echo "Bail out! cannot start dbus-daemon"; exit 1; }
printf '[database]\nurl=\n' >"$T/nodb.conf"
export CALLCENTER_EVENTS_PUBLISH="ipc://$T/events-in"
export CALLCENTER_EVENTS="tcp://127.0.0.1:$(free_port)"

name_up() { busctl --user status "$1" >/dev/null 2>&1; }
CALLCENTER_ROUTER=127.0.0.1:$(free_port) \
        "$top_builddir/daemons/routerd/callcenter-routerd" --user --config="$T/nodb.conf" 2>"$T/routerd.log" &
pids+=($!)
if wait_for 10 name_up org.callcenter.Router1; then
        out=$($CHECK introspect "$top_srcdir/dbus/org.callcenter.Router1.xml" org.callcenter.Router1 \
                /org/callcenter/Router1 --user 2>&1)
        ok $? "org.callcenter.Router1.xml matches the running callcenter-routerd"
        [ -z "$out" ] || diag "$out"
else
        ok 1 "callcenter-routerd on a private bus"; diag "$(cat "$T/routerd.log")"
fi

if ! pg_bindir >/dev/null || { [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; }; then
        skip "no PostgreSQL server for callcenter-taskd"
elif ! pg_start "$T/pg"; then
        ok 1 "throwaway PostgreSQL for callcenter-taskd"
else
        printf '[database]\nurl=%s\n' "$PG_URL" >"$T/db.conf"
        "$top_builddir/daemons/taskd/callcenter-taskd" --user --config="$T/db.conf" 2>"$T/taskd.log" &
        pids+=($!)
        if wait_for 20 name_up org.callcenter.Tasks1; then
                out=$($CHECK introspect "$top_srcdir/dbus/org.callcenter.Tasks1.xml" org.callcenter.Tasks1 \
                        /org/callcenter/Tasks1 --user 2>&1)
                ok $? "org.callcenter.Tasks1.xml matches the running callcenter-taskd"
                [ -z "$out" ] || diag "$out"
        else
                ok 1 "callcenter-taskd on a private bus"; diag "$(cat "$T/taskd.log")"
        fi
fi

done_testing
