/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The automatic call distributor: routerd's pure state machine.
 *
 * No I/O, no clock reads, debug-only logging. The manager passes the current
 * time into every operation and carries out what comes back: each operation
 * appends outcome records (AcdEvent) to an AcdEvents list, which the manager
 * turns into the wire "messages" lines (acd_event_format_message()), D-Bus
 * signals, ZeroMQ events and store writes.
 *
 * Semantics (DESIGN.md "Routing semantics"):
 *  - an arriving call rings the eligible operator the queue's strategy picks,
 *    else waits in its queue; each queue is served oldest call first;
 *  - answer: the ringing operator becomes busy with the call;
 *  - reject (and a ring timeout, which first reports "ignored"): the operator
 *    becomes available again (or is held back for reject_delay /
 *    no_answer_delay), the call goes back to its place (arrival order) and is
 *    offered again at once to the strategy's choice, another eligible
 *    operator before the one that refused it;
 *  - hangup: a queued or ringing call is missed, an answered call is finished
 *    and its operator available (after wrap_up, when configured);
 *  - whenever an operator becomes eligible it takes the oldest waiting call
 *    of its queues at once.
 *
 * An operator is "eligible" (offered calls) when it is idle (not ringing,
 * busy, in wrap-up or held back by a delay) and its status is available.
 *
 * Times: usec_t on one clock of the manager's choosing (CLOCK_REALTIME when
 * state is persisted across restarts, since restored arrival times must stay
 * meaningful). The ACD only compares and subtracts them; a "now" earlier than
 * one already seen is taken as the latest seen, so time never runs backwards
 * inside the ACD.
 *
 * Deadlines (ring timeout, delays, wrap-up) are not fired by the operations:
 * the manager arms one timer at acd_next_deadline() and calls acd_timeout()
 * when it fires. A request that arrives after a deadline passed but before
 * the timer ran is served against the current state (an answer 10.001 s into
 * a 10 s ring still connects).
 *
 * Cost: every routing decision is O(log n) in operators and calls (binary
 * heaps per queue and strategy, keyed hash tables for ids), times the number
 * of queues an operator belongs to. Listing is O(n).
 *
 * Errors (negative errno, nothing changed, no events appended):
 *   -EINVAL  a bad id (see acd_id_is_valid()) where one is created, or a bad argument
 *   -ENOENT  no such operator (operator functions) / no such call (call functions);
 *            looking up an id that could never be valid is also -ENOENT
 *   -ENXIO   no such queue
 *   -EEXIST  the call, operator or queue exists already
 *   -EBUSY   the operator or call is not in a state that allows this (InvalidState)
 *   -ENOSPC  a new call would wait, and cfg.max_queued calls wait already
 *   -ENOMEM  out of memory
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "time-util.h"

/* Ids of calls, operators and queues: 1..ACD_ID_MAX bytes of printable
 * ASCII without whitespace (0x21..0x7e). */
#define ACD_ID_MAX 64

/* The queue that exists from acd_new() on and that NULL queue names mean. */
#define ACD_DEFAULT_QUEUE "default"

/* Large enough for any acd_event_format_message() line, NUL included. */
#define ACD_MESSAGE_MAX 256

typedef struct AcdState AcdState;

typedef enum AcdStrategy {
        ACD_STRATEGY_LONGEST_IDLE,   /* available longest; ties in configured order */
        ACD_STRATEGY_TOP_DOWN,       /* first in configured order */
        ACD_STRATEGY_ROUND_ROBIN,    /* least recently offered a call by this queue; ties in configured order */
        ACD_STRATEGY_FEWEST_CALLS,   /* fewest answered calls; ties in configured order */
        ACD_STRATEGY_RANDOM,         /* uniform, from the seeded generator in the state */
        _ACD_STRATEGY_MAX,
        _ACD_STRATEGY_INVALID = -EINVAL,
} AcdStrategy;

/* Administrative status, set by the operator or a supervisor. */
typedef enum AcdOperatorStatus {
        ACD_STATUS_AVAILABLE,
        ACD_STATUS_PAUSED,
        ACD_STATUS_OFFLINE,
        _ACD_STATUS_MAX,
        _ACD_STATUS_INVALID = -EINVAL,
} AcdOperatorStatus;

