/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "utf8.h"
#include "json-util.h"

/*
 * envelope_format() runs once per event, well over 100k times a second on a
 * busy router, so it writes the body by hand into one buffer sized up front
 * rather than building a json-c object tree for the fixed fields. Only
 * "data" goes through json-c. The key order is the one of DESIGN.md:
 * seq, time, source, host, type, data.
 */

static bool is_name_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
}

bool envelope_source_is_valid(const char *s, size_t n) {
        if (!s || n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_name_char(s[i]))
                        return false;
        return true;
}

/* Subscribers filter on topic prefixes ("router.call."), so the number of
 * parts is part of the contract: "probe.x" or "probe.a.b.c" would match
 * filters meant for other events, or none. */
bool envelope_type_is_valid(const char *s, size_t n) {
        const char *dot;

        if (!s || n == 0)
                return false;
        dot = memchr(s, '.', n);
        if (!dot)
                return false;
        return envelope_source_is_valid(s, (size_t) (dot - s)) &&
               envelope_source_is_valid(dot + 1, n - (size_t) (dot - s) - 1);
}

static bool names_are_valid(const char *source, const char *type) {
        return source && type && envelope_source_is_valid(source, strlen(source)) &&
               envelope_type_is_valid(type, strlen(type));
}

/* Worst case of json_escape(): every byte becomes "\u00XX" (6 bytes). */
#define JSON_ESCAPE_MAX(n) ((n) * 6 + 2)

/*
 * Write s as a quoted JSON string at p, returning the end. Control
 * characters are escaped; invalid UTF-8 becomes U+FFFD so that the body
 * stays valid JSON whatever gethostname() returned (subscribers parse with
 * UTF-8 validation on).
 */
static char *json_escape(char *p, const char *str) {
        static const char hex[] = "0123456789abcdef";
        const unsigned char *s = (const unsigned char *) str;
        size_t n = strlen(str);

        *p++ = '"';
        while (n > 0) {
                unsigned c = *s;
                size_t l;

                if (c == '"' || c == '\\') {
                        *p++ = '\\';
                        *p++ = (char) c;
                        s++, n--;
                        continue;
                }
                if (c < 0x20) {
                        *p++ = '\\';
                        switch (c) {
                        case '\n': *p++ = 'n'; break;
                        case '\r': *p++ = 'r'; break;
                        case '\t': *p++ = 't'; break;
                        case '\b': *p++ = 'b'; break;
                        case '\f': *p++ = 'f'; break;
                        default:
                                p = stpcpy(p, "u00");
                                *p++ = hex[c >> 4];
                                *p++ = hex[c & 15];
                        }
                        s++, n--;
                        continue;
                }
                l = utf8_sequence_len(s, n);
                if (l == 0) {
                        p = stpcpy(p, "\xef\xbf\xbd"); /* U+FFFD, 3 of the 6 bytes we allow */
                        s++, n--;
                        continue;
                }
                memcpy(p, s, l);
                p += l;
                s += l, n -= l;
        }
        *p++ = '"';
        return p;
}

int envelope_format(const Envelope *e, char **ret, size_t *ret_len) {
        char ts[RFC3339_MAX], seq[24];
        const char *data = "{}", *host;
        size_t data_len = 2, alloc, len;
        char *buf, *p;

        if (!e || !ret)
                return -EINVAL;
        if (!names_are_valid(e->source, e->type))
                return -EINVAL;
        if (e->data) {
                /* Subscribers require an object; refuse anything else here,
                 * where the mistake is made, not at every receiver. */
                if (!json_object_is_type(e->data, json_type_object))
                        return -EINVAL;
                data = json_object_to_json_string_length(
                        e->data, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &data_len);
                if (!data)
                        return -ENOMEM;
        }
        host = e->host ? e->host : "";

        (void) snprintf(seq, sizeof seq, "%" PRIu64, e->seq);
        (void) format_timestamp_rfc3339(ts, e->time);

        alloc = sizeof("{\"seq\":,\"time\":\"\",\"source\":\"\",\"host\":,\"type\":\"\",\"data\":}") +
                strlen(seq) + strlen(ts) + strlen(e->source) + JSON_ESCAPE_MAX(strlen(host)) +
                strlen(e->type) + data_len;
        buf = malloc(alloc);
        if (!buf)
                return -ENOMEM;

        /* source and type were validated above and need no escaping. */
        p = stpcpy(buf, "{\"seq\":");
        p = stpcpy(p, seq);
        p = stpcpy(p, ",\"time\":\"");
        p = stpcpy(p, ts);
        p = stpcpy(p, "\",\"source\":\"");
        p = stpcpy(p, e->source);
        p = stpcpy(p, "\",\"host\":");
        p = json_escape(p, host);
        p = stpcpy(p, ",\"type\":\"");
        p = stpcpy(p, e->type);
        p = stpcpy(p, "\",\"data\":");
        memcpy(p, data, data_len);
        p += data_len;
        *p++ = '}';
        *p = '\0';
        len = (size_t) (p - buf);

        *ret = buf;
        if (ret_len)
                *ret_len = len;
        return 0;
}

int envelope_topic(const char *source, const char *type, char *buf, size_t size) {
        int n;

        if (!source || !type || !buf)
                return -EINVAL;
        n = snprintf(buf, size, "%s.%s", source, type);
        if (n < 0)
                return -EINVAL;
        if ((size_t) n >= size || n >= ENVELOPE_TOPIC_MAX)
                return -ENAMETOOLONG;
        return n;
}

int envelope_parse(const char *buf, size_t len, Envelope *ret, struct json_object **ret_obj) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *data = NULL;
        const char *time_str, *source, *host, *type;
        uint64_t seq;
        usec_t t;

        if (!ret || !ret_obj)
                return -EINVAL;
        /* Every failure below is the sender's: one error code for all of
         * them, as the header promises. */
        if (json_parse_object(buf, len, &o) < 0)
                return -EBADMSG;
        if (json_get_uint64(o, "seq", &seq) < 0 ||
            json_get_string(o, "time", &time_str) < 0 ||
            json_get_string(o, "source", &source) < 0 ||
            json_get_string(o, "host", &host) < 0 ||
            json_get_string(o, "type", &type) < 0)
                return -EBADMSG;
        if (parse_timestamp_rfc3339(time_str, &t) < 0)
                return -EBADMSG;
        /* Same rules as when formatting: a source or type that we would
         * refuse to send would also break topic matching. */
        if (!names_are_valid(source, type))
                return -EBADMSG;
        if (!json_object_object_get_ex(o, "data", &data) ||
            !json_object_is_type(data, json_type_object))
                return -EBADMSG;

        *ret = (Envelope) {
                .seq = seq,
                .time = t,
                .source = source,
                .host = host,
                .type = type,
                .data = data,
        };
        *ret_obj = TAKE_PTR(o);
        return 0;
}
