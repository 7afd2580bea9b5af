/* SPDX-License-Identifier: MIT */
/*
 * bench/router-load: load generator for callcenter-routerd (and for
 * bench/echo-server, which answers the same wire).
 *
 *   router-load wire --connect HOST:PORT -c CONNS -p INFLIGHT -d SECONDS [--prefix P]
 *       CONNS connections, each with INFLIGHT independent "callers" whose
 *       requests are pipelined on it. A caller repeats what a call centre
 *       does to a router: call N; if it rings operator X, answer X (three
 *       calls in four; the fourth caller gives up while it rings); hangup N.
 *       Every call ends, so the router's state does not grow however long
 *       the run: the figure is a steady-state rate. Prints one line of
 *       key=value figures: commands per second, latency percentiles,
 *       errors (ok:false replies) and notices (unsolicited lines).
 *
 *   router-load fill --connect HOST:PORT -n COUNT [--answer] [--prefix P]
 *       Place COUNT calls (P0..) on one connection, 256 in flight; with
 *       --answer, answer each call that rings. Used to build a large state
 *       (busy operators, a long queue) before a measurement.
 *
 *   router-load dbus [--user] -p INFLIGHT -d SECONDS [--prefix P]
 *       The same with D-Bus method calls (asynchronous sd-bus, INFLIGHT
 *       calls outstanding): PlaceCall then Hangup, pairs.
 *
 *   router-load add-operators [--user] -n COUNT [--prefix P] [-p INFLIGHT]
 *       AddOperator P0..P(COUNT-1) over D-Bus.
 *
 *   router-load signals [--user] -d SECONDS [--pace-to NAME]
 *       The bus's own ceiling for a router that keeps DESIGN.md's contract:
 *       no router, only the three broadcast signals routerd sends per wire
 *       command (CallStateChanged, OperatorStateChanged and the operator's
 *       PropertiesChanged, with routerd's paths and argument shapes), sent
 *       as fast as the bus daemon takes them. A Ping to the bus after every
 *       256 signals paces the sender to the daemon (it answers once it has
 *       read everything before). Prints signals and "commands" (signals / 3)
 *       per second: no contract-keeping router can do more commands per
 *       second through this bus. With --pace-to, the Ping goes to that bus
 *       client instead (a reader of the signals, whose sd-bus answers Ping
 *       once it has taken every signal before it): the rate at which the
 *       bus and one client take them.
 *
 *   router-load subscriber [--user] [--no-subscribe]
 *       One bus client as DESIGN.md's Router1 subscriber: a match on
 *       routerd's paths, then Subscribe(), then it reads every signal that
 *       arrives until SIGTERM, then Unsubscribe(). Prints
 *       "mode=subscriber subscribed=yes" once Subscribe has been answered,
 *       and at the end a line with the signals read (CallStateChanged,
 *       OperatorStateChanged, PropertiesChanged) and their rate between the
 *       first and the last (sps). When routerd refuses Subscribe
 *       (org.freedesktop.DBus.Error.UnknownMethod: a routerd without it) it
 *       prints "mode=subscriber subscribed=no error=NAME" and exits with 3.
 *       With --no-subscribe it only reads ("subscribed=skipped"): the reader
 *       of `signals --pace-to` (its unique name is on the first line, name=),
 *       for the bus's ceiling when one client takes them.
 *
 *   router-load sink --bind ENDPOINT
 *       Stand in for the events hub: a ZeroMQ SUB socket bound where routerd's
 *       publisher connects ([events] publish), subscribed to everything,
 *       discarding what arrives until SIGTERM. Without a hub routerd would
 *       keep up to [events] buffer events in memory, which is not the state
 *       of a running system and would swell its RSS.
 *
 * The numbers are printed, never judged: bench/router.sh compares them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <zmq.h>

#define ROUTER_PATH "/org/callcenter/Router1"
#define ROUTER_IFACE "org.callcenter.Router1"
#define ROUTER_NAME "org.callcenter.Router1"

typedef struct Options {
        const char *connect;
        const char *prefix;
        const char *pace_to;
        unsigned conns, inflight;
        double seconds;
        unsigned long count;
        bool answer;
        bool user;
        bool no_subscribe;
} Options;

static uint64_t now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* ---- latency histogram: 1 µs .. ~17 s in 1/8-octave buckets ------------ */
#define HIST_N (8 * 25)
typedef struct Hist {
        uint64_t b[HIST_N];
        uint64_t n;
        double sum;
} Hist;