/*
 * What an operator is doing, as ListOperators shows it. An idle operator
 * shows its status (available, paused or offline); otherwise the activity
 * wins: a paused operator that is still on a call is "busy".
 */
typedef enum AcdOperatorState {
        ACD_OPERATOR_AVAILABLE,      /* "available": eligible for calls */
        ACD_OPERATOR_RINGING,        /* "ringing" */
        ACD_OPERATOR_BUSY,           /* "busy" */
        ACD_OPERATOR_WRAP_UP,        /* "wrap-up": after a finished call */
        ACD_OPERATOR_DELAYED,        /* "delayed": held back after a reject or no-answer */
        ACD_OPERATOR_PAUSED,         /* "paused": idle, status paused */
        ACD_OPERATOR_OFFLINE,        /* "offline": idle, status offline */
        _ACD_OPERATOR_STATE_MAX,
        _ACD_OPERATOR_STATE_INVALID = -EINVAL,
} AcdOperatorState;

typedef enum AcdCallState {
        ACD_CALL_QUEUED,             /* "queued": waiting in its queue */
        ACD_CALL_RINGING,            /* "ringing" */
        ACD_CALL_ANSWERED,           /* "answered": an operator is busy with it */
        _ACD_CALL_STATE_MAX,
        _ACD_CALL_STATE_INVALID = -EINVAL,
} AcdCallState;

typedef enum AcdEventKind {
        ACD_EVENT_RECEIVED,          /* call, queue */
        ACD_EVENT_RINGING,           /* call, operator, queue */
        ACD_EVENT_QUEUED,            /* call, queue: the call waits (new, back after a refusal,
                                      * or moved to the default queue by acd_remove_queue()) */
        ACD_EVENT_ANSWERED,          /* call, operator, queue, waited */
        ACD_EVENT_REJECTED,          /* call, operator, queue */
        ACD_EVENT_IGNORED,           /* call, operator, queue: ring timeout */
        ACD_EVENT_FINISHED,          /* call, operator, queue, waited (arrival to answer) */
        ACD_EVENT_MISSED,            /* call, operator (when it was ringing) or "", queue, waited */
        ACD_EVENT_OPERATOR_STATE,    /* operator, state, status, call ("" when none) */
        _ACD_EVENT_KIND_MAX,
        _ACD_EVENT_KIND_INVALID = -EINVAL,
} AcdEventKind;

/*
 * One outcome record. The strings are copies, so an event stays valid after
 * the call or operator it names is gone. Empty string = not applicable.
 */
typedef struct AcdEvent {
        AcdEventKind kind;
        AcdOperatorState state;      /* OPERATOR_STATE: the new state */
        AcdOperatorStatus status;    /* OPERATOR_STATE: the status */
        usec_t time;                 /* the operation's (clamped) now */
        usec_t waited;               /* ANSWERED/FINISHED: arrival to answer; MISSED: arrival to hangup */
        char call[ACD_ID_MAX + 1];
        char operator[ACD_ID_MAX + 1];
        char queue[ACD_ID_MAX + 1];
} AcdEvent;

/*
 * The output list, owned by the caller: zero-initialize it, pass it to
 * operations (they append), read events[0..n), then acd_events_clear() to
 * reuse it or acd_events_done() to free it. Operations accept NULL for
 * "discard the events". Appending never fails an operation: the state
 * change has happened either way, so an event that cannot be stored for
 * lack of memory is counted in lost instead.
 */
typedef struct AcdEvents {
        AcdEvent *events;
        size_t n, allocated;
        size_t lost;
} AcdEvents;

void acd_events_clear(AcdEvents *ev);
void acd_events_done(AcdEvents *ev);

