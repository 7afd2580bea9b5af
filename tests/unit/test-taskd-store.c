/* SPDX-License-Identifier: MIT */
/* Unit tests of daemons/taskd/store.c: batch SQL and the load parser. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "daemons/taskd/store.h"
#include "tests/tap.h"

static Change mk(ChangeType type, uint64_t id, uint64_t parent, const char *title, const char *call) {
        return (Change) {
                .type = type,
                .id = id,
                .parent = parent,
                .title = strdup(title),
                .call = strdup(call),
        };
}

static char *render(Change *c, size_t n) {
        char *sql = NULL;
        int r = store_render_batch(c, n, &sql, NULL);
        for (size_t i = 0; i < n; i++)
                change_done(&c[i]);
        return r < 0 ? NULL : sql;
}

static void test_render(void) {
        Change c[8];
        char *sql;

        c[0] = mk(CHANGE_CREATE, 1, 0, "first", "");
        c[1] = mk(CHANGE_CREATE, 2, 1, "it's a \\ test", "call-9");
        c[2] = mk(CHANGE_COMPLETE, 2, 1, "x", "");
        c[3] = mk(CHANGE_COMPLETE, 1, 0, "x", "");
        c[4] = mk(CHANGE_REOPEN, 1, 0, "x", "");
        c[5] = mk(CHANGE_DELETE, 2, 1, "x", "");
        c[6] = mk(CHANGE_DELETE, 1, 0, "x", "");
        c[6].subtree_root = true;
        c[7] = mk(CHANGE_CREATE, 3, 0, "after", "");
        sql = render(c, 8);
        is_str(sql,
               "INSERT INTO tasks (id, parent, title, call) VALUES (1,NULL,E'first',NULL),"
               "(2,1,E'it''s a \\\\ test',E'call-9') ON CONFLICT (id) DO NOTHING;\n"
               "UPDATE tasks SET state = 'done', updated = now() WHERE id IN (2,1);\n"
               "UPDATE tasks SET state = 'open', updated = now() WHERE id IN (1);\n"
               "DELETE FROM tasks WHERE id IN (0,1);\n"
               "INSERT INTO tasks (id, parent, title, call) VALUES (3,NULL,E'after',NULL) ON CONFLICT (id) DO NOTHING;\n"
               "UPDATE task_ids SET last = 3 WHERE last < 3;\n",
               "adjacent changes share statements, order is kept, literals are escaped");
        free(sql);

        c[0] = mk(CHANGE_CREATE, 4, 0, "plain", "");
        c[1] = mk(CHANGE_CREATE, 5, 0, "Call back x'1", "x'1");
        c[1].followup = true;
        c[2] = mk(CHANGE_CREATE, 6, 0, "plain", "");
        sql = render(c, 3);
        is_str(sql,
               "INSERT INTO tasks (id, parent, title, call) VALUES (4,NULL,E'plain',NULL) ON CONFLICT (id) DO NOTHING;\n"
               "WITH f AS (INSERT INTO task_followups (call, task) VALUES (E'x''1', 5) ON CONFLICT (call) DO NOTHING "
               "RETURNING task) INSERT INTO tasks (id, parent, title, call) SELECT f.task, NULL, E'Call back x''1', "
               "E'x''1' FROM f ON CONFLICT (id) DO NOTHING;\n"
               "INSERT INTO tasks (id, parent, title, call) VALUES (6,NULL,E'plain',NULL) ON CONFLICT (id) DO NOTHING;\n"
               "UPDATE task_ids SET last = 6 WHERE last < 6;\n",
               "a follow-up gets its own statement, conditional on its record");
        free(sql);

        c[0] = mk(CHANGE_COMPLETE, 4, 0, "x", "");
        c[1] = mk(CHANGE_DELETE, 4, 0, "x", "");
        c[1].subtree_root = true;
        sql = render(c, 2);
        is_str(sql,
               "UPDATE tasks SET state = 'done', updated = now() WHERE id IN (4);\n"
               "DELETE FROM tasks WHERE id IN (0,4);\n",
               "no creates, no high-water mark update");
        free(sql);

        is_int(store_render_batch(c, 0, &sql, NULL), -EINVAL, "an empty batch is refused");
        c[0] = mk(CHANGE_CREATE, 1, 0, "x", "");
        c[0].type = _CHANGE_TYPE_MAX;
        is_int(store_render_batch(c, 1, &sql, NULL), -EINVAL, "a bad change type is refused");
        change_done(&c[0]);

        is_str(change_type_to_verb(CHANGE_CREATE), "created", "verb created");
        is_str(change_type_to_verb(CHANGE_COMPLETE), "done", "verb done");
        is_str(change_type_to_verb(CHANGE_REOPEN), "reopened", "verb reopened");
        is_str(change_type_to_verb(CHANGE_DELETE), "deleted", "verb deleted");
}

/* A result as store_load_sql returns it, from rows of 6 strings (NULL = SQL NULL). */
static PGresult *mkresult(const char *const rows[][6], int n) {
        PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
        PGresAttDesc attrs[6];
        static const char *const names[6] = { "kind", "id", "parent", "title", "state", "call" };

        memset(attrs, 0, sizeof(attrs));
        for (int i = 0; i < 6; i++) {
                attrs[i].name = (char *) names[i];
                attrs[i].format = 0;
        }
        PQsetResultAttrs(res, 6, attrs);
        for (int r = 0; r < n; r++)
                for (int f = 0; f < 6; f++)
                        PQsetvalue(res, r, f, (char *) rows[r][f], rows[r][f] ? (int) strlen(rows[r][f]) : -1);
        return res;
}

