#!/bin/bash
# SPDX-License-Identifier: MIT
#
# taskd's commit hooks (manager_after_commit()), driven without D-Bus by
# tests/integration/taskd-commit against a throwaway PostgreSQL: a hook runs
# only once its change is visible to another session, after the sink heard
# of the change; in order; -EIO for a batch PostgreSQL refuses (nothing of
# it written); -ESHUTDOWN when the manager is freed first. The driver
# prints the TAP itself.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

DRIVER=$top_builddir/tests/integration/taskd-commit
need_pg
need_built "$DRIVER"

T=$(scratch_dir)
cleanup() {
        pg_stop
        rm -rf "$T"
}
trap cleanup EXIT

pg_start "$T/pg" || bail_out "cannot start PostgreSQL"
printf '[tasks]\nfollowup_on_missed=no\n' >"$T/taskd.conf"
export CALLCENTER_DATABASE_URL=$PG_URL
export CALLCENTER_EVENTS_PUBLISH=ipc://$T/events-in
"$DRIVER" "$T/taskd.conf" 2>"$T/driver.log"
rc=$?
[ "$rc" -eq 0 ] || { sed 's/^/# /' "$T/driver.log"; exit "$rc"; }
