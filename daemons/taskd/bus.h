/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * org.callcenter.Tasks1 at /org/callcenter/Tasks1 (DESIGN.md, and
 * dbus/org.callcenter.Tasks1.xml): the vtable, the method handlers and the
 * TaskChanged signal. Handlers validate, hand changes to the Manager and
 * reply through manager_reply(), so a reply never overtakes the COMMIT of
 * what it reports (see manager.h).
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

#include <stdint.h>

#include <systemd/sd-bus.h>

typedef struct Manager Manager;

/* Add the Tasks1 object to bus. Returns 0 or a negative errno. */
int bus_tasks_register(Manager *m, sd_bus *bus);

/*
 * Run a call that was kept while the tree loaded, as if it had just
 * arrived; errors are replied. call is borrowed.
 */
void bus_tasks_dispatch(Manager *m, sd_bus_message *call);

/* Emit TaskChanged(id, state). Returns 0 or a negative errno. */
int bus_tasks_emit_changed(sd_bus *bus, uint64_t id, const char *state);
