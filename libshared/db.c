/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "db.h"
#include "db-migrations.h"
#include "log.h"
#include "time-util.h"

/*
 * The link is a small state machine around one PGconn:
 *
 *   WAITING --timer--> CONNECTING --PQconnectPoll OK--> MIGRATING --COMMIT--> READY
 *      ^                    |                               |                   |
 *      +---- failure, timeout, lost connection (backoff) ---+-------------------+
 *
 * Once connected, exactly one "operation" is on the wire at a time: a
 * migration step, a queued job, or the ROLLBACK that cleans up after a job.
 * An operation goes through phases: FLUSH (the query is being written; libpq
 * returns 1 from PQflush while the socket is full), RESULTS (PQgetResult until
 * NULL), and for COPY FROM STDIN COPY_IN/COPY_END in between. libpq's
 * pipeline mode is avoided on purpose: it needs libpq 14, and RHEL 9 may ship
 * 13. Callers batch instead (multi-statement text, COPY).
 *
 * A job stays at the head of the queue until its result is in, so when the
 * connection breaks in the middle the job is simply started again on the next
 * connection. Errors are sorted into "the connection is gone" (retry) and
 * "the server refused the SQL" (report -EIO, go on) by result_is_link_error().
 */

#define BACKOFF_MIN_USEC (100 * USEC_PER_MSEC)
#define RECONNECT_MAX_DEFAULT_USEC (5 * USEC_PER_SEC)
/* COPY data is handed to libpq in chunks and flushed after each, so libpq
 * never holds more than one chunk; the budget bounds the time spent writing
 * in one loop iteration. */
#define COPY_CHUNK ((size_t) 64 * 1024)
#define COPY_BUDGET ((size_t) 1024 * 1024)

/* A constant key for pg_advisory_xact_lock(): every daemon of the suite that
 * migrates the same database serialises on it. ("ccmigrat" in ASCII.) */
#define MIGRATION_LOCK_KEY "7161688131923763572"

typedef enum DbJobType {
        DB_JOB_EXEC,
        DB_JOB_PARAMS,
        DB_JOB_COPY,
} DbJobType;

typedef struct DbJob DbJob;
struct DbJob {
        DbJob *next;
        DbJobType type;
        char *sql;                  /* for COPY: the whole BEGIN ... COMMIT text */
        int n_params;
        char **params;
        char *data;
        size_t len;
        size_t bytes;               /* what the job counts against buffer_bytes */
        DbResultHandler cb;
        void *userdata;
};

typedef enum LinkState {
        LINK_WAITING,               /* no connection; the backoff timer runs */
        LINK_CONNECTING,            /* PQconnectPoll() in progress; the timeout runs */
        LINK_MIGRATING,             /* connected, applying migrations */
        LINK_READY,                 /* connected, running jobs */
} LinkState;

typedef enum LinkOp {
        OP_NONE,
        OP_JOB,                     /* the job at the head of the queue */
        OP_ROLLBACK,                /* a job left a transaction open or failed */
        OP_MIG_LOCK,                /* BEGIN, lock, CREATE schema_migrations, read it */
        OP_MIG_APPLY,               /* one migration's text */
        OP_MIG_RECORD,              /* INSERT INTO schema_migrations */
        OP_MIG_COMMIT,
} LinkOp;

typedef enum LinkPhase {
        PHASE_NONE,                 /* nothing on the wire */
        PHASE_FLUSH,                /* writing the query (or the end of COPY data) */
        PHASE_RESULTS,              /* reading results until PQgetResult() gives NULL */
        PHASE_COPY_IN,              /* sending COPY data */
        PHASE_COPY_END,             /* queueing CopyDone / CopyFail */
        PHASE_COPY_OUT,             /* discarding COPY TO STDOUT data */
} LinkPhase;

struct DbLink {
        sd_event *event;
        DatabaseConfig config;
        char *name;
        char *log_field;            /* "CALLCENTER_DB_LINK=<name>" */

        PGconn *conn;
        LinkState state;
        sd_event_source *io;
        uint32_t io_events;
        sd_event_source *timer;
        usec_t timer_deadline;      /* CLOCK_MONOTONIC; USEC_INFINITY when not armed */
        sd_event_source *kick;
        bool kick_pending;
        usec_t backoff;

        LinkOp op;
        LinkPhase phase;
        int op_error;               /* -EIO once the server refused the SQL */
        char op_errmsg[512];
        PGresult *res_last, *res_prev;
        size_t copy_off;
        bool copy_started;
        const char *copy_abort;     /* end the COPY with this error instead of CopyDone */

        const DbMigration *migrations;
        size_t mig_next;
        PGresult *mig_applied;

        DbJob *head, *tail;
        DbLinkStats stats;

        bool ever_connected;
        bool outage;                /* failures since the last successful connect */
        bool outage_logged;         /* ... and an operator was told */
        usec_t outage_since;
        bool freeing;
        unsigned in_callback;

        DbStateHandler state_cb;
        void *state_userdata;

        RateLimit rl_outage, rl_overflow, rl_job, rl_migration;
        char errbuf[512];
};

static void link_step(DbLink *l);
static void link_fail(DbLink *l, const char *reason);

static usec_t usec_add(usec_t a, usec_t b) {
        return a > USEC_INFINITY - b ? USEC_INFINITY : a + b;
}

/* libpq messages span lines ("...failed: ...\n\tIs the server running...");
 * a log record wants one line. */
