/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-id128.h>

#include "archive.h"
#include "cleanup.h"
#include "db.h"
#include "log.h"
#include "spill.h"
#include "time-util.h"

/*
 * Why COPY straight into events, with a marker row per batch, rather than
 * COPY into a staging table and INSERT ... ON CONFLICT on a unique key:
 * the unique index over (source, host, seq, time) and the second copy of
 * every row cost about half the throughput (see sql/001-events.sql). The
 * marker gives the same exactly-once guarantee, because every event is in
 * exactly one batch and a batch is the unit the link re-runs.
 *
 * Why binary COPY: PostgreSQL then takes each field by its length instead of
 * scanning the text for delimiters and escapes, and gets seq and time as
 * integers instead of parsing them: about 20% less CPU per row on its side
 * (measured, 100,000 envelopes: 0.65 s against 0.82 s), and nothing to
 * escape or format on ours. The fields it still checks (UTF-8 of the texts,
 * the JSON of the envelope) scan_envelope() has checked already, so a batch
 * does not fail on a bad row.
 */

#define ARCHIVE_COPY_SQL "COPY events (topic, source, host, seq, time, type, envelope) FROM STDIN (FORMAT binary)"
#define ARCHIVE_FIELDS 7
/* Markers are only needed while a batch may still be re-run. */
#define ARCHIVE_PRUNE_SQL "DELETE FROM events_batches WHERE created < now() - interval '7 days';\n"
#define ARCHIVE_PRUNE_EVERY 1000
#define ARCHIVE_BUF_MIN (64u * 1024u)
#define ARCHIVE_BUF_MAX (32u * 1024u * 1024u)
/*
 * With a spill file, a batch goes to the database link only while the link
 * is connected, holds fewer than ARCHIVE_LINK_JOBS batches and has room for
 * this one plus ARCHIVE_LINK_MARGIN (its SQL, the check queries of
 * on_batch_done()); else it goes to the spill file. So the link never
 * refuses a batch for lack of buffer, and while PostgreSQL lags or is away
 * the backlog waits on disk rather than in memory.
 */
#define ARCHIVE_LINK_JOBS 4
#define ARCHIVE_LINK_MARGIN (256u * 1024u)

struct Archive {
        sd_event *event;
        DbLink *link;
        char run[SD_ID128_STRING_MAX];  /* this process's batch namespace */
        uint64_t batch_no;

        /* The batch being filled: COPY text, rows, and the size the last
         * batch reached (the next buffer starts that big). */
        char *buf;
        size_t len, alloc, rows, last_len;
        sd_event_source *timer;

        /* Batches PostgreSQL cannot take yet, in order (NULL: no state
         * directory, the link's buffer is all there is). */
        Spill *spill;
        uint64_t spill_inflight;        /* batches read back, not yet done */
        uint64_t buffer_bytes;          /* [database] buffer_bytes */
        size_t batch_bytes_max;         /* a batch fits the link's buffer a few times over */
        RateLimit spill_limit;

        ArchiveStats stats;
        RateLimit drop_limit;
        uint64_t drops_unreported;
        bool freeing, stopping;
};

typedef struct Batch {
        Archive *archive;
        size_t rows;
        bool from_spill;        /* still in the spill file until done */
        usec_t queued;          /* CLOCK_MONOTONIC when handed to the link */
        char name[SD_ID128_STRING_MAX + 24];
} Batch;

/* Big-endian integers, as binary COPY wants them. */
static char *put_be16(char *p, uint16_t v) {
        p[0] = (char) (v >> 8);
        p[1] = (char) v;
        return p + 2;
}

static char *put_be32(char *p, uint32_t v) {
        for (int i = 3; i >= 0; i--)
                *p++ = (char) (v >> (8 * i));
        return p;
}

static char *put_be64(char *p, uint64_t v) {
        for (int i = 7; i >= 0; i--)
                *p++ = (char) (v >> (8 * i));
        return p;
}

/* One field: its length, then its bytes. */
static char *put_field(char *p, const void *data, size_t len) {
        p = put_be32(p, (uint32_t) len);
        memcpy(p, data, len);
        return p + len;
}

/* Binary COPY: signature, flags, header extension length. */
static const char copy_header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
/* timestamptz counts µs from 2000-01-01T00:00:00Z. */
#define PG_EPOCH_USEC INT64_C(946684800000000)

