/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * taskd's SQL (schema: sql/002-tasks.sql).
 *
 * Reading: the whole tree and the follow-up records come back in one query
 * at start (and after a failed write), ordered so that task_tree_load()
 * can insert them in one pass.
 *
 * Writing: taskd validates changes in memory and collects them in a batch;
 * store_render_batch() turns a batch into one SQL string of several
 * statements, which PostgreSQL runs as one implicit transaction (simple
 * query protocol), so a batch commits or fails as a whole. Adjacent changes
 * of one kind share a statement (a multi-row INSERT, one UPDATE or DELETE
 * per run of ids), which is what makes group commit cheap. A batch that
 * creates tasks also raises task_ids.last, so ids are never reused, even
 * after the newest tasks were deleted and taskd restarted. Every statement
 * is idempotent (ON CONFLICT DO NOTHING, UPDATE/DELETE by id), as the
 * database link re-runs a job whose result was lost with the connection.
 *
 * Values are inlined as E'' literals (backslash and quote escaped); titles
 * and call ids are valid UTF-8 without NUL by the time they get here.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "tasktree.h"

typedef enum ChangeType {
        CHANGE_CREATE,
        CHANGE_COMPLETE,
        CHANGE_REOPEN,
        CHANGE_DELETE,
        _CHANGE_TYPE_MAX,
        _CHANGE_TYPE_INVALID = -22,
} ChangeType;

/*
 * One accepted change, with a copy of the task's fields as they were when
 * the change was made: the event published after the commit describes the
 * task even if a later change in the same batch deleted it.
 */
typedef struct Change {
        ChangeType type;
        uint64_t id;
        uint64_t parent;        /* 0 = top level */
        char *title;            /* owned */
        char *call;             /* owned, "" = none */
        bool followup;          /* CREATE: also record call in task_followups */
        bool subtree_root;      /* DELETE: the task named by the caller; the
                                 * others of its subtree are reported but
                                 * removed by the cascade */
} Change;

/* The event verb of a change: "created", "done", "reopened", "deleted". */
const char *change_type_to_verb(ChangeType t);

/* Fill *c from task (copies title and call). Returns 0 or -ENOMEM. */
int change_init(Change *c, ChangeType type, const Task *task);
/* Free what c owns. */
void change_done(Change *c);

/*
 * The query that loads everything: rows (kind, id, parent, title, state,
 * call) with kind 't' for tasks in id order, then 'n' with the highest id
 * ever assigned (in id), then 'f' for follow-ups.
 */
extern const char store_load_sql[];

/*
 * Build a tree from the result of store_load_sql. Returns 0 and a new tree
 * in *ret, -EBADMSG when a row is malformed or breaks the tree's rules
 * (logged with the task id), -ENOMEM.
 */
int store_parse_load(PGresult *result, TaskTree **ret);

/*
 * Render changes[0..n) as SQL. Returns 0 and a malloc'd NUL-terminated
 * string in *ret (its length in *ret_len when non-NULL), -EINVAL when n is 0
 * or a change has a bad type, -ENOMEM.
 */
int store_render_batch(const Change *changes, size_t n, char **ret, size_t *ret_len);

/* A rough upper bound of the SQL bytes one change adds (for buffer bounds). */
size_t store_change_size(const Change *c);
