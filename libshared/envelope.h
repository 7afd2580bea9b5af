/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The event envelope of DESIGN.md "Events":
 *   frame 1: topic "<source>.<entity>.<verb>"
 *   frame 2: {"seq":42,"time":"2026-11-22T10:00:00.123456Z","source":"router",
 *             "host":"cc1","type":"call.ringing","data":{...}}
 * Pure: no I/O, no clock reads (time is passed in).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "time-util.h"

#define ENVELOPE_TOPIC_MAX 256

/*
 * The names of the contract, given as (s, n), no NUL needed:
 *   source  [A-Za-z0-9_-]+
 *   type    "<entity>.<verb>": two such names joined by exactly one '.'
 * so that the topic "<source>.<type>" is always <source>.<entity>.<verb>.
 * Such names need no JSON escaping. Pure; shared by envelope_format(),
 * envelope_parse() and eventd's scan_envelope().
 */
bool envelope_source_is_valid(const char *s, size_t n);
bool envelope_type_is_valid(const char *s, size_t n);

typedef struct Envelope {
        uint64_t seq;
        usec_t time;            /* CLOCK_REALTIME µs */
        const char *source;     /* borrowed, see envelope_parse() */
        const char *host;
        const char *type;       /* "<entity>.<verb>" */
        struct json_object *data; /* borrowed */
} Envelope;

/*
 * Format the envelope body. data may be NULL (becomes {}); it is not
 * consumed. Returns 0 and a malloc'd NUL-terminated string in *ret (length in
 * *ret_len if non-NULL), or -EINVAL if source/type are empty or contain
 * not what envelope_source_is_valid() / envelope_type_is_valid() allow,
 * -ENOMEM.
 */
int envelope_format(const Envelope *e, char **ret, size_t *ret_len);

/*
 * Write the topic "<source>.<type>" into buf. Returns its length or
 * -ENAMETOOLONG.
 */
int envelope_topic(const char *source, const char *type, char *buf, size_t size);

/*
 * Parse and validate an envelope body of len bytes. On success returns 0,
 * *ret_obj holds a new reference to the parsed object and *ret points into
 * it (strings borrowed from *ret_obj). -EBADMSG when it is not a JSON object
 * with seq (unsigned integer), time (RFC 3339), source, host, type (strings;
 * source and type as above) and data (object), nested at most JSON_DEPTH_MAX
 * deep.
 */
int envelope_parse(const char *buf, size_t len, Envelope *ret, struct json_object **ret_obj);
