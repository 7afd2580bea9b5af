/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-util.h"
#include "daemon.h"
#include "daemons/taskd/bus.h"
#include "dbus/names.h"
#include "log.h"
#include "manager.h"
#include "tasktree.h"

/* Calls held while the tree loads: beyond this, Unavailable at once. */
#define HELD_MAX 10000

/* A call that arrived before the tree was loaded, in a FIFO. */
typedef struct HeldCall {
        struct HeldCall *next;
        sd_bus_message *call;
} HeldCall;

struct TasksBus {
        Manager *manager;
        sd_bus *bus;
        HeldCall *held_first, *held_last;
        size_t n_held;
};

/*
 * A reply waiting for the COMMIT of what its call may have observed
 * (manager_after_commit()). The call is kept for the error reply should
 * that batch fail.
 */
typedef struct PendingReply {
        sd_bus_message *call;
        sd_bus_message *reply;
} PendingReply;

static PendingReply *pending_reply_free(PendingReply *p) {
        if (!p)
                return NULL;
        sd_bus_message_unref(p->call);
        sd_bus_message_unref(p->reply);
        free(p);
        return NULL;
}

/* The commit hook: the reply if the batch committed, else Unavailable (the
 * change the reply reports was rolled back). */
static void on_committed(int error, const char *why, void *userdata) {
        PendingReply *p = userdata;

        if (error < 0)
                (void) bus_reply_errorf(p->call, CC_ERROR_UNAVAILABLE, "%s", why);
        else if (sd_bus_send(NULL, p->reply, NULL) < 0)
                log_debug("Failed to send a reply; the caller may have gone");
        pending_reply_free(p);
}

/*
 * Send reply (a method return or error for call) by the reply rule of
 * manager.h: now, or after the commit of everything uncommitted. Returns 1
 * (handled) for the handler to return, or a negative errno (sd-bus then
 * replies itself).
 */
static int reply_return(Manager *m, sd_bus_message *call, sd_bus_message *reply) {
        PendingReply *p;
        int r;

        p = malloc(sizeof *p);
        if (!p)
                return -ENOMEM;
        *p = (PendingReply) { .call = sd_bus_message_ref(call), .reply = sd_bus_message_ref(reply) };
        /* The hook owns p from here, unless it could not be kept. */
        r = manager_after_commit(m, on_committed, p);
        if (r < 0) {
                pending_reply_free(p);
                return r;
        }
        return 1;
}

/*
 * Build an error reply for call and send it by the reply rule, in order
 * with the replies before it. Returns 1 (handled) for the handler
 * to return, or a negative errno (sd-bus then replies itself).
 */
static int reply_errorf(Manager *m, sd_bus_message *call, const char *name, const char *format, ...)
        _printf_(4, 5);
static int reply_errorf(Manager *m, sd_bus_message *call, const char *name, const char *format, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(freep) char *text = NULL;
        va_list ap;
        int r;

        if (!sd_bus_message_get_expect_reply(call))
                return 1;
        va_start(ap, format);
        r = vasprintf(&text, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        r = sd_bus_message_new_method_errorf(call, &reply, name, "%s", text);
        if (r < 0)
                return r;
        return reply_return(m, call, reply);
}

/* The reply to the errors every change shares; r itself for others (sd-bus
 * then replies). */
static int reply_common_error(Manager *m, sd_bus_message *call, int r, uint64_t id) {
        switch (r) {
        case -ENOENT:
                return reply_errorf(m, call, CC_ERROR_NO_SUCH_TASK, "No task %" PRIu64, id);
        case -EAGAIN:
                return reply_errorf(m, call, CC_ERROR_UNAVAILABLE, "Tasks are being reloaded; try again");
        case -ENOBUFS:
                return reply_errorf(m, call, CC_ERROR_UNAVAILABLE,
                                    "Too many changes are waiting for PostgreSQL; try again");
        default:
                return r;
        }
}

/*
 * The largest ListTasks reply we build. dbus-daemon's system bus refuses
 * messages over 32 MiB (max_message_size) and drops the sender's connection
 * for it, which would take the daemon off the bus; stay well below.
 */
#define LIST_REPLY_MAX ((size_t) 30 * 1024 * 1024)

/* An empty method return, sent by the reply rule. */
static int reply_empty(Manager *m, sd_bus_message *call) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        if (!sd_bus_message_get_expect_reply(call))
                return 1;
        r = sd_bus_message_new_method_return(call, &reply);
        if (r < 0)
                return r;
        return reply_return(m, call, reply);
}

