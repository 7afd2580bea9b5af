/* SPDX-License-Identifier: MIT */
/*
 * event-sub: receive events through libshared's EventSubscriber and check
 * them, for the integration tests and benchmarks.
 *
 *   event-sub --endpoint=EP [--count=N] [--timeout=SEC] [--topic=PREFIX]...
 *             [--bind] [--hwm=N] [--probe=SOURCE] [--ready-file=PATH]
 *
 * Every event must be a valid envelope (eventd's checker) and, per
 * publisher (source and host), carry seq 1, 2, 3 ... with no gap, repeat or
 * reordering. Events of the --probe source (default "probe") are not
 * counted: the first one creates --ready-file, which proves that this
 * subscriber's subscription has reached the publishers (through the hub).
 *
 * It stops after --count events, at --timeout, or on SIGTERM/SIGINT, and
 * prints one line:
 *   received=N invalid=N gaps=N disorder=N elapsed=SEC rate=N sources=S:N,...
 * Exit status 0 when all is well (and --count was reached, if given), 1 if
 * not, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-event.h>
#include <zmq.h>

#include "daemons/eventd/scan.h"
#include "log.h"
#include "sub.h"
#include "time-util.h"

#define MAX_SOURCES 64

typedef struct Source {
        char name[128];         /* "source@host" */
        uint64_t last_seq;
        uint64_t count;
} Source;

static const char *arg_endpoint, *arg_probe = "probe", *arg_ready_file;
static uint64_t arg_count;
static double arg_timeout = 60;
static char **arg_topics;
static size_t arg_n_topics;
static int arg_bind;
static unsigned arg_hwm;

static Source sources[MAX_SOURCES];
static size_t n_sources;
static uint64_t received, invalid, gaps, disorder;
static usec_t first_usec, last_usec;
static int ready_written;

static int usage(const char *msg) {
        fprintf(stderr, "event-sub: %s\n", msg);
        return 2;
}

