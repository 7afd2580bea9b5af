/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "daemons/routerd/idmap.h"
#include "daemons/routerd/store.h"
#include "libshared/cleanup.h"
#include "libshared/daemon.h"
#include "libshared/log.h"
#include "libshared/time-util.h"

/* How long to wait before trying again when the database link refused a
 * batch (its buffer was full). */
#define STORE_RETRY_DELAY (10 * USEC_PER_MSEC)

/* A rough size of one rendered call row, to turn buffer_bytes into a bound
 * on ended records held in memory. */
#define STORE_ROW_ESTIMATE 320

typedef enum RecordState {
        RECORD_QUEUED,
        RECORD_RINGING,
        RECORD_ANSWERED,
        RECORD_FINISHED,
        RECORD_MISSED,
        _RECORD_STATE_MAX,
} RecordState;

static const char *const record_state_names[_RECORD_STATE_MAX] = {
        [RECORD_QUEUED] = "queued",
        [RECORD_RINGING] = "ringing",
        [RECORD_ANSWERED] = "answered",
        [RECORD_FINISHED] = "finished",
        [RECORD_MISSED] = "missed",
};

typedef struct CallRecord {
        uint64_t seq;
        char id[ACD_ID_MAX + 1];
        char queue[ACD_ID_MAX + 1];
        char operator[ACD_ID_MAX + 1];
        RecordState state;
        usec_t arrived, rang, answered, ended, waited; /* USEC_INFINITY = NULL */
        unsigned offers, rejects, ignores;
        bool live;
        bool dirty;
} CallRecord;

typedef struct OperatorRecord {
        char id[ACD_ID_MAX + 1];
        char *queues;                /* space-separated */
        int64_t position;
        AcdOperatorStatus status;
        bool removed;
        bool dirty;
} OperatorRecord;

typedef struct QueueRecord {
        char *name;
        AcdStrategy strategy;
} QueueRecord;

struct Store {
        sd_event *event;
        DbLink *db;
        sd_event_source *flush_post;     /* end of the loop iteration: group commit */
        sd_event_source *flush_timer;    /* retry after the link refused a batch */

        IdMap *live_calls;           /* id -> CallRecord*, live calls only */
        IdMap *operators;            /* id -> OperatorRecord*, all known */

        /* Records changed since the last flush, in order of first change.
         * Ended calls are owned here (no longer in live_calls) until
         * written. */
        CallRecord **dirty_calls;
        size_t n_dirty_calls, allocated_dirty_calls;
        size_t n_dirty_ended;
        OperatorRecord **dirty_operators;
        size_t n_dirty_operators, allocated_dirty_operators;
        QueueRecord *dirty_queues;
        size_t n_dirty_queues;

        uint64_t next_seq;
        int64_t next_position;
        size_t max_ended;
        /* Batches handed to the link and batches it finished, counted
         * from 1: they are the commit tickets (store.h). The link runs
         * jobs in order, so the n-th completion is batch n. */
        uint64_t submitted, done;
        StoreCommitHandler commit_cb;
        void *commit_userdata;
        bool loading;
        StoreLoadHandler load_cb;
        void *load_userdata;

        RateLimit drop_ratelimit;
        StoreStats stats;
};

/* --- SQL text helpers ----------------------------------------------------- */

static int buf_reserve(char **buf, size_t *len, size_t *alloc, size_t more) {
        if (*len + more + 1 > *alloc) {
                size_t n = *alloc ? *alloc : 256;
                char *b;

                while (n < *len + more + 1)
                        n *= 2;
                b = realloc(*buf, n);
                if (!b)
                        return -ENOMEM;
                *buf = b;
                *alloc = n;
        }
        return 0;
}

static int buf_append(char **buf, size_t *len, size_t *alloc, const char *s) {
        size_t n = strlen(s);

        if (buf_reserve(buf, len, alloc, n) < 0)
                return -ENOMEM;
        memcpy(*buf + *len, s, n + 1);
        *len += n;
        return 0;
}

static int buf_printf(char **buf, size_t *len, size_t *alloc, const char *fmt, ...) _printf_(4, 5);
static int buf_printf(char **buf, size_t *len, size_t *alloc, const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        if (buf_reserve(buf, len, alloc, (size_t) n) < 0)
                return -ENOMEM;
        va_start(ap, fmt);
        (void) vsnprintf(*buf + *len, (size_t) n + 1, fmt, ap);
        va_end(ap);
        *len += (size_t) n;
        return 0;
}

int store_sql_quote(char **buf, size_t *len, size_t *alloc, const char *s) {
        size_t n = strlen(s);

        /* E'' literals mean the same whatever standard_conforming_strings
         * says; ids are printable ASCII, so only \ and ' need escaping. */
        if (buf_reserve(buf, len, alloc, 2 * n + 3) < 0)
                return -ENOMEM;
        (*buf)[(*len)++] = 'E';
        (*buf)[(*len)++] = '\'';
        for (; *s; s++) {
                if (*s == '\\' || *s == '\'')
                        (*buf)[(*len)++] = *s;
                (*buf)[(*len)++] = *s;
        }
        (*buf)[(*len)++] = '\'';
        (*buf)[*len] = '\0';
        return 0;
}

/* --- records -------------------------------------------------------------- */