static void archive_note_drop(Archive *a, uint64_t rows, const char *why) {
        a->stats.dropped += rows;
        a->drops_unreported += rows;
        if (ratelimit_below(&a->drop_limit)) {
                log_warning("Archive: %s, %" PRIu64 " event(s) not archived (%" PRIu64 " in total).", why,
                            a->drops_unreported, a->stats.dropped);
                a->drops_unreported = 0;
        }
}

void archive_report(Archive *a) {
        /* Drops after the last warning would otherwise wait for the next
         * drop to be told: the count in the log must add up. */
        if (a && a->drops_unreported > 0 && ratelimit_below(&a->drop_limit)) {
                log_warning("Archive: %" PRIu64 " more event(s) not archived (%" PRIu64 " in total).",
                            a->drops_unreported, a->stats.dropped);
                a->drops_unreported = 0;
        }
}

static void archive_replay(Archive *a);

/* A batch's callback is over: a spilled one leaves the file's accounts,
 * and the link may have room for the next spilled batch. */
static void batch_finish(Batch *b) {
        Archive *a = b->archive;

        if (b->from_spill && a->spill_inflight > 0)
                a->spill_inflight--;
        free(b);
        archive_replay(a);
}

/* Cancelled (the link is being freed): a spilled batch is still in the
 * file, replayed at the next start; any other is lost. */
static void batch_cancelled(Batch *b) {
        if (!b->from_spill)
                b->archive->stats.dropped += b->rows;
        else
                b->archive->stats.kept += b->rows;
}

static void on_batch_checked(DbLink *l, int error, PGresult *res, void *userdata) {
        Batch *b = userdata;
        Archive *a = b->archive;

        if (error == 0 && res && PQntuples(res) > 0) {
                /* The first run committed; the link re-ran it because the
                 * connection broke before the answer came back, and the
                 * marker stopped the second copy. */
                a->stats.stored += b->rows;
                log_notice("Archive batch %s had been stored before the connection broke; not stored twice.",
                           b->name);
        } else if (error == -ECANCELED || a->freeing)
                batch_cancelled(b);
        else {
                a->stats.failed += b->rows;
                log_warning("Archive batch %s (%zu events) was refused by PostgreSQL; those events are not archived.",
                            b->name, b->rows);
        }
        batch_finish(b);
}

static void on_batch_done(DbLink *l, int error, PGresult *res, void *userdata) {
        Batch *b = userdata;
        Archive *a = b->archive;
        const char *name = b->name;
        int r;

        if (error == 0) {
                a->stats.stored += b->rows;
                log_debug("Archive batch %s: %zu rows stored, %.1f ms after queueing.", b->name, b->rows,
                          (double) (now_usec(CLOCK_MONOTONIC) - b->queued) / USEC_PER_MSEC);
                batch_finish(b);
                return;
        }
        if (error == -ECANCELED || a->freeing) {
                batch_cancelled(b);
                batch_finish(b);
                return;
        }

        /* An SQL error: either PostgreSQL refused the batch, or the batch
         * had already committed and its marker refused the re-run. Ask. */
        r = db_link_exec_params(l, "SELECT 1 FROM events_batches WHERE batch = $1", 1, &name,
                                on_batch_checked, b);
        if (r < 0) {
                a->stats.failed += b->rows;
                log_warning_errno(r, "Archive batch %s (%zu events) failed and cannot be checked: %m", b->name,
                                  b->rows);
                batch_finish(b);
        }
}

/*
 * Hand one batch (data[0..len), taken over) to the link. Returns 0, or a
 * negative errno when the link refused it (the rows are then counted as
 * dropped).
 */
static int archive_submit(Archive *a, const char *name, size_t rows, char *data, size_t len, bool from_spill) {
        char pre[sizeof(ARCHIVE_PRUNE_SQL) + 128];
        Batch *b;
        int r;

        b = calloc(1, sizeof(*b));
        if (!b) {
                free(data);
                archive_note_drop(a, rows, "out of memory");
                return -ENOMEM;
        }
        b->archive = a;
        b->rows = rows;
        b->from_spill = from_spill;
        (void) snprintf(b->name, sizeof(b->name), "%s", name);
        (void) snprintf(pre, sizeof(pre), "%sINSERT INTO events_batches (batch) VALUES ('%s')",
                        a->batch_no % ARCHIVE_PRUNE_EVERY == 1 ? ARCHIVE_PRUNE_SQL : "", b->name);

        b->queued = now_usec(CLOCK_MONOTONIC);
        log_debug("Archive batch %s: %zu rows, %zu bytes queued%s.", b->name, b->rows, len,
                  from_spill ? " from the spill file" : "");
        /* The link takes the buffer over, whatever it returns. */
        r = db_link_copy(a->link, pre, ARCHIVE_COPY_SQL, data, len, NULL, on_batch_done, b);
        if (r < 0) {
                archive_note_drop(a, b->rows,
                                  r == -ENOBUFS ? "database buffer full (PostgreSQL away too long?)"
                                                : "cannot queue a batch");
                free(b);
                return r;
        }
        if (from_spill)
                a->spill_inflight++;
        return 0;
}

