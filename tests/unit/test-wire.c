/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of routerd's wire module (daemons/routerd/wire.c): request
 * parsing over a table of good and nasty lines, the 64 KiB framing, error
 * mapping and human lines, reply/notice formatting.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "daemons/routerd/wire.h"
#include "json-util.h"
#include "tests/tap.h"

/* Expected outcome: "call 1" (command and id), "call 1 queue=sales",
 * "status" or "!bad_json". */
typedef struct ParseCase {
        const char *line;
        size_t len;                  /* 0: strlen(line) */
        const char *expect;
} ParseCase;

#define L(s) s, sizeof(s) - 1        /* a literal with embedded NULs */

/* Printable rendering of test input for TAP descriptions (no newlines). */
static const char *visible(const char *s, size_t len, char *buf, size_t size) {
        size_t o = 0;

        for (size_t i = 0; i < len && o + 5 < size; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c >= 0x20 && c < 0x7f && c != '#')
                        buf[o++] = (char) c;
                else
                        o += (size_t) snprintf(buf + o, size - o, "\\x%02x", c);
        }
        buf[o] = 0;
        return buf;
}

static void render_parse(const char *line, size_t len, char *buf, size_t size) {
        WireRequest req;
        WireError e = _WIRE_ERROR_INVALID;
        int r = wire_parse_request(line, len, &req, &e);

        if (r < 0)
                snprintf(buf, size, "!%s%s", wire_error_to_string(e) ?: "?", r == -EBADMSG ? "" : " (bad errno)");
        else if (req.command == WIRE_COMMAND_STATUS &&
                 (req.offset != 0 || req.limit != WIRE_STATUS_LIMIT_DEFAULT))
                snprintf(buf, size, "status offset=%u limit=%u", req.offset, req.limit);
        else if (req.queue[0])
                snprintf(buf, size, "%s %s queue=%s", wire_command_to_string(req.command), req.id, req.queue);
        else if (req.id[0])
                snprintf(buf, size, "%s %s", wire_command_to_string(req.command), req.id);
        else
                snprintf(buf, size, "%s", wire_command_to_string(req.command));
}