static int mark_call_dirty(Store *s, CallRecord *c) {
        if (c->dirty)
                return 0;
        if (s->n_dirty_calls >= s->allocated_dirty_calls) {
                size_t n = s->allocated_dirty_calls ? s->allocated_dirty_calls * 2 : 64;
                CallRecord **l = realloc(s->dirty_calls, n * sizeof(CallRecord *));

                if (!l)
                        return log_oom();
                s->dirty_calls = l;
                s->allocated_dirty_calls = n;
        }
        s->dirty_calls[s->n_dirty_calls++] = c;
        c->dirty = true;
        return 0;
}

static int mark_operator_dirty(Store *s, OperatorRecord *o) {
        if (o->dirty)
                return 0;
        if (s->n_dirty_operators >= s->allocated_dirty_operators) {
                size_t n = s->allocated_dirty_operators ? s->allocated_dirty_operators * 2 : 16;
                OperatorRecord **l = realloc(s->dirty_operators, n * sizeof(OperatorRecord *));

                if (!l)
                        return log_oom();
                s->dirty_operators = l;
                s->allocated_dirty_operators = n;
        }
        s->dirty_operators[s->n_dirty_operators++] = o;
        o->dirty = true;
        return 0;
}

static void schedule_flush(Store *s);
static void schedule_retry(Store *s);

/* An ended call leaves the live map; it stays in the dirty list, which now
 * owns it, until its final row is written. Past the bound the oldest ended
 * record goes: a database that stays away must not take all our memory,
 * and the live state (what a restart needs) is never among the dropped. */
static void call_end(Store *s, CallRecord *c) {
        (void) idmap_remove(s->live_calls, c->id);
        c->live = false;
        if (mark_call_dirty(s, c) < 0) {
                free(c);
                return;
        }
        s->n_dirty_ended++;

        if (s->n_dirty_ended > s->max_ended) {
                for (size_t i = 0; i < s->n_dirty_calls; i++) {
                        CallRecord *old = s->dirty_calls[i];

                        if (old->live)
                                continue;
                        memmove(s->dirty_calls + i, s->dirty_calls + i + 1,
                                (s->n_dirty_calls - i - 1) * sizeof(CallRecord *));
                        s->n_dirty_calls--;
                        s->n_dirty_ended--;
                        s->stats.dropped++;
                        if (ratelimit_below(&s->drop_ratelimit))
                                log_warning("Database is not keeping up: dropped the record of call %s "
                                            "(%" PRIu64 " dropped so far), continuing.",
                                            old->id, s->stats.dropped);
                        free(old);
                        break;
                }
        }
}

static CallRecord *call_get(Store *s, const char *id) {
        return idmap_get(s->live_calls, id);
}

static void copy_id(char dst[static ACD_ID_MAX + 1], const char *src) {
        size_t n = strnlen(src, ACD_ID_MAX);

        memcpy(dst, src, n);
        dst[n] = '\0';
}

/* Fold one outcome record into the call's record. A call's record is
 * keyed by its seq, not its id: an id can come back after the call ended,
 * possibly within one flush window, and both records must be written. */
static void apply_one(Store *s, const AcdEvent *e) {
        CallRecord *c;

        if (e->kind == ACD_EVENT_OPERATOR_STATE) {
                OperatorRecord *o = idmap_get(s->operators, e->operator);

                /* Only the status is durable; what the operator is doing
                 * follows from the calls. */
                if (o && !o->removed && o->status != e->status) {
                        o->status = e->status;
                        (void) mark_operator_dirty(s, o);
                }
                return;
        }

        if (e->kind == ACD_EVENT_RECEIVED) {
                c = calloc(1, sizeof *c);
                if (!c) {
                        (void) log_oom();
                        return;
                }
                c->seq = s->next_seq++;
                copy_id(c->id, e->call);
                copy_id(c->queue, e->queue);
                c->state = RECORD_QUEUED;
                c->arrived = e->time;
                c->rang = c->answered = c->ended = c->waited = USEC_INFINITY;
                c->live = true;
                if (idmap_put(s->live_calls, c->id, c) < 0) {
                        free(c);
                        (void) log_oom();
                        return;
                }
                (void) mark_call_dirty(s, c);
                return;
        }

        c = call_get(s, e->call);
        if (!c) {
                log_debug("No record of call %s for a %s event, ignoring.", e->call,
                          acd_event_kind_to_string(e->kind));
                return;
        }

        switch (e->kind) {
        case ACD_EVENT_RINGING:
                c->state = RECORD_RINGING;
                copy_id(c->operator, e->operator);
                if (c->rang == USEC_INFINITY)
                        c->rang = e->time;
                c->offers++;
                break;
        case ACD_EVENT_QUEUED:
                c->state = RECORD_QUEUED;
                break;
        case ACD_EVENT_ANSWERED:
                c->state = RECORD_ANSWERED;
                copy_id(c->operator, e->operator);
                c->answered = e->time;
                c->waited = e->waited;
                break;
        case ACD_EVENT_REJECTED:
                c->rejects++;
                break;
        case ACD_EVENT_IGNORED:
                c->ignores++;
                break;
        case ACD_EVENT_FINISHED:
        case ACD_EVENT_MISSED:
                c->state = e->kind == ACD_EVENT_FINISHED ? RECORD_FINISHED : RECORD_MISSED;
                if (e->operator[0])
                        copy_id(c->operator, e->operator);
                c->ended = e->time;
                if (e->kind == ACD_EVENT_MISSED || c->waited == USEC_INFINITY)
                        c->waited = e->waited;
                call_end(s, c);
                return;
        default:
                return;
        }
        (void) mark_call_dirty(s, c);
}

