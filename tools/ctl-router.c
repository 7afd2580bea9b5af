/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "ctl-output.h"
#include "ctl-router.h"
#include "dbus/names.h"
#include "json-util.h"

#define ROUTER_DEFAULT_HOST "127.0.0.1"
#define ROUTER_DEFAULT_PORT "5678"
/* Same text as the shell's prompt (ctl-shell.c), redrawn after a notice. */
#define ROUTER_SHELL_PROMPT "(callcenter) "
/* The wire refuses longer lines; a reply cannot be longer either. */
#define ROUTER_LINE_MAX (64 * 1024)
/* How long a shell command waits for the router's reply. The router answers
 * at once (nothing it does blocks), so this only catches a wedged peer. */
#define ROUTER_REPLY_TIMEOUT_MSEC (30 * 1000)
/* Same limit as the ACD's ids (daemons/routerd/acd.h ACD_ID_MAX). */
#define ROUTER_ID_MAX 64

const char ctl_router_call_help[] =
        "Call control, as the seed client offers it:\n"
        "  call ID       a call arrives: it rings an available operator or waits in the queue\n"
        "  answer OP     the ringing operator OP takes its call\n"
        "  reject OP     OP refuses its call, which is offered again at once\n"
        "  hangup ID     the caller hangs up: 'finished' when answered, else 'missed'\n"
        "Prints the router's message lines (\"Call 1 ringing for operator A\"). With\n"
        "-o json: one object with the D-Bus reply's fields (call, state, operator;\n"
        "operator, call; call, outcome), and queue when --queue was given.\n"
        "Options of call:\n"
        "  -q, --queue=NAME  the call waits in the named queue ([router] queues) and\n"
        "                    rings only its members (PlaceCallInQueue); default: the\n"
        "                    queue \"default\". An unknown queue is refused (exit 1).\n"
        "On the command line these use D-Bus (org.callcenter.Router1). In the shell\n"
        "they use the router's TCP protocol ($CALLCENTER_ROUTER, default\n"
        "127.0.0.1:5678), whose notices (a ring timeout) appear as they arrive.\n";

const char ctl_router_list_help[] =
        "  operators     every operator in configured order: operator, state, call, status\n"
        "  calls         every call, queue order first: call, state, operator, waited\n"
        "  status        strategy, ring timeout, queue length, operators available\n"
        "  stats         the router's statistics (GetStats)\n"
        "With -o json: one object per line; keys operator, state, call, status /\n"
        "call, state, operator, waited_usec / strategy, ring_timeout_usec,\n"
        "queue_length, operators_available / the statistics' own names.\n";

const char ctl_router_operator_help[] =
        "  operator add OP                               add an operator (last in order)\n"
        "  operator rm OP                                remove an idle or ringing operator\n"
        "  operator status OP available|paused|offline   whether OP is offered calls\n"
        "  operator queues OP [QUEUE...]                 the queues OP serves (none: every\n"
        "                                                queue); kept across restarts, wins\n"
        "                                                over [router] queues\n";

/* ---- arguments ---------------------------------------------------------- */

/* The ACD's id rule (1..64 bytes of printable ASCII without blanks), checked
 * here so that a typo is a usage error (exit 2), not a refusal. */
static bool router_id_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > ROUTER_ID_MAX)
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < 0x21 || (unsigned char) *p > 0x7e)
                        return false;
        return true;
}

/*
 * Parse the global options and exactly one ID/OP argument. Returns the
 * argument's index (> 0), or 0 with the command's exit status in *ret_exit
 * (--help printed: success; bad usage: reported, CTL_EXIT_USAGE).
 */
static int parse_one_id(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv, const char *what, int *ret_exit) {
        int idx;

        idx = ctl_parse_options(ctl, cmd, argc, argv, NULL, NULL, NULL, NULL);
        if (idx <= 0) {
                *ret_exit = idx == 0 ? CTL_EXIT_SUCCESS : CTL_EXIT_USAGE;
                return 0;
        }
        *ret_exit = CTL_EXIT_USAGE;
        if (idx >= argc)
                return ctl_usage_error(ctl, cmd, "missing %s", what), 0;
        if (idx + 1 < argc)
                return ctl_usage_error(ctl, cmd, "unexpected argument '%s'", argv[idx + 1]), 0;
        if (!router_id_is_valid(argv[idx]))
                return ctl_usage_error(ctl, cmd, "invalid %s '%s': 1 to %d printable characters without blanks",
                                       what, argv[idx], ROUTER_ID_MAX), 0;
        return idx;
}

/* The same for commands without arguments. */
static int parse_no_args(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv, int *ret_exit) {
        int idx = ctl_parse_options(ctl, cmd, argc, argv, NULL, NULL, NULL, NULL);

        if (idx <= 0) {
                *ret_exit = idx == 0 ? CTL_EXIT_SUCCESS : CTL_EXIT_USAGE;
                return 0;
        }
        if (idx < argc) {
                *ret_exit = ctl_usage_error(ctl, cmd, "unexpected argument '%s'", argv[idx]);
                return 0;
        }
        return idx;
}