static void hist_add(Hist *h, uint64_t us) {
        double l = us < 1 ? 0 : log2((double) us) * 8;
        unsigned i = l >= HIST_N ? HIST_N - 1 : (unsigned) l;
        h->b[i]++;
        h->n++;
        h->sum += (double) us;
}

static double hist_pct(const Hist *h, double p) {
        uint64_t want = (uint64_t) ceil(p * (double) h->n), seen = 0;
        for (unsigned i = 0; i < HIST_N; i++) {
                seen += h->b[i];
                if (seen >= want && h->b[i])
                        return exp2((i + 0.5) / 8);
        }
        return 0;
}

/* ---- TCP wire ---------------------------------------------------------------- */

enum { PH_CALL, PH_ANSWER, PH_HANGUP };

typedef struct Caller {
        unsigned long seq;
        int phase;
        char id[48];
} Caller;

typedef struct Pending {
        unsigned caller;
        uint64_t sent;
} Pending;

typedef struct Conn {
        int fd;
        unsigned index;
        Caller *callers;
        Pending *fifo;          /* outstanding requests, in send order */
        unsigned head, n_pending, cap;
        char *out;
        size_t out_len, out_off, out_alloc;
        char *in;
        size_t in_len, in_alloc;
        bool want_out;
} Conn;

typedef struct Run {
        const Options *o;
        int ep;
        bool stopping;          /* no new calls: let every caller finish its call */
        bool measuring;
        bool fill;              /* fill: calls stay (no hangup), ids prefix0.. */
        uint64_t replies, errors, notices, queued, rang;
        uint64_t total;         /* every reply, warm-up and drain included */
        unsigned long placed;   /* fill: calls sent so far */
        Hist hist;
} Run;

static int tcp_connect(const char *addr) {
        char host[256];
        const char *colon = strrchr(addr, ':');
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
        int fd, one = 1;

        if (!colon || (size_t) (colon - addr) >= sizeof host)
                return -EINVAL;
        memcpy(host, addr, (size_t) (colon - addr));
        host[colon - addr] = '\0';
        if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
                return -EHOSTUNREACH;
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                int e = -errno;
                freeaddrinfo(ai);
                if (fd >= 0)
                        close(fd);
                return e;
        }
        freeaddrinfo(ai);
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return fd;
}

static void out_append(Conn *c, const char *s, size_t n) {
        if (c->out_off == c->out_len)
                c->out_off = c->out_len = 0;
        if (c->out_len + n > c->out_alloc) {
                size_t a = c->out_alloc ? c->out_alloc * 2 : 65536;
                while (a < c->out_len + n)
                        a *= 2;
                c->out = realloc(c->out, a);
                if (!c->out) {
                        fputs("router-load: out of memory\n", stderr);
                        exit(1);
                }
                c->out_alloc = a;
        }
        memcpy(c->out + c->out_len, s, n);
        c->out_len += n;
}

static void send_request(Conn *c, unsigned caller, const char *cmd, const char *id) {
        char line[160];
        int n = snprintf(line, sizeof line, "{\"command\":\"%s\",\"id\":\"%s\"}\n", cmd, id);

        out_append(c, line, (size_t) n);
        c->fifo[(c->head + c->n_pending) % c->cap] = (Pending) { .caller = caller, .sent = now_us() };
        c->n_pending++;
}

static void caller_next_call(Run *run, Conn *c, unsigned i) {
        Caller *k = &c->callers[i];

        if (run->fill) {
                if (run->placed >= run->o->count)
                        return;
                snprintf(k->id, sizeof k->id, "%s%lu", run->o->prefix, run->placed++);
        } else
                snprintf(k->id, sizeof k->id, "%sc%us%un%lu", run->o->prefix, c->index, i, k->seq++);
        k->phase = PH_CALL;
        send_request(c, i, "call", k->id);
}

/*
 * The operator a call reply says it rings ("... ringing for operator X"),
 * copied into op; false when the call waits in the queue. Plain string
 * scanning, not a JSON parser: the generator must stay cheaper than the
 * server it measures (they share the machine).
 */
static bool reply_ringing_operator(const char *line, size_t len, char *op, size_t size) {
        static const char key[] = "ringing for operator ";
        const char *p = memmem(line, len, key, sizeof key - 1), *e;

        if (!p)
                return false;
        p += sizeof key - 1;
        e = memchr(p, '"', (size_t) (line + len - p));
        if (!e || (size_t) (e - p) >= size || e == p)
                return false;
        memcpy(op, p, (size_t) (e - p));
        op[e - p] = '\0';
        return true;
}

