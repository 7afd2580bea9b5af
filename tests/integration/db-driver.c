/* SPDX-License-Identifier: MIT */
/*
 * Test driver for the database link (tests/integration/test-db.sh).
 *
 *   db-driver MODE URL [--rows N] [--seconds S]
 *
 * Each mode runs one scenario on a real sd-event loop and prints
 * "PASS text" / "FAIL text" for its own checks, "key=value" figures for
 * the script, and "# text" diagnostics; logs go to stderr. Exit status 0
 * when every check passed. A 10 ms timer runs throughout and records how
 * late the loop served it: the link must never block the loop.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <systemd/sd-event.h>

#include "db.h"
#include "db-migrations.h"
#include "log.h"
#include "time-util.h"

#define LATENESS_PERIOD (10 * USEC_PER_MSEC)
/* Far above what a shared 2-core machine under ASan delays a 10 ms timer
 * (631 ms seen once), far below what one blocking libpq call costs during
 * the server's restart (the whole outage, seconds). */
#define LATENESS_LIMIT (1500 * USEC_PER_MSEC)

typedef struct Driver {
        sd_event *event;
        DbLink *link;
        const char *url;
        unsigned rows;
        double seconds;
        int failures;

        /* loop latency */
        sd_event_source *tick;
        usec_t tick_due;
        usec_t max_late;
        uint64_t ticks;

        /* connection state as the handler saw it */
        unsigned ups, downs;
        usec_t started, first_up, last_down, outage_total;

        /* load mode */
        sd_event_source *feeder;
        unsigned next_id, batch_no, submitted_jobs;
        bool feeding_done;
        int submit_errors;

        /* job bookkeeping */
        unsigned done_ok, done_eio, done_other;
        bool stop;
} Driver;

static void check(Driver *d, bool cond, const char *fmt, ...) _printf_(3, 4);
static void check(Driver *d, bool cond, const char *fmt, ...) {
        va_list ap;

        printf("%s ", cond ? "PASS" : "FAIL");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
        if (!cond)
                d->failures++;
}

