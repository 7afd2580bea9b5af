/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The database link: one libpq connection in non-blocking mode, driven by
 * sd-event. Nothing here blocks the loop.
 *
 *  - connects with PQconnectStart/PQconnectPoll; on failure retries with
 *    exponential backoff (100 ms doubling to DatabaseConfig.reconnect_max);
 *    after a lost connection (server restart) it reconnects the same way;
 *  - on every (re)connect it first applies the schema migrations compiled in
 *    from sql/ (ordered by file name, recorded in table schema_migrations,
 *    serialised between daemons with an advisory lock), then runs the queue;
 *  - jobs run one at a time in submission order; a job whose connection broke
 *    before its result arrived is run again after reconnecting, so every job
 *    must be idempotent (ON CONFLICT, upserts). A job that fails with an SQL
 *    error is not retried: its callback gets -EIO and the error is logged;
 *  - queued jobs are bounded by DatabaseConfig.buffer_bytes: past it a submit
 *    returns -ENOBUFS, the overflow is counted and logged (rate-limited).
 *    A job counts from submission until its callback returns (the one on
 *    the wire included): its SQL, parameters, COPY data and ~100 bytes of
 *    bookkeeping. buffer_bytes = 0 means no bound;
 *  - a job must leave no transaction open: when one does (an error inside
 *    "BEGIN; ...", a missing COMMIT) the link sends ROLLBACK before the next;
 *  - timing: DatabaseConfig.connect_timeout bounds one connection attempt
 *    (0 = none); retries wait 100 ms, doubling up to reconnect_max (0 = 5 s).
 *    Host names are resolved inside PQconnectStart, which blocks for that
 *    long: prefer socket paths or hostaddr= when the resolver may be slow;
 *    Over TCP the link asks for keepalives (30 s idle, 3 x 10 s) and
 *    tcp_user_timeout=30000 so that a vanished host is noticed; the url may
 *    override them;
 *  - migrations run inside one transaction: a file in sql/ must not contain
 *    BEGIN/COMMIT, COPY FROM STDIN or CREATE INDEX CONCURRENTLY. A failing
 *    one is logged (file and server message), rolled back with everything
 *    of that attempt, and retried with the backoff; jobs wait meanwhile;
 *  - logging: the first failure of an outage is a warning ("Cannot connect
 *    to the database ..." / "Lost the database connection ..."), the return
 *    a notice ("Database connection restored ..."); a failed migration, a
 *    failed job and an overflow are warnings; all rate-limited, the rest is
 *    debug. Journal records carry CALLCENTER_DB_LINK=<name>.
 *
 * Callbacks (result and state handlers) run from the loop. They may submit
 * jobs but must not free the link or drain it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <systemd/sd-event.h>

#include "conf.h"

typedef struct DbLink DbLink;

/*
 * Called once per job. error is 0 or negative (-EIO for an SQL error,
 * -ECANCELED when the link is freed with the job still queued). result is
 * the last PGresult of the job (for db_link_copy(): the last one before its
 * COMMIT, i.e. post_sql's, else the COPY's whose PQcmdTuples() is the row
 * count); NULL on error; borrowed for the call.
 */
typedef void (*DbResultHandler)(DbLink *l, int error, PGresult *result, void *userdata);

/* Called on every change between connected (after migrations) and not. */
typedef void (*DbStateHandler)(DbLink *l, bool connected, void *userdata);

/*
 * Create a link for config (copied). name becomes application_name (an
 * application_name in the url wins). The link starts connecting at the
 * loop's next iteration. Returns 0, -EINVAL for an empty url, -ENOMEM.
 * db_link_free() cancels the jobs still queued (their callbacks get
 * -ECANCELED) and closes the connection; it returns NULL.
 */
int db_link_new(DbLink **ret, sd_event *e, const DatabaseConfig *config, const char *name);
DbLink *db_link_free(DbLink *l);

void db_link_set_state_handler(DbLink *l, DbStateHandler h, void *userdata);
bool db_link_is_connected(const DbLink *l);

/*
 * Every submit returns 0 (queued; the callback will run), -EINVAL,
 * -ENOMEM, -ENOBUFS (buffer_bytes reached) or -ESHUTDOWN (link being freed).
 * cb may be NULL. A submit after sd_event_exit(), even after sd_event_loop()
 * returned, is queued like any other; db_link_drain() then runs it.
 */

/* Queue sql (one or more statements, simple protocol, one implicit
 * transaction unless the text has its own BEGIN/COMMIT; copied). */
int db_link_exec(DbLink *l, const char *sql, DbResultHandler cb, void *userdata);

/* Queue one statement with text parameters $1..$n (all copied; NULL = SQL NULL;
 * 0 <= n <= 65535). */
int db_link_exec_params(DbLink *l, const char *sql, int n, const char *const *values,
                        DbResultHandler cb, void *userdata);

/*
 * Queue a bulk load, run as one transaction:
 *   BEGIN; pre_sql; copy_sql (a COPY ... FROM STDIN) fed with data; post_sql; COMMIT
 * pre_sql/post_sql may be NULL. data[0..len) is in the format copy_sql names (text, or binary with FORMAT binary) and is
 * taken over (freed by the link) whatever the return value.
 */
int db_link_copy(DbLink *l, const char *pre_sql, const char *copy_sql, char *data, size_t len,
                 const char *post_sql, DbResultHandler cb, void *userdata);

/*
 * Build COPY text-format data in a growing buffer (*buf may start NULL with
 * *len = *alloc = 0; it stays NUL-terminated, *len excludes the NUL; hand it
 * to db_link_copy() as (buf, len)).
 *
 * db_copy_escape() appends s[0..n) as (part of) a field, escaping \, tab,
 * newline and CR as \\, \t, \n, \r; s = NULL appends \N (SQL NULL). Returns
 * 0, -EINVAL when s holds a NUL byte (PostgreSQL text cannot), -ENOMEM (the
 * buffer is then unchanged).
 *
 * db_copy_append() appends raw bytes: the "\t" between fields and the "\n"
 * that ends a row.
 */
int db_copy_escape(char **buf, size_t *len, size_t *alloc, const char *s, size_t n);
int db_copy_append(char **buf, size_t *len, size_t *alloc, const char *s, size_t n);

/*
 * Run the loop until every queued job is done or timeout passes (used at
 * SIGTERM to flush). It runs the link's own loop (so the daemon's other
 * sources keep running) when that is possible; from inside one of that
 * loop's callbacks, or after sd_event_exit(), it moves the link to a private
 * loop for the duration, so it also works from a SIGTERM handler and after
 * sd_event_loop() returned (jobs submitted since included). Returns 0,
 * -ETIMEDOUT (jobs remain queued; they are logged as lost), -EBUSY from one
 * of the link's own callbacks, or a negative errno from the loop.
 */
int db_link_drain(DbLink *l, usec_t timeout);

typedef struct DbLinkStats {
        uint64_t queued_jobs;       /* now in the queue, the one on the wire included */
        uint64_t queued_bytes;      /* what they count against buffer_bytes */
        uint64_t completed_jobs;    /* callbacks run with error 0 */
        uint64_t failed_jobs;       /* callbacks run with -EIO (SQL errors) */
        uint64_t overflows;         /* submits refused with -ENOBUFS */
        uint64_t reconnects;        /* successful connections after the first */
} DbLinkStats;
void db_link_get_stats(const DbLink *l, DbLinkStats *ret);
