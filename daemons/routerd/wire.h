/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * routerd's TCP protocol (DESIGN.md "TCP wire"): newline-delimited JSON both
 * ways, one reply line per request line, in order. This module is pure: it
 * splits bytes into lines, parses one request line and formats reply and
 * notice lines; the sockets live in the manager.
 *
 * Requests: {"command":"call|answer|reject|hangup","id":"<id>"} and
 * {"command":"status"}, {"command":"subscribe"} (an "id" there is ignored).
 * Other keys are ignored. The command is case-sensitive.
 *
 * Extension (not in the seeds): "call" takes an optional "queue":"<name>",
 * the named queue ([router] queues) the call waits in; absent or null means
 * the default queue, as a seed client sends it. A queue name follows the id
 * rule below but must be a JSON string: anything else (a number, "", more
 * than 64 bytes, blanks) is bad_queue. On other commands "queue" is ignored
 * like any other unknown key.
 *
 * Extension: "status" takes optional "offset" and "limit" (integers from 0
 * to WIRE_STATUS_OFFSET_MAX; anything else is bad_argument), the page of
 * live calls the reply lists: {"command":"status","offset":200,"limit":100}.
 * Without them a status lists the first WIRE_STATUS_LIMIT_DEFAULT calls; a
 * limit above WIRE_STATUS_LIMIT_MAX is taken as that, so that no reply
 * grows with the queue. Other commands ignore both keys.
 *
 * Ids follow acd_id_is_valid(): 1..64 bytes of graphic ASCII (0x21..0x7e).
 * Judgement call: a non-negative JSON integer is accepted as an id and taken
 * in its decimal form ({"id":1} is call "1"), because clients written
 * against the seeds sometimes send numbers; any other JSON type (fraction,
 * negative number, bool, array, object) is a bad_id, as is a string with
 * an embedded NUL, whitespace, non-ASCII or more than 64 bytes.
 *
 * Replies: {"ok":true,"messages":[...]} and
 * {"ok":false,"error":"<code>","messages":["<human line>"]}. Notices no
 * request caused: {"event":"<kind>","messages":[...]}. Every formatted line
 * ends in "\n".
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "acd.h"

struct json_object;

/* A request line may hold this many bytes, newline excluded. */
#define WIRE_LINE_MAX (64U * 1024U)

/* The calls a status reply lists: by default, at most, and the largest
 * offset or limit a request may give. */
#define WIRE_STATUS_LIMIT_DEFAULT 100U
#define WIRE_STATUS_LIMIT_MAX 1000U
#define WIRE_STATUS_OFFSET_MAX 1000000000U

typedef enum WireCommand {
        WIRE_COMMAND_CALL,
        WIRE_COMMAND_ANSWER,
        WIRE_COMMAND_REJECT,
        WIRE_COMMAND_HANGUP,
        WIRE_COMMAND_STATUS,
        WIRE_COMMAND_SUBSCRIBE,
        _WIRE_COMMAND_MAX,
        _WIRE_COMMAND_INVALID = -EINVAL,
} WireCommand;

typedef enum WireError {
        WIRE_ERROR_BAD_JSON,         /* "bad_json": not one JSON value (or bad UTF-8, NUL, nesting > 32) */
        WIRE_ERROR_NOT_OBJECT,       /* "not_object" */
        WIRE_ERROR_MISSING_COMMAND,  /* "missing_command": no "command" key (or null) */
        WIRE_ERROR_UNKNOWN_COMMAND,  /* "unknown_command": not a string, or not one we know */
        WIRE_ERROR_MISSING_ID,       /* "missing_id": no "id" (or null) where one is needed */
        WIRE_ERROR_BAD_ID,           /* "bad_id" */
        WIRE_ERROR_LINE_TOO_LONG,    /* "line_too_long": more than WIRE_LINE_MAX bytes */
        WIRE_ERROR_NO_SUCH_OPERATOR, /* "no_such_operator" */
        WIRE_ERROR_NO_SUCH_CALL,     /* "no_such_call" */
        WIRE_ERROR_NO_SUCH_QUEUE,    /* "no_such_queue" */
        WIRE_ERROR_INVALID_STATE,    /* "invalid_state": e.g. answer by an operator not ringing */
        WIRE_ERROR_EXISTS,           /* "exists": a live call has this id */
        WIRE_ERROR_UNAVAILABLE,      /* "unavailable": the router cannot serve now (shutting down) */
        WIRE_ERROR_INTERNAL,         /* "internal": out of memory or another local failure */
        WIRE_ERROR_BAD_QUEUE,        /* "bad_queue": "queue" present but not a valid name */
        WIRE_ERROR_QUEUE_FULL,       /* "queue_full": [router] max_queued calls wait already */
        WIRE_ERROR_BAD_ARGUMENT,     /* "bad_argument": status "offset" or "limit" not an integer in range */
        _WIRE_ERROR_MAX,
        _WIRE_ERROR_INVALID = -EINVAL,
} WireError;