/*
 * A reply's "ok" member: 1 when true, 0 when false, -1 when the line has none
 * (a notice). Any JSON spacing around the colon: routerd and the echo server
 * write "ok":true, Python's json.dumps (the Twisted baseline) "ok": true.
 */
static int reply_ok(const char *line, size_t len) {
        const char *p = memmem(line, len, "\"ok\"", 4), *e = line + len;

        if (!p)
                return -1;
        for (p += 4; p < e && (*p == ' ' || *p == '\t'); p++)
                ;
        if (p == e || *p != ':')
                return -1;
        for (p++; p < e && (*p == ' ' || *p == '\t'); p++)
                ;
        return e - p >= 4 && memcmp(p, "true", 4) == 0;
}

static void handle_line(Run *run, Conn *c, const char *line, size_t len) {
        char op[80];
        int r = reply_ok(line, len);

        /* Replies have "ok"; a notice (another caller's ring moved on after
         * a hangup freed an operator) is not ours to match. */
        if (r < 0) {
                run->notices++;
                return;
        }
        if (c->n_pending == 0) {
                fputs("router-load: reply without request\n", stderr);
                exit(1);
        }
        Pending p = c->fifo[c->head];
        c->head = (c->head + 1) % c->cap;
        c->n_pending--;

        bool ok = r > 0;
        run->total++;
        if (run->measuring) {
                run->replies++;
                hist_add(&run->hist, now_us() - p.sent);
        }
        if (!ok)
                run->errors++;

        Caller *k = &c->callers[p.caller];
        switch (k->phase) {
        case PH_CALL:
                if (ok && reply_ringing_operator(line, len, op, sizeof op)) {
                        run->rang++;
                        if (run->fill ? run->o->answer : k->seq % 4 != 0) {
                                k->phase = PH_ANSWER;
                                send_request(c, p.caller, "answer", op);
                                return;
                        }
                } else if (ok)
                        run->queued++;
                if (!ok || run->fill) {
                        /* Refused outright (an id in use): nothing to hang up. */
                        if (!run->stopping)
                                caller_next_call(run, c, p.caller);
                        return;
                }
                k->phase = PH_HANGUP;
                send_request(c, p.caller, "hangup", k->id);
                return;
        case PH_ANSWER:
                if (run->fill) {
                        caller_next_call(run, c, p.caller);
                        return;
                }
                k->phase = PH_HANGUP;
                send_request(c, p.caller, "hangup", k->id);
                return;
        default:
                if (!run->stopping)
                        caller_next_call(run, c, p.caller);
                return;
        }
}

