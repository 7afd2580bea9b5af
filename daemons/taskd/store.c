/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store.h"

static const char *const change_verbs[_CHANGE_TYPE_MAX] = {
        [CHANGE_CREATE] = "created",
        [CHANGE_COMPLETE] = "done",
        [CHANGE_REOPEN] = "reopened",
        [CHANGE_DELETE] = "deleted",
};

const char *change_type_to_verb(ChangeType t) {
        if (t < 0 || t >= _CHANGE_TYPE_MAX)
                return NULL;
        return change_verbs[t];
}

int change_init(Change *c, ChangeType type, const Task *task) {
        char *title, *call;

        title = strdup(task->title);
        call = strdup(task->call);
        if (!title || !call) {
                free(title);
                free(call);
                return -ENOMEM;
        }
        *c = (Change) {
                .type = type,
                .id = task->id,
                .parent = task_parent_id(task),
                .title = title,
                .call = call,
        };
        return 0;
}

void change_done(Change *c) {
        if (!c)
                return;
        c->title = (free(c->title), NULL);
        c->call = (free(c->call), NULL);
}

/*
 * One query for everything, so the tree and the follow-up set are read from
 * the same snapshot. Ordering by id inserts every parent before its
 * children (the schema guarantees parent < id).
 */
const char store_load_sql[] =
        "SELECT 't' AS kind, id, parent, title, state, call FROM tasks "
        "UNION ALL "
        "SELECT 'f', task, NULL, NULL, NULL, call FROM task_followups "
        "UNION ALL "
        "SELECT 'n', last, NULL, NULL, NULL, NULL FROM task_ids "
        "ORDER BY 1 DESC, 2";

static int parse_u64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (!s || !*s || *s == '-')
                return -EBADMSG;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end)
                return -EBADMSG;
        *ret = v;
        return 0;
}

int store_parse_load(PGresult *result, TaskTree **ret) {
        TaskTree *t = NULL;
        int n, r;

        if (!result || PQresultStatus(result) != PGRES_TUPLES_OK || PQnfields(result) != 6)
                return -EBADMSG;
        r = task_tree_new(&t);
        if (r < 0)
                return r;

        n = PQntuples(result);
        for (int i = 0; i < n; i++) {
                const char *kind = PQgetvalue(result, i, 0);
                uint64_t id, parent = 0;

                r = parse_u64(PQgetvalue(result, i, 1), &id);
                if (r < 0)
                        goto fail;

                if (kind[0] == 'n') {
                        task_tree_reserve_ids(t, id);
                        continue;
                }
                if (kind[0] == 'f') {
                        r = task_tree_add_followup(t, PQgetvalue(result, i, 5), id);
                        if (r == -EINVAL)
                                r = -EBADMSG;
                        if (r < 0)
                                goto fail;
                        continue;
                }

                if (!PQgetisnull(result, i, 2)) {
                        r = parse_u64(PQgetvalue(result, i, 2), &parent);
                        if (r < 0)
                                goto fail;
                }
                TaskState state = task_state_from_string(PQgetvalue(result, i, 4));
                /* NULL call reads as "" from PQgetvalue(), which is our "none". */
                r = task_tree_load(t, id, parent, PQgetvalue(result, i, 3), PQgetvalue(result, i, 5),
                                   state);
                if (r == -EINVAL || r == -ENOENT) {
                        log_debug("Task %" PRIu64 " as stored breaks the tree's rules", id);
                        r = -EBADMSG;
                }
                if (r < 0)
                        goto fail;
        }

        *ret = t;
        return 0;

fail:
        task_tree_free(t);
        return r;
}

/* An E'' literal: valid whatever standard_conforming_strings says. */
static void put_literal(FILE *f, const char *s) {
        fputs("E'", f);
        for (; *s; s++) {
                if (*s == '\'' || *s == '\\')
                        putc_unlocked(*s, f);
                putc_unlocked(*s, f);
        }
        putc_unlocked('\'', f);
}

/* A literal, or NULL for "" (the schema stores "no call" as NULL). */
static void put_literal_or_null(FILE *f, const char *s) {
        if (!s || !*s)
                fputs("NULL", f);
        else
                put_literal(f, s);
}

