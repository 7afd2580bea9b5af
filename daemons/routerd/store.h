/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * routerd's SQL (schema: sql/003-router.sql): write-behind of operators,
 * queues and call records, and recovery of the live state at start.
 *
 * Writing never makes routing wait, but the manager holds replies and
 * events until what they acknowledge is committed (DESIGN.md "TCP wire":
 * what a client saw acknowledged survives a SIGKILL). The store keeps a
 * record per live call and per operator; store_apply_events() updates
 * them from the ACD's outcome records and marks them dirty. At the end of
 * the loop iteration (group commit: every request handled in it shares
 * one batch) a flush renders the current state of every dirty record
 * (record.c) and hands it to the link as one batch of at most two jobs:
 * one upsert statement of the changed queues and operators, their values
 * as parameters, and a COPY of the changed calls merged by seq (both
 * idempotent, as the database link may run a job again after a lost
 * connection). At most one batch is outstanding: while it runs (or
 * PostgreSQL is slow or away) changes coalesce in the dirty set (a call
 * that rang, was answered and ended in the meantime costs one row), and the
 * next flush goes out as soon as the previous one completed.
 *
 * Batches are numbered from 1 in submission order: store_ticket() is the
 * number of the batch that will hold every change made so far, and
 * store_committed() the last batch the link finished. Something that must
 * wait for the changes made so far waits until store_committed() reaches
 * the ticket it took; the commit handler says when. Ended calls wait in memory until
 * written; past a bound derived from [database] buffer_bytes the oldest
 * ended records are dropped (logged, rate-limited). Live records are never
 * dropped.
 *
 * Without a database link (no [database] url) the store keeps nothing and
 * every function is a cheap no-op.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "daemons/routerd/acd.h"
#include "libshared/db.h"

typedef struct Store Store;

/* One operator row as loaded: position order, removed ones included. */
typedef struct StoreOperatorRow {
        char *id;
        char **queues;               /* NULL-terminated; at least one unless queues_set */
        bool queues_set;             /* set at run time: wins over [router] queues;
                                      * an empty list is every queue */
        AcdOperatorStatus status;
        bool removed;
} StoreOperatorRow;

/* One live call as loaded, in arrival order. */
typedef struct StoreCallRow {
        char *id;
        char *queue;
        AcdCallState state;
        char *operator;              /* the answering (or last offered) operator, "" when none */
        usec_t arrived;
        usec_t answered;             /* USEC_INFINITY unless answered */
        /* The rest of the record, for the store's own copy. */
        uint64_t seq;
        usec_t rang;                 /* USEC_INFINITY when it never rang */
        unsigned offers, rejects, ignores;
} StoreCallRow;

/* A queue's statistics counters rebuilt from its call records. */
typedef struct StoreQueueCountsRow {
        char *queue;
        AcdQueueCounters counts;
} StoreQueueCountsRow;

typedef struct StoreSnapshot {
        StoreOperatorRow *operators;
        size_t n_operators;
        StoreCallRow *calls;
        size_t n_calls;
        StoreQueueCountsRow *queue_counts;
        size_t n_queue_counts;
} StoreSnapshot;

void store_snapshot_done(StoreSnapshot *s);

/*
 * Create a store on loop e writing through db (borrowed; NULL = keep
 * nothing). buffer_bytes bounds the ended records held while the database
 * is away. Returns 0 or -ENOMEM.
 */
int store_new(Store **ret, sd_event *e, DbLink *db, uint64_t buffer_bytes);

/* Free the store; unwritten changes are lost (call store_drain() first). */
Store *store_free(Store *s);

bool store_enabled(const Store *s);

/*
 * Called once with the loaded state (error 0) or the failure (-EIO ...,
 * snapshot NULL). The snapshot is borrowed for the call.
 */
typedef void (*StoreLoadHandler)(Store *s, int error, const StoreSnapshot *snapshot, void *userdata);

/*
 * Queue the read of operators, live calls and each queue's statistics
 * counters on the link (it runs after the migrations, whenever PostgreSQL
 * is reachable). The counters are computed from router_calls as the ACD
 * counts them, with service_level as the "answered within" threshold
 * (ended calls count as received; answered ones, live or ended, as
 * answered; live ones are counted as received by their restore). The
 * store also takes over the records of the live calls, so that later
 * events update them. Returns 0, -EOPNOTSUPP without a link, or the
 * link's error.
 */
int store_load(Store *s, usec_t service_level, StoreLoadHandler cb, void *userdata);

/* Take the outcome records ev->events[from..n) into the call and operator
 * records. */
void store_apply_events(Store *s, const AcdEvents *ev, size_t from);

/*
 * An operator was added (at the end of the configured order) or removed, or
 * a queue configured. Returns 0 or -ENOMEM (then the change is not stored;
 * logged).
 */
int store_operator_added(Store *s, const char *id, const char *const *queues, AcdOperatorStatus status);
void store_operator_removed(Store *s, const char *id);
int store_queue_configured(Store *s, const char *name, AcdStrategy strategy);

/*
 * Operator id's queues were set at run time (queues_set) to the
 * NULL-terminated list queues (empty = every queue), or such a setting was
 * dropped (queues_set false; queues is then what it serves). Its place in
 * the order stays. Returns 0, -ENOENT (no such operator stored), -ENOMEM
 * (logged; not stored).
 */
int store_operator_set_queues(Store *s, const char *id, const char *const *queues, bool queues_set);

/*
 * Make the record of a live call match the ACD after a restore (state and
 * operator), and end the record of a call the ACD refused to restore
 * (outcome missed at now).
 */
void store_call_sync(Store *s, const char *id, AcdCallState state, const char *operator);
void store_call_abandon(Store *s, const char *id, usec_t now);

/*
 * Commit tickets (see the top of this file). Without a link both are 0:
 * nothing waits. The handler is called after each batch the link finished
 * (also one that failed: waiting for it would block forever), with the
 * new store_committed().
 */
typedef void (*StoreCommitHandler)(Store *s, uint64_t committed, void *userdata);
void store_set_commit_handler(Store *s, StoreCommitHandler cb, void *userdata);
uint64_t store_ticket(const Store *s);
uint64_t store_committed(const Store *s);

/* Submit every dirty record now, even with a flush outstanding. Returns 0,
 * -ENOBUFS (the link is full; retried by the timer), -ENOMEM. */
int store_flush_now(Store *s);

/*
 * Submit every dirty record now, even with a flush outstanding, and run the
 * loop until the link has written everything or timeout passed (at
 * SIGTERM). Returns 0, -ETIMEDOUT, or 0 at once without a link.
 */
int store_drain(Store *s, usec_t timeout);

/* True when nothing waits to be written and no flush is outstanding (also
 * without a link). */
bool store_is_idle(const Store *s);

typedef struct StoreStats {
        uint64_t flushes;            /* jobs submitted */
        uint64_t rows;               /* rows written in them */
        uint64_t failed;             /* jobs that failed */
        uint64_t dropped;            /* ended records dropped past the bound */
        size_t dirty;                /* records waiting for the next flush */
        bool in_flight;
} StoreStats;
void store_get_stats(const Store *s, StoreStats *ret);

