/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>
#include <zmq.h>

#include "daemons/routerd/bus.h"
#include "daemons/routerd/idmap.h"
#include "daemons/routerd/manager.h"
#include "daemons/routerd/server.h"
#include "daemons/routerd/store.h"
#include "dbus/names.h"
#include "libshared/bus-util.h"
#include "libshared/cleanup.h"
#include "libshared/daemon.h"
#include "libshared/log.h"

/* STATUS= is a one-line summary: updating it on every call would cost a
 * syscall per request under load, so changes are coalesced. */
#define STATUS_INTERVAL (250 * USEC_PER_MSEC)

/* The deadline timer's accuracy: ring timeouts are seconds long, a
 * millisecond of slack lets the kernel coalesce wake-ups. */
#define DEADLINE_ACCURACY USEC_PER_MSEC

static size_t strv_length_safe(char *const *l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

static bool strv_contains_safe(char *const *l, const char *s) {
        for (; l && *l; l++)
                if (strcmp(*l, s) == 0)
                        return true;
        return false;
}

static usec_t now_realtime(void) {
        /* The ACD and the store share CLOCK_REALTIME: restored arrival
         * times must mean the same after a restart (see acd.h). */
        return now_usec(CLOCK_REALTIME);
}

/* --- carrying out outcome records ---------------------------------------- */

/* A data object with the given string keys (values "") and, when
 * with_waited, "waited_usec": 0 last. NULL when out of memory. */
static struct json_object *event_data_new(const char *const *keys, bool with_waited) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        for (; *keys; keys++) {
                struct json_object *v = json_object_new_string("");

                if (!v || json_object_object_add(o, *keys, v) < 0) {
                        json_object_put(v);
                        return NULL;
                }
        }
        if (with_waited) {
                struct json_object *v = json_object_new_int64(0);

                if (!v || json_object_object_add(o, "waited_usec", v) < 0) {
                        json_object_put(v);
                        return NULL;
                }
        }
        return TAKE_PTR(o);
}

static void event_data_set(struct json_object *o, const char *key, const char *value) {
        struct json_object *v;

        /* A new string object replaces the old in place (the key keeps its
         * position). Not json_object_set_string(): json-c 0.16 leaks the
         * old buffer when a long value is followed by an empty one. */
        v = json_object_new_string(value);
        if (!v || json_object_object_add(o, key, v) < 0)
                json_object_put(v);
}

/*
 * The data object for event e. Building a json-c tree per event costs a
 * dozen allocations, and this runs several times per request; instead one
 * object per shape is kept and its values are overwritten in place (the
 * key order stays that of the first build: call, operator, queue,
 * waited_usec). The result is borrowed until the next call.
 */
static struct json_object *event_data_for(Manager *m, const AcdEvent *e) {
        static const char *const op_keys[] = { "operator", "state", "call", "status", NULL };
        static const char *const call_keys[] = { "call", "queue", NULL };
        static const char *const call_op_keys[] = { "call", "operator", "queue", NULL };
        struct json_object *o;
        size_t i;

        if (e->kind == ACD_EVENT_OPERATOR_STATE) {
                if (!m->event_data[0])
                        m->event_data[0] = event_data_new(op_keys, false);
                o = m->event_data[0];
                if (!o)
                        return NULL;
                event_data_set(o, "operator", e->operator);
                event_data_set(o, "state", acd_operator_state_to_string(e->state));
                event_data_set(o, "call", e->call);
                event_data_set(o, "status", acd_operator_status_to_string(e->status));
                return o;
        }

        bool has_op = e->operator[0] != '\0';
        bool has_waited = e->kind == ACD_EVENT_ANSWERED || e->kind == ACD_EVENT_FINISHED ||
                          e->kind == ACD_EVENT_MISSED;

        i = 1 + (size_t) has_op + 2 * (size_t) has_waited;
        if (!m->event_data[i])
                m->event_data[i] = event_data_new(has_op ? call_op_keys : call_keys, has_waited);
        o = m->event_data[i];
        if (!o)
                return NULL;
        event_data_set(o, "call", e->call);
        if (has_op)
                event_data_set(o, "operator", e->operator);
        event_data_set(o, "queue", e->queue);
        if (has_waited) {
                struct json_object *v = NULL;

                if (json_object_object_get_ex(o, "waited_usec", &v))
                        (void) json_object_set_int64(v, (int64_t) e->waited);
        }
        return o;
}

static void publish_event(Manager *m, const AcdEvent *e) {
        struct json_object *data;
        const char *topic = acd_event_topic(e->kind);
        int64_t r;

        /* DESIGN.md lists the router topics; "received" is not among them
         * (a call's first event is queued or ringing). */
        if (!m->publisher || !topic || e->kind == ACD_EVENT_RECEIVED)
                return;
        data = event_data_for(m, e);
        if (!data) {
                (void) log_oom();
                return;
        }

        /* The envelope's type is the topic without the source prefix. */
        if (strncmp(topic, "router.", 7) == 0)
                topic += 7;
        r = event_publisher_emit(m->publisher, topic, data);
        if (r < 0 && r != -ENOBUFS)
                log_debug_errno((int) r, "Could not publish %s: %m", topic);
}

static void check_bus_backlog(Manager *m);

/* Committed events released at once past this many (see queue_event()). */
#define EVENTS_RELEASE_BATCH 256U

typedef struct PendingEvent {
        AcdEvent event;
        uint64_t ticket;             /* store batch that must commit first */
} PendingEvent;

typedef struct CommitWaiter {
        uint64_t ticket;
        ManagerCommitCallback cb;
        void *userdata;
} CommitWaiter;

uint64_t manager_commit_ticket(const Manager *m) {
        return store_ticket(m->store);
}

uint64_t manager_committed(const Manager *m) {
        return store_committed(m->store);
}

/*
 * Events leave in order, once their changes are committed, at the end of
 * the loop iteration (or of the commit). Handing an event to ZeroMQ wakes
 * its I/O thread whenever that thread has gone back to sleep: one wake-up
 * (an eventfd write, a context switch and a send) per event if they went
 * one by one. Sent back to back, all the events of the requests handled in
 * one iteration share one or two wake-ups. The bus subscribers' signals
 * follow the same path, so that a signal, too, tells only of what is
 * committed.
 */
static void release_events(Manager *m) {
        uint64_t committed = store_committed(m->store);
        bool any = false;

        while (m->pending_start < m->n_pending && m->pending[m->pending_start].ticket <= committed) {
                const AcdEvent *e = &m->pending[m->pending_start++].event;

                publish_event(m, e);
                bus_router_emit_event(m, e);
                any = true;
        }
        if (any) {
                bus_router_emit_properties(m);
                check_bus_backlog(m);
        }
        if (m->pending_start < m->n_pending)
                return;
        m->pending_start = m->n_pending = 0;
        /* A pipelined burst may have grown the array a lot: do not keep
         * that memory when things calm down. */
        if (m->allocated_pending > 4096) {
                free(m->pending);
                m->pending = NULL;
                m->allocated_pending = 0;
        }
}