static void test_parse(void) {
        static const ParseCase table[] = {
                /* The seeds' requests. */
                { "{\"command\":\"call\",\"id\":\"1\"}", 0, "call 1" },
                { "{\"command\":\"answer\",\"id\":\"A\"}", 0, "answer A" },
                { "{\"command\":\"reject\",\"id\":\"B\"}", 0, "reject B" },
                { "{\"command\":\"hangup\",\"id\":\"1\"}", 0, "hangup 1" },
                { "{\"command\":\"status\"}", 0, "status" },
                { "{\"command\":\"subscribe\"}", 0, "subscribe" },
                { "{\"command\":\"status\",\"id\":\"ignored\"}", 0, "status" },
                { "{\"command\":\"subscribe\",\"id\":[1,2]}", 0, "subscribe" },
                /* Layout and extra keys do not matter. */
                { "  { \"id\" : \"7\" , \"command\" : \"call\" , \"x\": {\"y\": [null]} }  ", 0, "call 7" },
                { "{\"command\":\"call\",\"id\":\"1\"}\r", 0, "call 1" },
                { "{\"command\":\"call\",\"id\":\"a\\/b\"}", 0, "call a/b" },
                { "{\"command\":\"call\",\"id\":\"\\u0041\"}", 0, "call A" },
                /* Duplicate keys: json-c keeps the last. */
                { "{\"command\":\"hangup\",\"command\":\"call\",\"id\":\"1\"}", 0, "call 1" },
                /* Integer ids are taken in decimal form. */
                { "{\"command\":\"call\",\"id\":42}", 0, "call 42" },
                { "{\"command\":\"call\",\"id\":0}", 0, "call 0" },
                { "{\"command\":\"call\",\"id\":9223372036854775807}", 0, "call 9223372036854775807" },
                { "{\"command\":\"call\",\"id\":18446744073709551614}", 0, "call 18446744073709551614" },
                { "{\"command\":\"call\",\"id\":-1}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"id\":1.5}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"id\":1.0}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"id\":1e3}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"id\":99999999999999999999999}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"id\":true}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"id\":[\"1\"]}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"id\":{}}", 0, "!bad_id" },
                /* Bad ids. */
                { "{\"command\":\"call\",\"id\":\"\"}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"id\":\"a b\"}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"id\":\"a\\tb\"}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"id\":\"a\\nb\"}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"id\":\"a\\u0000b\"}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"id\":\"\\u0000\"}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"id\":\"caf\\u00e9\"}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"id\":\"caf\xc3\xa9\"}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"id\":\"\\u007f\"}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"id\":\"1234567890123456789012345678901234567890123456789012345678901234\"}", 0,
                  "call 1234567890123456789012345678901234567890123456789012345678901234" },
                { "{\"command\":\"call\",\"id\":\"12345678901234567890123456789012345678901234567890123456789012345\"}", 0,
                  "!bad_id" },
                /* The optional queue of a call (an extension of the
                 * seeds' format): absent or null is the default queue. */
                { "{\"command\":\"call\",\"id\":\"1\",\"queue\":\"sales\"}", 0, "call 1 queue=sales" },
                { "{\"queue\":\"sales\",\"id\":5,\"command\":\"call\"}", 0, "call 5 queue=sales" },
                { "{\"command\":\"call\",\"id\":\"1\",\"queue\":\"default\"}", 0, "call 1 queue=default" },
                { "{\"command\":\"call\",\"id\":\"1\",\"queue\":\"\\u0073ales\"}", 0, "call 1 queue=sales" },
                { "{\"command\":\"call\",\"id\":\"1\",\"queue\":null}", 0, "call 1" },
                { "{\"command\":\"call\",\"id\":\"1\",\"queue\":\"1234567890123456789012345678901234567890123456789012345678901234\"}", 0,
                  "call 1 queue=1234567890123456789012345678901234567890123456789012345678901234" },
                { "{\"command\":\"call\",\"id\":\"1\",\"queue\":\"12345678901234567890123456789012345678901234567890123456789012345\"}", 0,
                  "!bad_queue" },
                { "{\"command\":\"call\",\"id\":\"1\",\"queue\":\"\"}", 0, "!bad_queue" },
                { "{\"command\":\"call\",\"id\":\"1\",\"queue\":\"a b\"}", 0, "!bad_queue" },
                { "{\"command\":\"call\",\"id\":\"1\",\"queue\":\"sales\\n\"}", 0, "!bad_queue" },
                { "{\"command\":\"call\",\"id\":\"1\",\"queue\":\"a\\u0000b\"}", 0, "!bad_queue" },
                { "{\"command\":\"call\",\"id\":\"1\",\"queue\":\"caf\\u00e9\"}", 0, "!bad_queue" },
                { "{\"command\":\"call\",\"id\":\"1\",\"queue\":7}", 0, "!bad_queue" },
                { "{\"command\":\"call\",\"id\":\"1\",\"queue\":true}", 0, "!bad_queue" },
                { "{\"command\":\"call\",\"id\":\"1\",\"queue\":[\"sales\"]}", 0, "!bad_queue" },
                { "{\"command\":\"call\",\"id\":\"1\",\"queue\":{}}", 0, "!bad_queue" },
                /* The id is checked first; other commands ignore "queue". */
                { "{\"command\":\"call\",\"id\":\"a b\",\"queue\":\"\"}", 0, "!bad_id" },
                { "{\"command\":\"call\",\"queue\":\"sales\"}", 0, "!missing_id" },
                { "{\"command\":\"answer\",\"id\":\"A\",\"queue\":\"sales\"}", 0, "answer A" },
                { "{\"command\":\"hangup\",\"id\":\"1\",\"queue\":7}", 0, "hangup 1" },
                { "{\"command\":\"status\",\"queue\":\"\"}", 0, "status" },
                /* A page of status: offset and limit, integers in range;
                 * a limit above the maximum is the maximum. */
                { "{\"command\":\"status\",\"offset\":0,\"limit\":100}", 0, "status" },
                { "{\"command\":\"status\",\"offset\":null,\"limit\":null}", 0, "status" },
                { "{\"command\":\"status\",\"offset\":200,\"limit\":50}", 0, "status offset=200 limit=50" },
                { "{\"command\":\"status\",\"limit\":0}", 0, "status offset=0 limit=0" },
                { "{\"command\":\"status\",\"limit\":100000}", 0, "status offset=0 limit=1000" },
                { "{\"command\":\"status\",\"offset\":1000000000}", 0, "status offset=1000000000 limit=100" },
                { "{\"command\":\"status\",\"offset\":1000000001}", 0, "!bad_argument" },
                { "{\"command\":\"status\",\"offset\":-1}", 0, "!bad_argument" },
                { "{\"command\":\"status\",\"limit\":1.5}", 0, "!bad_argument" },
                { "{\"command\":\"status\",\"limit\":\"10\"}", 0, "!bad_argument" },
                { "{\"command\":\"status\",\"offset\":[1]}", 0, "!bad_argument" },
                { "{\"command\":\"status\",\"offset\":99999999999999999999999}", 0, "!bad_argument" },
                /* Other commands ignore them. */
                { "{\"command\":\"call\",\"id\":\"1\",\"offset\":\"x\"}", 0, "call 1" },
                /* Missing things. */
                { "{\"command\":\"call\"}", 0, "!missing_id" },
                { "{\"command\":\"answer\",\"id\":null}", 0, "!missing_id" },
                { "{\"id\":\"1\"}", 0, "!missing_command" },
                { "{}", 0, "!missing_command" },
                { "{\"command\":null,\"id\":\"1\"}", 0, "!missing_command" },
                /* Unknown commands. */
                { "{\"command\":\"CALL\",\"id\":\"1\"}", 0, "!unknown_command" },
                { "{\"command\":\"quit\"}", 0, "!unknown_command" },
                { "{\"command\":\"\"}", 0, "!unknown_command" },
                { "{\"command\":1,\"id\":\"1\"}", 0, "!unknown_command" },
                { "{\"command\":[\"call\"],\"id\":\"1\"}", 0, "!unknown_command" },
                { "{\"command\":\"call\\u0000\",\"id\":\"1\"}", 0, "!unknown_command" },
                /* Not objects. */
                { "[]", 0, "!not_object" },
                { "[{\"command\":\"call\",\"id\":\"1\"}]", 0, "!not_object" },
                { "42", 0, "!not_object" },
                { "\"call\"", 0, "!not_object" },
                { "null", 0, "!not_object" },
                { "true", 0, "!not_object" },
                /* Not JSON. */
                { "", 0, "!bad_json" },
                { "   ", 0, "!bad_json" },
                { "call 1", 0, "!bad_json" },
                { "{", 0, "!bad_json" },
                { "{\"command\":\"call\",\"id\":\"1\"", 0, "!bad_json" },
                { "{\"command\":\"call\",\"id\":\"1\"}}", 0, "!bad_json" },
                { "{\"command\":\"call\",\"id\":\"1\"}{\"command\":\"call\",\"id\":\"2\"}", 0, "!bad_json" },
                { "{\"command\":\"call\",\"id\":\"1\"} x", 0, "!bad_json" },
                { "{'command':'call','id':'1'}", 0, "!bad_json" },
                { "{command:\"call\",id:\"1\"}", 0, "!bad_json" },
                { "{\"command\":\"call\",\"id\":\"1\",}", 0, "!bad_json" },
                { "\xef\xbb\xbf{\"command\":\"status\"}", 0, "!bad_json" },
                { "{\"command\":\"call\",\"id\":\"\xff\"}", 0, "!bad_json" },
                { "{\"command\":\"call\",\"id\":\"\xc3\"}", 0, "!bad_json" },
                /* UTF-16 surrogates and overlong forms are not UTF-8: the
                 * line is not JSON (json_parse() checks RFC 3629 itself).
                 * Strict mode still takes a raw tab in a string: refused as
                 * an id. */
                { "{\"command\":\"call\",\"id\":\"\xed\xa0\x80\"}", 0, "!bad_json" },
                { "{\"command\":\"call\",\"id\":\"\xc0\xaf\"}", 0, "!bad_json" },
                { "{\"command\":\"status\",\"x\":\"\xc0\xaf\"}", 0, "!bad_json" },
                { "{\"command\":\"call\",\"id\":\"a\tb\"}", 0, "!bad_id" },
                { L("{\"command\":\"call\",\"id\":\"1\"}\0"), "!bad_json" },
                { L("{\"command\":\"call\",\"id\":\"1\0\"}"), "!bad_json" },
                { L("\0"), "!bad_json" },
                { "{\"command\":\"status\",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
                  0, "!bad_json" },
                { "{\"command\":\"status\",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", 0, "status" },
        };
        char out[256], vis[96];

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                size_t len = table[i].len ? table[i].len : strlen(table[i].line);

                render_parse(table[i].line, len, out, sizeof(out));
                is_str(out, table[i].expect, "parse #%zu %s", i, visible(table[i].line, len, vis, sizeof(vis)));
        }
}

