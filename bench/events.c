/* SPDX-License-Identifier: MIT */
/*
 * bench/events: events per second through callcenter-eventd against a
 * direct publisher -> subscriber connection, and the archive's rows per
 * second. Run by bench/events.sh, which starts PostgreSQL and eventd.
 *
 *   bench/events --publish=EP --subscribe=EP --direct=EP [--database=URL]
 *                [--count=N] [--size=BYTES] [--runs=R] [--eventd-pid=PID]
 *
 * Each run forks a subscriber and a publisher, both on libshared's
 * EventSubscriber / EventPublisher (the same code and the same events in
 * both modes):
 *   direct  the subscriber binds --direct, the publisher connects to it;
 *   hub     the publisher connects to eventd's --publish, the subscriber to
 *           its --subscribe.
 * The publisher first sends probe events until the subscriber has seen one
 * (its subscription is in place), then N events as fast as it can without
 * dropping any. The rate is N over the time between the subscriber's first
 * and last event. The subscriber checks that seq has no gap.
 *
 * With --database, a third kind of run publishes N events to eventd with
 * nobody subscribed and times how long it takes from the first event until
 * the N-th is a row of table events: the archive's rows/s. Hub runs time
 * the same while the subscriber competes for the CPU (shown as well).
 * Runs alternate between the modes (a busy machine then hurts both alike)
 * and the median of each figure is printed. Since wall-clock rates depend
 * on what else the machine runs, it also prints the CPU time eventd and
 * the archive's PostgreSQL backend spent per event (from /proc).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libpq-fe.h>
#include <systemd/sd-event.h>
#include <zmq.h>

#include "daemons/eventd/scan.h"
#include "log.h"
#include "pub.h"
#include "sub.h"
#include "time-util.h"

static const char *arg_publish, *arg_subscribe, *arg_direct, *arg_database;
static pid_t arg_eventd_pid;
static uint64_t arg_count = 200000;
static size_t arg_size = 64;
static unsigned arg_runs = 3;

#define BENCH_TIMEOUT (120 * USEC_PER_SEC)

typedef struct Result {
        double rate;            /* events/s at the subscriber */
        double pub_rate;        /* events/s handed to ZeroMQ by the publisher */
        double archive_rate;    /* rows/s, hub runs with --database */
        double archive_secs;
        double eventd_cpu;      /* µs of eventd CPU per event (hub runs, --eventd-pid) */
        double pg_cpu;          /* µs of PostgreSQL backend CPU per row */
        uint64_t received, gaps, bytes;
        int ok;
} Result;

/* --- subscriber ------------------------------------------------------------ */

typedef struct SubState {
        sd_event *loop;
        int report_fd;
        bool ready;
        uint64_t received, gaps, bytes, last_seq;
        usec_t first, last;
} SubState;

static int on_event(EventSubscriber *s, const char *topic, size_t topic_len, const char *body,
                    size_t body_len, void *userdata) {
        SubState *st = userdata;
        ScanEnvelope e;

        if (scan_envelope(topic, topic_len, body, body_len, &e, NULL) < 0)
                return 0;
        if (e.type_len == 11 && memcmp(e.type, "bench.probe", 11) == 0) {
                if (!st->ready) {
                        st->ready = true;
                        (void) !write(st->report_fd, "R", 1);
                }
                return 0;
        }

        st->last = now_usec(CLOCK_MONOTONIC);
        if (st->received++ == 0)
                st->first = st->last;
        else if (e.seq != st->last_seq + 1)
                st->gaps++;
        st->last_seq = e.seq;
        st->bytes += body_len;
        if (st->received >= arg_count)
                (void) sd_event_exit(st->loop, 0);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 1);
}

static int run_subscriber(const char *endpoint, bool bind, int report_fd) {
        EventSubscriberOptions options = { .bind = bind };
        EventSubscriber *sub = NULL;
        SubState st = { .report_fd = report_fd };
        char line[256];
        void *zctx;
        int r;

        if (sd_event_new(&st.loop) < 0)
                return 1;
        (void) sd_event_add_time_relative(st.loop, NULL, CLOCK_MONOTONIC, BENCH_TIMEOUT, USEC_PER_SEC, on_timeout,
                                          NULL);
        zctx = zmq_ctx_new();
        r = event_subscriber_new_full(&sub, st.loop, zctx, endpoint, NULL, &options, on_event, &st);
        if (r < 0) {
                fprintf(stderr, "bench: subscriber on %s: %s\n", endpoint, strerror(-r));
                return 1;
        }
        (void) sd_event_loop(st.loop);

        snprintf(line, sizeof(line), "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", st.received,
                 st.gaps, st.bytes, st.first, st.last);
        (void) !write(report_fd, line, strlen(line));
        event_subscriber_free(sub);
        (void) zmq_ctx_term(zctx);
        return 0;
}