int ctl_router_parse_address(const char *s, char **ret_host, char **ret_port) {
        _cleanup_(freep) char *host = NULL, *port = NULL;
        const char *colon;

        if (!s || !*s)
                s = ROUTER_DEFAULT_HOST ":" ROUTER_DEFAULT_PORT;

        if (s[0] == '[') {
                const char *end = strchr(s, ']');
                if (!end || end[1] != ':')
                        return -EINVAL;
                host = strndup(s + 1, (size_t) (end - s - 1));
                colon = end + 1;
        } else {
                colon = strrchr(s, ':');
                if (!colon || memchr(s, ':', (size_t) (colon - s)))
                        return -EINVAL; /* bare IPv6 needs brackets */
                host = strndup(s, (size_t) (colon - s));
        }
        if (!host)
                return -ENOMEM;
        if (!*host || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
                return -EINVAL;
        port = strdup(colon + 1);
        if (!port)
                return -ENOMEM;

        *ret_host = TAKE_PTR(host);
        *ret_port = TAKE_PTR(port);
        return 0;
}

/* ---- TCP wire (the shell) -------------------------------------------------- */

/*
 * One connection per shell session, opened by the first call-control
 * command and kept until the shell's loop goes away, because the router
 * sends a ring timeout's notice to the connection that placed the call.
 * Owned by its (floating) I/O source on the shell's loop: the source's
 * destroy callback frees it, so the shell needs no knowledge of it.
 */
typedef struct RouterWire {
        int fd;
        sd_event *event;                /* the loop this connection lives on (not a reference) */
        sd_event_source *source;        /* floating: owned by event */
        char *buf;
        size_t len, alloc;
        bool interactive;
} RouterWire;

static RouterWire *shell_wire;

static void wire_free(void *p) {
        RouterWire *w = p;

        if (!w)
                return;
        if (shell_wire == w)
                shell_wire = NULL;
        if (w->fd >= 0)
                (void) close(w->fd);
        free(w->buf);
        free(w);
}

/* Drop the connection (the source's destroy callback frees it). */
static void wire_close(RouterWire *w) {
        if (w->source) {
                sd_event_source *s = w->source;

                /* The loop holds the only reference to a floating source;
                 * making it non-floating hands that reference back and
                 * drops it, which runs wire_free(). */
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
                (void) sd_event_source_set_floating(s, false);
        } else
                wire_free(w);
}

/* Print one message line, with control bytes (from a peer we do not
 * control) replaced so that they cannot drive the terminal. */
static void print_message(const char *m) {
        for (const char *p = m; *p; p++)
                putchar((unsigned char) *p < 0x20 || *p == 0x7f ? '?' : *p);
        putchar('\n');
}

static int print_messages(struct json_object *obj) {
        struct json_object *msgs;
        size_t n;

        if (!json_object_object_get_ex(obj, "messages", &msgs) || !json_object_is_type(msgs, json_type_array))
                return -EBADMSG;
        n = json_object_array_length(msgs);
        for (size_t i = 0; i < n; i++) {
                struct json_object *m = json_object_array_get_idx(msgs, i);
                if (json_object_is_type(m, json_type_string))
                        print_message(json_object_get_string(m));
        }
        return 0;
}

/*
 * Take the next complete line out of w->buf and parse it. Returns 1 and the
 * object, 0 when no complete line is buffered, -EBADMSG for a line that is
 * not a JSON object (consumed), -E2BIG when the buffer holds an overlong
 * partial line (the connection is unusable).
 */
static int wire_next_line(RouterWire *w, struct json_object **ret) {
        char *nl = w->len > 0 ? memchr(w->buf, '\n', w->len) : NULL;
        size_t used;
        int r;

        if (!nl)
                return w->len > ROUTER_LINE_MAX ? -E2BIG : 0;
        used = (size_t) (nl - w->buf) + 1;
        r = json_parse_object(w->buf, used - 1, ret);
        memmove(w->buf, w->buf + used, w->len - used);
        w->len -= used;
        return r < 0 ? -EBADMSG : 1;
}

/* One read() into the buffer. Returns bytes read, 0 at end of stream,
 * -EAGAIN, or another negative errno. */
static ssize_t wire_fill(RouterWire *w) {
        ssize_t n;

        if (w->alloc - w->len < 4096) {
                size_t a = w->alloc ? w->alloc * 2 : 16384;
                char *p = realloc(w->buf, a);
                if (!p)
                        return -ENOMEM;
                w->buf = p;
                w->alloc = a;
        }
        n = read(w->fd, w->buf + w->len, w->alloc - w->len);
        if (n < 0)
                return errno == EINTR ? -EAGAIN : -errno;
        w->len += (size_t) n;
        return n;
}

/*
 * Notices between commands. At an interactive prompt the line the user is
 * typing sits in the terminal's buffer, not ours: clear the prompt, print
 * the notice, and draw the prompt again, so that the notice does not land
 * in the middle of "(callcenter) ".
 */
static int on_wire_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        RouterWire *w = userdata;
        bool printed = false;
        ssize_t n;
        int r;

        n = wire_fill(w);
        if (n == -EAGAIN)
                return 0;

        for (;;) {
                _cleanup_(json_object_putp) struct json_object *obj = NULL;

                r = wire_next_line(w, &obj);
                if (r == 0)
                        break;
                if (r == -EBADMSG)
                        continue;
                if (r < 0) {
                        n = r;
                        break;
                }
                if (!printed && w->interactive)
                        fputs("\r\033[K", stdout);
                printed = true;
                (void) print_messages(obj);
        }

        if (n <= 0) {
                if (!printed && w->interactive)
                        fputs("\r\033[K", stdout);
                printed = true;
                (void) fflush(stdout);
                if (n == 0)
                        ctl_error("the router closed the connection");
                else
                        ctl_error("connection to the router failed: %s", strerror((int) -n));
                wire_close(w);
        }
        if (printed && w->interactive)
                fputs(ROUTER_SHELL_PROMPT, stdout);
        (void) fflush(stdout);
        return 0;
}

static int wire_connect(Ctl *ctl, RouterWire **ret) {
        _cleanup_(freep) char *host = NULL, *port = NULL;
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
        struct addrinfo *ai = NULL;
        const char *addr = getenv("CALLCENTER_ROUTER");
        RouterWire *w;
        int fd = -1, r, one = 1, err = 0;

        r = ctl_router_parse_address(addr, &host, &port);
        if (r == -ENOMEM)
                return ctl_error("out of memory"), r;
        if (r < 0)
                return ctl_error("invalid $CALLCENTER_ROUTER '%s': expected HOST:PORT", addr), r;

        r = getaddrinfo(host, port, &hints, &ai);
        if (r != 0)
                return ctl_error("cannot resolve the router address %s:%s: %s", host, port, gai_strerror(r)), -EHOSTUNREACH;

        /* Blocking connect: the shell waits for the command anyway. */
        for (struct addrinfo *a = ai; a; a = a->ai_next) {
                fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
                if (fd < 0) {
                        err = errno;
                        continue;
                }
                if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
                        break;
                err = errno;
                (void) close(fd);
                fd = -1;
        }
        freeaddrinfo(ai);
        if (fd < 0)
                return ctl_error("cannot connect to the router at %s:%s: %s (is callcenter-routerd running? "
                                 "$CALLCENTER_ROUTER sets the address)", host, port, strerror(err)), -err;

        /* One small request at a time: do not let Nagle hold it back. */
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

        w = calloc(1, sizeof *w);
        if (!w) {
                (void) close(fd);
                return ctl_error("out of memory"), -ENOMEM;
        }
        w->fd = fd;
        w->interactive = isatty(STDIN_FILENO) > 0;

        if (ctl->shell_event) {
                /* Non-blocking from here on: the loop reads notices, and
                 * wire_request() polls before every read or write. */
                r = sd_event_add_io(ctl->shell_event, &w->source, fd, EPOLLIN, on_wire_io, w);
                if (r < 0) {
                        wire_free(w);
                        return ctl_error("cannot watch the router connection: %s", strerror(-r)), r;
                }
                (void) sd_event_source_set_floating(w->source, true);
                (void) sd_event_source_set_destroy_callback(w->source, wire_free);
                (void) sd_event_source_unref(w->source); /* the loop owns it now */
                w->event = ctl->shell_event;
        }
        *ret = w;
        return 0;
}

