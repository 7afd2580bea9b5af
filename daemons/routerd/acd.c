/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acd.h"
#include "cleanup.h"
#include "hashtable.h"
#include "log.h"

/*
 * Data layout, chosen so that no routing decision walks a list:
 *
 *  - calls, operators and queues are found by id in keyed hash tables
 *    (SipHash, so that a client choosing call ids cannot pile them into one
 *    bucket);
 *  - each queue keeps its waiting calls in a min-heap on the arrival serial
 *    (a refused call goes back to its place in O(log n)) and its eligible
 *    members in a heap ordered by the queue's strategy (random: an unordered
 *    array with O(1) removal by swap);
 *  - every pending deadline (ring timeout, delay, wrap-up: at most one per
 *    operator) sits in one min-heap, whose top is acd_next_deadline();
 *  - intrusive doubly-linked lists keep operators in configured order and
 *    calls in arrival order, for listing only.
 *
 * Every container that an operation may need to grow is grown before the
 * operation changes anything, so an operation either fails with -ENOMEM
 * and no effect, or completes.
 */

#define IDX_NONE SIZE_MAX

/* ---- intrusive binary heap; each element stores its own index ---- */

typedef bool (*HeapLess)(const void *x, const void *y);

typedef struct Heap {
        void **items;
        size_t n, allocated;
        HeapLess less;               /* NULL: an unordered set (random strategy) */
        size_t idx_offset;           /* offsetof() the element's size_t index */
} Heap;

static size_t *heap_idx(const Heap *h, void *x) {
        return (size_t *) ((char *) x + h->idx_offset);
}

static void heap_set(Heap *h, size_t i, void *x) {
        h->items[i] = x;
        *heap_idx(h, x) = i;
}

static void heap_up(Heap *h, size_t i) {
        void *x = h->items[i];

        while (i > 0) {
                size_t parent = (i - 1) / 2;

                if (!h->less(x, h->items[parent]))
                        break;
                heap_set(h, i, h->items[parent]);
                i = parent;
        }
        heap_set(h, i, x);
}

static void heap_down(Heap *h, size_t i) {
        void *x = h->items[i];

        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m;

                if (l >= h->n)
                        break;
                m = r < h->n && h->less(h->items[r], h->items[l]) ? r : l;
                if (!h->less(h->items[m], x))
                        break;
                heap_set(h, i, h->items[m]);
                i = m;
        }
        heap_set(h, i, x);
}

static int heap_reserve(Heap *h, size_t n) {
        void **items;
        size_t want;

        if (n <= h->allocated)
                return 0;
        want = h->allocated > 0 ? h->allocated : 8;
        while (want < n) {
                if (want > SIZE_MAX / 2 / sizeof(void *))
                        return -ENOMEM;
                want *= 2;
        }
        items = realloc(h->items, want * sizeof(void *));
        if (!items)
                return -ENOMEM;
        h->items = items;
        h->allocated = want;
        return 0;
}

/* Push after heap_reserve(): never fails. */
static void heap_push(Heap *h, void *x) {
        assert(h->n < h->allocated);
        heap_set(h, h->n++, x);
        if (h->less)
                heap_up(h, h->n - 1);
}

static void heap_remove(Heap *h, void *x) {
        size_t i = *heap_idx(h, x);
        void *last;

        assert(i < h->n && h->items[i] == x);
        *heap_idx(h, x) = IDX_NONE;
        last = h->items[--h->n];
        if (i == h->n)
                return;
        heap_set(h, i, last);
        if (h->less) {
                heap_up(h, i);
                heap_down(h, *heap_idx(h, last));
        }
}

static void *heap_peek(const Heap *h) {
        return h->n > 0 ? h->items[0] : NULL;
}

static void heap_done(Heap *h) {
        free(h->items);
        *h = (Heap) {};
}

/* ---- the model ---- */

typedef struct AcdQueue AcdQueue;
typedef struct AcdOperator AcdOperator;
typedef struct AcdCall AcdCall;

/* What an operator is doing, apart from its administrative status. */
typedef enum Phase {
        PHASE_IDLE,
        PHASE_RINGING,
        PHASE_BUSY,
        PHASE_WRAP_UP,
        PHASE_DELAYED,
} Phase;

/* One operator's membership in one queue: the element of that queue's
 * eligible set, so that the set can hold per-queue keys (round-robin). */
typedef struct AcdMember {
        AcdOperator *op;
        AcdQueue *queue;
        size_t idx;                  /* in queue->eligible, or IDX_NONE */
        uint64_t last_offered;       /* round-robin key: offer serial */
} AcdMember;

struct AcdOperator {
        HashNode node;
        AcdOperator *prev, *next;    /* configured order */
        AcdCall *call;               /* ringing or answered */
        AcdMember *members;
        size_t n_members;
        uint64_t order;              /* serial of addition: the configured order */
        usec_t idle_since;
        usec_t deadline;
        size_t deadline_idx;
        uint64_t calls_answered;
        unsigned no_answers;
        Phase phase;
        AcdOperatorStatus status;
        bool eligible;
        char id[];
};

struct AcdCall {
        HashNode node;
        AcdCall *prev, *next;        /* arrival order */
        AcdQueue *queue;
        AcdOperator *op;             /* ringing or answered */
        uint64_t seq;                /* arrival serial: the queue order */
        uint64_t refused_by;         /* order of the operator that last refused it, 0 = none */
        usec_t arrived_at;
        usec_t answered_at;
        size_t idx;                  /* in queue->waiting, or IDX_NONE */
        AcdCallState state;
        char id[];
};

struct AcdQueue {
        HashNode node;
        AcdStrategy strategy;
        Heap waiting;                /* AcdCall, by seq */
        Heap eligible;               /* AcdMember, by strategy */
        size_t n_members, n_ringing, n_talking;
        AcdQueue *dirty_next;
        bool dirty;
        uint64_t received, answered, answered_within, abandoned, rejected, ignored;
        usec_t total_wait;
        char name[];
};

struct AcdState {
        AcdConfig cfg;
        usec_t now;                  /* latest now seen: time never runs backwards here */

        HashTable operators, calls, queue_table;
        AcdOperator *op_first, *op_last;
        AcdCall *call_first, *call_last;
        AcdQueue **queues;           /* creation order */
        size_t n_queues;
        AcdQueue *default_queue;

        /* Queues that may hold both a waiting call and an eligible member:
         * only those need looking at when handing out calls. */
        AcdQueue *dirty;

        Heap deadlines;              /* AcdOperator, by (deadline, order) */

        size_t n_queued, n_eligible;
        uint64_t op_serial, call_serial, offer_serial;
        uint64_t rng;

        /* Calls that (re-)entered a queue during the current operation; those
         * still waiting when it ends get a QUEUED event. */
        AcdCall **announce;
        size_t n_announce, allocated_announce;
};


static usec_t usec_add(usec_t a, usec_t b) {
        return a > USEC_INFINITY - b ? USEC_INFINITY : a + b;
}

static usec_t usec_sub(usec_t a, usec_t b) {
        return a > b ? a - b : 0;
}

static void advance(AcdState *a, usec_t now) {
        if (now > a->now)
                a->now = now;
}

/* splitmix64: small, good enough for picking operators, reproducible from
 * the configured seed so that tests can predict the random strategy. */
