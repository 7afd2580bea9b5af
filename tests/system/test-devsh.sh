#!/bin/bash
# SPDX-License-Identifier: MIT
#
# dev.sh's own behaviour, on a scratch copy of it (never this checkout, and
# never `dev.sh test`, which runs make check, which runs this):
#
#  - one dev.sh at a time: a second `build` started while the first one
#    configures waits (and says for whom), and configure runs once;
#  - `clean` started during a `build` waits for it, then says which build
#    directories it kept (and keeps them, and not build-aux/);
#  - a lock held by another program, with no .dev/ to name a holder: `down`
#    waits with a message all the same;
#  - a configure cut short (the process group SIGKILLed, as by a closed
#    terminal) is redone by the next build; so is one that left a Makefile
#    without the stamp, a config.status without config.h, or a config.h
#    without _GNU_SOURCE; a finished one is not;
#  - `run` does not deadlock: it starts the suite, another `dev.sh up` from
#    its shell does not wait, and `down` runs when the shell exits.
#
# The copy has a stand-in configure (no compiler: it writes Makefile,
# config.status and config.h, and when told waits for a file before
# config.h) and a stand-in .ci/deps.sh that installs nothing; the lock,
# configure_dir and clean under test are dev.sh's own.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

need_cmds flock setsid timeout
unset CALLCENTER_DEV_LOCK

T=$(scratch_dir)
S=$T/checkout
bg_pids=()
cleanup() {
        local p
        for p in "${bg_pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null; done
        [ -d "$S/.dev" ] && CALLCENTER_DEV_LOCK=$S timeout 60 "$BASH" "$S/dev.sh" down >/dev/null 2>&1
        rm -rf "$T"
}
trap cleanup EXIT

# --- the scratch checkout --------------------------------------------------------
mkdir -p "$S/.ci" "$S/tests/integration" "$S/build-aux"
cp "$top_srcdir/dev.sh" "$S/"
cp "$top_srcdir/tests/integration/lib.sh" "$S/tests/integration/"
chmod -R u+w "$S"
cat >"$S/.ci/deps.sh" <<'EOF'
deps_install() { :; }
EOF
: >"$S/configure.ac"
: >"$S/Makefile.am"
: >"$S/build-aux/tap-driver.sh"
cat >"$S/config.h.in" <<'EOF'
#undef PACKAGE
#undef HAVE_MINIX_CONFIG_H
#ifndef _GNU_SOURCE
# undef _GNU_SOURCE
#endif
#ifndef _MINIX
# undef _MINIX
#endif
EOF
# configure: logs "start"/"end" to configure.log; with FAKE_CONFIGURE_GATE
# set, waits (at most 120 s) for that file before it writes config.h.
cat >"$S/configure" <<EOF
#!/bin/bash
log=$S/configure.log
echo "start \$\$ \$*" >>"\$log"
printf 'all:\n\t@:\n' >Makefile
printf '#!/bin/sh\n' >config.status
if [ -n "\${FAKE_CONFIGURE_GATE:-}" ]; then
        for _ in \$(seq 1200); do [ -e "\$FAKE_CONFIGURE_GATE" ] && break; sleep 0.1; done
fi
cat >config.h <<'H'
/* config.h.  Generated from config.h.in by configure.  */
#define PACKAGE "callcenter"
/* #undef HAVE_MINIX_CONFIG_H */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE 1
#endif
#ifndef _MINIX
/* # undef _MINIX */
#endif
H
echo "end \$\$" >>"\$log"
EOF
chmod +x "$S/configure"
# autoreconf must not run: what configure is made from is older than it.
touch -d '-1 hour' "$S/configure.ac" "$S/Makefile.am"

devsh() { "$BASH" "$S/dev.sh" "$@"; }
starts() { grep -c '^start' "$S/configure.log" 2>/dev/null || true; }
more_starts() { [ "$(starts)" -gt "$1" ]; }
# started NAME DEV.SH-COMMAND: `dev.sh COMMAND` in the background in a process
# group of its own (killable as a whole), stderr to $T/NAME.err, and
# "done NAME RC" appended to configure.log when it ends.
started() {
        # shellcheck disable=SC2016 # expanded by the inner bash
        setsid "$BASH" -c '"$BASH" "$1" "$2" 2>"$3.err"; echo "done ${3##*/} $?" >>"$4"' \
                devsh "$S/dev.sh" "$2" "$T/$1" "$S/configure.log" </dev/null &
        bg_pids+=($!)
}
log_has() { grep -q -- "$1" "$S/configure.log" 2>/dev/null; }
err_has() { grep -q -- "$2" "$T/$1.err" 2>/dev/null; }
diag_file() { sed 's/^/# /' "$1"; }
lacks() { ! grep -q -- "$2" "$1"; }     # lacks FILE ERE
lock_busy() { ! flock -n "$S" true; }

# --- sourced, dev.sh defines its functions and runs nothing ---------------------
out=$( (. "$S/dev.sh"; declare -F configure_dir dev_lock build_dir) 2>&1)
is "$out" "configure_dir
dev_lock
build_dir" "sourced, dev.sh defines its functions and runs no command"

# --- two builds at once: the second waits ---------------------------------------
export FAKE_CONFIGURE_GATE=$T/gate
started A build
wait_for 60 log_has '^start'
ok $? "the first build runs configure"
started B build
wait_for 60 err_has B 'waiting for it to finish'
ok $? "a second build started meanwhile waits, and says so"
like "$(cat "$T/B.err")" 'dev\.sh build \(pid [0-9]+\) is running in this checkout' \
        "the waiting message names the one that holds the lock"
touch "$T/gate"
wait "${bg_pids[@]}" 2>/dev/null
bg_pids=()
same "done A 0" "$(grep '^done A' "$S/configure.log")" &&
        same "done B 0" "$(grep '^done B' "$S/configure.log")"