/* Keep call until the sink's loaded() (or refuse_waiting()). */
static int hold_call(TasksBus *b, sd_bus_message *call) {
        HeldCall *h;

        h = malloc(sizeof *h);
        if (!h)
                return -ENOMEM;
        *h = (HeldCall) { .call = sd_bus_message_ref(call) };
        if (b->held_last)
                b->held_last->next = h;
        else
                b->held_first = h;
        b->held_last = h;
        b->n_held++;
        return 0;
}

/*
 * The start every handler shares. 0 to go on; otherwise what the handler
 * returns: 1 when the call was held for after the load (the reply comes
 * later), negative with error set when it must fail now.
 */
static int check_call(TasksBus *b, sd_bus_message *call, bool write, sd_bus_error *error) {
        int r = manager_check_call(b->manager, write);

        switch (r) {
        case 1:
                return 0;
        case 0:
                if (b->n_held >= HELD_MAX)
                        return bus_error_setf(error, CC_ERROR_UNAVAILABLE, "Tasks are being loaded; try again");
                r = hold_call(b, call);
                return r < 0 ? r : 1;
        case -ESHUTDOWN:
                return bus_error_setf(error, CC_ERROR_UNAVAILABLE, "callcenter-taskd is shutting down");
        case -EHOSTDOWN:
                return bus_error_setf(error, CC_ERROR_UNAVAILABLE,
                                      "PostgreSQL is unreachable; tasks are not loaded");
        case -ENOTCONN:
                return bus_error_setf(error, CC_ERROR_UNAVAILABLE,
                                      "PostgreSQL is unreachable; the change was not applied");
        default:
                return r;
        }
}

/* check_call(), then the task id argument of the methods that take one
 * (set in *ret_id when it returns 0). */
