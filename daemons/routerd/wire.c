/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "escape.h"
#include "json-util.h"
#include "wire.h"

static const char *const command_names[_WIRE_COMMAND_MAX] = {
        [WIRE_COMMAND_CALL] = "call",
        [WIRE_COMMAND_ANSWER] = "answer",
        [WIRE_COMMAND_REJECT] = "reject",
        [WIRE_COMMAND_HANGUP] = "hangup",
        [WIRE_COMMAND_STATUS] = "status",
        [WIRE_COMMAND_SUBSCRIBE] = "subscribe",
};

static const char *const error_names[_WIRE_ERROR_MAX] = {
        [WIRE_ERROR_BAD_JSON] = "bad_json",
        [WIRE_ERROR_NOT_OBJECT] = "not_object",
        [WIRE_ERROR_MISSING_COMMAND] = "missing_command",
        [WIRE_ERROR_UNKNOWN_COMMAND] = "unknown_command",
        [WIRE_ERROR_MISSING_ID] = "missing_id",
        [WIRE_ERROR_BAD_ID] = "bad_id",
        [WIRE_ERROR_LINE_TOO_LONG] = "line_too_long",
        [WIRE_ERROR_NO_SUCH_OPERATOR] = "no_such_operator",
        [WIRE_ERROR_NO_SUCH_CALL] = "no_such_call",
        [WIRE_ERROR_NO_SUCH_QUEUE] = "no_such_queue",
        [WIRE_ERROR_INVALID_STATE] = "invalid_state",
        [WIRE_ERROR_EXISTS] = "exists",
        [WIRE_ERROR_UNAVAILABLE] = "unavailable",
        [WIRE_ERROR_INTERNAL] = "internal",
        [WIRE_ERROR_BAD_QUEUE] = "bad_queue",
        [WIRE_ERROR_QUEUE_FULL] = "queue_full",
        [WIRE_ERROR_BAD_ARGUMENT] = "bad_argument",
};

const char *wire_command_to_string(WireCommand c) {
        return c >= 0 && c < _WIRE_COMMAND_MAX ? command_names[c] : NULL;
}

WireCommand wire_command_from_string(const char *s) {
        if (s)
                for (int i = 0; i < _WIRE_COMMAND_MAX; i++)
                        if (strcmp(command_names[i], s) == 0)
                                return i;
        return _WIRE_COMMAND_INVALID;
}

const char *wire_error_to_string(WireError e) {
        return e >= 0 && e < _WIRE_ERROR_MAX ? error_names[e] : NULL;
}

WireError wire_error_from_string(const char *s) {
        if (s)
                for (int i = 0; i < _WIRE_ERROR_MAX; i++)
                        if (strcmp(error_names[i], s) == 0)
                                return i;
        return _WIRE_ERROR_INVALID;
}

bool wire_command_needs_id(WireCommand c) {
        return c == WIRE_COMMAND_CALL || c == WIRE_COMMAND_ANSWER || c == WIRE_COMMAND_REJECT ||
               c == WIRE_COMMAND_HANGUP;
}

/* Read "id" into buf. Returns 0, or the wire error (as a positive value). */
static int parse_id(struct json_object *obj, char buf[static ACD_ID_MAX + 1]) {
        struct json_object *v = NULL;

        if (!json_object_object_get_ex(obj, "id", &v) || !v)
                return 1 + WIRE_ERROR_MISSING_ID;

        if (json_object_is_type(v, json_type_string)) {
                int len = json_object_get_string_len(v);
                const char *s = json_object_get_string(v);

                /* json-c keeps "\u0000" inside the string: compare the
                 * lengths so that "a\u0000b" cannot pass as "a". */
                if (len <= 0 || len > ACD_ID_MAX || strlen(s) != (size_t) len || !acd_id_is_valid(s))
                        return 1 + WIRE_ERROR_BAD_ID;
                memcpy(buf, s, (size_t) len + 1);
                return 0;
        }

        if (json_object_is_type(v, json_type_int)) {
                uint64_t u;

                /* Integers only (json-c calls 1.0 and 1e3 doubles); json_get_uint64
                 * refuses negatives and values json-c had to clamp. */
                if (json_get_uint64(obj, "id", &u) < 0)
                        return 1 + WIRE_ERROR_BAD_ID;
                (void) snprintf(buf, ACD_ID_MAX + 1, "%" PRIu64, u);
                return 0;
        }

        return 1 + WIRE_ERROR_BAD_ID;
}

