/* SPDX-License-Identifier: MIT */
/*
 * bench/echo-server: the floor under routerd's TCP throughput.
 *
 * It speaks the router's wire (DESIGN.md "TCP wire") without routing: every
 * request line is parsed with json-c as routerd parses it, and answered
 * with one JSON line of the same shape and about the same size as
 * routerd's reply (a call "rings" an operator, answer/hangup succeed), so
 * that bench/router-load drives it exactly like routerd. The gap between
 * the two is what routing, bookkeeping, events and persistence cost.
 *
 * One thread, non-blocking sockets, level-triggered epoll, as routerd: no
 * cheating with threads or batching routerd could not do.
 *
 * Usage: echo-server [--listen HOST:PORT] [--ready-file PATH]
 * --listen defaults to 127.0.0.1:0 (any free port); the chosen port is
 * printed on stdout ("listening on 127.0.0.1:PORT") and, with --ready-file,
 * written to PATH, so that a script can wait for it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#define LINE_MAX_BYTES (64 * 1024)
#define READ_CHUNK 65536

typedef struct Conn {
        int fd;
        char *in;
        size_t in_len, in_alloc;
        char *out;
        size_t out_len, out_off, out_alloc;
        bool want_out;
        unsigned long n_op;     /* picks the operator a call "rings" */
} Conn;

static int epfd = -1;
static volatile sig_atomic_t stop;

static void on_term(int sig) {
        (void) sig;
        stop = 1;
}

static int out_reserve(Conn *c, size_t n) {
        if (c->out_off > 0 && c->out_off == c->out_len)
                c->out_off = c->out_len = 0;
        if (c->out_len + n <= c->out_alloc)
                return 0;
        size_t a = c->out_alloc ? c->out_alloc : 65536;
        while (a < c->out_len + n)
                a *= 2;
        char *p = realloc(c->out, a);
        if (!p)
                return -ENOMEM;
        c->out = p;
        c->out_alloc = a;
        return 0;
}

/*
 * Append the reply to one request. json-c serializes the reply as routerd
 * does (wire_format_reply() builds a json_object), so both pay the same
 * formatting cost, and ids with quotes come back escaped.
 */
static int reply(Conn *c, const char *line, size_t len) {
        struct json_object *req = NULL, *rep = NULL, *msgs, *v;
        struct json_tokener *tok;
        const char *cmd = NULL, *id = NULL, *s;
        char m1[160], m2[160];
        size_t n;
        int r = 0;

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        req = json_tokener_parse_ex(tok, line, (int) len);
        json_tokener_free(tok);

        rep = json_object_new_object();
        msgs = json_object_new_array();
        if (!rep || !msgs) {
                json_object_put(req);
                json_object_put(rep);
                json_object_put(msgs);
                return -ENOMEM;
        }
        if (req && json_object_is_type(req, json_type_object)) {
                if (json_object_object_get_ex(req, "command", &v) && json_object_is_type(v, json_type_string))
                        cmd = json_object_get_string(v);
                if (json_object_object_get_ex(req, "id", &v) && json_object_is_type(v, json_type_string))
                        id = json_object_get_string(v);
        }

        m1[0] = m2[0] = '\0';
        if (cmd && id && strcmp(cmd, "call") == 0) {
                snprintf(m1, sizeof m1, "Call %s received", id);
                snprintf(m2, sizeof m2, "Call %s ringing for operator E%lu", id, c->n_op++ % 1000);
        } else if (cmd && id && strcmp(cmd, "answer") == 0)
                snprintf(m1, sizeof m1, "Call %s answered by operator %s", id, id);
        else if (cmd && id && strcmp(cmd, "reject") == 0)
                snprintf(m1, sizeof m1, "Call %s rejected by operator %s", id, id);
        else if (cmd && id && strcmp(cmd, "hangup") == 0)
                snprintf(m1, sizeof m1, "Call %s finished and operator E%lu available", id, c->n_op % 1000);
        else if (cmd && strcmp(cmd, "status") == 0)
                snprintf(m1, sizeof m1, "0 calls waiting, 0 operators available");

        if (m1[0]) {
                json_object_object_add(rep, "ok", json_object_new_boolean(1));
                json_object_array_add(msgs, json_object_new_string(m1));
                if (m2[0])
                        json_object_array_add(msgs, json_object_new_string(m2));
        } else {
                json_object_object_add(rep, "ok", json_object_new_boolean(0));
                json_object_object_add(rep, "error", json_object_new_string("unknown_command"));
                json_object_array_add(msgs, json_object_new_string("Unknown command"));
        }
        json_object_object_add(rep, "messages", msgs);

        s = json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        n = strlen(s);
        if (out_reserve(c, n + 1) < 0)
                r = -ENOMEM;
        else {
                memcpy(c->out + c->out_len, s, n);
                c->out[c->out_len + n] = '\n';
                c->out_len += n + 1;
        }
        json_object_put(rep);
        json_object_put(req);
        return r;
}