static uint64_t rng_next(uint64_t *s) {
        uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static size_t rng_below(uint64_t *s, size_t n) {
        /* Lemire's multiply-shift: no modulo bias worth mentioning. */
        return (size_t) (((unsigned __int128) rng_next(s) * n) >> 64);
}

/* ---- strategy orderings: every tie falls back on configured order ---- */

static bool member_less_longest_idle(const void *x, const void *y) {
        const AcdOperator *a = ((const AcdMember *) x)->op, *b = ((const AcdMember *) y)->op;

        if (a->idle_since != b->idle_since)
                return a->idle_since < b->idle_since;
        return a->order < b->order;
}

static bool member_less_top_down(const void *x, const void *y) {
        return ((const AcdMember *) x)->op->order < ((const AcdMember *) y)->op->order;
}

static bool member_less_round_robin(const void *x, const void *y) {
        const AcdMember *a = x, *b = y;

        if (a->last_offered != b->last_offered)
                return a->last_offered < b->last_offered;
        return a->op->order < b->op->order;
}

static bool member_less_fewest_calls(const void *x, const void *y) {
        const AcdOperator *a = ((const AcdMember *) x)->op, *b = ((const AcdMember *) y)->op;

        if (a->calls_answered != b->calls_answered)
                return a->calls_answered < b->calls_answered;
        return a->order < b->order;
}

static const HeapLess strategy_less[_ACD_STRATEGY_MAX] = {
        [ACD_STRATEGY_LONGEST_IDLE] = member_less_longest_idle,
        [ACD_STRATEGY_TOP_DOWN] = member_less_top_down,
        [ACD_STRATEGY_ROUND_ROBIN] = member_less_round_robin,
        [ACD_STRATEGY_FEWEST_CALLS] = member_less_fewest_calls,
        [ACD_STRATEGY_RANDOM] = NULL,
};

static bool call_less(const void *x, const void *y) {
        return ((const AcdCall *) x)->seq < ((const AcdCall *) y)->seq;
}

static bool deadline_less(const void *x, const void *y) {
        const AcdOperator *a = x, *b = y;

        if (a->deadline != b->deadline)
                return a->deadline < b->deadline;
        return a->order < b->order;
}

/* ---- names ---- */

const char *const acd_strategy_names[] = {
        [ACD_STRATEGY_LONGEST_IDLE] = "longest-idle",
        [ACD_STRATEGY_TOP_DOWN] = "top-down",
        [ACD_STRATEGY_ROUND_ROBIN] = "round-robin",
        [ACD_STRATEGY_FEWEST_CALLS] = "fewest-calls",
        [ACD_STRATEGY_RANDOM] = "random",
        [_ACD_STRATEGY_MAX] = NULL,
};

static const char *const status_names[_ACD_STATUS_MAX] = {
        [ACD_STATUS_AVAILABLE] = "available",
        [ACD_STATUS_PAUSED] = "paused",
        [ACD_STATUS_OFFLINE] = "offline",
};

static const char *const operator_state_names[_ACD_OPERATOR_STATE_MAX] = {
        [ACD_OPERATOR_AVAILABLE] = "available",
        [ACD_OPERATOR_RINGING] = "ringing",
        [ACD_OPERATOR_BUSY] = "busy",
        [ACD_OPERATOR_WRAP_UP] = "wrap-up",
        [ACD_OPERATOR_DELAYED] = "delayed",
        [ACD_OPERATOR_PAUSED] = "paused",
        [ACD_OPERATOR_OFFLINE] = "offline",
};

static const char *const call_state_names[_ACD_CALL_STATE_MAX] = {
        [ACD_CALL_QUEUED] = "queued",
        [ACD_CALL_RINGING] = "ringing",
        [ACD_CALL_ANSWERED] = "answered",
};

static const char *const event_kind_names[_ACD_EVENT_KIND_MAX] = {
        [ACD_EVENT_RECEIVED] = "received",
        [ACD_EVENT_RINGING] = "ringing",
        [ACD_EVENT_QUEUED] = "queued",
        [ACD_EVENT_ANSWERED] = "answered",
        [ACD_EVENT_REJECTED] = "rejected",
        [ACD_EVENT_IGNORED] = "ignored",
        [ACD_EVENT_FINISHED] = "finished",
        [ACD_EVENT_MISSED] = "missed",
        [ACD_EVENT_OPERATOR_STATE] = "state",
};

static const char *const event_topics[_ACD_EVENT_KIND_MAX] = {
        [ACD_EVENT_RECEIVED] = "router.call.received",
        [ACD_EVENT_RINGING] = "router.call.ringing",
        [ACD_EVENT_QUEUED] = "router.call.queued",
        [ACD_EVENT_ANSWERED] = "router.call.answered",
        [ACD_EVENT_REJECTED] = "router.call.rejected",
        [ACD_EVENT_IGNORED] = "router.call.ignored",
        [ACD_EVENT_FINISHED] = "router.call.finished",
        [ACD_EVENT_MISSED] = "router.call.missed",
        [ACD_EVENT_OPERATOR_STATE] = "router.operator.state",
};

static int lookup_name(const char *const *names, int n, const char *s) {
        if (!s)
                return -EINVAL;
        for (int i = 0; i < n; i++)
                if (names[i] && strcmp(names[i], s) == 0)
                        return i;
        return -EINVAL;
}

const char *acd_strategy_to_string(AcdStrategy s) {
        return s >= 0 && s < _ACD_STRATEGY_MAX ? acd_strategy_names[s] : NULL;
}

AcdStrategy acd_strategy_from_string(const char *s) {
        return lookup_name(acd_strategy_names, _ACD_STRATEGY_MAX, s);
}

const char *acd_operator_status_to_string(AcdOperatorStatus s) {
        return s >= 0 && s < _ACD_STATUS_MAX ? status_names[s] : NULL;
}

AcdOperatorStatus acd_operator_status_from_string(const char *s) {
        return lookup_name(status_names, _ACD_STATUS_MAX, s);
}

const char *acd_operator_state_to_string(AcdOperatorState s) {
        return s >= 0 && s < _ACD_OPERATOR_STATE_MAX ? operator_state_names[s] : NULL;
}

const char *acd_call_state_to_string(AcdCallState s) {
        return s >= 0 && s < _ACD_CALL_STATE_MAX ? call_state_names[s] : NULL;
}

AcdCallState acd_call_state_from_string(const char *s) {
        return lookup_name(call_state_names, _ACD_CALL_STATE_MAX, s);
}

const char *acd_event_kind_to_string(AcdEventKind k) {
        return k >= 0 && k < _ACD_EVENT_KIND_MAX ? event_kind_names[k] : NULL;
}

const char *acd_event_topic(AcdEventKind k) {
        return k >= 0 && k < _ACD_EVENT_KIND_MAX ? event_topics[k] : NULL;
}

bool acd_id_is_valid(const char *s) {
        size_t n = 0;

        if (!s)
                return false;
        /* Graphic ASCII only: ids end up in D-Bus object paths (escaped),
         * log lines, JSON and SQL, and must read the same everywhere. */
        for (; s[n]; n++)
                if (n >= ACD_ID_MAX || (unsigned char) s[n] < 0x21 || (unsigned char) s[n] > 0x7e)
                        return false;
        return n > 0;
}

/* ---- events ---- */

void acd_events_clear(AcdEvents *ev) {
        if (!ev)
                return;
        ev->n = 0;
        ev->lost = 0;
}

void acd_events_done(AcdEvents *ev) {
        if (!ev)
                return;
        free(ev->events);
        *ev = (AcdEvents) {};
}

static void copy_id(char dst[static ACD_ID_MAX + 1], const char *src) {
        size_t n = src ? strnlen(src, ACD_ID_MAX) : 0;

        memcpy(dst, src, n);
        dst[n] = 0;
}

static AcdEvent *event_append(AcdState *a, AcdEvents *out, AcdEventKind kind) {
        AcdEvent *e;

        if (!out)
                return NULL;
        if (out->n >= out->allocated) {
                size_t want = out->allocated > 0 ? out->allocated * 2 : 16;
                AcdEvent *p = want < SIZE_MAX / sizeof(AcdEvent) ? realloc(out->events, want * sizeof(AcdEvent)) : NULL;

                if (!p) {
                        /* The state already changed; losing the record is the
                         * lesser evil than undoing half an operation. */
                        out->lost++;
                        (void) log_debug("ACD event lost: out of memory.");
                        return NULL;
                }
                out->events = p;
                out->allocated = want;
        }
        e = &out->events[out->n++];
        e->kind = kind;
        e->state = _ACD_OPERATOR_STATE_INVALID;
        e->status = _ACD_STATUS_INVALID;
        e->time = a->now;
        e->waited = 0;
        e->call[0] = e->operator[0] = e->queue[0] = 0;
        return e;
}

static void emit_call(AcdState *a, AcdEvents *out, AcdEventKind kind, const AcdCall *c,
                      const AcdOperator *op, usec_t waited) {
        AcdEvent *e = event_append(a, out, kind);

        if (!e)
                return;
        copy_id(e->call, c->id);
        if (op)
                copy_id(e->operator, op->id);
        copy_id(e->queue, c->queue->name);
        e->waited = waited;
}

static AcdOperatorState operator_state(const AcdOperator *op) {
        switch (op->phase) {
        case PHASE_RINGING:
                return ACD_OPERATOR_RINGING;
        case PHASE_BUSY:
                return ACD_OPERATOR_BUSY;
        case PHASE_WRAP_UP:
                return ACD_OPERATOR_WRAP_UP;
        case PHASE_DELAYED:
                return ACD_OPERATOR_DELAYED;
        case PHASE_IDLE:
        default:
                return op->status == ACD_STATUS_PAUSED    ? ACD_OPERATOR_PAUSED
                       : op->status == ACD_STATUS_OFFLINE ? ACD_OPERATOR_OFFLINE
                                                          : ACD_OPERATOR_AVAILABLE;
        }
}

static void emit_operator_state(AcdState *a, AcdEvents *out, const AcdOperator *op) {
        AcdEvent *e = event_append(a, out, ACD_EVENT_OPERATOR_STATE);

        if (!e)
                return;
        copy_id(e->operator, op->id);
        if (op->call)
                copy_id(e->call, op->call->id);
        e->state = operator_state(op);
        e->status = op->status;
}

static void announce_add(AcdState *a, AcdCall *c) {
        if (a->n_announce >= a->allocated_announce) {
                size_t want = a->allocated_announce > 0 ? a->allocated_announce * 2 : 16;
                AcdCall **p = want < SIZE_MAX / sizeof(AcdCall *) ? realloc(a->announce, want * sizeof(AcdCall *)) : NULL;

                if (!p)
                        return; /* only a QUEUED record is at stake */
                a->announce = p;
                a->allocated_announce = want;
        }
        a->announce[a->n_announce++] = c;
}

static void announce_flush(AcdState *a, AcdEvents *out) {
        for (size_t i = 0; i < a->n_announce; i++) {
                AcdCall *c = a->announce[i];

                if (c->state == ACD_CALL_QUEUED)
                        emit_call(a, out, ACD_EVENT_QUEUED, c, NULL, 0);
        }
        a->n_announce = 0;
}

/* ---- the state machine ---- */

static void queue_mark_dirty(AcdState *a, AcdQueue *q) {
        if (q->dirty)
                return;
        q->dirty = true;
        q->dirty_next = a->dirty;
        a->dirty = q;
}

static bool operator_is_eligible(const AcdOperator *op) {
        return op->phase == PHASE_IDLE && op->status == ACD_STATUS_AVAILABLE;
}

/* Bring the eligible sets and the counter in line with op's phase/status. */
static void operator_sync_eligible(AcdState *a, AcdOperator *op) {
        bool is = operator_is_eligible(op);

        if (is == op->eligible)
                return;
        if (is) {
                /* Set before the pushes: idle_since is the longest-idle key. */
                op->idle_since = a->now;
                for (size_t i = 0; i < op->n_members; i++) {
                        heap_push(&op->members[i].queue->eligible, &op->members[i]);
                        queue_mark_dirty(a, op->members[i].queue);
                }
                a->n_eligible++;
        } else {
                for (size_t i = 0; i < op->n_members; i++)
                        heap_remove(&op->members[i].queue->eligible, &op->members[i]);
                a->n_eligible--;
        }
        op->eligible = is;
}

static void operator_set_deadline(AcdState *a, AcdOperator *op, usec_t deadline) {
        if (deadline == op->deadline)
                return;
        if (op->deadline_idx != IDX_NONE)
                heap_remove(&a->deadlines, op);
        op->deadline = deadline;
        if (deadline != USEC_INFINITY)
                heap_push(&a->deadlines, op); /* room reserved when op was added */
}

/*
 * The one place where an operator changes: keeps the eligible sets, the
 * deadline heap and the counters in step, and reports a change of what
 * ListOperators would show (state, status or call).
 */
static void operator_change(AcdState *a, AcdOperator *op, Phase phase, AcdOperatorStatus status,
                            AcdCall *call, usec_t deadline, AcdEvents *out) {
        AcdOperatorState old_state = operator_state(op);
        AcdOperatorStatus old_status = op->status;
        AcdCall *old_call = op->call;

        op->phase = phase;
        op->status = status;
        op->call = call;
        operator_set_deadline(a, op, deadline);
        operator_sync_eligible(a, op);

        if (operator_state(op) != old_state || status != old_status || call != old_call)
                emit_operator_state(a, out, op);
}

/* After a reject or ring timeout the operator is held back for delay, if any. */
static void operator_release(AcdState *a, AcdOperator *op, AcdOperatorStatus status, usec_t delay,
                             AcdEvents *out) {
        if (delay > 0)
                operator_change(a, op, PHASE_DELAYED, status, NULL, usec_add(a->now, delay), out);
        else
                operator_change(a, op, PHASE_IDLE, status, NULL, USEC_INFINITY, out);
}

/* Put c into (back into) its queue at its place; capacity is reserved
 * for every unanswered call of the queue when it is placed. */
static void call_enqueue(AcdState *a, AcdCall *c) {
        c->state = ACD_CALL_QUEUED;
        c->op = NULL;
        heap_push(&c->queue->waiting, c);
        a->n_queued++;
        queue_mark_dirty(a, c->queue);
}

/*
 * The strategy's choice in q for a call last refused by operator number
 * exclude (0 = none): the best member that is not that operator, or that
 * operator when it is the only one eligible. In a binary heap the runner-up
 * is one of the root's children, so this stays O(1).
 */
static AcdMember *queue_pick(AcdState *a, AcdQueue *q, uint64_t exclude) {
        Heap *h = &q->eligible;
        AcdMember *best;

        if (h->n == 0)
                return NULL;

        if (q->strategy == ACD_STRATEGY_RANDOM) {
                size_t r = rng_below(&a->rng, h->n);

                if (exclude != 0 && h->n > 1 && ((AcdMember *) h->items[r])->op->order == exclude) {
                        /* Uniform over the others: draw among n-1 and skip r. */
                        size_t s = rng_below(&a->rng, h->n - 1);
                        r = s >= r ? s + 1 : s;
                }
                return h->items[r];
        }

        best = h->items[0];
        if (exclude != 0 && best->op->order == exclude && h->n > 1) {
                best = h->items[1];
                if (h->n > 2 && h->less(h->items[2], best))
                        best = h->items[2];
        }
        return best;
}

static void ring(AcdState *a, AcdCall *c, AcdMember *m, AcdEvents *out) {
        AcdOperator *op = m->op;
        AcdQueue *q = c->queue;

        c->state = ACD_CALL_RINGING;
        c->op = op;
        a->n_queued--;
        q->n_ringing++;
        emit_call(a, out, ACD_EVENT_RINGING, c, op, 0);
        operator_change(a, op, PHASE_RINGING, op->status, c, usec_add(a->now, a->cfg.ring_timeout), out);
        /* Only now that op left every eligible set may its key change. */
        m->last_offered = ++a->offer_serial;
}

/*
 * Hand waiting calls to eligible operators until no queue has both. The
 * globally oldest head goes first, so that an operator in several queues
 * takes the call that has waited longest. Cost per call handed out: a scan
 * of the dirty queues (queues are few; operators and calls are many), then
 * O(log n) heap work.
 */
static void dispatch(AcdState *a, AcdEvents *out) {
        for (;;) {
                AcdQueue *best = NULL;
                AcdCall *head = NULL;

                for (AcdQueue **p = &a->dirty; *p;) {
                        AcdQueue *q = *p;
                        AcdCall *h;

                        if (q->waiting.n == 0 || q->eligible.n == 0) {
                                *p = q->dirty_next;
                                q->dirty_next = NULL;
                                q->dirty = false;
                                continue;
                        }
                        h = heap_peek(&q->waiting);
                        if (!head || h->seq < head->seq) {
                                best = q;
                                head = h;
                        }
                        p = &q->dirty_next;
                }
                if (!best)
                        return;

                heap_remove(&best->waiting, head);
                ring(a, head, queue_pick(a, best, head->refused_by), out);
        }
}

/* Every operation ends here: hand out what can be handed out, then say
 * which of the calls that entered a queue are still waiting. */
static void settle(AcdState *a, AcdEvents *out) {
        dispatch(a, out);
        announce_flush(a, out);
}

static AcdOperator *operator_find(const AcdState *a, const char *id) {
        HashNode *n = hashtable_find_string(&a->operators, id);
        return n ? container_of(n, AcdOperator, node) : NULL;
}

static AcdCall *call_find(const AcdState *a, const char *id) {
        HashNode *n = hashtable_find_string(&a->calls, id);
        return n ? container_of(n, AcdCall, node) : NULL;
}

static AcdQueue *queue_find(const AcdState *a, const char *name) {
        HashNode *n;

        if (!name)
                return a->default_queue;
        n = hashtable_find_string(&a->queue_table, name);
        return n ? container_of(n, AcdQueue, node) : NULL;
}

void acd_config_init(AcdConfig *ret) {
        *ret = (AcdConfig) {
                .strategy = ACD_STRATEGY_LONGEST_IDLE,
                .ring_timeout = 10 * USEC_PER_SEC,
                .service_level = 20 * USEC_PER_SEC,
        };
}

int acd_new(const AcdConfig *cfg, AcdState **ret) {
        AcdState *a;
        int r;

        if (!cfg || !ret)
                return -EINVAL;
        if (cfg->strategy < 0 || cfg->strategy >= _ACD_STRATEGY_MAX || cfg->ring_timeout == 0 ||
            cfg->reject_delay == USEC_INFINITY || cfg->no_answer_delay == USEC_INFINITY ||
            cfg->wrap_up == USEC_INFINITY)
                return -EINVAL;

        a = calloc(1, sizeof(AcdState));
        if (!a)
                return -ENOMEM;
        a->cfg = *cfg;
        a->rng = cfg->seed;
        hashtable_init_string(&a->operators, HASHTABLE_KEY_OFFSET(AcdOperator, node, id), cfg->hash_key);
        hashtable_init_string(&a->calls, HASHTABLE_KEY_OFFSET(AcdCall, node, id), cfg->hash_key);
        hashtable_init_string(&a->queue_table, HASHTABLE_KEY_OFFSET(AcdQueue, node, name), cfg->hash_key);
        a->deadlines = (Heap) { .less = deadline_less, .idx_offset = offsetof(AcdOperator, deadline_idx) };

        r = acd_add_queue(a, ACD_DEFAULT_QUEUE, cfg->strategy);
        if (r < 0) {
                acd_free(a);
                return r;
        }
        a->default_queue = a->queues[0];
        *ret = a;
        return 0;
}

static void call_free(AcdState *a, AcdCall *c) {
        hashtable_remove(&a->calls, &c->node);
        if (c->prev)
                c->prev->next = c->next;
        else
                a->call_first = c->next;
        if (c->next)
                c->next->prev = c->prev;
        else
                a->call_last = c->prev;
        free(c);
}

AcdState *acd_free(AcdState *a) {
        if (!a)
                return NULL;
        for (AcdCall *c = a->call_first, *next; c; c = next) {
                next = c->next;
                free(c);
        }
        for (AcdOperator *op = a->op_first, *next; op; op = next) {
                next = op->next;
                free(op->members);
                free(op);
        }
        for (size_t i = 0; i < a->n_queues; i++) {
                heap_done(&a->queues[i]->waiting);
                heap_done(&a->queues[i]->eligible);
                free(a->queues[i]);
        }
        free(a->queues);
        hashtable_done(&a->operators);
        hashtable_done(&a->calls);
        hashtable_done(&a->queue_table);
        heap_done(&a->deadlines);
        free(a->announce);
        free(a);
        return NULL;
}

const AcdConfig *acd_get_config(const AcdState *a) {
        return &a->cfg;
}

int acd_add_queue(AcdState *a, const char *name, AcdStrategy strategy) {
        _cleanup_(freep) AcdQueue *q = NULL;
        AcdQueue **qs;
        size_t len;
        int r;

        if (!acd_id_is_valid(name) || strategy < 0 || strategy >= _ACD_STRATEGY_MAX)
                return -EINVAL;
        if (queue_find(a, name))
                return -EEXIST;

        r = hashtable_reserve(&a->queue_table, a->queue_table.n + 1);
        if (r < 0)
                return r;
        qs = realloc(a->queues, (a->n_queues + 1) * sizeof(AcdQueue *));
        if (!qs)
                return -ENOMEM;
        a->queues = qs;

        len = strlen(name);
        q = calloc(1, sizeof(AcdQueue) + len + 1);
        if (!q)
                return -ENOMEM;
        memcpy(q->name, name, len + 1);
        q->strategy = strategy;
        q->waiting = (Heap) { .less = call_less, .idx_offset = offsetof(AcdCall, idx) };
        q->eligible = (Heap) { .less = strategy_less[strategy], .idx_offset = offsetof(AcdMember, idx) };

        hashtable_insert_string(&a->queue_table, &q->node);
        a->queues[a->n_queues++] = TAKE_PTR(q);
        return 0;
}

size_t acd_queue_count(const AcdState *a) {
        return a->n_queues;
}

const char *acd_queue_name(const AcdState *a, size_t i) {
        return i < a->n_queues ? a->queues[i]->name : NULL;
}

/*
 * The membership array for the queue list queues (NULL = the default queue
 * only), not yet linked to an operator or to any eligible set. Returns 0,
 * -EINVAL (empty or duplicated list, bad name), -ENXIO, -ENOMEM.
 */
static int members_new(AcdState *a, const char *const *queues, AcdMember **ret, size_t *ret_n) {
        static const char *const default_queues[] = { ACD_DEFAULT_QUEUE, NULL };
        _cleanup_(freep) AcdMember *members = NULL;
        size_t n = 0;

        if (!queues)
                queues = default_queues;
        else if (!queues[0])
                return -EINVAL; /* an operator in no queue would never get a call */

        while (queues[n])
                n++;
        members = calloc(n, sizeof(AcdMember));
        if (!members)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                members[i].queue = queue_find(a, queues[i]);
                if (!members[i].queue)
                        return acd_id_is_valid(queues[i]) ? -ENXIO : -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (members[j].queue == members[i].queue)
                                return -EINVAL;
                members[i].idx = IDX_NONE;
        }
        *ret = TAKE_PTR(members);
        *ret_n = n;
        return 0;
}