static const char *flatten(char *dst, size_t size, const char *src) {
        size_t n = 0;
        bool space = false;

        if (!src)
                src = "";
        for (; *src && n + 1 < size; src++) {
                if (*src == '\n' || *src == '\t' || *src == '\r' || *src == ' ') {
                        space = n > 0;
                        continue;
                }
                if (space && n + 2 < size)
                        dst[n++] = ' ';
                space = false;
                dst[n++] = *src;
        }
        dst[n] = '\0';
        return dst;
}

static void format_span(char *buf, size_t size, usec_t u) {
        if (u < USEC_PER_SEC)
                snprintf(buf, size, "%" PRIu64 "ms", u / USEC_PER_MSEC);
        else
                snprintf(buf, size, "%.1fs", (double) u / USEC_PER_SEC);
}

static DbJob *db_job_free(DbJob *j) {
        if (!j)
                return NULL;
        free(j->sql);
        for (int i = 0; i < j->n_params; i++)
                free(j->params[i]);
        free(j->params);
        free(j->data);
        free(j);
        return NULL;
}

/* --- sources ---------------------------------------------------------------- */

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);
static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);
static int on_kick(sd_event_source *s, void *userdata);

/*
 * Watch the connection's socket for events. While connecting the source is
 * made anew each time (renew): libpq may close its socket and open another
 * one for the next address, possibly under the same number, and epoll would
 * silently have forgotten the old registration.
 */
static int link_watch(DbLink *l, uint32_t events, bool renew) {
        int fd, r;

        fd = PQsocket(l->conn);
        if (fd < 0)
                return -EBADF;
        if (l->io && !renew) {
                if (events != l->io_events) {
                        r = sd_event_source_set_io_events(l->io, events);
                        if (r < 0)
                                return r;
                        l->io_events = events;
                }
                return 0;
        }
        l->io = sd_event_source_disable_unref(l->io);
        r = sd_event_add_io(l->event, &l->io, fd, events, on_io, l);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(l->io, "db-link-io");
        l->io_events = events;
        return 0;
}

static void link_watch_or_fail(DbLink *l, uint32_t events, bool renew) {
        int r = link_watch(l, events, renew);
        if (r < 0) {
                log_debug_errno(r, "Cannot watch the database socket: %m");
                link_fail(l, "cannot watch the connection's socket");
        }
}

static int link_arm_timer(DbLink *l, usec_t deadline) {
        int r;

        l->timer = sd_event_source_disable_unref(l->timer);
        l->timer_deadline = deadline;
        if (deadline == USEC_INFINITY)
                return 0;
        r = sd_event_add_time(l->event, &l->timer, CLOCK_MONOTONIC, deadline, USEC_PER_MSEC,
                              on_timer, l);
        if (r < 0)
                return log_debug_errno(r, "Cannot arm the database link timer: %m");
        (void) sd_event_source_set_description(l->timer, "db-link-timer");
        return 0;
}

/* Start the next job from the loop, not from inside the caller's submit or
 * callback, so that neither ever sees the link's machinery re-entered. */
static void link_kick(DbLink *l) {
        int r;

        if (l->kick_pending || l->freeing)
                return;
        /* A loop that finished (sd_event_loop() returned after
         * sd_event_exit()) takes no new sources (-ESTALE). That is no error:
         * the job stays queued and db_link_drain() kicks the queue on its
         * private loop. */
        if (sd_event_get_state(l->event) == SD_EVENT_FINISHED)
                return;
        if (!l->kick) {
                r = sd_event_add_defer(l->event, &l->kick, on_kick, l);
                if (r < 0) {
                        log_debug_errno(r, "Cannot schedule the database queue: %m");
                        return;
                }
                (void) sd_event_source_set_description(l->kick, "db-link-kick");
        } else {
                r = sd_event_source_set_enabled(l->kick, SD_EVENT_ONESHOT);
                if (r < 0) {
                        log_debug_errno(r, "Cannot schedule the database queue: %m");
                        return;
                }
        }
        l->kick_pending = true;
}

/*
 * Move every source to loop e (for db_link_drain()); states are kept. On a
 * finished loop the sources cannot be added and are simply missing; the next
 * attach to a live loop recreates them from the state, which is why the
 * socket is watched whenever there is a connection (not only when a source
 * existed) and the queue is kicked whenever it waits on an idle connection
 * (a submit made while the loop was finished could not schedule its kick).
 */
static void link_attach(DbLink *l, sd_event *e) {
        bool kick = l->kick_pending;
        usec_t deadline = l->timer_deadline;
        uint32_t events = l->io_events;

        l->io = sd_event_source_disable_unref(l->io);
        l->timer = sd_event_source_disable_unref(l->timer);
        l->kick = sd_event_source_disable_unref(l->kick);
        l->kick_pending = false;
        sd_event_unref(l->event);
        l->event = sd_event_ref(e);

        if (l->conn && events != 0)
                (void) link_watch(l, events, true);
        (void) link_arm_timer(l, deadline);
        if (kick || (l->state == LINK_READY && l->op == OP_NONE && l->head))
                link_kick(l);
}

/* --- connection ------------------------------------------------------------- */

static void link_clear_results(DbLink *l) {
        PQclear(l->res_last);
        PQclear(l->res_prev);
        l->res_last = l->res_prev = NULL;
}

/* Drop the connection and everything tied to it. Queued jobs stay. */
static void link_close(DbLink *l) {
        l->io = sd_event_source_disable_unref(l->io);
        (void) link_arm_timer(l, USEC_INFINITY);
        if (l->conn) {
                PQfinish(l->conn);
                l->conn = NULL;
        }
        link_clear_results(l);
        PQclear(l->mig_applied);
        l->mig_applied = NULL;
        l->op = OP_NONE;
        l->phase = PHASE_NONE;
        l->op_error = 0;
        l->op_errmsg[0] = '\0';
        l->copy_off = 0;
        l->copy_started = false;
        l->copy_abort = NULL;
}

