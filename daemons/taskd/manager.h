/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The taskd Manager: owns the sd_event loop, the bus, the database link, the
 * event publisher and subscriber, and the in-memory task tree.
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
 * No reply leaves before everything it may have observed is committed: a
 * reply is sent at once when nothing is uncommitted, else it is attached to
 * the newest uncommitted batch and sent after that batch's COMMIT. This
 * covers errors and reads too (a NoSuchTask that saw an uncommitted delete
 * waits for it). So a successful CreateTask/CompleteTask/... reply means the
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
 *  - READY=1 is sent once the tree is loaded, or when the start grace
 *    passes without PostgreSQL (STATUS says so); taskd then keeps retrying.
 *  - SIGTERM: new changes are refused, the batches in flight are committed
 *    and replied to (at most 20 s), queued events are flushed, exit 0.
 */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "cleanup.h"
#include "daemons/taskd/conf.h"
#include "tasktree.h"

typedef struct Manager Manager;

/*
 * Create the manager on a new default sd_event loop: opens the bus (session
 * bus when user), the database link (which starts connecting and queues the
 * load), the event publisher, and registers the bus objects. config is
 * borrowed and must outlive the manager. Returns 0, -EINVAL (empty
 * [database] url: taskd keeps no tasks without PostgreSQL), or a negative
 * errno (logged).
 */
int manager_new(Manager **ret, const TaskdConfig *config, bool user);

/* Free everything; replies still pending get Unavailable. Accepts NULL. */
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/*
 * Request the bus name, set up signals, and run the loop until SIGTERM /
 * SIGINT, a lost bus, or a fatal error. Returns 0 on a clean stop or a
 * negative errno.
 */
int manager_run(Manager *m);

sd_event *manager_get_event(Manager *m);
sd_bus *manager_get_bus(Manager *m);
TaskTree *manager_get_tree(Manager *m);

/*
 * For the bus handlers: decide what to do with a call now. Returns 1 when
 * the handler should go on; 0 when the call was kept to be run again once the
 * tree is loaded (the handler returns 1 without replying); a negative errno
 * with error set (Unavailable) when it must fail now. write: the call
 * changes tasks (refused while PostgreSQL is away or during shutdown).
 */
int manager_check_call(Manager *m, sd_bus_message *call, bool write, sd_bus_error *error);

/*
 * Send reply (a method return or error for call), now or after the commit
 * of everything uncommitted (see above). Takes a reference of its own.
 * Returns 0 or a negative errno.
 */
int manager_reply(Manager *m, sd_bus_message *call, sd_bus_message *reply);

/*
 * Changes. Each validates against the tree (errors as in tasktree.h), applies
 * the change, and queues it for the next batch. Return 0 (create: the new
 * task in *ret, borrowed) or a negative errno; the tree is unchanged on
 * failure.
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
