/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "daemons/routerd/idmap.h"
#include "daemons/routerd/manager.h"
#include "daemons/routerd/server.h"
#include "daemons/routerd/wire.h"
#include "libshared/cleanup.h"
#include "libshared/log.h"

/* Input buffers start small and grow to one full line plus one read, so
 * that thousands of idle connections cost little memory. */
#define IN_INITIAL (4U * 1024U)
#define IN_MAX (WIRE_LINE_MAX + 16U * 1024U)

/* Accepts per wake-up, so that a connection storm cannot starve the
 * connections already served. */
#define ACCEPT_BURST 64

#define MESSAGE_ID_SLOW_READER "MESSAGE_ID=3c6b8a1e2f4d4e5a9b7c0d1e2f3a4b5c"

/* Commit marks per connection (see conn_hold()). Uncommitted batches are
 * few at any time (the one being written and the one gathering), so a
 * small fixed array does; when it is full the last mark absorbs the next,
 * which only holds bytes a little longer. */
#define HOLD_MARKS 4

typedef struct Connection Connection;

typedef struct HoldMark {
        uint64_t end;                /* sent_total + unsent when it was queued */
        uint64_t ticket;             /* store batch that must be committed */
} HoldMark;

struct Connection {
        Server *server;
        Connection *prev, *next;
        int fd;
        sd_event_source *io;
        char peer[64];
        char peer_field[80];         /* "ROUTER_PEER=..." for log records */

        char *in;
        size_t in_len, in_alloc;
        WireFramer framer;

        char *out;
        size_t out_start, out_len, out_alloc;  /* unsent: out[out_start..out_len) */

        /* Output counted from the connection's start: written, and allowed
         * to be written (its changes are committed). Bytes past
         * released_total wait for the marks' batches, in order. */
        uint64_t sent_total, released_total;
        HoldMark marks[HOLD_MARKS];
        size_t n_marks;
        Connection *held_prev, *held_next;  /* in Server.waiting while n_marks > 0 */

        bool subscribed;
        bool read_eof;
        bool input_blocked;          /* lines wait in `in` until output drains */

        /* Notice lines gathered for this connection while handling one
         * batch of unsolicited events (indexes into the batch). */
        size_t *pending;
        size_t n_pending, allocated_pending;
};

struct Server {
        Manager *manager;
        int fd;
        sd_event_source *accept_source;
        Connection *connections;
        Connection *waiting;         /* connections with output waiting for a commit */
        size_t n_connections;
        size_t pending_output;
        IdMap *placers;              /* call id -> Connection* that placed it */
        size_t pause_threshold;      /* unsent bytes that pause a connection's input */
        bool stopped;
        bool held;                   /* server_hold_input(): no connection reads */
        RateLimit refuse_ratelimit;
};

static void conn_update_events(Connection *c);
static void conn_process_input(Connection *c);

/* --- commit before reply ---------------------------------------------------
 *
 * DESIGN.md "TCP wire": with a database, a reply (and a notice) goes out only
 * once the changes it tells of are committed. Replies are formatted at once,
 * into the output buffer as usual, and conn_hold() tags what was just queued
 * with the store batch holding every change made so far
 * (manager_commit_ticket()). conn_flush() writes only up to released_total;
 * server_release() moves it on as batches commit. Replies stay in request
 * order because everything queued after a held byte waits behind it, and a
 * client that pipelines faster than PostgreSQL commits is paused by the
 * usual output limit (held bytes count as unsent). Without a database the
 * ticket is always committed and nothing waits.
 */

static void held_unlink(Connection *c) {
        Server *s = c->server;

        if (c->held_prev)
                c->held_prev->held_next = c->held_next;
        else if (s->waiting == c)
                s->waiting = c->held_next;
        if (c->held_next)
                c->held_next->held_prev = c->held_prev;
        c->held_prev = c->held_next = NULL;
}

/* Everything queued on c so far is released once the current ticket is
 * committed. */