ok $? "both builds succeed"
is "$(grep -v '^done A' "$S/configure.log" | sed 's/ .*//' | tr '\n' ' ')" "start end done " \
        "configure ran once, and the second build ended after it"
rm -f "$T/gate"

# --- clean during a build: waits, then keeps the build directories ---------------
rm -f "$S/build/.dev-configure-args" "$S/configure.log"
mkdir -p "$S/build-asan"
started A build
wait_for 60 log_has '^start'
started C clean
wait_for 60 err_has C 'waiting for it to finish'
ok $? "clean started during a build waits for it"
touch "$T/gate"
wait "${bg_pids[@]}" 2>/dev/null
bg_pids=()
is "$(grep -v '^done A' "$S/configure.log" | sed 's/ .*//' | tr '\n' ' ')" "start end done " \
        "clean ran after the build had finished configuring"
grep -q '^done C 0' "$S/configure.log"
ok $? "clean succeeds"
like "$(cat "$T/C.err")" 'kept build/ build-asan/ ' "clean says which build directories it kept"
check "clean does not count build-aux/ as a build directory" -- lacks "$T/C.err" build-aux
[ ! -e "$S/.dev" ] && [ -f "$S/build/.dev-configure-args" ] && [ -f "$S/build/config.h" ]
ok $? "clean removed .dev/ and kept build/ whole"
rm -f "$T/gate"
unset FAKE_CONFIGURE_GATE

# --- held by something else, with no .dev/: waits, with a message all the same ---
flock "$S" sleep 3 &
holder=$!
wait_for 30 lock_busy
timeout 60 "$BASH" "$S/dev.sh" down 2>"$T/D.err"
ok $? "down waits for a lock held by another program, then runs"
wait "$holder"
like "$(cat "$T/D.err")" '^dev\.sh: another dev\.sh is running in this checkout; waiting for it to finish' \
        "without a holder to name, the message says another dev.sh"

# --- what counts as a finished configure ----------------------------------------
rebuilt() {     # rebuilt WHY: a build now configures again, saying WHY
        local n
        n=$(starts)
        devsh build 2>"$T/build.err" || { diag_file "$T/build.err"; return 1; }
        [ "$(starts)" = $((n + 1)) ] || { diag "configure did not run"; return 1; }
        grep -q "configuring build/ ($1)" "$T/build.err" || { diag_file "$T/build.err"; return 1; }
}
n=$(starts)
devsh build 2>"$T/build.err"
ok $? "a build in a finished build/ succeeds"
is "$(starts)" "$n" "and does not configure again"

rm "$S/build/.dev-configure-args"
check "a Makefile without the stamp is configured again" -- rebuilt "the last configure did not finish"

rm "$S/build/config.h"
check "a config.status without config.h is configured again" -- rebuilt "its config.h is incomplete"

sed -i '/_GNU_SOURCE/d' "$S/build/config.h"
check "a config.h without _GNU_SOURCE is configured again" -- rebuilt "its config.h is incomplete"
check "which then has it" -- grep -q '^# define _GNU_SOURCE 1' "$S/build/config.h"

sed -i '/_MINIX/d' "$S/build/config.h"
check "a config.h that lacks a macro of config.h.in is configured again" -- rebuilt "its config.h is incomplete"

# Cut short: the build and all it started SIGKILLed in the middle of configure.
rm -rf "$S/build"
export FAKE_CONFIGURE_GATE=$T/gate
n=$(starts)
started K build
wait_for 60 more_starts "$n"
ok $? "a build of a new build/ runs configure"
{ kill -KILL -- "-${bg_pids[0]}"; wait "${bg_pids[@]}"; } 2>/dev/null
bg_pids=()
unset FAKE_CONFIGURE_GATE
[ -f "$S/build/Makefile" ] && [ ! -f "$S/build/config.h" ]
ok $? "killed, it leaves a Makefile but no config.h"
check "the next build configures again" -- rebuilt "the last configure did not finish"
[ -f "$S/build/.dev-configure-args" ] && grep -q '^# define _GNU_SOURCE 1' "$S/build/config.h"
ok $? "and finishes configure"
check "a lock held by a killed build is free" -- flock -n "$S" true

# --- run: starts, lets another up in, stops --------------------------------------
if pg_usable && command -v dbus-daemon >/dev/null && command -v busctl >/dev/null; then
        # What a user types in run's shell: another dev.sh up, then exit.
        printf '%s\n' "\"\$BASH\" '$S/dev.sh' up >'$T/inner.out' 2>'$T/inner.err'; echo \$? >'$T/inner.rc'" exit \
                >"$T/shell-input"
        timeout -k 10 300 "$BASH" "$S/dev.sh" run <"$T/shell-input" >"$T/run.out" 2>"$T/run.err"
        rc=$?
        is "$rc" 0 "run starts the suite, opens its shell and returns when it exits"
        [ "$rc" -eq 0 ] || diag_file "$T/run.err"
        is "$(cat "$T/inner.rc" 2>/dev/null)" 0 "an up from run's shell does not wait for run"
        like "$(cat "$T/inner.out" 2>/dev/null)" "export CALLCENTER_DATABASE_URL=.*host=$S/\.dev/pg" \
                "and prints the exports of the running suite"
        lacks "$T/run.err" "waiting for" && lacks "$T/inner.err" "waiting for"
        ok $? "no waiting in run or in the up from its shell"
        like "$(cat "$T/run.err")" 'stopping PostgreSQL' "leaving the shell runs down"
        is "$(devsh status 2>&1)" "nothing running" "after run, nothing runs"
else
        skip "run: PostgreSQL or dbus-daemon missing"
fi

done_testing
