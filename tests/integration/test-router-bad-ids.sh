#!/bin/bash
# SPDX-License-Identifier: MIT
#
# callcenter-routerd echoes no client-chosen string raw in an error message
# (issue: a 1 MB id gave a 1 MB D-Bus error message, with ESC and other
# control bytes as they came). Every Router1 method that takes an id, a
# queue or a status gets ~100 KB of "a" + ESC + "[31m" (as big as one
# command-line argument can be), and the error it answers must be:
#
#  - short (under 300 bytes), whatever the argument's length;
#  - free of control bytes: ESC appears as \x1b (libshared escape_cut());
#  - still the named error (InvalidArgument) with the start of the id.
#
# The TCP wire never echoes a bad id: its bad_id line is checked too.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

router_test_begin
printf '%s\n' '[database]' 'url=' '[events]' 'publish=' '[router]' "listen=127.0.0.1:$PORT" \
        'operators=A B' >"$T/routerd.conf"
routerd_start "$T/routerd.conf" "$T/routerd.log"

R=(org.callcenter.Router1 /org/callcenter/Router1 org.callcenter.Router1)
ESC=$'\e'
# ~100 KB: MAX_ARG_STRLEN (128 KiB) bounds one argument of busctl.
BAD=$(python3 -c 'import sys; sys.stdout.write("a\x1b[31m" * 16000)')
[ ${#BAD} -ge 90000 ] || bail_out "could not build the long id"

# clean_error DESCRIPTION OUTPUT: one short error line without control bytes
# that shows the start of the id escaped.
clean_error() {
        local what=$1 out=$2
        ok "$([ ${#out} -lt 300 ]; echo $?)" "$what: message is short (${#out} bytes)"
        ok "$(LC_ALL=C grep -q '[[:cntrl:]]' <<<"$out" && echo 1 || echo 0)" "$what: no control byte in it"
        like "$out" 'a\\x1b\[31ma\\x1b\[31m.*\.\.\.' "$what: the id's start, escaped, then ..."
}

out=$(busctl --user call "${R[@]}" PlaceCall s "$BAD" 2>&1)
clean_error "PlaceCall" "$out"
out=$(busctl --user call "${R[@]}" Hangup s "$BAD" 2>&1)
clean_error "Hangup" "$out"
out=$(busctl --user call "${R[@]}" Answer s "$BAD" 2>&1)
clean_error "Answer" "$out"
out=$(busctl --user call "${R[@]}" AddOperator s "$BAD" 2>&1)
clean_error "AddOperator" "$out"
out=$(busctl --user call "${R[@]}" SetOperatorStatus ss A "$BAD" 2>&1)
clean_error "SetOperatorStatus (status)" "$out"
out=$(busctl --user call "${R[@]}" PlaceCallInQueue ss 7 "$BAD" 2>&1)
clean_error "PlaceCallInQueue (queue)" "$out"

# The error names stay what DESIGN.md says.
if command -v gdbus >/dev/null; then
        out=$(gdbus call --session --dest org.callcenter.Router1 --object-path /org/callcenter/Router1 \
                --method org.callcenter.Router1.PlaceCall "a${ESC}b" 2>&1)
        like "$out" 'org\.callcenter\.Error\.InvalidArgument' "gdbus: still InvalidArgument"
        like "$out" 'a\\x1bb' "gdbus: ESC shown as \\x1b"
else
        skip "gdbus not found"
        skip "gdbus not found"
fi

# A short valid id is echoed as it is.
out=$(busctl --user call "${R[@]}" Hangup s nope 2>&1)
is "$out" "Call failed: No such call nope" "a valid id is echoed unchanged"

# The wire: a bad id is refused without echoing it; the reply is short.
out=$(printf '{"command":"call","id":"%s"}\n' "$(printf 'a\\u001b[31m%.0s' {1..4000})" |
        python3 "$WIRE" "$PORT" send --timeout 10)
like "$out" '"error": ?"bad_id"' "wire: bad_id"
ok "$([ ${#out} -lt 300 ]; echo $?)" "wire: the reply is short (${#out} bytes)"

# routerd is fine afterwards.
out=$(busctl --user call "${R[@]}" PlaceCall s 1 2>&1)
is "$out" 'ss "ringing" "A"' "routerd serves afterwards"

routerd_stop
is "$?" 0 "SIGTERM exits 0"
done_testing
