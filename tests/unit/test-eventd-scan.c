/* SPDX-License-Identifier: MIT */
/* eventd's envelope checker (daemons/eventd/scan.c): tables of accepted and
 * refused envelopes, plus agreement with libshared's envelope_format(). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "json-util.h"
#include "cleanup.h"
#include "daemons/eventd/scan.h"
#include "tap.h"
#include "time-util.h"

#define GOOD_TIME "2026-11-22T10:00:00.123456Z"
#define ENV(seq, time, rest) "{\"seq\":" seq ",\"time\":\"" time "\"," rest "}"
#define REST "\"source\":\"router\",\"host\":\"cc1\",\"type\":\"call.ringing\",\"data\":{\"call\":\"1\"}"

static int check(const char *topic, const char *body, ScanEnvelope *e, const char **reason) {
        return scan_envelope(topic, strlen(topic), body, strlen(body), e, reason);
}

static void test_valid(void) {
        static const struct {
                const char *body;
                const char *what;
        } good[] = {
                { ENV("42", GOOD_TIME, REST), "canonical" },
                { " \n\t{\"seq\":1,\"time\":\"2026-11-22T10:00:00Z\"," REST "}\r\n", "whitespace around" },
                { "{\"data\":{},\"type\":\"call.ringing\",\"host\":\"h\",\"source\":\"router\",\"time\":\"2026-11-22t10:00:00z\",\"seq\":0}",
                  "any key order, lower-case t/z, seq 0" },
                { ENV("9223372036854775807", "2026-11-22 10:00:00.5+01:00", REST), "INT64_MAX, offset, space" },
                { ENV("1", GOOD_TIME, "\"extra\":[1,-2.5e3,true,false,null,{\"a\":[]}]," REST), "extra key" },
                { ENV("1", GOOD_TIME, "\"source\":\"router\",\"host\":\"c\\u00e9\\ud83d\\ude00\",\"type\":\"call.ringing\",\"data\":{\"x\":\"\xc3\xa9\xf0\x9f\x98\x80\"}"),
                  "escapes, surrogate pair and raw UTF-8" },
                { ENV("1", GOOD_TIME, "\"x\":\"0123456789abcdef\\\"quoted\\\" \xc3\xa9t\xc3\xa9 0123456789\"," REST),
                  "long string with escapes and UTF-8 past the first words" },
                { ENV("1", "2024-02-29T23:59:60Z", REST), "leap day and leap second" },
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                ScanEnvelope e;
                const char *reason = NULL;
                int r = check("router.call.ringing", good[i].body, &e, &reason);

                ok(r == 0, "accepts %s", good[i].what);
                if (r < 0)
                        diag("reason: %s", reason);
        }
}

static void test_fields(void) {
        ScanEnvelope e;
        char host[64];
        int r;

        r = check("router.call.ringing",
                  ENV("42", "2026-11-22T11:00:00.1234567+01:00",
                      "\"source\":\"router\",\"host\":\"a\\\"b\\\\c\\t\",\"type\":\"call.ringing\",\"data\":{}"),
                  &e, NULL);
        is_int(r, 0, "fields: accepted");
        is_int(e.seq, 42, "fields: seq");
        is_int(e.time, 1795341600123456ULL, "fields: time normalised to UTC, truncated to µs");
        ok(e.source_len == 6 && memcmp(e.source, "router", 6) == 0, "fields: source");
        ok(e.type_len == 12 && memcmp(e.type, "call.ringing", 12) == 0, "fields: type");
        ok(e.host_escaped, "fields: host escaped");
        r = scan_unescape(e.host, e.host_len, host, sizeof(host));
        ok(r == 6 && memcmp(host, "a\"b\\c\t", 6) == 0, "fields: host unescaped");
        is_int(scan_unescape(e.host, e.host_len, host, 3), -ENOBUFS, "unescape: too small a buffer");
}

static void test_invalid(void) {
        static const struct {
                const char *topic;
                const char *body;
                const char *what;
        } bad[] = {
                { "router.call.ringing", "", "empty" },
                { "router.call.ringing", "[]", "array" },
                { "router.call.ringing", "{}", "empty object" },
                { "router.call.ringing", "{\"seq\":1}", "fields missing" },
                { "router.call.ringing", ENV("1", GOOD_TIME, REST) "x", "trailing garbage" },
                { "router.call.ringing", ENV("1", GOOD_TIME, REST) "{}", "two objects" },
                { "router.call.ringing", ENV("1", GOOD_TIME, REST ",\"seq\":2"), "duplicate seq" },
                { "router.call.ringing", ENV("-1", GOOD_TIME, REST), "negative seq" },
                { "router.call.ringing", ENV("1.0", GOOD_TIME, REST), "fractional seq" },
                { "router.call.ringing", ENV("1e3", GOOD_TIME, REST), "exponent seq" },
                { "router.call.ringing", ENV("01", GOOD_TIME, REST), "leading zero" },
                { "router.call.ringing", ENV("9223372036854775808", GOOD_TIME, REST), "seq > INT64_MAX" },
                { "router.call.ringing", ENV("\"1\"", GOOD_TIME, REST), "seq as string" },
                { "router.call.ringing", ENV("1", "2026-11-22T10:00:00", REST), "time without zone" },
                { "router.call.ringing", ENV("1", "2026-02-29T10:00:00Z", REST), "29 Feb in a common year" },
                { "router.call.ringing", ENV("1", "2026-13-01T10:00:00Z", REST), "month 13" },
                { "router.call.ringing", ENV("1", "2026-11-22T24:00:00Z", REST), "hour 24" },
                { "router.call.ringing", ENV("1", "2026-11-22T10:00:00.Z", REST), "empty fraction" },
                { "router.call.ringing", ENV("1", "2026-11-22T10:00:00+24:00", REST), "offset hour 24" },
                { "router.call.ringing", ENV("1", "1969-12-31T23:59:59Z", REST), "before 1970" },
                { "router.call.ringing", ENV("1", "1970-01-01T00:30:00+01:00", REST), "before 1970 after offset" },
                { "router.call.ringing", ENV("1", "now", REST), "relative time" },
                { "router.call.ringing", ENV("1", "2026-11-22T10:00:00\\u005a", REST), "escaped time" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"source\":\"rou ter\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{}"), "space in source" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"source\":\"router\",\"host\":\"h\",\"type\":\"call/ringing\",\"data\":{}"), "slash in type" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":[]"), "data not an object" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"source\":\"router\",\"host\":1,\"type\":\"call.ringing\",\"data\":{}"), "host not a string" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"s\\u0065q\":2," REST), "escaped key" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"x\":\"a\\u0000b\"," REST), "\\u0000" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"x\":\"\\ud800\"," REST), "lone high surrogate" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"x\":\"\\udc00\"," REST), "lone low surrogate" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"x\":\"\\x\"," REST), "bad escape" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"x\":\"a\tb\"," REST), "raw tab in string" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"x\":\"0123456789abc\x01" "defghijklmnop\"," REST), "control byte in a long string" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"x\":\"0123456789abcdefghij\xff\"," REST), "0xff in a long string" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"x\":\"\xc0\xaf\"," REST), "overlong UTF-8" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"x\":\"\xed\xa0\x80\"," REST), "UTF-8 surrogate" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"x\":\"\xf4\x90\x80\x80\"," REST), "above U+10FFFF" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"x\":\"\xe2\x82\"," REST), "truncated UTF-8" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"x\":[1,]," REST), "trailing comma" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"x\":tru," REST), "bad literal" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"x\":-," REST), "bad number" },
                { "router.call.ringing", ENV("1", GOOD_TIME, "\"x\":01," REST), "number with leading zero" },
                { "router.call.ringing", "{\"seq\":1,\"time\":\"" GOOD_TIME "\",\"source\":\"router\"", "unterminated object" },
                { "router.call.ringing", "{\"seq\":1,\"time\":\"" GOOD_TIME, "unterminated string" },
                { "tasks.call.ringing", ENV("1", GOOD_TIME, REST), "topic of another source" },
                { "router.call.ringin", ENV("1", GOOD_TIME, REST), "topic of another type" },
                { "router.call.ringing.", ENV("1", GOOD_TIME, REST), "topic with extra byte" },
                { "", ENV("1", GOOD_TIME, REST), "empty topic" },
                /* The contract is <source>.<entity>.<verb>: a type of one
                 * part, an empty part, or more than two parts is refused,
                 * even when topic and envelope agree. */
                { "probe.x", ENV("1", GOOD_TIME, "\"source\":\"probe\",\"host\":\"h\",\"type\":\"x\",\"data\":{}"), "type of one part (probe.x)" },
                { "probe..", ENV("1", GOOD_TIME, "\"source\":\"probe\",\"host\":\"h\",\"type\":\".\",\"data\":{}"), "type of empty parts (probe..)" },
                { "probe.a.", ENV("1", GOOD_TIME, "\"source\":\"probe\",\"host\":\"h\",\"type\":\"a.\",\"data\":{}"), "empty verb (probe.a.)" },
                { "probe..b", ENV("1", GOOD_TIME, "\"source\":\"probe\",\"host\":\"h\",\"type\":\".b\",\"data\":{}"), "empty entity (probe..b)" },
                { "probe.a.b.c.d.e", ENV("1", GOOD_TIME, "\"source\":\"probe\",\"host\":\"h\",\"type\":\"a.b.c.d.e\",\"data\":{}"), "type of five parts (probe.a.b.c.d.e)" },
                { "probe.a.b.c", ENV("1", GOOD_TIME, "\"source\":\"probe\",\"host\":\"h\",\"type\":\"a.b.c\",\"data\":{}"), "type of three parts" },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *reason = NULL;
                int r = check(bad[i].topic, bad[i].body, NULL, &reason);

                ok(r == -EBADMSG && reason, "refuses %s (%s)", bad[i].what, reason ? reason : "no reason");
        }
}