static void test_parse_long(void) {
        char *line, out[256];
        size_t n;
        WireRequest req = { .command = WIRE_COMMAND_STATUS, .id = "untouched", .queue = "untouched" };
        WireError e = WIRE_ERROR_INTERNAL;

        /* A valid request padded to exactly the limit parses; one more byte
         * does not, even if the caller bypassed the framer. */
        line = malloc(WIRE_LINE_MAX + 2);
        if (!line)
                return (void) ok(0, "malloc");
        n = (size_t) snprintf(line, WIRE_LINE_MAX + 2, "{\"command\":\"call\",\"id\":\"9\",\"pad\":\"");
        memset(line + n, 'x', WIRE_LINE_MAX - n - 2);
        memcpy(line + WIRE_LINE_MAX - 2, "\"}", 2);
        render_parse(line, WIRE_LINE_MAX, out, sizeof(out));
        is_str(out, "call 9", "parse: a line of exactly 64 KiB");
        line[WIRE_LINE_MAX] = ' ';
        render_parse(line, WIRE_LINE_MAX + 1, out, sizeof(out));
        is_str(out, "!line_too_long", "parse: one byte more");

        /* A huge id inside a line within the limit. */
        n = (size_t) snprintf(line, WIRE_LINE_MAX, "{\"command\":\"call\",\"id\":\"");
        memset(line + n, '7', 60000);
        memcpy(line + n + 60000, "\"}", 3);
        render_parse(line, strlen(line), out, sizeof(out));
        is_str(out, "!bad_id", "parse: a 60000-byte id");

        /* On failure nothing is written to ret. */
        ok(wire_parse_request("[]", 2, &req, &e) == -EBADMSG && e == WIRE_ERROR_NOT_OBJECT &&
           req.command == WIRE_COMMAND_STATUS && strcmp(req.id, "untouched") == 0 &&
           strcmp(req.queue, "untouched") == 0,
           "parse: ret untouched on failure");
        ok(wire_parse_request(L("{\"command\":\"call\",\"id\":\"1\",\"queue\":1}"), &req, &e) == -EBADMSG &&
           e == WIRE_ERROR_BAD_QUEUE && strcmp(req.id, "untouched") == 0 && strcmp(req.queue, "untouched") == 0,
           "parse: ret untouched on a bad queue");
        ok(wire_parse_request(L("{\"command\":\"call\",\"id\":\"1\",\"queue\":\"q\"}"), &req, &e) == 0 &&
           wire_parse_request(L("{\"command\":\"call\",\"id\":\"2\"}"), &req, &e) == 0 && req.queue[0] == 0,
           "parse: no queue left over from an earlier request");
        ok(wire_parse_request("[]", 2, &req, NULL) == -EBADMSG, "parse: ret_error may be NULL");
        ok(wire_parse_request(NULL, 1, &req, &e) == -EINVAL, "parse: NULL line refused");
        free(line);
}