static int on_pub_post(sd_event_source *s, void *userdata) {
        release_events(userdata);
        return 0;
}

/* Room for one more item at the end of a FIFO array whose items
 * [*start, *n) are live: the dead front is reclaimed first, then the array
 * doubles (from initial). Returns 0 or -ENOMEM (nothing changed). */
static int fifo_make_room(void **items, size_t size, size_t *start, size_t *n, size_t *allocated,
                          size_t initial) {
        void *l;
        size_t a;

        if (*n < *allocated)
                return 0;
        if (*start > 0) {
                memmove(*items, (char *) *items + *start * size, (*n - *start) * size);
                *n -= *start;
                *start = 0;
                if (*n < *allocated)
                        return 0;
        }
        a = *allocated ? *allocated * 2 : initial;
        l = realloc(*items, a * size);
        if (!l)
                return -ENOMEM;
        *items = l;
        *allocated = a;
        return 0;
}

static void queue_event(Manager *m, const AcdEvent *e, uint64_t ticket) {
        /* "received" is neither a topic nor a signal. */
        if (e->kind == ACD_EVENT_RECEIVED || (!m->publisher && !bus_router_has_subscribers(m)))
                return;
        if (fifo_make_room((void **) &m->pending, sizeof(PendingEvent), &m->pending_start, &m->n_pending,
                           &m->allocated_pending, 64) < 0) {
                (void) log_oom();
                return;
        }
        m->pending[m->n_pending++] = (PendingEvent) { .event = *e, .ticket = ticket };
        /* The deferred release runs once input stops; under a steady
         * pipelined stream that may be long. Releasing every few hundred
         * committed events keeps the bus backlog check (which holds TCP
         * input while dbus-daemon lags) and memory where they belong. */
        if (!m->pub_post || (m->n_pending - m->pending_start >= EVENTS_RELEASE_BATCH &&
                             ticket <= store_committed(m->store)))
                release_events(m);
        else
                (void) sd_event_source_set_enabled(m->pub_post, SD_EVENT_ONESHOT);
}

int manager_after_commit(Manager *m, ManagerCommitCallback cb, void *userdata) {
        uint64_t ticket = store_ticket(m->store);

        if (ticket <= store_committed(m->store)) {
                cb(userdata, true);
                return 0;
        }
        if (fifo_make_room((void **) &m->waiters, sizeof(CommitWaiter), &m->waiters_start, &m->n_waiters,
                           &m->allocated_waiters, 16) < 0)
                return -ENOMEM;
        m->waiters[m->n_waiters++] = (CommitWaiter) { .ticket = ticket, .cb = cb, .userdata = userdata };
        return 0;
}

static void release_waiters(Manager *m, bool committed) {
        uint64_t done = store_committed(m->store);

        while (m->waiters_start < m->n_waiters && (!committed || m->waiters[m->waiters_start].ticket <= done)) {
                CommitWaiter w = m->waiters[m->waiters_start++];

                w.cb(w.userdata, committed);
        }
        if (m->waiters_start == m->n_waiters)
                m->waiters_start = m->n_waiters = 0;
}

/* A batch was committed: what waited for it goes out, events first (a
 * client that saw its reply may look for them). */
static void on_store_committed(Store *s, uint64_t committed, void *userdata) {
        Manager *m = userdata;

        release_events(m);
        release_waiters(m, true);
        if (m->server)
                server_release(m->server, committed);
}

/* Arm timer (CLOCK_MONOTONIC, one shot) to fire delay from now, unless it
 * is armed already. */
static void arm_once(Manager *m, sd_event_source *timer, usec_t delay) {
        int enabled = SD_EVENT_OFF;
        usec_t now;

        if (!timer)
                return;
        (void) sd_event_source_get_enabled(timer, &enabled);
        if (enabled != SD_EVENT_OFF)
                return;
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                now = now_usec(CLOCK_MONOTONIC);
        (void) sd_event_source_set_time(timer, now + delay);
        (void) sd_event_source_set_enabled(timer, SD_EVENT_ONESHOT);
}

static void schedule_status(Manager *m) {
        arm_once(m, m->status_timer, STATUS_INTERVAL);
}

