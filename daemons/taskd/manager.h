/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The taskd Manager: owns the database link, the event publisher and
 * subscriber, and the in-memory task tree. It runs on a loop that main.c
 * owns, and knows nothing of D-Bus: bus.c registers a ManagerSink for what
 * the bus must hear of, and holds its replies behind commit hooks
 * (manager_after_commit()).
 *
 * Consistency model
 * -----------------
 * Every change is validated against the in-memory tree and applied to it at
 * once, then collected in the "open" batch. One batch at a time is written
 * to PostgreSQL as a single transaction; changes arriving meanwhile wait in
 * the open batch and go out together as soon as the batch in flight commits
 * (group commit). The batch is handed to the database when the bus has no
 * more requests queued (a low-priority defer source), so requests read in one
 * loop iteration share a transaction.
 *
 * No reply leaves before everything it may have observed is committed: the
 * bus side sends each reply from a commit hook, which runs at once when
 * nothing is uncommitted, else after the COMMIT of the newest uncommitted
 * batch. This covers errors and reads too (a NoSuchTask that saw an
 * uncommitted delete waits for it). So a successful CreateTask/CompleteTask/... reply means the
 * change is durable, and events (tasks.task.*) and TaskChanged signals,
 * emitted after each COMMIT in change order, describe only durable state.
 *
 * When a batch fails (an SQL error, or the database link refused it), every
 * reply waiting on it and on the open batch gets org.callcenter.Error.
 * Unavailable, the in-memory tree is dropped and reloaded from PostgreSQL
 * (one query), and requests wait for the reload.
 *
 * Availability
 * ------------
 *  - At start the tree is loaded in one query; requests arriving before
 *    that wait, at most [database] connect_timeout; after that, and
 *    whenever PostgreSQL is known to be away, changes fail fast with
 *    Unavailable instead of hanging the caller.
 *  - While PostgreSQL is away, reads (GetTask, ListTasks) answer from
 *    memory, including a batch that is waiting to be re-run by the link.
 *  - READY=1 (sent by main.c when manager_wait_loaded() returns) comes once
 *    the tree is loaded, or when the start grace passes without PostgreSQL
 *    (STATUS says so); taskd then keeps retrying.
 *  - SIGTERM: new changes are refused, the batches in flight are committed
 *    and replied to (at most 20 s), queued events are flushed, exit 0.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "cleanup.h"
#include "daemons/taskd/conf.h"
#include "tasktree.h"

/* Opaque: defined in manager.c; the bus side and main.c use the functions
 * below. */
typedef struct Manager Manager;

/*
 * What the manager tells the outside (the D-Bus side, registered by bus.c)
 * about, without knowing who listens: the manager includes no bus header.
 * Every member may be NULL.
 */
typedef struct ManagerSink {
        /*
         * A change is durable: task id went "created", "done", "reopened"
         * or "deleted". Called after each COMMIT, in change order, before
         * the commit hooks of that batch run (so a TaskChanged signal
         * precedes the reply of the call that caused it).
         */
        void (*task_changed)(uint64_t id, const char *verb, void *userdata);
        /* The tree is loaded: calls told to wait (manager_check_call()
         * returned 0) may run now, in arrival order. */
        void (*loaded)(void *userdata);
        /* Calls told to wait must be refused now; why is one sentence for
         * the caller (PostgreSQL away past the grace, shutting down). */
        void (*refuse_waiting)(const char *why, void *userdata);
} ManagerSink;

/*
 * Create the manager on loop e (borrowed; it must outlive the manager): the
 * database link (which starts connecting and queues the load of the tree),
 * the event publisher, the loop sources. config is borrowed and must
 * outlive the manager. Returns 0, -EINVAL (empty [database] url: taskd
 * keeps no tasks without PostgreSQL), or a negative errno (logged).
 */
int manager_new(Manager **ret, sd_event *e, const TaskdConfig *config);

