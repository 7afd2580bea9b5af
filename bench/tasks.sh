#!/bin/bash
# bench/tasks.sh [tasks-bench options]: run callcenter-taskd on a throwaway
# PostgreSQL cluster and a private D-Bus bus, then time it with
# bench/tasks-bench (CreateTask with async calls in flight, ListTasks(0)).
# Prints the figures and their ratios to the targets; it is not a test.
# Run from the build directory, or set top_builddir.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_srcdir:=$(cd "$here/.." && pwd)}"
: "${top_builddir:=$PWD}"
# shellcheck source=../tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"

taskd=$top_builddir/daemons/taskd/callcenter-taskd
client=$top_builddir/bench/tasks-bench
for f in "$taskd" "$client"; do
        [ -x "$f" ] || { echo "tasks bench: $f is not built (make in $top_builddir)" >&2; exit 1; }
done
command -v dbus-daemon >/dev/null || { echo "tasks bench: dbus-daemon missing" >&2; exit 1; }
pg_bindir >/dev/null || { echo "tasks bench: PostgreSQL server missing" >&2; exit 1; }

dir=$(scratch_dir)
taskd_pid=
cleanup() {
        [ -n "$taskd_pid" ] && kill "$taskd_pid" 2>/dev/null && wait "$taskd_pid" 2>/dev/null
        dbus_stop; pg_stop; rm -rf "$dir"
}
trap cleanup EXIT

pg_start "$dir/pg" || exit 1
dbus_start "$dir" || exit 1
cat >"$dir/callcenter.conf" <<CONF
[events]
publish=ipc://$dir/events-in
subscribe=ipc://$dir/events-out
[tasks]
followup_on_missed=no
CONF
CALLCENTER_DATABASE_URL=$PG_URL "$taskd" --user --config="$dir/callcenter.conf" 2>"$dir/taskd.log" &
taskd_pid=$!
busy() { busctl --user call org.callcenter.Tasks1 /org/callcenter/Tasks1 org.callcenter.Tasks1 ListTasks t 0; }
wait_for 30 busy || { echo "tasks bench: taskd did not come up" >&2; cat "$dir/taskd.log" >&2; exit 1; }

echo "# callcenter-taskd bench: $(nproc) CPUs, PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}') (fsync off)"
"$client" --user "$@"
rc=$?
# A restart loads the whole tree in one query before serving.
kill -TERM "$taskd_pid"; wait "$taskd_pid"; taskd_pid=
t0=$(date +%s%N)
CALLCENTER_DATABASE_URL=$PG_URL "$taskd" --user --config="$dir/callcenter.conf" 2>>"$dir/taskd.log" &
taskd_pid=$!
wait_for 60 busy
t1=$(date +%s%N)
echo "Restart: serving again after $(( (t1 - t0) / 1000000 )) ms (start, connect, load every task in one query)"
echo "# rows in PostgreSQL: $(psql_cc -c 'SELECT count(*) FROM tasks'), max depth: $(psql_cc -c 'SELECT max(depth) + 1 FROM task_subtree(NULL)')"
exit $rc