static usec_t link_backoff_cap(const DbLink *l) {
        usec_t cap = l->config.reconnect_max > 0 ? l->config.reconnect_max : RECONNECT_MAX_DEFAULT_USEC;
        return cap < BACKOFF_MIN_USEC ? BACKOFF_MIN_USEC : cap;
}

/* Wait, then connect again; each wait twice the last, up to the cap. */
static usec_t link_schedule_retry(DbLink *l) {
        usec_t delay = l->backoff, cap = link_backoff_cap(l);

        if (delay > cap)
                delay = cap;
        l->backoff = delay >= cap / 2 ? cap : delay * 2;
        l->state = LINK_WAITING;
        (void) link_arm_timer(l, usec_add(now_usec(CLOCK_MONOTONIC), delay));
        return delay;
}

static void link_begin_outage(DbLink *l) {
        if (!l->outage) {
                l->outage = true;
                l->outage_since = now_usec(CLOCK_MONOTONIC);
        }
}

static void link_log_outage(DbLink *l, bool lost, const char *msg) {
        if (!ratelimit_below(&l->rl_outage)) {
                log_debug("Database still unreachable: %s", msg);
                return;
        }
        if (lost)
                log_struct(LOG_WARNING, 0, LOG_FIELDS(l->log_field),
                           "Lost the database connection, buffering writes and reconnecting: %s", msg);
        else
                log_struct(LOG_WARNING, 0, LOG_FIELDS(l->log_field),
                           "Cannot connect to the database, buffering writes and retrying: %s", msg);
        l->outage_logged = true;
}

/*
 * The connection failed (attempt refused or timed out, server gone, protocol
 * trouble). Drop it and retry after the backoff. An operator hears about it
 * once per outage: the first failure is a warning, the retries are debug.
 */
static void link_fail(DbLink *l, const char *reason) {
        bool was_ready = l->state == LINK_READY, first = !l->outage;
        const char *msg;
        usec_t delay;
        char span[32];

        /* reason may point into the PGconn that link_close() frees. */
        msg = flatten(l->errbuf, sizeof l->errbuf, reason);
        if (l->op == OP_JOB)
                log_debug("The job on the wire was interrupted; it runs again after reconnecting.");
        link_close(l);
        link_begin_outage(l);
        delay = link_schedule_retry(l);

        format_span(span, sizeof span, delay);
        log_debug("Database connection failed: %s; next attempt in %s.", msg, span);
        if (was_ready || first)
                link_log_outage(l, was_ready, msg);

        if (was_ready && l->state_cb) {
                l->in_callback++;
                l->state_cb(l, false, l->state_userdata);
                l->in_callback--;
        }
}

static void on_notice(void *arg, const char *message) {
        char buf[512];

        log_debug("PostgreSQL: %s", flatten(buf, sizeof buf, message));
}

static void link_connect(DbLink *l) {
        /*
         * Defaults first, the url last so that whatever it sets wins. Over
         * TCP a server that vanished without a FIN/RST (host down, network
         * cut) would otherwise hold a job for the kernel's ~15 minutes of
         * retransmissions: keepalives find a dead idle peer within about a
         * minute, tcp_user_timeout gives up on unacknowledged data after 30 s.
         * Both are ignored on Unix sockets.
         */
        const char *const keys[] = {
                "application_name", "keepalives", "keepalives_idle", "keepalives_interval",
                "keepalives_count", "tcp_user_timeout", "dbname", NULL,
        };
        const char *const values[] = { l->name, "1", "30", "10", "3", "30000", l->config.url, NULL };
        usec_t timeout = l->config.connect_timeout;

        /* Host names are resolved inside PQconnectStartParams(), which
         * blocks for that long: use IP addresses or socket paths (hostaddr=)
         * where the resolver may be slow. */
        l->conn = PQconnectStartParams(keys, values, 1);
        if (!l->conn) {
                link_fail(l, "out of memory");
                return;
        }
        if (PQstatus(l->conn) == CONNECTION_BAD) {
                link_fail(l, PQerrorMessage(l->conn));
                return;
        }
        PQsetNoticeProcessor(l->conn, on_notice, l);
        l->state = LINK_CONNECTING;
        if (timeout > 0 && timeout != USEC_INFINITY)
                (void) link_arm_timer(l, usec_add(now_usec(CLOCK_MONOTONIC), timeout));
        /* libpq: "consider PQconnectStart as if it returned PGRES_POLLING_WRITING". */
        link_watch_or_fail(l, EPOLLOUT, true);
}

static void link_send(DbLink *l, LinkOp op, const char *sql, bool extended, int n,
                      const char *const *params);

static void link_connected(DbLink *l) {
        static const char lock_sql[] =
                "BEGIN;\n"
                "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_KEY ");\n"
                "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
                "        version text PRIMARY KEY,\n"
                "        applied_at timestamptz NOT NULL DEFAULT now()\n"
                ");\n"
                "SELECT version FROM schema_migrations";

        if (PQsetnonblocking(l->conn, 1) < 0) {
                link_fail(l, PQerrorMessage(l->conn));
                return;
        }
        (void) link_arm_timer(l, USEC_INFINITY);
        l->state = LINK_MIGRATING;
        log_debug("Connected to database %s on %s:%s, applying migrations.",
                  PQdb(l->conn), PQhost(l->conn), PQport(l->conn));
        /* The lock serialises daemons that start together: the second one
         * waits here and then finds every migration recorded. */
        link_send(l, OP_MIG_LOCK, lock_sql, false, 0, NULL);
}