/* body: an envelope whose data holds n - 2 nested arrays, so that n
 * containers nest in all (the envelope itself counting as 1). */
static char *nested(unsigned n) {
        char *body = malloc(256 + 2 * n), *p = body;

        if (!body)
                return NULL;
        p = stpcpy(p, "{\"seq\":1,\"time\":\"" GOOD_TIME "\",\"source\":\"router\",\"host\":\"h\",\"type\":\"call.ringing\",\"data\":{\"x\":");
        for (unsigned i = 2; i < n; i++)
                *p++ = '[';
        p = stpcpy(p, "1");
        for (unsigned i = 2; i < n; i++)
                *p++ = ']';
        (void) stpcpy(p, "}}");
        return body;
}

/* One nesting limit: whatever the hub archives, callcenterctl events (which
 * reads with envelope_parse()) reads back, and the other way round. */
static void test_depth(void) {
        static const unsigned depths[] = { 2, 10, JSON_DEPTH_MAX - 1, JSON_DEPTH_MAX, JSON_DEPTH_MAX + 1, 40, 64, 65, 70 };

        for (size_t i = 0; i < ELEMENTSOF(depths); i++) {
                _cleanup_(freep) char *body = nested(depths[i]);
                _cleanup_(json_object_putp) struct json_object *o = NULL;
                const char *reason = NULL;
                bool expect = depths[i] <= JSON_DEPTH_MAX;
                Envelope back;
                int r, p;

                r = check("router.call.ringing", body, NULL, &reason);
                p = envelope_parse(body, strlen(body), &back, &o);
                ok((r == 0) == expect, "scan_envelope %s %u levels (limit %d)%s%s", expect ? "accepts" : "refuses",
                   depths[i], JSON_DEPTH_MAX, reason ? ": " : "", reason ? reason : "");
                ok((p == 0) == (r == 0), "envelope_parse agrees at %u levels (%d, %d)", depths[i], r, p);
        }
}

