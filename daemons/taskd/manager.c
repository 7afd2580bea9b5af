/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <zmq.h>

#include "daemon.h"
#include "db.h"
#include "envelope.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "pub.h"
#include "store.h"
#include "sub.h"

/* Missed calls kept while the tree loads. */
#define DEFERRED_MAX 10000
/* How long SIGTERM waits for the batches in flight. */
#define STOP_TIMEOUT_USEC (20 * USEC_PER_SEC)
/* Events still queued for the hub at exit get this long. */
#define EVENT_FLUSH_USEC (2 * USEC_PER_SEC)
#define STATUS_INTERVAL_USEC USEC_PER_SEC
/* After an SQL error the reload waits this long, so a persistent error
 * (a broken schema) does not turn into a tight loop. */
#define RELOAD_DELAY_USEC (500 * USEC_PER_MSEC)

typedef enum ManagerState {
        MANAGER_LOADING,        /* no tree yet (start, or after a failed batch) */
        MANAGER_READY,
        MANAGER_STOPPING,
} ManagerState;

/* A manager_after_commit() hook waiting on a batch. */
typedef struct CommitHook {
        ManagerCommitHook fn;
        void *userdata;
} CommitHook;

typedef struct Batch {
        Change *changes;
        size_t n_changes, changes_alloc;
        CommitHook *hooks;
        size_t n_hooks, hooks_alloc;
        size_t bytes;           /* store_change_size() of every change */
        usec_t submitted;       /* CLOCK_MONOTONIC, for the status line */
} Batch;

struct Manager {
        const TaskdConfig *config;

        sd_event *event;        /* a reference; the loop is main.c's */
        const ManagerSink *sink;
        void *sink_userdata;

        DbLink *db;
        void *zctx;
        EventPublisher *publisher;
        EventSubscriber *subscriber;

        TaskTree *tree;         /* NULL while loading */
        ManagerState state;
        bool load_pending;      /* the load query is queued on the link */
        bool db_connected;
        bool grace_over;        /* the start grace passed: fail fast when away */
        bool serving;           /* loaded, or the grace passed without PostgreSQL */

        Batch *open;            /* collecting changes */
        Batch *inflight;        /* submitted, waiting for COMMIT */

        sd_event_source *flush_source;
        sd_event_source *grace_source;
        sd_event_source *stop_source;
        sd_event_source *reload_source;

        char **missed;          /* calls missed while loading */
        size_t n_missed, missed_alloc;

        /* Statistics, for STATUS= and debug logs. */
        uint64_t commits, committed_changes, failed_batches, largest_batch;
        usec_t last_status;
        RateLimit away_ratelimit;
};

static void manager_update_status(Manager *m, bool force);
static int manager_submit(Manager *m);
static void manager_load(Manager *m);

/* --- batches ----------------------------------------------------------- */

static Batch *batch_free(Batch *b) {
        if (!b)
                return NULL;
        for (size_t i = 0; i < b->n_changes; i++)
                change_done(&b->changes[i]);
        /* Hooks were run (and emptied) before: batch_committed() or
         * batch_run_hooks() always comes first. */
        free(b->changes);
        free(b->hooks);
        free(b);
        return NULL;
}

static int grow(void **p, size_t *alloc, size_t need, size_t size) {
        size_t n;
        void *q;

        if (need <= *alloc)
                return 0;
        n = *alloc ? *alloc * 2 : 64;
        while (n < need)
                n *= 2;
        q = realloc(*p, n * size);
        if (!q)
                return -ENOMEM;
        *p = q;
        *alloc = n;
        return 0;
}

static int batch_add_hook(Batch *b, ManagerCommitHook fn, void *userdata) {
        int r;

        r = grow((void **) &b->hooks, &b->hooks_alloc, b->n_hooks + 1, sizeof(CommitHook));
        if (r < 0)
                return r;
        b->hooks[b->n_hooks++] = (CommitHook) { .fn = fn, .userdata = userdata };
        return 0;
}

/*
 * Run the hooks of b in order and forget them. The array is taken off the
 * batch first: a hook may add changes and hooks (it runs the caller's code),
 * and those belong to a later batch.
 */