typedef struct AcdConfig {
        AcdStrategy strategy;        /* the default queue's strategy */
        usec_t ring_timeout;         /* > 0; USEC_INFINITY rings until answered */
        usec_t reject_delay;         /* operator not offered calls this long after a reject; 0 = none */
        usec_t no_answer_delay;      /* ... after a ring timeout; 0 = none */
        usec_t wrap_up;              /* after a finished call; 0 = none */
        unsigned max_no_answer;      /* consecutive ring timeouts that pause the operator; 0 = never */
        usec_t service_level;        /* "answered within" threshold for the statistics */
        size_t max_queued;           /* calls waiting at most (all queues); 0 = no limit */
        uint64_t seed;               /* random strategy's generator seed */
        uint64_t hash_key[2];        /* key for the id hash tables; the manager fills it
                                      * with random bytes so that clients cannot flood
                                      * one bucket */
} AcdConfig;

/* Defaults: longest-idle, ring timeout 10 s, no delays, no wrap-up,
 * max_no_answer 0, service level 20 s, max_queued 0, seed 0, hash key 0. */
void acd_config_init(AcdConfig *ret);

/*
 * Create a state with the default queue (ACD_DEFAULT_QUEUE, strategy
 * cfg->strategy) and no operators. cfg is copied. Returns 0, -EINVAL when
 * the configuration is invalid (ring_timeout 0, infinite delays or wrap-up,
 * unknown strategy), -ENOMEM.
 */
int acd_new(const AcdConfig *cfg, AcdState **ret);

/* Free everything. Accepts NULL, returns NULL. */
AcdState *acd_free(AcdState *a);

/* The configuration in use (borrowed). */
const AcdConfig *acd_get_config(const AcdState *a);

/* True when s is a valid id (see ACD_ID_MAX). */
bool acd_id_is_valid(const char *s);

/*
 * Add a queue. Returns 0, -EINVAL (bad name or strategy), -EEXIST, -ENOMEM.
 * Operators join queues in acd_add_operator() and
 * acd_set_operator_queues(); acd_remove_queue() removes one.
 */
int acd_add_queue(AcdState *a, const char *name, AcdStrategy strategy);

/* Queues in creation order (the default queue first). i < acd_queue_count(). */
size_t acd_queue_count(const AcdState *a);
const char *acd_queue_name(const AcdState *a, size_t i);

/*
 * Add an operator at the end of the configured order, member of the queues
 * in the NULL-terminated list queues (NULL = the default queue only), with
 * the given status. If it is eligible it takes the oldest waiting call at
 * once. Appends OPERATOR_STATE and whatever the dispatch causes.
 * Returns 0, -EINVAL (bad id, empty or duplicated queue list, bad status),
 * -EEXIST, -ENXIO (unknown queue), -ENOMEM.
 */
int acd_add_operator(AcdState *a, const char *id, const char *const *queues,
                     AcdOperatorStatus status, usec_t now, AcdEvents *out);

/*
 * Remove an operator. A call ringing it goes back to its place and is
 * offered again (RINGING or QUEUED follow). Returns 0, -ENOENT, or -EBUSY
 * when the operator is busy with a call (hang it up first).
 */
int acd_remove_operator(AcdState *a, const char *id, usec_t now, AcdEvents *out);

/*
 * Set an operator's status. It decides whether the operator is offered new
 * calls; a call ringing or in progress is not affected (a ring still times
 * out as usual). Setting available also resets the consecutive no-answer
 * count. Appends OPERATOR_STATE when state or status changed, then whatever
 * the dispatch causes. Returns 0, -ENOENT, -EINVAL.
 */
int acd_set_status(AcdState *a, const char *id, AcdOperatorStatus status, usec_t now,
                   AcdEvents *out);

/*
 * Reconfiguration (routerd's SIGHUP reload). Each one changes what later
 * routing decisions do; nothing already decided is undone: a ringing call
 * keeps ringing until its (old) ring timeout, a delay or wrap-up in
 * progress ends when it was due.
 *
 * acd_set_config(): take cfg's strategy (the default queue's), ring_timeout,
 * reject_delay, no_answer_delay, wrap_up, max_no_answer, service_level and
 * max_queued (calls waiting beyond a lowered cap keep waiting);
 * the seed and the hash key stay as they were. Re-ordering the default
 * queue's eligible operators costs O(operators in it) when the strategy
 * changes. Returns 0 or -EINVAL (as acd_new() would refuse cfg; nothing
 * changed).
 */
