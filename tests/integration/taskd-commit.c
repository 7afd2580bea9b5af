/* SPDX-License-Identifier: MIT */
/*
 * The taskd Manager's commit hooks without D-Bus
 * (tests/integration/test-taskd-commit.sh).
 *
 *   taskd-commit CONFIG
 *
 * Drives a Manager (libtaskd-core, no bus.c) on a real sd-event loop
 * against the PostgreSQL of $CALLCENTER_DATABASE_URL, and looks at the
 * tables through a connection of its own: a hook added after a change runs
 * only once that change is visible to another session (committed), after
 * the sink heard of it; hooks of one batch run in order; a failed batch
 * runs its hooks with -EIO and commits nothing; a manager freed first runs
 * them with -ESHUTDOWN. Prints one "ok"/"not ok" line per check (TAP);
 * logs go to stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <systemd/sd-event.h>

#include "daemons/taskd/conf.h"
#include "daemons/taskd/manager.h"
#include "log.h"
#include "tap.h"
#include "time-util.h"

/* Generous: the machine is shared and may run under ASan. */
#define WAIT_USEC (60 * USEC_PER_SEC)

static PGconn *pg;

/* Rows of tasks with this id, as another session sees them. */
static int rows_with_id(uint64_t id) {
        char q[128];
        PGresult *res;
        int n = -1;

        snprintf(q, sizeof q, "SELECT count(*) FROM tasks WHERE id = %" PRIu64, id);
        res = PQexec(pg, q);
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
                n = atoi(PQgetvalue(res, 0, 0));
        else
                diag("query failed: %s", PQerrorMessage(pg));
        PQclear(res);
        return n;
}

/* What the sink heard. */
static unsigned n_changed;
static uint64_t last_changed_id;
static char last_verb[16];

static void on_task_changed(uint64_t id, const char *verb, void *userdata) {
        n_changed++;
        last_changed_id = id;
        snprintf(last_verb, sizeof last_verb, "%s", verb);
}

static const ManagerSink sink = { .task_changed = on_task_changed };

typedef struct Hook {
        const char *name;
        bool called;
        int error;
        char why[256];
        unsigned order;         /* 1 = first hook to run */
        unsigned changed_seen;  /* n_changed when it ran */
        int rows_seen;          /* rows_with_id(watch) when it ran, -2 = not asked */
        uint64_t watch;
} Hook;

static unsigned hooks_run;

static void on_hook(int error, const char *why, void *userdata) {
        Hook *h = userdata;

        if (h->called)
                diag("hook %s ran twice", h->name);
        h->called = true;
        h->error = error;
        snprintf(h->why, sizeof h->why, "%s", why ? why : "");
        h->order = ++hooks_run;
        h->changed_seen = n_changed;
        h->rows_seen = h->watch ? rows_with_id(h->watch) : -2;
}

/* Run the loop until *done (or the wait runs out). Returns *done. */
static bool run_until(sd_event *e, const bool *done) {
        usec_t until = now_usec(CLOCK_MONOTONIC) + WAIT_USEC;

        while (!*done && now_usec(CLOCK_MONOTONIC) < until)
                if (sd_event_run(e, 100 * USEC_PER_MSEC) < 0)
                        break;
        return *done;
}

static bool run_until_tree(sd_event *e, Manager *m) {
        usec_t until = now_usec(CLOCK_MONOTONIC) + WAIT_USEC;

        while (!manager_get_tree(m) && now_usec(CLOCK_MONOTONIC) < until)
                if (sd_event_run(e, 100 * USEC_PER_MSEC) < 0)
                        break;
        return manager_get_tree(m) != NULL;
}