static int read_task_id(TasksBus *b, sd_bus_message *call, bool write, sd_bus_error *error, uint64_t *ret_id) {
        uint64_t id;
        int r;

        r = check_call(b, call, write, error);
        if (r != 0)
                return r;
        r = sd_bus_message_read(call, "t", &id);
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

static int method_create_task(sd_bus_message *call, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        TasksBus *b = userdata;
        Manager *m = b->manager;
        const char *title, *link;
        uint64_t parent;
        Task *t;
        int r;

        r = check_call(b, call, true, error);
        if (r != 0)
                return r;
        r = sd_bus_message_read(call, "sts", &title, &parent, &link);
        if (r < 0)
                return r;

        if (task_title_check(title) < 0)
                return reply_errorf(m, call, CC_ERROR_INVALID_ARGUMENT,
                                    "A title must be 1-%d bytes of valid UTF-8 (this one has %zu bytes)",
                                    TASK_TITLE_MAX, strlen(title));
        if (task_call_check(link) < 0)
                return reply_errorf(m, call, CC_ERROR_INVALID_ARGUMENT,
                                    "A call id must be at most %d bytes of valid UTF-8 (this one has %zu bytes)",
                                    TASK_CALL_MAX, strlen(link));

        r = manager_create_task(m, parent, title, link, &t);
        if (r == -ENOENT)
                return reply_errorf(m, call, CC_ERROR_NO_SUCH_TASK, "No parent task %" PRIu64, parent);
        if (r == -EPERM)
                return reply_errorf(m, call, CC_ERROR_INVALID_STATE,
                                    "Task %" PRIu64 " is done; reopen it before adding subtasks", parent);
        if (r < 0)
                return reply_common_error(m, call, r, parent);

        /* The id is known now, the reply leaves after the COMMIT. A caller
         * that wants no reply gets none (sd-bus refuses to build one). */
        if (!sd_bus_message_get_expect_reply(call))
                return 1;
        r = sd_bus_message_new_method_return(call, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "t", t->id);
        if (r < 0)
                return r;
        return reply_return(m, call, reply);
}

/*
 * CompleteTask, ReopenTask and DeleteTask: change(m, id), then an empty
 * reply; a failed change gets reply_error()'s reply (reply_common_error()
 * or one that knows that change's own errors too).
 */
static int change_task(sd_bus_message *call, TasksBus *b, sd_bus_error *error,
                       int (*change)(Manager *m, uint64_t id),
                       int (*reply_error)(Manager *m, sd_bus_message *call, int r, uint64_t id)) {
        Manager *m = b->manager;
        uint64_t id;
        int r;

        r = read_task_id(b, call, true, error, &id);
        if (r != 0)
                return r;

        r = change(m, id);
        if (r < 0)
                return reply_error(m, call, r, id);
        return reply_empty(m, call);
}

static int reply_complete_error(Manager *m, sd_bus_message *call, int r, uint64_t id) {
        const Task *t;

        switch (r) {
        case -EBUSY:
                t = task_tree_get(manager_get_tree(m), id);
                return reply_errorf(m, call, CC_ERROR_INVALID_STATE,
                                    "Task %" PRIu64 " has %u open subtasks; complete them first", id,
                                    t ? t->n_open_children : 0);
        case -EALREADY:
                return reply_errorf(m, call, CC_ERROR_INVALID_STATE, "Task %" PRIu64 " is already done", id);
        default:
                return reply_common_error(m, call, r, id);
        }
}

static int reply_reopen_error(Manager *m, sd_bus_message *call, int r, uint64_t id) {
        const Task *t;

        switch (r) {
        case -EALREADY:
                return reply_errorf(m, call, CC_ERROR_INVALID_STATE, "Task %" PRIu64 " is already open", id);
        case -EPERM:
                t = task_tree_get(manager_get_tree(m), id);
                return reply_errorf(m, call, CC_ERROR_INVALID_STATE,
                                    "The parent of task %" PRIu64 ", task %" PRIu64 ", is done; reopen it first",
                                    id, t ? task_parent_id(t) : 0);
        default:
                return reply_common_error(m, call, r, id);
        }
}

static int method_complete_task(sd_bus_message *call, void *userdata, sd_bus_error *error) {
        return change_task(call, userdata, error, manager_complete_task, reply_complete_error);
}

static int method_reopen_task(sd_bus_message *call, void *userdata, sd_bus_error *error) {
        return change_task(call, userdata, error, manager_reopen_task, reply_reopen_error);
}

static int method_delete_task(sd_bus_message *call, void *userdata, sd_bus_error *error) {
        return change_task(call, userdata, error, manager_delete_task, reply_common_error);
}

static int append_task(sd_bus_message *reply, const Task *t) {
        return sd_bus_message_append(reply, "ttsss", t->id, task_parent_id(t), t->title,
                                     task_state_to_string(t->state), t->call);
}

static int method_get_task(sd_bus_message *call, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        TasksBus *b = userdata;
        Manager *m = b->manager;
        uint64_t id;
        Task *t;
        int r;

        r = read_task_id(b, call, false, error, &id);
        if (r != 0)
                return r;

        t = task_tree_get(manager_get_tree(m), id);
        if (!t)
                return reply_errorf(m, call, CC_ERROR_NO_SUCH_TASK, "No task %" PRIu64, id);
        if (!sd_bus_message_get_expect_reply(call))
                return 1;

        r = sd_bus_message_new_method_return(call, &reply);
        if (r >= 0)
                r = append_task(reply, t);
        if (r < 0)
                return r;
        return reply_return(m, call, reply);
}

static int method_list_tasks(sd_bus_message *call, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        TasksBus *b = userdata;
        Manager *m = b->manager;
        TaskTree *tree;
        uint64_t root;
        int r;

        r = read_task_id(b, call, false, error, &root);
        if (r != 0)
                return r;

        tree = manager_get_tree(m);
        if (root != 0 && !task_tree_get(tree, root))
                return reply_errorf(m, call, CC_ERROR_NO_SUCH_TASK, "No task %" PRIu64, root);
        if (!sd_bus_message_get_expect_reply(call))
                return 1;

        /* Measure first (a cheap walk): an oversized reply must become an
         * error, not a message the bus refuses. Per task: 8-byte struct
         * alignment, two uint64, three strings with length, NUL and padding. */
        size_t size = 0, n = 0;
        for (Task *t = task_tree_walk_first(tree, root); t; t = task_tree_walk_next(tree, root, t), n++)
                size += 8 + 16 + 3 * 8 + strlen(t->title) + strlen(t->call) + 4;
        if (size > LIST_REPLY_MAX)
                return reply_errorf(m, call, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                    "The subtree under %" PRIu64 " has %zu tasks (about %zu MiB), more than one "
                                    "D-Bus message carries (%zu MiB); list smaller subtrees",
                                    root, n, size >> 20, LIST_REPLY_MAX >> 20);

        /* The whole subtree from memory: no query at all, let alone one per
         * node; the walk is iterative, so depth costs nothing. */
        r = sd_bus_message_new_method_return(call, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ttsss)");
        for (Task *t = task_tree_walk_first(tree, root); r >= 0 && t; t = task_tree_walk_next(tree, root, t)) {
                r = sd_bus_message_open_container(reply, 'r', "ttsss");
                if (r >= 0)
                        r = append_task(reply, t);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return reply_return(m, call, reply);
}

static const sd_bus_vtable tasks_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("CreateTask", SD_BUS_ARGS("s", title, "t", parent, "s", call),
                                SD_BUS_RESULT("t", id), method_create_task, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CompleteTask", SD_BUS_ARGS("t", id), SD_BUS_NO_RESULT,
                                method_complete_task, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ReopenTask", SD_BUS_ARGS("t", id), SD_BUS_NO_RESULT,
                                method_reopen_task, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DeleteTask", SD_BUS_ARGS("t", id), SD_BUS_NO_RESULT,
                                method_delete_task, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetTask", SD_BUS_ARGS("t", id),
                                SD_BUS_RESULT("t", id, "t", parent, "s", title, "s", state, "s", call),
                                method_get_task, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListTasks", SD_BUS_ARGS("t", root), SD_BUS_RESULT("a(ttsss)", tasks),
                                method_list_tasks, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("TaskChanged", SD_BUS_ARGS("t", id, "s", state), 0),
        SD_BUS_VTABLE_END,
};

/* Run a held call as if it had just arrived; errors are replied. */
static void dispatch_held(TasksBus *b, sd_bus_message *call) {
        static const struct {
                const char *member;
                sd_bus_message_handler_t handler;
        } table[] = {
                { "CreateTask", method_create_task },   { "CompleteTask", method_complete_task },
                { "ReopenTask", method_reopen_task },   { "DeleteTask", method_delete_task },
                { "GetTask", method_get_task },         { "ListTasks", method_list_tasks },
        };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *member = sd_bus_message_get_member(call);
        int r = -EBADR;

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (member && strcmp(member, table[i].member) == 0) {
                        r = table[i].handler(call, b, &error);
                        break;
                }

        /* As sd-bus does for a handler it called: an error set wins over
         * the errno. */
        if (sd_bus_error_is_set(&error))
                (void) sd_bus_reply_method_error(call, &error);
        else if (r < 0)
                (void) sd_bus_reply_method_errno(call, r, NULL);
}

/*
 * Take the held calls off b: a call run (or refused) now may be held again
 * (the tree can go away between two of them), and joins a fresh list.
 */
static HeldCall *take_held(TasksBus *b) {
        HeldCall *first = TAKE_PTR(b->held_first);

        b->held_last = NULL;
        b->n_held = 0;
        return first;
}

static void on_task_changed(uint64_t id, const char *verb, void *userdata) {
        TasksBus *b = userdata;
        int r;

        r = sd_bus_emit_signal(b->bus, CC_TASKS_PATH, CC_TASKS_INTERFACE, "TaskChanged", "ts", id, verb);
        if (r < 0)
                log_debug_errno(r, "Failed to emit TaskChanged for task %" PRIu64 ": %m", id);
}

static void on_loaded(void *userdata) {
        TasksBus *b = userdata;

        for (HeldCall *h = take_held(b), *next; h; h = next) {
                next = h->next;
                dispatch_held(b, h->call);
                sd_bus_message_unref(h->call);
                free(h);
        }
}

static void refuse_held(TasksBus *b, const char *why) {
        for (HeldCall *h = take_held(b), *next; h; h = next) {
                next = h->next;
                (void) bus_reply_errorf(h->call, CC_ERROR_UNAVAILABLE, "%s", why);
                sd_bus_message_unref(h->call);
                free(h);
        }
}

static void on_refuse_waiting(const char *why, void *userdata) {
        refuse_held(userdata, why);
}

static const ManagerSink tasks_sink = {
        .task_changed = on_task_changed,
        .loaded = on_loaded,
        .refuse_waiting = on_refuse_waiting,
};

int bus_tasks_new(TasksBus **ret, Manager *m, sd_event *e, bool user) {
        _cleanup_(bus_tasks_freep) TasksBus *b = NULL;
        int r;

        b = calloc(1, sizeof *b);
        if (!b)
                return log_oom();
        b->manager = m;

        r = daemon_bus_open(user, &b->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the %s bus: %m", user ? "session" : "system");
        r = bus_register_errors();
        if (r < 0)
                return log_error_errno(r, "Failed to register the D-Bus error names: %m");
        r = bus_attach_event(b->bus, e);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the loop: %m");
        /* Access is the bus policy's business (dbus/org.callcenter.Tasks1.conf). */
        r = sd_bus_add_object_vtable(b->bus, NULL, CC_TASKS_PATH, CC_TASKS_INTERFACE, tasks_vtable, b);
        if (r < 0)
                return log_error_errno(r, "Failed to register %s: %m", CC_TASKS_PATH);

        /* The name last: once we own it, calls arrive (and are held until
         * the tree is loaded). A taken name ends the loop with -EEXIST. */
        r = bus_request_name(b->bus, CC_TASKS_SERVICE, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to request %s: %m", CC_TASKS_SERVICE);

        manager_set_sink(m, &tasks_sink, b);
        *ret = TAKE_PTR(b);
        return 0;
}

TasksBus *bus_tasks_free(TasksBus *b) {
        if (!b)
                return NULL;
        refuse_held(b, "callcenter-taskd is shutting down");
        sd_bus_flush_close_unref(b->bus);
        free(b);
        return NULL;
}