static void conn_free(Conn *c) {
        (void) epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        free(c->in);
        free(c->out);
        free(c);
}

static int conn_update(Conn *c) {
        bool want = c->out_off < c->out_len;
        struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c };

        if (want == c->want_out)
                return 0;
        c->want_out = want;
        return epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
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

/* Read what is there, answer every complete line, write what we can. */
static int conn_read(Conn *c) {
        size_t start = 0;
        ssize_t n;

        if (c->in_alloc - c->in_len < READ_CHUNK) {
                size_t a = c->in_alloc ? c->in_alloc * 2 : 2 * READ_CHUNK;
                char *p = realloc(c->in, a);
                if (!p)
                        return -ENOMEM;
                c->in = p;
                c->in_alloc = a;
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
                if (reply(c, c->in + start, (size_t) (nl - c->in - start)) < 0)
                        return -ENOMEM;
                start = (size_t) (nl - c->in) + 1;
        }
        memmove(c->in, c->in + start, c->in_len - start);
        c->in_len -= start;
        if (c->in_len > LINE_MAX_BYTES)
                return -E2BIG;
        return conn_flush(c);
}

static int parse_listen(const char *s, struct sockaddr_in *sa) {
        char host[64];
        const char *colon = strrchr(s, ':');

        if (!colon || (size_t) (colon - s) >= sizeof host)
                return -EINVAL;
        memcpy(host, s, (size_t) (colon - s));
        host[colon - s] = '\0';
        *sa = (struct sockaddr_in) { .sin_family = AF_INET, .sin_port = htons((uint16_t) atoi(colon + 1)) };
        return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -EINVAL;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "listen", required_argument, NULL, 'l' },
                { "ready-file", required_argument, NULL, 'r' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *listen_addr = "127.0.0.1:0", *ready = NULL;
        struct sockaddr_in sa;
        socklen_t salen = sizeof sa;
        int lfd, one = 1, c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'l': listen_addr = optarg; break;
                case 'r': ready = optarg; break;
                case 'h':
                        printf("Usage: %s [--listen HOST:PORT] [--ready-file PATH]\n", argv[0]);
                        return 0;
                default:
                        return 2;
                }
        if (parse_listen(listen_addr, &sa) < 0) {
                fprintf(stderr, "echo-server: invalid --listen '%s' (IPv4 HOST:PORT)\n", listen_addr);
                return 2;
        }

        signal(SIGPIPE, SIG_IGN);
        signal(SIGTERM, on_term);
        signal(SIGINT, on_term);

        lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            bind(lfd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(lfd, 512) < 0 ||
            getsockname(lfd, (struct sockaddr *) &sa, &salen) < 0) {
                fprintf(stderr, "echo-server: cannot listen on %s: %m\n", listen_addr);
                return 1;
        }
        epfd = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
        if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0) {
                fprintf(stderr, "echo-server: epoll: %m\n");
                return 1;
        }

        char addr[64];
        snprintf(addr, sizeof addr, "%s:%u", inet_ntoa(sa.sin_addr), ntohs(sa.sin_port));
        printf("listening on %s\n", addr);
        fflush(stdout);
        if (ready) {
                FILE *f = fopen(ready, "we");
                if (!f || fprintf(f, "%s\n", addr) < 0 || fclose(f) != 0) {
                        fprintf(stderr, "echo-server: cannot write %s: %m\n", ready);
                        return 1;
                }
        }

        while (!stop) {
                struct epoll_event evs[64];
                int n = epoll_wait(epfd, evs, 64, 1000);

                if (n < 0 && errno != EINTR) {
                        fprintf(stderr, "echo-server: epoll_wait: %m\n");
                        return 1;
                }
                for (int i = 0; i < n; i++) {
                        Conn *conn = evs[i].data.ptr;

                        if (!conn) {
                                int fd;
                                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                                        Conn *nc = calloc(1, sizeof *nc);
                                        struct epoll_event ev = { .events = EPOLLIN };
                                        if (!nc) {
                                                close(fd);
                                                continue;
                                        }
                                        nc->fd = fd;
                                        ev.data.ptr = nc;
                                        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                                        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                                                close(fd);
                                                free(nc);
                                        }
                                }
                                continue;
                        }
                        int r = 0;
                        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                                r = conn_read(conn);
                        if (r >= 0 && (evs[i].events & EPOLLOUT))
                                r = conn_flush(conn);
                        if (r >= 0)
                                r = conn_update(conn);
                        if (r < 0)
                                conn_free(conn);
                }
        }
        return 0;
}