static void conn_hold(Connection *c) {
        Manager *m = c->server->manager;
        uint64_t end = c->sent_total + (c->out_len - c->out_start);
        uint64_t ticket = manager_commit_ticket(m);
        HoldMark *last;

        if (c->n_marks == 0) {
                if (ticket <= manager_committed(m)) {
                        c->released_total = end;
                        return;
                }
                /* First mark: join the list of held connections. */
                c->held_next = c->server->waiting;
                if (c->held_next)
                        c->held_next->held_prev = c;
                c->held_prev = NULL;
                c->server->waiting = c;
        } else {
                last = &c->marks[c->n_marks - 1];
                if (last->ticket >= ticket || c->n_marks == HOLD_MARKS) {
                        last->end = end;
                        if (ticket > last->ticket)
                                last->ticket = ticket;
                        return;
                }
        }
        c->marks[c->n_marks++] = (HoldMark) { .end = end, .ticket = ticket };
}

/* Move released_total past the marks whose batch is committed. Returns
 * true when something was released. */
static bool conn_release(Connection *c, uint64_t committed) {
        size_t k = 0;

        while (k < c->n_marks && c->marks[k].ticket <= committed)
                c->released_total = c->marks[k++].end;
        if (k == 0)
                return false;
        memmove(c->marks, c->marks + k, (c->n_marks - k) * sizeof(HoldMark));
        c->n_marks -= k;
        if (c->n_marks == 0)
                held_unlink(c);
        return true;
}

/* --- connection lifecycle -------------------------------------------------- */

static void conn_free(Connection *c) {
        Server *s;

        if (!c)
                return;
        s = c->server;
        if (c->prev)
                c->prev->next = c->next;
        else
                s->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_connections--;
        s->pending_output -= c->out_len - c->out_start;
        if (c->n_marks > 0)
                held_unlink(c);

        /* The calls it placed live on; their notices now go only to the
         * subscribers. */
        (void) idmap_remove_value(s->placers, c);

        sd_event_source_disable_unref(c->io);
        if (c->fd >= 0)
                (void) close(c->fd);
        free(c->in);
        free(c->out);
        free(c->pending);
        free(c);
}

static void conn_close(Connection *c, const char *why) {
        log_struct(LOG_DEBUG, 0, LOG_FIELDS(c->peer_field), "Connection from %s closed (%s).", c->peer, why);
        conn_free(c);
}

/* Write as much queued output as the socket takes. Returns 0, or -EPIPE
 * (and friends) when the peer is gone: the caller closes. */
static int conn_flush(Connection *c) {
        while (c->out_start < c->out_len && c->sent_total < c->released_total) {
                size_t want = c->out_len - c->out_start;
                ssize_t n;

                if (want > c->released_total - c->sent_total)
                        want = (size_t) (c->released_total - c->sent_total);
                n = send(c->fd, c->out + c->out_start, want, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        return -errno;
                }
                c->out_start += (size_t) n;
                c->sent_total += (uint64_t) n;
                c->server->pending_output -= (size_t) n;
        }
        if (c->out_start == c->out_len) {
                c->out_start = c->out_len = 0;
                /* A burst of replies may have grown the buffer a lot; do
                 * not keep that memory for an idle connection. */
                if (c->out_alloc > 64U * 1024U) {
                        free(c->out);
                        c->out = NULL;
                        c->out_alloc = 0;
                }
        }
        return 0;
}

static size_t conn_unsent(const Connection *c) {
        return c->out_len - c->out_start;
}

/* Make room for n more bytes of output at out[out_len]. Returns 0 or
 * -ENOMEM. */
static int conn_reserve(Connection *c, size_t n) {
        if (c->out_len + n > c->out_alloc) {
                size_t need, a;
                char *b;

                /* Compact first: the sent part at the front is dead. */
                if (c->out_start > 0) {
                        memmove(c->out, c->out + c->out_start, c->out_len - c->out_start);
                        c->out_len -= c->out_start;
                        c->out_start = 0;
                }
                need = c->out_len + n;
                a = c->out_alloc ? c->out_alloc : 4096;
                while (a < need)
                        a *= 2;
                if (a != c->out_alloc) {
                        b = realloc(c->out, a);
                        if (!b)
                                return -ENOMEM;
                        c->out = b;
                        c->out_alloc = a;
                }
        }
        return 0;
}

