/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The Manager owns everything of a running callcenter-routerd: the sd_event
 * loop, the bus connection, the event publisher, the database link and the
 * store, the ACD state, the TCP server and the one deadline timer.
 *
 * Every change goes through the manager_* operations below. Each one asks
 * the ACD (with the current CLOCK_REALTIME time), and on success carries out
 * the outcome records it appended to m->events, in order: store records,
 * ZeroMQ events, D-Bus signals and PropertiesChanged, TCP notices (only for
 * changes no request caused: deadlines), then re-arms the deadline timer at
 * acd_next_deadline(). The caller reads m->events afterwards to build its
 * reply (the wire "messages" lines, the D-Bus return values); they stay
 * valid until the next operation.
 *
 * Errors are the ACD's (see acd.h): nothing changed, m->events is empty.
 */

#include <stdbool.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "daemons/routerd/acd.h"
#include "daemons/routerd/conf.h"
#include "libshared/cleanup.h"
#include "libshared/db.h"
#include "libshared/pub.h"

typedef struct Server Server;
typedef struct Store Store;
typedef struct IdMap IdMap;

typedef struct Manager {
        sd_event *event;
        sd_bus *bus;
        void *zmq_context;
        EventPublisher *publisher;
        DbLink *db;
        Store *store;
        AcdState *acd;
        Server *server;
        RouterdConfig *config;        /* main()'s; manager_reload() replaces its contents */
        bool user_bus;

        sd_event_source *deadline_timer;  /* CLOCK_REALTIME, at acd_next_deadline() */
        sd_event_source *status_timer;    /* coalesces STATUS= updates */
        sd_event_source *load_timer;
        sd_event_source *trim_timer;      /* returns freed heap after bursts */

        /* The outcome records of the last operation. */
        AcdEvents events;

        /* [router] queues: operator id -> NULL-terminated queue list
         * (char **), for operators the configuration places in queues. */
        IdMap *configured_queues;

        /* Queues set at run time (SetOperatorQueues, or stored so before
         * the last start): operator id -> NULL-terminated list (char **),
         * empty = every queue. They win over configured_queues, at a
         * restart and at a reload. */
        IdMap *set_queues;

        /* Operators a supervisor removed (here or, per the database, before
         * the last start): a reload does not bring them back from [router]
         * operators. Values unused. */
        IdMap *removed_operators;

        /* Last values sent in PropertiesChanged. */
        size_t queue_length;
        size_t operators_available;

        /* PropertiesChanged is sent once per loop iteration (bus.c): the
         * operators whose object changed, and whether the router's
         * counts may have. */
        sd_event_source *bus_post;
        IdMap *bus_dirty_operators;
        bool bus_counts_dirty;

        /* The bus clients that called Subscribe() (bus.c): per-call
         * signals go out only while there is one. */
        sd_bus_track *subscribed;

        /* Event data objects, built once and refilled per event
         * (manager.c publish_event()): [0] an operator's state, then a
         * call's, indexed by has-operator + 2 * has-waited. */
        struct json_object *event_data[5];

        /* Events (for ZeroMQ and the bus subscribers) waiting for the
         * commit of their changes, then for the end of the loop iteration:
         * they go out in one burst (manager.c release_events()). */
        struct PendingEvent *pending;
        size_t pending_start, n_pending, allocated_pending;
        sd_event_source *pub_post;

        /* manager_after_commit() callbacks waiting for their batch. */
        struct CommitWaiter *waiters;
        size_t waiters_start, n_waiters, allocated_waiters;

        /* TCP input held while the bus has a backlog (manager.c
         * check_bus_backlog()), and how often that happened. */
        sd_event_source *backlog_post;
        bool bus_backlog;
        uint64_t bus_backlog_holds;

        bool loaded;
        int load_error;
        bool stopping;
        bool grace_over;           /* shutdown: no more requests are read */
} Manager;

/*
 * Create the manager on loop e with configuration c (borrowed; must outlive
 * the manager): the ACD with the configured queues, the publisher, and the
 * database link and store when [database] url is set. Nothing is served
 * yet. Returns 0 or a negative errno (logged).
 */
int manager_new(Manager **ret, sd_event *e, RouterdConfig *c, bool user_bus);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/*
 * Bring the operators and live calls back: from PostgreSQL when there is a
 * store (running the loop until the read is done, at most timeout; the
 * database link applies the migrations first), else from [router]
 * operators. Returns 0, -ETIMEDOUT, -ECANCELED (the loop was told to exit,
 * e.g. SIGTERM), or another negative errno; logged.
 */
