/* SPDX-License-Identifier: MIT */
/*
 * callcenter-routerd: inbound call routing (ACD) on D-Bus
 * (org.callcenter.Router1) and on the seed-compatible TCP protocol.
 *
 * main() only wires things up: argv, configuration, signals, the manager,
 * READY=1, the loop, the reload on SIGHUP (reading the files; the manager
 * applies them) and the flush at exit. Everything that happens while
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

typedef struct Context {
        Manager *manager;
        const char *config_path;     /* --config, NULL = the default file */

        /* SIGHUP before READY=1 is held until then: the state is still
         * loading and the operators of the configuration not yet added. */
        bool serving;
        bool reload_pending;

        /* SIGTERM */
        usec_t replies_deadline;
        usec_t flush_deadline;
        bool grace_over;
        sd_event_source *poll;
} Context;

/*
 * The loop ends once every client hung up (a client that sent a request
 * just before SIGTERM gets its answer; at most REPLY_GRACE) and the
 * last batch is in PostgreSQL (at most FLUSH_TIMEOUT: with the database
 * away, what is not written is logged as lost). The flush completes on the
 * running loop rather than in manager_finish(), where only leftovers wait.
 */
static int on_shutdown_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        Context *ctx = userdata;
        bool replies_done, store_idle;

        manager_get_drain_state(ctx->manager, &replies_done, &store_idle);
        if (!ctx->grace_over && (replies_done || usec >= ctx->replies_deadline)) {
                /* Every client hung up, or the grace period is over: read
                 * no more, and flush what the last requests changed. */
                manager_end_grace(ctx->manager);
                ctx->grace_over = true;
                manager_get_drain_state(ctx->manager, &replies_done, &store_idle);
        }
        if (ctx->grace_over && ((replies_done && store_idle) || usec >= ctx->flush_deadline))
                return sd_event_exit(sd_event_source_get_event(s), 0);
        (void) sd_event_source_set_time(s, usec + 10 * USEC_PER_MSEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Context *ctx = userdata;
        sd_event *e = sd_event_source_get_event(s);
        usec_t now;
        int r;

        if (!ctx->manager || ctx->manager->stopping)
                return sd_event_exit(e, 0);
        manager_begin_shutdown(ctx->manager);

        (void) sd_event_now(e, CLOCK_MONOTONIC, &now);
        ctx->replies_deadline = now + REPLY_GRACE;
        ctx->flush_deadline = now + FLUSH_TIMEOUT;
        r = sd_event_add_time(e, &ctx->poll, CLOCK_MONOTONIC, now, 0, on_shutdown_poll, ctx);
        if (r < 0)
                return sd_event_exit(e, 0);
        return 0;
}

/*
 * Reload (SIGHUP, systemctl reload): RELOADING=1, read the configuration
 * exactly as at start (file, drop-ins, environment), apply it, READY=1 and
 * a fresh STATUS=. A configuration with an error (logged with file:line)
 * changes nothing: the one in use stays, and so does serving.
 */
static void reload(Context *ctx, sd_event *e) {
        RouterdConfig next = {};
        char line[256];
        int r;

        daemon_notify_reloading();
        log_info("Reloading the configuration from %s.",
                 ctx->config_path ? ctx->config_path : config_default_path());
        r = routerd_config_load(&next, ctx->config_path);
        if (r < 0)
                log_warning("The configuration was not reloaded (see the error above): the one in use stays.");
        else
                r = manager_reload(ctx->manager, &next);
        routerd_config_done(&next);

        (void) daemon_ready(e);
        (void) manager_status_line(ctx->manager, line, sizeof line);
        if (r < 0)
                daemon_notify_status("Configuration reload failed, previous one in use; %s", line);
        else
                daemon_notify_status("%s", line);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Context *ctx = userdata;

        if (ctx->manager && ctx->manager->stopping) {
                log_info("SIGHUP while shutting down, not reloading.");
                return 0;
        }
        if (!ctx->serving) {
                log_info("SIGHUP while starting: reloading the configuration once serving.");
                ctx->reload_pending = true;
                return 0;
        }
        reload(ctx, sd_event_source_get_event(s));
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
        Context ctx = {};
        DaemonArgs args;
        char line[256];
        int r;

        log_setup("callcenter-routerd");

        r = daemon_parse_argv(argc, argv, &info, &args);
        if (r != 0)
                return r < 0 ? 2 : 0;

        ctx.config_path = args.config_path;
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
        r = daemon_setup_signals(e, on_sigterm, on_sighup, &ctx);
        if (r < 0) {
                log_error_errno(r, "Could not set up signal handling: %m");
                goto finish;
        }

        r = manager_new(&m, e, &config, args.user);
        if (r < 0)
                goto finish;
        ctx.manager = m;

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
        ctx.serving = true;
        if (ctx.reload_pending)
                reload(&ctx, e);

        r = sd_event_loop(e);
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");

finish:
        if (m) {
                if (!m->stopping)
                        manager_begin_shutdown(m);
                manager_finish(m, FLUSH_TIMEOUT);
        }
        ctx.poll = sd_event_source_disable_unref(ctx.poll);
        m = manager_free(m);
        routerd_config_done(&config);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
        return run(argc, argv);
}