static void batch_run_hooks(Batch *b, int error, const char *why) {
        _cleanup_(freep) CommitHook *hooks = TAKE_PTR(b->hooks);
        size_t n = b->n_hooks;

        b->n_hooks = b->hooks_alloc = 0;
        for (size_t i = 0; i < n; i++)
                hooks[i].fn(error, why, hooks[i].userdata);
}

/* --- the reply rule ------------------------------------------------------ */

int manager_after_commit(Manager *m, ManagerCommitHook hook, void *userdata) {
        Batch *b;

        /* The newest uncommitted batch: what the caller may have seen. */
        if (m->open && m->open->n_changes > 0)
                b = m->open;
        else
                b = m->inflight;

        /* With PostgreSQL away the batches wait for a reconnect: reads and
         * refusals answer from memory rather than hang (changes are refused
         * while away, so no change's reply takes this path). */
        if (!b || !m->db_connected) {
                hook(0, NULL, userdata);
                return 0;
        }
        return batch_add_hook(b, hook, userdata);
}

/* --- changes ------------------------------------------------------------- */

static void on_change_failed(Manager *m, int r);

static int manager_add_change(Manager *m, Change *c) {
        int r;

        if (!m->open) {
                m->open = calloc(1, sizeof(Batch));
                if (!m->open)
                        return -ENOMEM;
        }
        r = grow((void **) &m->open->changes, &m->open->changes_alloc, m->open->n_changes + 1,
                 sizeof(Change));
        if (r < 0)
                return r;
        m->open->changes[m->open->n_changes++] = *c;
        m->open->bytes += store_change_size(c);
        *c = (Change) {};

        /* Hand the batch over once the bus has nothing more queued (the
         * defer source has a lower priority than the bus). */
        if (!m->inflight)
                (void) sd_event_source_set_enabled(m->flush_source, SD_EVENT_ONESHOT);
        return 0;
}

/*
 * Append a change for task. The tree has already been changed, so a failure
 * here (out of memory) leaves memory and the batch apart: the only way back
 * is a reload from PostgreSQL.
 */
static int manager_queue(Manager *m, ChangeType type, const Task *task, bool followup, bool root) {
        Change c;
        int r;

        r = change_init(&c, type, task);
        if (r >= 0) {
                c.followup = followup;
                c.subtree_root = root;
                r = manager_add_change(m, &c);
                change_done(&c);
        }
        if (r < 0)
                on_change_failed(m, r);
        return r;
}

static int check_writable(Manager *m) {
        if (m->state != MANAGER_READY || !m->tree)
                return -EAGAIN;
        /* Bound what waits in memory while a batch is slow: the same budget
         * the database link has. */
        if (m->open && m->open->bytes > m->config->database.buffer_bytes)
                return -ENOBUFS;
        return 0;
}

int manager_create_task(Manager *m, uint64_t parent, const char *title, const char *call,
                        Task **ret) {
        Task *t;
        int r;

        r = check_writable(m);
        if (r < 0)
                return r;
        r = task_tree_create(m->tree, parent, title, call, &t);
        if (r < 0)
                return r;
        r = manager_queue(m, CHANGE_CREATE, t, false, false);
        if (r < 0)
                return r;
        if (ret)
                *ret = t;
        return 0;
}

int manager_complete_task(Manager *m, uint64_t id) {
        int r;

        r = check_writable(m);
        if (r < 0)
                return r;
        r = task_tree_complete(m->tree, id);
        if (r < 0)
                return r;
        return manager_queue(m, CHANGE_COMPLETE, task_tree_get(m->tree, id), false, false);
}

int manager_reopen_task(Manager *m, uint64_t id) {
        int r;

        r = check_writable(m);
        if (r < 0)
                return r;
        r = task_tree_reopen(m->tree, id);
        if (r < 0)
                return r;
        return manager_queue(m, CHANGE_REOPEN, task_tree_get(m->tree, id), false, false);
}

typedef struct DeleteContext {
        Manager *m;
        uint64_t root;
        int error;
} DeleteContext;

static void on_delete_visit(const Task *task, void *userdata) {
        DeleteContext *d = userdata;
        Change c;
        int r;

        if (d->error < 0)
                return;
        r = change_init(&c, CHANGE_DELETE, task);
        if (r >= 0) {
                c.subtree_root = task->id == d->root;
                r = manager_add_change(d->m, &c);
                change_done(&c);
        }
        if (r < 0)
                d->error = r;
}