static void arm_deadline(Manager *m) {
        usec_t next = acd_next_deadline(m->acd);

        if (!m->deadline_timer)
                return;
        if (next == USEC_INFINITY) {
                (void) sd_event_source_set_enabled(m->deadline_timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(m->deadline_timer, next);
        (void) sd_event_source_set_enabled(m->deadline_timer, SD_EVENT_ONESHOT);
}

/*
 * D-Bus back-pressure. sd-bus writes a message at once when the socket
 * takes it and queues it in memory when not; dbus-daemon routes every
 * signal to every peer and is slower than a busy TCP client, so that queue
 * could grow without bound (and sd-bus spends more per message the longer
 * it is). While more than BUS_BACKLOG_HIGH messages wait, TCP input is held:
 * clients wait in TCP flow control, as for a slow reader of its replies.
 * At BUS_BACKLOG_LOW it is released. D-Bus callers need no such brake:
 * their replies wait in the same queue.
 */
#define BUS_BACKLOG_HIGH 256U
#define BUS_BACKLOG_LOW 64U

static void check_bus_backlog(Manager *m) {
        uint64_t n;

        if (!m->bus || !m->server || !m->backlog_post || sd_bus_get_n_queued_write(m->bus, &n) < 0)
                return;
        if (!m->bus_backlog && n > BUS_BACKLOG_HIGH) {
                m->bus_backlog = true;
                m->bus_backlog_holds++;
                server_hold_input(m->server, true);
                /* Checked after each loop iteration until it drained. */
                (void) sd_event_source_set_enabled(m->backlog_post, SD_EVENT_ON);
        } else if (m->bus_backlog && n <= BUS_BACKLOG_LOW) {
                m->bus_backlog = false;
                (void) sd_event_source_set_enabled(m->backlog_post, SD_EVENT_OFF);
                server_hold_input(m->server, false);
        }
}

static int on_backlog_post(sd_event_source *s, void *userdata) {
        check_bus_backlog(userdata);
        return 0;
}

/*
 * Carry out m->events[from..n): the store first (it only marks records
 * dirty), then the events and signals in the ACD's order, then the TCP
 * notices, then the timer for whatever deadline is next.
 */
static void dispatch(Manager *m, size_t from, bool unsolicited) {
        uint64_t ticket;

        if (m->events.lost > 0) {
                log_warning("Out of memory: %zu routing outcome records were lost.", m->events.lost);
                m->events.lost = 0;
        }

        store_apply_events(m->store, &m->events, from);
        ticket = store_ticket(m->store);
        for (size_t i = from; i < m->events.n; i++)
                queue_event(m, &m->events.events[i], ticket);
        if (m->server)
                server_handle_events(m->server, &m->events, from, unsolicited);
        check_bus_backlog(m);
        arm_deadline(m);
        schedule_status(m);
}

static void begin(Manager *m) {
        acd_events_clear(&m->events);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r;

        begin(m);
        r = acd_timeout(m->acd, now_realtime(), &m->events);
        if (r < 0)
                log_warning_errno(r, "Handling routing deadlines failed, continuing: %m");
        /* Ring timeouts and the ends of delays and wrap-up: nobody asked,
         * so the lines go out as notices. */
        dispatch(m, 0, true);
        return 0;
}

/* --- operations ------------------------------------------------------------ */

/* The end of an operation a client asked for, after begin(): r is the ACD's
 * answer; when it succeeded, its outcomes are carried out. Returns r. */
static int finish(Manager *m, int r) {
        if (r >= 0)
                dispatch(m, 0, false);
        return r;
}

int manager_place_call(Manager *m, const char *id, const char *queue) {
        begin(m);
        return finish(m, acd_place_call(m->acd, id, queue, now_realtime(), &m->events));
}

int manager_answer(Manager *m, const char *op, const char **ret_call) {
        begin(m);
        return finish(m, acd_answer(m->acd, op, now_realtime(), &m->events, ret_call));
}

int manager_reject(Manager *m, const char *op, const char **ret_call) {
        begin(m);
        return finish(m, acd_reject(m->acd, op, now_realtime(), &m->events, ret_call));
}

int manager_hangup(Manager *m, const char *id) {
        begin(m);
        return finish(m, acd_hangup(m->acd, id, now_realtime(), &m->events));
}

/* The queues the configuration gives operator id, or NULL for the default
 * queue. */
static const char *const *configured_queues_of(Manager *m, const char *id) {
        return idmap_get(m->configured_queues, id);
}

/* Defined with the reload, below. */
static bool config_has_queue(const RouterConfig *c, const char *name);
static void format_queue_list(const char *const *l, char *buf, size_t size);

/*
 * The queues to give an operator whose queues were set at run time (set,
 * empty = every queue), as far as configuration c has them: a new list in
 * *ret, NULL when none is left (the default queue alone, as for an
 * operator in no queue). The ACD's queues are read in creation order, so
 * "every queue" lists them as they were created. Returns 0 or -ENOMEM.
 */
static int set_queues_resolve(Manager *m, const RouterConfig *c, char *const *set, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        size_t n = 0, nq = acd_queue_count(m->acd), ns = strv_length_safe(set);

        l = calloc((ns > nq ? ns : nq) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        if (!set[0]) {
                for (size_t i = 0; i < nq; i++)
                        if (config_has_queue(c, acd_queue_name(m->acd, i)) &&
                            !(l[n++] = strdup(acd_queue_name(m->acd, i))))
                                return -ENOMEM;
        } else
                for (char *const *q = set; *q; q++)
                        if (config_has_queue(c, *q) && !(l[n++] = strdup(*q)))
                                return -ENOMEM;
        *ret = n > 0 ? TAKE_PTR(l) : NULL;
        return 0;
}

static void set_queues_forget(Manager *m, const char *id) {
        strv_free(idmap_get(m->set_queues, id));
        (void) idmap_remove(m->set_queues, id);
}

/* Keep queues (copied) as operator id's run-time setting. */
static int set_queues_keep(Manager *m, const char *id, const char *const *queues) {
        size_t n = strv_length_safe((char *const *) queues);
        char **l, **old;

        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!(l[i] = strdup(queues[i])))
                        return strv_free(l), -ENOMEM;
        old = idmap_get(m->set_queues, id);
        if (idmap_put(m->set_queues, id, l) < 0) {
                strv_free(l);
                return -ENOMEM;
        }
        strv_free(old);
        return 0;
}

int manager_add_operator(Manager *m, const char *id, const char *const *queues, AcdOperatorStatus status) {
        int r;

        if (!queues)
                queues = configured_queues_of(m, id);
        begin(m);
        r = acd_add_operator(m->acd, id, queues, status, now_realtime(), &m->events);
        if (r < 0)
                return r;
        (void) store_operator_added(m->store, id, queues, status);
        bus_router_emit_operator_added(m, id);
        log_notice("Operator %s added.", id);
        dispatch(m, 0, false);
        return r;
}

int manager_remove_operator(Manager *m, const char *id) {
        int r;

        begin(m);
        r = acd_remove_operator(m->acd, id, now_realtime(), &m->events);
        if (r < 0)
                return r;
        store_operator_removed(m->store, id);
        /* Added again, it starts from the configuration's queues. */
        set_queues_forget(m, id);
        /* Not brought back by a reload of [router] operators. */
        if (idmap_put(m->removed_operators, id, m) < 0)
                (void) log_oom();
        bus_router_emit_operator_removed(m, id);
        log_notice("Operator %s removed.", id);
        dispatch(m, 0, false);
        return r;
}

int manager_set_status(Manager *m, const char *id, AcdOperatorStatus status) {
        begin(m);
        return finish(m, acd_set_status(m->acd, id, status, now_realtime(), &m->events));
}

int manager_set_operator_queues(Manager *m, const char *id, const char *const *queues) {
        _cleanup_(strv_freep) char **use = NULL;
        AcdOperatorInfo info;
        char list[256];
        int r;

        if (acd_get_operator(m->acd, id, &info) < 0)
                return -ENOENT;
        for (size_t i = 0; queues[i]; i++) {
                if (!acd_id_is_valid(queues[i]) || !config_has_queue(&m->config->router, queues[i]))
                        return -ENXIO;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(queues[i], queues[j]) == 0)
                                return -EINVAL;
        }
        r = set_queues_resolve(m, &m->config->router, (char *const *) queues, &use);
        if (r < 0)
                return r;

        begin(m);
        r = acd_set_operator_queues(m->acd, id, (const char *const *) use, now_realtime(), &m->events);
        if (r < 0)
                return r;
        /* The ACD has it: what is left cannot fail but for memory, and
         * then the setting is only lost at the next restart (logged). */
        if (set_queues_keep(m, id, queues) < 0)
                (void) log_oom();
        (void) store_operator_set_queues(m->store, id, queues, true);
        format_queue_list(queues[0] ? queues : NULL, list, sizeof list);
        log_notice("Operator %s: queues set to %s.", id, queues[0] ? list : "every queue");
        dispatch(m, 0, false);
        return 0;
}

const char *manager_events_ringing_operator(const Manager *m, const char *call) {
        /* The last RINGING for the call: after a re-offer that is the one
         * that stands. */
        for (size_t i = m->events.n; i > 0; i--) {
                const AcdEvent *e = &m->events.events[i - 1];

                if (e->kind == ACD_EVENT_RINGING && strcmp(e->call, call) == 0)
                        return e->operator;
        }
        return NULL;
}

int manager_status_line(Manager *m, char *buf, size_t size) {
        size_t queued = acd_queue_length(m->acd);
        size_t conns = m->server ? server_connection_count(m->server) : 0;

        return snprintf(buf, size, "%zu call%s queued, %zu/%zu operators available, %zu connection%s",
                        queued, queued == 1 ? "" : "s", acd_operators_available(m->acd),
                        acd_operator_count(m->acd), conns, conns == 1 ? "" : "s");
}

/*
 * Give freed heap back to the kernel. A burst (100,000 calls placed in a
 * few seconds) leaves tens of MiB free inside the heap: D-Bus signals
 * waiting in sd-bus's write queue for a slower dbus-daemon, reply buffers,
 * batched events. glibc returns only the top of the heap on its own, so
 * without this the resident size stays at the burst's peak for good. A
 * second after activity, and at most once a second under load, holes of
 * more than TRIM_FREE_MIN are released (malloc_trim() walks only free
 * chunks: cheap next to the requests that made them).
 */
#define TRIM_INTERVAL USEC_PER_SEC
#define TRIM_FREE_MIN (4U * 1024U * 1024U)

static int on_trim_timer(sd_event_source *s, uint64_t usec, void *userdata) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
        struct mallinfo2 mi = mallinfo2();

        if (mi.fordblks >= TRIM_FREE_MIN)
                (void) malloc_trim(0);
#elif defined(__GLIBC__)
        (void) malloc_trim(0);
#endif
        return 0;
}