int acd_add_operator(AcdState *a, const char *id, const char *const *queues,
                     AcdOperatorStatus status, usec_t now, AcdEvents *out) {
        _cleanup_(freep) AcdOperator *op = NULL;
        _cleanup_(freep) AcdMember *members = NULL;
        size_t n = 0, len;
        int r;

        if (!acd_id_is_valid(id) || status < 0 || status >= _ACD_STATUS_MAX)
                return -EINVAL;
        if (operator_find(a, id))
                return -EEXIST;
        r = members_new(a, queues, &members, &n);
        if (r < 0)
                return r;

        r = hashtable_reserve(&a->operators, a->operators.n + 1);
        if (r < 0)
                return r;
        r = heap_reserve(&a->deadlines, a->operators.n + 1);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = heap_reserve(&members[i].queue->eligible, members[i].queue->n_members + 1);
                if (r < 0)
                        return r;
        }

        len = strlen(id);
        op = calloc(1, sizeof(AcdOperator) + len + 1);
        if (!op)
                return -ENOMEM;
        memcpy(op->id, id, len + 1);

        /* Nothing can fail from here on. */
        advance(a, now);
        op->order = ++a->op_serial;
        op->phase = PHASE_IDLE;
        op->status = status;
        op->idle_since = a->now;
        op->deadline = USEC_INFINITY;
        op->deadline_idx = IDX_NONE;
        op->n_members = n;
        op->members = TAKE_PTR(members);
        for (size_t i = 0; i < n; i++) {
                op->members[i].op = op;
                op->members[i].queue->n_members++;
        }
        hashtable_insert_string(&a->operators, &op->node);
        op->prev = a->op_last;
        if (a->op_last)
                a->op_last->next = op;
        else
                a->op_first = op;
        a->op_last = op;

        operator_sync_eligible(a, op);
        emit_operator_state(a, out, op);
        TAKE_PTR(op);
        settle(a, out);
        return 0;
}