/* Can the link take a batch of len bytes now, without holding a backlog? */
static bool archive_link_has_room(Archive *a, size_t len) {
        DbLinkStats s;

        if (!db_link_is_connected(a->link))
                return false;
        db_link_get_stats(a->link, &s);
        if (s.queued_jobs >= ARCHIVE_LINK_JOBS)
                return false;
        /* An idle link takes any batch: one spilled with a bigger buffer
         * must not wait forever (the link refuses only one bigger than
         * its whole buffer). */
        return a->buffer_bytes == 0 || s.queued_jobs == 0 ||
               s.queued_bytes + len + ARCHIVE_LINK_MARGIN <= a->buffer_bytes;
}

static bool archive_spill_pending(Archive *a) {
        SpillStats s;

        spill_get_stats(a->spill, &s);
        return s.records > 0;
}

/* Write a batch to the spill file; only a failed write (a full disk) loses
 * it, and then it is counted. */
static void archive_spill_batch(Archive *a, const char *name, size_t rows, const char *data, size_t len) {
        int r;

        r = spill_append(a->spill, name, rows, data, len);
        if (r < 0) {
                archive_note_drop(a, rows,
                                  r == -ENOSPC || r == -EDQUOT ? "disk full, cannot spill" : "cannot write the spill file");
                log_debug_errno(r, "Writing %s failed: %m", spill_get_path(a->spill));
                return;
        }
        a->stats.spilled += rows;
        if (ratelimit_below(&a->spill_limit)) {
                SpillStats s;

                spill_get_stats(a->spill, &s);
                log_notice("Archive: PostgreSQL %s, %" PRIu64 " event(s) wait in %s (%" PRIu64 " bytes).",
                           db_link_is_connected(a->link) ? "lags" : "is away", s.rows, spill_get_path(a->spill),
                           s.bytes);
        }
}

/*
 * Move spilled batches to the link, oldest first, while it has room; when
 * every one of them is stored, empty the file. Runs after every batch and
 * on reconnection.
 */
static void archive_replay(Archive *a) {
        int r;

        if (!a->spill || a->freeing)
                return;
        /* Stopping: what is on disk waits for the next start; only the
         * file's reset below, once the batches in the link are done. */
        while (!a->stopping && archive_spill_pending(a)) {
                _cleanup_(freep) char *name = NULL;
                char *data = NULL;
                uint64_t rows;
                size_t len;
                SpillStats before;

                len = spill_peek(a->spill);
                if (len > 0 && !archive_link_has_room(a, len))
                        return;
                spill_get_stats(a->spill, &before);
                r = spill_next(a->spill, &name, &rows, &data, &len);
                if (r < 0) {
                        archive_note_drop(a, before.rows, "unreadable spill file");
                        log_warning_errno(r, "Cannot read %s, skipping %" PRIu64 " event(s) in it: %m",
                                          spill_get_path(a->spill), before.rows);
                        break;
                }
                if (r == 0)
                        break;
                /* The name goes into SQL: only what archive_flush() makes. */
                if (strspn(name, "0123456789abcdef:") != strlen(name) || strlen(name) >= SD_ID128_STRING_MAX + 24) {
                        free(data);
                        archive_note_drop(a, rows, "corrupt record in the spill file");
                        continue;
                }
                (void) archive_submit(a, name, (size_t) rows, data, len, true);
        }
        if (a->spill_inflight == 0 && !archive_spill_pending(a)) {
                SpillStats s;

                spill_get_stats(a->spill, &s);
                if (s.bytes > 0) {
                        r = spill_reset(a->spill);
                        if (r < 0)
                                log_warning_errno(r, "Cannot empty %s: %m", spill_get_path(a->spill));
                        else
                                log_notice("Archive caught up: every spilled event is in PostgreSQL (%" PRIu64
                                           " spilled in all).",
                                           a->stats.spilled);
                }
        }
}