int main(int argc, char **argv) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        Manager *m = NULL;
        TaskdConfig config = {};
        Task *t;
        int r;

        if (argc != 2) {
                fprintf(stderr, "usage: taskd-commit CONFIG\n");
                return 2;
        }
        log_setup("taskd-commit");
        pg = PQconnectdb(getenv("CALLCENTER_DATABASE_URL") ?: "");
        if (PQstatus(pg) != CONNECTION_OK) {
                printf("Bail out! cannot connect: %s\n", PQerrorMessage(pg));
                return 1;
        }
        if (taskd_config_load(&config, argv[1]) < 0 || sd_event_new(&e) < 0) {
                printf("Bail out! configuration or loop\n");
                return 1;
        }

        is_int(manager_new(&m, e, &config), 0, "manager_new on a loop of the caller's");
        if (!m)
                return done_testing();
        manager_set_sink(m, &sink, NULL);
        is_int(manager_wait_loaded(m), 0, "manager_wait_loaded returns once the tree is loaded");
        ok(manager_get_tree(m) != NULL, "the tree is there");

        /* Nothing uncommitted: the hook runs at once. */
        {
                Hook h = { .name = "idle" };

                is_int(manager_after_commit(m, on_hook, &h), 0, "after_commit with nothing uncommitted");
                ok(h.called && h.error == 0, "its hook ran before manager_after_commit returned, with 0");
        }

        /* Two changes in one batch, a hook after each. */
        {
                Hook a = { .name = "a" }, b = { .name = "b" };
                uint64_t id1, id2;

                is_int(manager_create_task(m, 0, "first", "", &t), 0, "create a task");
                id1 = a.watch = t->id;
                is_int(manager_after_commit(m, on_hook, &a), 0, "hook a added");
                is_int(manager_create_task(m, id1, "second", "call-1", &t), 0, "create a subtask");
                id2 = b.watch = t->id;
                is_int(manager_after_commit(m, on_hook, &b), 0, "hook b added");

                ok(!a.called && !b.called, "no hook ran before the COMMIT");
                is_int(rows_with_id(id1), 0, "the change is not in PostgreSQL yet");
                is_int((int) n_changed, 0, "the sink heard of nothing yet");

                ok(run_until(e, &b.called), "hook b ran");
                ok(a.called, "hook a ran");
                is_int(a.error, 0, "hook a: committed");
                is_int(b.error, 0, "hook b: committed");
                is_int(a.rows_seen, 1, "when hook a ran, its task was visible to another session");
                is_int(b.rows_seen, 1, "when hook b ran, its task was visible to another session");
                ok(a.order > 0 && b.order == a.order + 1, "hooks ran in the order they were added");
                is_int((int) a.changed_seen, 2, "the sink heard of both changes before the first hook");
                ok(last_changed_id == id2 && strcmp(last_verb, "created") == 0,
                   "the sink heard of the changes in order (last: %" PRIu64 " %s)", last_changed_id, last_verb);
        }

        /* A batch PostgreSQL refuses: its hooks fail, nothing is written,
         * and the manager loads the tree again. */
        {
                Hook f = { .name = "failed" };
                PGresult *res;
                unsigned changed_before = n_changed;

                res = PQexec(pg, "ALTER TABLE tasks ADD CONSTRAINT test_no_boom CHECK (title <> 'boom') NOT VALID");
                is_int(PQresultStatus(res), PGRES_COMMAND_OK, "a constraint that refuses the title 'boom'");
                PQclear(res);

                is_int(manager_create_task(m, 0, "boom", "", &t), 0, "create 'boom' (accepted in memory)");
                f.watch = t->id;
                is_int(manager_after_commit(m, on_hook, &f), 0, "hook added");
                ok(run_until(e, &f.called), "the hook ran");
                is_int(f.error, -EIO, "with -EIO");
                ok(f.why[0] != '\0', "and a reason: %s", f.why);
                is_int(f.rows_seen, 0, "nothing of the batch is in PostgreSQL");
                is_int((int) (n_changed - changed_before), 0, "the sink heard of no change");
                ok(run_until_tree(e, m), "the tree is loaded again");
                ok(manager_get_tree(m) && !task_tree_get(manager_get_tree(m), f.watch),
                   "the reloaded tree has no 'boom'");

                res = PQexec(pg, "ALTER TABLE tasks DROP CONSTRAINT test_no_boom");
                PQclear(res);
        }

        /* Freed before the COMMIT: the hook learns it. */
        {
                Hook d = { .name = "freed" };

                r = manager_create_task(m, 0, "last", "", &t);
                is_int(r, 0, "create a task");
                is_int(manager_after_commit(m, on_hook, &d), 0, "hook added");
                m = manager_free(m);
                ok(d.called, "manager_free ran the hook");
                is_int(d.error, -ESHUTDOWN, "with -ESHUTDOWN");
        }

        taskd_config_done(&config);
        PQfinish(pg);
        return done_testing();
}