/* --- publisher ------------------------------------------------------------- */

static int run_publisher(const char *endpoint, const char *source, int go_fd, int report_fd) {
        EventsConfig config = { .publish = (char *) endpoint, .buffer = 100000, .hwm = 100000 };
        EventPublisher *p = NULL;
        EventPublisherStats st;
        struct json_object *data;
        sd_event *loop = NULL;
        usec_t start, end, deadline;
        char line[256], c, *pad;
        int64_t seq = 0;
        void *zctx;
        int r;

        if (sd_event_new(&loop) < 0)
                return 1;
        zctx = zmq_ctx_new();
        r = event_publisher_new(&p, loop, zctx, &config, source);
        if (r < 0) {
                fprintf(stderr, "bench: publisher on %s: %s\n", endpoint, strerror(-r));
                return 1;
        }
        data = json_object_new_object();
        pad = calloc(1, arg_size + 1);
        if (!pad)
                return 1;
        memset(pad, 'x', arg_size);
        json_object_object_add(data, "pad", json_object_new_string(pad));
        free(pad);

        /* Probes until the parent says the subscriber has seen one. */
        (void) fcntl(go_fd, F_SETFL, O_NONBLOCK);
        deadline = now_usec(CLOCK_MONOTONIC) + 30 * USEC_PER_SEC;
        for (;;) {
                event_publisher_get_stats(p, &st);
                if (st.connected && read(go_fd, &c, 1) == 1)
                        break;
                if (now_usec(CLOCK_MONOTONIC) > deadline) {
                        fprintf(stderr, "bench: no hub or subscriber on %s\n", endpoint);
                        return 1;
                }
                if (st.connected)
                        (void) event_publisher_emit(p, "bench.probe", NULL);
                (void) sd_event_run(loop, 5 * USEC_PER_MSEC);
        }

        /* As fast as the publisher takes them, never past its queue bound. */
        start = now_usec(CLOCK_MONOTONIC);
        for (uint64_t i = 0; i < arg_count;) {
                event_publisher_get_stats(p, &st);
                if (st.queued >= config.buffer) {
                        (void) sd_event_run(loop, 100 * USEC_PER_MSEC);
                        continue;
                }
                seq = event_publisher_emit(p, "bench.event", data);
                i++;
                if (i % 256 == 0)
                        (void) sd_event_run(loop, 0);
        }
        r = event_publisher_flush(p, 60 * USEC_PER_SEC);
        end = now_usec(CLOCK_MONOTONIC);
        event_publisher_get_stats(p, &st);

        snprintf(line, sizeof(line), "%" PRIu64 " %" PRIu64 " %" PRId64 " %" PRIu64 " %" PRIu64 "\n", st.sent,
                 st.dropped + st.queued, seq, start, end);
        (void) !write(report_fd, line, strlen(line));
        json_object_put(data);
        event_publisher_free(p);
        (void) zmq_ctx_term(zctx);
        sd_event_unref(loop);
        return r < 0;
}

/* --- archive --------------------------------------------------------------- */

/* Wait until the row with source's last seq is stored. Returns the time it
 * was seen, or 0. Rows of one publisher are committed in order, and nothing
 * else publishes meanwhile, so the last one there means all are; the count
 * is checked after. */