void store_apply_events(Store *s, const AcdEvents *ev, size_t from) {
        if (!store_enabled(s) || !ev)
                return;
        for (size_t i = from; i < ev->n; i++)
                apply_one(s, &ev->events[i]);
        schedule_flush(s);
}

static char *strv_join_words(const char *const *l) {
        size_t len = 0, alloc = 0;
        char *buf = NULL;

        if (!l || !*l)
                return strdup(ACD_DEFAULT_QUEUE);
        for (; *l; l++)
                if ((len > 0 && buf_append(&buf, &len, &alloc, " ") < 0) ||
                    buf_append(&buf, &len, &alloc, *l) < 0) {
                        free(buf);
                        return NULL;
                }
        return buf;
}

int store_operator_added(Store *s, const char *id, const char *const *queues, AcdOperatorStatus status) {
        OperatorRecord *o;
        char *q;

        if (!store_enabled(s))
                return 0;
        q = strv_join_words(queues);
        if (!q)
                return log_oom();

        o = idmap_get(s->operators, id);
        if (!o) {
                o = calloc(1, sizeof *o);
                if (!o) {
                        free(q);
                        return log_oom();
                }
                copy_id(o->id, id);
                if (idmap_put(s->operators, o->id, o) < 0) {
                        free(o);
                        free(q);
                        return log_oom();
                }
        }
        /* A (re-)added operator goes to the end of the configured order. */
        free(o->queues);
        o->queues = q;
        o->position = s->next_position++;
        o->status = status;
        o->removed = false;
        (void) mark_operator_dirty(s, o);
        schedule_flush(s);
        return 0;
}

void store_operator_removed(Store *s, const char *id) {
        OperatorRecord *o;

        if (!store_enabled(s))
                return;
        o = idmap_get(s->operators, id);
        if (!o || o->removed)
                return;
        o->removed = true;
        (void) mark_operator_dirty(s, o);
        schedule_flush(s);
}

int store_queue_configured(Store *s, const char *name, AcdStrategy strategy) {
        QueueRecord *l;

        if (!store_enabled(s))
                return 0;
        /* One row per queue and batch: the upsert cannot change a row
         * twice in one statement, and would fail the whole batch (a reload
         * while PostgreSQL is away, or "default" listed in [router]
         * queues, names a queue again). The last strategy wins. */
        for (size_t i = 0; i < s->n_dirty_queues; i++)
                if (strcmp(s->dirty_queues[i].name, name) == 0) {
                        s->dirty_queues[i].strategy = strategy;
                        return 0;
                }
        l = realloc(s->dirty_queues, (s->n_dirty_queues + 1) * sizeof(QueueRecord));
        if (!l)
                return log_oom();
        s->dirty_queues = l;
        l[s->n_dirty_queues].name = strdup(name);
        if (!l[s->n_dirty_queues].name)
                return log_oom();
        l[s->n_dirty_queues++].strategy = strategy;
        schedule_flush(s);
        return 0;
}

void store_call_sync(Store *s, const char *id, AcdCallState state, const char *operator) {
        CallRecord *c;
        RecordState rs;

        if (!store_enabled(s))
                return;
        c = call_get(s, id);
        if (!c)
                return;
        rs = state == ACD_CALL_RINGING ? RECORD_RINGING :
             state == ACD_CALL_ANSWERED ? RECORD_ANSWERED : RECORD_QUEUED;
        if (c->state == rs && strcmp(c->operator, operator ? operator : "") == 0)
                return;
        c->state = rs;
        if (operator)
                copy_id(c->operator, operator);
        (void) mark_call_dirty(s, c);
        schedule_flush(s);
}

void store_call_abandon(Store *s, const char *id, usec_t now) {
        CallRecord *c;

        if (!store_enabled(s))
                return;
        c = call_get(s, id);
        if (!c)
                return;
        c->state = RECORD_MISSED;
        c->ended = now;
        c->waited = now > c->arrived ? now - c->arrived : 0;
        call_end(s, c);
        schedule_flush(s);
}

/* --- flushing ------------------------------------------------------------- */

/* COPY text rows of the call tables go through db_copy_escape()/_append();
 * numbers are formatted by hand (no vsnprintf(): this runs for every
 * changed call, thousands of times a second under load). */
static int copy_u64(char **buf, size_t *len, size_t *alloc, uint64_t v) {
        char digits[20], *p = digits + sizeof digits;

        do {
                *--p = (char) ('0' + v % 10);
                v /= 10;
        } while (v > 0);
        return db_copy_append(buf, len, alloc, p, (size_t) (digits + sizeof digits - p));
}

static int copy_text(char **buf, size_t *len, size_t *alloc, const char *s) {
        /* "" is SQL NULL, as in the INSERT text before (no operator yet). */
        if (!s || !*s)
                return db_copy_escape(buf, len, alloc, NULL, 0);
        return db_copy_escape(buf, len, alloc, s, strlen(s));
}

/* A time as an RFC 3339 literal with microseconds: exact, unlike
 * to_timestamp() on a double, so that the arrival order read back at a
 * restart is the order we had. */