static int parse_args(int argc, char **argv) {
        static const struct option opts[] = {
                { "endpoint", required_argument, NULL, 'e' },
                { "count", required_argument, NULL, 'n' },
                { "timeout", required_argument, NULL, 't' },
                { "topic", required_argument, NULL, 'p' },
                { "bind", no_argument, NULL, 'b' },
                { "hwm", required_argument, NULL, 'h' },
                { "probe", required_argument, NULL, 'r' },
                { "ready-file", required_argument, NULL, 'f' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'e': arg_endpoint = optarg; break;
                case 'n': arg_count = strtoull(optarg, NULL, 10); break;
                case 't': arg_timeout = strtod(optarg, NULL); break;
                case 'p':
                        arg_topics = realloc(arg_topics, (arg_n_topics + 2) * sizeof(char *));
                        if (!arg_topics)
                                return usage("out of memory");
                        arg_topics[arg_n_topics++] = optarg;
                        arg_topics[arg_n_topics] = NULL;
                        break;
                case 'b': arg_bind = 1; break;
                case 'h': arg_hwm = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'r': arg_probe = optarg; break;
                case 'f': arg_ready_file = optarg; break;
                default: return usage("bad option");
                }
        if (optind < argc)
                return usage("unexpected argument");
        if (!arg_endpoint)
                return usage("--endpoint is required");
        return 0;
}

static Source *source_get(const ScanEnvelope *e) {
        char name[sizeof(sources[0].name)];
        int n;

        n = snprintf(name, sizeof(name), "%.*s@%.*s", (int) e->source_len, e->source, (int) e->host_len, e->host);
        if (n < 0)
                return NULL;
        for (size_t i = 0; i < n_sources; i++)
                if (strcmp(sources[i].name, name) == 0)
                        return &sources[i];
        if (n_sources == MAX_SOURCES)
                return NULL;
        strcpy(sources[n_sources].name, name);
        return &sources[n_sources++];
}

static int on_event(EventSubscriber *s, const char *topic, size_t topic_len, const char *body, size_t body_len,
                    void *userdata) {
        sd_event *loop = userdata;
        ScanEnvelope e;
        const char *reason = NULL;
        Source *src;

        if (scan_envelope(topic, topic_len, body, body_len, &e, &reason) < 0) {
                if (invalid++ < 5)
                        fprintf(stderr, "event-sub: invalid event: %s\n", reason);
                return 0;
        }

        if (e.source_len == strlen(arg_probe) && memcmp(e.source, arg_probe, e.source_len) == 0) {
                if (arg_ready_file && !ready_written) {
                        int fd = open(arg_ready_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                        if (fd >= 0)
                                close(fd);
                        ready_written = 1;
                }
                return 0;
        }

        last_usec = now_usec(CLOCK_MONOTONIC);
        if (received++ == 0)
                first_usec = last_usec;

        src = source_get(&e);
        if (!src) {
                invalid++;
                return 0;
        }
        if (e.seq == src->last_seq + 1)
                ;
        else if (e.seq > src->last_seq + 1) {
                if (gaps++ < 5)
                        fprintf(stderr, "event-sub: %s: gap, seq %" PRIu64 " after %" PRIu64 "\n", src->name, e.seq,
                                src->last_seq);
        } else {
                if (disorder++ < 5)
                        fprintf(stderr, "event-sub: %s: seq %" PRIu64 " after %" PRIu64 " (repeat or reorder)\n",
                                src->name, e.seq, src->last_seq);
        }
        if (e.seq > src->last_seq)
                src->last_seq = e.seq;
        src->count++;

        if (arg_count > 0 && received >= arg_count)
                (void) sd_event_exit(loop, 0);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        fprintf(stderr, "event-sub: timeout after %.1fs\n", arg_timeout);
        return sd_event_exit(sd_event_source_get_event(s), 1);
}

int main(int argc, char **argv) {
        EventSubscriberOptions options;
        EventSubscriber *s = NULL;
        sd_event *e = NULL;
        sigset_t mask;
        void *zctx;
        int r, code = 0;

        log_setup("event-sub");
        r = parse_args(argc, argv);
        if (r)
                return r;

        /* Blocked before ZeroMQ starts its thread, so that only the loop's
         * signalfd sees them. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        if (sd_event_new(&e) < 0)
                return 1;
        (void) sd_event_add_signal(e, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(e, NULL, SIGINT, NULL, NULL);
        if (arg_timeout > 0)
                (void) sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, (usec_t) (arg_timeout * USEC_PER_SEC),
                                                  USEC_PER_MSEC, on_timeout, NULL);

        zctx = zmq_ctx_new();
        options = (EventSubscriberOptions) { .hwm = arg_hwm, .bind = arg_bind };
        r = event_subscriber_new_full(&s, e, zctx, arg_endpoint, arg_topics, &options, on_event, e);
        if (r < 0) {
                fprintf(stderr, "event-sub: cannot subscribe on %s: %s\n", arg_endpoint, strerror(-r));
                return 1;
        }

        r = sd_event_loop(e);
        if (r != 0)
                code = 1;

        printf("received=%" PRIu64 " invalid=%" PRIu64 " gaps=%" PRIu64 " disorder=%" PRIu64
               " elapsed=%.3f rate=%.0f sources=",
               received, invalid, gaps, disorder, (double) (last_usec - first_usec) / USEC_PER_SEC,
               last_usec > first_usec ? (double) (received - 1) * USEC_PER_SEC / (double) (last_usec - first_usec)
                                      : 0.0);
        for (size_t i = 0; i < n_sources; i++)
                printf("%s%s:%" PRIu64, i ? "," : "", sources[i].name, sources[i].count);
        printf("\n");
        fflush(stdout);

        event_subscriber_free(s);
        (void) zmq_ctx_term(zctx);
        sd_event_unref(e);
        free(arg_topics);

        if (invalid || gaps || disorder || (arg_count > 0 && received < arg_count))
                code = 1;
        return code;
}