/* Queue one formatted line (taken over). Returns 0 or -ENOMEM. */
static int conn_queue(Connection *c, char *line) {
        size_t n = strlen(line);

        if (conn_reserve(c, n) < 0) {
                free(line);
                return -ENOMEM;
        }
        memcpy(c->out + c->out_len, line, n);
        c->out_len += n;
        c->server->pending_output += n;
        free(line);
        conn_hold(c);
        return 0;
}

/*
 * Append s as a JSON string, escaped the way json-c's compact printer does
 * it (wire_format_reply(): '"', '\\' and control characters; '/' and bytes
 * >= 0x80 as they are), so that both paths write the same bytes. Returns
 * the end of what was written; p needs room for 6 bytes per input byte + 2.
 */
static char *json_put_string(char *p, const char *s) {
        static const char hex[] = "0123456789abcdef";

        *p++ = '"';
        for (; *s; s++) {
                unsigned char ch = (unsigned char) *s;

                switch (ch) {
                case '"':  *p++ = '\\'; *p++ = '"'; break;
                case '\\': *p++ = '\\'; *p++ = '\\'; break;
                case '\b': *p++ = '\\'; *p++ = 'b'; break;
                case '\f': *p++ = '\\'; *p++ = 'f'; break;
                case '\n': *p++ = '\\'; *p++ = 'n'; break;
                case '\r': *p++ = '\\'; *p++ = 'r'; break;
                case '\t': *p++ = '\\'; *p++ = 't'; break;
                default:
                        if (ch < 0x20) {
                                memcpy(p, "\\u00", 4);
                                p += 4;
                                *p++ = hex[ch >> 4];
                                *p++ = hex[ch & 15];
                        } else
                                *p++ = (char) ch;
                }
        }
        *p++ = '"';
        return p;
}

/*
 * The reply to a routing command: {"ok":true,"messages":[...]} with the
 * lines of the outcome records from `from` on. This is the hot path of the
 * TCP side (one per call/answer/reject/hangup), so the line is written
 * straight into the output buffer: no json-c tree, no string list, no
 * allocation once the buffer has grown. Returns 0 or -ENOMEM.
 */
static int queue_events_reply(Connection *c, const AcdEvents *ev, size_t from) {
        static const char head[] = "{\"ok\":true,\"messages\":[";
        char msg[ACD_MESSAGE_MAX];
        size_t start = c->out_len;
        char *p;
        bool first = true;

        if (conn_reserve(c, sizeof head) < 0)
                return -ENOMEM;
        memcpy(c->out + c->out_len, head, sizeof head - 1);
        c->out_len += sizeof head - 1;

        for (size_t i = from; i < ev->n; i++) {
                int n = acd_event_format_message(&ev->events[i], msg, sizeof msg);

                if (n <= 0)
                        continue;
                /* Worst case: every byte escaped as \u00XX, quotes, comma. */
                if (conn_reserve(c, (size_t) n * 6 + 3) < 0) {
                        c->out_len = start;
                        return -ENOMEM;
                }
                p = c->out + c->out_len;
                if (!first)
                        *p++ = ',';
                first = false;
                p = json_put_string(p, msg);
                c->out_len = (size_t) (p - c->out);
        }

        if (conn_reserve(c, 3) < 0) {
                c->out_len = start;
                return -ENOMEM;
        }
        memcpy(c->out + c->out_len, "]}\n", 3);
        c->out_len += 3;
        c->server->pending_output += c->out_len - start;
        conn_hold(c);
        return 0;
}

/* Send the queued output and fix up the poll mask; closes the connection
 * when the peer is gone or it is done, and after queueing notices, when it
 * is a reader too slow to keep (replies cannot get it there: its input
 * pauses first, and one large reply, e.g. a long status, is not a reason
 * to drop a client). Returns false when c was freed. */
static bool conn_settle(Connection *c, bool notices) {
        int r;

        r = conn_flush(c);
        if (r < 0) {
                conn_close(c, "peer gone");
                return false;
        }
        if (notices && conn_unsent(c) > c->server->manager->config->router.output_buffer_max) {
                log_struct(LOG_WARNING, 0, LOG_FIELDS(c->peer_field, MESSAGE_ID_SLOW_READER),
                           "Client %s does not read its replies (%zu bytes unsent), disconnecting it.",
                           c->peer, conn_unsent(c));
                conn_free(c);
                return false;
        }
        if (c->read_eof && conn_unsent(c) == 0) {
                conn_close(c, "end of input");
                return false;
        }
        conn_update_events(c);
        return true;
}