/* poll() one fd for events, up to the reply timeout. */
static int wire_wait(int fd, short events) {
        struct pollfd p = { .fd = fd, .events = events };
        int r;

        do
                r = poll(&p, 1, ROUTER_REPLY_TIMEOUT_MSEC);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        if (r == 0)
                return -ETIMEDOUT;
        return 0;
}

/*
 * Send one request line on w and print what comes back until its reply:
 * notices that arrive first (another call's ring timeout) are printed in
 * order, then the reply's messages. Returns 0 once the reply is printed,
 * or a negative errno; *ret_silent tells whether the router sent nothing
 * at all for this request (see wire_request()).
 */
static int wire_exchange(RouterWire *w, const char *command, const char *id, const char *line,
                         bool *ret_silent) {
        size_t len = strlen(line), off = 0;
        int r;

        *ret_silent = true;
        while (off < len) {
                ssize_t n = send(w->fd, line + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                        if ((r = wire_wait(w->fd, POLLOUT)) < 0)
                                return r;
                        continue;
                }
                if (n < 0)
                        return -errno;
                off += (size_t) n;
        }

        for (;;) {
                _cleanup_(json_object_putp) struct json_object *obj = NULL;
                bool ok;

                r = wire_next_line(w, &obj);
                if (r == -EBADMSG)
                        continue;
                if (r < 0)
                        return r;
                if (r == 0) {
                        ssize_t n;

                        if ((r = wire_wait(w->fd, POLLIN)) < 0)
                                return r;
                        n = wire_fill(w);
                        if (n == -EAGAIN)
                                continue;
                        if (n == 0)
                                return -ECONNRESET;
                        if (n < 0)
                                return (int) n;
                        *ret_silent = false;
                        continue;
                }

                /* Replies carry "ok"; notices carry "event" and no "ok". */
                if (json_get_bool(obj, "ok", &ok) < 0) {
                        (void) print_messages(obj);
                        continue;
                }
                /* A refusal's human line is part of the seed dialogue
                 * ("No such operator C"): it goes to stdout like every
                 * other message line. */
                if (print_messages(obj) < 0 && !ok) {
                        const char *code = NULL;
                        (void) json_get_string(obj, "error", &code);
                        ctl_error("the router refused '%s %s': %s", command, id, code ?: "unknown error");
                }
                return 0;
        }
}

/* Send one shell command over the session's connection; queue (call only)
 * may be NULL. Returns the exit status. */
static int wire_request(Ctl *ctl, const char *command, const char *id, const char *queue) {
        _cleanup_(json_object_putp) struct json_object *req = NULL;
        _cleanup_(freep) char *line = NULL;
        RouterWire *w = shell_wire;
        bool reused, silent;
        int r;

        req = json_object_new_object();
        if (!req || json_object_object_add(req, "command", json_object_new_string(command)) < 0 ||
            json_object_object_add(req, "id", json_object_new_string(id)) < 0 ||
            /* Only when asked for: a seed-format request stays byte for byte
             * what the seed client sends. */
            (queue && json_object_object_add(req, "queue", json_object_new_string(queue)) < 0) ||
            asprintf(&line, "%s\n", json_to_string_compact(req)) < 0) {
                line = NULL;
                ctl_error("out of memory");
                return CTL_EXIT_REFUSED;
        }

        if (w && w->event != ctl->shell_event) {
                wire_close(w); /* left from another shell loop */
                w = NULL;
        }
        (void) fflush(stdout);

        for (;;) {
                reused = w != NULL;
                if (!w) {
                        if (wire_connect(ctl, &w) < 0)
                                return CTL_EXIT_REFUSED;
                        if (ctl->shell_event)
                                shell_wire = w;
                }

                r = wire_exchange(w, command, id, line, &silent);
                if (r >= 0)
                        break;
                /* The stream is out of step now: drop it. */
                wire_close(w);
                w = NULL;
                /*
                 * A connection kept from an earlier command may have been
                 * closed by the router meanwhile (a restart) before we
                 * noticed. If it answered nothing at all, the request was
                 * never read: send it once more on a new connection.
                 */
                if (reused && silent && (r == -ECONNRESET || r == -EPIPE))
                        continue;

                (void) fflush(stdout);
                if (r == -ECONNRESET || r == -EPIPE)
                        ctl_error("the router closed the connection");
                else if (r == -ETIMEDOUT)
                        ctl_error("no reply from the router within %d s", ROUTER_REPLY_TIMEOUT_MSEC / 1000);
                else
                        ctl_error("connection to the router failed: %s", strerror(-r));
                return CTL_EXIT_REFUSED;
        }

        if (!ctl->shell_event)
                wire_close(w);
        return CTL_EXIT_SUCCESS;
}

/* ---- D-Bus ------------------------------------------------------------------ */

/* Report a failed call: the router's own message for its named errors, a
 * hint when the router is not on the bus at all. */
static int report_bus_error(Ctl *ctl, const char *member, const sd_bus_error *error, int r) {
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                return ctl_error("the router is not running on the %s bus (%s)",
                                 ctl->user ? "session" : "system", error->message ?: error->name);
        if (sd_bus_error_is_set(error))
                return ctl_error("%s", error->message ?: error->name);
        return ctl_error("%s failed: %s", member, strerror(-r));
}

/*
 * Call Router1.member with the given signature and arguments. Returns 0 and
 * the reply, or the exit status (> 0) after reporting the error.
 */
static int router_callv(Ctl *ctl, const char *interface, const char *member, sd_bus_message **ret_reply,
                        const char *types, ...) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        sd_bus *bus;
        va_list ap;
        int r;

        r = ctl_get_bus(ctl, &bus);
        if (r < 0)
                return CTL_EXIT_REFUSED;

        va_start(ap, types);
        r = sd_bus_call_methodv(bus, CC_ROUTER_SERVICE, CC_ROUTER_PATH, interface, member, &error, &reply,
                                types, ap);
        va_end(ap);
        if (r < 0)
                return report_bus_error(ctl, member, &error, r);

        if (ret_reply)
                *ret_reply = reply;
        else
                sd_bus_message_unref(reply);
        return 0;
}

