/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The event envelope of DESIGN.md "Events":
 *   frame 1: topic "<source>.<entity>.<verb>"
 *   frame 2: {"seq":42,"time":"2026-11-22T10:00:00.123456Z","source":"router",
 *             "host":"cc1","type":"call.ringing","data":{...}}
 * Pure: no I/O, no clock reads (time is passed in).
 */

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "time-util.h"

#define ENVELOPE_TOPIC_MAX 256

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
 * characters outside [A-Za-z0-9_-] (type: also '.'), -ENOMEM.
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
 * with seq (unsigned integer), time (RFC 3339), source, host, type (strings)
 * and data (object).
 */
int envelope_parse(const char *buf, size_t len, Envelope *ret, struct json_object **ret_obj);