static void conn_watch(Run *run, Conn *c) {
        bool want = c->out_off < c->out_len;
        struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c };

        if (want != c->want_out) {
                c->want_out = want;
                (void) epoll_ctl(run->ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
}

static int conn_flush(Conn *c) {
        while (c->out_off < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
                if (n < 0)
                        return errno == EAGAIN ? 0 : -errno;
                c->out_off += (size_t) n;
        }
        return 0;
}

static int conn_read(Run *run, Conn *c) {
        size_t start = 0;
        ssize_t n;

        if (c->in_alloc - c->in_len < 32768) {
                c->in_alloc = c->in_alloc ? c->in_alloc * 2 : 131072;
                c->in = realloc(c->in, c->in_alloc);
                if (!c->in)
                        return -ENOMEM;
        }
        n = read(c->fd, c->in + c->in_len, c->in_alloc - c->in_len);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        if (n == 0)
                return -ECONNRESET;
        c->in_len += (size_t) n;
        for (;;) {
                char *nl = memchr(c->in + start, '\n', c->in_len - start);
                if (!nl)
                        break;
                handle_line(run, c, c->in + start, (size_t) (nl - c->in - start));
                start = (size_t) (nl - c->in) + 1;
        }
        memmove(c->in, c->in + start, c->in_len - start);
        c->in_len -= start;
        return 0;
}

/* Run the loop until fn says stop; a failed connection ends the program. */
static void loop(Run *run, Conn *conns, unsigned n, bool (*done)(Run *, Conn *, unsigned, uint64_t),
                 uint64_t deadline) {
        for (;;) {
                struct epoll_event evs[64];
                int k;

                if (done(run, conns, n, deadline))
                        return;
                k = epoll_wait(run->ep, evs, 64, 100);
                for (int i = 0; i < k; i++) {
                        Conn *c = evs[i].data.ptr;
                        int r = 0;

                        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                                r = conn_read(run, c);
                        if (r >= 0)
                                r = conn_flush(c);
                        if (r < 0) {
                                fprintf(stderr, "router-load: connection %u: %s\n", c->index, strerror(-r));
                                exit(1);
                        }
                        conn_watch(run, c);
                }
        }
}

static Conn *conns_open(Run *run, unsigned n, unsigned inflight) {
        Conn *conns = calloc(n, sizeof *conns);

        if (!conns)
                exit(1);
        for (unsigned i = 0; i < n; i++) {
                Conn *c = &conns[i];
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

                c->fd = tcp_connect(run->o->connect);
                if (c->fd < 0) {
                        fprintf(stderr, "router-load: cannot connect to %s: %s\n", run->o->connect, strerror(-c->fd));
                        exit(1);
                }
                c->index = i;
                c->cap = inflight + 1;
                c->callers = calloc(inflight, sizeof *c->callers);
                c->fifo = calloc(c->cap, sizeof *c->fifo);
                if (!c->callers || !c->fifo || epoll_ctl(run->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
                        exit(1);
        }
        return conns;
}

static void conns_start_io(Run *run, Conn *conns, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                (void) conn_flush(&conns[i]);
                conn_watch(run, &conns[i]);
        }
}

static bool idle(Conn *conns, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                if (conns[i].n_pending > 0)
                        return false;
        return true;
}

static bool wire_done(Run *run, Conn *conns, unsigned n, uint64_t deadline) {
        if (!run->stopping && now_us() >= deadline) {
                run->stopping = true;
                run->measuring = false;
        }
        return run->stopping && idle(conns, n);
}

static bool deadline_done(Run *run, Conn *conns, unsigned n, uint64_t deadline) {
        return now_us() >= deadline;
}

static bool idle_done(Run *run, Conn *conns, unsigned n, uint64_t deadline) {
        return idle(conns, n);
}

static void print_figures(const Run *run, const char *mode, unsigned conns, unsigned inflight, uint64_t t0, uint64_t t1) {
        double secs = (double) (t1 - t0) / 1e6;

        printf("mode=%s conns=%u inflight=%u seconds=%.2f commands=%" PRIu64 " cps=%.0f p50_us=%.0f p99_us=%.0f "
               "mean_us=%.1f errors=%" PRIu64 " notices=%" PRIu64 " rang=%" PRIu64 " queued=%" PRIu64 " total=%" PRIu64 "\n",
               mode, conns, inflight, secs, run->replies, (double) run->replies / secs, hist_pct(&run->hist, 0.50),
               hist_pct(&run->hist, 0.99), run->hist.n ? run->hist.sum / (double) run->hist.n : 0.0, run->errors,
               run->notices, run->rang, run->queued, run->total);
}

static int cmd_wire(const Options *o) {
        Run run = { .o = o };
        Conn *conns;
        uint64_t t0, t1;

        run.ep = epoll_create1(EPOLL_CLOEXEC);
        conns = conns_open(&run, o->conns, o->inflight);
        for (unsigned i = 0; i < o->conns; i++)
                for (unsigned j = 0; j < o->inflight; j++)
                        caller_next_call(&run, &conns[i], j);
        conns_start_io(&run, conns, o->conns);

        /* A warm-up (connections, allocator, caches) that is not counted. */
        loop(&run, conns, o->conns, deadline_done, now_us() + (o->seconds >= 2 ? 500000 : 100000));
        run.measuring = true;
        t0 = now_us();
        loop(&run, conns, o->conns, wire_done, t0 + (uint64_t) (o->seconds * 1e6));
        t1 = now_us();
        /* wire_done() stopped counting at the deadline; the drain after it
         * (every caller hangs up its call) is not in the figure. */
        print_figures(&run, "wire", o->conns, o->inflight, t0, t1);
        return run.errors > run.replies / 100 ? 1 : 0;
}

static int cmd_fill(const Options *o) {
        Run run = { .o = o, .fill = true, .measuring = true };
        unsigned inflight = 256;
        Conn *c;
        uint64_t t0;

        run.ep = epoll_create1(EPOLL_CLOEXEC);
        c = conns_open(&run, 1, inflight);
        for (unsigned j = 0; j < inflight; j++)
                caller_next_call(&run, c, j);
        conns_start_io(&run, c, 1);
        t0 = now_us();
        loop(&run, c, 1, idle_done, 0);
        print_figures(&run, "fill", 1, inflight, t0, now_us());
        return run.errors > 0 ? 1 : 0;
}

/* ---- D-Bus --------------------------------------------------------------------- */

typedef struct BusRun {
        const Options *o;
        sd_bus *bus;
        bool stopping, measuring;
        unsigned long next;     /* next call/operator number */
        uint64_t replies, errors;
        unsigned outstanding;
        Hist hist;
} BusRun;

typedef struct BusSlot {
        BusRun *run;
        char id[48];
        uint64_t sent;
        bool hangup;
} BusSlot;

static void bus_slot_send(BusSlot *s);

static int on_bus_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        BusSlot *s = userdata;
        BusRun *run = s->run;

        run->outstanding--;
        if (run->measuring) {
                run->replies++;
                hist_add(&run->hist, now_us() - s->sent);
        }
        if (sd_bus_message_is_method_error(m, NULL)) {
                run->errors++;
                if (run->errors <= 3)
                        fprintf(stderr, "router-load: %s\n", sd_bus_message_get_error(m)->message);
                if (!s->hangup) {
                        /* PlaceCall refused: no call to hang up. */
                        if (!run->stopping)
                                bus_slot_send(s);
                        return 0;
                }
        }
        if (!s->hangup) {
                s->hangup = true;
                bus_slot_send(s);
        } else if (!run->stopping) {
                s->hangup = false;
                bus_slot_send(s);
        }
        return 0;
}

static void bus_slot_send(BusSlot *s) {
        BusRun *run = s->run;
        int r;

        if (!s->hangup)
                snprintf(s->id, sizeof s->id, "%s%lu", run->o->prefix, run->next++);
        s->sent = now_us();
        r = sd_bus_call_method_async(run->bus, NULL, ROUTER_NAME, ROUTER_PATH, ROUTER_IFACE,
                                     s->hangup ? "Hangup" : "PlaceCall", on_bus_reply, s, "s", s->id);
        if (r < 0) {
                fprintf(stderr, "router-load: cannot send a D-Bus call: %s\n", strerror(-r));
                exit(1);
        }
        run->outstanding++;
}

static int bus_run_until(BusRun *run, uint64_t deadline) {
        for (;;) {
                int r;

                if (deadline && now_us() >= deadline)
                        return 0;
                if (!deadline && run->outstanding == 0)
                        return 0;
                r = sd_bus_process(run->bus, NULL);
                if (r < 0) {
                        fprintf(stderr, "router-load: bus: %s\n", strerror(-r));
                        exit(1);
                }
                if (r == 0)
                        (void) sd_bus_wait(run->bus, 100000);
        }
}

static sd_bus *bus_open(const Options *o) {
        sd_bus *bus = NULL;
        int r = o->user ? sd_bus_open_user(&bus) : sd_bus_open_system(&bus);

        if (r < 0) {
                fprintf(stderr, "router-load: cannot connect to the %s bus: %s\n", o->user ? "session" : "system",
                        strerror(-r));
                exit(1);
        }
        return bus;
}

static int cmd_dbus(const Options *o) {
        BusRun run = { .o = o, .bus = bus_open(o) };
        BusSlot *slots = calloc(o->inflight, sizeof *slots);
        uint64_t t0, t1;

        if (!slots)
                return 1;
        for (unsigned i = 0; i < o->inflight; i++) {
                slots[i].run = &run;
                bus_slot_send(&slots[i]);
        }
        bus_run_until(&run, now_us() + (o->seconds >= 2 ? 500000 : 100000));
        run.measuring = true;
        t0 = now_us();
        bus_run_until(&run, t0 + (uint64_t) (o->seconds * 1e6));
        t1 = now_us();
        run.measuring = false;
        run.stopping = true;
        bus_run_until(&run, 0);

        double secs = (double) (t1 - t0) / 1e6;
        printf("mode=dbus inflight=%u seconds=%.2f commands=%" PRIu64 " cps=%.0f p50_us=%.0f p99_us=%.0f errors=%" PRIu64 "\n",
               o->inflight, secs, run.replies, (double) run.replies / secs, hist_pct(&run.hist, 0.50),
               hist_pct(&run.hist, 0.99), run.errors);
        sd_bus_flush_close_unref(run.bus);
        free(slots);
        return run.errors > 0 ? 1 : 0;
}

/* add-operators: AddOperator for PREFIX0..PREFIX(COUNT-1), INFLIGHT at a time. */
typedef struct AddSlot {
        BusRun *run;
        char id[48];
} AddSlot;

static void add_send(AddSlot *s);

static int on_add_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        AddSlot *s = userdata;

        s->run->outstanding--;
        s->run->replies++;
        if (sd_bus_message_is_method_error(m, NULL)) {
                if (s->run->errors++ < 3)
                        fprintf(stderr, "router-load: AddOperator %s: %s\n", s->id, sd_bus_message_get_error(m)->message);
        }
        if (s->run->next < s->run->o->count)
                add_send(s);
        return 0;
}

