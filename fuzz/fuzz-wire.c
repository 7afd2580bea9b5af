/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for routerd's wire module: the input is a byte stream as
 * a client would send it. It is fed through the framer in chunks whose size
 * comes from the first input byte (to exercise lines split across reads),
 * every complete line is parsed, and every outcome is formatted the way the
 * manager would. Invariants checked on the way: lines never exceed the
 * limit, parsed ids and queue names are valid, every formatted reply is one
 * line of JSON.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "daemons/routerd/wire.h"
#include "json-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_line(char *reply) {
        struct json_object *o = NULL;
        size_t n;

        assert(reply);
        n = strlen(reply);
        assert(n > 0 && reply[n - 1] == '\n');
        assert(memchr(reply, '\n', n - 1) == NULL);
        assert(json_parse_object(reply, n, &o) == 0);
        json_object_put(o);
        free(reply);
}

static void handle_line(const char *line, size_t len) {
        WireRequest req;
        WireError e = _WIRE_ERROR_INVALID;
        char msg[WIRE_MESSAGE_MAX], *reply = NULL;
        int r;

        assert(len <= WIRE_LINE_MAX);
        r = wire_parse_request(line, len, &req, &e);
        if (r == -ENOMEM)
                return;
        if (r < 0) {
                assert(r == -EBADMSG);
                assert(wire_error_to_string(e));
                assert(wire_error_message(e, _WIRE_COMMAND_INVALID, NULL, msg, sizeof(msg)) > 0);
                if (wire_format_error(e, msg, &reply) == 0)
                        check_line(reply);
                return;
        }

        assert(wire_command_to_string(req.command));
        if (wire_command_needs_id(req.command))
                assert(acd_id_is_valid(req.id));
        else
                assert(req.id[0] == 0);
        /* A queue name only on call, and then a valid one. */
        if (req.queue[0])
                assert(req.command == WIRE_COMMAND_CALL && acd_id_is_valid(req.queue));
        r = wire_error_message(WIRE_ERROR_NO_SUCH_QUEUE, req.command, req.queue, msg, sizeof(msg));
        assert(r > 0);

        /* As the manager would: pretend the operation failed each way. */
        r = wire_error_message(wire_error_from_errno(req.command, -ENOENT), req.command, req.id, msg,
                               sizeof(msg));
        assert(r > 0);
        if (wire_format_error(wire_error_from_errno(req.command, -ENOENT), msg, &reply) == 0)
                check_line(reply);
        {
                const char *m[] = { req.id };
                if (wire_format_reply(m, 1, NULL, &reply) == 0)
                        check_line(reply);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        WireFramer f = {};
        size_t chunk, pos = 0, have = 0;
        char *buf;

        if (size == 0)
                return 0;
        chunk = (size_t) data[0] * 257 + 1;
        data++;
        size--;

        /* A buffer like the manager's: at most WIRE_LINE_MAX + 1 pending
         * bytes plus one read. */
        buf = malloc(WIRE_LINE_MAX + 1 + chunk);
        if (!buf)
                return 0;

        while (pos < size || have > 0) {
                size_t n = size - pos < chunk ? size - pos : chunk, used = 0, line_len = 0, off = 0;
                WireFrame r;

                memcpy(buf + have, data + pos, n);
                pos += n;
                have += n;

                while ((r = wire_frame_next(&f, buf + off, have - off, &line_len, &used)) != WIRE_FRAME_NEED_MORE) {
                        assert(used > 0 && used <= have - off);
                        if (r == WIRE_FRAME_LINE)
                                handle_line(buf + off, line_len);
                        else if (r == WIRE_FRAME_TOO_LONG) {
                                char *reply = NULL;
                                if (wire_format_error(WIRE_ERROR_LINE_TOO_LONG, NULL, &reply) == 0)
                                        check_line(reply);
                        }
                        off += used;
                }
                off += used;
                assert(off <= have);
                memmove(buf, buf + off, have - off);
                have -= off;
                assert(have <= WIRE_LINE_MAX);

                if (pos >= size)
                        break; /* an unterminated tail is what a closed connection drops */
        }

        free(buf);
        return 0;
}