static usec_t wait_archived(PGconn *c, const char *source, int64_t last_seq, uint64_t *ret_rows) {
        const char *params[1] = { source };
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + BENCH_TIMEOUT, seen = 0;
        PGresult *res;

        while (now_usec(CLOCK_MONOTONIC) < deadline) {
                /* The newest row only (the primary key's last entry): a
                 * filter on source would scan every older run's rows while
                 * ours are not there yet, and slow the archive it measures. */
                res = PQexec(c, "SELECT source, seq FROM events ORDER BY id DESC LIMIT 1");
                if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                    strcmp(PQgetvalue(res, 0, 0), source) == 0 && strtoll(PQgetvalue(res, 0, 1), NULL, 10) == last_seq)
                        seen = now_usec(CLOCK_MONOTONIC);
                PQclear(res);
                if (seen)
                        break;
                usleep(10000);
        }
        if (!seen)
                return 0;
        res = PQexecParams(c, "SELECT count(*) FROM events WHERE source = $1 AND type = 'bench.event'", 1, NULL,
                           params, NULL, NULL, 0);
        *ret_rows = PQresultStatus(res) == PGRES_TUPLES_OK ? strtoull(PQgetvalue(res, 0, 0), NULL, 10) : 0;
        PQclear(res);
        return seen;
}

