/* SPDX-License-Identifier: MIT */
/*
 * callcenter-taskd: tasks with subtasks, linked to calls, on D-Bus as
 * org.callcenter.Tasks1 (DESIGN.md).
 *
 * main() only wires things up, in the order every daemon of the suite
 * follows (docs/HACKING.md): argv, configuration, the loop and its
 * signals, the manager, the bus, the load, READY=1, the loop, the end.
 * Everything that happens while serving belongs to the manager; bus.c is
 * the D-Bus glue on top of it.
 */
#include <errno.h>
#include <stdlib.h>

#include <systemd/sd-event.h>

#include "daemons/taskd/bus.h"
#include "daemons/taskd/conf.h"
#include "daemons/taskd/manager.h"
#include "libshared/daemon.h"
#include "libshared/log.h"

/*
 * SIGTERM/SIGINT: the manager refuses new changes, commits what it accepted
 * and then ends the loop itself (at most its stop timeout). A second signal
 * changes nothing. Before the manager exists there is nothing to commit.
 */
static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager **m = userdata;

        if (!*m)
                return sd_event_exit(sd_event_source_get_event(s), 0);
        log_info("Stopping");
        daemon_notify_stopping();
        manager_begin_shutdown(*m);
        return 0;
}

static int run(int argc, char **argv) {
        static const DaemonInfo info = {
                .name = "callcenter-taskd",
                .description = "Tasks with subtasks, linked to calls (org.callcenter.Tasks1).",
                .sections = taskd_config_sections,
        };
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        Manager *m = NULL;
        TasksBus *bus = NULL;
        TaskdConfig config = {};
        DaemonArgs args;
        char line[256];
        int r;

        log_setup("callcenter-taskd");

        r = daemon_parse_argv(argc, argv, &info, &args);
        if (r != 0)
                return r < 0 ? 2 : 0;

        r = taskd_config_load(&config, args.config_path);
        if (r < 0) {
                taskd_config_done(&config);
                return 1;
        }

        r = sd_event_default(&e);
        if (r < 0) {
                log_error_errno(r, "Failed to allocate the event loop: %m");
                goto finish;
        }
        r = daemon_setup_signals(e, on_sigterm, NULL, &m);
        if (r < 0) {
                log_error_errno(r, "Failed to set up signal handling: %m");
                goto finish;
        }

        log_info("Starting on the %s bus", args.user ? "session" : "system");
        r = manager_new(&m, e, &config);
        if (r < 0)
                goto finish;
        r = bus_tasks_new(&bus, m, e, args.user);
        if (r < 0)
                goto finish;

        /* The name is requested already: calls arriving during the load
         * are held, and answered once the tree is there. */
        r = manager_wait_loaded(m);
        if (r == -ECANCELED) {
                r = 0;
                goto finish;
        }
        if (r < 0)
                goto finish;

        r = daemon_ready(e);
        if (r < 0) {
                log_error_errno(r, "Failed to enable the watchdog: %m");
                goto finish;
        }
        (void) manager_status_line(m, line, sizeof line);
        daemon_notify_status("%s", line);

        r = sd_event_loop(e);
        if (r < 0)
                log_error_errno(r, "Stopped: %m");
        else
                log_info("Stopped");

finish:
        /* The manager first: its last commit hooks reply through the bus,
         * which flushes them when freed. The manager borrows the
         * configuration: free it before the configuration. */
        m = manager_free(m);
        bus = bus_tasks_free(bus);
        taskd_config_done(&config);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
        return run(argc, argv);
}