/* Feed input in chunks; render what the framer reports. */
static void frame(const char *input, size_t len, size_t chunk, char *out, size_t size) {
        WireFramer f = {};
        char *buf = malloc(len + 1);
        size_t have = 0, pos = 0;

        out[0] = 0;
        if (!buf)
                return;
        while (pos < len) {
                size_t n = len - pos < chunk ? len - pos : chunk, off = 0, used = 0, line_len = 0;
                WireFrame r;

                memcpy(buf + have, input + pos, n);
                have += n;
                pos += n;
                while ((r = wire_frame_next(&f, buf + off, have - off, &line_len, &used)) != WIRE_FRAME_NEED_MORE) {
                        size_t o = strlen(out);

                        if (r == WIRE_FRAME_LINE)
                                snprintf(out + o, size - o, "[%.*s]", (int) (line_len > 20 ? 20 : line_len), buf + off);
                        else if (r == WIRE_FRAME_TOO_LONG)
                                snprintf(out + o, size - o, "<too long>");
                        if (used == 0) {
                                snprintf(out + o, size - o, "<no progress>");
                                free(buf);
                                return;
                        }
                        off += used;
                }
                off += used;
                memmove(buf, buf + off, have - off);
                have -= off;
                if (have > WIRE_LINE_MAX) {
                        snprintf(out + strlen(out), size - strlen(out), "<buffer %zu>", have);
                        break;
                }
        }
        if (have > 0)
                snprintf(out + strlen(out), size - strlen(out), "(+%zu)", have);
        free(buf);
}

