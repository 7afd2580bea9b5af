/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "envelope.h"
#include "json-util.h"
#include "tap.h"

/* 2026-11-22T10:00:00.123456Z */
#define T ((usec_t) 1795341600ULL * USEC_PER_SEC + 123456)

static const struct {
        const char *body;
        const char *why;
} rejects[] = {
        { "", "empty" },
        { "not json", "not JSON" },
        { "[1,2]", "an array" },
        { "\"s\"", "a string" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{}", "truncated" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{}} x", "trailing garbage" },
        { "{\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{}}", "no seq" },
        { "{\"seq\":1,\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{}}", "no time" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{}}", "no source" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"type\":\"call.ringing\",\"data\":{}}", "no host" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":\"h\",\"data\":{}}", "no type" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\"}", "no data" },
        { "{\"seq\":\"1\",\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{}}", "seq a string" },
        { "{\"seq\":-1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{}}", "seq negative" },
        { "{\"seq\":1.5,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{}}", "seq fractional" },
        { "{\"seq\":1,\"time\":1795341600,\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{}}", "time a number" },
        { "{\"seq\":1,\"time\":\"yesterday\",\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{}}", "time not RFC 3339" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00\",\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{}}", "time without offset" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":7,\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{}}", "source a number" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{}}", "source empty" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"rou.ter\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{}}", "source with a dot" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":null,\"type\":\"call.ringing\",\"data\":{}}", "host null" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":\"h\",\"type\":\"call ringing\",\"data\":{}}", "type with a space" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":\"h\",\"type\":[\"x\"],\"data\":{}}", "type an array" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":[]}", "data an array" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":\"x\"}", "data a string" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":null}", "data null" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}", "data nested too deep" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{\"a\":NaN}}", "data with NaN" },
        { "{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\",\"source\":\"router\",\"host\":\"\xff\",\"type\":\"call.ringing\",\"data\":{}}", "host invalid UTF-8" },
};