static void add_send(AddSlot *s) {
        int r;

        snprintf(s->id, sizeof s->id, "%s%lu", s->run->o->prefix, s->run->next++);
        r = sd_bus_call_method_async(s->run->bus, NULL, ROUTER_NAME, ROUTER_PATH, ROUTER_IFACE, "AddOperator",
                                     on_add_reply, s, "s", s->id);
        if (r < 0) {
                fprintf(stderr, "router-load: cannot send a D-Bus call: %s\n", strerror(-r));
                exit(1);
        }
        s->run->outstanding++;
}

static int cmd_add_operators(const Options *o) {
        BusRun run = { .o = o, .bus = bus_open(o) };
        AddSlot *slots = calloc(o->inflight, sizeof *slots);
        uint64_t t0 = now_us();

        if (!slots)
                return 1;
        for (unsigned i = 0; i < o->inflight && run.next < o->count; i++) {
                slots[i].run = &run;
                add_send(&slots[i]);
        }
        bus_run_until(&run, 0);
        printf("mode=add-operators count=%lu seconds=%.2f errors=%" PRIu64 "\n", o->count,
               (double) (now_us() - t0) / 1e6, run.errors);
        sd_bus_flush_close_unref(run.bus);
        free(slots);
        return run.errors > 0 ? 1 : 0;
}

