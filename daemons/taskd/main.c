/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "daemon.h"
#include "daemons/taskd/conf.h"
#include "log.h"
#include "manager.h"

/*
 * callcenter-taskd: tasks with subtasks, linked to calls, on D-Bus as
 * org.callcenter.Tasks1 (DESIGN.md). Everything lives in the Manager; this
 * file only wires arguments, configuration and the loop.
 */

static const DaemonInfo info = {
        .name = "callcenter-taskd",
        .description = "Tasks with subtasks, linked to calls (org.callcenter.Tasks1).",
        .sections = taskd_config_sections,
};

static int run(int argc, char **argv) {
        _cleanup_(manager_freep) Manager *m = NULL;
        TaskdConfig config = {};
        DaemonArgs args;
        int r;

        r = daemon_parse_argv(argc, argv, &info, &args);
        if (r != 0)
                return r < 0 ? 2 : 0;

        r = taskd_config_load(&config, args.config_path);
        if (r < 0) {
                taskd_config_done(&config);
                return 1;
        }

        log_info("Starting on the %s bus", args.user ? "session" : "system");
        r = manager_new(&m, &config, args.user);
        if (r >= 0)
                r = manager_run(m);

        /* The manager borrows the configuration: free it first. */
        m = manager_free(m);
        taskd_config_done(&config);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
        log_setup("callcenter-taskd");
        return run(argc, argv);
}
