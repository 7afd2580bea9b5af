#!/usr/bin/env bash
# .ci/test.sh: the whole test pipeline, what `./dev.sh test` (and so .ci/run)
# runs. In order: install the dependencies (.ci/deps.sh); build build/ and
# build-asan/ (AddressSanitizer and UBSan) and run make check in both; make
# distcheck; the RPM with rpmlint; the wire parser under libFuzzer; the
# system test in systemd-nspawn. Ends with the line
# "N passed, N failed, N skipped" and exits non-zero if anything failed.
# Logs go to .dev/log/; the tails of failing tests' logs to stderr.
#
# It sources dev.sh for the build steps and runs under dev.sh's lock of the
# checkout (taken here when started directly: bash .ci/test.sh), so no
# `./dev.sh up`, `down` or `clean` runs in this checkout meanwhile.

# shellcheck source=dev.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/dev.sh"
dev_lock "$top/.ci/test.sh" "$@"
dev_lock_holder "test"

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

ci_test() {
        local pass=0 fail=0 skip=0 kind n extra_fail=() d stamp logs=() results
        deps_install
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
                : >"$dev/log/fuzz.log"
                if (configure_dir build-fuzz "$dev/log/fuzz.log" CC=clang --enable-fuzzers --enable-sanitizers) &&
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

ci_test