static void test_framing(void) {
        static const struct {
                const char *input;
                const char *expect;
        } table[] = {
                { "a\nb\n", "[a][b]" },
                { "a\r\nb\r\n", "[a][b]" },
                { "\n\n", "[][]" },
                { "\r\n", "[]" },
                { "a\rb\n", "[a\rb]" },
                { "a\nb\nc\nd", "[a][b][c](+1)" },
                { "abc", "(+3)" },
                { "a\nbc", "[a](+2)" },
        };
        const size_t chunks[] = { 1, 2, 3, 1000 };
        char out[512], vis[64];
        char *big;
        size_t n;

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                for (size_t c = 0; c < ELEMENTSOF(chunks); c++) {
                        frame(table[i].input, strlen(table[i].input), chunks[c], out, sizeof(out));
                        is_str(out, table[i].expect, "frame '%s' in chunks of %zu",
                               visible(table[i].input, strlen(table[i].input), vis, sizeof(vis)), chunks[c]);
                }

        /* The limit: WIRE_LINE_MAX bytes plus newline pass, one more byte
         * is refused once, and the line after it is read normally. */
        n = 3 * WIRE_LINE_MAX;
        big = malloc(n);
        if (!big)
                return (void) ok(0, "malloc");
        memset(big, 'x', n);
        big[WIRE_LINE_MAX] = '\n';
        memcpy(big + WIRE_LINE_MAX + 1, "ok\n", 3);
        for (size_t c = 0; c < ELEMENTSOF(chunks); c++) {
                frame(big, WIRE_LINE_MAX + 4, chunks[c] * 4096, out, sizeof(out));
                is_str(out, "[xxxxxxxxxxxxxxxxxxxx][ok]", "frame: exactly 64 KiB passes (chunks of %zu)", chunks[c] * 4096);
        }

        memset(big, 'x', n);
        big[WIRE_LINE_MAX + 1] = '\n';
        memcpy(big + WIRE_LINE_MAX + 2, "ok\n", 3);
        for (size_t c = 0; c < ELEMENTSOF(chunks); c++) {
                frame(big, WIRE_LINE_MAX + 5, chunks[c] * 4096, out, sizeof(out));
                is_str(out, "<too long>[ok]", "frame: 64 KiB + 1 refused once, next line read (chunks of %zu)",
                       chunks[c] * 4096);
        }
        /* Chunks of one byte too, the slow way round. */
        frame(big, WIRE_LINE_MAX + 5, 1, out, sizeof(out));
        is_str(out, "<too long>[ok]", "frame: over-long line fed byte by byte");

        /* A line far over the limit with no newline yet: the buffer stays
         * bounded while it is dropped. */
        memset(big, 'y', n);
        memcpy(big + n - 4, "\nz\n", 3);
        frame(big, n - 1, 65536, out, sizeof(out));
        is_str(out, "<too long>[z]", "frame: 192 KiB line dropped in passing");
        free(big);
}