#define router_call(ctl, member, reply, types, ...) \
        router_callv(ctl, CC_ROUTER_INTERFACE, member, reply, types, ##__VA_ARGS__)

static int bad_reply(const char *member, int r) {
        return ctl_error("cannot read the reply of %s: %s", member, strerror(-r));
}

/* Print one JSON object from alternating key, value string arguments,
 * ended by a NULL key; a NULL value prints as "". */
static int print_json_strings(const char *k1, ...) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        va_list ap;

        if (!o)
                return -ENOMEM;
        va_start(ap, k1);
        for (const char *k = k1; k; k = va_arg(ap, const char *)) {
                const char *v = va_arg(ap, const char *);
                if (json_object_object_add(o, k, json_object_new_string(v ?: "")) < 0) {
                        va_end(ap);
                        return -ENOMEM;
                }
        }
        va_end(ap);
        return ctl_print_json(o);
}

static int finish_output(int r) {
        if (r == -EPIPE)
                return CTL_EXIT_SUCCESS; /* reader gone: an ordinary end */
        if (r < 0)
                return ctl_error("cannot write the output: %s", strerror(-r));
        r = ctl_flush();
        return r < 0 && r != -EPIPE ? ctl_error("cannot write the output: %s", strerror(-r)) : CTL_EXIT_SUCCESS;
}

/* One row of ListOperators / ListCalls, copied out of the reply. */
typedef struct Row {
        char *f[4];
        uint64_t waited;
} Row;

static void rows_free(Row *rows, size_t n) {
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < ELEMENTSOF(rows[i].f); j++)
                        free(rows[i].f[j]);
        free(rows);
}

/* Read a(sss) (calls = false) or a(ssst) (calls = true) into rows. */
static int read_rows(sd_bus_message *reply, bool calls, Row **ret, size_t *ret_n) {
        Row *rows = NULL;
        size_t n = 0, alloc = 0;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', calls ? "(ssst)" : "(sss)");
        if (r < 0)
                return r;
        for (;;) {
                const char *a, *b, *c;
                uint64_t t = 0;

                if (calls)
                        r = sd_bus_message_read(reply, "(ssst)", &a, &b, &c, &t);
                else
                        r = sd_bus_message_read(reply, "(sss)", &a, &b, &c);
                if (r < 0)
                        goto fail;
                if (r == 0)
                        break;
                if (n == alloc) {
                        size_t na = alloc ? alloc * 2 : 16;
                        Row *p = realloc(rows, na * sizeof *rows);
                        if (!p) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        rows = p;
                        alloc = na;
                }
                rows[n] = (Row) { .f = { strdup(a), strdup(b), strdup(c), NULL }, .waited = t };
                n++;
                if (!rows[n - 1].f[0] || !rows[n - 1].f[1] || !rows[n - 1].f[2]) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        r = sd_bus_message_exit_container(reply);
        if (r < 0)
                goto fail;
        *ret = rows;
        *ret_n = n;
        return 0;
fail:
        rows_free(rows, n);
        return r;
}

/* ListOperators, as rows (operator, state, call). Exit status on failure. */
static int list_operators(Ctl *ctl, Row **ret, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = router_call(ctl, "ListOperators", &reply, "");
        if (r > 0)
                return r;
        r = read_rows(reply, false, ret, ret_n);
        return r < 0 ? bad_reply("ListOperators", r) : 0;
}

static int list_calls(Ctl *ctl, Row **ret, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = router_call(ctl, "ListCalls", &reply, "");
        if (r > 0)
                return r;
        r = read_rows(reply, true, ret, ret_n);
        return r < 0 ? bad_reply("ListCalls", r) : 0;
}

/*
 * What became of a call after a refusal: "ringing for operator X" or
 * "waiting in queue", as the router's own reply on the wire says it. The
 * D-Bus reply names only the refused call, so look it up. Best effort: the
 * main line has been printed already.
 */
static void print_call_whereabouts(Ctl *ctl, const char *call) {
        Row *rows = NULL;
        size_t n = 0;

        if (list_calls(ctl, &rows, &n) != 0)
                return;
        for (size_t i = 0; i < n; i++) {
                if (strcmp(rows[i].f[0], call) != 0)
                        continue;
                if (strcmp(rows[i].f[1], "ringing") == 0)
                        printf("Call %s ringing for operator %s\n", call, rows[i].f[2]);
                else if (strcmp(rows[i].f[1], "queued") == 0)
                        printf("Call %s waiting in queue\n", call);
                break;
        }
        rows_free(rows, n);
}

static int parse_call_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
        if (opt != 'q')
                return -EINVAL;
        *(const char **) userdata = arg;
        return 0;
}

int verb_router_call(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv) {
        static const struct option options[] = {
                { "queue", required_argument, NULL, 'q' },
                {},
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *state, *op, *queue = NULL, *member;
        int idx, r;

        idx = ctl_parse_options(ctl, cmd, argc, argv, options, "q:", parse_call_option, &queue);
        CTL_PARSE_OR_RETURN(idx);
        if (idx >= argc)
                return ctl_usage_error(ctl, cmd, "missing call ID");
        if (idx + 1 < argc)
                return ctl_usage_error(ctl, cmd, "unexpected argument '%s'", argv[idx + 1]);
        if (!router_id_is_valid(argv[idx]))
                return ctl_usage_error(ctl, cmd, "invalid call ID '%s': 1 to %d printable characters without blanks",
                                       argv[idx], ROUTER_ID_MAX);
        /* Queue names follow the id rule; "" is refused here rather than
         * quietly meaning the default queue, as it would over D-Bus. */
        if (queue && !router_id_is_valid(queue))
                return ctl_usage_error(ctl, cmd, "invalid queue '%s': 1 to %d printable characters without blanks",
                                       queue, ROUTER_ID_MAX);
        if (ctl->in_shell && ctl->output == CTL_OUTPUT_TEXT)
                return wire_request(ctl, "call", argv[idx], queue);

        member = queue ? "PlaceCallInQueue" : "PlaceCall";
        if (queue)
                r = router_call(ctl, member, &reply, "ss", argv[idx], queue);
        else
                r = router_call(ctl, member, &reply, "s", argv[idx]);
        if (r > 0)
                return r;
        r = sd_bus_message_read(reply, "ss", &state, &op);
        if (r < 0)
                return bad_reply(member, r);

        if (ctl->output == CTL_OUTPUT_JSON) {
                if (queue)
                        return finish_output(print_json_strings("call", argv[idx], "state", state, "operator", op,
                                                                "queue", queue, NULL));
                return finish_output(print_json_strings("call", argv[idx], "state", state, "operator", op, NULL));
        }

        printf("Call %s received\n", argv[idx]);
        if (strcmp(state, "ringing") == 0)
                printf("Call %s ringing for operator %s\n", argv[idx], op);
        else if (strcmp(state, "queued") == 0)
                printf("Call %s waiting in queue\n", argv[idx]);
        else
                printf("Call %s %s\n", argv[idx], state); /* a state newer than this client */
        return finish_output(ctl_output_error());
}

/* answer and reject: same shape, (s operator) -> (s call). */
static int answer_or_reject(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv, bool answer) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *member = answer ? "Answer" : "Reject", *call;
        int idx, r;

        idx = parse_one_id(ctl, cmd, argc, argv, "operator", &r);
        if (idx == 0)
                return r;
        if (ctl->in_shell && ctl->output == CTL_OUTPUT_TEXT)
                return wire_request(ctl, answer ? "answer" : "reject", argv[idx], NULL);

        r = router_call(ctl, member, &reply, "s", argv[idx]);
        if (r > 0)
                return r;
        r = sd_bus_message_read(reply, "s", &call);
        if (r < 0)
                return bad_reply(member, r);

        if (ctl->output == CTL_OUTPUT_JSON)
                return finish_output(print_json_strings("operator", argv[idx], "call", call, NULL));

        printf("Call %s %s by operator %s\n", call, answer ? "answered" : "rejected", argv[idx]);
        if (!answer) {
                /* The seed's reply goes on with the re-offer. */
                (void) fflush(stdout);
                print_call_whereabouts(ctl, call);
        }
        return finish_output(ctl_output_error());
}