static void link_connect_poll(DbLink *l) {
        switch (PQconnectPoll(l->conn)) {
        case PGRES_POLLING_READING:
                link_watch_or_fail(l, EPOLLIN, true);
                return;
        case PGRES_POLLING_WRITING:
                link_watch_or_fail(l, EPOLLOUT, true);
                return;
        case PGRES_POLLING_OK:
                l->io = sd_event_source_disable_unref(l->io);
                link_watch_or_fail(l, EPOLLIN, true);
                if (l->conn)
                        link_connected(l);
                return;
        default:
                link_fail(l, PQerrorMessage(l->conn));
                return;
        }
}

static void link_ready(DbLink *l) {
        char span[32];

        l->state = LINK_READY;
        l->backoff = BACKOFF_MIN_USEC;
        if (l->ever_connected)
                l->stats.reconnects++;
        if (l->outage_logged) {
                format_span(span, sizeof span, now_usec(CLOCK_MONOTONIC) - l->outage_since);
                log_struct(LOG_NOTICE, 0, LOG_FIELDS(l->log_field),
                           "Database connection %s after %s; %" PRIu64 " jobs (%" PRIu64
                           " bytes) waiting.",
                           l->ever_connected ? "restored" : "established", span,
                           l->stats.queued_jobs, l->stats.queued_bytes);
        } else
                log_debug("Database link ready, %" PRIu64 " jobs waiting.", l->stats.queued_jobs);
        l->outage = l->outage_logged = false;
        l->ever_connected = true;

        if (l->state_cb) {
                l->in_callback++;
                l->state_cb(l, true, l->state_userdata);
                l->in_callback--;
        }
        link_kick(l);
}

/* --- migrations --------------------------------------------------------------- */

/* A migration failed with an SQL error: say which file and what the server
 * said, then start over on a fresh connection after the backoff. The
 * transaction is rolled back with the connection, so nothing of this attempt
 * remains. */
static void link_migration_failed(DbLink *l, const char *what) {
        char msg[sizeof l->op_errmsg], span[32];
        usec_t delay;

        memcpy(msg, l->op_errmsg, sizeof msg);
        link_close(l);
        link_begin_outage(l);
        delay = link_schedule_retry(l);
        format_span(span, sizeof span, delay);
        if (ratelimit_below(&l->rl_migration)) {
                log_struct(LOG_WARNING, 0, LOG_FIELDS(l->log_field),
                           "Database migration %s failed, retrying in %s (writes are buffered): %s",
                           what, span, msg);
                l->outage_logged = true;
        } else
                log_debug("Database migration %s failed again: %s", what, msg);
}

static bool migration_applied(const PGresult *applied, const char *name) {
        if (!applied || PQresultStatus(applied) != PGRES_TUPLES_OK)
                return false;
        for (int i = 0; i < PQntuples(applied); i++)
                if (strcmp(PQgetvalue(applied, i, 0), name) == 0)
                        return true;
        return false;
}

static void link_migrate_next(DbLink *l) {
        for (; l->migrations[l->mig_next].name; l->mig_next++) {
                const DbMigration *m = &l->migrations[l->mig_next];

                if (migration_applied(l->mig_applied, m->name))
                        continue;
                log_debug("Applying database migration %s.", m->file);
                link_send(l, OP_MIG_APPLY, m->sql, false, 0, NULL);
                return;
        }
        link_send(l, OP_MIG_COMMIT, "COMMIT", false, 0, NULL);
}

/* --- jobs ----------------------------------------------------------------------- */

static void sql_excerpt(char *buf, size_t size, const char *sql) {
        flatten(buf, size, sql);
        if (strlen(buf) > 80)
                strcpy(buf + 77, "...");
}

static void link_job_finish(DbLink *l) {
        DbJob *j = l->head;
        PGresult *res;
        int error = l->op_error;
        char excerpt[96];

        /* A copy job's text ends in COMMIT; the result worth handing back is
         * the one before it (post_sql's, or the COPY's row count). */
        res = j->type == DB_JOB_COPY ? l->res_prev : l->res_last;

        l->head = j->next;
        if (!l->head)
                l->tail = NULL;
        l->stats.queued_jobs--;
        l->stats.queued_bytes -= j->bytes;

        if (error < 0) {
                l->stats.failed_jobs++;
                if (ratelimit_below(&l->rl_job)) {
                        sql_excerpt(excerpt, sizeof excerpt, j->sql);
                        log_struct(LOG_WARNING, 0, LOG_FIELDS(l->log_field),
                                   "Database job failed, not retried: %s (statement: %s)",
                                   l->op_errmsg, excerpt);
                }
        } else
                l->stats.completed_jobs++;

        if (j->cb) {
                l->in_callback++;
                j->cb(l, error, error < 0 ? NULL : res, j->userdata);
                l->in_callback--;
        }
        db_job_free(j);
        link_clear_results(l);

        /* A job that failed inside BEGIN ... or forgot its COMMIT leaves the
         * session in a transaction; every later job would then fail (or be
         * swallowed by it). Roll back before the next one. */
        if (l->conn && PQtransactionStatus(l->conn) != PQTRANS_IDLE) {
                link_send(l, OP_ROLLBACK, "ROLLBACK", false, 0, NULL);
                return;
        }
        link_kick(l);
}

static void link_start_job(DbLink *l) {
        DbJob *j = l->head;

        l->copy_started = false;
        l->copy_off = 0;
        l->copy_abort = NULL;
        link_send(l, OP_JOB, j->sql, j->type == DB_JOB_PARAMS, j->n_params,
                  (const char *const *) j->params);
}