/* --- requests ------------------------------------------------------------------- */

static int reply_error(Connection *c, WireError e, WireCommand cmd, const char *id) {
        char msg[WIRE_MESSAGE_MAX], *line = NULL;
        int r;

        r = wire_error_message(e, cmd, id, msg, sizeof msg);
        if (r < 0)
                return r;
        r = wire_format_error(e, msg, &line);
        if (r < 0)
                return r;
        return conn_queue(c, line);
}

static int append_message(char ***l, size_t *n, const char *fmt, ...) _printf_(3, 4);
static int append_message(char ***l, size_t *n, const char *fmt, ...) {
        va_list ap;
        char **k, *s = NULL;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        k = realloc(*l, (*n + 2) * sizeof(char *));
        if (!k) {
                free(s);
                return -ENOMEM;
        }
        *l = k;
        k[(*n)++] = s;
        k[*n] = NULL;
        return 0;
}

/*
 * "status": the summary line, then one line per operator and per waiting
 * call, plus the same as data ("operators", "calls" with the D-Bus field
 * names, and each call's "queue") for programs.
 */
static int reply_status(Connection *c) {
        Manager *m = c->server->manager;
        _cleanup_(strv_freep) char **lines = NULL;
        _cleanup_(freep) AcdOperatorInfo *ops = NULL;
        _cleanup_(freep) AcdCallInfo *calls = NULL;
        _cleanup_(json_object_putp) struct json_object *extra = NULL;
        struct json_object *jops, *jcalls;
        size_t n_lines = 0, n_ops = 0, n_calls = 0;
        char summary[256], *line = NULL;
        int r;

        r = acd_list_operators(m->acd, &ops, &n_ops);
        if (r < 0)
                return r;
        r = acd_list_calls(m->acd, now_usec(CLOCK_REALTIME), &calls, &n_calls);
        if (r < 0)
                return r;
        (void) manager_status_line(m, summary, sizeof summary);

        extra = json_object_new_object();
        jops = json_object_new_array();
        jcalls = json_object_new_array();
        if (!extra || !jops || !jcalls) {
                json_object_put(jops);
                json_object_put(jcalls);
                return -ENOMEM;
        }
        json_object_object_add(extra, "operators", jops);
        json_object_object_add(extra, "calls", jcalls);

        r = append_message(&lines, &n_lines, "%s", summary);
        for (size_t i = 0; r >= 0 && i < n_ops; i++) {
                struct json_object *o = json_object_new_object();

                if (!o)
                        return -ENOMEM;
                json_object_object_add(o, "operator", json_object_new_string(ops[i].id));
                json_object_object_add(o, "state", json_object_new_string(acd_operator_state_to_string(ops[i].state)));
                json_object_object_add(o, "call", json_object_new_string(ops[i].call ? ops[i].call : ""));
                json_object_object_add(o, "status", json_object_new_string(acd_operator_status_to_string(ops[i].status)));
                json_object_array_add(jops, o);
                if (ops[i].call)
                        r = append_message(&lines, &n_lines, "Operator %s %s (call %s)", ops[i].id,
                                           acd_operator_state_to_string(ops[i].state), ops[i].call);
                else
                        r = append_message(&lines, &n_lines, "Operator %s %s", ops[i].id,
                                           acd_operator_state_to_string(ops[i].state));
        }
        for (size_t i = 0; r >= 0 && i < n_calls; i++) {
                struct json_object *o = json_object_new_object();

                if (!o)
                        return -ENOMEM;
                json_object_object_add(o, "call", json_object_new_string(calls[i].id));
                json_object_object_add(o, "state", json_object_new_string(acd_call_state_to_string(calls[i].state)));
                json_object_object_add(o, "operator", json_object_new_string(calls[i].operator ? calls[i].operator : ""));
                json_object_object_add(o, "waited_usec", json_object_new_int64((int64_t) calls[i].waited));
                /* Not a D-Bus field: ListCalls (a(ssst)) cannot say it. */
                json_object_object_add(o, "queue", json_object_new_string(calls[i].queue ? calls[i].queue : ""));
                json_object_array_add(jcalls, o);
                if (calls[i].state == ACD_CALL_QUEUED)
                        r = append_message(&lines, &n_lines, "Call %s waiting in queue", calls[i].id);
        }
        if (r < 0)
                return r;

        r = wire_format_reply((const char *const *) lines, n_lines, extra, &line);
        if (r < 0)
                return r;
        return conn_queue(c, line);
}