static void test_load(void) {
        static const char *const good[][6] = {
                { "t", "1", NULL, "top", "open", NULL },
                { "t", "2", "1", "child", "done", "c7" },
                { "t", "5", NULL, "Call back c9", "open", "c9" },
                { "n", "8", NULL, NULL, NULL, NULL },
                { "f", "5", NULL, NULL, NULL, "c9" },
                { "f", "3", NULL, NULL, NULL, "c3" },
        };
        static const char *const orphan[][6] = {
                { "t", "2", "1", "child", "open", NULL },
        };
        static const char *const badstate[][6] = {
                { "t", "1", NULL, "top", "closed", NULL },
        };
        static const char *const badid[][6] = {
                { "t", "-1", NULL, "top", "open", NULL },
        };
        TaskTree *t = NULL;
        PGresult *res;

        res = mkresult(good, 6);
        is_int(store_parse_load(res, &t), 0, "load a good result");
        PQclear(res);
        if (t) {
                is_int(task_tree_size(t), 3, "3 tasks");
                is_int(task_tree_next_id(t), 9, "next id above the highest id ever assigned (8, deleted)");
                is_str(task_tree_get(t, 2)->call, "c7", "call id loaded");
                is_str(task_tree_get(t, 1)->call, "", "NULL call loads as none");
                is_int(task_tree_get(t, 2)->state, TASK_DONE, "state loaded");
                ok(task_tree_has_followup(t, "c9") && task_tree_has_followup(t, "c3"),
                   "follow-ups loaded, also of deleted tasks");
                task_tree_free(t);
                t = NULL;
        }

        res = mkresult(orphan, 1);
        is_int(store_parse_load(res, &t), -EBADMSG, "an orphan is refused");
        PQclear(res);
        res = mkresult(badstate, 1);
        is_int(store_parse_load(res, &t), -EBADMSG, "a bad state is refused");
        PQclear(res);
        res = mkresult(badid, 1);
        is_int(store_parse_load(res, &t), -EBADMSG, "a bad id is refused");
        PQclear(res);
        ok(t == NULL, "nothing returned on failure");
}

int main(void) {
        test_render();
        test_load();
        return done_testing();
}