int acd_set_config(AcdState *a, const AcdConfig *cfg);

/* Set the strategy of queue (NULL = default; for the default queue the
 * configuration's strategy follows). O(operators in the queue). Returns 0,
 * -EINVAL (bad strategy), -ENXIO. */
int acd_set_queue_strategy(AcdState *a, const char *queue, AcdStrategy strategy);

/*
 * Make operator id a member of exactly the queues in the NULL-terminated
 * list queues (NULL = the default queue only), as acd_add_operator() would.
 * Its place in the configured order, state, status, call and deadline stay;
 * a call it is ringing or busy with stays in its queue. In a queue it stays
 * in it keeps its round-robin turn; when eligible it joins the new queues
 * with its longest-idle time unchanged and at once takes the oldest call
 * waiting in its queues (RINGING + OPERATOR_STATE follow). Cost: O(log n)
 * per queue joined or left, O(1) per queue kept. Returns 0 (also when the
 * list is the same), -ENOENT, -EINVAL (empty or duplicated list, bad name),
 * -ENXIO (unknown queue), -ENOMEM (nothing changed).
 */
int acd_set_operator_queues(AcdState *a, const char *id, const char *const *queues, usec_t now,
                            AcdEvents *out);

/* The queues of operator id in the order given when it was added or last
 * changed: a new NULL-terminated array of names borrowed from the state
 * (free() the array only). Returns 0, -ENOENT, -ENOMEM. */
int acd_get_operator_queues(const AcdState *a, const char *id, const char ***ret);

/*
 * Remove queue name, which must have no members left (move them with
 * acd_set_operator_queues() first). Its calls go to the default queue:
 * waiting ones keep their place by arrival among the default queue's
 * (QUEUED with queue "default" for each, unless an operator of the default
 * queue takes it at once: RINGING), ringing and answered ones carry on and
 * come back to the default queue if refused. The queue's statistics are
 * dropped. O(calls). Returns the number of waiting calls moved (>= 0),
 * -EINVAL (the default queue, or a bad name), -ENXIO, -EBUSY (it still has
 * members), -ENOMEM.
 */
int acd_remove_queue(AcdState *a, const char *name, usec_t now, AcdEvents *out);

/*
 * A call arrives in queue (NULL = default). Appends RECEIVED, then RINGING
 * (+ OPERATOR_STATE) or QUEUED. Returns ACD_CALL_RINGING or ACD_CALL_QUEUED,
 * -EINVAL, -EEXIST (a live call has this id), -ENXIO, -ENOMEM, or -ENOSPC
 * when no operator of its queue is eligible and cfg.max_queued calls wait
 * already: the cap bounds the memory a flood of calls can take. A call that
 * rings at once is always taken, and so are calls that go back to their
 * queue (reject, ring timeout) and restored ones, which may leave more than
 * max_queued waiting for a while.
 */
int acd_place_call(AcdState *a, const char *id, const char *queue, usec_t now, AcdEvents *out);

/*
 * The ringing operator answers. Appends ANSWERED and OPERATOR_STATE.
 * Returns 0 and, if ret_call is not NULL, the call's id (borrowed, valid
 * until the call ends), -ENOENT, -EBUSY (the operator is not ringing).
 */
int acd_answer(AcdState *a, const char *op, usec_t now, AcdEvents *out, const char **ret_call);

/*
 * The ringing operator rejects. Appends REJECTED, OPERATOR_STATE, then the
 * re-offer (RINGING, or QUEUED when no operator is eligible). Returns 0 and
 * the call's id as acd_answer() does, -ENOENT, -EBUSY (not ringing).
 */
int acd_reject(AcdState *a, const char *op, usec_t now, AcdEvents *out, const char **ret_call);