int manager_delete_task(Manager *m, uint64_t id) {
        DeleteContext d = { .m = m, .root = id };
        int r;

        r = check_writable(m);
        if (r < 0)
                return r;
        r = task_tree_delete(m->tree, id, on_delete_visit, &d);
        if (r < 0)
                return r;
        if (d.error < 0) {
                on_change_failed(m, d.error);
                return d.error;
        }
        return r;
}

/* Title "Call back <call>", cut at a character boundary to the title limit. */
static char *followup_title(const char *call) {
        static const char prefix[] = "Call back ";
        size_t n = strlen(prefix) + strlen(call);
        char *s;

        if (n > TASK_TITLE_MAX) {
                n = TASK_TITLE_MAX;
                /* Step back over UTF-8 continuation bytes. */
                while (n > strlen(prefix) && ((unsigned char) call[n - strlen(prefix)] & 0xc0) == 0x80)
                        n--;
        }
        s = malloc(n + 1);
        if (!s)
                return NULL;
        memcpy(s, prefix, strlen(prefix));
        memcpy(s + strlen(prefix), call, n - strlen(prefix));
        s[n] = '\0';
        return s;
}

static int defer_missed(Manager *m, const char *call) {
        char *c;

        if (m->n_missed >= DEFERRED_MAX)
                return -ENOBUFS;
        if (grow((void **) &m->missed, &m->missed_alloc, m->n_missed + 1, sizeof(char *)) < 0)
                return -ENOMEM;
        c = strdup(call);
        if (!c)
                return -ENOMEM;
        m->missed[m->n_missed++] = c;
        return 0;
}

int manager_followup_missed_call(Manager *m, const char *call) {
        _cleanup_(freep) char *title = NULL;
        Task *t;
        int r;

        if (!call || !*call || task_call_check(call) < 0)
                return -EINVAL;

        if (m->state == MANAGER_LOADING) {
                r = defer_missed(m, call);
                if (r < 0)
                        return log_warning_errno(r, "Missed call %s arrived while tasks load and cannot be kept, ignoring: %m",
                                                 call);
                return 0;
        }
        if (m->state != MANAGER_READY)
                return 0;
        if (task_tree_has_followup(m->tree, call)) {
                log_debug("Call %s already has its follow-up task", call);
                return 0;
        }

        title = followup_title(call);
        if (!title)
                return log_oom();
        r = task_tree_create(m->tree, 0, title, call, &t);
        if (r < 0)
                return log_warning_errno(r, "Cannot create the follow-up task for call %s, ignoring: %m", call);
        r = task_tree_add_followup(m->tree, call, t->id);
        if (r < 0) {
                on_change_failed(m, r);
                return r;
        }
        r = manager_queue(m, CHANGE_CREATE, t, true, false);
        if (r < 0)
                return r;
        log_struct(LOG_NOTICE, 0, LOG_FIELDS("MESSAGE_ID=4d1f3ad0c2b34e6f9a0b7c8d2e5f6a71"),
                   "Created follow-up task %" PRIu64 " for missed call %s", t->id, call);
        return 1;
}

/* --- writing batches ------------------------------------------------------- */

static void manager_check_stopped(Manager *m) {
        if (m->state == MANAGER_STOPPING && !m->inflight && (!m->open || m->open->n_changes == 0))
                (void) sd_event_exit(m->event, 0);
}

static void emit_change(Manager *m, const Change *c) {
        _cleanup_(json_object_putp) struct json_object *data = NULL;
        const char *verb = change_type_to_verb(c->type);
        char type[32];

        if (m->sink && m->sink->task_changed)
                m->sink->task_changed(c->id, verb, m->sink_userdata);

        data = json_object_new_object();
        if (!data ||
            json_object_object_add(data, "id", json_object_new_uint64(c->id)) < 0 ||
            json_object_object_add(data, "parent", json_object_new_uint64(c->parent)) < 0 ||
            json_object_object_add(data, "title", json_object_new_string(c->title)) < 0 ||
            json_object_object_add(data, "call", json_object_new_string(c->call)) < 0) {
                log_oom();
                return;
        }
        (void) snprintf(type, sizeof(type), "task.%s", verb);
        /* A dropped event is counted and logged by the publisher itself. */
        (void) event_publisher_emit(m->publisher, type, data);
}