static int copy_time(char **buf, size_t *len, size_t *alloc, usec_t t) {
        char ts[RFC3339_MAX];

        if (t == USEC_INFINITY)
                return db_copy_escape(buf, len, alloc, NULL, 0);
        return copy_text(buf, len, alloc, format_timestamp_rfc3339(ts, t));
}

/* One COPY row of the staging table, columns in STORE_CALL_COLUMNS order. */
static int render_call(char **buf, size_t *len, size_t *alloc, const CallRecord *c) {
        int r;

#define TAB() (r >= 0 ? (r = db_copy_append(buf, len, alloc, "\t", 1)) : r)
        r = copy_u64(buf, len, alloc, c->seq);
        if (TAB() >= 0)
                r = copy_text(buf, len, alloc, c->id);
        if (TAB() >= 0)
                r = copy_text(buf, len, alloc, c->queue[0] ? c->queue : ACD_DEFAULT_QUEUE);
        if (TAB() >= 0)
                r = copy_text(buf, len, alloc, record_state_names[c->state]);
        if (TAB() >= 0)
                r = copy_text(buf, len, alloc, c->operator);
        if (TAB() >= 0)
                r = copy_time(buf, len, alloc, c->arrived);
        if (TAB() >= 0)
                r = copy_time(buf, len, alloc, c->rang);
        if (TAB() >= 0)
                r = copy_time(buf, len, alloc, c->answered);
        if (TAB() >= 0)
                r = copy_time(buf, len, alloc, c->ended);
        if (TAB() >= 0)
                r = copy_text(buf, len, alloc,
                              c->live ? NULL : c->state == RECORD_FINISHED ? "finished" : "missed");
        if (TAB() >= 0) {
                if (c->waited == USEC_INFINITY)
                        r = db_copy_escape(buf, len, alloc, NULL, 0);
                else {
                        /* interval input takes "<n> microseconds": exact */
                        r = copy_u64(buf, len, alloc, c->waited);
                        if (r >= 0)
                                r = db_copy_append(buf, len, alloc, " microseconds", 13);
                }
        }
        if (TAB() >= 0)
                r = copy_u64(buf, len, alloc, c->offers);
        if (TAB() >= 0)
                r = copy_u64(buf, len, alloc, c->rejects);
        if (TAB() >= 0)
                r = copy_u64(buf, len, alloc, c->ignores);
        if (r >= 0)
                r = db_copy_append(buf, len, alloc, "\n", 1);
#undef TAB
        return r;
}

static int render_operator(char **buf, size_t *len, size_t *alloc, const OperatorRecord *o) {
        int r;

        r = buf_append(buf, len, alloc, "(");
        if (r >= 0)
                r = store_sql_quote(buf, len, alloc, o->id);
        if (r >= 0)
                r = buf_printf(buf, len, alloc, ",%" PRId64 ",'%s',", o->position,
                               acd_operator_status_to_string(o->status));
        if (r >= 0)
                r = store_sql_quote(buf, len, alloc, o->queues ? o->queues : ACD_DEFAULT_QUEUE);
        if (r >= 0)
                r = buf_printf(buf, len, alloc, ",%s,now())", o->removed ? "true" : "false");
        return r;
}

/* Render the dirty set: *ret_sql the upserts of queues and operators
 * (rare; NULL when there are none), *ret_copy the COPY text rows of the
 * calls (NULL when there are none). flush() sends them as one job, which
 * PostgreSQL runs as one transaction: a batch lands whole or not at all. */
static int render_batch(Store *s, char **ret_sql, char **ret_copy, size_t *ret_copy_len, size_t *ret_rows) {
        _cleanup_(freep) char *buf = NULL, *copy = NULL;
        size_t len = 0, alloc = 0, copy_len = 0, copy_alloc = 0, rows = 0;
        int r = 0;

        if (s->n_dirty_queues > 0) {
                r = buf_append(&buf, &len, &alloc, "INSERT INTO router_queues (name, strategy) VALUES ");
                for (size_t i = 0; r >= 0 && i < s->n_dirty_queues; i++) {
                        if (i > 0)
                                r = buf_append(&buf, &len, &alloc, ",");
                        if (r >= 0)
                                r = buf_append(&buf, &len, &alloc, "(");
                        if (r >= 0)
                                r = store_sql_quote(&buf, &len, &alloc, s->dirty_queues[i].name);
                        if (r >= 0)
                                r = buf_printf(&buf, &len, &alloc, ",'%s')",
                                               acd_strategy_to_string(s->dirty_queues[i].strategy));
                }
                if (r >= 0)
                        r = buf_append(&buf, &len, &alloc,
                                       " ON CONFLICT (name) DO UPDATE SET strategy = EXCLUDED.strategy,"
                                       " updated = now();\n");
                rows += s->n_dirty_queues;
        }

        if (r >= 0 && s->n_dirty_operators > 0) {
                r = buf_append(&buf, &len, &alloc,
                               "INSERT INTO router_operators (id, position, status, queues, removed, updated) VALUES ");
                for (size_t i = 0; r >= 0 && i < s->n_dirty_operators; i++) {
                        if (i > 0)
                                r = buf_append(&buf, &len, &alloc, ",");
                        if (r >= 0)
                                r = render_operator(&buf, &len, &alloc, s->dirty_operators[i]);
                }
                if (r >= 0)
                        r = buf_append(&buf, &len, &alloc,
                                       " ON CONFLICT (id) DO UPDATE SET position = EXCLUDED.position,"
                                       " status = EXCLUDED.status, queues = EXCLUDED.queues,"
                                       " removed = EXCLUDED.removed, updated = EXCLUDED.updated;\n");
                rows += s->n_dirty_operators;
        }

        /* The calls go as COPY data (see flush()). One row per record: the
         * dirty set holds each record once, as ON CONFLICT DO UPDATE
         * requires within one statement, and in its latest state (a call
         * placed and ended within one batch is one ended row). */
        for (size_t i = 0; r >= 0 && i < s->n_dirty_calls; i++)
                r = render_call(&copy, &copy_len, &copy_alloc, s->dirty_calls[i]);
        rows += s->n_dirty_calls;
        if (r < 0)
                return r;

        *ret_sql = TAKE_PTR(buf);
        *ret_copy = TAKE_PTR(copy);
        *ret_copy_len = copy_len;
        *ret_rows = rows;
        return 0;
}