int verb_router_answer(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv) {
        return answer_or_reject(ctl, cmd, argc, argv, true);
}

int verb_router_reject(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv) {
        return answer_or_reject(ctl, cmd, argc, argv, false);
}

int verb_router_hangup(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(freep) char *op = NULL;
        const char *outcome, *id;
        int idx, r;

        idx = parse_one_id(ctl, cmd, argc, argv, "call ID", &r);
        if (idx == 0)
                return r;
        id = argv[idx];
        if (ctl->in_shell && ctl->output == CTL_OUTPUT_TEXT)
                return wire_request(ctl, "hangup", id, NULL);

        if (ctl->output == CTL_OUTPUT_TEXT) {
                /* The seed line names the operator the call had, and the
                 * Hangup reply does not: note it first (best effort). */
                Row *rows = NULL;
                size_t n = 0;

                if (list_operators(ctl, &rows, &n) == 0)
                        for (size_t i = 0; i < n && !op; i++)
                                if (strcmp(rows[i].f[2], id) == 0)
                                        op = strdup(rows[i].f[0]);
                rows_free(rows, n);
        }

        r = router_call(ctl, "Hangup", &reply, "s", id);
        if (r > 0)
                return r;
        r = sd_bus_message_read(reply, "s", &outcome);
        if (r < 0)
                return bad_reply("Hangup", r);

        if (ctl->output == CTL_OUTPUT_JSON)
                return finish_output(print_json_strings("call", id, "outcome", outcome, NULL));

        if (strcmp(outcome, "finished") == 0 && op)
                printf("Call %s finished and operator %s available\n", id, op);
        else
                printf("Call %s %s\n", id, outcome);

        /* A freed operator takes the next waiting call at once; the seed
         * reply shows that ring too. */
        if (op) {
                Row *rows = NULL;
                size_t n = 0;

                (void) fflush(stdout);
                if (list_operators(ctl, &rows, &n) == 0)
                        for (size_t i = 0; i < n; i++)
                                if (strcmp(rows[i].f[0], op) == 0) {
                                        if (strcmp(rows[i].f[1], "ringing") == 0 && rows[i].f[2][0])
                                                printf("Call %s ringing for operator %s\n", rows[i].f[2], op);
                                        break;
                                }
                rows_free(rows, n);
        }
        return finish_output(ctl_output_error());
}

/* ---- tables ------------------------------------------------------------------ */

/* Print rows as a table with a header, columns padded to the widest cell. */
static void print_table(const char *const *header, size_t ncol, char *const *cells, size_t nrow) {
        size_t width[8] = {};

        for (size_t j = 0; j < ncol; j++)
                width[j] = strlen(header[j]);
        for (size_t i = 0; i < nrow; i++)
                for (size_t j = 0; j < ncol; j++) {
                        size_t l = strlen(cells[i * ncol + j]);
                        if (l > width[j])
                                width[j] = l;
                }
        for (size_t i = 0; i <= nrow; i++) {
                for (size_t j = 0; j < ncol; j++) {
                        const char *c = i == 0 ? header[j] : cells[(i - 1) * ncol + j];
                        if (j + 1 == ncol)
                                printf("%s\n", c);
                        else
                                printf("%-*s  ", (int) width[j], c);
                }
        }
}

/*
 * Operator statuses (available/paused/offline) by id, from the children's
 * Status property. ListOperators has no status column, and an operator
 * busy on a call shows "busy" whatever its status, so ask the object
 * manager once rather than every child. Best effort: NULL when it fails.
 */
typedef struct StatusEntry {
        char *id, *status;
} StatusEntry;

typedef struct StatusMap {
        StatusEntry *entries;   /* sorted by id once loaded */
        size_t n;
} StatusMap;

static void status_map_done(StatusMap *m) {
        for (size_t i = 0; i < m->n; i++) {
                free(m->entries[i].id);
                free(m->entries[i].status);
        }
        free(m->entries);
        *m = (StatusMap) {};
}

static int status_entry_cmp(const void *a, const void *b) {
        return strcmp(((const StatusEntry *) a)->id, ((const StatusEntry *) b)->id);
}

/* Binary search: a router may have 10,000 operators. */
static const char *status_map_get(const StatusMap *m, const char *id) {
        StatusEntry key = { .id = (char *) id };
        const StatusEntry *e;

        if (m->n == 0)
                return NULL;
        e = bsearch(&key, m->entries, m->n, sizeof *m->entries, status_entry_cmp);
        return e ? e->status : NULL;
}

