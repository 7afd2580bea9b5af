/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "log.h"
#include "time-util.h"

void daemon_help(const DaemonInfo *info, FILE *f) {
        fprintf(f,
                "Usage: %s [OPTIONS...]\n\n"
                "%s\n\n"
                "Options:\n"
                "  -h --help               Show this help\n"
                "     --version            Show the version\n"
                "     --config=PATH        Configuration file (default: %s)\n"
                "     --user               Use the session bus instead of the system bus\n"
                "     --dump-config        Print the configuration keys with their defaults\n",
                info->name, info->description ? info->description : "", config_default_path());

        for (const DaemonOption *o = info->options; o && o->name; o++) {
                char left[64];

                snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? "=" : "",
                         o->arg ? o->arg : "");
                fprintf(f, "     %-20s %s\n", left, o->help ? o->help : "");
        }

        fprintf(f,
                "\nEnvironment: CALLCENTER_DATABASE_URL overrides [database] url;\n"
                "CALLCENTER_LOG_LEVEL sets the log level (debug ... emerg).\n");
}

/*
 * Match "--name", "--name=value" and "--name value" at argv[*i]. Returns
 * 1 on a match (advancing *i past a separate value), 0 when arg is another
 * option, -EINVAL when the value is missing or not wanted.
 */
static int match_option(int argc, char **argv, int *i, const char *prog, const char *name,
                        bool has_arg, const char **ret_value) {
        const char *a = argv[*i] + 2;
        size_t l = strlen(name);

        if (strncmp(a, name, l) != 0 || (a[l] != '\0' && a[l] != '='))
                return 0;

        if (!has_arg) {
                if (a[l] == '=') {
                        fprintf(stderr, "%s: option --%s takes no argument\n", prog, name);
                        return -EINVAL;
                }
                *ret_value = NULL;
                return 1;
        }
        if (a[l] == '=') {
                *ret_value = a + l + 1;
                return 1;
        }
        if (*i + 1 >= argc) {
                fprintf(stderr, "%s: option --%s needs an argument\n", prog, name);
                return -EINVAL;
        }
        *ret_value = argv[++*i];
        return 1;
}

int daemon_parse_argv(int argc, char **argv, const DaemonInfo *info, DaemonArgs *ret) {
        DaemonArgs args = {};
        const char *prog = info->name;
        bool dump = false;
        int r;

        /*
         * A hand-written loop rather than getopt_long(): the option set is
         * assembled from info at run time, getopt's global state would make
         * repeated calls (the unit tests) fragile, and we want exactly one
         * line on stderr for every mistake.
         */
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = NULL;
                bool matched = false;

                if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                        daemon_help(info, stdout);
                        return 1;
                }
                if (strcmp(a, "--version") == 0) {
                        printf("%s %s\n", prog, PACKAGE_VERSION);
                        return 1;
                }
                if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
                        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog, a);
                        return -EINVAL;
                }

                r = match_option(argc, argv, &i, prog, "config", true, &v);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if (*v == '\0') {
                                fprintf(stderr, "%s: --config needs a file name\n", prog);
                                return -EINVAL;
                        }
                        args.config_path = v;
                        continue;
                }
                r = match_option(argc, argv, &i, prog, "user", false, &v);
                if (r < 0)
                        return r;
                if (r > 0) {
                        args.user = true;
                        continue;
                }
                r = match_option(argc, argv, &i, prog, "dump-config", false, &v);
                if (r < 0)
                        return r;
                if (r > 0) {
                        dump = true;
                        continue;
                }

                for (const DaemonOption *o = info->options; o && o->name; o++) {
                        r = match_option(argc, argv, &i, prog, o->name, o->arg != NULL, &v);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                continue;
                        if (info->parse_option) {
                                r = info->parse_option(o->id, v, info->userdata);
                                if (r < 0)
                                        return -EINVAL;
                        }
                        matched = true;
                        break;
                }
                if (!matched) {
                        fprintf(stderr, "%s: unknown option '%s' (see --help)\n", prog, a);
                        return -EINVAL;
                }
        }

        /* --dump-config waits until the whole line parsed, so that a typo
         * later on is still reported. */
        if (dump) {
                fprintf(stdout,
                        "# Configuration of %s, with every key at its default.\n"
                        "# Read from %s and %s.d/*.conf.\n\n",
                        prog, config_default_path(), config_default_path());
                config_dump_example(info->sections, stdout);
                return 1;
        }

        *ret = args;
        return 0;
}