int acd_remove_operator(AcdState *a, const char *id, usec_t now, AcdEvents *out) {
        AcdOperator *op = operator_find(a, id);

        if (!op)
                return -ENOENT;
        if (op->phase == PHASE_BUSY)
                return -EBUSY;

        advance(a, now);
        if (op->phase == PHASE_RINGING) {
                /* Not a refusal: the call simply goes back to its place. */
                AcdCall *c = op->call;

                c->queue->n_ringing--;
                call_enqueue(a, c);
                announce_add(a, c);
        }
        op->call = NULL;
        operator_set_deadline(a, op, USEC_INFINITY);
        op->phase = PHASE_BUSY; /* anything not eligible, to leave the sets */
        operator_sync_eligible(a, op);
        for (size_t i = 0; i < op->n_members; i++)
                op->members[i].queue->n_members--;

        hashtable_remove(&a->operators, &op->node);
        if (op->prev)
                op->prev->next = op->next;
        else
                a->op_first = op->next;
        if (op->next)
                op->next->prev = op->prev;
        else
                a->op_last = op->prev;
        free(op->members);
        free(op);

        settle(a, out);
        return 0;
}

int acd_set_status(AcdState *a, const char *id, AcdOperatorStatus status, usec_t now,
                   AcdEvents *out) {
        AcdOperator *op = operator_find(a, id);

        if (!op)
                return -ENOENT;
        if (status < 0 || status >= _ACD_STATUS_MAX)
                return -EINVAL;

        advance(a, now);
        /* A supervisor making the operator available again forgives the
         * no-answers that paused it (mod_callcenter does the same). */
        if (status == ACD_STATUS_AVAILABLE)
                op->no_answers = 0;
        operator_change(a, op, op->phase, status, op->call, op->deadline, out);
        settle(a, out);
        return 0;
}