/*
 * Free everything. Commit hooks still waiting run with -ESHUTDOWN (their
 * changes are not confirmed); the sink is not called. Accepts NULL.
 */
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Register the sink (one; sink and userdata borrowed until replaced or the
 * manager is freed). NULL removes it. */
void manager_set_sink(Manager *m, const ManagerSink *sink, void *userdata);

/*
 * Run the loop until the tree is loaded or the start grace ([database]
 * connect_timeout) passed without PostgreSQL (taskd then serves
 * Unavailable and keeps retrying). Returns 0 (serve: send READY=1),
 * -ECANCELED when the loop was told to exit with 0 meanwhile (SIGTERM),
 * the negative exit code when it was told to exit with one (a taken bus
 * name), or a negative errno of the loop (logged).
 */
int manager_wait_loaded(Manager *m);

/*
 * Start a clean shutdown (SIGTERM): new changes are refused, waiting calls
 * are refused through the sink, the batches accepted so far are committed
 * and their hooks run; then the manager ends the loop with
 * sd_event_exit(0), or -ETIMEDOUT after 20 s without PostgreSQL, or -EIO
 * when the last batch failed. Calling it again does nothing.
 */
void manager_begin_shutdown(Manager *m);

/*
 * One line for STATUS= and the log ("12 tasks (3 open); 40 commits, ...").
 * Returns what snprintf() returns, or -EINVAL.
 */
int manager_status_line(Manager *m, char *buf, size_t size);

/* The tree, NULL while loading. Borrowed; valid until the next turn of the
 * loop (a failed batch drops it). */
TaskTree *manager_get_tree(Manager *m);

/*
 * For the bus handlers: may a call run now? Returns 1 when it may; 0 when
 * the caller should keep the call and run it when the sink's loaded()
 * fires (or refuse it on refuse_waiting()); or a negative errno when it
 * must fail now:
 *   -ESHUTDOWN   shutting down (changes, and reads without a tree)
 *   -EHOSTDOWN   PostgreSQL is unreachable and the tree is not loaded
 *   -ENOTCONN    PostgreSQL is unreachable: a change would not be durable
 * write: the call changes tasks.
 */
int manager_check_call(Manager *m, bool write);

/*
 * Called by manager_after_commit(): error is 0 once everything that was
 * uncommitted when the hook was added is committed; otherwise a negative
 * errno with why, one sentence for the caller (-EIO: the batch failed and
 * was rolled back; -ESHUTDOWN: the manager was freed first). Called once.
 */
typedef void (*ManagerCommitHook)(int error, const char *why, void *userdata);

/*
 * The reply rule: run hook once everything the caller may have observed is
 * durable, that is after the COMMIT of the newest uncommitted batch (hooks
 * run in the order they were added, after the batch's task_changed()
 * calls). When nothing is uncommitted, or PostgreSQL is away (reads then
 * answer from memory; changes are refused anyway), hook runs before this
 * returns. Returns 0, or -ENOMEM (hook not called, nothing kept).
 */
int manager_after_commit(Manager *m, ManagerCommitHook hook, void *userdata);

/*
 * Changes. Each validates against the tree (errors as in tasktree.h; -EAGAIN
 * while the tree is not loaded or shutting down, -ENOBUFS when too much waits
 * for PostgreSQL), applies the change, and queues it for the next batch.
 * Return 0 (create: the new task in *ret, borrowed) or a negative errno; the
 * tree is unchanged on failure.
 */
int manager_create_task(Manager *m, uint64_t parent, const char *title, const char *call,
                        Task **ret);
int manager_complete_task(Manager *m, uint64_t id);
int manager_reopen_task(Manager *m, uint64_t id);
/* Returns the number of tasks deleted (the subtree's size) on success. */
int manager_delete_task(Manager *m, uint64_t id);

/*
 * A missed call: create "Call back <call>" (top level, linked to call) unless
 * call already has its follow-up. Returns 1 when a task was created, 0 when
 * it already existed (or is kept until the tree is loaded), -EINVAL for a
 * call id that cannot be stored.
 */
int manager_followup_missed_call(Manager *m, const char *call);
