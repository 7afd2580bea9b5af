/* SPDX-License-Identifier: MIT */
/*
 * event-pub: publish events through libshared's EventPublisher, for the
 * integration tests and benchmarks.
 *
 *   event-pub --endpoint=EP --source=NAME [--count=N] [--type=T] [--size=B]
 *             [--buffer=N] [--hwm=N] [--wait-connected=SEC]
 *             [--flush-timeout=SEC] [--rate=N] [--interval=MS]
 *             [--until-exists=PATH]... [--allow-drops]
 *
 * By default it emits --count events as fast as the publisher takes them
 * without dropping: when the publisher's queue reaches --buffer it runs the
 * loop until there is room. --rate limits that to N events per second.
 * --interval emits one event per interval
 * instead; --until-exists keeps doing so until every PATH exists (a probe
 * that tells subscribers' readiness). At the end it flushes and prints one
 * line: "emitted=N sent=N dropped=N elapsed=SEC rate=N". Exit status 0 when
 * nothing was dropped (or --allow-drops), 1 otherwise, 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>
#include <zmq.h>

#include "log.h"
#include "pub.h"
#include "time-util.h"

static const char *arg_endpoint, *arg_source, *arg_type = "test.event";
static uint64_t arg_count = 1;
static size_t arg_size;
static unsigned arg_buffer = 100000, arg_hwm = 100000;
static double arg_wait_connected = 0, arg_flush_timeout = 30, arg_interval_ms = 0, arg_rate = 0;
static char **arg_until;
static size_t arg_n_until;
static int arg_allow_drops;
static volatile sig_atomic_t stop;

static void on_signal(int sig) {
        stop = 1;
}

static int usage(const char *msg) {
        fprintf(stderr, "event-pub: %s\n", msg);
        return 2;
}

static int parse_args(int argc, char **argv) {
        static const struct option opts[] = {
                { "endpoint", required_argument, NULL, 'e' },
                { "source", required_argument, NULL, 's' },
                { "count", required_argument, NULL, 'n' },
                { "type", required_argument, NULL, 't' },
                { "size", required_argument, NULL, 'z' },
                { "buffer", required_argument, NULL, 'b' },
                { "hwm", required_argument, NULL, 'h' },
                { "wait-connected", required_argument, NULL, 'w' },
                { "flush-timeout", required_argument, NULL, 'f' },
                { "interval", required_argument, NULL, 'i' },
                { "rate", required_argument, NULL, 'r' },
                { "until-exists", required_argument, NULL, 'u' },
                { "allow-drops", no_argument, NULL, 'a' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'e': arg_endpoint = optarg; break;
                case 's': arg_source = optarg; break;
                case 'n': arg_count = strtoull(optarg, NULL, 10); break;
                case 't': arg_type = optarg; break;
                case 'z': arg_size = strtoul(optarg, NULL, 10); break;
                case 'b': arg_buffer = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'h': arg_hwm = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'w': arg_wait_connected = strtod(optarg, NULL); break;
                case 'f': arg_flush_timeout = strtod(optarg, NULL); break;
                case 'i': arg_interval_ms = strtod(optarg, NULL); break;
                case 'r': arg_rate = strtod(optarg, NULL); break;
                case 'u':
                        arg_until = realloc(arg_until, (arg_n_until + 1) * sizeof(char *));
                        if (!arg_until)
                                return usage("out of memory");
                        arg_until[arg_n_until++] = optarg;
                        break;
                case 'a': arg_allow_drops = 1; break;
                default: return usage("bad option");
                }
        if (optind < argc)
                return usage("unexpected argument");
        if (!arg_endpoint || !arg_source)
                return usage("--endpoint and --source are required");
        return 0;
}

static int all_exist(void) {
        for (size_t i = 0; i < arg_n_until; i++)
                if (access(arg_until[i], F_OK) < 0)
                        return 0;
        return 1;
}

int main(int argc, char **argv) {
        sd_event *e = NULL;
        void *zctx;
        EventPublisher *p = NULL;
        EventsConfig config;
        EventPublisherStats st;
        struct json_object *data;
        usec_t start, end;
        uint64_t i;
        int r;

        log_setup("event-pub");
        r = parse_args(argc, argv);
        if (r)
                return r;
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);

        config = (EventsConfig) {
                .publish = (char *) arg_endpoint,
                .buffer = arg_buffer,
                .hwm = arg_hwm,
        };
        zctx = zmq_ctx_new();
        if (sd_event_new(&e) < 0 || !zctx)
                return 1;
        r = event_publisher_new(&p, e, zctx, &config, arg_source);
        if (r < 0) {
                fprintf(stderr, "event-pub: cannot create publisher on %s: %s\n", arg_endpoint, strerror(-r));
                return 1;
        }

        /* One data object for every event: the publisher, not the test,
         * is what is measured. --size pads it. */
        data = json_object_new_object();
        if (arg_size > 0) {
                char *pad = malloc(arg_size + 1);
                if (!pad)
                        return 1;
                memset(pad, 'x', arg_size);
                pad[arg_size] = '\0';
                json_object_object_add(data, "pad", json_object_new_string(pad));
                free(pad);
        }

        if (arg_wait_connected > 0) {
                usec_t deadline = now_usec(CLOCK_MONOTONIC) + (usec_t) (arg_wait_connected * USEC_PER_SEC);

                for (;;) {
                        event_publisher_get_stats(p, &st);
                        if (st.connected || stop)
                                break;
                        if (now_usec(CLOCK_MONOTONIC) >= deadline) {
                                fprintf(stderr, "event-pub: no subscriber on %s within %.1fs\n", arg_endpoint,
                                        arg_wait_connected);
                                return 1;
                        }
                        (void) sd_event_run(e, 10 * USEC_PER_MSEC);
                }
        }

        start = now_usec(CLOCK_MONOTONIC);
        for (i = 0; !stop;) {
                if (arg_n_until > 0) {
                        if (all_exist())
                                break;
                } else if (i >= arg_count)
                        break;

                if (arg_interval_ms > 0) {
                        (void) event_publisher_emit(p, arg_type, data);
                        i++;
                        usec_t until = now_usec(CLOCK_MONOTONIC) + (usec_t) (arg_interval_ms * USEC_PER_MSEC);
                        for (usec_t n; (n = now_usec(CLOCK_MONOTONIC)) < until;)
                                (void) sd_event_run(e, until - n);
                        continue;
                }

                /* Keep within the queue bound so that nothing is dropped,
                 * and let the loop run now and then either way. */
                if (arg_rate > 0) {
                        usec_t due = start + (usec_t) ((double) i * USEC_PER_SEC / arg_rate), n;

                        n = now_usec(CLOCK_MONOTONIC);
                        if (n < due) {
                                (void) sd_event_run(e, due - n);
                                continue;
                        }
                }
                event_publisher_get_stats(p, &st);
                if (!arg_allow_drops && st.queued >= arg_buffer) {
                        (void) sd_event_run(e, 100 * USEC_PER_MSEC);
                        continue;
                }
                (void) event_publisher_emit(p, arg_type, data);
                i++;
                if (i % 256 == 0)
                        (void) sd_event_run(e, 0);
        }

        r = event_publisher_flush(p, (usec_t) (arg_flush_timeout * USEC_PER_SEC));
        end = now_usec(CLOCK_MONOTONIC);
        event_publisher_get_stats(p, &st);
        if (r < 0)
                fprintf(stderr, "event-pub: %" PRIu64 " events still queued after %.1fs\n", st.queued,
                        arg_flush_timeout);

        printf("emitted=%" PRIu64 " sent=%" PRIu64 " dropped=%" PRIu64 " elapsed=%.3f rate=%.0f\n", st.emitted,
               st.sent, st.dropped + st.queued, (double) (end - start) / USEC_PER_SEC,
               end > start ? (double) st.sent * USEC_PER_SEC / (double) (end - start) : 0.0);
        fflush(stdout);

        json_object_put(data);
        event_publisher_free(p);
        (void) zmq_ctx_term(zctx);
        sd_event_unref(e);
        free(arg_until);
        return (st.dropped + st.queued == 0 || arg_allow_drops) && r >= 0 ? 0 : 1;
}
