/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * callcenterctl: the command context, the command table and the option
 * parser every command shares (DESIGN.md "Command line").
 *
 * A command is one CtlCommand row: name, handler, usage line and help. The
 * table lives in callcenterctl.c; adding a command is one row there plus its
 * handler (in tools/ctl-<name>.c). The same table drives `callcenterctl
 * --help`, `callcenterctl COMMAND --help` and the interactive shell, so a
 * command written once works in all three places.
 *
 * Exit status: 0 success, 1 refused operation (or an error the user cannot
 * fix with other arguments: daemon down, database unreachable), 2 bad usage.
 */

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "conf.h"

enum {
        CTL_EXIT_SUCCESS = 0,
        CTL_EXIT_REFUSED = 1,
        CTL_EXIT_USAGE = 2,
};

typedef enum CtlOutput {
        CTL_OUTPUT_TEXT,
        CTL_OUTPUT_JSON,
        _CTL_OUTPUT_MAX,
        _CTL_OUTPUT_INVALID = -EINVAL,
} CtlOutput;

typedef enum CtlColour {
        CTL_COLOUR_AUTO,
        CTL_COLOUR_ALWAYS,
        CTL_COLOUR_NEVER,
        _CTL_COLOUR_MAX,
        _CTL_COLOUR_INVALID = -EINVAL,
} CtlColour;

typedef struct Ctl Ctl;
typedef struct CtlCommand CtlCommand;

/*
 * A command handler. argv[0] is the command name, as for main(). Returns an
 * exit status (CTL_EXIT_*), or a negative errno for a failure it has already
 * reported, which becomes exit status 1.
 */
typedef int (*CtlVerb)(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv);

/* CtlCommand.flags */
#define CTL_COMMAND_NO_SHELL (1u << 0)  /* not offered inside the shell (shell itself) */

struct CtlCommand {
        const char *name;
        CtlVerb run;
        const char *usage;      /* what follows the name: "[TOPIC]"; "" if nothing */
        const char *summary;    /* one line for the command list */
        const char *help;       /* description and options for COMMAND --help, or NULL */
        unsigned flags;
};

struct Ctl {
        /* Global options; a command may change them with its own arguments
         * (callcenterctl events --since -1h -o json). The shell restores
         * them after every command. */
        bool user;              /* session bus instead of system bus */
        CtlOutput output;
        CtlColour colour;
        const char *config_path; /* NULL = config_default_path(); borrowed from argv */

        bool in_shell;
        const CtlCommand *commands; /* the table, for help and the shell */
        size_t n_commands;

        /* Filled by ctl_load_config(). */
        bool config_loaded;
        DatabaseConfig database;
        EventsConfig events;

        /* Opened on demand by ctl_get_bus(); closed by ctl_done(). */
        sd_bus *bus;
        /* The shell's loop while the shell runs (NULL otherwise). A command
         * run from the shell may attach long-lived sources to it (a router
         * connection printing notices between commands) but must not run
         * it: it is already dispatching. */
        sd_event *shell_event;
};

/* Option values 0x100..0x1ff are the global options; commands use letters
 * other than 'h' and 'o', or values from CTL_ARG_COMMAND upwards. */
#define CTL_ARG_COMMAND 0x200

/*
 * Called for each command-specific option. Returns 0 to go on, or a negative
 * errno after printing the problem with ctl_usage_error() (parse stops,
 * exit 2).
 */
typedef int (*CtlOptionHandler)(Ctl *ctl, int opt, const char *arg, void *userdata);

/*
 * Parse argv (argv[0] = the command name) with the global options (--user,
 * -o/--output, --config, --color, -h/--help) merged into options/shortopts
 * (both may be NULL). Options and arguments may be mixed. Returns the index
 * of the first positional argument (> 0); 0 when --help was printed (the
 * command returns CTL_EXIT_SUCCESS); -EINVAL after reporting a usage error
 * (the command returns CTL_EXIT_USAGE). CTL_PARSE_OR_RETURN() does that.
 */
int ctl_parse_options(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv,
                      const struct option *options, const char *shortopts,
                      CtlOptionHandler handler, void *userdata);

#define CTL_PARSE_OR_RETURN(r)                                                  \
        do {                                                                    \
                if ((r) <= 0)                                                   \
                        return (r) == 0 ? CTL_EXIT_SUCCESS : CTL_EXIT_USAGE;    \
        } while (0)

/*
 * Report bad usage of cmd (NULL = the program itself) on stderr:
 * "callcenterctl CMD: MESSAGE" and a hint to --help. Returns CTL_EXIT_USAGE.
 */
int ctl_usage_error(const Ctl *ctl, const CtlCommand *cmd, const char *format, ...)
        __attribute__((format(printf, 3, 4)));

/* Report a failure on stderr: "callcenterctl: MESSAGE". Returns CTL_EXIT_REFUSED. */
int ctl_error(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* Print the command list / one command's help on f. */
void ctl_print_help(const Ctl *ctl, FILE *f);
void ctl_print_command_help(const Ctl *ctl, const CtlCommand *cmd, FILE *f);

/* Find a command by name; NULL when there is none. */
const CtlCommand *ctl_find_command(const Ctl *ctl, const char *name);

/*
 * Look argv[0] up and run it. Unknown names are a usage error. Returns the
 * command's exit status (negative errnos already mapped to 1).
 */
int ctl_run_command(Ctl *ctl, int argc, char **argv);

/*
 * Load [database] and [events] from ctl->config_path (or the default file),
 * once. config_load() applies the environment overrides, which is how a
 * second terminal after ./dev.sh up needs no file at all:
 * CALLCENTER_DATABASE_URL, CALLCENTER_EVENTS ([events] subscribe),
 * CALLCENTER_EVENTS_PUBLISH ([events] publish). Returns 0, or a negative
 * errno after reporting it.
 */
int ctl_load_config(Ctl *ctl);

/*
 * The bus the daemons are on: the session bus with --user, else the system
 * bus. Opened once and kept; the reference stays owned by ctl. Returns 0 or a
 * negative errno after reporting it.
 */
int ctl_get_bus(Ctl *ctl, sd_bus **ret);

/* Release what ctl holds (bus, configuration). The struct can be reused. */
void ctl_done(Ctl *ctl);

/* callcenterctl help [COMMAND]: the command list, or one command's help. */
int verb_help(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv);

/* The text after "-o": "text" or "json". */
CtlOutput ctl_output_from_string(const char *s);