static int on_default_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_debug("Received signal %u, exiting.", si->ssi_signo);
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int on_default_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_debug("Received SIGHUP, nothing to reload, ignoring.");
        return 0;
}

int daemon_setup_signals(sd_event *e, sd_event_signal_handler_t on_term,
                         sd_event_signal_handler_t on_hup, void *userdata) {
        sigset_t mask;
        int r;

        /* sd-event reads signals from a signalfd, which only sees blocked
         * signals; unblocked, SIGTERM would kill us before the loop could
         * flush to PostgreSQL. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;

        r = sd_event_add_signal(e, NULL, SIGTERM, on_term ? on_term : on_default_term, userdata);
        if (r < 0)
                return r;
        r = sd_event_add_signal(e, NULL, SIGINT, on_term ? on_term : on_default_term, userdata);
        if (r < 0)
                return r;
        r = sd_event_add_signal(e, NULL, SIGHUP, on_hup ? on_hup : on_default_hup, userdata);
        if (r < 0)
                return r;
        return 0;
}

void daemon_notify_status(const char *fmt, ...) {
        char buf[512];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);

        /* The notify protocol is newline-separated KEY=VALUE pairs: a
         * newline inside the status would start a bogus assignment. */
        for (char *p = buf; *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = ' ';

        (void) sd_notifyf(false, "STATUS=%s", buf);
}

int daemon_ready(sd_event *e) {
        int r;

        /* A no-op when the unit has no WatchdogSec=; otherwise sd-event
         * pings at half the interval for as long as the loop turns, so a
         * wedged loop is what gets us restarted. */
        r = sd_event_set_watchdog(e, true);
        if (r < 0)
                return r;
        (void) sd_notify(false, "READY=1\nSTATUS=Ready.");
        return 0;
}

void daemon_notify_reloading(void) {
        (void) sd_notifyf(false, "RELOADING=1\nSTATUS=Reloading configuration...\nMONOTONIC_USEC=%llu",
                          (unsigned long long) now_usec(CLOCK_MONOTONIC));
}

void daemon_notify_stopping(void) {
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down...");
}

int daemon_listen_fd(const char *name, int family, int type) {
        _cleanup_(strv_freep) char **names = NULL;
        int n;

        /* The environment is left in place (unset_environment = false) so
         * that a daemon may look up several named sockets in turn. */
        n = sd_listen_fds_with_names(false, &names);
        if (n < 0)
                return n;
        if (n == 0)
                return -ENOENT;

        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i, r;

                if (name && (!names || !names[i] || strcmp(names[i], name) != 0))
                        continue;

                r = sd_is_socket(fd, family, type, type == SOCK_STREAM ? 1 : -1);
                if (r < 0)
                        return r;
                if (r == 0) {
                        log_debug("Passed fd %d (%s) is not the expected socket.", fd,
                                  names && names[i] ? names[i] : "?");
                        if (name)
                                return -EINVAL;
                        continue;
                }

                /* systemd passes fds without CLOEXEC; a child we spawn
                 * must not keep our listening socket open. */
                r = fcntl(fd, F_GETFD);
                if (r < 0 || fcntl(fd, F_SETFD, r | FD_CLOEXEC) < 0)
                        return -errno;
                return fd;
        }
        return -ENOENT;
}

int daemon_bus_open(bool user, sd_bus **ret) {
        sd_bus *bus = NULL;
        int r;

        r = user ? sd_bus_open_user(&bus) : sd_bus_open_system(&bus);
        if (r < 0)
                return log_debug_errno(r, "Failed to connect to the %s bus: %m",
                                       user ? "session" : "system");
        *ret = bus;
        return 0;
}
