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
 * the last PGresult of the job (NULL on error); borrowed for the call.
 */
typedef void (*DbResultHandler)(DbLink *l, int error, PGresult *result, void *userdata);

/* Called on every change between connected (after migrations) and not. */
typedef void (*DbStateHandler)(DbLink *l, bool connected, void *userdata);

/*
 * Create a link for config (copied). name becomes application_name. The link
 * starts connecting at once. Returns 0, -EINVAL for an empty url, -ENOMEM.
 */
int db_link_new(DbLink **ret, sd_event *e, const DatabaseConfig *config, const char *name);
DbLink *db_link_free(DbLink *l);

void db_link_set_state_handler(DbLink *l, DbStateHandler h, void *userdata);
bool db_link_is_connected(const DbLink *l);

/* Queue sql (one or more statements, simple protocol; copied). */
int db_link_exec(DbLink *l, const char *sql, DbResultHandler cb, void *userdata);

/* Queue one statement with text parameters $1..$n (all copied; NULL = SQL NULL). */
int db_link_exec_params(DbLink *l, const char *sql, int n, const char *const *values,
                        DbResultHandler cb, void *userdata);

/*
 * Queue a bulk load, run as one transaction:
 *   BEGIN; pre_sql; copy_sql (a COPY ... FROM STDIN) fed with data; post_sql; COMMIT
 * pre_sql/post_sql may be NULL. data[0..len) is in COPY text format and is
 * taken over (freed by the link) whatever the return value.
 */
int db_link_copy(DbLink *l, const char *pre_sql, const char *copy_sql, char *data, size_t len,
                 const char *post_sql, DbResultHandler cb, void *userdata);

/* Append s to a COPY text-format field, escaping \, tab, newline, CR. */
int db_copy_escape(char **buf, size_t *len, size_t *alloc, const char *s, size_t n);

/*
 * Run the loop until every queued job is done or timeout passes (used at
 * SIGTERM to flush). Returns 0, -ETIMEDOUT (jobs remain; they are logged as
 * lost), or a negative errno from the loop.
 */
int db_link_drain(DbLink *l, usec_t timeout);

typedef struct DbLinkStats {
        uint64_t queued_jobs;
        uint64_t queued_bytes;
        uint64_t completed_jobs;
        uint64_t failed_jobs;
        uint64_t overflows;         /* submits refused with -ENOBUFS */
        uint64_t reconnects;
} DbLinkStats;
void db_link_get_stats(const DbLink *l, DbLinkStats *ret);