static int on_kick(sd_event_source *s, void *userdata) {
        DbLink *l = userdata;

        l->kick_pending = false;
        if (l->state == LINK_READY && l->op == OP_NONE && l->head)
                link_start_job(l);
        return 0;
}

/* --- one operation on the wire ---------------------------------------------- */

static void link_send(DbLink *l, LinkOp op, const char *sql, bool extended, int n,
                      const char *const *params) {
        int r;

        l->op = op;
        l->op_error = 0;
        l->op_errmsg[0] = '\0';
        link_clear_results(l);

        if (extended)
                r = PQsendQueryParams(l->conn, sql, n, NULL, params, NULL, NULL, 0);
        else
                r = PQsendQuery(l->conn, sql);
        if (!r) {
                if (PQstatus(l->conn) != CONNECTION_OK) {
                        link_fail(l, PQerrorMessage(l->conn));
                        return;
                }
                /* libpq refused this query itself (too large, ...): that is
                 * the operation's error, not the connection's. */
                l->op_error = -EIO;
                flatten(l->op_errmsg, sizeof l->op_errmsg, PQerrorMessage(l->conn));
                l->phase = PHASE_RESULTS;
        } else
                l->phase = PHASE_FLUSH;
        link_step(l);
}

/*
 * Is this error the connection's rather than the statement's? The backend
 * ends the session after any FATAL (admin shutdown on "pg_ctl stop -m fast",
 * crash recovery, idle timeouts), libpq's own errors carry no SQLSTATE
 * ("server closed the connection unexpectedly"), and class 08 is connection
 * exceptions. Such a job is retried on the next connection.
 */
static bool result_is_link_error(PGconn *c, const PGresult *res) {
        const char *state, *severity;

        if (PQstatus(c) != CONNECTION_OK)
                return true;
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (!state)
                return true;
        if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
                return true;
        severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
        return severity && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0);
}

static void result_error_message(char *buf, size_t size, const PGresult *res) {
        const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY),
                   *state = PQresultErrorField(res, PG_DIAG_SQLSTATE),
                   *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        char tmp[512];

        if (!primary) {
                flatten(buf, size, PQresultErrorMessage(res));
                return;
        }
        snprintf(tmp, sizeof tmp, "%s (SQLSTATE %s)%s%s", primary, state ?: "?",
                 detail ? ": " : "", detail ?: "");
        flatten(buf, size, tmp);
}

/* Take one result. Returns false when the link failed because of it. */
static bool link_on_result(DbLink *l, PGresult *res) {
        char msg[512];

        switch (PQresultStatus(res)) {
        case PGRES_COPY_IN:
                PQclear(res);
                if (l->op == OP_JOB && l->head->type == DB_JOB_COPY && !l->copy_started) {
                        l->copy_started = true;
                        l->copy_off = 0;
                        l->phase = PHASE_COPY_IN;
                } else {
                        /* A COPY FROM STDIN has no data outside db_link_copy():
                         * fail it on the server, which keeps the session usable. */
                        l->copy_abort = "COPY FROM STDIN is only supported through db_link_copy()";
                        l->phase = PHASE_COPY_END;
                }
                return true;
        case PGRES_COPY_OUT:
                PQclear(res);
                l->phase = PHASE_COPY_OUT;
                return true;
        case PGRES_COPY_BOTH:
                PQclear(res);
                link_fail(l, "unexpected COPY BOTH response");
                return false;
        case PGRES_BAD_RESPONSE:
                flatten(msg, sizeof msg, PQresultErrorMessage(res));
                PQclear(res);
                link_fail(l, msg);
                return false;
        case PGRES_FATAL_ERROR:
                if (result_is_link_error(l->conn, res)) {
                        flatten(msg, sizeof msg, PQresultErrorMessage(res));
                        PQclear(res);
                        link_fail(l, msg);
                        return false;
                }
                /* The server skips the rest of the text after an error; keep
                 * the first message, it names the cause. */
                if (l->op_error == 0) {
                        l->op_error = -EIO;
                        result_error_message(l->op_errmsg, sizeof l->op_errmsg, res);
                }
                PQclear(res);
                return true;
        default:
                PQclear(l->res_prev);
                l->res_prev = l->res_last;
                l->res_last = res;
                return true;
        }
}

static void link_op_done(DbLink *l) {
        LinkOp op = l->op;

        l->op = OP_NONE;
        switch (op) {
        case OP_JOB:
                link_job_finish(l);
                break;
        case OP_ROLLBACK:
                if (l->op_error < 0)
                        link_fail(l, l->op_errmsg);
                else
                        link_kick(l);
                break;
        case OP_MIG_LOCK:
                if (l->op_error < 0) {
                        link_migration_failed(l, "setup (schema_migrations)");
                        break;
                }
                PQclear(l->mig_applied);
                l->mig_applied = l->res_last;
                l->res_last = NULL;
                l->mig_next = 0;
                link_migrate_next(l);
                break;
        case OP_MIG_APPLY: {
                const DbMigration *m = &l->migrations[l->mig_next];
                const char *values[] = { m->name };

                if (l->op_error < 0) {
                        link_migration_failed(l, m->file);
                        break;
                }
                link_send(l, OP_MIG_RECORD, "INSERT INTO schema_migrations (version) VALUES ($1)",
                          true, 1, values);
                break;
        }
        case OP_MIG_RECORD:
                if (l->op_error < 0) {
                        link_migration_failed(l, l->migrations[l->mig_next].file);
                        break;
                }
                l->mig_next++;
                link_migrate_next(l);
                break;
        case OP_MIG_COMMIT:
                if (l->op_error < 0) {
                        link_migration_failed(l, "COMMIT");
                        break;
                }
                link_clear_results(l);
                PQclear(l->mig_applied);
                l->mig_applied = NULL;
                link_ready(l);
                break;
        case OP_NONE:
                break;
        }
}