typedef struct WireRequest {
        WireCommand command;
        char id[ACD_ID_MAX + 1];     /* "" for status and subscribe */
        char queue[ACD_ID_MAX + 1];  /* call only: "" for the default queue */
        unsigned offset;             /* status only: first call listed (0 otherwise) */
        unsigned limit;              /* status only: calls listed, at most WIRE_STATUS_LIMIT_MAX */
} WireRequest;

const char *wire_command_to_string(WireCommand c);
WireCommand wire_command_from_string(const char *s);
/* The short code ("bad_json" ...), or NULL for an invalid value. */
const char *wire_error_to_string(WireError e);
WireError wire_error_from_string(const char *s);

/* Whether the command takes an id. */
bool wire_command_needs_id(WireCommand c);

/*
 * Parse one request line (without its newline; a NUL inside is an error).
 * Returns 0 and fills *ret; or -EBADMSG and sets *ret_error to the reason
 * (ret untouched); -ENOMEM.
 */
int wire_parse_request(const char *line, size_t len, WireRequest *ret, WireError *ret_error);

/*
 * Map an acd_* failure of the operation behind cmd to the wire code:
 * -ENOENT is no_such_operator for answer/reject and no_such_call for
 * hangup; -EEXIST exists; -EBUSY invalid_state; -ENXIO no_such_queue;
 * -EINVAL bad_id; -ENOSPC queue_full; anything else internal.
 */
WireError wire_error_from_errno(WireCommand cmd, int r);

/*
 * The human line for an error, e.g. "No such operator C", "Operator A is not
 * ringing", "Call 1 already exists", "No such queue sales", "Request is not
 * valid JSON". id names what the error is about: the call or operator id of
 * the request, but the queue name for no_such_queue. It may be NULL or ""
 * where there is none. A valid id is echoed as it is; any other string is
 * echoed quoted, escaped and cut (escape_cut()), never raw. Returns the
 * length or -ENOBUFS; WIRE_MESSAGE_MAX always suffices.
 */
#define WIRE_MESSAGE_MAX 192
int wire_error_message(WireError e, WireCommand cmd, const char *id, char *buf, size_t size);

/*
 * Line framing with the 64 KiB limit. A WireFramer starts zeroed. Call
 * wire_frame_next() on the unconsumed input until it returns
 * WIRE_FRAME_NEED_MORE, dropping *ret_consumed bytes from the front after
 * each call (also after NEED_MORE: bytes of an over-long line are dropped as
 * they come, so the caller never buffers more than WIRE_LINE_MAX + 1 bytes).
 *
 *  WIRE_FRAME_LINE      a line: buf[0..*ret_line_len), its "\n" (and a "\r"
 *                       before it) not included.
 *  WIRE_FRAME_TOO_LONG  the current line passed WIRE_LINE_MAX bytes: answer
 *                       line_too_long once, now; the rest of that line, up to
 *                       and including its "\n", is skipped by later calls.
 *  WIRE_FRAME_SKIP      the end of an over-long line was dropped; call again.
 *  WIRE_FRAME_NEED_MORE nothing more to do until more input arrives.
 *
 * A caller's loop:
 *      while ((r = wire_frame_next(&f, p, n, &line_len, &used)) != WIRE_FRAME_NEED_MORE) {
 *              if (r == WIRE_FRAME_LINE) handle(p, line_len);
 *              else if (r == WIRE_FRAME_TOO_LONG) reply_error(line_too_long);
 *              p += used, n -= used;
 *      }
 *      p += used, n -= used;
 */
typedef struct WireFramer {
        bool discarding;
} WireFramer;

typedef enum WireFrame {
        WIRE_FRAME_NEED_MORE,
        WIRE_FRAME_LINE,
        WIRE_FRAME_TOO_LONG,
        WIRE_FRAME_SKIP,
} WireFrame;

WireFrame wire_frame_next(WireFramer *f, const char *buf, size_t len, size_t *ret_line_len,
                          size_t *ret_consumed);

/*
 * Formatting. Each returns 0 and a new NUL-terminated string ending in "\n"
 * in *ret (free() it), -EINVAL, or -ENOMEM. messages is an array of n
 * strings (n may be 0). extra, if not NULL, is an object whose fields are
 * added to the reply (e.g. "status" details); it is not consumed.
 */
int wire_format_reply(const char *const *messages, size_t n, struct json_object *extra, char **ret);
int wire_format_error(WireError e, const char *message, char **ret);
int wire_format_notice(const char *event, const char *const *messages, size_t n, char **ret);

/*
 * The reply for a successful operation: "messages" are the lines of
 * ev->events[from..n) (acd_event_format_message()). Returns as above.
 */
int wire_format_events_reply(const AcdEvents *ev, size_t from, char **ret);