/* ---- reconfiguration (a reload of the configuration) ---- */

/* Settings are checked here as in acd_new(), so that a caller cannot put
 * the state into one acd_new() would have refused. */
static bool config_is_valid(const AcdConfig *cfg) {
        return cfg && cfg->strategy >= 0 && cfg->strategy < _ACD_STRATEGY_MAX && cfg->ring_timeout > 0 &&
               cfg->reject_delay != USEC_INFINITY && cfg->no_answer_delay != USEC_INFINITY &&
               cfg->wrap_up != USEC_INFINITY;
}

/*
 * A new strategy re-orders the eligible set in place: Floyd's heap
 * construction, O(members). Nothing is handed out: between operations no
 * queue has both a waiting call and an eligible member, and the set of
 * eligible members does not change.
 */
static void queue_set_strategy(AcdQueue *q, AcdStrategy strategy) {
        Heap *h = &q->eligible;

        if (q->strategy == strategy)
                return;
        q->strategy = strategy;
        h->less = strategy_less[strategy];
        if (h->less && h->n > 1)
                for (size_t i = h->n / 2; i-- > 0;)
                        heap_down(h, i);
}

int acd_set_config(AcdState *a, const AcdConfig *cfg) {
        if (!config_is_valid(cfg))
                return -EINVAL;

        /* The seed and the hash key stay: the id tables are keyed with it,
         * and the random sequence need not restart. Deadlines already
         * running (rings, delays, wrap-up) keep the time they were given;
         * the new spans apply from the next one on. */
        a->cfg.ring_timeout = cfg->ring_timeout;
        a->cfg.reject_delay = cfg->reject_delay;
        a->cfg.no_answer_delay = cfg->no_answer_delay;
        a->cfg.wrap_up = cfg->wrap_up;
        a->cfg.max_no_answer = cfg->max_no_answer;
        a->cfg.service_level = cfg->service_level;
        a->cfg.max_queued = cfg->max_queued;
        a->cfg.strategy = cfg->strategy;
        queue_set_strategy(a->default_queue, cfg->strategy);
        return 0;
}

int acd_set_queue_strategy(AcdState *a, const char *queue, AcdStrategy strategy) {
        AcdQueue *q = queue_find(a, queue);

        if (strategy < 0 || strategy >= _ACD_STRATEGY_MAX)
                return -EINVAL;
        if (!q)
                return -ENXIO;
        queue_set_strategy(q, strategy);
        if (q == a->default_queue)
                a->cfg.strategy = strategy;
        return 0;
}

static AcdMember *operator_member_of(AcdOperator *op, const AcdQueue *q) {
        for (size_t i = 0; i < op->n_members; i++)
                if (op->members[i].queue == q)
                        return &op->members[i];
        return NULL;
}