/* CPU time (user + system, all threads) of a process in µs, or 0. */
static uint64_t process_cpu_usec(pid_t pid) {
        char path[64], buf[1024], *p;
        unsigned long long ut = 0, st = 0;
        FILE *f;

        if (pid <= 0)
                return 0;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        p = fgets(buf, sizeof(buf), f);
        fclose(f);
        /* Fields after the command name, which may contain spaces. */
        if (!p || !(p = strrchr(buf, ')')) ||
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
                return 0;
        return (ut + st) * USEC_PER_SEC / (uint64_t) sysconf(_SC_CLK_TCK);
}

/* The archive's PostgreSQL backend (application_name callcenter-eventd). */
static pid_t archive_backend_pid(PGconn *c) {
        PGresult *res = PQexec(c, "SELECT pid FROM pg_stat_activity WHERE application_name = 'callcenter-eventd' "
                                  "ORDER BY backend_start DESC LIMIT 1");
        pid_t pid = 0;

        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
                pid = (pid_t) strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        return pid;
}

/* --- one run ---------------------------------------------------------------- */

static pid_t spawn(int (*fn)(void *), void *arg) {
        pid_t pid = fork();

        if (pid == 0)
                _exit(fn(arg));
        return pid;
}

typedef struct RunArgs {
        const char *endpoint;
        const char *source;
        bool bind;
        int in_fd, out_fd;
} RunArgs;

static int sub_main(void *userdata) {
        RunArgs *a = userdata;
        return run_subscriber(a->endpoint, a->bind, a->out_fd);
}

static int pub_main(void *userdata) {
        RunArgs *a = userdata;
        return run_publisher(a->endpoint, a->source, a->in_fd, a->out_fd);
}

static int read_line(int fd, char *buf, size_t size) {
        size_t n = 0;

        while (n + 1 < size) {
                ssize_t k = read(fd, buf + n, 1);
                if (k <= 0)
                        return -1;
                if (buf[n] == '\n')
                        break;
                n++;
        }
        buf[n] = '\0';
        return 0;
}

typedef enum Mode {
        MODE_DIRECT,            /* publisher -> subscriber */
        MODE_HUB,               /* publisher -> eventd -> subscriber (and archive) */
        MODE_ARCHIVE,           /* publisher -> eventd -> archive, nobody subscribed */
} Mode;

static const char *const mode_name[] = { "direct", "hub", "archive" };

static void run_once(Mode mode, unsigned number, PGconn *db, Result *ret) {
        int sub_pipe[2] = { -1, -1 }, pub_pipe[2], go_pipe[2], status;
        char source[64], line[256], c;
        uint64_t sent = 0, dropped = 0, received = 0, gaps = 0, bytes = 0, first = 0, last = 0, rows = 0;
        uint64_t pstart = 0, pend = 0;
        int64_t last_seq = 0;
        usec_t archived = 0;
        uint64_t eventd_cpu0 = 0, pg_cpu0 = 0;
        pid_t sp = -1, pp, pg_pid = 0;
        bool hub = mode != MODE_DIRECT, lost;

        *ret = (Result) {};
        snprintf(source, sizeof(source), "bench-%d-%u-%s", (int) getpid(), number, mode_name[mode]);
        if ((mode != MODE_ARCHIVE && pipe(sub_pipe) < 0) || pipe(pub_pipe) < 0 || pipe(go_pipe) < 0)
                return;

        RunArgs sa = { .endpoint = hub ? arg_subscribe : arg_direct, .bind = !hub, .out_fd = sub_pipe[1] };
        RunArgs pa = { .endpoint = hub ? arg_publish : arg_direct, .source = source, .in_fd = go_pipe[0],
                       .out_fd = pub_pipe[1] };
        if (mode != MODE_ARCHIVE) {
                sp = spawn(sub_main, &sa);
                close(sub_pipe[1]);
        }
        pp = spawn(pub_main, &pa);
        close(pub_pipe[1]);
        close(go_pipe[0]);

        /* The subscriber's first probe: its subscription is in place. */
        if (mode != MODE_ARCHIVE && (read(sub_pipe[0], &c, 1) != 1 || c != 'R')) {
                fprintf(stderr, "bench: %s run %u: subscriber not ready\n", mode_name[mode], number);
                goto finish;
        }
        if (hub) {
                eventd_cpu0 = process_cpu_usec(arg_eventd_pid);
                pg_pid = db ? archive_backend_pid(db) : 0;
                pg_cpu0 = process_cpu_usec(pg_pid);
        }
        (void) !write(go_pipe[1], "G", 1);

        if (read_line(pub_pipe[0], line, sizeof(line)) < 0 ||
            sscanf(line, "%" SCNu64 " %" SCNu64 " %" SCNd64 " %" SCNu64 " %" SCNu64, &sent, &dropped, &last_seq,
                   &pstart, &pend) != 5)
                goto finish;
        if (mode != MODE_ARCHIVE &&
            (read_line(sub_pipe[0], line, sizeof(line)) < 0 ||
             sscanf(line, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &received, &gaps, &bytes,
                    &first, &last) != 5))
                goto finish;
        if (hub && db)
                archived = wait_archived(db, source, last_seq, &rows);
        if (hub && arg_eventd_pid > 0)
                ret->eventd_cpu = (double) (process_cpu_usec(arg_eventd_pid) - eventd_cpu0) / (double) arg_count;
        if (hub && pg_pid > 0 && archived)
                ret->pg_cpu = (double) (process_cpu_usec(pg_pid) - pg_cpu0) / (double) arg_count;

        ret->received = received;
        ret->gaps = gaps;
        ret->bytes = received ? bytes / received : 0;
        ret->rate = last > first ? (double) (received - 1) * USEC_PER_SEC / (double) (last - first) : 0;
        ret->pub_rate = pend > pstart ? (double) sent * USEC_PER_SEC / (double) (pend - pstart) : 0;
        /* From the publisher's first event to the last row. */
        if (archived) {
                ret->archive_secs = (double) (archived - pstart) / USEC_PER_SEC;
                ret->archive_rate = (double) rows / ret->archive_secs;
                if (rows != arg_count)
                        fprintf(stderr, "bench: archive holds %" PRIu64 " of %" PRIu64 " events\n", rows,
                                arg_count);
        }
        lost = dropped != 0 || (mode != MODE_ARCHIVE && (received != arg_count || gaps != 0));
        ret->ok = !lost && (!hub || !db || rows == arg_count);

        fprintf(stderr, "  %-7s run %u:", mode_name[mode], number);
        if (mode != MODE_ARCHIVE)
                fprintf(stderr, " %7.0f ev/s at the subscriber,", ret->rate);
        fprintf(stderr, " %7.0f ev/s published", ret->pub_rate);
        if (archived)
                fprintf(stderr, ", archive %7.0f rows/s (%.2f s)", ret->archive_rate, ret->archive_secs);
        if (ret->eventd_cpu > 0)
                fprintf(stderr, ", CPU/event: eventd %.2f us", ret->eventd_cpu);
        if (ret->pg_cpu > 0)
                fprintf(stderr, ", PostgreSQL %.2f us", ret->pg_cpu);
        if (lost)
                fprintf(stderr, " (LOST EVENTS: received %" PRIu64 ", %" PRIu64 " gaps, %" PRIu64 " dropped by the publisher)",
                        received, gaps, dropped);
        fprintf(stderr, "\n");

finish:
        close(go_pipe[1]);
        if (sub_pipe[0] >= 0)
                close(sub_pipe[0]);
        close(pub_pipe[0]);
        if (sp > 0) {
                kill(sp, SIGTERM);
                (void) waitpid(sp, &status, 0);
        }
        kill(pp, SIGTERM);
        (void) waitpid(pp, &status, 0);
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n) {
        qsort(v, n, sizeof(double), cmp_double);
        return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int parse_args(int argc, char **argv) {
        static const struct option opts[] = {
                { "publish", required_argument, NULL, 'p' },
                { "subscribe", required_argument, NULL, 's' },
                { "direct", required_argument, NULL, 'd' },
                { "database", required_argument, NULL, 'D' },
                { "count", required_argument, NULL, 'n' },
                { "size", required_argument, NULL, 'z' },
                { "runs", required_argument, NULL, 'r' },
                { "eventd-pid", required_argument, NULL, 'P' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'p': arg_publish = optarg; break;
                case 's': arg_subscribe = optarg; break;
                case 'd': arg_direct = optarg; break;
                case 'D': arg_database = *optarg ? optarg : NULL; break;
                case 'n': arg_count = strtoull(optarg, NULL, 10); break;
                case 'z': arg_size = strtoul(optarg, NULL, 10); break;
                case 'r': arg_runs = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'P': arg_eventd_pid = (pid_t) strtol(optarg, NULL, 10); break;
                default: return 2;
                }
        if (!arg_publish || !arg_subscribe || !arg_direct || arg_count < 2 || arg_runs < 1 || arg_runs > 50) {
                fprintf(stderr, "usage: bench/events --publish=EP --subscribe=EP --direct=EP [--database=URL] "
                                "[--count=N>=2] [--size=BYTES] [--runs=1..50] [--eventd-pid=PID]\n");
                return 2;
        }
        return 0;
}

int main(int argc, char **argv) {
        double direct[50], hub[50], archive[50], archive_fwd[50], ecpu[50], pcpu[50], hub_v, direct_v;
        unsigned n_archive = 0, n_archive_fwd = 0, n_ecpu = 0, n_pcpu = 0;
        uint64_t bytes = 0;
        PGconn *db = NULL;
        int r, ok = 1;

        log_setup("bench-events");
        r = parse_args(argc, argv);
        if (r)
                return r;
        if (arg_database) {
                db = PQconnectdb(arg_database);
                if (PQstatus(db) != CONNECTION_OK) {
                        fprintf(stderr, "bench: %s", PQerrorMessage(db));
                        return 1;
                }
        }

        fprintf(stderr, "bench/events: %" PRIu64 " events per run, %u run(s) per mode\n", arg_count, arg_runs);
        for (unsigned i = 0; i < arg_runs; i++) {
                Result d, h, a;

                run_once(MODE_DIRECT, i + 1, NULL, &d);
                run_once(MODE_HUB, i + 1, db, &h);
                direct[i] = d.rate;
                hub[i] = h.rate;
                if (h.archive_rate > 0)
                        archive_fwd[n_archive_fwd++] = h.archive_rate;
                if (h.eventd_cpu > 0)
                        ecpu[n_ecpu++] = h.eventd_cpu;
                if (h.pg_cpu > 0)
                        pcpu[n_pcpu++] = h.pg_cpu;
                ok = ok && d.ok && h.ok;
                bytes = h.bytes;

                if (db) {
                        run_once(MODE_ARCHIVE, i + 1, db, &a);
                        if (a.archive_rate > 0)
                                archive[n_archive++] = a.archive_rate;
                        ok = ok && a.ok;
                }
        }
        direct_v = median(direct, arg_runs);
        hub_v = median(hub, arg_runs);

        printf("events: %" PRIu64 " per run, envelope %" PRIu64 " bytes, median of %u run(s)\n", arg_count, bytes,
               arg_runs);
        printf("hub: %.0f ev/s  direct: %.0f ev/s  ratio: %.2f\n", hub_v, direct_v,
               direct_v > 0 ? hub_v / direct_v : 0.0);
        if (db) {
                printf("archive: %.0f rows/s\n", median(archive, n_archive));
                printf("archive while a subscriber also runs: %.0f rows/s\n", median(archive_fwd, n_archive_fwd));
        } else
                printf("archive: not measured (no database)\n");
        if (n_ecpu > 0 || n_pcpu > 0)
                printf("cpu per event: eventd %.2f us, PostgreSQL %.2f us\n", median(ecpu, n_ecpu),
                       median(pcpu, n_pcpu));
        if (!ok)
                printf("WARNING: some runs lost events (see above)\n");

        PQfinish(db);
        return ok ? 0 : 1;
}