/* Replay the batch's effects now that it is durable. */
static void batch_committed(Manager *m, Batch *b) {
        /* Signals and events first: when a caller gets its reply, the
         * TaskChanged signal for it is already on the bus. */
        for (size_t i = 0; i < b->n_changes; i++)
                emit_change(m, &b->changes[i]);

        m->commits++;
        m->committed_changes += b->n_changes;
        if (b->n_changes > m->largest_batch)
                m->largest_batch = b->n_changes;

        batch_run_hooks(b, 0, NULL);
}

/*
 * Something went wrong with the changes: fail every waiting reply, forget the
 * tree and load it again. The batch in flight has been rolled back (one
 * transaction), and the open batch was never sent.
 */
static void manager_fail_and_reload(Manager *m, const char *why) {
        m->failed_batches++;
        /* Take both batches off the manager before running any hook: a
         * hook must not find (or add to) a batch that is going away. */
        Batch *inflight = TAKE_PTR(m->inflight), *open = TAKE_PTR(m->open);

        m->tree = task_tree_free(m->tree);
        if (inflight) {
                batch_run_hooks(inflight, -EIO, why);
                batch_free(inflight);
        }
        if (open) {
                batch_run_hooks(open, -EIO, why);
                batch_free(open);
        }
        if (m->state == MANAGER_STOPPING) {
                (void) sd_event_exit(m->event, -EIO);
                return;
        }
        m->state = MANAGER_LOADING;
        manager_update_status(m, true);
        (void) sd_event_source_set_time_relative(m->reload_source, RELOAD_DELAY_USEC);
        (void) sd_event_source_set_enabled(m->reload_source, SD_EVENT_ONESHOT);
}

static void on_change_failed(Manager *m, int r) {
        /* Memory and the queued changes disagree now (only out of memory can
         * cause that): start over from PostgreSQL. */
        log_error_errno(r, "Failed to queue a change: %m; reloading the tasks from PostgreSQL");
        manager_fail_and_reload(m, "Out of memory; the change was not applied");
}

static void on_batch_done(DbLink *l, int error, PGresult *result, void *userdata) {
        Manager *m = userdata;
        Batch *b = m->inflight;

        if (!b)
                return;
        if (error == -ECANCELED)
                return; /* the link is being freed: manager_free() answers */

        if (error < 0) {
                log_struct(LOG_ERR, error, LOG_FIELDS("MESSAGE_ID=9b1e2d3c4f5a46b7a8c9d0e1f2a3b4c5"),
                           "Writing %zu task changes failed; reloading the tasks from PostgreSQL",
                           b->n_changes);
                manager_fail_and_reload(m, "Writing to PostgreSQL failed; the change was not applied");
                return;
        }

        m->inflight = NULL;
        batch_committed(m, b);
        batch_free(b);

        /* Whatever arrived meanwhile goes out now, as one transaction. */
        if (m->open && m->open->n_changes > 0)
                (void) manager_submit(m);
        else if (m->open && m->open->n_hooks > 0) {
                /* Cannot happen (hooks wait only on batches with changes),
                 * but never strand a caller. */
                Batch *b2 = TAKE_PTR(m->open);

                batch_committed(m, b2);
                batch_free(b2);
        }

        manager_update_status(m, false);
        manager_check_stopped(m);
}

static int manager_submit(Manager *m) {
        _cleanup_(freep) char *sql = NULL;
        int r;

        if (m->inflight || !m->open || m->open->n_changes == 0)
                return 0;

        r = store_render_batch(m->open->changes, m->open->n_changes, &sql, NULL);
        if (r >= 0)
                r = db_link_exec(m->db, sql, on_batch_done, m);
        if (r < 0) {
                log_error_errno(r, "Cannot hand %zu task changes to the database link: %m", m->open->n_changes);
                manager_fail_and_reload(m, r == -ENOBUFS
                                                   ? "Too many changes wait for PostgreSQL; the change was not applied"
                                                   : "Cannot write to PostgreSQL; the change was not applied");
                return r;
        }
        m->inflight = TAKE_PTR(m->open);
        m->inflight->submitted = now_usec(CLOCK_MONOTONIC);
        return 0;
}

