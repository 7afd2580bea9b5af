/* SPDX-License-Identifier: MIT */
/*
 * callcenter-routerd: inbound call routing (ACD) on D-Bus
 * (org.callcenter.Router1) and on the seed-compatible TCP protocol.
 *
 * main() only wires things up: argv, configuration, signals, the manager,
 * READY=1, the loop, and the flush at exit. Everything that happens while
 * serving belongs to the manager.
 */
#include <errno.h>
#include <stdlib.h>

#include <systemd/sd-event.h>

#include "daemons/routerd/conf.h"
#include "daemons/routerd/manager.h"
#include "daemons/routerd/server.h"
#include "libshared/daemon.h"
#include "libshared/log.h"

/* How long the state may take to come back from PostgreSQL at start
 * (including connecting and the migrations). */
#define LOAD_TIMEOUT (60 * USEC_PER_SEC)
/* At SIGTERM: how long queued TCP replies may take to go out, and how long
 * the final database flush and the event hand-off may take. */
#define REPLY_GRACE (1 * USEC_PER_SEC)
#define FLUSH_TIMEOUT (10 * USEC_PER_SEC)

typedef struct Shutdown {
        Manager *manager;
        usec_t replies_deadline;
        usec_t flush_deadline;
        bool grace_over;
        sd_event_source *poll;
} Shutdown;

/*
 * The loop ends once every client hung up (a client that sent a request
 * just before SIGTERM gets its answer; at most REPLY_GRACE) and the
 * last batch is in PostgreSQL (at most FLUSH_TIMEOUT: with the database
 * away, what is not written is logged as lost). The flush completes on the
 * running loop rather than in manager_finish(), where only leftovers wait.
 */
static int on_shutdown_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        Shutdown *sh = userdata;
        bool replies_done, store_idle;

        manager_get_drain_state(sh->manager, &replies_done, &store_idle);
        if (!sh->grace_over && (replies_done || usec >= sh->replies_deadline)) {
                /* Every client hung up, or the grace period is over: read
                 * no more, and flush what the last requests changed. */
                manager_end_grace(sh->manager);
                sh->grace_over = true;
                manager_get_drain_state(sh->manager, &replies_done, &store_idle);
        }
        if (sh->grace_over && ((replies_done && store_idle) || usec >= sh->flush_deadline))
                return sd_event_exit(sd_event_source_get_event(s), 0);
        (void) sd_event_source_set_time(s, usec + 10 * USEC_PER_MSEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Shutdown *sh = userdata;
        sd_event *e = sd_event_source_get_event(s);
        usec_t now;
        int r;

        if (!sh->manager || sh->manager->stopping)
                return sd_event_exit(e, 0);
        manager_begin_shutdown(sh->manager);

        (void) sd_event_now(e, CLOCK_MONOTONIC, &now);
        sh->replies_deadline = now + REPLY_GRACE;
        sh->flush_deadline = now + FLUSH_TIMEOUT;
        r = sd_event_add_time(e, &sh->poll, CLOCK_MONOTONIC, now, 0, on_shutdown_poll, sh);
        if (r < 0)
                return sd_event_exit(e, 0);
        return 0;
}

static int run(int argc, char **argv) {
        static const DaemonInfo info = {
                .name = "callcenter-routerd",
                .description = "Route inbound calls to operators (org.callcenter.Router1, TCP JSON lines).",
                .sections = routerd_config_sections,
        };
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        RouterdConfig config = {};
        Shutdown sh = {};
        DaemonArgs args;
        char line[256];
        int r;

        log_setup("callcenter-routerd");

        r = daemon_parse_argv(argc, argv, &info, &args);
        if (r != 0)
                return r < 0 ? 2 : 0;

        r = routerd_config_load(&config, args.config_path);
        if (r < 0) {
                routerd_config_done(&config);
                return 1;
        }

        r = sd_event_default(&e);
        if (r < 0) {
                log_error_errno(r, "Could not create the event loop: %m");
                goto finish;
        }
        r = daemon_setup_signals(e, on_sigterm, NULL, &sh);
        if (r < 0) {
                log_error_errno(r, "Could not set up signal handling: %m");
                goto finish;
        }

        r = manager_new(&m, e, &config, args.user);
        if (r < 0)
                goto finish;
        sh.manager = m;

        /* State first, then the sockets: nothing is served from an empty
         * router while the saved calls are on their way back. */
        r = manager_load_state(m, LOAD_TIMEOUT);
        if (r == -ECANCELED) {
                r = 0;
                goto finish;
        }
        if (r < 0)
                goto finish;
        r = manager_start_server(m);
        if (r < 0)
                goto finish;
        r = manager_connect_bus(m);
        if (r < 0)
                goto finish;

        r = daemon_ready(e);
        if (r < 0) {
                log_error_errno(r, "Could not enable the watchdog: %m");
                goto finish;
        }
        (void) manager_status_line(m, line, sizeof line);
        daemon_notify_status("%s", line);
        log_info("Serving: %s.", line);

        r = sd_event_loop(e);
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");

finish:
        if (m) {
                if (!m->stopping)
                        manager_begin_shutdown(m);
                manager_finish(m, FLUSH_TIMEOUT);
        }
        sh.poll = sd_event_source_disable_unref(sh.poll);
        m = manager_free(m);
        routerd_config_done(&config);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
        return run(argc, argv);
}