/*
 * The caller hangs up. Queued or ringing: MISSED (the ringing operator is
 * freed). Answered: FINISHED, the operator goes to wrap-up or available.
 * A freed operator takes the next waiting call (RINGING follows). The call
 * is forgotten: its id may be used again. Returns ACD_EVENT_MISSED or
 * ACD_EVENT_FINISHED, or -ENOENT.
 */
int acd_hangup(AcdState *a, const char *id, usec_t now, AcdEvents *out);

/*
 * Handle every deadline due at or before now, oldest first: ring timeouts
 * (IGNORED, then as a reject; after max_no_answer consecutive ones the
 * operator's status becomes paused), the end of reject/no-answer delays and
 * of wrap-up (the operator becomes available and takes the next call).
 * Deadlines that fall on the same instant are handled together before the
 * waiting calls are handed out, so that the strategy sees all of the
 * operators freed at that instant. Returns the number of deadlines handled.
 */
int acd_timeout(AcdState *a, usec_t now, AcdEvents *out);

/* The earliest pending deadline, or USEC_INFINITY: when the manager must
 * call acd_timeout() next. */
usec_t acd_next_deadline(const AcdState *a);

/* Number of calls waiting in all queues, and of eligible operators
 * (the QueueLength and OperatorsAvailable properties). */
size_t acd_queue_length(const AcdState *a);
size_t acd_operators_available(const AcdState *a);
size_t acd_operator_count(const AcdState *a);
size_t acd_call_count(const AcdState *a);

/*
 * Snapshots. Strings are borrowed from the state and valid until the next
 * operation that changes it.
 */
typedef struct AcdOperatorInfo {
        const char *id;
        AcdOperatorState state;
        AcdOperatorStatus status;
        const char *call;            /* ringing or answered call, NULL when none */
        usec_t idle_since;           /* when it last became eligible */
        usec_t deadline;             /* ring timeout / delay / wrap-up end, or USEC_INFINITY */
        uint64_t calls_answered;
        unsigned no_answers;         /* consecutive ring timeouts */
} AcdOperatorInfo;

typedef struct AcdCallInfo {
        const char *id;
        AcdCallState state;
        const char *operator;        /* ringing or answering operator, NULL when queued */
        const char *queue;
        usec_t arrived_at;
        usec_t answered_at;          /* USEC_INFINITY until answered */
        usec_t waited;               /* arrival to answer, or to now while unanswered */
} AcdCallInfo;

int acd_get_operator(const AcdState *a, const char *id, AcdOperatorInfo *ret);
int acd_get_call(const AcdState *a, const char *id, usec_t now, AcdCallInfo *ret);

/* Every operator in configured order. *ret is a new array (free() it; NULL
 * when there are none). Returns 0 or -ENOMEM. */
int acd_list_operators(const AcdState *a, AcdOperatorInfo **ret, size_t *ret_n);

/* Every call: the queued ones in queue order (oldest first, all queues
 * merged by arrival), then the ringing ones, then the answered ones, each
 * group by arrival. Same ownership as acd_list_operators(). */
int acd_list_calls(const AcdState *a, usec_t now, AcdCallInfo **ret, size_t *ret_n);

/*
 * The calls acd_list_calls() gives from position offset on, at most limit
 * of them (fewer, or none, at the end): a page of the list, so that a
 * caller that shows the calls need not copy every one of a long queue.
 * O(calls) without allocation to find the page, O(limit) for the copy.
 * Same ownership; *ret may be NULL when *ret_n is 0.
 */
int acd_list_calls_page(const AcdState *a, usec_t now, size_t offset, size_t limit, AcdCallInfo **ret,
                        size_t *ret_n);

typedef struct AcdQueueStats {
        AcdStrategy strategy;
        size_t members;              /* operators in the queue */
        size_t available;            /* of them, eligible now */
        size_t waiting;              /* calls queued (not ringing) */
        size_t ringing;
        size_t talking;              /* answered calls in progress */
        usec_t longest_wait;         /* wait so far of the oldest queued call; 0 when none */
        uint64_t received;           /* calls placed (and restored) */
        uint64_t answered;
        uint64_t answered_within;    /* answered within cfg.service_level of arrival */
        uint64_t abandoned;          /* hung up before answer (missed) */
        uint64_t rejected;           /* reject events */
        uint64_t ignored;            /* ring timeouts */
        usec_t total_wait;           /* sum of arrival-to-answer over answered calls */
        usec_t average_wait;         /* total_wait / answered; 0 when none */
        double service_level;        /* answered_within / (answered + abandoned); 1 when none */
        double abandon_rate;         /* abandoned / (answered + abandoned); 0 when none */
} AcdQueueStats;

