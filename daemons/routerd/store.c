/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "daemons/routerd/idmap.h"
#include "daemons/routerd/record.h"
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
        StoreSnapshot load_snap;     /* filled by the load's jobs in turn */
        size_t load_step, load_steps;
        int load_error;

        RateLimit drop_ratelimit;
        StoreStats stats;
};

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

/* Fold one outcome record into the call's record (record_call_fold()). A
 * call's record is keyed by its seq, not its id: an id can come back after
 * the call ended, possibly within one flush window, and both records must
 * be written. */
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
                c = malloc(sizeof *c);
                if (!c) {
                        (void) log_oom();
                        return;
                }
                record_call_init(c, s->next_seq++, e);
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
        if (record_call_fold(c, e))
                call_end(s, c);
        else
                (void) mark_call_dirty(s, c);
}

void store_apply_events(Store *s, const AcdEvents *ev, size_t from) {
        if (!store_enabled(s) || !ev)
                return;
        for (size_t i = from; i < ev->n; i++)
                apply_one(s, &ev->events[i]);
        schedule_flush(s);
}

static char **queues_dup(const char *const *l) {
        static const char *const default_only[] = { ACD_DEFAULT_QUEUE, NULL };
        size_t n = 0;
        char **d;

        if (!l)
                l = default_only;
        while (l[n])
                n++;
        d = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; d && i < n; i++)
                if (!(d[i] = strdup(l[i])))
                        return strv_free(d);
        return d;
}

int store_operator_added(Store *s, const char *id, const char *const *queues, AcdOperatorStatus status) {
        OperatorRecord *o;
        char **q;

        if (!store_enabled(s))
                return 0;
        q = queues_dup(queues);
        if (!q)
                return log_oom();

        o = idmap_get(s->operators, id);
        if (!o) {
                o = calloc(1, sizeof *o);
                if (!o) {
                        strv_free(q);
                        return log_oom();
                }
                copy_id(o->id, id);
                if (idmap_put(s->operators, o->id, o) < 0) {
                        free(o);
                        strv_free(q);
                        return log_oom();
                }
        }
        /* A (re-)added operator goes to the end of the configured order,
         * with no queues set at run time. */
        strv_free(o->queues);
        o->queues = q;
        o->queues_set = false;
        o->position = s->next_position++;
        o->status = status;
        o->removed = false;
        (void) mark_operator_dirty(s, o);
        schedule_flush(s);
        return 0;
}

int store_operator_set_queues(Store *s, const char *id, const char *const *queues, bool queues_set) {
        static const char *const none[] = { NULL };
        OperatorRecord *o;
        char **q;

        if (!store_enabled(s))
                return 0;
        o = idmap_get(s->operators, id);
        if (!o || o->removed)
                return -ENOENT;
        /* Set at run time, an empty list (every queue) is kept as such. */
        q = queues_dup(queues_set && !queues ? none : queues);
        if (!q)
                return log_oom();
        strv_free(o->queues);
        o->queues = q;
        o->queues_set = queues_set;
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
        record_call_abandon(c, now);
        call_end(s, c);
        schedule_flush(s);
}

/* --- flushing ------------------------------------------------------------- */

/*
 * Render the dirty set: the two JSON parameters of record_upsert_sql
 * (*ret_queues, *ret_operators; both NULL when no queue or operator
 * changed: rare) and the COPY text rows of the calls (*ret_copy, NULL when
 * there are none). flush() sends them as (at most) two jobs, in that order.
 */