static int handle_request(Connection *c, const WireRequest *req) {
        Manager *m = c->server->manager;
        const char *call = NULL;
        char *line = NULL;
        int r;

        /* Requests read during the shutdown grace period are served as
         * usual (their changes are flushed at its end); later ones are not
         * read at all, but one already split off the buffer is refused. */
        if (m->grace_over)
                return reply_error(c, WIRE_ERROR_UNAVAILABLE, req->command, req->id);

        switch (req->command) {
        case WIRE_COMMAND_CALL:
                r = manager_place_call(m, req->id, req->queue[0] ? req->queue : NULL);
                /* Remember who placed it: ring timeouts of this call are
                 * reported to that connection. */
                if (r >= 0 && idmap_put(c->server->placers, req->id, c) < 0)
                        log_oom();
                break;
        case WIRE_COMMAND_ANSWER:
                r = manager_answer(m, req->id, &call);
                break;
        case WIRE_COMMAND_REJECT:
                r = manager_reject(m, req->id, &call);
                break;
        case WIRE_COMMAND_HANGUP:
                r = manager_hangup(m, req->id);
                break;
        case WIRE_COMMAND_STATUS:
                return reply_status(c);
        case WIRE_COMMAND_SUBSCRIBE: {
                const char *msg = "Subscribed to notices";

                c->subscribed = true;
                r = wire_format_reply(&msg, 1, NULL, &line);
                if (r < 0)
                        return r;
                return conn_queue(c, line);
        }
        default:
                return reply_error(c, WIRE_ERROR_UNKNOWN_COMMAND, req->command, NULL);
        }

        if (r < 0) {
                WireError e = wire_error_from_errno(req->command, r);

                /* "No such queue sales" names the queue, not the call. */
                return reply_error(c, e, req->command, e == WIRE_ERROR_NO_SUCH_QUEUE ? req->queue : req->id);
        }

        return queue_events_reply(c, &m->events, 0);
}

static void handle_line(Connection *c, const char *line, size_t len) {
        WireRequest req;
        WireError e;
        int r;

        r = wire_parse_request(line, len, &req, &e);
        if (r == -EBADMSG)
                r = reply_error(c, e, _WIRE_COMMAND_INVALID, NULL);
        else if (r >= 0)
                r = handle_request(c, &req);
        if (r < 0) {
                /* Out of memory formatting a reply: still answer, so that
                 * the client's replies stay paired with its requests. */
                log_debug_errno(r, "Failed to answer %s: %m", c->peer);
                (void) reply_error(c, WIRE_ERROR_INTERNAL, _WIRE_COMMAND_INVALID, NULL);
        }
}

/* --- input ------------------------------------------------------------------------- */

static bool conn_paused(const Connection *c) {
        return conn_unsent(c) > c->server->pause_threshold || c->server->stopped || c->server->held;
}

/* Handle every complete line in the input buffer, in order, until the
 * output backs up. */
static void conn_process_input(Connection *c) {
        size_t off = 0;

        c->input_blocked = false;
        for (;;) {
                size_t line_len = 0, consumed = 0;
                WireFrame f;

                if (conn_paused(c)) {
                        c->input_blocked = off < c->in_len;
                        break;
                }

                f = wire_frame_next(&c->framer, c->in + off, c->in_len - off, &line_len, &consumed);
                if (f == WIRE_FRAME_LINE)
                        handle_line(c, c->in + off, line_len);
                else if (f == WIRE_FRAME_TOO_LONG)
                        (void) reply_error(c, WIRE_ERROR_LINE_TOO_LONG, _WIRE_COMMAND_INVALID, NULL);
                off += consumed;
                if (f == WIRE_FRAME_NEED_MORE)
                        break;
        }

        /* At end of input, a last line without its newline is still a
         * request (printf '...' | nc); the rest of an over-long line is
         * not. */
        if (c->read_eof && !conn_paused(c) && off < c->in_len) {
                if (!c->framer.discarding)
                        handle_line(c, c->in + off, c->in_len - off);
                off = c->in_len;
        }

        if (off > 0) {
                memmove(c->in, c->in + off, c->in_len - off);
                c->in_len -= off;
        }
        if (c->in_len == 0 && c->in_alloc > IN_INITIAL) {
                free(c->in);
                c->in = NULL;
                c->in_alloc = 0;
        }
}