static void test_envelope_format(void) {
        struct json_object *data = json_object_new_object();
        ScanEnvelope e;
        char *body = NULL, topic[ENVELOPE_TOPIC_MAX];
        const char *reason = NULL;
        size_t len = 0;
        int r, n;

        json_object_object_add(data, "call", json_object_new_string("line\n\"quoted\" \\ é"));
        json_object_object_add(data, "n", json_object_new_double(1.5));
        r = envelope_format(&(Envelope) { .seq = 7, .time = 1795341600123456ULL, .source = "router",
                                          .host = "cc\t1", .type = "call.ringing", .data = data },
                            &body, &len);
        is_int(r, 0, "envelope_format");
        n = envelope_topic("router", "call.ringing", topic, sizeof(topic));
        r = scan_envelope(topic, (size_t) n, body, len, &e, &reason);
        ok(r == 0, "accepts what envelope_format() produces (%s)", reason ? reason : "ok");
        is_int(e.seq, 7, "same seq");
        is_int(e.time, 1795341600123456ULL, "same time");
        free(body);
        json_object_put(data);
}

static void test_time(void) {
        usec_t t = 0;

        is_int(scan_time("1970-01-01T00:00:00Z", 20, &t), 0, "epoch");
        is_int(t, 0, "epoch is 0");
        is_int(scan_time("9999-12-31T23:59:59.999999Z", 27, &t), 0, "last instant");
        is_int(scan_time("9999-12-31T23:59:59.999999-00:01", 32, &t), -EBADMSG, "past the last instant");
}

int main(void) {
        test_valid();
        test_fields();
        test_invalid();
        test_depth();
        test_envelope_format();
        test_time();
        return done_testing();
}