static int on_flush(sd_event_source *s, void *userdata) {
        (void) manager_submit(userdata);
        return 0;
}

/* --- loading ------------------------------------------------------------- */

/* Calls told to wait for the load are refused now (the sink holds them). */
static void refuse_waiting(Manager *m, const char *why) {
        if (m->sink && m->sink->refuse_waiting)
                m->sink->refuse_waiting(why, m->sink_userdata);
}

static int on_event(EventSubscriber *s, const char *topic, size_t topic_len, const char *body,
                    size_t body_len, void *userdata);

static int manager_subscribe(Manager *m) {
        static char *const topics[] = { (char *) "router.call.missed", NULL };
        int r;

        if (m->subscriber || !m->config->tasks.followup_on_missed)
                return 0;
        r = event_subscriber_new(&m->subscriber, m->event, m->zctx, m->config->events.subscribe,
                                 topics, on_event, m);
        if (r < 0)
                return log_error_errno(r, "Cannot subscribe to %s for missed calls: %m",
                                       m->config->events.subscribe);
        log_debug("Following missed calls on %s", m->config->events.subscribe);
        return 0;
}

static void on_loaded(DbLink *l, int error, PGresult *result, void *userdata) {
        Manager *m = userdata;
        TaskTree *t = NULL;
        int r;

        if (error == -ECANCELED)
                return;
        m->load_pending = false;

        r = error < 0 ? error : store_parse_load(result, &t);
        if (r < 0) {
                /* An SQL error here is not transient (the link retries lost
                 * connections itself): the schema or the data is broken.
                 * Say so and retry slowly rather than serve a wrong tree. */
                log_struct(LOG_ERR, r, LOG_FIELDS("MESSAGE_ID=0f6b7a8e9d2c4b1aa3e5d7c9b1f3e5a7"),
                           "Loading the tasks from PostgreSQL failed: %s; retrying",
                           r == -EBADMSG ? "the stored tree breaks its rules" : strerror(-r));
                (void) sd_event_source_set_time_relative(m->reload_source, 5 * USEC_PER_SEC);
                (void) sd_event_source_set_enabled(m->reload_source, SD_EVENT_ONESHOT);
                return;
        }

        m->tree = t;
        /* A query just succeeded, whatever order the link reports its
         * state change in. */
        m->db_connected = true;
        if (m->state == MANAGER_LOADING)
                m->state = MANAGER_READY;
        log_info("Loaded %zu tasks (%zu open), %zu follow-up records", task_tree_size(t),
                 task_tree_open_count(t), task_tree_followup_count(t));

        /* Run what waited, in arrival order. */
        if (m->sink && m->sink->loaded)
                m->sink->loaded(m->sink_userdata);

        size_t nm = m->n_missed;
        char **missed = TAKE_PTR(m->missed);
        m->n_missed = m->missed_alloc = 0;
        for (size_t i = 0; i < nm; i++) {
                (void) manager_followup_missed_call(m, missed[i]);
                free(missed[i]);
        }
        free(missed);

        (void) manager_subscribe(m);
        m->serving = true;
        manager_update_status(m, true);
        manager_check_stopped(m);
}

static void manager_load(Manager *m) {
        int r;

        if (m->load_pending || m->tree)
                return;
        r = db_link_exec(m->db, store_load_sql, on_loaded, m);
        if (r < 0) {
                log_error_errno(r, "Cannot queue the task load: %m; retrying");
                (void) sd_event_source_set_time_relative(m->reload_source, RELOAD_DELAY_USEC);
                (void) sd_event_source_set_enabled(m->reload_source, SD_EVENT_ONESHOT);
                return;
        }
        m->load_pending = true;
}

static int on_reload(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_load(userdata);
        return 0;
}

static void on_db_state(DbLink *l, bool connected, void *userdata) {
        Manager *m = userdata;

        /* The link itself logs outages and recoveries; say here only what
         * the outage means for tasks. */
        m->db_connected = connected;
        if (connected)
                log_debug("PostgreSQL link ready; accepting changes");
        else {
                log_warning("Lost PostgreSQL; changes are refused until it is back");
                /* Calls waiting for the load would now wait for the
                 * reconnect too: answer them. */
                if (m->grace_over)
                        refuse_waiting(m, "PostgreSQL is unreachable; tasks are not loaded");
        }
        manager_update_status(m, true);
}