/* Read once. Returns 1 when data came, 0 at end of input or nothing to
 * read, negative on error. */
static int conn_read(Connection *c) {
        ssize_t n;

        if (c->in_len == c->in_alloc) {
                size_t a = c->in_alloc ? c->in_alloc * 2 : IN_INITIAL;
                char *b;

                if (a > IN_MAX)
                        a = IN_MAX;
                if (a == c->in_alloc)
                        /* Full with no complete line: the framer has
                         * turned to discarding, or output is paused.
                         * Either way, wait. */
                        return 0;
                b = realloc(c->in, a);
                if (!b)
                        return -ENOMEM;
                c->in = b;
                c->in_alloc = a;
        }

        n = recv(c->fd, c->in + c->in_len, c->in_alloc - c->in_len, MSG_DONTWAIT);
        if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                        return 0;
                return -errno;
        }
        if (n == 0) {
                c->read_eof = true;
                return 0;
        }
        c->in_len += (size_t) n;
        return 1;
}

/* Handle the lines in the input buffer, and the ones left over from a
 * pause once the output drained, even if no new input arrives: keep going
 * while writing frees room. Returns false when c was freed. */
static bool conn_serve(Connection *c) {
        for (;;) {
                conn_process_input(c);
                if (conn_flush(c) < 0) {
                        conn_close(c, "peer gone");
                        return false;
                }
                if (!c->input_blocked || conn_paused(c))
                        break;
        }
        return conn_settle(c, false);
}

static int on_connection_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Connection *c = userdata;
        int r;

        if (revents & EPOLLOUT) {
                r = conn_flush(c);
                if (r < 0) {
                        conn_close(c, "peer gone");
                        return 0;
                }
        }

        /* A hang-up is reported whatever the mask says: a connection that
         * cannot read now (paused) would otherwise be woken for it again
         * and again. The peer is gone, and so is any use of its replies. */
        if ((revents & (EPOLLHUP | EPOLLERR)) && (c->read_eof || conn_paused(c))) {
                conn_close(c, "hang-up");
                return 0;
        }

        if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->read_eof && !conn_paused(c)) {
                r = conn_read(c);
                if (r < 0) {
                        conn_close(c, "read error");
                        return 0;
                }
        }

        (void) conn_serve(c);
        return 0;
}

static void conn_update_events(Connection *c) {
        uint32_t ev = 0;

        if (!c->read_eof && !conn_paused(c))
                ev |= EPOLLIN;
        /* Only what may be written: held output waits for
         * server_release(), not for the socket. */
        if (conn_unsent(c) > 0 && c->sent_total < c->released_total)
                ev |= EPOLLOUT;
        (void) sd_event_source_set_io_events(c->io, ev);
        /* A connection paused with complete lines still buffered is woken
         * by EPOLLOUT when its output drains; one with neither input nor
         * output interest is at end of input with nothing left to send,
         * which conn_settle() closed already. */
}

