/* SPDX-License-Identifier: MIT */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "ctl-events.h"
#include "ctl-monitor.h"
#include "ctl-router.h"
#include "ctl-shell.h"
#include "ctl-task.h"
#include "ctl.h"
#include "log.h"

/*
 * The command table: one row per command. Keep rows in the order the help
 * should list them. A command also needs --help text (its .help) and, if it
 * must not run inside the shell, CTL_COMMAND_NO_SHELL.
 */
static const CtlCommand commands[] = {
        { "call", verb_router_call, "ID [--queue NAME]", "Place an inbound call", ctl_router_call_help, 0 },
        { "answer", verb_router_answer, "OP", "The ringing operator answers its call", ctl_router_call_help, 0 },
        { "reject", verb_router_reject, "OP", "The ringing operator rejects its call", ctl_router_call_help, 0 },
        { "hangup", verb_router_hangup, "ID", "The caller hangs up", ctl_router_call_help, 0 },
        { "operators", verb_router_operators, "", "List the operators", ctl_router_list_help, 0 },
        { "calls", verb_router_calls, "", "List the calls, queue order first", ctl_router_list_help, 0 },
        { "status", verb_router_status, "", "Show the router's state", ctl_router_list_help, 0 },
        { "stats", verb_router_stats, "", "Show the router's statistics", ctl_router_list_help, 0 },
        { "operator", verb_router_operator, "add|rm OP | status OP available|paused|offline | queues OP [QUEUE...]",
          "Add or remove an operator, set its status or its queues", ctl_router_operator_help, 0 },
        { "monitor", verb_monitor, "[TOPIC...]", "Print live events (all, or those whose topic starts with TOPIC)",
          ctl_monitor_help, 0 },
        { "events", verb_events, "--since TIME [--until TIME] [--topic PREFIX]",
          "Replay archived events from PostgreSQL", ctl_events_help, 0 },
        { "task", verb_task, "add TITLE [--parent ID] [--call ID] | done ID | reopen ID | rm ID | tree [ID]",
          "Tasks and subtasks (org.callcenter.Tasks1)", ctl_task_help, 0 },
        { "help", verb_help, "[COMMAND]", "Show this list, or a command's help", NULL, 0 },
        { "shell", verb_shell, "", "Interactive shell, prompt '(callcenter) '", ctl_shell_help,
          CTL_COMMAND_NO_SHELL },
};

enum {
        ARG_VERSION = CTL_ARG_COMMAND,
};

static int parse_main_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
        if (opt == ARG_VERSION) {
                *(bool *) userdata = true;
                return 0;
        }
        return -EINVAL;
}

int main(int argc, char **argv) {
        static const struct option main_options[] = {
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        Ctl ctl = {
                .commands = commands,
                .n_commands = ELEMENTSOF(commands),
        };
        bool version = false;
        int idx, r;

        log_setup("callcenterctl");
        log_set_console(true);
        /* A closed pipe is an ordinary end for a CLI (monitor | head): see
         * it as EPIPE from write(), not as a signal that kills us. */
        (void) signal(SIGPIPE, SIG_IGN);

        idx = ctl_parse_options(&ctl, NULL, argc, argv, main_options, NULL, parse_main_option, &version);
        if (idx == 0)
                return CTL_EXIT_SUCCESS;
        if (idx < 0)
                return CTL_EXIT_USAGE;
        if (version) {
                puts("callcenterctl " PACKAGE_VERSION);
                return CTL_EXIT_SUCCESS;
        }
        if (idx >= argc) {
                ctl_usage_error(&ctl, NULL, "missing command");
                return CTL_EXIT_USAGE;
        }

        r = ctl_run_command(&ctl, argc - idx, argv + idx);
        ctl_done(&ctl);
        return r;
}
