/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

#include <systemd/sd-event.h>

#include "conf.h"
#include "daemon.h"
#include "log.h"
#include "manager.h"

/*
 * callcenter-eventd: the ZeroMQ hub. main() reads the command line and the
 * configuration, blocks the signals before ZeroMQ starts its thread, lets
 * the manager bind, says READY=1 and runs the loop. Everything else lives
 * in manager.c (sockets, forwarding), archive.c (SQL) and scan.c (checks).
 */

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        log_info("Stopping on signal.");
        daemon_notify_stopping();
        manager_stop(m);
        return 0;
}

static int run(int argc, char **argv) {
        EventsConfig events = {};
        DatabaseConfig database = {};
        const ConfigSection sections[] = {
                { .name = "database", .items = config_database_items, .base = &database },
                { .name = "events", .items = config_events_items, .base = &events },
                {},
        };
        const DaemonInfo info = {
                .name = "callcenter-eventd",
                .description = "ZeroMQ event hub: forwards every event from publishers to subscribers "
                               "and archives it in PostgreSQL.",
                .sections = sections,
        };
        Manager *m = NULL;
        DaemonArgs args;
        int r;

        log_setup("callcenter-eventd");

        /* Archive batches are buffers of a few MB that come and go every
         * few milliseconds at full rate. Served by mmap() and given back
         * with munmap() each time, their page faults cost ~5% of the hub's
         * CPU; from the heap, and not trimmed, they are reused. */
        (void) mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
        (void) mallopt(M_TRIM_THRESHOLD, 128 * 1024 * 1024);

        r = daemon_parse_argv(argc, argv, &info, &args);
        if (r != 0)
                return r < 0 ? 2 : 0;

        /* config_load() has logged the one line naming file:line. */
        r = config_load(args.config_path, sections);
        if (r < 0) {
                config_free(sections);
                return EXIT_FAILURE;
        }

        r = manager_new(&m, &events, &database);
        if (r < 0) {
                log_error_errno(r, "Cannot set up: %m");
                goto finish;
        }
        r = daemon_setup_signals(m->event, on_term, NULL, m);
        if (r < 0) {
                log_error_errno(r, "Cannot set up signal handling: %m");
                goto finish;
        }
        r = manager_start(m);
        if (r < 0)
                goto finish;

        r = daemon_ready(m->event);
        if (r < 0) {
                log_error_errno(r, "Cannot enable the watchdog: %m");
                goto finish;
        }
        log_info("Serving publishers on %s and subscribers on %s%s.", events.publish, events.subscribe,
                 m->archive ? ", archiving to PostgreSQL" : "");

        r = sd_event_loop(m->event);
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");

finish:
        manager_free(m);
        config_free(sections);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main(int argc, char **argv) {
        return run(argc, argv);
}