int manager_load_state(Manager *m, usec_t timeout);

/* Listen (the socket systemd passed, or [router] listen) and serve TCP.
 * Returns 0 or a negative errno (logged). */
int manager_start_server(Manager *m);

/* Connect to the bus, register the objects and ask for the name
 * (asynchronously). Returns 0 or a negative errno (logged). */
int manager_connect_bus(Manager *m);

/* SIGTERM: stop accepting requests and hand the last changes to the
 * database link. */
void manager_begin_shutdown(Manager *m);

/* During shutdown: whether the TCP replies are all written, and whether the
 * store has nothing left to write (manager_finish() waits for the rest). */
/* End of the shutdown grace period: stop reading requests, flush what
 * they changed. */
void manager_end_grace(Manager *m);

void manager_get_drain_state(const Manager *m, bool *ret_replies_done, bool *ret_store_idle);

/* After the loop ended: write everything to PostgreSQL and hand the queued
 * events to the hub, each within timeout. */
void manager_finish(Manager *m, usec_t timeout);

/* Operations (see the top of this file). Return the ACD's result. */
int manager_place_call(Manager *m, const char *id, const char *queue);
int manager_answer(Manager *m, const char *op, const char **ret_call);
int manager_reject(Manager *m, const char *op, const char **ret_call);
int manager_hangup(Manager *m, const char *id);
int manager_add_operator(Manager *m, const char *id, const char *const *queues, AcdOperatorStatus status);
int manager_remove_operator(Manager *m, const char *id);
int manager_set_status(Manager *m, const char *id, AcdOperatorStatus status);

/*
 * Make operator id serve exactly the queues in the NULL-terminated list
 * queues (each an existing queue, none twice), or every queue when the list
 * is empty, and keep that in PostgreSQL: the setting then wins over
 * [router] queues for this operator, after a restart and across reloads
 * ("every queue" follows the queues a reload adds or removes). Removing
 * the operator drops it. Returns 0, -ENOENT (no such operator), -ENXIO (no
 * such queue), -EINVAL (a name twice), -ENOMEM.
 */
int manager_set_operator_queues(Manager *m, const char *id, const char *const *queues);

/*
 * Apply a newly loaded configuration (SIGHUP; next is valid, as
 * routerd_config_load() returned it). Applied at once, for the next routing
 * decision: strategy, ring_timeout, reject_delay, no_answer_delay, wrap_up,
 * max_no_answer, service_level, max_connections, and queues (new queues are
 * added, strategies changed, operators' memberships changed; a queue no
 * longer configured is removed and its calls go to the default queue in
 * arrival order). Operators of [router] operators that routerd never had
 * are added (never one a supervisor removed; none is removed). What is
 * already under way stays: a ringing call rings until its old timeout.
 * listen, output_buffer_max, [database] and [events] need a restart: a
 * warning names those that changed. Logs what changed at info.
 *
 * Afterwards *m->config is the configuration in effect (next's values,
 * with the current ones for what needs a restart) and next holds the
 * previous one: routerd_config_done() it. Returns 0, or -ENOMEM (logged;
 * part of the change may have been applied).
 */
int manager_reload(Manager *m, RouterdConfig *next);

/*
 * Commit before reply (DESIGN.md "TCP wire"): a reply, and the events a
 * change causes, go out only once the change is committed to PostgreSQL.
 * manager_commit_ticket() is the store batch that holds every change made
 * so far, manager_committed() the last batch committed; without a
 * database both are 0 and nothing waits. The TCP server holds its output
 * by these tickets and is told by server_release() when a batch commits.
 *
 * manager_after_commit() calls cb(userdata, true) once every change made so
 * far is committed: at once when it is (or without a database), else from
 * the loop. A callback still waiting when the manager is freed is called
 * with false (nothing to send: just release userdata). Returns 0 or
 * -ENOMEM (then nothing was registered).
 */
uint64_t manager_commit_ticket(const Manager *m);
uint64_t manager_committed(const Manager *m);
typedef void (*ManagerCommitCallback)(void *userdata, bool committed);
int manager_after_commit(Manager *m, ManagerCommitCallback cb, void *userdata);

/* The one-line summary of STATUS= and the "status" command. */
int manager_status_line(Manager *m, char *buf, size_t size);

/* The operator of the RINGING event for call in m->events, or NULL. */
const char *manager_events_ringing_operator(const Manager *m, const char *call);