/* signals: see the top of the file. */
static int emit_command_signals(sd_bus *bus, unsigned k) {
        static const char *const states[] = { "ringing", "answered", "finished" };
        static const char *const op_states[] = { "ringing", "busy", "available" };
        sd_bus_message *pc = NULL;
        char call[32], path[96];
        int r;

        snprintf(call, sizeof call, "bus%u", k / 3);
        snprintf(path, sizeof path, ROUTER_PATH "/operator/op%u", k % 1000);
        switch (k % 3) {
        case 0:
                return sd_bus_emit_signal(bus, ROUTER_PATH, ROUTER_IFACE, "CallStateChanged", "sss", call,
                                          states[k / 3 % 3], "op1");
        case 1:
                return sd_bus_emit_signal(bus, ROUTER_PATH, ROUTER_IFACE, "OperatorStateChanged", "sss", "op1",
                                          op_states[k / 3 % 3], call);
        default:
                r = sd_bus_message_new_signal(bus, &pc, path, "org.freedesktop.DBus.Properties", "PropertiesChanged");
                if (r >= 0)
                        r = sd_bus_message_append(pc, "sa{sv}as", ROUTER_IFACE ".Operator", 3, "State", "s",
                                                  op_states[k / 3 % 3], "Call", "s", call, "Status", "s", "available",
                                                  0);
                if (r >= 0)
                        r = sd_bus_send(bus, pc, NULL);
                sd_bus_message_unref(pc);
                return r;
        }
}

static int on_ping_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        (*(unsigned *) userdata)--;
        return 0;
}

static int cmd_signals(const Options *o) {
        sd_bus *bus = bus_open(o);
        uint64_t t0 = now_us(), end = t0 + (uint64_t) (o->seconds * 1e6), n = 0, t1;
        unsigned pings = 0;
        int r;

        do {
                for (unsigned i = 0; i < 256; i++, n++) {
                        r = emit_command_signals(bus, (unsigned) n);
                        if (r < 0) {
                                fprintf(stderr, "router-load: cannot send a signal: %s\n", strerror(-r));
                                return 1;
                        }
                }
                /* Two batches in flight: the daemon reads one while the
                 * next is built. */
                r = sd_bus_call_method_async(bus, NULL, o->pace_to ? o->pace_to : "org.freedesktop.DBus",
                                             "/org/freedesktop/DBus", "org.freedesktop.DBus.Peer", "Ping",
                                             on_ping_reply, &pings, NULL);
                if (r < 0) {
                        fprintf(stderr, "router-load: Ping failed: %s\n", strerror(-r));
                        return 1;
                }
                pings++;
                while (pings > 1) {
                        r = sd_bus_process(bus, NULL);
                        if (r == 0)
                                r = sd_bus_wait(bus, UINT64_MAX);
                        if (r < 0) {
                                fprintf(stderr, "router-load: bus: %s\n", strerror(-r));
                                return 1;
                        }
                }
                t1 = now_us();
        } while (t1 < end);
        while (pings > 0)
                if (sd_bus_process(bus, NULL) == 0 && sd_bus_wait(bus, UINT64_MAX) < 0)
                        break;
        t1 = now_us();
        printf("mode=signals seconds=%.2f signals=%" PRIu64 " sps=%.0f cps=%.0f\n", (double) (t1 - t0) / 1e6, n,
               (double) n * 1e6 / (double) (t1 - t0), (double) n / 3 * 1e6 / (double) (t1 - t0));
        sd_bus_flush_close_unref(bus);
        return 0;
}

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
        (void) sig;
        stop_requested = 1;
}