/*
 * Send COPY data: a chunk, then flush, until everything is out, the socket is
 * full (wait for POLLOUT), or this iteration's budget is used up (POLLOUT
 * fires again at once, after the loop's other sources had their turn).
 * Returns 1 when all data is queued, 0 when waiting, -1 when the link failed.
 */
static int link_copy_send(DbLink *l) {
        DbJob *j = l->head;
        size_t budget = COPY_BUDGET;
        int r;

        while (l->copy_off < j->len) {
                size_t n = j->len - l->copy_off;

                if (n > COPY_CHUNK)
                        n = COPY_CHUNK;
                r = PQputCopyData(l->conn, j->data + l->copy_off, (int) n);
                if (r < 0) {
                        link_fail(l, PQerrorMessage(l->conn));
                        return -1;
                }
                if (r == 0)
                        break;
                l->copy_off += n;
                r = PQflush(l->conn);
                if (r < 0) {
                        link_fail(l, PQerrorMessage(l->conn));
                        return -1;
                }
                if (r > 0 || n >= budget)
                        break;
                budget -= n;
        }
        if (l->copy_off < j->len) {
                link_watch_or_fail(l, EPOLLIN | EPOLLOUT, false);
                return l->conn ? 0 : -1;
        }
        l->phase = PHASE_COPY_END;
        return 1;
}

/* Drive the operation on the wire as far as it goes without waiting. */
static void link_step(DbLink *l) {
        for (;;) {
                PGresult *res;
                char *buf;
                int r;

                switch (l->phase) {
                case PHASE_NONE:
                        link_watch_or_fail(l, EPOLLIN, false);
                        return;

                case PHASE_FLUSH:
                        r = PQflush(l->conn);
                        if (r < 0) {
                                link_fail(l, PQerrorMessage(l->conn));
                                return;
                        }
                        if (r > 0) {
                                /* libpq: wait for either; on input, consume it
                                 * (the server may be waiting for us to read). */
                                link_watch_or_fail(l, EPOLLIN | EPOLLOUT, false);
                                return;
                        }
                        l->phase = PHASE_RESULTS;
                        break;

                case PHASE_COPY_IN:
                        if (link_copy_send(l) <= 0)
                                return;
                        break;

                case PHASE_COPY_END:
                        r = PQputCopyEnd(l->conn, l->copy_abort);
                        if (r < 0) {
                                link_fail(l, PQerrorMessage(l->conn));
                                return;
                        }
                        if (r == 0) {
                                link_watch_or_fail(l, EPOLLIN | EPOLLOUT, false);
                                return;
                        }
                        l->copy_abort = NULL;
                        l->phase = PHASE_FLUSH;
                        break;

                case PHASE_COPY_OUT:
                        /* COPY TO STDOUT inside a job: nobody asked for the
                         * rows, read and drop them. */
                        while ((r = PQgetCopyData(l->conn, &buf, 1)) > 0)
                                PQfreemem(buf);
                        if (r == 0) {
                                link_watch_or_fail(l, EPOLLIN, false);
                                return;
                        }
                        if (r == -2) {
                                link_fail(l, PQerrorMessage(l->conn));
                                return;
                        }
                        l->phase = PHASE_RESULTS;
                        break;

                case PHASE_RESULTS:
                        if (PQisBusy(l->conn)) {
                                link_watch_or_fail(l, EPOLLIN, false);
                                return;
                        }
                        res = PQgetResult(l->conn);
                        if (!res) {
                                l->phase = PHASE_NONE;
                                link_op_done(l);
                                /* Idle now (nothing new was sent): listen for
                                 * the server going away. */
                                if (l->conn && l->phase == PHASE_NONE)
                                        link_watch_or_fail(l, EPOLLIN, false);
                                return;
                        }
                        if (!link_on_result(l, res))
                                return;
                        break;
                }
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        DbLink *l = userdata;
        PGnotify *n;

        if (!l->conn)
                return 0;
        if (l->state == LINK_CONNECTING) {
                link_connect_poll(l);
                return 0;
        }

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (!PQconsumeInput(l->conn)) {
                        link_fail(l, PQerrorMessage(l->conn));
                        return 0;
                }
                while ((n = PQnotifies(l->conn)))
                        PQfreemem(n);
        }

        if (l->phase == PHASE_NONE) {
                /* Idle: input is a notice, or the server saying goodbye
                 * before it closes the socket (read by the next call). */
                if (PQstatus(l->conn) != CONNECTION_OK)
                        link_fail(l, PQerrorMessage(l->conn));
                else if (revents & (EPOLLHUP | EPOLLERR))
                        link_fail(l, "the server closed the connection");
                return 0;
        }
        link_step(l);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        DbLink *l = userdata;
        char msg[128], span[32];

        l->timer = sd_event_source_disable_unref(l->timer);
        l->timer_deadline = USEC_INFINITY;

        if (l->state == LINK_WAITING)
                link_connect(l);
        else if (l->state == LINK_CONNECTING) {
                format_span(span, sizeof span, l->config.connect_timeout);
                snprintf(msg, sizeof msg, "no answer within %s (connect_timeout)", span);
                link_fail(l, msg);
        }
        return 0;
}

/* --- public -------------------------------------------------------------------- */