/* The dirty set was rendered: forget it, freeing ended records. */
static void clear_dirty(Store *s) {
        for (size_t i = 0; i < s->n_dirty_calls; i++) {
                CallRecord *c = s->dirty_calls[i];

                c->dirty = false;
                if (!c->live)
                        free(c);
        }
        s->n_dirty_calls = 0;
        s->n_dirty_ended = 0;
        for (size_t i = 0; i < s->n_dirty_operators; i++)
                s->dirty_operators[i]->dirty = false;
        s->n_dirty_operators = 0;
        for (size_t i = 0; i < s->n_dirty_queues; i++)
                free(s->dirty_queues[i].name);
        s->n_dirty_queues = 0;
}

static bool have_dirty(const Store *s) {
        return s->n_dirty_calls > 0 || s->n_dirty_operators > 0 || s->n_dirty_queues > 0;
}

static int flush(Store *s, bool force);

static void on_flush_done(DbLink *l, int error, PGresult *result, void *userdata) {
        Store *s = userdata;

        s->done++;
        if (error < 0) {
                s->stats.failed++;
                /* An SQL error is not retried by the link (it would fail
                 * again); the records it held are lost, which is logged.
                 * The replies waiting for this batch are released all the
                 * same: holding them would stop every client for good. */
                if (error != -ECANCELED)
                        log_warning_errno(error, "Writing router state to PostgreSQL failed, continuing: %m");
        }
        /* What changed while this job ran goes out now, as one batch:
         * under load each batch carries everything that arrived during
         * the previous one (group commit), and a call placed, answered
         * and ended within it costs one row. */
        if (have_dirty(s))
                (void) flush(s, false);
        if (s->commit_cb)
                s->commit_cb(s, s->done, s->commit_userdata);
}

/*
 * The calls of a batch go through COPY into a staging table, then three
 * fixed statements merge them (sql/004-router-live.sql): the ended calls
 * become records, their live rows go, and the calls still live are
 * upserted into router_live_calls. PostgreSQL parses and plans a few
 * short fixed statements per batch instead of a multi-row VALUES list as
 * long as the batch (11-16 us a row of backend time), and a call placed
 * and ended within a batch costs one insert.
 *
 * The staging table is per session, created at a connection's first batch
 * and emptied by every COMMIT (ON COMMIT DELETE ROWS), so a batch that the
 * link runs again after a lost connection finds it empty (or creates it)
 * and merges the same rows again: keyed by seq, the records' insert skips
 * what is there, the delete finds nothing and the upsert writes the same
 * values, so the rerun changes nothing. LIKE takes the columns and types of
 * the records, so the text rows are parsed exactly as an INSERT would parse
 * them; the CHECK constraints apply at the merge.
 */
#define STORE_CALL_COLUMNS \
        "seq, call, queue, state, operator, arrived, rang, answered, ended, outcome, waited, offers, rejects, ignores"

static const char store_stage_sql[] =
        "CREATE TEMP TABLE IF NOT EXISTS router_calls_stage (LIKE router_call_records) ON COMMIT DELETE ROWS";

static const char store_copy_sql[] = "COPY router_calls_stage (" STORE_CALL_COLUMNS ") FROM STDIN";

static const char store_merge_sql[] =
        "INSERT INTO router_call_records (" STORE_CALL_COLUMNS ")"
        " SELECT " STORE_CALL_COLUMNS " FROM router_calls_stage WHERE ended IS NOT NULL"
        " ON CONFLICT (seq) DO NOTHING;\n"
        "DELETE FROM router_live_calls WHERE seq = ANY (ARRAY("
        "SELECT seq FROM router_calls_stage WHERE ended IS NOT NULL));\n"
        "INSERT INTO router_live_calls (" STORE_CALL_COLUMNS ")"
        " SELECT " STORE_CALL_COLUMNS " FROM router_calls_stage WHERE ended IS NULL"
        " ON CONFLICT (seq) DO UPDATE SET state = EXCLUDED.state,"
        " operator = EXCLUDED.operator, rang = EXCLUDED.rang,"
        " answered = EXCLUDED.answered, waited = EXCLUDED.waited, offers = EXCLUDED.offers,"
        " rejects = EXCLUDED.rejects, ignores = EXCLUDED.ignores";