static int render_batch(Store *s, char **ret_queues, char **ret_operators, char **ret_copy,
                        size_t *ret_copy_len, size_t *ret_rows) {
        _cleanup_(freep) char *queues = NULL, *operators = NULL, *copy = NULL;
        size_t copy_len = 0, copy_alloc = 0;
        int r = 0;

        if (s->n_dirty_queues > 0 || s->n_dirty_operators > 0) {
                r = record_render_upsert(s->dirty_queues, s->n_dirty_queues, s->dirty_operators,
                                         s->n_dirty_operators, &queues, &operators);
                if (r < 0)
                        return r;
        }

        /* The calls go as COPY data (see flush()). One row per record: the
         * dirty set holds each record once, as ON CONFLICT DO UPDATE
         * requires within one statement, and in its latest state (a call
         * placed and ended within one batch is one ended row). */
        for (size_t i = 0; r >= 0 && i < s->n_dirty_calls; i++)
                r = record_call_render(&copy, &copy_len, &copy_alloc, s->dirty_calls[i]);
        if (r < 0)
                return r;

        *ret_queues = TAKE_PTR(queues);
        *ret_operators = TAKE_PTR(operators);
        *ret_copy = TAKE_PTR(copy);
        *ret_copy_len = copy_len;
        *ret_rows = s->n_dirty_queues + s->n_dirty_operators + s->n_dirty_calls;
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

/* The first job of a batch that also has calls: the batch is done with
 * its second (on_flush_done()); a failure here is counted and logged. */
static void on_upsert_done(DbLink *l, int error, PGresult *result, void *userdata) {
        Store *s = userdata;

        if (error < 0) {
                s->stats.failed++;
                if (error != -ECANCELED)
                        log_warning_errno(error, "Writing router operators and queues to PostgreSQL failed, "
                                          "continuing: %m");
        }
}

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
static const char store_stage_sql[] =
        "CREATE TEMP TABLE IF NOT EXISTS router_calls_stage (LIKE router_call_records) ON COMMIT DELETE ROWS";

static const char store_copy_sql[] = "COPY router_calls_stage (" RECORD_CALL_COLUMNS ") FROM STDIN";

static const char store_merge_sql[] =
        "INSERT INTO router_call_records (" RECORD_CALL_COLUMNS ")"
        " SELECT " RECORD_CALL_COLUMNS " FROM router_calls_stage WHERE ended IS NOT NULL"
        " ON CONFLICT (seq) DO NOTHING;\n"
        "DELETE FROM router_live_calls WHERE seq = ANY (ARRAY("
        "SELECT seq FROM router_calls_stage WHERE ended IS NOT NULL));\n"
        "INSERT INTO router_live_calls (" RECORD_CALL_COLUMNS ")"
        " SELECT " RECORD_CALL_COLUMNS " FROM router_calls_stage WHERE ended IS NULL"
        " ON CONFLICT (seq) DO UPDATE SET state = EXCLUDED.state,"
        " operator = EXCLUDED.operator, rang = EXCLUDED.rang,"
        " answered = EXCLUDED.answered, waited = EXCLUDED.waited, offers = EXCLUDED.offers,"
        " rejects = EXCLUDED.rejects, ignores = EXCLUDED.ignores";

static int flush(Store *s, bool force) {
        _cleanup_(freep) char *queues = NULL, *operators = NULL;
        char *copy = NULL;
        size_t copy_len = 0, rows = 0;
        int r = 0;

        if (!store_enabled(s) || !have_dirty(s) || s->loading)
                return 0;
        if (s->submitted > s->done && !force)
                return 0;

        r = render_batch(s, &queues, &operators, &copy, &copy_len, &rows);
        if (r < 0)
                return log_oom();

        /* Queues and operators first: one statement with parameters. The
         * link runs jobs in submission order, so the calls follow it, and
         * the batch is done when its last job is (on_flush_done()). */
        if (queues) {
                const char *params[] = { queues, operators };

                r = db_link_exec_params(s->db, record_upsert_sql, 2, params,
                                        copy ? on_upsert_done : on_flush_done, s);
        }
        if (r >= 0 && copy) {
                /* The link takes copy over whatever it returns. */
                r = db_link_copy(s->db, store_stage_sql, store_copy_sql, TAKE_PTR(copy), copy_len,
                                 store_merge_sql, on_flush_done, s);
        }
        free(copy);
        if (r < 0) {
                /* -ENOBUFS: the link's buffer is full. The dirty set keeps
                 * the current state, so nothing is lost: try again later
                 * (an upsert already queued is idempotent). */
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
 * The start reads four results, one job each, in this order (the link
 * runs them in submission order, and nothing is written while loading, so
 * they see one state): the operators in position order, the live calls in
 * arrival order (seq breaks ties), each queue's statistics counters, and
 * the next record number and position. Every value has its own column,
 * times as integer microseconds, an operator's queues as a JSON array.
 */
#define USEC_OF(col) "((extract(epoch FROM " col ") * 1000000)::bigint)"
static const char store_load_operators_sql[] =
        "SELECT id, status, to_json(queues)::text, removed, position, queues_set"
        " FROM router_operators ORDER BY position";
static const char store_load_calls_sql[] =
        "SELECT call, queue, state, operator, " USEC_OF("arrived") ", seq, offers, rejects, ignores, "
        USEC_OF("answered") ", " USEC_OF("rang") " FROM router_live_calls ORDER BY arrived, seq";
/* The ACD's counters (acd.c), from the records: ended calls were received
 * (live ones count again as they are restored), answered calls (live or
 * ended) answered, within $1 microseconds or not, missed ones abandoned.
 * The rates and the average are derived by the ACD, as for live calls. */
static const char store_load_counts_sql[] =
        "SELECT queue, count(*) FILTER (WHERE ended IS NOT NULL),"
        " count(*) FILTER (WHERE answered IS NOT NULL),"
        " count(*) FILTER (WHERE answered IS NOT NULL AND " USEC_OF("waited") " <= $1::bigint),"
        " count(*) FILTER (WHERE outcome = 'missed'),"
        " coalesce(sum(rejects), 0), coalesce(sum(ignores), 0),"
        " coalesce(sum(" USEC_OF("waited") ") FILTER (WHERE answered IS NOT NULL), 0)"
        " FROM router_calls GROUP BY queue ORDER BY queue";
static const char store_load_next_sql[] =
        "SELECT coalesce(greatest((SELECT max(seq) FROM router_call_records),"
        " (SELECT max(seq) FROM router_live_calls)), 0) + 1,"
        " (SELECT coalesce(max(position), 0) + 1 FROM router_operators)";

void store_snapshot_done(StoreSnapshot *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n_operators; i++)
                store_operator_row_done(&s->operators[i]);
        free(s->operators);
        for (size_t i = 0; i < s->n_calls; i++)
                store_call_row_done(&s->calls[i]);
        free(s->calls);
        for (size_t i = 0; i < s->n_queue_counts; i++)
                free(s->queue_counts[i].queue);
        free(s->queue_counts);
        *s = (StoreSnapshot) {};
}

/* Row i of res as C strings, NULL for SQL NULL (record.h's convention). */
static int row_values(PGresult *res, int row, int n, const char **v) {
        if (PQnfields(res) != n)
                return -EBADMSG;
        for (int j = 0; j < n; j++)
                v[j] = PQgetisnull(res, row, j) ? NULL : PQgetvalue(res, row, j);
        return 0;
}

static int parse_operators(Store *s, PGresult *res, StoreSnapshot *snap) {
        int rows = PQntuples(res), r;

        snap->operators = calloc(rows > 0 ? rows : 1, sizeof(StoreOperatorRow));
        if (!snap->operators)
                return -ENOMEM;
        for (int i = 0; i < rows; i++) {
                StoreOperatorRow *o = &snap->operators[snap->n_operators];
                const char *v[6];
                OperatorRecord *rec;
                int64_t position;

                r = row_values(res, i, 6, v);
                if (r >= 0)
                        r = record_parse_operator(v, o, &position);
                if (r == -EBADMSG) {
                        log_warning("Ignoring a malformed router_operators row (id \"%s\").",
                                    PQgetvalue(res, i, 0));
                        continue;
                }
                if (r < 0)
                        return r;
                snap->n_operators++;

                rec = calloc(1, sizeof *rec);
                if (!rec)
                        return -ENOMEM;
                copy_id(rec->id, o->id);
                rec->queues = queues_dup((const char *const *) o->queues);
                rec->queues_set = o->queues_set;
                rec->status = o->status;
                rec->removed = o->removed;
                rec->position = position;
                if (!rec->queues || idmap_put(s->operators, rec->id, rec) < 0) {
                        strv_free(rec->queues);
                        free(rec);
                        return -ENOMEM;
                }
        }
        return 0;
}

/* The live calls: the snapshot's rows, and the store's own records, so
 * that the events of the restore update them. */
static int parse_calls(Store *s, PGresult *res, StoreSnapshot *snap) {
        int rows = PQntuples(res), r;

        snap->calls = calloc(rows > 0 ? rows : 1, sizeof(StoreCallRow));
        if (!snap->calls)
                return -ENOMEM;
        for (int i = 0; i < rows; i++) {
                StoreCallRow *row = &snap->calls[snap->n_calls];
                const char *v[11];
                CallRecord *c;

                r = row_values(res, i, 11, v);
                if (r >= 0)
                        r = record_parse_call(v, row);
                if (r >= 0 && idmap_get(s->live_calls, row->id)) {
                        /* Two live rows for one id: keep the older; the
                         * newer is a leftover that cannot be restored. */
                        store_call_row_done(row);
                        r = -EEXIST;
                }
                if (r == -EBADMSG || r == -EEXIST) {
                        log_warning("Ignoring a %s live call row (call \"%s\").",
                                    r == -EEXIST ? "duplicate" : "malformed", PQgetvalue(res, i, 0));
                        continue;
                }
                if (r < 0)
                        return r;
                snap->n_calls++;

                c = calloc(1, sizeof *c);
                if (!c)
                        return -ENOMEM;
                c->seq = row->seq;
                copy_id(c->id, row->id);
                copy_id(c->queue, row->queue);
                copy_id(c->operator, row->operator);
                c->state = row->state == ACD_CALL_ANSWERED ? RECORD_ANSWERED :
                           row->state == ACD_CALL_RINGING ? RECORD_RINGING : RECORD_QUEUED;
                c->arrived = row->arrived;
                c->answered = row->answered;
                c->rang = row->rang;
                c->ended = USEC_INFINITY;
                c->waited = row->answered != USEC_INFINITY && row->answered >= row->arrived ?
                            row->answered - row->arrived : USEC_INFINITY;
                c->offers = row->offers;
                c->rejects = row->rejects;
                c->ignores = row->ignores;
                c->live = true;
                if (idmap_put(s->live_calls, c->id, c) < 0) {
                        free(c);
                        return -ENOMEM;
                }
        }
        return 0;
}

static int parse_counts(Store *s, PGresult *res, StoreSnapshot *snap) {
        int rows = PQntuples(res), r;

        snap->queue_counts = calloc(rows > 0 ? rows : 1, sizeof(StoreQueueCountsRow));
        if (!snap->queue_counts)
                return -ENOMEM;
        for (int i = 0; i < rows; i++) {
                const char *v[8];

                r = row_values(res, i, 8, v);
                if (r >= 0)
                        r = record_parse_queue_counts(v, &snap->queue_counts[snap->n_queue_counts]);
                if (r == -EBADMSG) {
                        log_warning("Ignoring the statistics of queue \"%s\": unexpected values.",
                                    PQgetvalue(res, i, 0));
                        continue;
                }
                if (r < 0)
                        return r;
                snap->n_queue_counts++;
        }
        return 0;
}

static int parse_next(Store *s, PGresult *res, StoreSnapshot *snap) {
        unsigned long long seq, pos;

        if (PQntuples(res) != 1 || PQnfields(res) != 2 ||
            sscanf(PQgetvalue(res, 0, 0), "%llu", &seq) != 1 || sscanf(PQgetvalue(res, 0, 1), "%llu", &pos) != 1 ||
            pos > INT64_MAX)
                return -EBADMSG;
        s->next_seq = seq;
        s->next_position = (int64_t) pos;
        return 0;
}

typedef int (*LoadParser)(Store *s, PGresult *res, StoreSnapshot *snap);
static const LoadParser load_parsers[] = { parse_operators, parse_calls, parse_counts, parse_next };

/* The jobs' callbacks run in submission order: s->load_step says whose
 * result this is. The last one hands the snapshot over. */
static void on_load_step(DbLink *l, int error, PGresult *result, void *userdata) {
        Store *s = userdata;
        size_t step = s->load_step++;
        int r = error;

        if (s->load_error >= 0 && r >= 0) {
                r = load_parsers[step](s, result, &s->load_snap);
                if (r == -ENOMEM)
                        (void) log_oom();
                else if (r < 0)
                        log_error_errno(r, "Unexpected result loading the router state.");
        }
        if (r < 0 && s->load_error >= 0)
                s->load_error = r;
        if (s->load_step < s->load_steps)
                return;

        s->loading = false;
        r = s->load_error;
        if (s->load_cb)
                s->load_cb(s, r, r >= 0 ? &s->load_snap : NULL, s->load_userdata);
        store_snapshot_done(&s->load_snap);
        /* Changes made while loading (the configured queues) go out now. */
        schedule_flush(s);
}

int store_load(Store *s, usec_t service_level, StoreLoadHandler cb, void *userdata) {
        char level[24];
        const char *params[] = { level };
        int r;

        if (!store_enabled(s))
                return -EOPNOTSUPP;
        s->load_cb = cb;
        s->load_userdata = userdata;
        s->load_error = 0;
        s->load_step = s->load_steps = 0;
        (void) snprintf(level, sizeof level, "%" PRIu64, (uint64_t) service_level);

        r = db_link_exec(s->db, store_load_operators_sql, on_load_step, s);
        if (r < 0)
                return r;
        s->load_steps++;
        /* Nothing is written before the read: records created meanwhile
         * would otherwise take numbers the database already has. */
        s->loading = true;
        r = db_link_exec(s->db, store_load_calls_sql, on_load_step, s);
        if (r >= 0) {
                s->load_steps++;
                r = db_link_exec_params(s->db, store_load_counts_sql, 1, params, on_load_step, s);
        }
        if (r >= 0) {
                s->load_steps++;
                r = db_link_exec(s->db, store_load_next_sql, on_load_step, s);
        }
        if (r >= 0)
                s->load_steps++;
        else
                /* The jobs queued report it when they are done. */
                s->load_error = r;
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
        store_snapshot_done(&s->load_snap);
        while (idmap_iterate(s->live_calls, &state, NULL, &v))
                free(v);
        state = 0;
        while (idmap_iterate(s->operators, &state, NULL, &v)) {
                OperatorRecord *o = v;

                strv_free(o->queues);
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