int db_link_new(DbLink **ret, sd_event *e, const DatabaseConfig *config, const char *name) {
        DbLink *l;

        if (!ret || !e || !config)
                return -EINVAL;
        if (!config->url || !config->url[0])
                return -EINVAL;

        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->config = *config;
        l->config.url = strdup(config->url);
        l->name = strdup(name && name[0] ? name : "callcenter");
        if (!l->config.url || !l->name || asprintf(&l->log_field, "CALLCENTER_DB_LINK=%s", l->name) < 0) {
                l->log_field = NULL;
                db_link_free(l);
                return -ENOMEM;
        }
        l->event = sd_event_ref(e);
        l->migrations = db_migrations;
        l->backoff = BACKOFF_MIN_USEC;
        l->timer_deadline = USEC_INFINITY;
        l->state = LINK_WAITING;
        l->rl_outage = (RateLimit) { .interval_usec = 60 * USEC_PER_SEC, .burst = 4 };
        l->rl_overflow = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 3 };
        l->rl_job = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 10 };
        l->rl_migration = (RateLimit) { .interval_usec = 60 * USEC_PER_SEC, .burst = 3 };

        /* Connect from the loop's first iteration: the caller may still set
         * handlers, and nothing runs inside this call. */
        if (link_arm_timer(l, now_usec(CLOCK_MONOTONIC)) < 0) {
                db_link_free(l);
                return -ENOMEM;
        }
        *ret = l;
        return 0;
}

DbLink *db_link_free(DbLink *l) {
        DbJob *j;

        if (!l)
                return NULL;
        l->freeing = true;
        l->io = sd_event_source_disable_unref(l->io);
        l->timer = sd_event_source_disable_unref(l->timer);
        l->kick = sd_event_source_disable_unref(l->kick);
        if (l->conn)
                PQfinish(l->conn);
        link_clear_results(l);
        PQclear(l->mig_applied);

        if (l->head)
                log_debug("Database link freed with %" PRIu64 " jobs queued, cancelling them.",
                          l->stats.queued_jobs);
        while ((j = l->head)) {
                l->head = j->next;
                if (j->cb)
                        j->cb(l, -ECANCELED, NULL, j->userdata);
                db_job_free(j);
        }
        sd_event_unref(l->event);
        free(l->config.url);
        free(l->name);
        free(l->log_field);
        free(l);
        return NULL;
}

void db_link_set_state_handler(DbLink *l, DbStateHandler h, void *userdata) {
        if (!l)
                return;
        l->state_cb = h;
        l->state_userdata = userdata;
}

bool db_link_is_connected(const DbLink *l) {
        return l && l->state == LINK_READY;
}

void db_link_set_migrations(DbLink *l, const DbMigration *migrations) {
        if (l && migrations)
                l->migrations = migrations;
}

static int link_enqueue(DbLink *l, DbJob *j) {
        uint64_t max = l->config.buffer_bytes;

        if (l->freeing) {
                db_job_free(j);
                return -ESHUTDOWN;
        }
        if (max > 0 && (j->bytes > max || l->stats.queued_bytes > max - j->bytes)) {
                l->stats.overflows++;
                if (ratelimit_below(&l->rl_overflow))
                        log_struct(LOG_WARNING, 0, LOG_FIELDS(l->log_field),
                                   "Database write buffer full (%" PRIu64 " + %zu of %" PRIu64
                                   " bytes, %s): refusing a job, %" PRIu64 " refused so far.",
                                   l->stats.queued_bytes, j->bytes, max,
                                   l->state == LINK_READY ? "database slow" : "database away",
                                   l->stats.overflows);
                db_job_free(j);
                return -ENOBUFS;
        }

        if (l->tail)
                l->tail->next = j;
        else
                l->head = j;
        l->tail = j;
        l->stats.queued_jobs++;
        l->stats.queued_bytes += j->bytes;
        if (l->state == LINK_READY && l->op == OP_NONE)
                link_kick(l);
        return 0;
}

static DbJob *db_job_new(DbJobType type, DbResultHandler cb, void *userdata) {
        DbJob *j = calloc(1, sizeof *j);

        if (!j)
                return NULL;
        j->type = type;
        j->cb = cb;
        j->userdata = userdata;
        j->bytes = sizeof *j;
        return j;
}

int db_link_exec(DbLink *l, const char *sql, DbResultHandler cb, void *userdata) {
        DbJob *j;

        if (!l || !sql)
                return -EINVAL;
        j = db_job_new(DB_JOB_EXEC, cb, userdata);
        if (!j || !(j->sql = strdup(sql))) {
                db_job_free(j);
                return -ENOMEM;
        }
        j->bytes += strlen(sql) + 1;
        return link_enqueue(l, j);
}

int db_link_exec_params(DbLink *l, const char *sql, int n, const char *const *values,
                        DbResultHandler cb, void *userdata) {
        DbJob *j;

        /* The protocol counts parameters in 16 bits. */
        if (!l || !sql || n < 0 || n > 65535 || (n > 0 && !values))
                return -EINVAL;
        j = db_job_new(DB_JOB_PARAMS, cb, userdata);
        if (!j || !(j->sql = strdup(sql)) || (n > 0 && !(j->params = calloc(n, sizeof(char *))))) {
                db_job_free(j);
                return -ENOMEM;
        }
        j->bytes += strlen(sql) + 1 + (size_t) n * sizeof(char *);
        j->n_params = n;
        for (int i = 0; i < n; i++) {
                if (!values[i])
                        continue;
                j->params[i] = strdup(values[i]);
                if (!j->params[i]) {
                        db_job_free(j);
                        return -ENOMEM;
                }
                j->bytes += strlen(values[i]) + 1;
        }
        return link_enqueue(l, j);
}

