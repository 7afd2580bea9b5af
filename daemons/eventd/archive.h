/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * eventd's archive: every forwarded event becomes a row of table events
 * (sql/001-events.sql), written through the database link in batches.
 *
 * Rows accumulate in memory in binary COPY format; a batch goes to the link
 * when it reaches ARCHIVE_BATCH_ROWS rows (more while the link is behind)
 * or ARCHIVE_BATCH_DELAY after its first row. While PostgreSQL is away the
 * link holds the batches (bounded by [database] buffer_bytes; beyond that
 * they are dropped, counted and logged) and writes them when it is back.
 * Each batch is idempotent (see the SQL file), so a batch the link re-runs
 * after a lost connection is not stored twice.
 */

#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "conf.h"
#include "scan.h"

#define ARCHIVE_BATCH_ROWS 5000
#define ARCHIVE_BATCH_ROWS_MAX 50000
#define ARCHIVE_BATCH_DELAY (50 * USEC_PER_MSEC)

typedef struct Archive Archive;

/*
 * Create the archive on loop e with a database link for config (which must
 * have a non-empty url). Returns 0, -EINVAL, -ENOMEM.
 */
int archive_new(Archive **ret, sd_event *e, const DatabaseConfig *config);

/* Frees the archive; rows not yet written are counted as dropped and
 * logged. Accepts NULL, returns NULL. */
Archive *archive_free(Archive *a);

/*
 * Add one event that scan_envelope() accepted (e describes body). Never
 * fails: a row that cannot be kept is counted as dropped (and logged,
 * rate-limited).
 */
void archive_add(Archive *a, const char *topic, size_t topic_len, const ScanEnvelope *e,
                 const char *body, size_t body_len);

/* Hand the current batch to the database link now. */
void archive_flush(Archive *a);

/*
 * Flush, then run the loop until every batch is written or timeout passes
 * (at SIGTERM; works from inside a loop callback). Returns 0 or -ETIMEDOUT.
 */
int archive_drain(Archive *a, usec_t timeout);

typedef struct ArchiveStats {
        uint64_t added;         /* rows accepted */
        uint64_t stored;        /* rows committed */
        uint64_t failed;        /* rows of batches PostgreSQL refused */
        uint64_t dropped;       /* rows refused for lack of buffer, or lost at exit */
        uint64_t pending;       /* rows in memory: added - stored - failed - dropped */
        int connected;
} ArchiveStats;
void archive_get_stats(const Archive *a, ArchiveStats *ret);