static void format_peer(int fd, char *buf, size_t size) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;
        char host[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;

        if (getpeername(fd, (struct sockaddr *) &sa, &len) < 0) {
                snprintf(buf, size, "fd %d", fd);
                return;
        }
        if (sa.ss_family == AF_INET) {
                struct sockaddr_in *in = (struct sockaddr_in *) &sa;

                (void) inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
                port = ntohs(in->sin_port);
                snprintf(buf, size, "%s:%u", host, port);
        } else if (sa.ss_family == AF_INET6) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &sa;

                (void) inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
                port = ntohs(in6->sin6_port);
                snprintf(buf, size, "[%s]:%u", host, port);
        } else
                snprintf(buf, size, "local");
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Server *s = userdata;

        for (unsigned i = 0; i < ACCEPT_BURST; i++) {
                Connection *c;
                int cfd, one = 1, r;

                cfd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        /* EMFILE and friends: the backlog keeps the
                         * client waiting; try again on the next wake-up. */
                        if (ratelimit_below(&s->refuse_ratelimit))
                                log_warning_errno(errno, "accept() failed, continuing: %m");
                        break;
                }

                if (s->n_connections >= s->manager->config->router.max_connections) {
                        char peer[64];

                        format_peer(cfd, peer, sizeof peer);
                        if (ratelimit_below(&s->refuse_ratelimit))
                                log_warning("Refusing connection from %s: %zu connections already "
                                            "([router] max_connections).", peer, s->n_connections);
                        (void) close(cfd);
                        continue;
                }

                c = calloc(1, sizeof *c);
                if (!c) {
                        (void) close(cfd);
                        (void) log_oom();
                        break;
                }
                c->server = s;
                c->fd = cfd;
                (void) setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                format_peer(cfd, c->peer, sizeof c->peer);
                snprintf(c->peer_field, sizeof c->peer_field, "ROUTER_PEER=%s", c->peer);

                r = sd_event_add_io(s->manager->event, &c->io, cfd, EPOLLIN, on_connection_io, c);
                if (r < 0) {
                        log_warning_errno(r, "Could not watch connection from %s, closing it: %m", c->peer);
                        (void) close(cfd);
                        free(c);
                        continue;
                }
                (void) sd_event_source_set_description(c->io, "tcp-connection");

                c->next = s->connections;
                if (c->next)
                        c->next->prev = c;
                s->connections = c;
                s->n_connections++;
                log_struct(LOG_DEBUG, 0, LOG_FIELDS(c->peer_field), "Connection from %s.", c->peer);
        }
        return 0;
}

/* --- notices ------------------------------------------------------------------------ */

static int pending_add(Connection *c, size_t i) {
        if (c->n_pending >= c->allocated_pending) {
                size_t n = c->allocated_pending ? c->allocated_pending * 2 : 8;
                size_t *p = realloc(c->pending, n * sizeof(size_t));

                if (!p)
                        return -ENOMEM;
                c->pending = p;
                c->allocated_pending = n;
        }
        c->pending[c->n_pending++] = i;
        return 0;
}

static void send_notice(Connection *c, const AcdEvents *ev, char (*lines)[ACD_MESSAGE_MAX],
                        const size_t *idx, size_t n) {
        _cleanup_(freep) const char **msgs = NULL;
        char *line = NULL;
        int r;

        if (n == 0)
                return;
        msgs = calloc(n, sizeof(char *));
        if (!msgs)
                return;
        for (size_t i = 0; i < n; i++)
                msgs[i] = lines[idx[i]];
        /* The notice is named after its first line's event: "ignored" for
         * a ring timeout (the re-offer follows in the same notice). */
        r = wire_format_notice(acd_event_kind_to_string(ev->events[idx[0]].kind), msgs, n, &line);
        if (r >= 0)
                (void) conn_queue(c, line);
}

/* Notices for the lines of events [from, to): each placer gets the lines
 * about its calls, each subscriber all of them. */
static void send_segment(Server *s, const AcdEvents *ev, char (*lines)[ACD_MESSAGE_MAX], size_t *all,
                         size_t from, size_t to) {
        size_t n_all = 0;

        for (size_t i = from; i < to; i++) {
                const AcdEvent *e = &ev->events[i];
                Connection *placer;

                if (acd_event_format_message(e, lines[i], sizeof lines[i]) <= 0)
                        continue;
                all[n_all++] = i;
                placer = idmap_get(s->placers, e->call);
                if (placer && !placer->subscribed && pending_add(placer, i) < 0)
                        (void) log_oom();
        }
        if (n_all == 0)
                return;

        for (Connection *c = s->connections, *next; c; c = next) {
                next = c->next;
                if (c->subscribed)
                        send_notice(c, ev, lines, all, n_all);
                else if (c->n_pending > 0)
                        send_notice(c, ev, lines, c->pending, c->n_pending);
                else
                        continue;
                c->n_pending = 0;
                (void) conn_settle(c, true);
        }
}