static void test_errors(void) {
        static const struct {
                WireCommand cmd;
                int r;
                const char *code;
                const char *id;
                const char *message;
        } table[] = {
                { WIRE_COMMAND_ANSWER, -ENOENT, "no_such_operator", "C", "No such operator C" },
                { WIRE_COMMAND_REJECT, -ENOENT, "no_such_operator", "C", "No such operator C" },
                { WIRE_COMMAND_HANGUP, -ENOENT, "no_such_call", "9", "No such call 9" },
                { WIRE_COMMAND_ANSWER, -EBUSY, "invalid_state", "A", "Operator A is not ringing" },
                { WIRE_COMMAND_REJECT, -EBUSY, "invalid_state", "B", "Operator B is not ringing" },
                { WIRE_COMMAND_CALL, -EEXIST, "exists", "1", "Call 1 already exists" },
                /* For no_such_queue the subject is the queue's name. */
                { WIRE_COMMAND_CALL, -ENXIO, "no_such_queue", "sales", "No such queue sales" },
                { WIRE_COMMAND_CALL, -ENXIO, "no_such_queue", "a b", "No such queue \"a b\"" },
                { WIRE_COMMAND_CALL, -EINVAL, "bad_id", "1", "Bad id (1-64 printable ASCII characters, no spaces)" },
                { WIRE_COMMAND_CALL, -ENOMEM, "internal", "1", "Internal error" },
                { WIRE_COMMAND_CALL, -ESHUTDOWN, "unavailable", "1", "Router unavailable, try again later" },
                { WIRE_COMMAND_CALL, -ENOSPC, "queue_full", "7", "Call 7 refused: the queue is full, try again later" },
                { WIRE_COMMAND_CALL, -ENOSPC, "queue_full", NULL, "The queue is full, try again later" },
                /* An id that is not valid is never echoed raw: quoted,
                 * escaped and cut. */
                { WIRE_COMMAND_HANGUP, -ENOENT, "no_such_call", "a\"b c", "No such call \"a\\\"b c\"" },
                { WIRE_COMMAND_HANGUP, -ENOENT, "no_such_call", "\x1b[2J\r\n", "No such call \"\\x1b[2J\\r\\n\"" },
                { WIRE_COMMAND_HANGUP, -ENOENT, "no_such_call",
                  "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
                  "No such call \"0123456789012345678901234567890123456789012345678901234567890123456789012345...\"" },
                { WIRE_COMMAND_HANGUP, -ENOENT, "no_such_call", "", "No such call" },
                { WIRE_COMMAND_HANGUP, -ENOENT, "no_such_call", NULL, "No such call" },
        };
        char buf[WIRE_MESSAGE_MAX];

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                WireError e = wire_error_from_errno(table[i].cmd, table[i].r);

                is_str(wire_error_to_string(e), table[i].code, "errno %d for %s -> %s", table[i].r,
                       wire_command_to_string(table[i].cmd), table[i].code);
                ok(wire_error_message(e, table[i].cmd, table[i].id, buf, sizeof(buf)) > 0, "message for %s",
                   table[i].code);
                is_str(buf, table[i].message, "message for %s", table[i].code);
        }

        for (int e = 0; e < _WIRE_ERROR_MAX; e++) {
                ok(wire_error_message(e, _WIRE_COMMAND_INVALID, NULL, buf, sizeof(buf)) > 0,
                   "every code has a message: %s", wire_error_to_string(e));
                is_int(wire_error_from_string(wire_error_to_string(e)), e, "code round trip %s", wire_error_to_string(e));
        }
        ok(wire_error_message(WIRE_ERROR_BAD_QUEUE, WIRE_COMMAND_CALL, "x", buf, sizeof(buf)) > 0 &&
           strcmp(buf, "Bad queue name (1-64 printable ASCII characters, no spaces)") == 0, "message for bad_queue");
        is_str(wire_error_to_string(WIRE_ERROR_BAD_QUEUE), "bad_queue", "code bad_queue");
        is_int(wire_error_message(WIRE_ERROR_BAD_ID, WIRE_COMMAND_CALL, NULL, buf, 8), -ENOBUFS, "message: short buffer");
        is_int(wire_error_message(_WIRE_ERROR_MAX, WIRE_COMMAND_CALL, NULL, buf, sizeof(buf)), -EINVAL,
               "message: bad code");
        ok(wire_error_to_string(_WIRE_ERROR_MAX) == NULL, "code out of range");
        for (int c = 0; c < _WIRE_COMMAND_MAX; c++)
                is_int(wire_command_from_string(wire_command_to_string(c)), c, "command round trip %s",
                       wire_command_to_string(c));
        ok(wire_command_needs_id(WIRE_COMMAND_HANGUP) && !wire_command_needs_id(WIRE_COMMAND_STATUS), "needs id");
}

/* Each formatted line must be exactly one line of JSON equal to expect. */
static void check_format(int r, char *s, const char *expect, const char *what) {
        struct json_object *o = NULL;
        size_t n;

        if (!ok(r == 0 && s, "%s: formatted", what)) {
                free(s);
                return;
        }
        n = strlen(s);
        ok(n > 0 && s[n - 1] == '\n' && !memchr(s, '\n', n - 1), "%s: one line", what);
        ok(json_parse_object(s, n, &o) == 0, "%s: valid JSON object", what);
        json_object_put(o);
        if (n > 0)
                s[n - 1] = 0;
        is_str(s, expect, "%s: text", what);
        free(s);
}

