/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * org.callcenter.Tasks1 at /org/callcenter/Tasks1 (DESIGN.md, and
 * dbus/org.callcenter.Tasks1.xml): the bus connection, the vtable, the
 * method handlers and the TaskChanged signal. This is glue: it depends on
 * manager.h, never the reverse. Handlers validate, hand changes to the
 * Manager and send every reply from a commit hook (manager_after_commit()),
 * so a reply never overtakes the COMMIT of what it reports (see manager.h).
 * The replies waiting there, and the calls that arrive before the tree is
 * loaded, are held here; the Manager tells this side about commits, the
 * load and refusals through the ManagerSink registered by bus_tasks_new().
 *
 * Decisions the contract leaves open:
 *  - ListTasks(root) includes root itself when root != 0 (the subtree
 *    rooted at root), depth-first pre-order, children in creation order;
 *    ListTasks(0) is the whole forest. An unknown root is NoSuchTask. A
 *    subtree too large for one D-Bus message (over 30 MiB, the system
 *    bus refuses 32 MiB) is org.freedesktop.DBus.Error.LimitsExceeded.
 *  - GetTask/CompleteTask/ReopenTask/DeleteTask of id 0 or an unknown id:
 *    NoSuchTask. CreateTask under an unknown parent: NoSuchTask.
 *  - Bad title (not 1-500 bytes of UTF-8) or call id (over 500 bytes):
 *    InvalidArgument.
 *  - InvalidState: completing a task with open subtasks, completing a done
 *    task, reopening an open task, adding a subtask to a done task,
 *    reopening a task whose parent is done.
 *  - Unavailable: PostgreSQL unreachable, tasks (re)loading past the grace,
 *    a failed write, or shutting down.
 *  - DeleteTask emits TaskChanged(id, "deleted") for every task of the
 *    subtree, each before its parent.
 */

#include <stdbool.h>

#include <systemd/sd-event.h>

#include "cleanup.h"
#include "manager.h"

typedef struct TasksBus TasksBus;

/*
 * Connect to the session bus (user) or the system bus, attach it to e, add
 * the Tasks1 object, register as m's sink and ask for org.callcenter.Tasks1
 * (a name owned by another peer ends the loop). m is borrowed: free the
 * TasksBus after the manager, whose last commit hooks send their replies
 * through this bus. Returns 0 or a negative errno (logged).
 */
int bus_tasks_new(TasksBus **ret, Manager *m, sd_event *e, bool user);

/*
 * Refuse the calls still held (Unavailable), flush what is queued and close
 * the connection. Does not touch the manager. Accepts NULL; returns NULL.
 */
TasksBus *bus_tasks_free(TasksBus *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(TasksBus *, bus_tasks_free);