/* Read one a{sv} of the operator interface: Id and Status. */
static int read_operator_props(sd_bus_message *m, char **ret_id, char **ret_status) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name, *val;
                char **dst = NULL;

                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        return r;
                if (strcmp(name, "Id") == 0)
                        dst = ret_id;
                else if (strcmp(name, "Status") == 0)
                        dst = ret_status;
                if (dst && sd_bus_message_verify_type(m, 'v', "s") > 0) {
                        r = sd_bus_message_read(m, "v", "s", &val);
                        if (r < 0)
                                return r;
                        free(*dst);
                        *dst = strdup(val);
                        if (!*dst)
                                return -ENOMEM;
                } else if ((r = sd_bus_message_skip(m, "v")) < 0)
                        return r;
                if ((r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int status_map_load(Ctl *ctl, StatusMap *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        StatusMap m = {};
        size_t alloc = 0;
        sd_bus *bus;
        int r;

        r = ctl_get_bus(ctl, &bus);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, CC_ROUTER_SERVICE, CC_ROUTER_PATH, "org.freedesktop.DBus.ObjectManager",
                               "GetManagedObjects", &error, &reply, "");
        if (r < 0)
                return r;

        r = sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}")) > 0) {
                _cleanup_(freep) char *id = NULL, *status = NULL;

                if ((r = sd_bus_message_skip(reply, "o")) < 0 ||
                    (r = sd_bus_message_enter_container(reply, 'a', "{sa{sv}}")) < 0)
                        goto fail;
                while ((r = sd_bus_message_enter_container(reply, 'e', "sa{sv}")) > 0) {
                        const char *iface;

                        if ((r = sd_bus_message_read(reply, "s", &iface)) < 0)
                                goto fail;
                        if (strcmp(iface, CC_ROUTER_OPERATOR_INTERFACE) == 0)
                                r = read_operator_props(reply, &id, &status);
                        else
                                r = sd_bus_message_skip(reply, "a{sv}");
                        if (r < 0 || (r = sd_bus_message_exit_container(reply)) < 0)
                                goto fail;
                }
                if (r < 0 || (r = sd_bus_message_exit_container(reply)) < 0 ||
                    (r = sd_bus_message_exit_container(reply)) < 0)
                        goto fail;
                if (!id || !status)
                        continue;
                if (m.n == alloc) {
                        size_t na = alloc ? alloc * 2 : 16;
                        StatusEntry *a = realloc(m.entries, na * sizeof *a);
                        if (!a) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        m.entries = a;
                        alloc = na;
                }
                m.entries[m.n] = (StatusEntry) { .id = TAKE_PTR(id), .status = TAKE_PTR(status) };
                m.n++;
        }
        if (r < 0)
                goto fail;
        if (m.n > 0)
                qsort(m.entries, m.n, sizeof *m.entries, status_entry_cmp);
        *ret = m;
        return 0;
fail:
        status_map_done(&m);
        return r;
}

int verb_router_operators(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv) {
        StatusMap statuses = {};
        Row *rows = NULL;
        size_t n = 0;
        int r;

        if (parse_no_args(ctl, cmd, argc, argv, &r) == 0)
                return r;
        r = list_operators(ctl, &rows, &n);
        if (r > 0)
                return r;
        if (status_map_load(ctl, &statuses) < 0)
                statuses = (StatusMap) {}; /* no object manager: status column stays empty */

        if (ctl->output == CTL_OUTPUT_JSON) {
                r = 0;
                for (size_t i = 0; i < n && r >= 0; i++)
                        r = print_json_strings("operator", rows[i].f[0], "state", rows[i].f[1], "call",
                                               rows[i].f[2], "status", status_map_get(&statuses, rows[i].f[0]),
                                               NULL);
        } else {
                static const char *const header[] = { "OPERATOR", "STATE", "CALL", "STATUS" };
                char **cells = calloc(n * 4 + 1, sizeof(char *));

                if (!cells)
                        r = -ENOMEM;
                else {
                        for (size_t i = 0; i < n; i++) {
                                const char *st = status_map_get(&statuses, rows[i].f[0]);
                                cells[i * 4] = rows[i].f[0];
                                cells[i * 4 + 1] = rows[i].f[1];
                                cells[i * 4 + 2] = rows[i].f[2][0] ? rows[i].f[2] : (char *) "-";
                                cells[i * 4 + 3] = st ? (char *) st : (char *) "-";
                        }
                        print_table(header, 4, cells, n);
                        free(cells);
                        r = ctl_output_error();
                }
        }
        rows_free(rows, n);
        status_map_done(&statuses);
        return finish_output(r);
}

/* "12.3s", "4min 05s", "2h 03min": a wait as a supervisor reads it. */
static void format_wait(char buf[static 32], uint64_t usec) {
        uint64_t s = usec / USEC_PER_SEC;

        if (usec < USEC_PER_MINUTE)
                snprintf(buf, 32, "%" PRIu64 ".%01" PRIu64 "s", s, (usec % USEC_PER_SEC) / 100000);
        else if (usec < USEC_PER_HOUR)
                snprintf(buf, 32, "%" PRIu64 "min %02" PRIu64 "s", s / 60, s % 60);
        else
                snprintf(buf, 32, "%" PRIu64 "h %02" PRIu64 "min", s / 3600, (s / 60) % 60);
}

int verb_router_calls(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv) {
        Row *rows = NULL;
        size_t n = 0;
        int r;

        if (parse_no_args(ctl, cmd, argc, argv, &r) == 0)
                return r;
        r = list_calls(ctl, &rows, &n);
        if (r > 0)
                return r;

        if (ctl->output == CTL_OUTPUT_JSON) {
                r = 0;
                for (size_t i = 0; i < n && r >= 0; i++) {
                        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();

                        if (!o || json_object_object_add(o, "call", json_object_new_string(rows[i].f[0])) < 0 ||
                            json_object_object_add(o, "state", json_object_new_string(rows[i].f[1])) < 0 ||
                            json_object_object_add(o, "operator", json_object_new_string(rows[i].f[2])) < 0 ||
                            json_object_object_add(o, "waited_usec", json_object_new_uint64(rows[i].waited)) < 0)
                                r = -ENOMEM;
                        else
                                r = ctl_print_json(o);
                }
        } else {
                static const char *const header[] = { "CALL", "STATE", "OPERATOR", "WAITED" };
                char **cells = calloc(n * 4 + 1, sizeof(char *));
                char (*waits)[32] = calloc(n + 1, 32);

                if (!cells || !waits)
                        r = -ENOMEM;
                else {
                        for (size_t i = 0; i < n; i++) {
                                format_wait(waits[i], rows[i].waited);
                                cells[i * 4] = rows[i].f[0];
                                cells[i * 4 + 1] = rows[i].f[1];
                                cells[i * 4 + 2] = rows[i].f[2][0] ? rows[i].f[2] : (char *) "-";
                                cells[i * 4 + 3] = waits[i];
                        }
                        print_table(header, 4, cells, n);
                        r = ctl_output_error();
                }
                free(cells);
                free(waits);
        }
        rows_free(rows, n);
        return finish_output(r);
}