/*
 * Read the optional "queue" of a call into buf ("" when absent or null).
 * Returns 0, or the wire error (as a positive value). Unlike ids, a number
 * is not taken: queue names come from the configuration ("sales"), never
 * from a caller's counter, so a number is more likely a client's mistake.
 */
static int parse_queue(struct json_object *obj, char buf[static ACD_ID_MAX + 1]) {
        struct json_object *v = NULL;
        const char *s;
        int len;

        buf[0] = 0;
        if (!json_object_object_get_ex(obj, "queue", &v) || !v)
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return 1 + WIRE_ERROR_BAD_QUEUE;

        len = json_object_get_string_len(v);
        s = json_object_get_string(v);
        /* As for ids: "a\u0000b" must not pass as "a". "" is refused, not
         * taken for the default queue: a client that names a queue means
         * one, and "default" names the default queue explicitly. */
        if (len <= 0 || len > ACD_ID_MAX || strlen(s) != (size_t) len || !acd_id_is_valid(s))
                return 1 + WIRE_ERROR_BAD_QUEUE;
        memcpy(buf, s, (size_t) len + 1);
        return 0;
}

/*
 * Read the optional integer key of a status into *ret (def when absent or
 * null). Returns 0, or the wire error (as a positive value).
 */
static int parse_page_key(struct json_object *obj, const char *key, unsigned def, unsigned *ret) {
        uint64_t u;
        int r;

        r = json_get_uint64(obj, key, &u);
        if (r == -ENOENT) {
                *ret = def;
                return 0;
        }
        if (r < 0 || u > WIRE_STATUS_OFFSET_MAX)
                return 1 + WIRE_ERROR_BAD_ARGUMENT;
        *ret = (unsigned) u;
        return 0;
}

int wire_parse_request(const char *line, size_t len, WireRequest *ret, WireError *ret_error) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        struct json_object *v = NULL;
        WireRequest req = {};
        WireError e;
        int r;

        if (!line && len > 0)
                return -EINVAL;

        /* The line limit is the framer's business, but a caller that skips
         * it must not get a different answer for the same bytes. */
        if (len > WIRE_LINE_MAX) {
                e = WIRE_ERROR_LINE_TOO_LONG;
                goto fail;
        }

        r = json_parse(line, len, &obj);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                /* Bad syntax, bad UTF-8, a raw NUL, too deep: all bad_json. */
                e = WIRE_ERROR_BAD_JSON;
                goto fail;
        }
        if (!json_object_is_type(obj, json_type_object)) {
                e = WIRE_ERROR_NOT_OBJECT;
                goto fail;
        }

        if (!json_object_object_get_ex(obj, "command", &v) || !v) {
                e = WIRE_ERROR_MISSING_COMMAND;
                goto fail;
        }
        /* "call\u0000x" must not pass as "call": compare the lengths. */
        if (!json_object_is_type(v, json_type_string) ||
            strlen(json_object_get_string(v)) != (size_t) json_object_get_string_len(v)) {
                e = WIRE_ERROR_UNKNOWN_COMMAND;
                goto fail;
        }
        req.command = wire_command_from_string(json_object_get_string(v));
        if (req.command < 0) {
                e = WIRE_ERROR_UNKNOWN_COMMAND;
                goto fail;
        }

        if (wire_command_needs_id(req.command)) {
                r = parse_id(obj, req.id);
                if (r > 0) {
                        e = r - 1;
                        goto fail;
                }
        }
        /* After the id: a line bad in both ways reports the id, as a seed
         * client would see it. */
        if (req.command == WIRE_COMMAND_CALL) {
                r = parse_queue(obj, req.queue);
                if (r > 0) {
                        e = r - 1;
                        goto fail;
                }
        }
        if (req.command == WIRE_COMMAND_STATUS) {
                r = parse_page_key(obj, "offset", 0, &req.offset);
                if (r == 0)
                        r = parse_page_key(obj, "limit", WIRE_STATUS_LIMIT_DEFAULT, &req.limit);
                if (r > 0) {
                        e = r - 1;
                        goto fail;
                }
                if (req.limit > WIRE_STATUS_LIMIT_MAX)
                        req.limit = WIRE_STATUS_LIMIT_MAX;
        }

        *ret = req;
        return 0;

