/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The hub's check of an incoming event (DESIGN.md "Events"): a strict,
 * allocation-free validator of the two frames, fast enough to run on every
 * event at full rate. Pure: no I/O, no clock.
 *
 * It accepts what libshared's envelope_format() produces and everything else
 * the envelope contract allows, and rejects whatever could later break an
 * archive batch in PostgreSQL (invalid UTF-8, "\u0000", lone surrogates,
 * times PostgreSQL would refuse, seq beyond bigint), because one bad row
 * would fail a whole COPY.
 *
 * Rules: the body is one JSON object (RFC 8259, nesting <= JSON_DEPTH_MAX of
 * json-util.h, the limit every reader of events uses,
 * at most SCAN_BODY_MAX bytes) whose top-level keys are plain (no escapes)
 * and unique among seq, time, source, host, type, data; with
 *   seq     an unsigned integer <= INT64_MAX,
 *   time    RFC 3339 ("2026-11-22T10:00:00.123456Z", offsets allowed),
 *           between 1970 and 9999 in UTC,
 *   source  and type as envelope_source_is_valid() / envelope_type_is_valid()
 *           say (type "<entity>.<verb>"), unescaped,
 *   host    a string of at most SCAN_HOST_MAX bytes as written (decoded, it
 *           is never longer),
 *   data    an object;
 * other keys are allowed. The topic frame must be exactly "<source>.<type>",
 * shorter than ENVELOPE_TOPIC_MAX.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "time-util.h"

#define SCAN_BODY_MAX (1024u * 1024u)
#define SCAN_HOST_MAX 1024

typedef struct ScanEnvelope {
        uint64_t seq;
        usec_t time;            /* normalised to UTC µs */
        const char *source;     /* pointers into the body, not NUL-terminated */
        size_t source_len;
        const char *type;
        size_t type_len;
        const char *host;       /* the raw JSON string contents */
        size_t host_len;
        bool host_escaped;      /* host contains escapes: see scan_unescape() */
} ScanEnvelope;

/*
 * Check topic and body. Returns 0 and fills *ret, or -EBADMSG and sets
 * *ret_reason (a static string naming the first problem found; may be NULL).
 */
int scan_envelope(const char *topic, size_t topic_len, const char *body, size_t body_len,
                  ScanEnvelope *ret, const char **ret_reason);

/*
 * Decode the contents of a JSON string that scan_envelope() accepted into
 * buf (UTF-8, not NUL-terminated). Returns the length, or -ENOBUFS when it
 * does not fit, -EBADMSG on a bad escape.
 */
int scan_unescape(const char *s, size_t len, char *buf, size_t size);

/*
 * Parse an RFC 3339 time as described above. Returns 0 and sets *ret, or
 * -EBADMSG.
 */
int scan_time(const char *s, size_t len, usec_t *ret);