static int cmd_sink(const char *endpoint) {
        void *ctx = zmq_ctx_new(), *sub;
        uint64_t n = 0;
        int timeout = 200;
        char buf[8192];

        sub = ctx ? zmq_socket(ctx, ZMQ_SUB) : NULL;
        if (!sub || zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0) < 0 ||
            zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout, sizeof timeout) < 0 || zmq_bind(sub, endpoint) < 0) {
                fprintf(stderr, "router-load: cannot bind %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
                return 1;
        }
        signal(SIGTERM, on_stop_signal);
        signal(SIGINT, on_stop_signal);
        while (!stop_requested)
                if (zmq_recv(sub, buf, sizeof buf, 0) >= 0)
                        n++;
        printf("mode=sink frames=%" PRIu64 "\n", n);
        int linger = 0;
        zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(sub);
        zmq_ctx_term(ctx);
        return 0;
}

/* subscriber: see the top of the file. */
typedef struct SubRun {
        uint64_t signals, call_state, operator_state, properties;
        uint64_t first_us, last_us;
} SubRun;

static int on_router_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SubRun *s = userdata;
        const char *member = sd_bus_message_get_member(m);

        s->last_us = now_us();
        if (s->signals++ == 0)
                s->first_us = s->last_us;
        if (!member)
                return 0;
        if (strcmp(member, "CallStateChanged") == 0)
                s->call_state++;
        else if (strcmp(member, "OperatorStateChanged") == 0)
                s->operator_state++;
        else if (strcmp(member, "PropertiesChanged") == 0)
                s->properties++;
        return 0;
}

static int cmd_subscriber(const Options *o) {
        sd_bus *bus = bus_open(o);
        sd_bus_error error = SD_BUS_ERROR_NULL;
        SubRun s = {};
        uint64_t t0;
        int r;

        signal(SIGTERM, on_stop_signal);
        signal(SIGINT, on_stop_signal);
        /* The match first (sd_bus_add_match waits for the bus daemon's
         * answer), so that no signal sent after Subscribe is missed. */
        r = sd_bus_add_match(bus, NULL, "type='signal',path_namespace='" ROUTER_PATH "'", on_router_signal, &s);
        if (r < 0) {
                fprintf(stderr, "router-load: cannot add a match: %s\n", strerror(-r));
                return 1;
        }
        r = o->no_subscribe ? 0 : sd_bus_call_method(bus, ROUTER_NAME, ROUTER_PATH, ROUTER_IFACE, "Subscribe",
                                                     &error, NULL, NULL);
        if (r < 0) {
                printf("mode=subscriber subscribed=no error=%s\n", error.name ? error.name : "local");
                fprintf(stderr, "router-load: Subscribe: %s\n", error.message ? error.message : strerror(-r));
                sd_bus_error_free(&error);
                sd_bus_flush_close_unref(bus);
                return 3;
        }
        const char *name = NULL;
        (void) sd_bus_get_unique_name(bus, &name);
        printf("mode=subscriber subscribed=%s name=%s\n", o->no_subscribe ? "skipped" : "yes", name ? name : "?");
        fflush(stdout);
        t0 = now_us();
        while (!stop_requested) {
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        fprintf(stderr, "router-load: bus: %s\n", strerror(-r));
                        return 1;
                }
                if (r == 0)
                        (void) sd_bus_wait(bus, 200000);
        }
        /* Unsubscribe before leaving, so that once this process is gone
         * routerd has stopped sending: the next run has no subscriber. */
        r = o->no_subscribe ? 0 : sd_bus_call_method(bus, ROUTER_NAME, ROUTER_PATH, ROUTER_IFACE, "Unsubscribe",
                                                     &error, NULL, NULL);
        if (r < 0)
                fprintf(stderr, "router-load: Unsubscribe: %s\n", error.message ? error.message : strerror(-r));
        sd_bus_error_free(&error);
        double span = (double) (s.last_us - s.first_us) / 1e6;
        printf("mode=subscriber seconds=%.2f signals=%" PRIu64 " call_state=%" PRIu64 " operator_state=%" PRIu64
               " properties=%" PRIu64 " span_s=%.2f sps=%.0f unsubscribed=%s\n",
               (double) (now_us() - t0) / 1e6, s.signals, s.call_state, s.operator_state, s.properties, span,
               span > 0 ? (double) (s.signals - 1) / span : 0.0, o->no_subscribe ? "skipped" : r < 0 ? "no" : "yes");
        sd_bus_flush_close_unref(bus);
        return r < 0 ? 1 : 0;
}