static int flush(Store *s, bool force) {
        _cleanup_(freep) char *sql = NULL, *pre = NULL;
        char *copy = NULL;
        size_t copy_len = 0, rows = 0;
        int r;

        if (!store_enabled(s) || !have_dirty(s) || s->loading)
                return 0;
        if (s->submitted > s->done && !force)
                return 0;

        r = render_batch(s, &sql, &copy, &copy_len, &rows);
        if (r < 0)
                return log_oom();

        if (copy) {
                /* Queues and operators first, as before; they are in the
                 * same transaction as the calls. */
                if (asprintf(&pre, "%s%s%s", sql ?: "", sql ? "\n" : "", store_stage_sql) < 0) {
                        free(copy);
                        return log_oom();
                }
                /* The link takes copy over whatever it returns. */
                r = db_link_copy(s->db, pre, store_copy_sql, copy, copy_len, store_merge_sql,
                                 on_flush_done, s);
        } else
                r = db_link_exec(s->db, sql, on_flush_done, s);
        if (r < 0) {
                /* -ENOBUFS: the link's buffer is full. The dirty set keeps
                 * the current state, so nothing is lost: try again later. */
                log_debug_errno(r, "Could not queue a flush of %zu rows, retrying: %m", rows);
                schedule_retry(s);
                return r;
        }
        s->submitted++;
        s->stats.flushes++;
        s->stats.rows += rows;
        clear_dirty(s);
        return 0;
}

/* Once per loop iteration that changed something: every request handled
 * in it shares one batch. With a batch running, the next one waits for its
 * end (one job at a time keeps the rows in order): on_flush_done() sends
 * it then. */
static int on_flush_post(sd_event_source *src, void *userdata) {
        (void) flush(userdata, false);
        return 0;
}

static int on_flush_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        (void) flush(userdata, false);
        return 0;
}

static void schedule_flush(Store *s) {
        if (!store_enabled(s) || !have_dirty(s) || !s->flush_post)
                return;
        (void) sd_event_source_set_enabled(s->flush_post, SD_EVENT_ONESHOT);
}

static void schedule_retry(Store *s) {
        int enabled = SD_EVENT_OFF;
        usec_t now;

        if (!s->flush_timer)
                return;
        (void) sd_event_source_get_enabled(s->flush_timer, &enabled);
        if (enabled != SD_EVENT_OFF)
                return;
        if (sd_event_now(s->event, CLOCK_MONOTONIC, &now) < 0)
                now = now_usec(CLOCK_MONOTONIC);
        (void) sd_event_source_set_time(s->flush_timer, now + STORE_RETRY_DELAY);
        (void) sd_event_source_set_enabled(s->flush_timer, SD_EVENT_ONESHOT);
}

int store_flush_now(Store *s) {
        return flush(s, true);
}

int store_drain(Store *s, usec_t timeout) {
        int r;

        if (!store_enabled(s))
                return 0;
        r = flush(s, true);
        if (r < 0 && r != -ENOBUFS)
                return r;
        return db_link_drain(s->db, timeout);
}

/* --- loading -------------------------------------------------------------- */

/*
 * One query, so that one job brings everything: kind 'o' rows are operators
 * in position order, 'c' rows live calls in arrival order (seq breaks ties),
 * and one 's' row the next record number and position. Times come back as
 * integer microseconds; column f is "ANSWERED RANG", each "-" when NULL.
 */
#define USEC_OF(col) "((extract(epoch FROM " col ") * 1000000)::bigint)"
static const char store_load_sql[] =
        "SELECT kind, a, b, c, d, e, f FROM ("
        " SELECT 1 AS ord, position AS k1, 0::bigint AS k2, 'o' AS kind, id AS a, status AS b,"
        "  queues AS c, removed::text AS d, position::text AS e, NULL::text AS f FROM router_operators"
        " UNION ALL"
        " SELECT 2, " USEC_OF("arrived") ", seq, 'c', call, queue, state, operator,"
        "  " USEC_OF("arrived") "::text || ' ' || seq::text || ' ' || offers || ' ' || rejects || ' ' || ignores,"
        "  coalesce(" USEC_OF("answered") "::text, '-') || ' ' || coalesce(" USEC_OF("rang") "::text, '-')"
        "  FROM router_live_calls"
        " UNION ALL"
        " SELECT 3, 0, 0, 's', (SELECT coalesce(greatest((SELECT max(seq) FROM router_call_records),"
        "   (SELECT max(seq) FROM router_live_calls)), 0) + 1)::text,"
        "  (SELECT coalesce(max(position), 0) + 1 FROM router_operators)::text, NULL, NULL, NULL, NULL"
        ") x ORDER BY ord, k1, k2";

void store_snapshot_done(StoreSnapshot *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n_operators; i++) {
                free(s->operators[i].id);
                strv_free(s->operators[i].queues);
        }
        free(s->operators);
        for (size_t i = 0; i < s->n_calls; i++) {
                free(s->calls[i].id);
                free(s->calls[i].queue);
                free(s->calls[i].operator);
        }
        free(s->calls);
        *s = (StoreSnapshot) {};
}