static void put_parent(FILE *f, uint64_t parent) {
        if (parent == 0)
                fputs("NULL", f);
        else
                fprintf(f, "%" PRIu64, parent);
}

/* True when c goes into the same statement as the run it follows. */
static bool same_run(const Change *prev, const Change *c) {
        if (prev->type != c->type)
                return false;
        /* A follow-up has its own statement: its task row depends on the
         * task_followups insert. */
        return !(c->type == CHANGE_CREATE && (prev->followup || c->followup));
}

static void put_followup(FILE *f, const Change *c) {
        /* The task row is written only when the follow-up record is new, so
         * even a second taskd or a replayed job cannot make two tasks for
         * one call. */
        fputs("WITH f AS (INSERT INTO task_followups (call, task) VALUES (", f);
        put_literal(f, c->call);
        fprintf(f, ", %" PRIu64 ") ON CONFLICT (call) DO NOTHING RETURNING task) "
                   "INSERT INTO tasks (id, parent, title, call) SELECT f.task, ", c->id);
        put_parent(f, c->parent);
        fputs(", ", f);
        put_literal(f, c->title);
        fputs(", ", f);
        put_literal_or_null(f, c->call);
        fputs(" FROM f ON CONFLICT (id) DO NOTHING;\n", f);
}

int store_render_batch(const Change *changes, size_t n, char **ret, size_t *ret_len) {
        char *buf = NULL;
        size_t len = 0;
        uint64_t max_created = 0;
        FILE *f;
        bool bad = false;

        if (n == 0)
                return -EINVAL;
        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;

        for (size_t i = 0; i < n && !bad; i++) {
                const Change *c = &changes[i];
                bool first = i == 0 || !same_run(&changes[i - 1], c);
                bool last = i + 1 == n || !same_run(c, &changes[i + 1]);

                switch (c->type) {
                case CHANGE_CREATE:
                        if (c->id > max_created)
                                max_created = c->id;
                        if (c->followup) {
                                put_followup(f, c);
                                continue;
                        }
                        fputs(first ? "INSERT INTO tasks (id, parent, title, call) VALUES (" : ",(", f);
                        fprintf(f, "%" PRIu64 ",", c->id);
                        put_parent(f, c->parent);
                        putc_unlocked(',', f);
                        put_literal(f, c->title);
                        putc_unlocked(',', f);
                        put_literal_or_null(f, c->call);
                        putc_unlocked(')', f);
                        if (last)
                                fputs(" ON CONFLICT (id) DO NOTHING;\n", f);
                        break;

                case CHANGE_COMPLETE:
                case CHANGE_REOPEN:
                        if (first)
                                fprintf(f, "UPDATE tasks SET state = '%s', updated = now() WHERE id IN (",
                                        c->type == CHANGE_COMPLETE ? "done" : "open");
                        else
                                putc_unlocked(',', f);
                        fprintf(f, "%" PRIu64, c->id);
                        if (last)
                                fputs(");\n", f);
                        break;

                case CHANGE_DELETE:
                        /* Only the subtree's root is named: ON DELETE CASCADE
                         * takes the rest, in the same statement. A run may
                         * hold no root at all (impossible today, harmless). */
                        if (first)
                                fputs("DELETE FROM tasks WHERE id IN (0", f);
                        if (c->subtree_root)
                                fprintf(f, ",%" PRIu64, c->id);
                        if (last)
                                fputs(");\n", f);
                        break;

                default:
                        bad = true;
                }
        }

        /* The high-water mark moves in the same transaction as the rows. */
        if (max_created > 0)
                fprintf(f, "UPDATE task_ids SET last = %" PRIu64 " WHERE last < %" PRIu64 ";\n", max_created,
                        max_created);

        if (fclose(f) != 0 || !buf) {
                free(buf);
                return -ENOMEM;
        }
        if (bad) {
                free(buf);
                return -EINVAL;
        }
        if (ret_len)
                *ret_len = len;
        *ret = buf;
        return 0;
}

size_t store_change_size(const Change *c) {
        /* Worst case every byte is escaped, plus ids and SQL around them. */
        return 2 * (strlen(c->title) + strlen(c->call)) + 200;
}
