/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The pure half of routerd's store (store.c does the I/O): the call record
 * that the ACD's outcome records fold into, its COPY text row, the JSON
 * parameters of the operator and queue upserts, and the parsing of the rows
 * read at start. No I/O, no clock, no logging: tests/unit/test-record.c
 * feeds them tables.
 *
 * Row values are given as arrays of C strings in the column order each
 * function names, NULL for SQL NULL (what PQgetvalue()/PQgetisnull() say),
 * so that the parsers need no PGresult.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemons/routerd/acd.h"
#include "daemons/routerd/store.h"

typedef enum RecordState {
        RECORD_QUEUED,
        RECORD_RINGING,
        RECORD_ANSWERED,
        RECORD_FINISHED,
        RECORD_MISSED,
        _RECORD_STATE_MAX,
        _RECORD_STATE_INVALID = -EINVAL,
} RecordState;

const char *record_state_to_string(RecordState s);

/* One call from arrival to hangup (a row of router_live_calls, then of
 * router_call_records). Times are USEC_INFINITY for SQL NULL. */
typedef struct CallRecord {
        uint64_t seq;
        char id[ACD_ID_MAX + 1];
        char queue[ACD_ID_MAX + 1];
        char operator[ACD_ID_MAX + 1];
        RecordState state;
        usec_t arrived, rang, answered, ended, waited;
        unsigned offers, rejects, ignores;
        bool live;
        bool dirty;
} CallRecord;

/* Start the record of a call from its RECEIVED event, with record number
 * seq: queued, live, not dirty. */
void record_call_init(CallRecord *c, uint64_t seq, const AcdEvent *e);

/*
 * Fold one outcome record of the call into its record (RINGING, QUEUED,
 * ANSWERED, REJECTED, IGNORED, FINISHED, MISSED; other kinds change
 * nothing). Returns true when the event ended the call (FINISHED, MISSED:
 * live is then false), else false.
 */
bool record_call_fold(CallRecord *c, const AcdEvent *e);

/* End the record of a call that could not be restored: missed at now. */
void record_call_abandon(CallRecord *c, usec_t now);

/* The columns of record_call_render()'s row, for COPY. */
#define RECORD_CALL_COLUMNS \
        "seq, call, queue, state, operator, arrived, rang, answered, ended, outcome, waited, offers, rejects, ignores"

/*
 * Append the COPY text-format row of c (columns RECORD_CALL_COLUMNS, "\n"
 * included) to a growing buffer (see db_copy_escape()). An empty operator
 * is NULL, an empty queue the default one; times are RFC 3339 with
 * microseconds, waited "<n> microseconds". Returns 0 or -ENOMEM.
 */
int record_call_render(char **buf, size_t *len, size_t *alloc, const CallRecord *c);

/* One router_operators row to write. queues: NULL-terminated; with
 * queues_set an empty list means every queue. */
typedef struct OperatorRecord {
        char id[ACD_ID_MAX + 1];
        char **queues;
        bool queues_set;
        int64_t position;
        AcdOperatorStatus status;
        bool removed;
        bool dirty;
} OperatorRecord;

typedef struct QueueRecord {
        char *name;
        AcdStrategy strategy;
} QueueRecord;

/*
 * The parameters of record_upsert_sql: $1 the queues as a JSON array of
 * {"name","strategy"}, $2 the operators as a JSON array of {"id",
 * "position","status","queues":[...],"queues_set","removed"}. The values
 * travel as parameters: no SQL quoting anywhere. *ret_queues and
 * *ret_operators are new strings (free()). Returns 0 or -ENOMEM.
 */
int record_render_upsert(const QueueRecord *queues, size_t n_queues, OperatorRecord *const *operators,
                         size_t n_operators, char **ret_queues, char **ret_operators);
extern const char record_upsert_sql[];

/*
 * Parse one row of the start's reads. Each fills *ret with new strings
 * (free with store_snapshot_done() once in a snapshot, or the matching
 * *_row_done()); on failure *ret holds nothing. Return 0, -EBADMSG (a
 * malformed row: the caller skips it) or -ENOMEM.
 *
 * record_parse_operator(): id, status, queues (a JSON array of strings, as
 * to_json(text[]) gives it), removed (t/f), position, queues_set (t/f).
 * Without queues_set the list has at least one queue.
 *
 * record_parse_call(): call, queue, state, operator, arrived, seq, offers,
 * rejects, ignores, answered, rang (times as integer microseconds;
 * answered and rang may be NULL; operator NULL or "" unless answered).
 *
 * record_parse_queue_counts(): queue, received, answered,
 * answered_within, abandoned, rejected, ignored, total_wait (integers).
 */
int record_parse_operator(const char *const *v, StoreOperatorRow *ret, int64_t *ret_position);
int record_parse_call(const char *const *v, StoreCallRow *ret);
int record_parse_queue_counts(const char *const *v, StoreQueueCountsRow *ret);

void store_operator_row_done(StoreOperatorRow *o);
void store_call_row_done(StoreCallRow *c);