/* Statistics of queue (NULL = default) at now. Returns 0 or -ENXIO. */
int acd_queue_get_stats(const AcdState *a, const char *queue, usec_t now, AcdQueueStats *ret);

/* The counters behind a queue's statistics (AcdQueueStats's fields of the
 * same names; the rates and the average are derived from them). */
typedef struct AcdQueueCounters {
        uint64_t received, answered, answered_within, abandoned, rejected, ignored;
        usec_t total_wait;
} AcdQueueCounters;

/*
 * Add c to queue's counters (NULL = default): the statistics of calls
 * routed before a restart, rebuilt from the call records. Returns 0 or
 * -ENXIO.
 */
int acd_queue_add_counters(AcdState *a, const char *queue, const AcdQueueCounters *c);

/*
 * Crash recovery. The store rebuilds the state in this order:
 *   1. acd_add_queue() and acd_add_operator() with each operator's status
 *      (no calls exist yet, so nothing is dispatched);
 *   2. acd_restore_call() for every live call, in arrival order (the order
 *      given is the queue order); answered calls bind their operator, which
 *      becomes busy; queued and ringing calls take their place in the queue;
 *   3. acd_restore_done(), which offers the waiting calls to the eligible
 *      operators (ringing calls are thus offered again: RINGING events).
 * Restoring appends no events except OPERATOR_STATE for operators that
 * become busy.
 */
typedef struct AcdCallRestore {
        const char *id;
        const char *queue;           /* NULL = default */
        AcdCallState state;
        const char *operator;        /* ANSWERED only */
        usec_t arrived_at;
        usec_t answered_at;          /* ANSWERED only */
} AcdCallRestore;

/* Returns 0, -EINVAL, -EEXIST, -ENXIO, -ENOENT (no such operator), -EBUSY
 * (the operator is not idle), -ENOMEM. */
int acd_restore_call(AcdState *a, const AcdCallRestore *c, usec_t now, AcdEvents *out);
void acd_restore_done(AcdState *a, usec_t now, AcdEvents *out);

/*
 * Format the seed's message line for an event, without newline:
 *   Call <id> received / ringing for operator <op> / waiting in queue /
 *   answered by operator <op> / rejected by operator <op> /
 *   finished and operator <op> available / missed / ignored by operator <op>
 * Returns the length (0 for OPERATOR_STATE, which has no line), or -ENOBUFS
 * when size is too small (ACD_MESSAGE_MAX always suffices).
 */
int acd_event_format_message(const AcdEvent *e, char *buf, size_t size);

/* The message lines of ev->events[from..n) that have one, as a new
 * NULL-terminated vector (strv_free() it). Returns 0 or -ENOMEM. */
int acd_events_to_strv(const AcdEvents *ev, size_t from, char ***ret);

/* "received" ... "missed", "state" for OPERATOR_STATE. */
const char *acd_event_kind_to_string(AcdEventKind k);
/* The ZeroMQ topic: "router.call.<kind>" or "router.operator.state". */
const char *acd_event_topic(AcdEventKind k);

const char *acd_strategy_to_string(AcdStrategy s);
AcdStrategy acd_strategy_from_string(const char *s);
/* NULL-terminated, in enum order (for a CONFIG_ENUM table). */
extern const char *const acd_strategy_names[];

const char *acd_operator_status_to_string(AcdOperatorStatus s);
AcdOperatorStatus acd_operator_status_from_string(const char *s);
const char *acd_operator_state_to_string(AcdOperatorState s);
const char *acd_call_state_to_string(AcdCallState s);
AcdCallState acd_call_state_from_string(const char *s);