void server_handle_events(Server *s, const AcdEvents *ev, size_t from, bool unsolicited) {
        if (!s || !ev || from >= ev->n)
                return;

        if (unsolicited) {
                _cleanup_(freep) char (*lines)[ACD_MESSAGE_MAX] = NULL;
                _cleanup_(freep) size_t *all = NULL;
                size_t seg = from;

                lines = calloc(ev->n, sizeof *lines);
                all = calloc(ev->n, sizeof(size_t));
                if (!lines || !all) {
                        (void) log_oom();
                        return;
                }
                /* One notice per ring timeout: "Call 1 ignored by operator
                 * A" and the re-offer that follows it, as the seed server
                 * sends them. Several timeouts due at once are split at
                 * each "ignored" line. */
                for (size_t i = from + 1; i <= ev->n; i++)
                        if (i == ev->n || ev->events[i].kind == ACD_EVENT_IGNORED) {
                                send_segment(s, ev, lines, all, seg, i);
                                seg = i;
                        }
        }

        /* Ended calls: their ids may come back as new calls, placed by
         * someone else. */
        for (size_t i = from; i < ev->n; i++)
                if (ev->events[i].kind == ACD_EVENT_FINISHED || ev->events[i].kind == ACD_EVENT_MISSED)
                        (void) idmap_remove(s->placers, ev->events[i].call);
}

/* --- server ------------------------------------------------------------------------- */

int server_new(Server **ret, Manager *m, int listen_fd) {
        Server *s;
        int r, flags;

        s = calloc(1, sizeof *s);
        if (!s) {
                (void) close(listen_fd);
                return -ENOMEM;
        }
        s->manager = m;
        s->fd = listen_fd;
        s->refuse_ratelimit = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 5 };
        /* Replies alone must never reach the disconnect limit: input
         * pauses well below it, so only notices (which cannot wait) can
         * push a connection over. */
        s->pause_threshold = SERVER_OUTPUT_PAUSE;
        if (s->pause_threshold > m->config->router.output_buffer_max / 2)
                s->pause_threshold = m->config->router.output_buffer_max / 2;

        flags = fcntl(listen_fd, F_GETFL);
        if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
                r = -errno;
                server_free(s);
                return r;
        }
        r = idmap_new(&s->placers);
        if (r < 0) {
                server_free(s);
                return r;
        }
        r = sd_event_add_io(m->event, &s->accept_source, listen_fd, EPOLLIN, on_accept, s);
        if (r < 0) {
                server_free(s);
                return r;
        }
        (void) sd_event_source_set_description(s->accept_source, "tcp-accept");
        *ret = s;
        return 0;
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;
        while (s->connections)
                conn_free(s->connections);
        sd_event_source_disable_unref(s->accept_source);
        if (s->fd >= 0)
                (void) close(s->fd);
        idmap_free(s->placers);
        free(s);
        return NULL;
}

void server_stop_accepting(Server *s) {
        if (s)
                (void) sd_event_source_set_enabled(s->accept_source, SD_EVENT_OFF);
}

void server_stop_reading(Server *s) {
        if (!s)
                return;
        s->stopped = true;
        (void) sd_event_source_set_enabled(s->accept_source, SD_EVENT_OFF);
        for (Connection *c = s->connections; c; c = c->next)
                conn_update_events(c);
}

void server_hold_input(Server *s, bool hold) {
        if (!s || s->held == hold)
                return;
        s->held = hold;
        for (Connection *c = s->connections, *next; c; c = next) {
                next = c->next;
                /* Released: lines that waited in the buffer go first. A
                 * line handled here may hold input again: conn_serve()
                 * stops there, and so do the connections after it. */
                if (!hold && c->input_blocked)
                        (void) conn_serve(c);
                else
                        conn_update_events(c);
        }
}

void server_release(Server *s, uint64_t committed) {
        if (!s)
                return;
        for (Connection *c = s->waiting, *next; c; c = next) {
                next = c->held_next;
                if (!conn_release(c, committed))
                        continue;
                /* Written now; a connection paused by its held output
                 * goes on with the lines it buffered (which may hold it
                 * again: it is then back at the list's head, behind us). */
                if (c->input_blocked)
                        (void) conn_serve(c);
                else
                        (void) conn_settle(c, false);
        }
}

size_t server_pending_output(const Server *s) {
        return s ? s->pending_output : 0;
}

size_t server_connection_count(const Server *s) {
        return s ? s->n_connections : 0;
}