/* ---- status and statistics ---------------------------------------------------- */

/*
 * The next value of m, of the single complete type at the read position, as
 * JSON: basic types as numbers, strings and booleans, variants by their
 * content, dictionaries with string keys (a{sv}, a{sa{sv}} ...) as objects,
 * other arrays and structs as arrays. Unusual types (file descriptors,
 * dictionaries with other keys) are skipped and become null: a newer
 * router's extra field must not break an older client. *ret may be NULL
 * (JSON null) on success.
 */
static int value_to_json(sd_bus_message *m, struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (r == 0)
                return -EBADMSG;

        if (type == SD_BUS_TYPE_VARIANT || type == SD_BUS_TYPE_STRUCT || type == SD_BUS_TYPE_ARRAY) {
                bool dict = type == SD_BUS_TYPE_ARRAY && contents[0] == '{' && contents[1] == 's';

                if (type == SD_BUS_TYPE_ARRAY && contents[0] == '{' && !dict)
                        goto skip;
                r = sd_bus_message_enter_container(m, type, contents);
                if (r < 0)
                        return r;
                if (type == SD_BUS_TYPE_VARIANT)
                        r = value_to_json(m, &o);
                else {
                        o = dict ? json_object_new_object() : json_object_new_array();
                        if (!o)
                                return -ENOMEM;
                        for (;;) {
                                struct json_object *v = NULL;
                                const char *key;

                                if (dict) {
                                        /* "{sv}" -> "sv": the entry's own signature. */
                                        char entry[256];
                                        snprintf(entry, sizeof entry, "%.*s", (int) strlen(contents) - 2, contents + 1);
                                        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, entry);
                                        if (r <= 0)
                                                break;
                                        if ((r = sd_bus_message_read(m, "s", &key)) < 0 ||
                                            (r = value_to_json(m, &v)) < 0)
                                                return r;
                                        if (json_object_object_add(o, key, v) < 0)
                                                return json_object_put(v), -ENOMEM;
                                        if ((r = sd_bus_message_exit_container(m)) < 0)
                                                return r;
                                } else {
                                        r = sd_bus_message_at_end(m, false);
                                        if (r != 0)
                                                break;
                                        if ((r = value_to_json(m, &v)) < 0)
                                                return r;
                                        if (json_object_array_add(o, v) < 0)
                                                return json_object_put(v), -ENOMEM;
                                }
                        }
                }
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(o);
                return 0;
        }

        if (strchr("ybnqiuxtdsog", type)) {
                union {
                        uint8_t y;
                        int b;
                        int16_t n;
                        uint16_t q;
                        int32_t i;
                        uint32_t u;
                        int64_t x;
                        uint64_t t;
                        double d;
                        const char *s;
                } v;

                r = sd_bus_message_read_basic(m, type, &v);
                if (r < 0)
                        return r;
                switch (type) {
                case 'y': o = json_object_new_int(v.y); break;
                case 'b': o = json_object_new_boolean(v.b); break;
                case 'n': o = json_object_new_int(v.n); break;
                case 'q': o = json_object_new_int(v.q); break;
                case 'i': o = json_object_new_int(v.i); break;
                case 'u': o = json_object_new_int64(v.u); break;
                case 'x': o = json_object_new_int64(v.x); break;
                case 't': o = json_object_new_uint64(v.t); break;
                case 'd': o = json_object_new_double(v.d); break;
                default: o = json_object_new_string(v.s); break;
                }
                if (!o)
                        return -ENOMEM;
                *ret = TAKE_PTR(o);
                return 0;
        }

skip:
        if (type == SD_BUS_TYPE_ARRAY) {
                char sig[256];
                snprintf(sig, sizeof sig, "a%s", contents);
                r = sd_bus_message_skip(m, sig);
        } else {
                char sig[2] = { type, 0 };
                r = sd_bus_message_skip(m, sig);
        }
        if (r < 0)
                return r;
        *ret = NULL;
        return 0;
}

/* Read a{sv} into one JSON object, keys as given or through rename()
 * (which returns NULL to drop a key). */