static char **split_words(const char *s) {
        char **l;
        size_t n = 0;

        l = calloc(1, sizeof(char *));
        while (l && *s) {
                size_t w;
                char **k;

                s += strspn(s, " ");
                w = strcspn(s, " ");
                if (w == 0)
                        break;
                k = realloc(l, (n + 2) * sizeof(char *));
                if (!k)
                        return strv_free(l);
                l = k;
                l[n] = strndup(s, w);
                if (!l[n])
                        return strv_free(l);
                l[++n] = NULL;
                s += w;
        }
        return l;
}

/* "-" (NULL) gives USEC_INFINITY. */
static int parse_usec_field(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (strcmp(s, "-") == 0) {
                *ret = USEC_INFINITY;
                return 0;
        }
        if (!*s || *s == '-')
                return -EBADMSG;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end != '\0')
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int parse_operator_row(PGresult *res, int row, StoreOperatorRow *ret) {
        const char *id = PQgetvalue(res, row, 1);
        AcdOperatorStatus status = acd_operator_status_from_string(PQgetvalue(res, row, 2));

        if (!acd_id_is_valid(id) || status < 0)
                return -EBADMSG;
        ret->id = strdup(id);
        ret->queues = split_words(PQgetvalue(res, row, 3));
        if (!ret->id || !ret->queues)
                return -ENOMEM;
        if (!ret->queues[0])
                return -EBADMSG;
        ret->status = status;
        ret->removed = strcmp(PQgetvalue(res, row, 4), "true") == 0;
        return 0;
}

/* Parse a live call row and create its record, so that the events of the
 * restore update it. */
static int parse_call_row(Store *s, PGresult *res, int row, StoreCallRow *ret) {
        const char *id = PQgetvalue(res, row, 1), *queue = PQgetvalue(res, row, 2);
        const char *state = PQgetvalue(res, row, 3), *op = PQgetvalue(res, row, 4);
        unsigned long long arrived, seq;
        unsigned offers, rejects, ignores;
        char a[32], g[32];
        uint64_t answered, rang;
        CallRecord *c;

        if (!acd_id_is_valid(id) || !acd_id_is_valid(queue))
                return -EBADMSG;
        if (sscanf(PQgetvalue(res, row, 5), "%llu %llu %u %u %u", &arrived, &seq, &offers, &rejects,
                   &ignores) != 5)
                return -EBADMSG;
        if (sscanf(PQgetvalue(res, row, 6), "%31s %31s", a, g) != 2 ||
            parse_usec_field(a, &answered) < 0 || parse_usec_field(g, &rang) < 0)
                return -EBADMSG;

        ret->state = acd_call_state_from_string(state);
        if (ret->state < 0)
                return -EBADMSG;
        if (ret->state == ACD_CALL_ANSWERED && (answered == USEC_INFINITY || !acd_id_is_valid(op)))
                return -EBADMSG;

        ret->id = strdup(id);
        ret->queue = strdup(queue);
        ret->operator = strdup(ret->state == ACD_CALL_ANSWERED ? op : "");
        if (!ret->id || !ret->queue || !ret->operator)
                return -ENOMEM;
        ret->arrived = arrived;
        ret->answered = ret->state == ACD_CALL_ANSWERED ? answered : USEC_INFINITY;

        if (idmap_get(s->live_calls, id))
                /* Two live rows for one id: keep the older; the newer is a
                 * leftover that cannot be restored. */
                return -EEXIST;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->seq = seq;
        copy_id(c->id, id);
        copy_id(c->queue, queue);
        copy_id(c->operator, op);
        c->state = ret->state == ACD_CALL_ANSWERED ? RECORD_ANSWERED :
                   ret->state == ACD_CALL_RINGING ? RECORD_RINGING : RECORD_QUEUED;
        c->arrived = arrived;
        c->answered = ret->answered;
        c->rang = rang;
        c->ended = USEC_INFINITY;
        c->waited = ret->answered != USEC_INFINITY && ret->answered >= arrived ?
                    ret->answered - arrived : USEC_INFINITY;
        c->offers = offers;
        c->rejects = rejects;
        c->ignores = ignores;
        c->live = true;
        if (idmap_put(s->live_calls, c->id, c) < 0) {
                free(c);
                return -ENOMEM;
        }
        return 0;
}