static void schedule_trim(Manager *m) {
        arm_once(m, m->trim_timer, TRIM_INTERVAL);
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        char line[256];

        if (m->stopping)
                return 0;
        (void) manager_status_line(m, line, sizeof line);
        daemon_notify_status("%s", line);
        schedule_trim(m);
        return 0;
}

/* --- loading ------------------------------------------------------------- */

/* Queue names an operator may be given: those that exist in the ACD. A
 * stored list naming a queue the configuration no longer has loses that
 * queue; an empty result means the default queue. */
static char **existing_queues(Manager *m, char **queues) {
        char **l;
        size_t n = 0;

        l = calloc(strv_length_safe(queues) + 1, sizeof(char *));
        if (!l)
                return NULL;
        for (char **q = queues; q && *q; q++) {
                bool found = false;

                for (size_t i = 0; i < acd_queue_count(m->acd); i++)
                        if (strcmp(acd_queue_name(m->acd, i), *q) == 0)
                                found = true;
                if (!found) {
                        log_warning("Operator queue \"%s\" is no longer configured, ignoring it.", *q);
                        continue;
                }
                l[n] = strdup(*q);
                if (!l[n])
                        return strv_free(l);
                n++;
        }
        return l;
}

static void restore_operator(Manager *m, const StoreOperatorRow *o, usec_t now) {
        _cleanup_(strv_freep) char **queues = NULL;
        const char *const *use;
        int r;

        /* Queues set at run time win; else the configuration decides the
         * queues of the operators it places in queues; operators added at
         * run time keep their stored ones. */
        if (o->queues_set) {
                if (set_queues_keep(m, o->id, (const char *const *) o->queues) < 0 ||
                    set_queues_resolve(m, &m->config->router, o->queues, &queues) < 0) {
                        (void) log_oom();
                        return;
                }
                use = (const char *const *) queues;
        } else
                use = configured_queues_of(m, o->id);
        if (!use && !o->queues_set) {
                queues = existing_queues(m, o->queues);
                if (!queues) {
                        (void) log_oom();
                        return;
                }
                use = queues[0] ? (const char *const *) queues : NULL;
        }
        r = acd_add_operator(m->acd, o->id, use, o->status, now, &m->events);
        if (r < 0)
                log_warning_errno(r, "Could not restore operator %s, ignoring: %m", o->id);
}

static bool snapshot_has_operator(const StoreSnapshot *s, const char *id) {
        for (size_t i = 0; s && i < s->n_operators; i++)
                if (strcmp(s->operators[i].id, id) == 0)
                        return true;
        return false;
}

/* Operator id of [router] operators, new to routerd: available, in the
 * queues the configuration gives it, and stored. A failure is logged. */
static int add_configured_operator(Manager *m, const char *id, usec_t now) {
        const char *const *queues = configured_queues_of(m, id);
        int r;

        r = acd_add_operator(m->acd, id, queues, ACD_STATUS_AVAILABLE, now, &m->events);
        if (r < 0)
                return log_warning_errno(r, "Could not add operator %s, ignoring: %m", id);
        (void) store_operator_added(m->store, id, queues, ACD_STATUS_AVAILABLE);
        return 0;
}

static void restore_state(Manager *m, const StoreSnapshot *snap) {
        usec_t now = now_realtime();
        _cleanup_(freep) AcdCallInfo *calls = NULL;
        size_t n_calls = 0, restored = 0;
        int r;

        begin(m);

        /* 1. Operators: the stored ones in their order, then those of
         * [router] operators the database has never seen (a removed one
         * stays removed). */
        for (size_t i = 0; snap && i < snap->n_operators; i++)
                if (!snap->operators[i].removed)
                        restore_operator(m, &snap->operators[i], now);
                else if (idmap_put(m->removed_operators, snap->operators[i].id, m) < 0)
                        (void) log_oom();
        for (char **o = m->config->router.operators; o && *o; o++)
                if (!snapshot_has_operator(snap, *o))
                        (void) add_configured_operator(m, *o, now);

        /* The statistics of the calls routed before, per queue (the live
         * calls count as received when they are restored below). */
        for (size_t i = 0; snap && i < snap->n_queue_counts; i++)
                if (acd_queue_add_counters(m->acd, snap->queue_counts[i].queue,
                                           &snap->queue_counts[i].counts) < 0)
                        log_debug("Queue %s is no longer configured, not restoring its statistics.",
                                  snap->queue_counts[i].queue);

        /* 2. Live calls in arrival order: answered ones bind their
         * operator, queued and ringing ones take their place. */
        for (size_t i = 0; snap && i < snap->n_calls; i++) {
                const StoreCallRow *c = &snap->calls[i];
                AcdCallRestore cr = {
                        .id = c->id,
                        .queue = c->queue,
                        .state = c->state,
                        .operator = c->state == ACD_CALL_ANSWERED ? c->operator : NULL,
                        .arrived_at = c->arrived,
                        .answered_at = c->answered,
                };

                r = acd_restore_call(m->acd, &cr, now, &m->events);
                if (r == -ENXIO) {
                        log_warning("Call %s was in queue %s, which is no longer configured: "
                                    "restoring it to the default queue.", c->id, c->queue);
                        cr.queue = NULL;
                        r = acd_restore_call(m->acd, &cr, now, &m->events);
                }
                if (r < 0) {
                        log_warning_errno(r, "Could not restore call %s (%s), recording it as missed: %m",
                                          c->id, acd_call_state_to_string(c->state));
                        store_call_abandon(m->store, c->id, now);
                        continue;
                }
                restored++;
        }

        /* 3. Offer the waiting calls (ringing ones ring again). */
        acd_restore_done(m->acd, now, &m->events);
        dispatch(m, 0, false);

        /* A stored "ringing" call that found no operator now is queued: make
         * the records say what the ACD holds. */
        if (acd_list_calls(m->acd, now, &calls, &n_calls) >= 0)
                for (size_t i = 0; i < n_calls; i++)
                        store_call_sync(m->store, calls[i].id, calls[i].state, calls[i].operator);

        if (snap)
                log_info("Restored %zu operator%s and %zu live call%s (%zu queued).",
                         acd_operator_count(m->acd), acd_operator_count(m->acd) == 1 ? "" : "s",
                         restored, restored == 1 ? "" : "s", acd_queue_length(m->acd));
}