int db_link_copy(DbLink *l, const char *pre_sql, const char *copy_sql, char *data, size_t len,
                 const char *post_sql, DbResultHandler cb, void *userdata) {
        DbJob *j;

        if (!l || !copy_sql || (!data && len > 0) || len > INT32_MAX) {
                free(data);
                return -EINVAL;
        }
        j = db_job_new(DB_JOB_COPY, cb, userdata);
        if (!j) {
                free(data);
                return -ENOMEM;
        }
        j->data = data;
        j->len = len;
        /*
         * One simple-protocol text: the server runs the statements after the
         * COPY once the data is in, all in the one transaction. Each part
         * ends on its own line so that a trailing "-- comment" cannot swallow
         * the separator. An error anywhere skips the rest, COMMIT included;
         * the failed transaction is then rolled back by link_job_finish().
         */
        if (asprintf(&j->sql, "BEGIN;\n%s%s%s\n;\n%s%s\n;\nCOMMIT", pre_sql ?: "", pre_sql ? "\n;\n" : "",
                     copy_sql, post_sql ? "\n;\n" : "", post_sql ?: "") < 0) {
                j->sql = NULL;
                db_job_free(j);
                return -ENOMEM;
        }
        j->bytes += strlen(j->sql) + 1 + len;
        return link_enqueue(l, j);
}

static int buf_reserve(char **buf, size_t *len, size_t *alloc, size_t extra) {
        size_t need, a;
        char *p;

        if (extra > SIZE_MAX - *len - 1)
                return -ENOMEM;
        need = *len + extra + 1;
        if (*buf && need <= *alloc)
                return 0;
        a = *alloc > 0 ? *alloc : 256;
        while (a < need)
                a = a > SIZE_MAX / 2 ? need : a * 2;
        p = realloc(*buf, a);
        if (!p)
                return -ENOMEM;
        *buf = p;
        *alloc = a;
        return 0;
}

int db_copy_append(char **buf, size_t *len, size_t *alloc, const char *s, size_t n) {
        int r;

        if (!buf || !len || !alloc || (!s && n > 0))
                return -EINVAL;
        r = buf_reserve(buf, len, alloc, n);
        if (r < 0)
                return r;
        if (n > 0)
                memcpy(*buf + *len, s, n);
        *len += n;
        (*buf)[*len] = '\0';
        return 0;
}

int db_copy_escape(char **buf, size_t *len, size_t *alloc, const char *s, size_t n) {
        size_t extra = 0;
        char *p;
        int r;

        if (!buf || !len || !alloc)
                return -EINVAL;
        if (!s)
                return db_copy_append(buf, len, alloc, "\\N", 2);
        /* PostgreSQL text cannot hold NUL; refusing beats cutting the value. */
        if (memchr(s, '\0', n))
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                extra += (s[i] == '\\' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') ? 2 : 1;
        r = buf_reserve(buf, len, alloc, extra);
        if (r < 0)
                return r;

        p = *buf + *len;
        for (size_t i = 0; i < n; i++)
                switch (s[i]) {
                case '\\': *p++ = '\\'; *p++ = '\\'; break;
                case '\t': *p++ = '\\'; *p++ = 't'; break;
                case '\n': *p++ = '\\'; *p++ = 'n'; break;
                case '\r': *p++ = '\\'; *p++ = 'r'; break;
                default: *p++ = s[i]; break;
                }
        *len += extra;
        (*buf)[*len] = '\0';
        return 0;
}

int db_link_drain(DbLink *l, usec_t timeout) {
        sd_event *private = NULL, *orig = NULL;
        usec_t deadline;
        char span[32];
        int r = 0, code;

        if (!l)
                return -EINVAL;
        if (l->in_callback)
                return -EBUSY;
        if (!l->head)
                return 0;

        deadline = usec_add(now_usec(CLOCK_MONOTONIC), timeout);

        /* The link's loop cannot be run from inside one of its own callbacks
         * (a SIGTERM handler), nor once sd_event_exit() was called. Then the
         * link moves to a private loop for the drain and back afterwards.
         * link_attach() kicks the queue there: a job submitted after the
         * daemon's loop finished found no loop to schedule its start on. */
        if (sd_event_get_state(l->event) != SD_EVENT_INITIAL ||
            sd_event_get_exit_code(l->event, &code) != -ENODATA) {
                r = sd_event_new(&private);
                if (r < 0)
                        return r;
                orig = sd_event_ref(l->event);
                link_attach(l, private);
        }

        while (l->head) {
                usec_t n = now_usec(CLOCK_MONOTONIC);

                if (n >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                r = sd_event_run(l->event, deadline - n);
                if (r < 0)
                        break;
        }

        if (orig) {
                /* Re-attaching to a finished loop fails quietly: the caller
                 * is about to free the link. */
                link_attach(l, orig);
                sd_event_unref(orig);
                sd_event_unref(private);
        }

        if (l->head) {
                format_span(span, sizeof span, timeout);
                log_struct(LOG_WARNING, 0, LOG_FIELDS(l->log_field),
                           "%" PRIu64 " database jobs (%" PRIu64 " bytes) not written within %s; "
                           "they are lost if the process exits now.",
                           l->stats.queued_jobs, l->stats.queued_bytes, span);
                return r < 0 ? r : -ETIMEDOUT;
        }
        return 0;
}

void db_link_get_stats(const DbLink *l, DbLinkStats *ret) {
        if (l && ret)
                *ret = l->stats;
}
