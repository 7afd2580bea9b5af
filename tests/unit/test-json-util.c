/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "json-util.h"
#include "tap.h"

static const struct {
        const char *in;
        int r;
        const char *compact; /* re-serialized, when r == 0 */
} parses[] = {
        { "{}", 0, "{}" },
        { "  {\"a\": 1}  \t", 0, "{\"a\":1}" },
        { "[1, 2, 3]", 0, "[1,2,3]" },
        { "42", 0, "42" },
        { "  42  ", 0, "42" },
        { "-1.5", 0, "-1.5" },
        { "\"x/y\"", 0, "\"x/y\"" },
        { "true", 0, "true" },
        { "null", 0, "null" },
        { "{\"s\":\"caf\xc3\xa9\"}", 0, "{\"s\":\"caf\xc3\xa9\"}" },
        { "{\"u\":\"\\u00e9\\n\"}", 0, "{\"u\":\"\xc3\xa9\\n\"}" },
        /* bad */
        { "", -EBADMSG, NULL },
        { "   ", -EBADMSG, NULL },
        { "{", -EBADMSG, NULL },
        { "{\"a\":1}}", -EBADMSG, NULL },
        { "{\"a\":1} {\"b\":2}", -EBADMSG, NULL },
        { "{\"a\":1}x", -EBADMSG, NULL },
        { "42 43", -EBADMSG, NULL },
        { "{'a':1}", -EBADMSG, NULL },
        { "{\"a\":1,}", -EBADMSG, NULL },
        { "[1,]", -EBADMSG, NULL },
        { "nul", -EBADMSG, NULL },
        { "NaN", -EBADMSG, NULL },
        { "{a:1}", -EBADMSG, NULL },
        { "Infinity", -EBADMSG, NULL },
        { "[-Infinity]", -EBADMSG, NULL },
        { "[1Infinity]", -EBADMSG, NULL },
        { "[1ee5]", -EBADMSG, NULL },
        { "[1e5, 2.5E-3, \"it's /ok/ NaN\"]", 0, "[1e5,2.5E-3,\"it's /ok/ NaN\"]" },
        { "{\"a\":1 /* c */}", -EBADMSG, NULL },
        { "[1] // c", -EBADMSG, NULL },
        { "{\"e\\\"'\":1}", 0, "{\"e\\\"'\":1}" },
        { "\"\xff\"", -EBADMSG, NULL },       /* invalid UTF-8 */
        { "\"\xc3\"", -EBADMSG, NULL },       /* truncated sequence */
        { "{\"a\":\"b", -EBADMSG, NULL },
};

/* n nested arrays around 1: "[[...[1]...]]". */
static char *nested(unsigned n) {
        char *s = malloc(2 * n + 2);
        memset(s, '[', n);
        s[n] = '1';
        memset(s + n + 1, ']', n);
        s[2 * n + 1] = '\0';
        return s;
}

int main(void) {
        struct json_object *o = NULL;
        const char *str;
        uint64_t u;
        bool b;
        char *deep;

        for (size_t i = 0; i < sizeof parses / sizeof parses[0]; i++) {
                struct json_object *v = (struct json_object *) 0x1;
                int r = json_parse(parses[i].in, strlen(parses[i].in), &v);

                is_int(r, parses[i].r, "json_parse('%s') returns %d", parses[i].in, parses[i].r);
                if (parses[i].r == 0) {
                        is_str(v ? json_to_string_compact(v) : "null", parses[i].compact,
                               "json_parse('%s') value", parses[i].in);
                        json_object_put(v);
                } else
                        ok(v == (struct json_object *) 0x1, "json_parse('%s') leaves *ret alone",
                           parses[i].in);
        }

        /* Only len bytes are read: a prefix parses on its own and the
         * buffer needs no NUL. */
        is_int(json_parse("{\"a\":1}garbage", 7, &o), 0, "json_parse stops at len");
        json_object_put(o);
        is_int(json_parse("12345", 3, &o), 0, "number cut by len");
        is_int(json_object_get_int(o), 123, "number cut by len is 123");
        json_object_put(o);
        is_int(json_parse("{\"a\":1}\0{}", 10, &o), -EBADMSG, "an embedded NUL is refused");

        deep = nested(32);
        is_int(json_parse(deep, strlen(deep), &o), 0, "32 levels of nesting are fine");
        json_object_put(o);
        free(deep);
        deep = nested(33);
        is_int(json_parse(deep, strlen(deep), &o), -E2BIG, "33 levels of nesting are -E2BIG");
        free(deep);
        deep = nested(100000);
        is_int(json_parse(deep, strlen(deep), &o), -E2BIG, "100000 levels are -E2BIG");
        free(deep);

        is_int(json_parse_object("[1]", 3, &o), -EBADMSG, "json_parse_object refuses an array");
        is_int(json_parse_object("\"s\"", 3, &o), -EBADMSG, "json_parse_object refuses a string");
        is_int(json_parse_object("null", 4, &o), -EBADMSG, "json_parse_object refuses null");

        str = "{\"s\":\"v\",\"n\":7,\"neg\":-1,\"big\":18446744073709551614,"
              "\"huge\":99999999999999999999999,\"f\":2.5,\"fi\":3.0,\"b\":true,\"z\":null,"
              "\"i64max\":9223372036854775807}";
        is_int(json_parse_object(str, strlen(str), &o), 0, "parse the getter fixture");

        is_int(json_get_string(o, "s", &str), 0, "get string");
        is_str(str, "v", "string value");
        is_int(json_get_string(o, "n", &str), -EBADMSG, "a number is not a string");
        is_int(json_get_string(o, "missing", &str), -ENOENT, "missing string");
        is_int(json_get_string(o, "z", &str), -ENOENT, "null counts as missing");

        is_int(json_get_uint64(o, "n", &u), 0, "get uint64");
        is_int(u, 7, "uint64 value");
        is_int(json_get_uint64(o, "big", &u), 0, "get uint64 above INT64_MAX");
        ok(u == 18446744073709551614ULL, "uint64 above INT64_MAX keeps its value");
        is_int(json_get_uint64(o, "i64max", &u), 0, "get INT64_MAX");
        ok(u == 9223372036854775807ULL, "INT64_MAX keeps its value");
        is_int(json_get_uint64(o, "neg", &u), -EBADMSG, "negative is not uint64");
        is_int(json_get_uint64(o, "huge", &u), -EBADMSG, "beyond uint64 is refused");
        is_int(json_get_uint64(o, "f", &u), -EBADMSG, "2.5 is not an integer");
        is_int(json_get_uint64(o, "fi", &u), 0, "3.0 is an integer");
        is_int(u, 3, "3.0 reads as 3");
        is_int(json_get_uint64(o, "s", &u), -EBADMSG, "a string is not uint64");
        is_int(json_get_uint64(o, "missing", &u), -ENOENT, "missing uint64");

        is_int(json_get_bool(o, "b", &b), 0, "get bool");
        is_int(b, 1, "bool value");
        is_int(json_get_bool(o, "n", &b), -EBADMSG, "a number is not a bool");
        is_int(json_get_bool(o, "missing", &b), -ENOENT, "missing bool");
        json_object_put(o);

        o = json_object_new_object();
        json_object_object_add(o, "path", json_object_new_string("/run/x"));
        json_object_object_add(o, "n", json_object_new_int(1));
        is_str(json_to_string_compact(o), "{\"path\":\"/run/x\",\"n\":1}",
               "compact output has no spaces and does not escape '/'");
        json_object_put(o);

        return done_testing();
}
