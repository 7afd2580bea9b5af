/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The archive's spill file: archive batches that PostgreSQL cannot take yet,
 * kept on disk in arrival order until it can.
 *
 * One append-only file, <dir>/archive.spill, of records
 *     header (magic "CCS1", name length, rows, data length), name, data
 * where name is the batch's marker (see archive.c) and data its binary COPY
 * text. Records are read back from the front in the order they were
 * written; when every record has been read and the caller says the batches
 * are safely stored, the file is truncated to zero and starts over.
 *
 * The file outlives the process: spill_open() keeps what a previous run
 * left (it is replayed first; a batch that run had already stored is
 * recognised by its marker and not stored twice) and cuts off a record torn
 * by a crash. Writes go to the page cache (no fsync): the file is for a
 * database that lags or is away, not for a host that loses power.
 *
 * Not thread-safe; plain blocking I/O on a local file.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPILL_FILE_NAME "archive.spill"

typedef struct Spill Spill;

/*
 * Open (creating it if needed) the spill file in directory dir. Returns 0,
 * -ENOMEM, or the errno of open()/read(); logs nothing.
 */
int spill_open(Spill **ret, const char *dir);

/* Close the file (its content stays). Accepts NULL, returns NULL. */
Spill *spill_free(Spill *s);

/*
 * Append one batch: name (NUL-terminated), its row count and data[0..len).
 * Returns 0, or -ENOSPC / -EDQUOT (disk full), -EIO, ...: then the file is
 * as it was before the call (a partial record is cut off again).
 */
int spill_append(Spill *s, const char *name, uint64_t rows, const void *data, size_t len);

/* The data length of the next unread record, or 0 when none is left. */
size_t spill_peek(const Spill *s);

/*
 * Read the next record: *ret_name and *ret_data are malloc'd (the caller
 * frees them). Returns 1, 0 when nothing is left, -ENOMEM, -EIO, -EBADMSG
 * (a corrupt record: the rest of the file is skipped).
 */
int spill_next(Spill *s, char **ret_name, uint64_t *ret_rows, char **ret_data, size_t *ret_len);

/* Everything written has been read: empty the file and start over.
 * Returns 0 or a negative errno (ftruncate()). No-op while records remain. */
int spill_reset(Spill *s);

typedef struct SpillStats {
        uint64_t rows;          /* rows in records not yet read */
        uint64_t records;       /* records not yet read */
        uint64_t bytes;         /* file size */
} SpillStats;
void spill_get_stats(const Spill *s, SpillStats *ret);
const char *spill_get_path(const Spill *s);
