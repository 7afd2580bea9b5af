/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The task tree, in memory: pure logic, no I/O, debug-only logging.
 *
 * taskd keeps the whole tree here (loaded from PostgreSQL at start in one
 * query) and validates every change against it before the change is written;
 * PostgreSQL is the durable copy, this is the index.
 *
 * Shape: a forest under an invisible sentinel (id 0). Every task has an id
 * (> 0, assigned by the tree in increasing order, so id order is creation
 * order), a parent (0 = top level), a title, a state (open or done) and an
 * optional call id ("" = none). Children are kept in creation order.
 *
 * Rules (DESIGN.md "org.callcenter.Tasks1"):
 *  - a title is 1-500 bytes of valid UTF-8; a call id is 0-500 bytes of
 *    valid UTF-8;
 *  - a task with open subtasks cannot be completed; completing the last open
 *    subtask leaves the parent open;
 *  - invariant: every descendant of a done task is done. So a subtask cannot
 *    be added under a done task, and a task under a done parent cannot be
 *    reopened: reopen the parent first;
 *  - completing a done task or reopening an open task is refused (nothing
 *    would change, and no event would describe it);
 *  - deleting a task deletes its subtree.
 *
 * Error codes of the operations (the bus maps them to named errors):
 *   -ENOENT     no such task (or parent; id 0 is no task)    -> NoSuchTask
 *   -EINVAL     bad title or call                            -> InvalidArgument
 *   -EBUSY      complete: the task has open subtasks         -> InvalidState
 *   -EALREADY   complete of a done / reopen of an open task  -> InvalidState
 *   -EPERM      create under, or reopen beneath, a done task -> InvalidState
 *   -ENOMEM
 *
 * Call-back follow-ups: the tree also remembers which call ids already got a
 * follow-up task (router.call.missed), independently of that task's life,
 * so a repeated event never creates a second one. That set is hashed under
 * a random key drawn in task_tree_new() (call ids come from outside): the
 * one read of the kernel here, and no result depends on it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hashtable.h"

#define TASK_TITLE_MAX 500
#define TASK_CALL_MAX 500

typedef enum TaskState {
        TASK_OPEN,
        TASK_DONE,
        _TASK_STATE_MAX,
        _TASK_STATE_INVALID = -22,
} TaskState;

typedef struct Task Task;
struct Task {
        uint64_t id;
        char *title;
        char *call;             /* "" = none */
        TaskState state;
        unsigned n_open_children;
        Task *parent;           /* the sentinel for top-level tasks; NULL only for the sentinel */
        Task *first_child, *last_child;
        Task *prev_sibling, *next_sibling;
        HashNode hash_node;     /* private: the id index */
};

typedef struct TaskTree TaskTree;

/* "open" / "done", or NULL for a bad value. */
const char *task_state_to_string(TaskState s);
/* TASK_OPEN / TASK_DONE, or _TASK_STATE_INVALID. */
TaskState task_state_from_string(const char *s);

/* The parent's id, 0 for a top-level task. */
uint64_t task_parent_id(const Task *t);

/* 0 when title is 1-TASK_TITLE_MAX bytes of valid UTF-8, else -EINVAL. */
int task_title_check(const char *title);
/* 0 when call is 0-TASK_CALL_MAX bytes of valid UTF-8, else -EINVAL. */
int task_call_check(const char *call);

/* An empty tree whose next id is 1. Returns 0 or -ENOMEM. */
int task_tree_new(TaskTree **ret);
/* Frees every task. Accepts NULL, returns NULL. */
TaskTree *task_tree_free(TaskTree *t);

size_t task_tree_size(const TaskTree *t);
size_t task_tree_open_count(const TaskTree *t);
/* The id the next task_tree_create() will assign. */
uint64_t task_tree_next_id(const TaskTree *t);

/* Make sure no id up to last is assigned again (ids of deleted tasks);
 * when loading, call it after the tasks are in. */
void task_tree_reserve_ids(TaskTree *t, uint64_t last);

/* The task with that id, or NULL (also for 0). Borrowed. */
Task *task_tree_get(const TaskTree *t, uint64_t id);

/*
 * Insert a task as stored (loading): ids must come in increasing order with
 * the parent (0 or an already inserted id) before the child, which
 * "ORDER BY id" guarantees because a parent is always created first. The
 * state rules are not checked (the store is trusted), the format rules are.
 * Returns 0, -EINVAL (id not above every id so far, bad title/call),
 * -ENOENT (unknown parent), -ENOMEM.
 */
int task_tree_load(TaskTree *t, uint64_t id, uint64_t parent, const char *title,
                   const char *call, TaskState state);

/*
 * Validate and create an open task under parent (0 = top level). The new
 * task is appended as its parent's last child and gets the next id.
 * Returns 0 and the task (borrowed) in *ret, or -EINVAL, -ENOENT, -EPERM,
 * -ENOMEM.
 */
int task_tree_create(TaskTree *t, uint64_t parent, const char *title, const char *call,
                     Task **ret);

/* Validate and mark id done. Returns 0, -ENOENT, -EBUSY, -EALREADY. */
int task_tree_complete(TaskTree *t, uint64_t id);

/* Validate and mark id open again. Returns 0, -ENOENT, -EALREADY, -EPERM. */
int task_tree_reopen(TaskTree *t, uint64_t id);

/*
 * Called for every task a delete removes, each before its parent (reverse
 * depth-first order: newest subtree first), the subtree's root last. The
 * task is still fully linked during the call and freed afterwards.
 */
typedef void (*TaskVisitor)(const Task *task, void *userdata);

/*
 * Delete id and its whole subtree. visitor (may be NULL) sees every removed
 * task first. Returns the number of tasks removed (> 0), -ENOENT,
 * -ENOMEM (nothing is removed then).
 */
int task_tree_delete(TaskTree *t, uint64_t id, TaskVisitor visitor, void *userdata);

/*
 * Depth-first, pre-order walk of a subtree, children in creation order.
 * task_tree_walk_first(t, 0) starts at the first top-level task (the whole
 * forest; the sentinel is not part of the walk); task_tree_walk_first(t, id)
 * starts at id itself, so ListTasks(id) includes id. Returns NULL when there
 * is nothing to walk (empty forest, or no such task: check with
 * task_tree_get() first). task_tree_walk_next(t, root, cur) returns the task
 * after cur within the subtree of root (same root value as for _first), or
 * NULL at the end. No recursion: depth costs nothing.
 */
Task *task_tree_walk_first(const TaskTree *t, uint64_t root);
Task *task_tree_walk_next(const TaskTree *t, uint64_t root, const Task *cur);

/* Number of tasks in the subtree of root (root included; 0 = whole forest). */
size_t task_tree_count_subtree(const TaskTree *t, uint64_t root);

/*
 * Follow-ups: true when call already got its follow-up task. _add records
 * it (task is the follow-up's id, kept for diagnostics). Returns 0, -EEXIST
 * when already recorded, -EINVAL for an empty call, -ENOMEM.
 */
bool task_tree_has_followup(const TaskTree *t, const char *call);
int task_tree_add_followup(TaskTree *t, const char *call, uint64_t task);
size_t task_tree_followup_count(const TaskTree *t);
