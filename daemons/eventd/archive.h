/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * eventd's archive: every forwarded event becomes a row of table events
 * (sql/001-events.sql), written through the database link in batches.
 *
 * Rows accumulate in memory in binary COPY format; a batch is complete
 * when it reaches ARCHIVE_BATCH_ROWS rows (more while the link is behind)
 * or ARCHIVE_BATCH_DELAY after its first row.
 *
 * With a state directory, a complete batch goes to the database link only
 * while PostgreSQL keeps up (connected, a few batches queued, room in
 * [database] buffer_bytes); otherwise it is appended to the spill file
 * (spill.h) in the state directory, and so is every later batch until the
 * file is replayed, oldest first, as PostgreSQL catches up. So every event
 * reaches PostgreSQL, in order; only a failed write of the spill file (a
 * full disk) loses events, and those are counted (dropped) and logged.
 * What is left in the file at exit is replayed at the next start.
 *
 * Without a state directory the link holds the batches (bounded by
 * buffer_bytes; beyond that they are dropped, counted and logged).
 *
 * Each batch is idempotent (see the SQL file), so a batch the link re-runs
 * after a lost connection, or a spilled batch replayed again after a
 * restart, is not stored twice.
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
 * have a non-empty url), spilling to a file in state_dir (NULL: no spill
 * file). Returns 0, -EINVAL, -ENOMEM, or the errno of opening the spill
 * file (logged).
 */
int archive_new(Archive **ret, sd_event *e, const DatabaseConfig *config, const char *state_dir);

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

/* Hand the current batch to the database link (or the spill file) now. */
void archive_flush(Archive *a);

/* Log the drops not yet logged, when the rate limit allows (call it now
 * and then, e.g. with every STATUS=): the log's counts then add up. */
void archive_report(Archive *a);

/*
 * Flush, then run the loop until every batch is written or timeout passes
 * (at SIGTERM; works from inside a loop callback). Returns 0 or -ETIMEDOUT.
 */
int archive_drain(Archive *a, usec_t timeout);

typedef struct ArchiveStats {
        uint64_t added;         /* rows accepted */
        uint64_t stored;        /* rows committed */
        uint64_t failed;        /* rows of batches PostgreSQL refused */
        uint64_t dropped;       /* rows lost: spill file not writable (disk full), no buffer
                                 * without a spill file, or lost at exit */
        uint64_t pending;       /* rows not yet stored: added - stored - failed - dropped
                                 * (in memory, in the link or in the spill file) */
        uint64_t spilled;       /* rows written to the spill file in all */
        uint64_t spill_rows;    /* rows in the spill file, not yet handed to the link */
        uint64_t spill_bytes;   /* size of the spill file */
        uint64_t kept;          /* spilled rows whose replay was cut short at exit */
        int connected;
} ArchiveStats;
void archive_get_stats(const Archive *a, ArchiveStats *ret);