int acd_set_operator_queues(AcdState *a, const char *id, const char *const *queues, usec_t now,
                            AcdEvents *out) {
        AcdOperator *op = operator_find(a, id);
        _cleanup_(freep) AcdMember *members = NULL;
        size_t n = 0;
        int r;

        if (!op)
                return -ENOENT;
        r = members_new(a, queues, &members, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (!operator_member_of(op, members[i].queue)) {
                        r = heap_reserve(&members[i].queue->eligible, members[i].queue->n_members + 1);
                        if (r < 0)
                                return r;
                }

        /* Nothing can fail from here on. Each eligible set holds pointers
         * to the AcdMember elements, and the array is replaced: a queue
         * the operator stays in gets the new element in the old one's slot
         * (O(1), the round-robin key carried over), a queue it leaves loses
         * it (O(log n)), a queue it joins gains it (O(log n)) with the
         * operator's longest-idle time unchanged. */
        advance(a, now);
        for (size_t i = 0; i < n; i++) {
                AcdMember *m = &members[i], *old = operator_member_of(op, m->queue);

                m->op = op;
                if (old) {
                        m->last_offered = old->last_offered;
                        if (old->idx != IDX_NONE) {
                                heap_set(&m->queue->eligible, old->idx, m);
                                old->idx = IDX_NONE;
                        }
                        old->queue = NULL; /* kept: not left below */
                } else
                        m->queue->n_members++;
        }
        for (size_t j = 0; j < op->n_members; j++) {
                AcdMember *old = &op->members[j];

                if (!old->queue)
                        continue;
                if (old->idx != IDX_NONE)
                        heap_remove(&old->queue->eligible, old);
                old->queue->n_members--;
        }
        free(op->members);
        op->members = TAKE_PTR(members);
        op->n_members = n;
        if (op->eligible)
                for (size_t i = 0; i < n; i++)
                        if (op->members[i].idx == IDX_NONE) {
                                heap_push(&op->members[i].queue->eligible, &op->members[i]);
                                queue_mark_dirty(a, op->members[i].queue);
                        }

        /* An available operator joining a queue with waiting calls takes
         * the oldest one now, as if it had just become available. */
        settle(a, out);
        return 0;
}

int acd_get_operator_queues(const AcdState *a, const char *id, const char ***ret) {
        AcdOperator *op = operator_find(a, id);
        const char **l;

        if (!op)
                return -ENOENT;
        l = calloc(op->n_members + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < op->n_members; i++)
                l[i] = op->members[i].queue->name;
        *ret = l;
        return 0;
}

int acd_remove_queue(AcdState *a, const char *name, usec_t now, AcdEvents *out) {
        AcdQueue *q, *d = a->default_queue;
        size_t moved = 0;
        int r;

        if (!name)
                return -EINVAL;
        q = queue_find(a, name);
        if (!q)
                return acd_id_is_valid(name) ? -ENXIO : -EINVAL;
        if (q == d)
                return -EINVAL;
        if (q->n_members > 0)
                return -EBUSY;

        /* Keep the default queue's promise that a refused call can always
         * go back without allocating: room for all of its unanswered calls,
         * the moved ones included. */
        r = heap_reserve(&d->waiting, d->waiting.n + d->n_ringing + q->waiting.n + q->n_ringing);
        if (r < 0)
                return r;

        /* Nothing can fail from here on. Every call of the queue, whatever
         * its state, now belongs to the default queue: waiting ones take
         * their place there by arrival (the heap orders by the arrival
         * serial, so the two queues merge as if the calls had always been
         * in one), ringing and answered ones carry on and come back to the
         * default queue if refused. One pass over the calls: removing a
         * queue is rare, routing is not, so no per-queue call list is kept
         * for it. */
        advance(a, now);
        for (AcdCall *c = a->call_first; c; c = c->next) {
                if (c->queue != q)
                        continue;
                c->queue = d;
                if (c->state == ACD_CALL_QUEUED) {
                        heap_remove(&q->waiting, c);
                        heap_push(&d->waiting, c);
                        announce_add(a, c);
                        moved++;
                }
        }
        assert(q->waiting.n == 0);
        d->n_ringing += q->n_ringing;
        d->n_talking += q->n_talking;
        if (moved > 0)
                queue_mark_dirty(a, d);

        for (AcdQueue **p = &a->dirty; *p; p = &(*p)->dirty_next)
                if (*p == q) {
                        *p = q->dirty_next;
                        break;
                }
        hashtable_remove(&a->queue_table, &q->node);
        for (size_t i = 0; i < a->n_queues; i++)
                if (a->queues[i] == q) {
                        memmove(a->queues + i, a->queues + i + 1, (a->n_queues - i - 1) * sizeof(AcdQueue *));
                        a->n_queues--;
                        break;
                }
        heap_done(&q->waiting);
        heap_done(&q->eligible);
        free(q);

        /* The moved calls are announced (QUEUED, queue "default") unless
         * an operator of the default queue takes them at once. */
        settle(a, out);
        return (int) (moved > INT_MAX ? INT_MAX : moved);
}

/* Allocate a call and link it everywhere but its queue's heap. */
static int call_new(AcdState *a, const char *id, AcdQueue *q, AcdCall **ret) {
        AcdCall *c;
        size_t len;
        int r;

        r = hashtable_reserve(&a->calls, a->calls.n + 1);
        if (r < 0)
                return r;
        /* Room in the waiting heap for every unanswered call of the queue,
         * so that a refused call can always go back without allocating. */
        r = heap_reserve(&q->waiting, q->waiting.n + q->n_ringing + 1);
        if (r < 0)
                return r;

        len = strlen(id);
        c = calloc(1, sizeof(AcdCall) + len + 1);
        if (!c)
                return -ENOMEM;
        memcpy(c->id, id, len + 1);
        c->queue = q;
        c->seq = ++a->call_serial;
        c->answered_at = USEC_INFINITY;
        c->idx = IDX_NONE;

        hashtable_insert_string(&a->calls, &c->node);
        c->prev = a->call_last;
        if (a->call_last)
                a->call_last->next = c;
        else
                a->call_first = c;
        a->call_last = c;
        q->received++;
        *ret = c;
        return 0;
}

int acd_place_call(AcdState *a, const char *id, const char *queue, usec_t now, AcdEvents *out) {
        AcdQueue *q;
        AcdCall *c;
        int r;

        if (!acd_id_is_valid(id))
                return -EINVAL;
        q = queue_find(a, queue);
        if (!q)
                return -ENXIO;
        if (call_find(a, id))
                return -EEXIST;
        /* Between operations no queue holds both a waiting call and an
         * eligible member, so the call rings at once exactly when its
         * queue has an eligible member; only one that would wait is
         * refused. */
        if (a->cfg.max_queued > 0 && q->eligible.n == 0 && a->n_queued >= a->cfg.max_queued)
                return -ENOSPC;

        r = call_new(a, id, q, &c);
        if (r < 0)
                return r;
        advance(a, now);
        c->arrived_at = a->now;

        emit_call(a, out, ACD_EVENT_RECEIVED, c, NULL, 0);
        call_enqueue(a, c);
        announce_add(a, c);
        settle(a, out);
        return c->state;
}

int acd_answer(AcdState *a, const char *id, usec_t now, AcdEvents *out, const char **ret_call) {
        AcdOperator *op = operator_find(a, id);
        AcdCall *c;
        AcdQueue *q;
        usec_t wait;

        if (!op)
                return -ENOENT;
        if (op->phase != PHASE_RINGING)
                return -EBUSY;

        advance(a, now);
        c = op->call;
        q = c->queue;
        c->state = ACD_CALL_ANSWERED;
        c->answered_at = a->now;
        q->n_ringing--;
        q->n_talking++;

        wait = usec_sub(a->now, c->arrived_at);
        q->answered++;
        q->total_wait = usec_add(q->total_wait, wait);
        if (wait <= a->cfg.service_level)
                q->answered_within++;

        /* op is ringing, hence in no eligible set: its fewest-calls key may change. */
        op->calls_answered++;
        op->no_answers = 0;

        emit_call(a, out, ACD_EVENT_ANSWERED, c, op, wait);
        operator_change(a, op, PHASE_BUSY, op->status, c, USEC_INFINITY, out);
        settle(a, out);
        if (ret_call)
                *ret_call = c->id;
        return 0;
}

int acd_reject(AcdState *a, const char *id, usec_t now, AcdEvents *out, const char **ret_call) {
        AcdOperator *op = operator_find(a, id);
        AcdCall *c;

        if (!op)
                return -ENOENT;
        if (op->phase != PHASE_RINGING)
                return -EBUSY;

        advance(a, now);
        c = op->call;
        c->queue->n_ringing--;
        c->queue->rejected++;
        emit_call(a, out, ACD_EVENT_REJECTED, c, op, 0);

        /* Back to its place (the heap orders by arrival), remembering who
         * refused it so that another operator is preferred. */
        c->refused_by = op->order;
        call_enqueue(a, c);
        announce_add(a, c);
        operator_release(a, op, op->status, a->cfg.reject_delay, out);
        settle(a, out);
        if (ret_call)
                *ret_call = c->id;
        return 0;
}

int acd_hangup(AcdState *a, const char *id, usec_t now, AcdEvents *out) {
        AcdCall *c = call_find(a, id);
        AcdOperator *op;
        AcdQueue *q;
        int outcome;

        if (!c)
                return -ENOENT;

        advance(a, now);
        q = c->queue;
        op = c->op;
        switch (c->state) {
        case ACD_CALL_QUEUED:
                heap_remove(&q->waiting, c);
                a->n_queued--;
                q->abandoned++;
                emit_call(a, out, ACD_EVENT_MISSED, c, NULL, usec_sub(a->now, c->arrived_at));
                outcome = ACD_EVENT_MISSED;
                break;

        case ACD_CALL_RINGING:
                /* The operator did not refuse anything: no delay, no count. */
                q->n_ringing--;
                q->abandoned++;
                emit_call(a, out, ACD_EVENT_MISSED, c, op, usec_sub(a->now, c->arrived_at));
                operator_change(a, op, PHASE_IDLE, op->status, NULL, USEC_INFINITY, out);
                outcome = ACD_EVENT_MISSED;
                break;

        case ACD_CALL_ANSWERED:
        default:
                /* The seed's line says "available" even when wrap-up holds
                 * the operator back; the OPERATOR_STATE record that follows
                 * says "wrap-up" in that case. */
                q->n_talking--;
                emit_call(a, out, ACD_EVENT_FINISHED, c, op, usec_sub(c->answered_at, c->arrived_at));
                if (a->cfg.wrap_up > 0)
                        operator_change(a, op, PHASE_WRAP_UP, op->status, NULL,
                                        usec_add(a->now, a->cfg.wrap_up), out);
                else
                        operator_change(a, op, PHASE_IDLE, op->status, NULL, USEC_INFINITY, out);
                outcome = ACD_EVENT_FINISHED;
                break;
        }

        call_free(a, c);
        settle(a, out);
        return outcome;
}

/* One deadline of op has come. */
static void operator_expire(AcdState *a, AcdOperator *op, AcdEvents *out) {
        AcdOperatorStatus status = op->status;
        AcdCall *c;

        switch (op->phase) {
        case PHASE_RINGING:
                c = op->call;
                c->queue->n_ringing--;
                c->queue->ignored++;
                emit_call(a, out, ACD_EVENT_IGNORED, c, op, 0);
                c->refused_by = op->order;
                call_enqueue(a, c);
                announce_add(a, c);

                /* mod_callcenter's max-no-answer: an operator who keeps not
                 * answering is probably away; pause rather than keep ringing. */
                op->no_answers++;
                if (a->cfg.max_no_answer > 0 && op->no_answers >= a->cfg.max_no_answer &&
                    status == ACD_STATUS_AVAILABLE) {
                        status = ACD_STATUS_PAUSED;
                        (void) log_debug("Operator %s paused after %u calls not answered.", op->id,
                                         op->no_answers);
                }
                operator_release(a, op, status, a->cfg.no_answer_delay, out);
                break;

        case PHASE_WRAP_UP:
        case PHASE_DELAYED:
                operator_change(a, op, PHASE_IDLE, status, NULL, USEC_INFINITY, out);
                break;

        default:
                assert(!"deadline on an operator without one");
                operator_set_deadline(a, op, USEC_INFINITY);
        }
}

int acd_timeout(AcdState *a, usec_t now, AcdEvents *out) {
        int n = 0;

        advance(a, now);
        for (;;) {
                AcdOperator *op = heap_peek(&a->deadlines);
                usec_t t;

                if (!op || op->deadline > a->now)
                        break;

                /* Everything due at the same instant first, then the hand-out:
                 * operators freed together compete under the strategy instead
                 * of the first one processed taking the call. New deadlines
                 * are at least now + a non-zero span, so this ends. */
                t = op->deadline;
                while ((op = heap_peek(&a->deadlines)) && op->deadline == t) {
                        operator_expire(a, op, out);
                        n++;
                }
                settle(a, out);
        }
        return n;
}

usec_t acd_next_deadline(const AcdState *a) {
        AcdOperator *op = heap_peek(&a->deadlines);
        return op ? op->deadline : USEC_INFINITY;
}

size_t acd_queue_length(const AcdState *a) {
        return a->n_queued;
}

size_t acd_operators_available(const AcdState *a) {
        return a->n_eligible;
}

size_t acd_operator_count(const AcdState *a) {
        return a->operators.n;
}

size_t acd_call_count(const AcdState *a) {
        return a->calls.n;
}

/* ---- snapshots ---- */

static void operator_info(const AcdOperator *op, AcdOperatorInfo *ret) {
        *ret = (AcdOperatorInfo) {
                .id = op->id,
                .state = operator_state(op),
                .status = op->status,
                .call = op->call ? op->call->id : NULL,
                .idle_since = op->idle_since,
                .deadline = op->deadline,
                .calls_answered = op->calls_answered,
                .no_answers = op->no_answers,
        };
}

static void call_info(const AcdState *a, const AcdCall *c, usec_t now, AcdCallInfo *ret) {
        now = now > a->now ? now : a->now;
        *ret = (AcdCallInfo) {
                .id = c->id,
                .state = c->state,
                .operator = c->op ? c->op->id : NULL,
                .queue = c->queue->name,
                .arrived_at = c->arrived_at,
                .answered_at = c->answered_at,
                .waited = usec_sub(c->state == ACD_CALL_ANSWERED ? c->answered_at : now, c->arrived_at),
        };
}

int acd_get_operator(const AcdState *a, const char *id, AcdOperatorInfo *ret) {
        AcdOperator *op = operator_find(a, id);

        if (!op)
                return -ENOENT;
        operator_info(op, ret);
        return 0;
}

int acd_get_call(const AcdState *a, const char *id, usec_t now, AcdCallInfo *ret) {
        AcdCall *c = call_find(a, id);

        if (!c)
                return -ENOENT;
        call_info(a, c, now, ret);
        return 0;
}

int acd_list_operators(const AcdState *a, AcdOperatorInfo **ret, size_t *ret_n) {
        AcdOperatorInfo *l = NULL;
        size_t n = 0;

        if (a->operators.n > 0) {
                l = calloc(a->operators.n, sizeof(AcdOperatorInfo));
                if (!l)
                        return -ENOMEM;
        }
        for (const AcdOperator *op = a->op_first; op; op = op->next)
                operator_info(op, &l[n++]);
        *ret = l;
        *ret_n = n;
        return 0;
}

int acd_list_calls_page(const AcdState *a, usec_t now, size_t offset, size_t limit, AcdCallInfo **ret,
                        size_t *ret_n) {
        static const AcdCallState order[] = { ACD_CALL_QUEUED, ACD_CALL_RINGING, ACD_CALL_ANSWERED };
        AcdCallInfo *l = NULL;
        size_t n = 0, pos = 0, want;

        want = offset < a->calls.n ? a->calls.n - offset : 0;
        if (want > limit)
                want = limit;
        if (want > 0) {
                l = calloc(want, sizeof(AcdCallInfo));
                if (!l)
                        return -ENOMEM;
        }
        /* The call list is in arrival order, which is queue order: one pass
         * per state gives "queued first, in queue order" without sorting.
         * Calls before the page are only counted. */
        for (size_t i = 0; i < ELEMENTSOF(order) && n < want; i++)
                for (const AcdCall *c = a->call_first; c && n < want; c = c->next)
                        if (c->state == order[i] && pos++ >= offset)
                                call_info(a, c, now, &l[n++]);
        assert(n == want);
        *ret = l;
        *ret_n = n;
        return 0;
}

int acd_list_calls(const AcdState *a, usec_t now, AcdCallInfo **ret, size_t *ret_n) {
        return acd_list_calls_page(a, now, 0, SIZE_MAX, ret, ret_n);
}

int acd_queue_get_stats(const AcdState *a, const char *queue, usec_t now, AcdQueueStats *ret) {
        const AcdQueue *q = queue_find(a, queue);
        const AcdCall *oldest;
        uint64_t offered;

        if (!q)
                return -ENXIO;
        now = now > a->now ? now : a->now;
        oldest = heap_peek(&q->waiting);
        offered = q->answered + q->abandoned;
        *ret = (AcdQueueStats) {
                .strategy = q->strategy,
                .members = q->n_members,
                .available = q->eligible.n,
                .waiting = q->waiting.n,
                .ringing = q->n_ringing,
                .talking = q->n_talking,
                .longest_wait = oldest ? usec_sub(now, oldest->arrived_at) : 0,
                .received = q->received,
                .answered = q->answered,
                .answered_within = q->answered_within,
                .abandoned = q->abandoned,
                .rejected = q->rejected,
                .ignored = q->ignored,
                .total_wait = q->total_wait,
                .average_wait = q->answered > 0 ? q->total_wait / q->answered : 0,
                .service_level = offered > 0 ? (double) q->answered_within / (double) offered : 1.0,
                .abandon_rate = offered > 0 ? (double) q->abandoned / (double) offered : 0.0,
        };
        return 0;
}

int acd_queue_add_counters(AcdState *a, const char *queue, const AcdQueueCounters *c) {
        AcdQueue *q = queue_find(a, queue);

        if (!q)
                return -ENXIO;
        q->received += c->received;
        q->answered += c->answered;
        q->answered_within += c->answered_within;
        q->abandoned += c->abandoned;
        q->rejected += c->rejected;
        q->ignored += c->ignored;
        q->total_wait = usec_add(q->total_wait, c->total_wait);
        return 0;
}

/* ---- recovery ---- */

int acd_restore_call(AcdState *a, const AcdCallRestore *r, usec_t now, AcdEvents *out) {
        AcdOperator *op = NULL;
        AcdQueue *q;
        AcdCall *c;
        int k;

        if (!r || !acd_id_is_valid(r->id) || r->state < 0 || r->state >= _ACD_CALL_STATE_MAX)
                return -EINVAL;
        q = queue_find(a, r->queue);
        if (!q)
                return -ENXIO;
        if (call_find(a, r->id))
                return -EEXIST;
        if (r->state == ACD_CALL_ANSWERED) {
                op = operator_find(a, r->operator);
                if (!op)
                        return -ENOENT;
                if (op->phase != PHASE_IDLE)
                        return -EBUSY;
        }

        k = call_new(a, r->id, q, &c);
        if (k < 0)
                return k;
        advance(a, now);
        c->arrived_at = r->arrived_at;

        if (op) {
                c->state = ACD_CALL_ANSWERED;
                c->op = op;
                c->answered_at = r->answered_at;
                q->n_talking++;
                operator_change(a, op, PHASE_BUSY, op->status, c, USEC_INFINITY, out);
        } else
                /* A call that was ringing when we died is offered again:
                 * the ring (and its timer) did not survive us. */
                call_enqueue(a, c);
        return 0;
}

void acd_restore_done(AcdState *a, usec_t now, AcdEvents *out) {
        advance(a, now);
        settle(a, out);
}

/* ---- the seed's message lines ---- */

int acd_event_format_message(const AcdEvent *e, char *buf, size_t size) {
        int r;

        switch (e->kind) {
        case ACD_EVENT_RECEIVED:
                r = snprintf(buf, size, "Call %s received", e->call);
                break;
        case ACD_EVENT_RINGING:
                r = snprintf(buf, size, "Call %s ringing for operator %s", e->call, e->operator);
                break;
        case ACD_EVENT_QUEUED:
                r = snprintf(buf, size, "Call %s waiting in queue", e->call);
                break;
        case ACD_EVENT_ANSWERED:
                r = snprintf(buf, size, "Call %s answered by operator %s", e->call, e->operator);
                break;
        case ACD_EVENT_REJECTED:
                r = snprintf(buf, size, "Call %s rejected by operator %s", e->call, e->operator);
                break;
        case ACD_EVENT_IGNORED:
                r = snprintf(buf, size, "Call %s ignored by operator %s", e->call, e->operator);
                break;
        case ACD_EVENT_FINISHED:
                r = snprintf(buf, size, "Call %s finished and operator %s available", e->call, e->operator);
                break;
        case ACD_EVENT_MISSED:
                r = snprintf(buf, size, "Call %s missed", e->call);
                break;
        case ACD_EVENT_OPERATOR_STATE:
                if (size > 0)
                        buf[0] = 0;
                return 0;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return -EINVAL;
        if ((size_t) r >= size)
                return -ENOBUFS;
        return r;
}

int acd_events_to_strv(const AcdEvents *ev, size_t from, char ***ret) {
        char **l;
        size_t n = 0;

        l = calloc((ev->n > from ? ev->n - from : 0) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = from; i < ev->n; i++) {
                char line[ACD_MESSAGE_MAX];
                int r = acd_event_format_message(&ev->events[i], line, sizeof(line));

                if (r <= 0)
                        continue;
                l[n] = strdup(line);
                if (!l[n]) {
                        strv_free(l);
                        return -ENOMEM;
                }
                n++;
        }
        *ret = l;
        return 0;
}
