/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What every daemon's main() does the same way: the command line
 * (--config, --user, --help, --version, --dump-config), signals on the
 * sd-event loop, sd_notify(), socket activation and the bus connection.
 *
 * A typical run():
 *
 *     r = daemon_parse_argv(argc, argv, &info, &args);
 *     if (r != 0)
 *             return r < 0 ? 2 : 0;
 *     r = config_load(args.config_path, sections);
 *     ...
 *     r = daemon_setup_signals(e, on_sigterm, on_sighup, m);
 *     r = daemon_ready(e);
 *     r = sd_event_loop(e);
 */

#include <stdbool.h>
#include <stdio.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "cleanup.h"
#include "conf.h"

/* A daemon-specific option, shown in --help and handed to parse_option. */
typedef struct DaemonOption {
        const char *name;           /* long name without "--" */
        const char *arg;            /* argument name for --help ("N"), NULL = takes none */
        const char *help;           /* one line */
        int id;                     /* passed to parse_option */
} DaemonOption;

typedef struct DaemonInfo {
        const char *name;           /* "callcenter-routerd": --help, --version */
        const char *description;    /* one line for --help */
        /*
         * The configuration sections the daemon reads, {NULL}-terminated;
         * --dump-config prints their commented example. Only names and
         * items are used here, base may be NULL.
         */
        const ConfigSection *sections;
        const DaemonOption *options; /* terminated by name NULL; may be NULL */
        /*
         * Called for each option of .options with its id and argument
         * (NULL when it takes none). Return 0, or a negative errno after
         * printing a one-line error to stderr to fail the parse.
         */
        int (*parse_option)(int id, const char *arg, void *userdata);
        void *userdata;
} DaemonInfo;

typedef struct DaemonArgs {
        const char *config_path;    /* --config, borrowed from argv; NULL = default */
        bool user;                  /* --user: session bus instead of system bus */
} DaemonArgs;

/*
 * Parse argv with getopt_long(). Recognises --config=PATH and --config
 * PATH, --user, -h/--help, --version and --dump-config plus info->options
 * (a long option may be shortened to an unambiguous prefix, as getopt_long
 * allows); options act from left to right (--help stops at once);
 * positional arguments, "--" and unknown options are errors. Resets
 * getopt's global state, so it may be called again.
 * Returns 0 to go on (*ret filled), 1 when --help, --version or
 * --dump-config already printed to stdout (exit 0), or -EINVAL after one
 * line on stderr (exit 2). *ret is untouched unless 0 is returned.
 */
int daemon_parse_argv(int argc, char **argv, const DaemonInfo *info, DaemonArgs *ret);

/* Print the --help text of info to f. */
void daemon_help(const DaemonInfo *info, FILE *f);

/*
 * Block SIGTERM, SIGINT and SIGHUP and add sd-event sources for them:
 * SIGTERM and SIGINT call on_term (NULL: sd_event_exit(e, 0)), SIGHUP calls
 * on_hup (NULL: logged and ignored). Call before any thread exists.
 * Returns 0 or a negative errno. The sources are floating (owned by e).
 */
int daemon_setup_signals(sd_event *e, sd_event_signal_handler_t on_term,
                         sd_event_signal_handler_t on_hup, void *userdata);

/* sd_notify("STATUS=...") with a printf format; newlines become spaces.
 * Does nothing outside systemd. */
void daemon_notify_status(const char *fmt, ...) _printf_(1, 2);

/*
 * Turn on the sd-event watchdog (pings WATCHDOG=1 when $WATCHDOG_USEC is
 * set) and send READY=1 with STATUS=Ready. Call once serving; call again
 * after a reload (see daemon_notify_reloading()). Returns 0 or a negative
 * errno from sd-event.
 */
int daemon_ready(sd_event *e);

/* RELOADING=1 with MONOTONIC_USEC, as Type=notify-reload expects; follow
 * with daemon_ready() when done. */
void daemon_notify_reloading(void);

/* STOPPING=1 plus STATUS, at the start of a clean shutdown. */
void daemon_notify_stopping(void);

/*
 * Find a listening socket passed by systemd socket activation.
 * name: the FileDescriptorName= to look for, or NULL for the first socket
 * (a socket unit's default name is its unit name, so with one socket NULL is
 * simplest). family (AF_UNSPEC = any) and type (SOCK_STREAM ..., 0 = any)
 * are checked, and the socket must be listening for SOCK_STREAM.
 * The fd gets FD_CLOEXEC; it stays owned by the caller.
 * Returns the fd, -ENOENT when none was passed (bind it yourself), or
 * -EINVAL when the named fd is not such a socket.
 */
int daemon_listen_fd(const char *name, int family, int type);

/* Connect to the session bus when user, else to the system bus. Returns 0
 * and a new reference in *ret, or a negative errno (logged at debug). */
int daemon_bus_open(bool user, sd_bus **ret);

/*
 * Work for "the end of this round": a defer source, created off, at a
 * priority below every normal source. Enabled with SD_EVENT_ONESHOT it
 * runs once the loop has handled what was pending (all the connections
 * that had input, say), so that their changes share one flush, and then
 * at once, without waiting for another event. (A post source enabled from
 * a callback would instead wait for the next event to come: post sources
 * are marked pending before a callback runs, not after.) Returns 0 or a
 * negative errno.
 */
int daemon_add_deferred(sd_event *e, sd_event_source **ret, sd_event_handler_t cb, void *userdata,
                        const char *description);