static int on_grace(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        m->grace_over = true;
        if (m->state == MANAGER_LOADING && !m->db_connected) {
                log_warning("PostgreSQL is unreachable; answering Unavailable until it is back");
                refuse_waiting(m, "PostgreSQL is unreachable; tasks are not loaded");
                /* Serving errors is serving: do not make systemd kill us
                 * for a database that is down. */
                m->serving = true;
                manager_update_status(m, true);
        }
        return 0;
}

/* --- calls ---------------------------------------------------------------- */

int manager_check_call(Manager *m, bool write) {
        if (m->state == MANAGER_STOPPING && (write || !m->tree))
                return -ESHUTDOWN;

        if (!m->tree) {
                /* Wait for the load while it can still come soon. */
                if (m->db_connected || !m->grace_over)
                        return 0;
                return -EHOSTDOWN;
        }

        if (write && !m->db_connected) {
                if (ratelimit_below(&m->away_ratelimit))
                        log_warning("Refusing a change: PostgreSQL is unreachable");
                return -ENOTCONN;
        }
        return 1;
}

/* --- events ---------------------------------------------------------------- */

static int on_event(EventSubscriber *s, const char *topic, size_t topic_len, const char *body,
                    size_t body_len, void *userdata) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        static const char want[] = "router.call.missed";
        Manager *m = userdata;
        const char *call;
        Envelope e;
        int r;

        /* Subscriptions are prefixes: "router.call.missed2" would match. */
        if (topic_len != strlen(want) || memcmp(topic, want, topic_len) != 0)
                return 0;
        r = envelope_parse(body, body_len, &e, &obj);
        if (r < 0)
                return log_debug_errno(r, "Ignoring a malformed router.call.missed event: %m");
        r = json_get_string(e.data, "call", &call);
        if (r < 0)
                return log_debug_errno(r, "Ignoring a router.call.missed event without a call: %m");
        r = manager_followup_missed_call(m, call);
        if (r == -EINVAL)
                log_warning("Ignoring missed call with an unusable id (%zu bytes)", strlen(call));
        return 0;
}

/* --- life cycle ------------------------------------------------------------ */

int manager_status_line(Manager *m, char *buf, size_t size) {
        int n;

        if (m->state == MANAGER_STOPPING)
                n = snprintf(buf, size, "Stopping: committing %zu changes",
                             (m->inflight ? m->inflight->n_changes : 0) + (m->open ? m->open->n_changes : 0));
        else if (!m->tree)
                n = snprintf(buf, size, "%s",
                             m->db_connected || !m->grace_over ? "Loading tasks from PostgreSQL"
                                                               : "Waiting for PostgreSQL");
        else
                n = snprintf(buf, size,
                             "%zu tasks (%zu open); %" PRIu64 " commits, largest %" PRIu64 " changes%s",
                             task_tree_size(m->tree), task_tree_open_count(m->tree), m->commits,
                             m->largest_batch, m->db_connected ? "" : "; PostgreSQL unreachable");
        return n < 0 ? -EINVAL : n;
}

static void manager_update_status(Manager *m, bool force) {
        usec_t now = now_usec(CLOCK_MONOTONIC);
        char line[256];

        if (!force && now < m->last_status + STATUS_INTERVAL_USEC)
                return;
        m->last_status = now;
        (void) manager_status_line(m, line, sizeof line);
        daemon_notify_status("%s", line);
}

static int on_stop_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        log_error("Gave up waiting for PostgreSQL: %zu changes were not committed",
                  (m->inflight ? m->inflight->n_changes : 0) + (m->open ? m->open->n_changes : 0));
        (void) sd_event_exit(m->event, -ETIMEDOUT);
        return 0;
}

void manager_begin_shutdown(Manager *m) {
        if (m->state == MANAGER_STOPPING)
                return;
        m->state = MANAGER_STOPPING;
        refuse_waiting(m, "callcenter-taskd is shutting down");

        /* Commit what was accepted before exiting: those callers wait for
         * their replies. */
        (void) manager_submit(m);
        (void) sd_event_add_time_relative(m->event, &m->stop_source, CLOCK_MONOTONIC,
                                          STOP_TIMEOUT_USEC, 0, on_stop_timeout, m);
        manager_update_status(m, true);
        manager_check_stopped(m);
}