static usec_t now_mono(void) {
        return now_usec(CLOCK_MONOTONIC);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Driver *d = userdata;
        usec_t n = now_mono();

        if (n > d->tick_due && n - d->tick_due > d->max_late)
                d->max_late = n - d->tick_due;
        d->ticks++;
        d->tick_due = n + LATENESS_PERIOD;
        (void) sd_event_source_set_time(s, d->tick_due);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

static void on_state(DbLink *l, bool connected, void *userdata) {
        Driver *d = userdata;
        usec_t n = now_mono();

        if (connected) {
                d->ups++;
                if (!d->first_up)
                        d->first_up = n;
                if (d->last_down)
                        d->outage_total += n - d->last_down;
        } else {
                d->downs++;
                d->last_down = n;
        }
        printf("# link %s at +%" PRIu64 " ms\n", connected ? "up" : "down", (n - d->started) / 1000);
        fflush(stdout);
}

static void on_count(DbLink *l, int error, PGresult *res, void *userdata) {
        Driver *d = userdata;

        if (error == 0)
                d->done_ok++;
        else if (error == -EIO)
                d->done_eio++;
        else
                d->done_other++;
}

static int driver_init(Driver *d, const DatabaseConfig *cfg) {
        int r;

        d->started = now_mono();
        r = sd_event_default(&d->event);
        if (r < 0)
                return r;
        d->tick_due = now_mono() + LATENESS_PERIOD;
        r = sd_event_add_time(d->event, &d->tick, CLOCK_MONOTONIC, d->tick_due, 1, on_tick, d);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(d->tick, SD_EVENT_ON);
        r = db_link_new(&d->link, d->event, cfg, "db-driver");
        if (r < 0)
                return r;
        db_link_set_state_handler(d->link, on_state, d);
        return 0;
}

static void driver_done(Driver *d) {
        DbLinkStats st = {};

        db_link_get_stats(d->link, &st);
        printf("completed=%" PRIu64 "\nfailed=%" PRIu64 "\noverflows=%" PRIu64 "\nreconnects=%" PRIu64
               "\nqueued=%" PRIu64 "\nmax_late_ms=%.1f\nticks=%" PRIu64 "\noutage_ms=%" PRIu64 "\n",
               st.completed_jobs, st.failed_jobs, st.overflows, st.reconnects, st.queued_jobs,
               (double) d->max_late / 1000.0, d->ticks, d->outage_total / 1000);
        check(d, d->max_late < LATENESS_LIMIT, "the loop was never blocked: worst timer lateness %.1f ms < %u ms",
              (double) d->max_late / 1000.0, (unsigned) (LATENESS_LIMIT / 1000));
        d->link = db_link_free(d->link);
        d->tick = sd_event_source_disable_unref(d->tick);
        d->feeder = sd_event_source_disable_unref(d->feeder);
        d->event = sd_event_unref(d->event);
}

/* Run the loop until pred(d) holds or the time is up. Returns pred(d). */
static bool run_until(Driver *d, bool (*pred)(Driver *d), usec_t limit) {
        usec_t end = now_mono() + limit;

        while (!(pred && pred(d))) {
                usec_t n = now_mono();

                if (n >= end)
                        break;
                if (sd_event_run(d->event, end - n) < 0)
                        break;
        }
        return pred && pred(d);
}

static bool is_connected(Driver *d) {
        return db_link_is_connected(d->link);
}

static bool is_stopped(Driver *d) {
        return d->stop;
}

/* --- migrate ------------------------------------------------------------------- */

static void on_versions(DbLink *l, int error, PGresult *res, void *userdata) {
        Driver *d = userdata;

        if (error == 0 && PQntuples(res) == 1) {
                printf("versions=%s\n", PQgetvalue(res, 0, 0));
                printf("version_rows=%s\n", PQgetvalue(res, 0, 1));
        }
        check(d, error == 0, "schema_migrations readable through the link");
        d->stop = true;
}

static int mode_migrate(Driver *d, const DatabaseConfig *cfg, const DbMigration *override) {
        int r = driver_init(d, cfg);
        if (r < 0)
                return r;
        if (override)
                db_link_set_migrations(d->link, override);
        check(d, run_until(d, is_connected, 20 * USEC_PER_SEC), "connected and migrated");
        r = db_link_exec(d->link,
                         "SELECT coalesce(string_agg(version, ' ' ORDER BY version), ''), count(*) "
                         "FROM schema_migrations",
                         on_versions, d);
        check(d, r == 0, "query queued");
        run_until(d, is_stopped, 10 * USEC_PER_SEC);
        driver_done(d);
        return 0;
}

static const DbMigration test_migrations[] = {
        { .name = "t001-a", .file = "sql/t001-a.sql",
          .sql = "CREATE TABLE mig_a (id int PRIMARY KEY);\n"
                 "INSERT INTO mig_a VALUES (1); -- a trailing comment\n" },
        { .name = "t002-b", .file = "sql/t002-b.sql",
          .sql = "CREATE TABLE mig_b (x text);\n"
                 "INSERT INTO mig_b VALUES ($$dollar ' \" \\ ?\?= quoted$$);" },
        { .name = NULL },
};

/* The second one fails until the script creates mig_gate. */
static const DbMigration gated_migrations[] = {
        { .name = "t001-ok", .file = "sql/t001-ok.sql", .sql = "CREATE TABLE mig_ok (x int);" },
        { .name = "t002-gate", .file = "sql/t002-gate.sql",
          .sql = "CREATE TABLE mig_after AS SELECT * FROM mig_gate;" },
        { .name = NULL },
};

static bool gate_job_done(Driver *d) {
        return d->done_ok + d->done_eio + d->done_other > 0;
}

static int mode_migrate_fail(Driver *d, const DatabaseConfig *cfg) {
        int r = driver_init(d, cfg);
        if (r < 0)
                return r;
        db_link_set_migrations(d->link, gated_migrations);
        r = db_link_exec(d->link, "CREATE TABLE IF NOT EXISTS mig_job (x int); INSERT INTO mig_job VALUES (1)",
                         on_count, d);
        check(d, r == 0, "job queued while migrations cannot complete");
        run_until(d, gate_job_done, (usec_t) (d->seconds * USEC_PER_SEC));
        check(d, d->done_ok == 1, "the job ran once the migration succeeded on a retry");
        check(d, d->ups == 1 && d->downs == 0, "state handler: one up, no down (never connected before)");
        printf("connected_after_ms=%" PRIu64 "\n", d->first_up ? (d->first_up - d->started) / 1000 : 0);
        driver_done(d);
        return 0;
}

/* --- load: many rows through a server restart ------------------------------------- */

#define LOAD_BATCH 250
#define LOAD_PERIOD (20 * USEC_PER_MSEC)

static void payload(char *buf, size_t size, unsigned id) {
        /* Every character COPY and SQL quoting must get right. */
        snprintf(buf, size, "p%u\t\\x\n'\"\xc3\xa9", id);
}

static void on_load_job(DbLink *l, int error, PGresult *res, void *userdata) {
        Driver *d = userdata;

        on_count(l, error, res, d);
        if (error != 0)
                printf("# job failed: %d\n", error);
}

static int submit_copy(Driver *d, unsigned first, unsigned n) {
        char *buf = NULL, num[16], p[64];
        size_t len = 0, alloc = 0;
        int r = 0;

        for (unsigned id = first; id < first + n && r >= 0; id++) {
                snprintf(num, sizeof num, "%u", id);
                payload(p, sizeof p, id);
                r = db_copy_escape(&buf, &len, &alloc, num, strlen(num));
                r = r ?: db_copy_append(&buf, &len, &alloc, "\t", 1);
                r = r ?: db_copy_escape(&buf, &len, &alloc, p, strlen(p));
                r = r ?: db_copy_append(&buf, &len, &alloc, "\tcopy\n", 6);
        }
        if (r < 0) {
                free(buf);
                return r;
        }
        /* Idempotent: staged, then inserted with ON CONFLICT, so a batch that
         * is run again after a reconnect (or submitted twice) adds nothing. */
        return db_link_copy(d->link, "CREATE TEMP TABLE load_stage (LIKE load_t) ON COMMIT DROP",
                            "COPY load_stage FROM STDIN", buf, len,
                            "INSERT INTO load_t SELECT * FROM load_stage ON CONFLICT (id) DO NOTHING",
                            on_load_job, d);
}

static int submit_values(Driver *d, unsigned first, unsigned n) {
        char *sql = NULL, p[64], q[128];
        size_t len = 0, alloc = 0;
        int r;

        r = db_copy_append(&sql, &len, &alloc, "INSERT INTO load_t VALUES ", 26);
        for (unsigned id = first; id < first + n && r >= 0; id++) {
                char row[200];
                size_t k = 0;

                payload(p, sizeof p, id);
                for (const char *c = p; *c && k + 2 < sizeof q; c++) {
                        if (*c == '\'')
                                q[k++] = '\'';
                        q[k++] = *c;
                }
                q[k] = '\0';
                snprintf(row, sizeof row, "%s(%u, '%s', 'values')", id == first ? "" : ", ", id, q);
                r = db_copy_append(&sql, &len, &alloc, row, strlen(row));
        }
        r = r ?: db_copy_append(&sql, &len, &alloc, " ON CONFLICT (id) DO NOTHING", 28);
        if (r >= 0)
                r = db_link_exec(d->link, sql, on_load_job, d);
        free(sql);
        return r;
}

static int submit_params(Driver *d, unsigned first, unsigned n) {
        for (unsigned id = first; id < first + n; id++) {
                char num[16], p[64];
                const char *v[] = { num, p, "params" };
                int r;

                snprintf(num, sizeof num, "%u", id);
                payload(p, sizeof p, id);
                r = db_link_exec_params(d->link,
                                        "INSERT INTO load_t VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                                        3, v, on_load_job, d);
                if (r < 0)
                        return r;
                d->submitted_jobs++;
        }
        return 0;
}

/* Every 20 ms one batch, the way a daemon would write behind: mostly COPY,
 * some multi-row VALUES, some one-row parameterised inserts, and now and
 * then the previous batch again. */
static int on_feed(sd_event_source *s, uint64_t usec, void *userdata) {
        Driver *d = userdata;
        unsigned first = d->next_id, n = LOAD_BATCH;
        int r;

        if (first + n > d->rows + 1)
                n = d->rows + 1 - first;
        switch (d->batch_no % 8) {
        case 3:
                r = submit_params(d, first, n);
                break;
        case 2:
        case 6:
                r = submit_values(d, first, n);
                d->submitted_jobs++;
                break;
        default:
                r = submit_copy(d, first, n);
                d->submitted_jobs++;
                break;
        }
        if (r >= 0 && d->batch_no % 5 == 4 && first > LOAD_BATCH) {
                r = submit_copy(d, first - LOAD_BATCH, LOAD_BATCH);
                d->submitted_jobs++;
        }
        if (r < 0) {
                printf("# submit failed: %s\n", strerror(-r));
                d->submit_errors++;
        }
        d->batch_no++;
        d->next_id += n;
        if (d->next_id > d->rows) {
                d->feeding_done = true;
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        }
        (void) sd_event_source_set_time(s, usec + LOAD_PERIOD);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

static bool feeding_done(Driver *d) {
        return d->feeding_done;
}

static int mode_load(Driver *d, const DatabaseConfig *cfg, bool expect_restart) {
        usec_t t0;
        int r = driver_init(d, cfg);
        if (r < 0)
                return r;

        r = db_link_exec(d->link, "CREATE TABLE IF NOT EXISTS load_t (id int PRIMARY KEY, "
                                  "payload text NOT NULL, via text NOT NULL)",
                         on_load_job, d);
        check(d, r == 0, "table creation queued");
        d->submitted_jobs = 1;
        d->next_id = 1;
        r = sd_event_add_time(d->event, &d->feeder, CLOCK_MONOTONIC, now_mono(), 1, on_feed, d);
        if (r < 0)
                return r;

        check(d, run_until(d, feeding_done, 120 * USEC_PER_SEC), "all %u rows submitted", d->rows);
        check(d, d->submit_errors == 0, "no submit was refused (%d)", d->submit_errors);

        /* The drain runs the same loop, so the lateness timer keeps watching. */
        t0 = now_mono();
        r = db_link_drain(d->link, 40 * USEC_PER_SEC);
        printf("drain_ms=%" PRIu64 "\n", (now_mono() - t0) / 1000);
        check(d, r == 0, "db_link_drain() emptied the queue (%s)", r < 0 ? strerror(-r) : "ok");
        check(d, d->done_ok == d->submitted_jobs && d->done_eio == 0 && d->done_other == 0,
              "every job completed once: %u ok, %u SQL errors, %u other, of %u submitted",
              d->done_ok, d->done_eio, d->done_other, d->submitted_jobs);
        if (expect_restart) {
                check(d, d->downs >= 1 && d->ups >= 2, "state handler saw the restart: %u down, %u up",
                      d->downs, d->ups);
                DbLinkStats st;
                db_link_get_stats(d->link, &st);
                check(d, st.reconnects >= 1, "stats count %" PRIu64 " reconnect(s)", st.reconnects);
        }
        printf("submitted_jobs=%u\n", d->submitted_jobs);
        driver_done(d);
        return 0;
}

/* --- a job interrupted on the wire ------------------------------------------------ */

/*
 * The job sleeps until the script creates inflight_go, and the script
 * terminates its backend while it sleeps: the link must run it again on a
 * new connection, and the caller sees one callback with success.
 */
static int mode_inflight(Driver *d, const DatabaseConfig *cfg) {
        int r = driver_init(d, cfg);
        if (r < 0)
                return r;
        r = db_link_exec(d->link,
                         "INSERT INTO inflight_t VALUES (1) ON CONFLICT DO NOTHING;\n"
                         "SELECT pg_sleep(60) WHERE to_regclass('inflight_go') IS NULL;\n"
                         "INSERT INTO inflight_t VALUES (2) ON CONFLICT DO NOTHING",
                         on_count, d);
        check(d, r == 0, "sleeping job queued");
        check(d, run_until(d, gate_job_done, (usec_t) (d->seconds * USEC_PER_SEC)), "the job finished");
        check(d, d->done_ok == 1 && d->done_eio + d->done_other == 0, "one callback, with success");
        check(d, d->downs == 1 && d->ups == 2, "the link went down once and came back (%u down, %u up)",
              d->downs, d->ups);
        driver_done(d);
        return 0;
}

/* --- unreachable at start ------------------------------------------------------ */

static bool wait_all_done(Driver *d) {
        return d->done_ok + d->done_eio + d->done_other >= d->rows + 1;
}

static int mode_wait(Driver *d, const DatabaseConfig *cfg) {
        int r = driver_init(d, cfg);
        if (r < 0)
                return r;
        r = db_link_exec(d->link, "CREATE TABLE IF NOT EXISTS wait_t (id int PRIMARY KEY)", on_count, d);
        for (unsigned i = 1; i <= d->rows && r >= 0; i++) {
                char num[16];
                const char *v[] = { num };

                snprintf(num, sizeof num, "%u", i);
                r = db_link_exec_params(d->link, "INSERT INTO wait_t VALUES ($1) ON CONFLICT DO NOTHING",
                                        1, v, on_count, d);
        }
        check(d, r == 0, "%u jobs queued before any connection", d->rows + 1);
        check(d, run_until(d, wait_all_done, (usec_t) (d->seconds * USEC_PER_SEC)),
              "all jobs ran once the server appeared");
        check(d, d->done_ok == d->rows + 1, "%u of %u jobs succeeded", d->done_ok, d->rows + 1);
        check(d, d->ups == 1 && d->downs == 0, "state handler: connected once (%u up, %u down)", d->ups, d->downs);
        printf("connected_after_ms=%" PRIu64 "\n", d->first_up ? (d->first_up - d->started) / 1000 : 0);
        driver_done(d);
        return 0;
}

/* --- nobody there ------------------------------------------------------------- */

static int mode_down(Driver *d, const DatabaseConfig *cfg) {
        int r = driver_init(d, cfg);
        usec_t t0;
        if (r < 0)
                return r;
        run_until(d, NULL, (usec_t) (d->seconds * USEC_PER_SEC));
        check(d, !db_link_is_connected(d->link) && d->ups == 0, "never connected");
        check(d, d->ticks >= (uint64_t) (d->seconds * 50), "the loop kept running: %" PRIu64 " ticks of 10 ms in %.1f s",
              d->ticks, d->seconds);

        r = db_link_exec(d->link, "SELECT 1", on_count, d);
        check(d, r == 0, "a job is accepted while the database is away");
        t0 = now_mono();
        r = db_link_drain(d->link, 300 * USEC_PER_MSEC);
        check(d, r == -ETIMEDOUT, "db_link_drain() gives up with -ETIMEDOUT (%d)", r);
        check(d, now_mono() - t0 < 1000 * USEC_PER_MSEC, "... after its timeout (%" PRIu64 " ms)",
              (now_mono() - t0) / 1000);
        d->link = db_link_free(d->link);
        check(d, d->done_other == 1, "freeing the link cancels the queued job");
        driver_done(d);
        return 0;
}

/* --- a server that accepts and never answers ------------------------------------- */

typedef struct Listener {
        int fds[64];
        unsigned n;
} Listener;

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Listener *li = userdata;
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (c < 0)
                return 0;
        if (li->n < ELEMENTSOF(li->fds))
                li->fds[li->n++] = c;   /* held open, never answered */
        else
                close(c);
        return 0;
}

static int mode_timeout(Driver *d, DatabaseConfig *cfg) {
        char dir[] = "/tmp/db-driver.XXXXXX", url[256];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        Listener li = { .n = 0 };
        sd_event_source *acc = NULL;
        int fd, r;

        if (!mkdtemp(dir))
                return -errno;
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s/.s.PGSQL.5999", dir);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(fd, 16) < 0)
                return -errno;
        snprintf(url, sizeof url, "host=%s port=5999 dbname=none user=none", dir);
        cfg->url = url;

        r = driver_init(d, cfg);
        if (r < 0)
                return r;
        r = sd_event_add_io(d->event, &acc, fd, EPOLLIN, on_accept, &li);
        if (r < 0)
                return r;
        run_until(d, NULL, (usec_t) (d->seconds * USEC_PER_SEC));
        printf("accepted=%u\n", li.n);
        check(d, li.n >= 3, "connect_timeout ended each silent attempt and the link retried (%u attempts in %.1f s)",
              li.n, d->seconds);
        check(d, d->ups == 0, "never reported connected to a silent server");
        acc = sd_event_source_disable_unref(acc);
        driver_done(d);
        for (unsigned i = 0; i < li.n; i++)
                close(li.fds[i]);
        close(fd);
        unlink(sa.sun_path);
        rmdir(dir);
        return 0;
}

/* --- bounded buffer -------------------------------------------------------------- */

static unsigned ovf_accepted;

static int on_drain_from_callback(sd_event_source *s, uint64_t usec, void *userdata) {
        Driver *d = userdata;
        int r;

        /* Inside a dispatch of the link's own loop, as a SIGTERM handler is. */
        r = db_link_drain(d->link, 20 * USEC_PER_SEC);
        check(d, r == 0, "db_link_drain() from inside a loop callback emptied the queue (%d)", r);
        d->stop = true;
        return 0;
}

static int mode_overflow(Driver *d, DatabaseConfig *cfg) {
        unsigned refused = 0, tried = 2000;
        sd_event_source *t = NULL;
        DbLinkStats st;
        char *big;
        int r;

        cfg->buffer_bytes = 64 * 1024;
        r = driver_init(d, cfg);
        if (r < 0)
                return r;
        r = db_link_exec(d->link, "CREATE TABLE IF NOT EXISTS ovf_t (id int PRIMARY KEY)", on_count, d);
        check(d, r == 0, "first job accepted");
        ovf_accepted = 1;
        for (unsigned i = 1; i <= tried; i++) {
                char sql[300];

                snprintf(sql, sizeof sql,
                         "INSERT INTO ovf_t VALUES (%u) ON CONFLICT DO NOTHING "
                         "/* padding padding padding padding padding padding padding padding "
                         "padding padding padding padding padding padding padding padding */", i);
                r = db_link_exec(d->link, sql, on_count, d);
                if (r == -ENOBUFS)
                        refused++;
                else if (r == 0)
                        ovf_accepted++;
        }
        db_link_get_stats(d->link, &st);
        printf("accepted=%u\nrefused=%u\n", ovf_accepted - 1, refused);
        check(d, refused > 0 && ovf_accepted > 100, "64 KiB buffer: %u accepted, %u refused with -ENOBUFS",
              ovf_accepted, refused);
        check(d, st.overflows == refused, "stats.overflows = %" PRIu64 " = refusals", st.overflows);
        check(d, st.queued_bytes <= cfg->buffer_bytes && st.queued_jobs == ovf_accepted,
              "queue holds %" PRIu64 " jobs in %" PRIu64 " bytes <= buffer_bytes", st.queued_jobs, st.queued_bytes);

        big = malloc(100 * 1024);
        memset(big, 'x', 100 * 1024);
        r = db_link_copy(d->link, NULL, "COPY ovf_t FROM STDIN", big, 100 * 1024, NULL, on_count, d);
        check(d, r == -ENOBUFS, "a COPY larger than the buffer is refused (and its data freed)");

        r = sd_event_add_time_relative(d->event, &t, CLOCK_MONOTONIC, 0, 1, on_drain_from_callback, d);
        if (r < 0)
                return r;
        run_until(d, is_stopped, 30 * USEC_PER_SEC);
        check(d, d->done_ok == ovf_accepted && d->done_eio == 0, "every accepted job ran: %u of %u",
              d->done_ok, ovf_accepted);
        t = sd_event_source_disable_unref(t);
        driver_done(d);
        return 0;
}

/* --- writes flushed after sd_event_exit() --------------------------------------------- */

/*
 * The daemon shutdown sequence: the SIGTERM handler calls sd_event_exit(),
 * sd_event_loop() returns, and main() then flushes what it still buffers
 * through db_link_exec() and db_link_drain(). A submit on the finished loop
 * cannot schedule its start there (-ESTALE); it must still be queued, and
 * the drain must start it.
 */
static int on_sigterm_like(sd_event_source *s, uint64_t usec, void *userdata) {
        Driver *d = userdata;

        /* Nothing else here: a submit made while the loop still runs would
         * leave a kick pending and hide the case under test. */
        return sd_event_exit(d->event, 0);
}

static int mode_exitflush(Driver *d, const DatabaseConfig *cfg) {
        sd_event_source *t = NULL;
        const char *v[] = { "2", "after the loop, params" };
        DbLinkStats st;
        int r, state;

        r = driver_init(d, cfg);
        if (r < 0)
                return r;
        r = db_link_exec(d->link, "CREATE TABLE IF NOT EXISTS exit_t (id int PRIMARY KEY, what text NOT NULL)",
                         on_count, d);
        check(d, r == 0, "table creation queued");
        check(d, run_until(d, is_connected, 20 * USEC_PER_SEC), "connected");
        check(d, run_until(d, gate_job_done, 10 * USEC_PER_SEC) && d->done_ok == 1, "table created");

        r = sd_event_add_time_relative(d->event, &t, CLOCK_MONOTONIC, 20 * USEC_PER_MSEC, 1, on_sigterm_like, d);
        if (r < 0)
                return r;
        r = sd_event_loop(d->event);
        state = sd_event_get_state(d->event);
        check(d, r == 0 && state == SD_EVENT_FINISHED, "sd_event_loop() returned after sd_event_exit() (%d, state %d)",
              r, state);
        t = sd_event_source_disable_unref(t);

        /* The loop is finished now: nothing can be scheduled on it. */
        r = db_link_exec(d->link, "INSERT INTO exit_t VALUES (1, 'after the loop') ON CONFLICT DO NOTHING",
                         on_count, d);
        check(d, r == 0, "db_link_exec() on the finished loop queues the job (%d)", r);
        r = db_link_exec_params(d->link, "INSERT INTO exit_t VALUES ($1::int, $2) ON CONFLICT DO NOTHING",
                                2, v, on_count, d);
        check(d, r == 0, "db_link_exec_params() on the finished loop queues the job (%d)", r);
        db_link_get_stats(d->link, &st);
        check(d, st.queued_jobs == 2, "two jobs wait for the drain (%" PRIu64 ")", st.queued_jobs);

        r = db_link_drain(d->link, 10 * USEC_PER_SEC);
        check(d, r == 0, "db_link_drain() after sd_event_loop() returned wrote them (%s)",
              r < 0 ? strerror(-r) : "ok");
        check(d, d->done_ok == 3 && d->done_eio + d->done_other == 0,
              "every callback ran with success: %u ok, %u SQL errors, %u other", d->done_ok, d->done_eio,
              d->done_other);

        /* Once more: the link was moved back to the finished loop; a second
         * flush must work the same way. */
        r = db_link_exec(d->link, "INSERT INTO exit_t VALUES (3, 'second flush') ON CONFLICT DO NOTHING",
                         on_count, d);
        check(d, r == 0, "a later submit is queued as well (%d)", r);
        r = db_link_drain(d->link, 10 * USEC_PER_SEC);
        check(d, r == 0 && d->done_ok == 4, "a second drain writes it (%d, %u ok)", r, d->done_ok);
        driver_done(d);
        return 0;
}

/* --- SQL errors ---------------------------------------------------------------------- */

typedef struct Expect {
        Driver *d;
        const char *what;
        int error;
        const char *value;      /* first column of the first row, or NULL */
        unsigned order;
} Expect;

static unsigned expect_seq;

static void on_expect(DbLink *l, int error, PGresult *res, void *userdata) {
        Expect *x = userdata;
        const char *got = NULL;

        if (error == 0 && res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
                got = PQgetvalue(res, 0, 0);
        else if (error == 0 && res && PQresultStatus(res) == PGRES_COMMAND_OK)
                got = PQcmdTuples(res);
        check(x->d, x->order == expect_seq++, "%s: callback in submission order", x->what);
        check(x->d, error == x->error, "%s: error %d (expected %d)", x->what, error, x->error);
        if (x->value)
                check(x->d, got && strcmp(got, x->value) == 0, "%s: result '%s' (expected '%s')", x->what,
                      got ?: "(none)", x->value);
        on_count(l, error, res, x->d);
}

static int mode_sqlerror(Driver *d, const DatabaseConfig *cfg) {
        static Expect x[16];
        const char *null_param[] = { NULL };
        const char *bad_param[] = { "abc", "x" };
        unsigned n = 0;
        DbLinkStats st;
        int r, code;

#define EXPECT(w, e, v) (x[n] = (Expect) { d, (w), (e), (v), n }, &x[n++])
        r = driver_init(d, cfg);
        if (r < 0)
                return r;
        r = 0;
        r |= db_link_exec(d->link, "DROP TABLE IF EXISTS err_t; CREATE TABLE err_t (id int PRIMARY KEY, v text)",
                          on_expect, EXPECT("create", 0, NULL));
        r |= db_link_exec(d->link, "INSERT INTO err_t VALUES (1, 'a')", on_expect, EXPECT("insert 1", 0, "1"));
        r |= db_link_exec(d->link, "SELECT * FROM no_such_table", on_expect, EXPECT("missing table", -EIO, NULL));
        r |= db_link_exec_params(d->link, "INSERT INTO err_t VALUES ($1, $2)", 2, bad_param, on_expect,
                                 EXPECT("bad parameter", -EIO, NULL));
        r |= db_link_copy(d->link, "CREATE TEMP TABLE s (id int, v text) ON COMMIT DROP", "COPY s FROM STDIN",
                          strdup("2\tb\nnot-a-number\tc\n"), strlen("2\tb\nnot-a-number\tc\n"),
                          "INSERT INTO err_t SELECT * FROM s", on_expect, EXPECT("bad COPY data", -EIO, NULL));
        r |= db_link_exec(d->link, "BEGIN; INSERT INTO err_t VALUES (3, 'c'); SELECT 1/0",
                          on_expect, EXPECT("error inside BEGIN", -EIO, NULL));
        r |= db_link_exec(d->link, "BEGIN; INSERT INTO err_t VALUES (4, 'd')",
                          on_expect, EXPECT("transaction left open", 0, "1"));
        r |= db_link_exec(d->link, "INSERT INTO err_t VALUES (5, 'e') RETURNING id", on_expect,
                          EXPECT("insert 5 returning", 0, "5"));
        r |= db_link_copy(d->link, NULL, "COPY err_t FROM STDIN", strdup("6\tf\\tx\n7\t\\N\n"), 12, NULL,
                          on_expect, EXPECT("good COPY", 0, "2"));
        r |= db_link_exec(d->link, "COPY (SELECT generate_series(1, 1000)) TO STDOUT", on_expect,
                          EXPECT("COPY TO STDOUT is drained", 0, NULL));
        r |= db_link_exec(d->link, "COPY err_t FROM STDIN", on_expect,
                          EXPECT("COPY FROM STDIN through exec is refused", -EIO, NULL));
        r |= db_link_exec_params(d->link, "SELECT $1::text IS NULL", 1, null_param, on_expect,
                                 EXPECT("NULL parameter", 0, "t"));
        r |= db_link_exec(d->link, "SELECT v FROM err_t WHERE id = 6", on_expect, EXPECT("escaped tab stored", 0, "f\tx"));
        r |= db_link_exec(d->link, "SELECT string_agg(id::text || ':' || coalesce(v, 'NULL'), ',' ORDER BY id) FROM err_t",
                          on_expect, EXPECT("only the good rows are there", 0, "1:a,5:e,6:f\tx,7:NULL"));
        check(d, r == 0, "%u jobs queued", n);

        /* Drain after sd_event_exit(): the loop cannot run any more, the link
         * must carry itself over to a private loop. */
        (void) sd_event_exit(d->event, 0);
        r = db_link_drain(d->link, 20 * USEC_PER_SEC);
        check(d, r == 0, "db_link_drain() after sd_event_exit() emptied the queue (%d)", r);
        check(d, sd_event_get_exit_code(d->event, &code) == 0, "the daemon's loop still has its exit request");
        check(d, expect_seq == n, "all %u callbacks ran", n);
        db_link_get_stats(d->link, &st);
        check(d, st.failed_jobs == 5 && st.completed_jobs == n - 5,
              "stats: %" PRIu64 " failed, %" PRIu64 " completed", st.failed_jobs, st.completed_jobs);
        driver_done(d);
        return 0;
#undef EXPECT
}

/* --- main -------------------------------------------------------------------------- */

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "rows", required_argument, NULL, 'r' },
                { "seconds", required_argument, NULL, 's' },
                { "reconnect-max-ms", required_argument, NULL, 'm' },
                { "connect-timeout-ms", required_argument, NULL, 't' },
                { "expect-restart", no_argument, NULL, 'x' },
                {}
        };
        Driver d = { .rows = 1000, .seconds = 10 };
        DatabaseConfig cfg = {
                .buffer_bytes = 256 * 1024 * 1024,
                .connect_timeout = 5 * USEC_PER_SEC,
                .reconnect_max = 500 * USEC_PER_MSEC,
        };
        bool expect_restart = false;
        const char *mode;
        int c, r;

        log_setup("db-driver");
        setvbuf(stdout, NULL, _IOLBF, 0);
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'r': d.rows = (unsigned) strtoul(optarg, NULL, 10); break;
                case 's': d.seconds = strtod(optarg, NULL); break;
                case 'm': cfg.reconnect_max = strtoull(optarg, NULL, 10) * USEC_PER_MSEC; break;
                case 't': cfg.connect_timeout = strtoull(optarg, NULL, 10) * USEC_PER_MSEC; break;
                case 'x': expect_restart = true; break;
                default: return 2;
                }
        if (argc - optind != 2) {
                fprintf(stderr, "usage: %s MODE URL [--rows N] [--seconds S] [--reconnect-max-ms MS]\n"
                                "       [--connect-timeout-ms MS] [--expect-restart]\n"
                                "modes: migrate migrate-test migrate-fail load inflight wait down timeout overflow sqlerror\n"
                                "       exitflush\n",
                        argv[0]);
                return 2;
        }
        mode = argv[optind];
        d.url = argv[optind + 1];
        cfg.url = (char *) d.url;

        if (strcmp(mode, "migrate") == 0)
                r = mode_migrate(&d, &cfg, NULL);
        else if (strcmp(mode, "migrate-test") == 0)
                r = mode_migrate(&d, &cfg, test_migrations);
        else if (strcmp(mode, "migrate-fail") == 0)
                r = mode_migrate_fail(&d, &cfg);
        else if (strcmp(mode, "load") == 0)
                r = mode_load(&d, &cfg, expect_restart);
        else if (strcmp(mode, "inflight") == 0)
                r = mode_inflight(&d, &cfg);
        else if (strcmp(mode, "wait") == 0)
                r = mode_wait(&d, &cfg);
        else if (strcmp(mode, "down") == 0)
                r = mode_down(&d, &cfg);
        else if (strcmp(mode, "timeout") == 0)
                r = mode_timeout(&d, &cfg);
        else if (strcmp(mode, "overflow") == 0)
                r = mode_overflow(&d, &cfg);
        else if (strcmp(mode, "sqlerror") == 0)
                r = mode_sqlerror(&d, &cfg);
        else if (strcmp(mode, "exitflush") == 0)
                r = mode_exitflush(&d, &cfg);
        else {
                fprintf(stderr, "unknown mode %s\n", mode);
                return 2;
        }
        if (r < 0) {
                printf("FAIL %s: setup failed: %s\n", mode, strerror(-r));
                return 1;
        }
        return d.failures == 0 ? 0 : 1;
}