static void on_loaded(Store *s, int error, const StoreSnapshot *snapshot, void *userdata) {
        Manager *m = userdata;

        m->loaded = true;
        m->load_error = error;
        if (error >= 0)
                restore_state(m, snapshot);
}

static int on_load_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        m->loaded = true;
        m->load_error = -ETIMEDOUT;
        return 0;
}

int manager_load_state(Manager *m, usec_t timeout) {
        int r;

        if (!store_enabled(m->store)) {
                log_warning("No [database] url: routerd keeps no call records, and a restart loses "
                            "the operators' status and every call.");
                restore_state(m, NULL);
                m->loaded = true;
                return 0;
        }

        r = store_load(m->store, acd_get_config(m->acd)->service_level, on_loaded, m);
        if (r < 0)
                return log_error_errno(r, "Could not queue the read of the router state: %m");

        r = sd_event_add_time_relative(m->event, &m->load_timer, CLOCK_MONOTONIC, timeout, 0,
                                       on_load_timeout, m);
        if (r < 0)
                return log_error_errno(r, "Could not set up the load timeout: %m");

        daemon_notify_status("Loading state from PostgreSQL...");
        /* Serving starts only once the state is back: a request handled
         * before would see an empty router and could take an id a restored
         * call holds. The loop runs meanwhile (the link connects, migrates
         * and reads on it). */
        while (!m->loaded) {
                int state;

                r = sd_event_run(m->event, UINT64_MAX);
                if (r < 0)
                        return log_error_errno(r, "Event loop failed while loading: %m");
                state = sd_event_get_state(m->event);
                if (state == SD_EVENT_FINISHED || state == SD_EVENT_EXITING)
                        return -ECANCELED;
        }
        m->load_timer = sd_event_source_disable_unref(m->load_timer);

        if (m->load_error == -ETIMEDOUT)
                return log_error_errno(m->load_error,
                                       "PostgreSQL did not answer within %" PRIu64 " s: refusing to start "
                                       "without the saved calls and operators.", timeout / USEC_PER_SEC);
        if (m->load_error < 0)
                return log_error_errno(m->load_error, "Could not load the router state: %m");
        return 0;
}

/* --- TCP --------------------------------------------------------------------- */

static int bind_listen(const char *address) {
        _cleanup_(closep) int fd = -1;
        struct sockaddr_storage sa;
        unsigned len;
        int one = 1, r;

        r = router_parse_listen(address, &sa, &len);
        if (r < 0)
                return log_error_errno(r, "Bad [router] listen address \"%s\".", address);

        fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return log_error_errno(errno, "socket() failed: %m");
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *) &sa, len) < 0)
                return log_error_errno(errno, "Could not bind to %s: %m", address);
        if (listen(fd, 1024) < 0)
                return log_error_errno(errno, "listen() on %s failed: %m", address);
        return TAKE_FD(fd);
}

int manager_start_server(Manager *m) {
        int fd, r;

        fd = daemon_listen_fd(NULL, AF_UNSPEC, SOCK_STREAM);
        if (fd == -ENOENT) {
                fd = bind_listen(m->config->router.listen);
                if (fd < 0)
                        return fd;
                log_info("Listening on %s.", m->config->router.listen);
        } else if (fd < 0)
                return log_error_errno(fd, "Bad socket passed by systemd: %m");
        else
                log_info("Listening on the socket passed by systemd.");

        r = server_new(&m->server, m, fd);
        if (r < 0)
                return log_error_errno(r, "Could not set up the TCP server: %m");
        return 0;
}

/* --- bus --------------------------------------------------------------------- */