void manager_set_sink(Manager *m, const ManagerSink *sink, void *userdata) {
        m->sink = sink;
        m->sink_userdata = sink ? userdata : NULL;
}

int manager_new(Manager **ret, sd_event *e, const TaskdConfig *config) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        if (!config->database.url || !*config->database.url)
                return log_error_errno(EINVAL,
                                       "[database] url is empty: callcenter-taskd keeps tasks in PostgreSQL "
                                       "and cannot run without it. Set url or $CALLCENTER_DATABASE_URL.");

        m = calloc(1, sizeof(*m));
        if (!m)
                return log_oom();
        m->config = config;
        m->event = sd_event_ref(e);
        m->state = MANAGER_LOADING;
        m->away_ratelimit = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 1 };

        /* Lower priority than the bus: flush after the queued requests. */
        r = sd_event_add_defer(m->event, &m->flush_source, on_flush, m);
        if (r >= 0)
                r = sd_event_source_set_priority(m->flush_source, SD_EVENT_PRIORITY_NORMAL + 10);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->flush_source, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &m->reload_source, CLOCK_MONOTONIC,
                                               RELOAD_DELAY_USEC, 0, on_reload, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->reload_source, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &m->grace_source, CLOCK_MONOTONIC,
                                               config->database.connect_timeout, 0, on_grace, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the loop's sources: %m");

        m->zctx = zmq_ctx_new();
        if (!m->zctx)
                return log_error_errno(errno, "Failed to create the ZeroMQ context: %m");
        r = event_publisher_new(&m->publisher, m->event, m->zctx, &config->events, "tasks");
        if (r < 0)
                return log_error_errno(r, "Failed to set up the event publisher for %s: %m",
                                       config->events.publish);

        r = db_link_new(&m->db, m->event, &config->database, "callcenter-taskd");
        if (r < 0)
                return log_error_errno(r, "Failed to set up the PostgreSQL link: %m");
        db_link_set_state_handler(m->db, on_db_state, m);
        /* Queued now, run by the link right after connecting and migrating. */
        manager_load(m);

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;

        /* Whoever waits learns that the change is not confirmed. The sink
         * is not told anything any more: its owner may be half gone. */
        m->sink = NULL;
        if (m->inflight)
                batch_run_hooks(m->inflight, -ESHUTDOWN, "callcenter-taskd stopped before the change was committed");
        if (m->open)
                batch_run_hooks(m->open, -ESHUTDOWN, "callcenter-taskd stopped before the change was committed");

        m->subscriber = event_subscriber_free(m->subscriber);
        if (m->publisher) {
                (void) event_publisher_flush(m->publisher, EVENT_FLUSH_USEC);
                m->publisher = event_publisher_free(m->publisher);
        }
        m->db = db_link_free(m->db);
        m->inflight = batch_free(m->inflight);
        m->open = batch_free(m->open);
        if (m->zctx)
                (void) zmq_ctx_term(m->zctx);

        for (size_t i = 0; i < m->n_missed; i++)
                free(m->missed[i]);
        free(m->missed);
        task_tree_free(m->tree);

        sd_event_source_unref(m->flush_source);
        sd_event_source_unref(m->grace_source);
        sd_event_source_unref(m->stop_source);
        sd_event_source_unref(m->reload_source);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

int manager_wait_loaded(Manager *m) {
        int r;

        manager_update_status(m, true);
        /* The loop runs meanwhile: the link connects, migrates and loads on
         * it, and calls arriving on the bus are kept until the tree is
         * there. */
        while (!m->serving) {
                int state;

                r = sd_event_run(m->event, UINT64_MAX);
                if (r < 0)
                        return log_error_errno(r, "Event loop failed while loading the tasks: %m");
                state = sd_event_get_state(m->event);
                if (state == SD_EVENT_FINISHED || state == SD_EVENT_EXITING) {
                        int code = 0;

                        /* An error exit (the bus name is taken, the bus
                         * went away) is the caller's error too. */
                        (void) sd_event_get_exit_code(m->event, &code);
                        return code < 0 ? code : -ECANCELED;
                }
        }
        return 0;
}

TaskTree *manager_get_tree(Manager *m) {
        return m->tree;
}