int main(void) {
        _cleanup_(json_object_putp) struct json_object *data = NULL, *parsed = NULL;
        char *body = NULL, topic[ENVELOPE_TOPIC_MAX], long_type[300];
        Envelope e, back;
        size_t len = 0;
        int r;

        data = json_object_new_object();
        json_object_object_add(data, "call", json_object_new_string("1"));
        json_object_object_add(data, "operator", json_object_new_string("A"));

        e = (Envelope) { .seq = 42, .time = T, .source = "router", .host = "cc1",
                         .type = "call.ringing", .data = data };
        is_int(envelope_format(&e, &body, &len), 0, "format the DESIGN.md example");
        is_str(body,
               "{\"seq\":42,\"time\":\"2026-11-22T10:00:00.123456Z\",\"source\":\"router\","
               "\"host\":\"cc1\",\"type\":\"call.ringing\",\"data\":{\"call\":\"1\",\"operator\":\"A\"}}",
               "body has the DESIGN.md key order and compact form");
        is_int(len, strlen(body), "length is returned");

        is_int(envelope_parse(body, len, &back, &parsed), 0, "parse it back");
        is_int(back.seq, 42, "seq round-trips");
        ok(back.time == T, "time round-trips to the microsecond");
        is_str(back.source, "router", "source round-trips");
        is_str(back.host, "cc1", "host round-trips");
        is_str(back.type, "call.ringing", "type round-trips");
        is_str(json_to_string_compact(back.data), "{\"call\":\"1\",\"operator\":\"A\"}",
               "data round-trips");
        free(body);
        body = NULL;
        json_object_put(TAKE_PTR(parsed));

        /* A host with characters that need escaping, and bytes that are not
         * UTF-8, must still give valid JSON. */
        e.host = "a\"b\\c\n\x01\xff\xc3\xa9/";
        e.data = NULL;
        e.seq = UINT64_MAX - 1;
        is_int(envelope_format(&e, &body, &len), 0, "format with an odd host and no data");
        is_str(body,
               "{\"seq\":18446744073709551614,\"time\":\"2026-11-22T10:00:00.123456Z\","
               "\"source\":\"router\",\"host\":\"a\\\"b\\\\c\\n\\u0001\xef\xbf\xbd\xc3\xa9/\","
               "\"type\":\"call.ringing\",\"data\":{}}",
               "host is escaped, invalid UTF-8 replaced, data defaults to {}");
        is_int(envelope_parse(body, len, &back, &parsed), 0, "odd host parses back");
        is_str(back.host, "a\"b\\c\n\x01\xef\xbf\xbd\xc3\xa9/", "odd host round-trips");
        ok(back.seq == UINT64_MAX - 1, "large seq round-trips");
        free(body);
        body = NULL;
        json_object_put(TAKE_PTR(parsed));

        e = (Envelope) { .seq = 1, .time = T, .source = "router", .host = NULL, .type = "x.y" };
        is_int(envelope_format(&e, &body, NULL), 0, "NULL host formats as empty");
        ok(body && strstr(body, "\"host\":\"\""), "NULL host is \"\"");
        free(body);
        body = NULL;

        /* Bad input to format. */
        e = (Envelope) { .seq = 1, .time = T, .source = "", .host = "h", .type = "call.x" };
        is_int(envelope_format(&e, &body, NULL), -EINVAL, "empty source refused");
        e.source = "rou.ter";
        is_int(envelope_format(&e, &body, NULL), -EINVAL, "source with a dot refused");
        e.source = "router";
        e.type = "call ringing";
        is_int(envelope_format(&e, &body, NULL), -EINVAL, "type with a space refused");
        e.type = "";
        is_int(envelope_format(&e, &body, NULL), -EINVAL, "empty type refused");
        e.type = "x";
        is_int(envelope_format(&e, &body, NULL), -EINVAL, "type of one part refused");
        e.type = "a.b.c";
        is_int(envelope_format(&e, &body, NULL), -EINVAL, "type of three parts refused");
        e.type = ".";
        is_int(envelope_format(&e, &body, NULL), -EINVAL, "type of empty parts refused");
        e.type = "call.x";
        {
                struct json_object *arr = json_object_new_array();
                e.data = arr;
                is_int(envelope_format(&e, &body, NULL), -EINVAL, "array data refused");
                json_object_put(arr);
        }
        ok(body == NULL, "*ret untouched on failure");

        for (size_t i = 0; i < sizeof rejects / sizeof rejects[0]; i++) {
                struct json_object *o = NULL;

                r = envelope_parse(rejects[i].body, strlen(rejects[i].body), &back, &o);
                is_int(r, -EBADMSG, "envelope_parse rejects %s", rejects[i].why);
                ok(o == NULL, "no object returned for %s", rejects[i].why);
        }

        /* Extra keys are tolerated: later versions may add fields. */
        {
                const char *b = "{\"seq\":3,\"time\":\"2026-11-22T11:00:00.5+01:00\",\"source\":\"tasks\","
                                "\"host\":\"h\",\"type\":\"task.created\",\"data\":{\"id\":1},\"v\":2}";
                is_int(envelope_parse(b, strlen(b), &back, &parsed), 0, "extra key accepted");
                ok(back.time == (usec_t) 1795341600ULL * USEC_PER_SEC + 500000,
                   "time with offset is converted to UTC");
                json_object_put(TAKE_PTR(parsed));
        }

        is_int(envelope_topic("router", "call.ringing", topic, sizeof topic), 19, "topic length");
        is_str(topic, "router.call.ringing", "topic text");
        is_int(envelope_topic("router", "call.ringing", topic, 19), -ENAMETOOLONG,
               "topic that does not fit");
        memset(long_type, 'x', sizeof long_type - 1);
        long_type[sizeof long_type - 1] = '\0';
        is_int(envelope_topic("router", long_type, topic, sizeof topic), -ENAMETOOLONG,
               "topic past ENVELOPE_TOPIC_MAX");

        return done_testing();
}