void archive_flush(Archive *a) {
        char name[SD_ID128_STRING_MAX + 24];
        size_t len, rows;
        char *data;

        if (!a || a->rows == 0)
                return;
        (void) sd_event_source_set_enabled(a->timer, SD_EVENT_OFF);

        /* The file trailer: a tuple of -1 fields. archive_add() reserved
         * the room. */
        (void) put_be16(a->buf + a->len, UINT16_MAX);
        a->len += 2;

        a->batch_no++;
        (void) snprintf(name, sizeof(name), "%s:%" PRIu64, a->run, a->batch_no);
        a->last_len = a->len;
        data = TAKE_PTR(a->buf);
        len = a->len;
        rows = a->rows;
        a->len = a->alloc = 0;
        a->rows = 0;

        /* Order: once anything waits in the spill file, later batches
         * queue behind it. */
        if (a->spill && (archive_spill_pending(a) || !archive_link_has_room(a, len))) {
                archive_spill_batch(a, name, rows, data, len);
                free(data);
                archive_replay(a);
                return;
        }
        (void) archive_submit(a, name, rows, data, len, false);
}

/* More than one batch waiting in the link: let this one grow instead of
 * adding many small ones (fewer transactions while catching up). */
static bool archive_link_busy(Archive *a) {
        DbLinkStats s;

        db_link_get_stats(a->link, &s);
        return s.queued_jobs >= 2;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Archive *a = userdata;

        if (a->rows < ARCHIVE_BATCH_ROWS_MAX && archive_link_busy(a)) {
                (void) sd_event_source_set_time_relative(s, ARCHIVE_BATCH_DELAY);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                return 0;
        }
        archive_flush(a);
        return 0;
}

static void on_link_state(DbLink *l, bool connected, void *userdata) {
        Archive *a = userdata;

        a->stats.connected = connected;
        if (connected)
                archive_replay(a);
}


static int archive_reserve(Archive *a, size_t need) {
        size_t n;
        char *p;

        if (a->buf && a->alloc - a->len >= need)
                return 0;
        n = a->alloc ? a->alloc : (a->last_len + a->last_len / 8 > ARCHIVE_BUF_MIN ? a->last_len + a->last_len / 8
                                                                                    : ARCHIVE_BUF_MIN);
        while (n - a->len < need)
                n *= 2;
        p = realloc(a->buf, n);
        if (!p)
                return -ENOMEM;
        a->buf = p;
        a->alloc = n;
        return 0;
}

void archive_add(Archive *a, const char *topic, size_t topic_len, const ScanEnvelope *e,
                 const char *body, size_t body_len) {
        char host[SCAN_HOST_MAX];
        const char *h = e->host;
        size_t h_len = e->host_len, need;
        char *p;
        int r;

        a->stats.added++;

        if (e->host_escaped) {
                r = scan_unescape(e->host, e->host_len, host, sizeof(host));
                if (r < 0) {
                        archive_note_drop(a, 1, "undecodable host name");
                        return;
                }
                h = host;
                h_len = (size_t) r;
        }

        need = sizeof(copy_header) + 2 + ARCHIVE_FIELDS * 4 + topic_len + e->source_len + h_len + 8 + 8 +
               e->type_len + body_len + 2;
        if (archive_reserve(a, need) < 0) {
                archive_note_drop(a, 1, "out of memory");
                return;
        }

        p = a->buf + a->len;
        if (a->len == 0) {
                memcpy(p, copy_header, sizeof(copy_header));
                p += sizeof(copy_header);
        }
        /* Column order as in ARCHIVE_COPY_SQL. seq and time are int8 and
         * timestamptz (int8 µs since 2000); the rest is text or json, as is. */
        p = put_be16(p, ARCHIVE_FIELDS);
        p = put_field(p, topic, topic_len);
        p = put_field(p, e->source, e->source_len);
        p = put_field(p, h, h_len);
        p = put_be32(p, 8);
        p = put_be64(p, e->seq);
        p = put_be32(p, 8);
        p = put_be64(p, (uint64_t) ((int64_t) e->time - PG_EPOCH_USEC));
        p = put_field(p, e->type, e->type_len);
        p = put_field(p, body, body_len);
        a->len = (size_t) (p - a->buf);

        if (a->rows++ == 0) {
                (void) sd_event_source_set_time_relative(a->timer, ARCHIVE_BATCH_DELAY);
                (void) sd_event_source_set_enabled(a->timer, SD_EVENT_ONESHOT);
        }
        if (a->rows >= ARCHIVE_BATCH_ROWS_MAX || a->len >= a->batch_bytes_max ||
            (a->rows >= ARCHIVE_BATCH_ROWS && !archive_link_busy(a)))
                archive_flush(a);
}