int manager_connect_bus(Manager *m) {
        int r;

        r = daemon_bus_open(m->user_bus, &m->bus);
        if (r < 0)
                return log_error_errno(r, "Could not connect to the %s bus: %m",
                                       m->user_bus ? "session" : "system");
        r = bus_attach_event(m->bus, m->event);
        if (r < 0)
                return log_error_errno(r, "Could not attach the bus to the event loop: %m");
        r = bus_router_register(m);
        if (r < 0)
                return log_error_errno(r, "Could not register the D-Bus objects: %m");
        r = bus_request_name(m->bus, CC_ROUTER_SERVICE, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Could not request the name %s: %m", CC_ROUTER_SERVICE);
        return 0;
}

/* --- lifecycle ------------------------------------------------------------- */

/* Free a map built by queue_map_build() (its values are string vectors). */
static IdMap *queue_map_free(IdMap *map) {
        size_t state = 0;
        void *v;

        while (idmap_iterate(map, &state, NULL, &v))
                strv_free(v);
        return idmap_free(map);
}

/*
 * [router] queues as operator id -> NULL-terminated list of its queues, in
 * the order the configuration names the queues. The words were checked
 * when the configuration was loaded. Returns 0 or -ENOMEM / -EINVAL.
 */
static int queue_map_build(const RouterConfig *c, IdMap **ret) {
        IdMap *map = NULL;
        int r;

        r = idmap_new(&map);
        if (r < 0)
                return r;
        for (char **w = c->queues; w && *w; w++) {
                RouterQueueSpec q = {};

                r = router_queue_spec_parse(*w, c->strategy, &q);
                if (r < 0) {
                        queue_map_free(map);
                        return r;
                }
                for (char **op = q.members; *op; op++) {
                        char **l = idmap_get(map, *op), **k;
                        size_t n = strv_length_safe(l);

                        k = realloc(l, (n + 2) * sizeof(char *));
                        if (!k) {
                                r = -ENOMEM;
                                break;
                        }
                        k[n] = strdup(q.name);
                        k[n + 1] = NULL;
                        /* Replacing a value cannot fail: a failure means a
                         * new key, and k is then in no map. A failed
                         * strdup() leaves k terminated, in the map. */
                        if (idmap_put(map, *op, k) < 0) {
                                strv_free(k);
                                r = -ENOMEM;
                                break;
                        }
                        if (!k[n]) {
                                r = -ENOMEM;
                                break;
                        }
                }
                router_queue_spec_done(&q);
                if (r < 0) {
                        queue_map_free(map);
                        return r;
                }
        }
        *ret = map;
        return 0;
}

/* Whether [router] queues (or the default) has a queue named name. */
static bool config_has_queue(const RouterConfig *c, const char *name) {
        size_t l = strlen(name);

        if (strcmp(name, ACD_DEFAULT_QUEUE) == 0)
                return true;
        for (char **w = c->queues; w && *w; w++)
                if (strncmp(*w, name, l) == 0 && ((*w)[l] == ':' || (*w)[l] == '/'))
                        return true;
        return false;
}

static int setup_queues(Manager *m) {
        const RouterConfig *c = &m->config->router;
        int r;

        r = queue_map_build(c, &m->configured_queues);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(r, "Bad [router] queues: %m");

        for (char **w = c->queues; w && *w; w++) {
                RouterQueueSpec q = {};

                r = router_queue_spec_parse(*w, c->strategy, &q);
                if (r < 0)
                        return log_error_errno(r, "Bad [router] queues entry \"%s\".", *w);

                if (strcmp(q.name, ACD_DEFAULT_QUEUE) != 0) {
                        r = acd_add_queue(m->acd, q.name, q.strategy);
                        if (r < 0) {
                                router_queue_spec_done(&q);
                                return log_error_errno(r, "Could not add queue %s: %m", *w);
                        }
                } else if (q.strategy != (AcdStrategy) c->strategy)
                        log_warning("[router] queues: the default queue uses [router] strategy=%s, "
                                    "ignoring \"%s\".", acd_strategy_to_string(c->strategy), *w);
                (void) store_queue_configured(m->store, q.name, q.strategy);

                for (char **op = q.members; *op; op++)
                        if (!strv_contains_safe(c->operators, *op))
                                log_warning("[router] queues: operator %s of queue %s is not in [router] "
                                            "operators; it serves the queue once added.", *op, q.name);
                router_queue_spec_done(&q);
        }
        (void) store_queue_configured(m->store, ACD_DEFAULT_QUEUE, c->strategy);
        return 0;
}

/* --- reload ------------------------------------------------------------------- */

static bool queue_lists_equal(const char *const *a, const char *const *b) {
        static const char *const default_only[] = { ACD_DEFAULT_QUEUE, NULL };

        /* NULL is the default queue alone, as in acd_add_operator(). */
        a = a ? a : default_only;
        b = b ? b : default_only;
        for (; *a && *b; a++, b++)
                if (strcmp(*a, *b) != 0)
                        return false;
        return !*a && !*b;
}

/* "sales support" for a log line. */
static void format_queue_list(const char *const *l, char *buf, size_t size) {
        size_t n = 0;

        buf[0] = '\0';
        for (; l && *l && n < size; l++)
                n += (size_t) snprintf(buf + n, size - n, "%s%s", n > 0 ? " " : "", *l);
        if (!l)
                snprintf(buf, size, "%s", ACD_DEFAULT_QUEUE);
}

/* Step 1 (after the settings): new named queues, and the strategies of
 * those whose strategy changed (their own, or [router] strategy they follow). */
static void reload_queues(Manager *m, const RouterConfig *c, usec_t now) {
        for (char **w = c->queues; w && *w; w++) {
                RouterQueueSpec q = {};
                AcdQueueStats st;
                int r;

                r = router_queue_spec_parse(*w, c->strategy, &q);
                if (r < 0) {
                        log_warning_errno(r, "[router] queues: could not apply \"%s\", ignoring: %m", *w);
                        continue;
                }
                if (strcmp(q.name, ACD_DEFAULT_QUEUE) == 0) {
                        if (q.strategy != (AcdStrategy) c->strategy)
                                log_warning("[router] queues: the default queue uses [router] strategy=%s, "
                                            "ignoring \"%s\".", acd_strategy_to_string(c->strategy), *w);
                } else if (acd_queue_get_stats(m->acd, q.name, now, &st) < 0) {
                        r = acd_add_queue(m->acd, q.name, q.strategy);
                        if (r < 0)
                                log_warning_errno(r, "Could not add queue %s, ignoring: %m", q.name);
                        else {
                                (void) store_queue_configured(m->store, q.name, q.strategy);
                                log_info("Queue %s added (strategy %s).", q.name,
                                         acd_strategy_to_string(q.strategy));
                        }
                } else if (st.strategy != q.strategy) {
                        (void) acd_set_queue_strategy(m->acd, q.name, q.strategy);
                        (void) store_queue_configured(m->store, q.name, q.strategy);
                        log_info("Queue %s: strategy %s -> %s.", q.name, acd_strategy_to_string(st.strategy),
                                 acd_strategy_to_string(q.strategy));
                }
                router_queue_spec_done(&q);
        }
}

/*
 * Step 2: every operator's queues. Operators the new configuration places
 * in queues get exactly those; operators the old one placed and the new one
 * does not serve the default queue (as at start); operators no
 * configuration placed (added at run time with the queues they had) keep
 * theirs, less the queues that are going away. old_map is the previous
 * configuration's map (m->configured_queues is the new one already).
 *
 * The store keeps operators in position order, and store_operator_added()
 * is its only way to write an operator's queues; it also moves the operator
 * to the end. So from the first operator whose queues change on, every
 * operator is written again, in configured order: the stored order stays
 * the configured one (the cost, one row per operator, only on reloads that
 * change memberships).
 */
static void reload_memberships(Manager *m, IdMap *old_map, const RouterConfig *c, usec_t now) {
        _cleanup_(freep) AcdOperatorInfo *ops = NULL;
        size_t n_ops = 0;
        bool rewrite = false;
        int r;

        r = acd_list_operators(m->acd, &ops, &n_ops);
        if (r < 0) {
                (void) log_oom();
                return;
        }
        for (size_t i = 0; i < n_ops; i++) {
                _cleanup_(freep) const char **have = NULL, **keep = NULL;
                _cleanup_(strv_freep) char **resolved = NULL;
                const char *const *want;
                char **set;
                AcdOperatorInfo info;
                size_t n = 0;

                /* Operator structs live on across these changes: ops[i].id
                 * stays valid (no operator is removed here). */
                if (acd_get_operator_queues(m->acd, ops[i].id, &have) < 0) {
                        (void) log_oom();
                        continue;
                }
                /* Queues set at run time stay, as far as c has them. */
                set = idmap_get(m->set_queues, ops[i].id);
                if (set) {
                        if (set_queues_resolve(m, c, set, &resolved) < 0) {
                                (void) log_oom();
                                continue;
                        }
                        want = (const char *const *) resolved;
                } else
                        want = configured_queues_of(m, ops[i].id);
                if (!set && !want && !idmap_get(old_map, ops[i].id)) {
                        while (have[n])
                                n++;
                        keep = calloc(n + 1, sizeof(char *));
                        if (!keep) {
                                (void) log_oom();
                                continue;
                        }
                        n = 0;
                        for (const char **q = have; *q; q++)
                                if (config_has_queue(c, *q))
                                        keep[n++] = *q;
                        want = n > 0 ? keep : NULL;
                }

                if (!queue_lists_equal(want, have)) {
                        char was[256], now_in[256];

                        format_queue_list(have, was, sizeof was);
                        format_queue_list(want, now_in, sizeof now_in);
                        r = acd_set_operator_queues(m->acd, ops[i].id, want, now, &m->events);
                        if (r < 0) {
                                log_warning_errno(r, "Could not move operator %s to queues %s, it stays in %s: %m",
                                                  ops[i].id, now_in, was);
                                continue;
                        }
                        log_info("Operator %s: queues %s -> %s.", ops[i].id, was, now_in);
                        rewrite = true;
                } else
                        want = have;

                if (rewrite && acd_get_operator(m->acd, ops[i].id, &info) >= 0) {
                        (void) store_operator_added(m->store, ops[i].id, want, info.status);
                        /* store_operator_added() starts without a setting. */
                        if (set)
                                (void) store_operator_set_queues(m->store, ops[i].id,
                                                                 (const char *const *) set, true);
                }
        }
}

/* Step 3: the queues the configuration no longer has. */
static void reload_drop_queues(Manager *m, const RouterConfig *c, usec_t now) {
        /* Downwards: removing queue i leaves queues 0..i-1 where they are. */
        for (size_t i = acd_queue_count(m->acd); i-- > 0;) {
                char name[ACD_ID_MAX + 1];
                AcdQueueStats st;
                int r;

                snprintf(name, sizeof name, "%s", acd_queue_name(m->acd, i));
                if (config_has_queue(c, name))
                        continue;
                r = acd_remove_queue(m->acd, name, now, &m->events);
                if (r < 0) {
                        log_warning_errno(r, "Could not remove queue %s, it stays: %m", name);
                        continue;
                }
                if (r == 0) {
                        log_info("Queue %s removed.", name);
                        continue;
                }
                log_notice("Queue %s removed: its %d waiting call%s moved to the default queue, in "
                           "order of arrival.", name, r, r == 1 ? "" : "s");
                if (acd_queue_get_stats(m->acd, ACD_DEFAULT_QUEUE, now, &st) >= 0 && st.members == 0)
                        log_warning("No operator serves the default queue: the %zu call%s there wait "
                                    "until one does.", st.waiting, st.waiting == 1 ? "" : "s");
        }
}

/* Step 4: operators listed that routerd never had ("operators at first
 * start": one it has, or a supervisor removed, is left alone). */
static void reload_add_operators(Manager *m, const RouterConfig *c, usec_t now) {
        for (char **o = c->operators; o && *o; o++) {
                AcdOperatorInfo info;

                if (acd_get_operator(m->acd, *o, &info) >= 0)
                        continue;
                if (idmap_get(m->removed_operators, *o)) {
                        log_debug("Operator %s was removed by a supervisor, not adding it again.", *o);
                        continue;
                }
                if (add_configured_operator(m, *o, now) < 0)
                        continue;
                bus_router_emit_operator_added(m, *o);
                log_notice("Operator %s added.", *o);
        }
}

int manager_reload(Manager *m, RouterdConfig *next) {
        const RouterConfig *c = &next->router;
        _cleanup_(freep) char *applied = NULL, *restart = NULL;
        const AcdConfig *cur = acd_get_config(m->acd);
        bool strategy_changed, ring_changed;
        IdMap *map = NULL, *old_map;
        RouterdConfig swap;
        AcdConfig ac;
        usec_t now;
        int r;

        /* Everything that can fail for a reason other than memory was
         * checked when next was loaded; what could still fail is built
         * before anything changes. */
        r = routerd_config_diff(m->config, next, &applied, &restart);
        if (r < 0)
                return log_oom();
        r = queue_map_build(c, &map);
        if (r < 0)
                return log_error_errno(r, "Could not apply [router] queues: %m");

        router_config_to_acd(c, &ac);
        strategy_changed = ac.strategy != cur->strategy;
        ring_changed = ac.ring_timeout != cur->ring_timeout;
        r = acd_set_config(m->acd, &ac);
        if (r < 0) {
                queue_map_free(map);
                return log_error_errno(r, "Invalid routing configuration, not reloaded: %m");
        }
        if (strategy_changed)
                (void) store_queue_configured(m->store, ACD_DEFAULT_QUEUE, ac.strategy);

        /* The membership and queue changes, and the operators added, hand
         * out calls: their outcome goes out as one batch of notices, as no
         * request caused it. */
        begin(m);
        now = now_realtime();
        old_map = m->configured_queues;
        m->configured_queues = map;
        reload_queues(m, c, now);
        reload_memberships(m, old_map, c, now);
        reload_drop_queues(m, c, now);
        reload_add_operators(m, c, now);
        queue_map_free(old_map);
        dispatch(m, 0, true);
        bus_router_emit_settings(m, strategy_changed, ring_changed);

        /* From now on m->config describes what is in effect. */
        routerd_config_keep_restart_values(next, m->config);
        swap = *m->config;
        *m->config = *next;
        *next = swap;

        log_info("Reloaded configuration: %s.", applied[0] ? applied : "nothing changed");
        if (restart[0])
                log_warning("Not applied until callcenter-routerd is restarted: %s.", restart);
        return 0;
}

int manager_new(Manager **ret, sd_event *e, RouterdConfig *c, bool user_bus) {
        _cleanup_(manager_freep) Manager *m = NULL;
        AcdConfig ac;
        int r;

        m = calloc(1, sizeof *m);
        if (!m)
                return log_oom();
        m->event = sd_event_ref(e);
        m->config = c;
        m->user_bus = user_bus;

        router_config_to_acd(&c->router, &ac);
        /* Keyed hash tables: a client choosing call ids must not be able to
         * predict collisions; the random strategy gets its seed too. */
        if (getrandom(ac.hash_key, sizeof ac.hash_key, GRND_NONBLOCK) != sizeof ac.hash_key)
                ac.hash_key[0] = now_usec(CLOCK_MONOTONIC) ^ (uint64_t) getpid();
        if (getrandom(&ac.seed, sizeof ac.seed, GRND_NONBLOCK) != sizeof ac.seed)
                ac.seed = now_usec(CLOCK_REALTIME);
        r = acd_new(&ac, &m->acd);
        if (r < 0)
                return log_error_errno(r, "Invalid routing configuration: %m");

        if (c->database.url && c->database.url[0]) {
                r = db_link_new(&m->db, e, &c->database, "callcenter-routerd");
                if (r < 0)
                        return log_error_errno(r, "Could not set up the database link: %m");
        }
        r = store_new(&m->store, e, m->db, c->database.buffer_bytes);
        if (r < 0)
                return log_error_errno(r, "Could not set up the store: %m");

        r = setup_queues(m);
        if (r < 0)
                return r;
        r = idmap_new(&m->set_queues);
        if (r < 0)
                return log_oom();
        r = idmap_new(&m->removed_operators);
        if (r < 0)
                return log_oom();

        m->zmq_context = zmq_ctx_new();
        if (!m->zmq_context)
                return log_error_errno(errno, "Could not create a ZeroMQ context: %m");
        if (c->events.publish && c->events.publish[0]) {
                r = event_publisher_new(&m->publisher, e, m->zmq_context, &c->events, "router");
                if (r < 0)
                        /* Routing works without the hub; events are what we
                         * give up, and operators must know. */
                        log_warning_errno(r, "Could not set up the event publisher for %s, continuing "
                                          "without events: %m", c->events.publish);
        } else
                log_warning("No [events] publish endpoint: routerd publishes no events.");
        r = daemon_add_deferred(e, &m->pub_post, on_pub_post, m, "publish-events");
        if (r < 0)
                log_debug_errno(r, "Could not batch events per loop iteration, publishing each at once: %m");
        store_set_commit_handler(m->store, on_store_committed, m);

        r = sd_event_add_post(e, &m->backlog_post, on_backlog_post, m);
        if (r < 0)
                log_debug_errno(r, "Could not watch the bus backlog, TCP input is never held for it: %m");
        else {
                (void) sd_event_source_set_enabled(m->backlog_post, SD_EVENT_OFF);
                (void) sd_event_source_set_description(m->backlog_post, "bus-backlog");
        }

        r = sd_event_add_time(e, &m->deadline_timer, CLOCK_REALTIME, USEC_INFINITY, DEADLINE_ACCURACY,
                              on_deadline, m);
        if (r < 0)
                return log_error_errno(r, "Could not create the deadline timer: %m");
        (void) sd_event_source_set_enabled(m->deadline_timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(m->deadline_timer, "acd-deadline");

        r = sd_event_add_time(e, &m->status_timer, CLOCK_MONOTONIC, USEC_INFINITY, 0, on_status_timer, m);
        if (r < 0)
                return log_error_errno(r, "Could not create the status timer: %m");
        (void) sd_event_source_set_enabled(m->status_timer, SD_EVENT_OFF);

        /* Only the heap's tidiness depends on it: run without on failure. */
        r = sd_event_add_time(e, &m->trim_timer, CLOCK_MONOTONIC, USEC_INFINITY, 100 * USEC_PER_MSEC,
                              on_trim_timer, m);
        if (r < 0)
                log_debug_errno(r, "Could not create the heap trim timer, continuing: %m");
        else {
                (void) sd_event_source_set_enabled(m->trim_timer, SD_EVENT_OFF);
                (void) sd_event_source_set_description(m->trim_timer, "heap-trim");
        }

        *ret = TAKE_PTR(m);
        return 0;
}

void manager_begin_shutdown(Manager *m) {
        char line[256];

        m->stopping = true;
        /* Clients already connected keep being served until they hang up
         * or the grace period ends (manager_end_grace()): what they sent
         * before SIGTERM gets its reply instead of a reset. */
        if (m->server)
                server_stop_accepting(m->server);
        /* No more routing: a ring timeout now would change state after the
         * final flush. The saved deadlines fire again after a restart. */
        (void) sd_event_source_set_enabled(m->deadline_timer, SD_EVENT_OFF);
        /* Hand the last changes to the database link while the loop still
         * runs; manager_finish() then only waits for them. */
        (void) store_flush_now(m->store);
        (void) manager_status_line(m, line, sizeof line);
        log_info("Shutting down (%s).", line);
        if (m->bus_backlog_holds > 0)
                log_info("TCP input was held %" PRIu64 " time(s) while the bus had a backlog of signals.",
                         m->bus_backlog_holds);
        daemon_notify_stopping();
}

void manager_end_grace(Manager *m) {
        m->grace_over = true;
        if (m->server)
                server_stop_reading(m->server);
        /* Requests served during the grace period changed state: hand
         * those changes to the database too. */
        (void) store_flush_now(m->store);
}

void manager_get_drain_state(const Manager *m, bool *ret_replies_done, bool *ret_store_idle) {
        /* During the grace period: done when every client hung up; after
         * it: when the replies to what was read are written. */
        *ret_replies_done = m->grace_over ? server_pending_output(m->server) == 0
                                          : server_connection_count(m->server) == 0;
        *ret_store_idle = store_is_idle(m->store);
}

void manager_finish(Manager *m, usec_t timeout) {
        int r;

        r = store_drain(m->store, timeout);
        if (r < 0)
                log_warning_errno(r, "Could not write everything to PostgreSQL before exiting: %m");
        if (m->publisher) {
                EventPublisherStats st;

                release_events(m);

                /* With no hub there is nobody to wait for: the publisher
                 * reports what it drops when it is freed. */
                event_publisher_get_stats(m->publisher, &st);
                if (!st.connected || st.queued == 0)
                        return;
                r = event_publisher_flush(m->publisher, timeout);
                if (r < 0)
                        log_warning_errno(r, "Could not hand every event to the hub before exiting: %m");
        }
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        m->server = server_free(m->server);
        /* The track holds a reference on the bus: gone first. */
        m->subscribed = sd_bus_track_unref(m->subscribed);
        if (m->bus) {
                (void) sd_bus_flush(m->bus);
                m->bus = sd_bus_flush_close_unref(m->bus);
        }
        m->store = store_free(m->store);
        m->db = db_link_free(m->db);
        release_events(m);
        /* What still waits was never committed: nothing to send. */
        release_waiters(m, false);
        free(m->waiters);
        m->pub_post = sd_event_source_disable_unref(m->pub_post);
        m->backlog_post = sd_event_source_disable_unref(m->backlog_post);
        free(m->pending);
        m->publisher = event_publisher_free(m->publisher);
        if (m->zmq_context)
                (void) zmq_ctx_term(m->zmq_context);
        queue_map_free(m->configured_queues);
        idmap_free(m->removed_operators);
        queue_map_free(m->set_queues);
        sd_event_source_disable_unref(m->deadline_timer);
        sd_event_source_disable_unref(m->status_timer);
        sd_event_source_disable_unref(m->trim_timer);
        sd_event_source_disable_unref(m->load_timer);
        sd_event_source_disable_unref(m->bus_post);
        idmap_free(m->bus_dirty_operators);
        for (size_t i = 0; i < ELEMENTSOF(m->event_data); i++)
                json_object_put(m->event_data[i]);
        acd_events_done(&m->events);
        acd_free(m->acd);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}