fail:
        if (ret_error)
                *ret_error = e;
        return -EBADMSG;
}

/* The ACD's errno contract (acd.h) is per function, so the same -ENOENT
 * means an operator for answer/reject and a call for hangup. */
WireError wire_error_from_errno(WireCommand cmd, int r) {
        switch (r < 0 ? -r : r) {
        case ENOENT:
                return cmd == WIRE_COMMAND_ANSWER || cmd == WIRE_COMMAND_REJECT ? WIRE_ERROR_NO_SUCH_OPERATOR
                                                                                : WIRE_ERROR_NO_SUCH_CALL;
        case EEXIST:
                return WIRE_ERROR_EXISTS;
        case EBUSY:
                return WIRE_ERROR_INVALID_STATE;
        case ENXIO:
                return WIRE_ERROR_NO_SUCH_QUEUE;
        case EINVAL:
                /* The parser has checked a call's queue name already, so
                 * the argument the ACD refused is the id. */
                return WIRE_ERROR_BAD_ID;
        case ESHUTDOWN:
        case EAGAIN:
                return WIRE_ERROR_UNAVAILABLE;
        case ENOSPC:
                return WIRE_ERROR_QUEUE_FULL;
        default:
                return WIRE_ERROR_INTERNAL;
        }
}

int wire_error_message(WireError e, WireCommand cmd, const char *id, char *buf, size_t size) {
        char quoted[ESCAPE_ID_SIZE + 2];
        int r;

        /* A valid id is graphic ASCII of bounded length and is echoed as
         * it is. Anything else a caller passes is quoted, escaped and cut
         * (escape_cut()), so that the line stays short, valid UTF-8 and
         * free of control bytes: raw request bytes never are echoed. */
        if (id && !*id)
                id = NULL;
        else if (id && !acd_id_is_valid(id)) {
                quoted[0] = '"';
                escape_cut(quoted + 1, ESCAPE_ID_SIZE, id);
                strcat(quoted, "\"");
                id = quoted;
        }

        switch (e) {
        case WIRE_ERROR_BAD_JSON:
                r = snprintf(buf, size, "Request is not valid JSON");
                break;
        case WIRE_ERROR_NOT_OBJECT:
                r = snprintf(buf, size, "Request is not a JSON object");
                break;
        case WIRE_ERROR_MISSING_COMMAND:
                r = snprintf(buf, size, "Request has no \"command\"");
                break;
        case WIRE_ERROR_UNKNOWN_COMMAND:
                r = snprintf(buf, size, "Unknown command (expected call, answer, reject, hangup, status or subscribe)");
                break;
        case WIRE_ERROR_MISSING_ID:
                r = snprintf(buf, size, "Request has no \"id\"");
                break;
        case WIRE_ERROR_BAD_ID:
                r = snprintf(buf, size, "Bad id (1-%d printable ASCII characters, no spaces)", ACD_ID_MAX);
                break;
        case WIRE_ERROR_LINE_TOO_LONG:
                r = snprintf(buf, size, "Request line longer than %u bytes", WIRE_LINE_MAX);
                break;
        case WIRE_ERROR_NO_SUCH_OPERATOR:
                r = id ? snprintf(buf, size, "No such operator %s", id) : snprintf(buf, size, "No such operator");
                break;
        case WIRE_ERROR_NO_SUCH_CALL:
                r = id ? snprintf(buf, size, "No such call %s", id) : snprintf(buf, size, "No such call");
                break;
        case WIRE_ERROR_NO_SUCH_QUEUE:
                /* Here id is the queue's name (see wire.h). */
                r = id ? snprintf(buf, size, "No such queue %s", id) : snprintf(buf, size, "No such queue");
                break;
        case WIRE_ERROR_BAD_QUEUE:
                r = snprintf(buf, size, "Bad queue name (1-%d printable ASCII characters, no spaces)", ACD_ID_MAX);
                break;
        case WIRE_ERROR_INVALID_STATE:
                if (id && (cmd == WIRE_COMMAND_ANSWER || cmd == WIRE_COMMAND_REJECT))
                        r = snprintf(buf, size, "Operator %s is not ringing", id);
                else if (id)
                        r = snprintf(buf, size, "Cannot %s %s in its current state",
                                     wire_command_to_string(cmd) ?: "change", id);
                else
                        r = snprintf(buf, size, "Invalid state");
                break;
        case WIRE_ERROR_EXISTS:
                r = id ? snprintf(buf, size, "Call %s already exists", id) : snprintf(buf, size, "Already exists");
                break;
        case WIRE_ERROR_UNAVAILABLE:
                r = snprintf(buf, size, "Router unavailable, try again later");
                break;
        case WIRE_ERROR_QUEUE_FULL:
                r = id ? snprintf(buf, size, "Call %s refused: the queue is full, try again later", id)
                       : snprintf(buf, size, "The queue is full, try again later");
                break;
        case WIRE_ERROR_BAD_ARGUMENT:
                r = snprintf(buf, size, "\"offset\" and \"limit\" must be integers from 0 to %u",
                             WIRE_STATUS_OFFSET_MAX);
                break;
        case WIRE_ERROR_INTERNAL:
                r = snprintf(buf, size, "Internal error");
                break;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return -EINVAL;
        if ((size_t) r >= size)
                return -ENOBUFS;
        return r;
}

WireFrame wire_frame_next(WireFramer *f, const char *buf, size_t len, size_t *ret_line_len,
                          size_t *ret_consumed) {
        const char *nl;

        if (f->discarding) {
                /* Inside an over-long line that was answered already: drop
                 * everything up to and including its newline. */
                nl = memchr(buf, '\n', len);
                if (!nl) {
                        *ret_consumed = len;
                        return WIRE_FRAME_NEED_MORE;
                }
                f->discarding = false;
                *ret_consumed = (size_t) (nl - buf) + 1;
                /* Not NEED_MORE: a whole line may follow in the same read. */
                return WIRE_FRAME_SKIP;
        }

        /* A line of exactly WIRE_LINE_MAX bytes is fine: look for its
         * newline in the first WIRE_LINE_MAX + 1 bytes. */
        nl = memchr(buf, '\n', len < WIRE_LINE_MAX + 1 ? len : WIRE_LINE_MAX + 1);
        if (nl) {
                size_t n = (size_t) (nl - buf);

                *ret_consumed = n + 1;
                if (n > 0 && buf[n - 1] == '\r')
                        n--;
                if (ret_line_len)
                        *ret_line_len = n;
                return WIRE_FRAME_LINE;
        }
        if (len > WIRE_LINE_MAX) {
                /* Drop only what was scanned: the newline that ends this
                 * line, and whole lines after it, may already be in buf. */
                f->discarding = true;
                *ret_consumed = WIRE_LINE_MAX + 1;
                return WIRE_FRAME_TOO_LONG;
        }
        *ret_consumed = 0;
        return WIRE_FRAME_NEED_MORE;
}

/* Serialize obj compactly with a trailing newline. */
static int to_line(struct json_object *obj, char **ret) {
        const char *s = json_to_string_compact(obj);
        size_t n;
        char *line;

        if (!s)
                return -ENOMEM;
        n = strlen(s);
        line = malloc(n + 2);
        if (!line)
                return -ENOMEM;
        memcpy(line, s, n);
        line[n] = '\n';
        line[n + 1] = 0;
        *ret = line;
        return 0;
}

/* "messages" is always present, even empty: clients index it blindly. */
static int add_messages(struct json_object *obj, const char *const *messages, size_t n) {
        struct json_object *arr = json_object_new_array_ext((int) n);

        if (!arr)
                return -ENOMEM;
        if (json_object_object_add(obj, "messages", arr) < 0) {
                json_object_put(arr);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                struct json_object *s;

                if (!messages[i])
                        return -EINVAL;
                s = json_object_new_string(messages[i]);
                if (!s)
                        return -ENOMEM;
                if (json_object_array_add(arr, s) < 0) {
                        json_object_put(s);
                        return -ENOMEM;
                }
        }
        return 0;
}

static int add_field(struct json_object *obj, const char *key, struct json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(obj, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int wire_format_reply(const char *const *messages, size_t n, struct json_object *extra, char **ret) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        int r;

        if ((n > 0 && !messages) || n > INT32_MAX ||
            (extra && !json_object_is_type(extra, json_type_object)))
                return -EINVAL;

        obj = json_object_new_object();
        if (!obj)
                return -ENOMEM;
        r = add_field(obj, "ok", json_object_new_boolean(1));
        if (r < 0)
                return r;
        r = add_messages(obj, messages, n);
        if (r < 0)
                return r;
        if (extra) {
                /* "ok" and "messages" are ours; extra cannot override them. */
                json_object_object_foreach(extra, key, val) {
                        if (strcmp(key, "ok") == 0 || strcmp(key, "messages") == 0)
                                continue;
                        r = add_field(obj, key, json_object_get(val));
                        if (r < 0)
                                return r;
                }
        }
        return to_line(obj, ret);
}

int wire_format_error(WireError e, const char *message, char **ret) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        char buf[WIRE_MESSAGE_MAX];
        const char *code = wire_error_to_string(e);
        int r;

        if (!code)
                return -EINVAL;
        /* DESIGN.md: a failed reply always carries one human line. */
        if (!message) {
                r = wire_error_message(e, _WIRE_COMMAND_INVALID, NULL, buf, sizeof(buf));
                if (r < 0)
                        return r;
                message = buf;
        }

        obj = json_object_new_object();
        if (!obj)
                return -ENOMEM;
        r = add_field(obj, "ok", json_object_new_boolean(0));
        if (r < 0)
                return r;
        r = add_field(obj, "error", json_object_new_string(code));
        if (r < 0)
                return r;
        r = add_messages(obj, &message, 1);
        if (r < 0)
                return r;
        return to_line(obj, ret);
}

int wire_format_notice(const char *event, const char *const *messages, size_t n, char **ret) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        int r;

        if (!event || (n > 0 && !messages) || n > INT32_MAX)
                return -EINVAL;

        obj = json_object_new_object();
        if (!obj)
                return -ENOMEM;
        r = add_field(obj, "event", json_object_new_string(event));
        if (r < 0)
                return r;
        r = add_messages(obj, messages, n);
        if (r < 0)
                return r;
        return to_line(obj, ret);
}

int wire_format_events_reply(const AcdEvents *ev, size_t from, char **ret) {
        _cleanup_(strv_freep) char **lines = NULL;
        size_t n = 0;
        int r;

        r = acd_events_to_strv(ev, from, &lines);
        if (r < 0)
                return r;
        while (lines[n])
                n++;
        return wire_format_reply((const char *const *) lines, n, NULL, ret);
}