static int parse_load(Store *s, PGresult *res, StoreSnapshot *snap) {
        int rows = PQntuples(res), r;

        if (PQnfields(res) != 7)
                return -EBADMSG;

        snap->operators = calloc(rows > 0 ? rows : 1, sizeof(StoreOperatorRow));
        snap->calls = calloc(rows > 0 ? rows : 1, sizeof(StoreCallRow));
        if (!snap->operators || !snap->calls)
                return -ENOMEM;

        for (int i = 0; i < rows; i++) {
                const char *kind = PQgetvalue(res, i, 0);

                if (kind[0] == 'o') {
                        StoreOperatorRow *o = &snap->operators[snap->n_operators];
                        OperatorRecord *rec;

                        r = parse_operator_row(res, i, o);
                        if (r == -EBADMSG) {
                                log_warning("Ignoring a malformed router_operators row (id \"%s\").",
                                            PQgetvalue(res, i, 1));
                                free(o->id);
                                strv_free(o->queues);
                                *o = (StoreOperatorRow) {};
                                continue;
                        }
                        snap->n_operators++;
                        if (r < 0)
                                return r;

                        rec = calloc(1, sizeof *rec);
                        if (!rec)
                                return -ENOMEM;
                        copy_id(rec->id, o->id);
                        rec->queues = strdup(PQgetvalue(res, i, 3));
                        rec->status = o->status;
                        rec->removed = o->removed;
                        rec->position = strtoll(PQgetvalue(res, i, 5), NULL, 10);
                        if (!rec->queues || idmap_put(s->operators, rec->id, rec) < 0) {
                                free(rec->queues);
                                free(rec);
                                return -ENOMEM;
                        }
                } else if (kind[0] == 'c') {
                        StoreCallRow *c = &snap->calls[snap->n_calls];

                        r = parse_call_row(s, res, i, c);
                        if (r == -EBADMSG || r == -EEXIST) {
                                log_warning("Ignoring a %s live call row (call \"%s\").",
                                            r == -EEXIST ? "duplicate" : "malformed", PQgetvalue(res, i, 1));
                                free(c->id);
                                free(c->queue);
                                free(c->operator);
                                *c = (StoreCallRow) {};
                                continue;
                        }
                        snap->n_calls++;
                        if (r < 0)
                                return r;
                } else if (kind[0] == 's') {
                        uint64_t seq, pos;

                        if (parse_usec_field(PQgetvalue(res, i, 1), &seq) < 0 ||
                            parse_usec_field(PQgetvalue(res, i, 2), &pos) < 0)
                                return -EBADMSG;
                        s->next_seq = seq;
                        s->next_position = (int64_t) pos;
                }
        }
        return 0;
}

static void on_load_done(DbLink *l, int error, PGresult *result, void *userdata) {
        Store *s = userdata;
        StoreSnapshot snap = {};
        int r = error;

        s->loading = false;
        if (r >= 0) {
                r = parse_load(s, result, &snap);
                if (r == -ENOMEM)
                        (void) log_oom();
                else if (r < 0)
                        log_error_errno(r, "Unexpected result loading the router state.");
        }
        if (s->load_cb)
                s->load_cb(s, r, r >= 0 ? &snap : NULL, s->load_userdata);
        store_snapshot_done(&snap);
        /* Changes made while loading (the configured queues) go out now. */
        schedule_flush(s);
}

int store_load(Store *s, StoreLoadHandler cb, void *userdata) {
        int r;

        if (!store_enabled(s))
                return -EOPNOTSUPP;
        s->load_cb = cb;
        s->load_userdata = userdata;
        r = db_link_exec(s->db, store_load_sql, on_load_done, s);
        if (r < 0)
                return r;
        /* Nothing is written before the read: records created meanwhile
         * would otherwise take numbers the database already has. */
        s->loading = true;
        return 0;
}

/* --- lifecycle ------------------------------------------------------------ */

int store_new(Store **ret, sd_event *e, DbLink *db, uint64_t buffer_bytes) {
        Store *s;
        int r;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->db = db;
        s->next_seq = 1;
        s->next_position = 1;
        s->max_ended = buffer_bytes / STORE_ROW_ESTIMATE;
        if (s->max_ended < 1024)
                s->max_ended = 1024;
        s->drop_ratelimit = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 5 };

        if (idmap_new(&s->live_calls) < 0 || idmap_new(&s->operators) < 0) {
                store_free(s);
                return -ENOMEM;
        }
        if (db) {
                r = sd_event_add_time(e, &s->flush_timer, CLOCK_MONOTONIC, USEC_INFINITY,
                                      USEC_PER_MSEC, on_flush_timer, s);
                if (r >= 0)
                        r = daemon_add_deferred(e, &s->flush_post, on_flush_post, s, "store-flush");
                if (r < 0) {
                        store_free(s);
                        return r;
                }
                (void) sd_event_source_set_enabled(s->flush_timer, SD_EVENT_OFF);
                (void) sd_event_source_set_description(s->flush_timer, "store-retry");
        }
        *ret = s;
        return 0;
}

Store *store_free(Store *s) {
        size_t state = 0;
        void *v;

        if (!s)
                return NULL;
        clear_dirty(s);
        while (idmap_iterate(s->live_calls, &state, NULL, &v))
                free(v);
        state = 0;
        while (idmap_iterate(s->operators, &state, NULL, &v)) {
                OperatorRecord *o = v;

                free(o->queues);
                free(o);
        }
        idmap_free(s->live_calls);
        idmap_free(s->operators);
        free(s->dirty_calls);
        free(s->dirty_operators);
        free(s->dirty_queues);
        sd_event_source_disable_unref(s->flush_timer);
        sd_event_source_disable_unref(s->flush_post);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

bool store_is_idle(const Store *s) {
        return !store_enabled(s) || (!have_dirty(s) && s->submitted == s->done);
}

bool store_enabled(const Store *s) {
        return s && s->db;
}

void store_get_stats(const Store *s, StoreStats *ret) {
        *ret = s->stats;
        ret->dirty = s->n_dirty_calls + s->n_dirty_operators + s->n_dirty_queues;
        ret->in_flight = s->submitted > s->done;
}

void store_set_commit_handler(Store *s, StoreCommitHandler cb, void *userdata) {
        s->commit_cb = cb;
        s->commit_userdata = userdata;
}

uint64_t store_ticket(const Store *s) {
        if (!store_enabled(s))
                return 0;
        return have_dirty(s) ? s->submitted + 1 : s->submitted;
}

uint64_t store_committed(const Store *s) {
        return store_enabled(s) ? s->done : 0;
}