static int usage(const char *prog, int code) {
        fprintf(code ? stderr : stdout,
                "Usage: %s wire --connect HOST:PORT [-c CONNS] [-p INFLIGHT] [-d SECONDS] [--prefix P]\n"
                "       %s fill --connect HOST:PORT -n COUNT [--answer] [--prefix P]\n"
                "       %s dbus [--user] [-p INFLIGHT] [-d SECONDS] [--prefix P]\n"
                "       %s add-operators [--user] -n COUNT [-p INFLIGHT] [--prefix P]\n"
                "       %s signals [--user] [-d SECONDS] [--pace-to NAME]\n"
                "       %s sink --bind ENDPOINT\n"
                "       %s subscriber [--user] [--no-subscribe]\n",
                prog, prog, prog, prog, prog, prog, prog);
        return code;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "connect", required_argument, NULL, 'C' },
                { "connections", required_argument, NULL, 'c' },
                { "inflight", required_argument, NULL, 'p' },
                { "duration", required_argument, NULL, 'd' },
                { "count", required_argument, NULL, 'n' },
                { "prefix", required_argument, NULL, 'P' },
                { "answer", no_argument, NULL, 'a' },
                { "user", no_argument, NULL, 'u' },
                { "bind", required_argument, NULL, 'B' },
                { "no-subscribe", no_argument, NULL, 'S' },
                { "pace-to", required_argument, NULL, 'T' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        Options o = { .connect = "127.0.0.1:5678", .prefix = "b", .conns = 1, .inflight = 1, .seconds = 3 };
        const char *mode, *bind_to = NULL;
        int c;

        if (argc < 2)
                return usage(argv[0], 2);
        mode = argv[1];
        if (strcmp(mode, "-h") == 0 || strcmp(mode, "--help") == 0)
                return usage(argv[0], 0);
        optind = 2;
        while ((c = getopt_long(argc, argv, "c:p:d:n:h", options, NULL)) >= 0)
                switch (c) {
                case 'C': o.connect = optarg; break;
                case 'c': o.conns = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'p': o.inflight = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'd': o.seconds = strtod(optarg, NULL); break;
                case 'n': o.count = strtoul(optarg, NULL, 10); break;
                case 'P': o.prefix = optarg; break;
                case 'a': o.answer = true; break;
                case 'u': o.user = true; break;
                case 'B': bind_to = optarg; break;
                case 'S': o.no_subscribe = true; break;
                case 'T': o.pace_to = optarg; break;
                case 'h': return usage(argv[0], 0);
                default: return usage(argv[0], 2);
                }
        if (o.conns == 0 || o.inflight == 0 || o.seconds <= 0 || optind < argc || strlen(o.prefix) > 16)
                return usage(argv[0], 2);

        signal(SIGPIPE, SIG_IGN);
        if (strcmp(mode, "wire") == 0)
                return cmd_wire(&o);
        if (strcmp(mode, "fill") == 0)
                return o.count ? cmd_fill(&o) : usage(argv[0], 2);
        if (strcmp(mode, "dbus") == 0)
                return cmd_dbus(&o);
        if (strcmp(mode, "signals") == 0)
                return cmd_signals(&o);
        if (strcmp(mode, "subscriber") == 0)
                return cmd_subscriber(&o);
        if (strcmp(mode, "sink") == 0)
                return bind_to ? cmd_sink(bind_to) : usage(argv[0], 2);
        if (strcmp(mode, "add-operators") == 0)
                return o.count ? cmd_add_operators(&o) : usage(argv[0], 2);
        return usage(argv[0], 2);
}