int archive_new(Archive **ret, sd_event *e, const DatabaseConfig *config, const char *state_dir) {
        Archive *a;
        sd_id128_t id;
        int r;

        if (!ret || !e || !config || !config->url || !*config->url)
                return -EINVAL;

        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->event = sd_event_ref(e);
        a->drop_limit = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 1 };
        a->spill_limit = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 1 };
        a->buffer_bytes = config->buffer_bytes;
        /* The link refuses a job bigger than its whole buffer, and a batch
         * waits for room in it: keep batches to a quarter of it. */
        a->batch_bytes_max = ARCHIVE_BUF_MAX;
        if (a->buffer_bytes > 0 && a->buffer_bytes / 4 < a->batch_bytes_max)
                a->batch_bytes_max = (size_t) (a->buffer_bytes / 4);

        r = sd_id128_randomize(&id);
        if (r < 0)
                goto fail;
        sd_id128_to_string(id, a->run);
        log_debug("Archive batches of this run are named %s:<n>.", a->run);

        r = sd_event_add_time_relative(e, &a->timer, CLOCK_MONOTONIC, ARCHIVE_BATCH_DELAY, USEC_PER_MSEC,
                                       on_timer, a);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(a->timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(a->timer, "archive-batch");

        r = db_link_new(&a->link, e, config, "callcenter-eventd");
        if (r < 0)
                goto fail;
        db_link_set_state_handler(a->link, on_link_state, a);

        if (state_dir) {
                SpillStats s;

                r = spill_open(&a->spill, state_dir);
                if (r < 0) {
                        log_error_errno(r, "Cannot open the spill file in %s: %m", state_dir);
                        goto fail;
                }
                spill_get_stats(a->spill, &s);
                if (s.rows > 0) {
                        /* Counted as added, so that lag and totals add up. */
                        a->stats.added += s.rows;
                        log_notice("Archive: %" PRIu64 " event(s) from an earlier run wait in %s; replaying them first.",
                                   s.rows, spill_get_path(a->spill));
                }
        }

        *ret = a;
        return 0;

fail:
        archive_free(a);
        return r;
}

Archive *archive_free(Archive *a) {
        uint64_t before;

        if (!a)
                return NULL;
        a->freeing = true;
        before = a->stats.dropped;
        a->stats.dropped += a->rows;
        /* Cancels queued batches: their callbacks count them as dropped. */
        a->link = db_link_free(a->link);
        if (a->stats.dropped > before)
                log_warning("Archive: %" PRIu64 " event(s) not written to PostgreSQL at exit.",
                            a->stats.dropped - before);
        if (a->spill) {
                SpillStats s;

                spill_get_stats(a->spill, &s);
                if (s.rows + a->stats.kept > 0)
                        log_notice("Archive: %" PRIu64 " event(s) stay in %s for the next start.", s.rows + a->stats.kept,
                                   spill_get_path(a->spill));
        }
        if (a->stats.dropped > 0)
                log_warning("Archive: %" PRIu64 " event(s) were not archived in this run.", a->stats.dropped);
        a->spill = spill_free(a->spill);
        sd_event_source_disable_unref(a->timer);
        sd_event_unref(a->event);
        free(a->buf);
        free(a);
        return NULL;
}

int archive_drain(Archive *a, usec_t timeout) {
        if (!a)
                return 0;
        archive_flush(a);
        /* What is still in the spill file stays there for the next start;
         * only the batches already in the link are waited for. */
        a->stopping = true;
        return db_link_drain(a->link, timeout);
}

void archive_get_stats(const Archive *a, ArchiveStats *ret) {
        if (!a || !ret)
                return;
        *ret = a->stats;
        ret->pending = a->stats.added - a->stats.stored - a->stats.failed - a->stats.dropped;
        if (a->spill) {
                SpillStats s;

                spill_get_stats(a->spill, &s);
                ret->spill_rows = s.rows;
                ret->spill_bytes = s.bytes;
        }
}