static void test_format(void) {
        const char *lines[] = { "Call 1 received", "Call 1 ringing for operator A" };
        const char *nasty[] = { "quote \" backslash \\ slash / tab \t nl \n nul-free \x01" };
        struct json_object *extra = NULL;
        AcdEvents ev = {};
        char *s = NULL;
        int r;

        r = wire_format_reply(lines, 2, NULL, &s);
        check_format(r, s, "{\"ok\":true,\"messages\":[\"Call 1 received\",\"Call 1 ringing for operator A\"]}", "reply");

        s = NULL;
        r = wire_format_reply(NULL, 0, NULL, &s);
        check_format(r, s, "{\"ok\":true,\"messages\":[]}", "empty reply");

        s = NULL;
        r = wire_format_reply(nasty, 1, NULL, &s);
        check_format(r, s, "{\"ok\":true,\"messages\":[\"quote \\\" backslash \\\\ slash / tab \\t nl \\n nul-free \\u0001\"]}",
                     "escaping");

        extra = json_object_new_object();
        json_object_object_add(extra, "queue_length", json_object_new_int(3));
        json_object_object_add(extra, "ok", json_object_new_boolean(0));
        s = NULL;
        r = wire_format_reply(lines, 1, extra, &s);
        check_format(r, s, "{\"ok\":true,\"messages\":[\"Call 1 received\"],\"queue_length\":3}", "reply with extra fields");
        json_object_put(extra);

        s = NULL;
        r = wire_format_error(WIRE_ERROR_NO_SUCH_OPERATOR, "No such operator C", &s);
        check_format(r, s, "{\"ok\":false,\"error\":\"no_such_operator\",\"messages\":[\"No such operator C\"]}", "error");

        s = NULL;
        r = wire_format_error(WIRE_ERROR_BAD_JSON, NULL, &s);
        check_format(r, s, "{\"ok\":false,\"error\":\"bad_json\",\"messages\":[\"Request is not valid JSON\"]}",
                     "error with default message");

        s = NULL;
        r = wire_format_notice("call.ignored", (const char *[]) { "Call 2 ignored by operator B",
                                                                 "Call 2 ringing for operator B" }, 2, &s);
        check_format(r, s,
                     "{\"event\":\"call.ignored\",\"messages\":[\"Call 2 ignored by operator B\",\"Call 2 ringing for operator B\"]}",
                     "notice");

        ev.events = (AcdEvent[]) {
                { .kind = ACD_EVENT_REJECTED, .call = "2", .operator = "B" },
                { .kind = ACD_EVENT_OPERATOR_STATE, .operator = "B" },
                { .kind = ACD_EVENT_RINGING, .call = "2", .operator = "B" },
        };
        ev.n = 3;
        s = NULL;
        r = wire_format_events_reply(&ev, 0, &s);
        check_format(r, s, "{\"ok\":true,\"messages\":[\"Call 2 rejected by operator B\",\"Call 2 ringing for operator B\"]}",
                     "events reply");

        s = NULL;
        is_int(wire_format_error(_WIRE_ERROR_MAX, "x", &s), -EINVAL, "error: bad code refused");
        is_int(wire_format_notice(NULL, NULL, 0, &s), -EINVAL, "notice: no event refused");
        is_int(wire_format_reply(NULL, 1, NULL, &s), -EINVAL, "reply: NULL messages refused");
        is_int(wire_format_reply((const char *[]) { NULL }, 1, NULL, &s), -EINVAL, "reply: NULL message refused");
        ok(s == NULL, "nothing returned on failure");
}