static int dict_to_json(sd_bus_message *m, const char *(*rename)(const char *), struct json_object **ret) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL, *all = NULL;
        int r;

        r = value_to_json(m, &all);
        if (r < 0)
                return r;
        if (!json_object_is_type(all, json_type_object))
                return -EBADMSG;
        if (!rename) {
                *ret = TAKE_PTR(all);
                return 0;
        }
        obj = json_object_new_object();
        if (!obj)
                return -ENOMEM;
        json_object_object_foreach(all, key, val) {
                const char *k = rename(key);
                if (k && json_object_object_add(obj, k, json_object_get(val)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(obj);
        return 0;
}

static const struct {
        const char *property, *key, *label;
} status_fields[] = {
        { "Strategy", "strategy", "Strategy" },
        { "RingTimeoutUSec", "ring_timeout_usec", "Ring timeout" },
        { "QueueLength", "queue_length", "Queue length" },
        { "OperatorsAvailable", "operators_available", "Operators available" },
};

/* Property name -> JSON key; properties this client does not know are dropped. */
static const char *status_key(const char *property) {
        for (size_t i = 0; i < ELEMENTSOF(status_fields); i++)
                if (strcmp(status_fields[i].property, property) == 0)
                        return status_fields[i].key;
        return NULL;
}

int verb_router_status(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        int r;

        if (parse_no_args(ctl, cmd, argc, argv, &r) == 0)
                return r;
        r = router_callv(ctl, "org.freedesktop.DBus.Properties", "GetAll", &reply, "s", CC_ROUTER_INTERFACE);
        if (r > 0)
                return r;
        r = dict_to_json(reply, status_key, &obj);
        if (r < 0)
                return bad_reply("GetAll", r);

        if (ctl->output == CTL_OUTPUT_JSON)
                return finish_output(ctl_print_json(obj));

        for (size_t i = 0; i < ELEMENTSOF(status_fields); i++) {
                struct json_object *v;

                if (!json_object_object_get_ex(obj, status_fields[i].key, &v) || !v)
                        continue;
                if (strcmp(status_fields[i].key, "ring_timeout_usec") == 0) {
                        uint64_t t = json_object_get_uint64(v);
                        if (t == UINT64_MAX)
                                printf("%-20s infinity\n", "Ring timeout:");
                        else
                                printf("%-20s %g s\n", "Ring timeout:", (double) t / USEC_PER_SEC);
                } else {
                        char label[64];
                        snprintf(label, sizeof label, "%s:", status_fields[i].label);
                        printf("%-20s %s\n", label, json_object_get_string(v));
                }
        }
        return finish_output(ctl_output_error());
}

/*
 * "key: value" lines in the router's order, values aligned; an object (the
 * per-queue figures) becomes a heading with its own lines indented below.
 */
static void print_stats_object(struct json_object *obj, int indent) {
        size_t width = 0;

        json_object_object_foreach(obj, k0, v0)
                if (!json_object_is_type(v0, json_type_object) && strlen(k0) > width)
                        width = strlen(k0);
        json_object_object_foreach(obj, key, val) {
                if (json_object_is_type(val, json_type_object)) {
                        printf("%*s%s:\n", indent, "", key);
                        print_stats_object(val, indent + 2);
                } else if (json_object_is_type(val, json_type_double))
                        printf("%*s%s:%*s %.3f\n", indent, "", key, (int) (width - strlen(key)), "",
                               json_object_get_double(val));
                else
                        printf("%*s%s:%*s %s\n", indent, "", key, (int) (width - strlen(key)), "",
                               val ? json_object_get_string(val) : "-");
        }
}

int verb_router_stats(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        int r;

        if (parse_no_args(ctl, cmd, argc, argv, &r) == 0)
                return r;
        r = router_call(ctl, "GetStats", &reply, "");
        if (r > 0)
                return r;
        r = dict_to_json(reply, NULL, &obj);
        if (r < 0)
                return bad_reply("GetStats", r);

        if (ctl->output == CTL_OUTPUT_JSON)
                return finish_output(ctl_print_json(obj));

        print_stats_object(obj, 0);
        return finish_output(ctl_output_error());
}

/* ---- operator administration ------------------------------------------------------ */

/* "operator queues OP QUEUE...": SetOperatorQueues(s, as). An empty list
 * is every queue. With -o json: {"operator": OP, "queues": [...]}. */
static int operator_queues(Ctl *ctl, const CtlCommand *cmd, const char *op, int n, char **queues) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus *bus;
        int r;

        for (int i = 0; i < n; i++) {
                if (!router_id_is_valid(queues[i]))
                        return ctl_usage_error(ctl, cmd,
                                               "invalid queue '%s': 1 to %d printable characters without blanks",
                                               queues[i], ROUTER_ID_MAX);
                for (int j = 0; j < i; j++)
                        if (strcmp(queues[i], queues[j]) == 0)
                                return ctl_usage_error(ctl, cmd, "queue '%s' given twice", queues[i]);
        }

        r = ctl_get_bus(ctl, &bus);
        if (r < 0)
                return CTL_EXIT_REFUSED;
        r = sd_bus_message_new_method_call(bus, &m, CC_ROUTER_SERVICE, CC_ROUTER_PATH, CC_ROUTER_INTERFACE,
                                           "SetOperatorQueues");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", op);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, queues);
        if (r < 0)
                return ctl_error("cannot build the SetOperatorQueues call: %s", strerror(-r));
        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0)
                return report_bus_error(ctl, "SetOperatorQueues", &error, r);

        if (ctl->output == CTL_OUTPUT_JSON) {
                _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
                struct json_object *a;

                if (!o || json_object_object_add(o, "operator", json_object_new_string(op)) < 0)
                        return finish_output(-ENOMEM);
                a = json_object_new_array();
                if (!a || json_object_object_add(o, "queues", a) < 0) {
                        json_object_put(a);
                        return finish_output(-ENOMEM);
                }
                for (int i = 0; i < n; i++)
                        if (json_object_array_add(a, json_object_new_string(queues[i])) < 0)
                                return finish_output(-ENOMEM);
                return finish_output(ctl_print_json(o));
        }
        printf("Operator %s serves ", op);
        if (n == 0)
                printf("every queue\n");
        else
                for (int i = 0; i < n; i++)
                        printf("%s%s", queues[i], i + 1 < n ? " " : "\n");
        return finish_output(ctl_output_error());
}

int verb_router_operator(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv) {
        const char *sub, *op;
        int idx, r;

        idx = ctl_parse_options(ctl, cmd, argc, argv, NULL, NULL, NULL, NULL);
        CTL_PARSE_OR_RETURN(idx);
        if (idx >= argc)
                return ctl_usage_error(ctl, cmd, "missing subcommand: add, rm, status or queues");
        sub = argv[idx];
        if (idx + 1 >= argc)
                return ctl_usage_error(ctl, cmd, "missing operator");
        op = argv[idx + 1];
        if (!router_id_is_valid(op))
                return ctl_usage_error(ctl, cmd, "invalid operator '%s': 1 to %d printable characters without blanks",
                                       op, ROUTER_ID_MAX);

        if (strcmp(sub, "add") == 0 || strcmp(sub, "rm") == 0 || strcmp(sub, "remove") == 0) {
                bool add = sub[0] == 'a';

                if (idx + 2 < argc)
                        return ctl_usage_error(ctl, cmd, "unexpected argument '%s'", argv[idx + 2]);
                r = router_call(ctl, add ? "AddOperator" : "RemoveOperator", NULL, "s", op);
                if (r > 0)
                        return r;
                if (ctl->output == CTL_OUTPUT_JSON)
                        return finish_output(print_json_strings("operator", op, "result", add ? "added" : "removed", NULL));
                printf("Operator %s %s\n", op, add ? "added" : "removed");
                return finish_output(ctl_output_error());
        }

        if (strcmp(sub, "status") == 0) {
                const char *status;

                if (idx + 2 >= argc)
                        return ctl_usage_error(ctl, cmd, "missing status: available, paused or offline");
                if (idx + 3 < argc)
                        return ctl_usage_error(ctl, cmd, "unexpected argument '%s'", argv[idx + 3]);
                status = argv[idx + 2];
                if (strcmp(status, "available") != 0 && strcmp(status, "paused") != 0 &&
                    strcmp(status, "offline") != 0)
                        return ctl_usage_error(ctl, cmd, "invalid status '%s': expected available, paused or offline",
                                               status);
                r = router_call(ctl, "SetOperatorStatus", NULL, "ss", op, status);
                if (r > 0)
                        return r;
                if (ctl->output == CTL_OUTPUT_JSON)
                        return finish_output(print_json_strings("operator", op, "status", status, NULL));
                printf("Operator %s %s\n", op, status);
                return finish_output(ctl_output_error());
        }

        if (strcmp(sub, "queues") == 0)
                return operator_queues(ctl, cmd, op, argc - idx - 2, argv + idx + 2);

        return ctl_usage_error(ctl, cmd, "unknown subcommand '%s': expected add, rm, status or queues", sub);
}