/* The whole path for the classic session: request line -> ACD -> reply line. */
static void test_roundtrip(void) {
        static const struct {
                const char *request;
                const char *reply;
        } table[] = {
                { "{\"command\":\"call\",\"id\":\"1\"}",
                  "{\"ok\":true,\"messages\":[\"Call 1 received\",\"Call 1 ringing for operator A\"]}" },
                { "{\"command\":\"call\",\"id\":2}",
                  "{\"ok\":true,\"messages\":[\"Call 2 received\",\"Call 2 ringing for operator B\"]}" },
                { "{\"command\":\"call\",\"id\":\"3\"}",
                  "{\"ok\":true,\"messages\":[\"Call 3 received\",\"Call 3 waiting in queue\"]}" },
                { "{\"command\":\"call\",\"id\":\"3\"}",
                  "{\"ok\":false,\"error\":\"exists\",\"messages\":[\"Call 3 already exists\"]}" },
                { "{\"command\":\"answer\",\"id\":\"A\"}",
                  "{\"ok\":true,\"messages\":[\"Call 1 answered by operator A\"]}" },
                { "{\"command\":\"answer\",\"id\":\"A\"}",
                  "{\"ok\":false,\"error\":\"invalid_state\",\"messages\":[\"Operator A is not ringing\"]}" },
                { "{\"command\":\"reject\",\"id\":\"B\"}",
                  "{\"ok\":true,\"messages\":[\"Call 2 rejected by operator B\",\"Call 2 ringing for operator B\"]}" },
                { "{\"command\":\"hangup\",\"id\":\"1\"}",
                  "{\"ok\":true,\"messages\":[\"Call 1 finished and operator A available\",\"Call 3 ringing for operator A\"]}" },
                { "{\"command\":\"hangup\",\"id\":\"1\"}",
                  "{\"ok\":false,\"error\":\"no_such_call\",\"messages\":[\"No such call 1\"]}" },
                { "{\"command\":\"reject\",\"id\":\"Z\"}",
                  "{\"ok\":false,\"error\":\"no_such_operator\",\"messages\":[\"No such operator Z\"]}" },
                { "not json", "{\"ok\":false,\"error\":\"bad_json\",\"messages\":[\"Request is not valid JSON\"]}" },
                { "{\"command\":\"hangup\",\"id\":\"3\"}", "{\"ok\":true,\"messages\":[\"Call 3 missed\"]}" },
                /* Named queues: C serves only "sales"; A and B only the
                 * default queue, where seed clients' calls go. */
                { "{\"command\":\"call\",\"id\":\"5\",\"queue\":\"sales\"}",
                  "{\"ok\":true,\"messages\":[\"Call 5 received\",\"Call 5 ringing for operator C\"]}" },
                { "{\"command\":\"call\",\"id\":\"6\",\"queue\":\"sales\"}",
                  "{\"ok\":true,\"messages\":[\"Call 6 received\",\"Call 6 waiting in queue\"]}" },
                { "{\"command\":\"call\",\"id\":\"7\",\"queue\":\"nope\"}",
                  "{\"ok\":false,\"error\":\"no_such_queue\",\"messages\":[\"No such queue nope\"]}" },
                { "{\"command\":\"call\",\"id\":\"7\",\"queue\":\"\"}",
                  "{\"ok\":false,\"error\":\"bad_queue\",\"messages\":[\"Bad queue name (1-64 printable ASCII characters, no spaces)\"]}" },
                { "{\"command\":\"call\",\"id\":\"7\",\"queue\":\"default\"}",
                  "{\"ok\":true,\"messages\":[\"Call 7 received\",\"Call 7 ringing for operator A\"]}" },
                { "{\"command\":\"reject\",\"id\":\"C\"}",
                  "{\"ok\":true,\"messages\":[\"Call 5 rejected by operator C\",\"Call 5 ringing for operator C\"]}" },
        };
        AcdConfig cfg;
        AcdState *a = NULL;
        AcdEvents ev = {};

        acd_config_init(&cfg);
        if (acd_new(&cfg, &a) < 0)
                return (void) ok(0, "acd_new");
        (void) acd_add_operator(a, "A", NULL, ACD_STATUS_AVAILABLE, 0, NULL);
        (void) acd_add_operator(a, "B", NULL, ACD_STATUS_AVAILABLE, 0, NULL);
        (void) acd_add_queue(a, "sales", ACD_STRATEGY_LONGEST_IDLE);
        (void) acd_add_operator(a, "C", (const char *const[]) { "sales", NULL }, ACD_STATUS_AVAILABLE, 0, NULL);

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                usec_t now = (i + 1) * USEC_PER_SEC;
                WireRequest req;
                WireError e;
                char *reply = NULL, msg[WIRE_MESSAGE_MAX];
                int r;

                acd_events_clear(&ev);
                r = wire_parse_request(table[i].request, strlen(table[i].request), &req, &e);
                if (r == 0) {
                        switch (req.command) {
                        case WIRE_COMMAND_CALL:
                                r = acd_place_call(a, req.id, req.queue[0] ? req.queue : NULL, now, &ev);
                                break;
                        case WIRE_COMMAND_ANSWER: r = acd_answer(a, req.id, now, &ev, NULL); break;
                        case WIRE_COMMAND_REJECT: r = acd_reject(a, req.id, now, &ev, NULL); break;
                        case WIRE_COMMAND_HANGUP: r = acd_hangup(a, req.id, now, &ev); break;
                        default: r = -EINVAL;
                        }
                        if (r < 0) {
                                e = wire_error_from_errno(req.command, r);
                                (void) wire_error_message(e, req.command,
                                                          e == WIRE_ERROR_NO_SUCH_QUEUE ? req.queue : req.id,
                                                          msg, sizeof(msg));
                                r = wire_format_error(e, msg, &reply);
                        } else
                                r = wire_format_events_reply(&ev, 0, &reply);
                } else
                        r = wire_format_error(e, NULL, &reply);

                if (r == 0 && reply)
                        reply[strcspn(reply, "\n")] = 0;
                is_str(reply, table[i].reply, "session: %s", table[i].request);
                free(reply);
        }
        acd_events_done(&ev);
        acd_free(a);
}

int main(void) {
        test_parse();
        test_parse_long();
        test_framing();
        test_errors();
        test_format();
        test_roundtrip();
        return done_testing();
}
