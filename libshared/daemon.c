/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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

/* The common options' getopt values; a daemon's own start at ARG_EXTRA. */
enum {
        ARG_VERSION = 0x100,
        ARG_CONFIG,
        ARG_USER,
        ARG_DUMP_CONFIG,
        ARG_EXTRA,
};

static const struct option common_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, ARG_VERSION },
        { "config", required_argument, NULL, ARG_CONFIG },
        { "user", no_argument, NULL, ARG_USER },
        { "dump-config", no_argument, NULL, ARG_DUMP_CONFIG },
};

/* "--name" of the option whose getopt value is val, for messages. */
static const char *option_name(const struct option *opts, int val, char buf[static 64]) {
        for (const struct option *o = opts; o->name; o++)
                if (o->val == val) {
                        snprintf(buf, 64, "--%s", o->name);
                        return buf;
                }
        snprintf(buf, 64, "-%c", val > 0 && val < 0x80 ? val : '?');
        return buf;
}

int daemon_parse_argv(int argc, char **argv, const DaemonInfo *info, DaemonArgs *ret) {
        _cleanup_(freep) struct option *options = NULL;
        DaemonArgs args = {};
        const char *prog = info->name;
        size_t n_common = ELEMENTSOF(common_options), n_extra = 0;
        bool dump = false;
        char namebuf[64];
        int c, end = 1;

        /* The option table is assembled at run time: the common options,
         * then the daemon's own, whose value is ARG_EXTRA + their index. */
        for (const DaemonOption *o = info->options; o && o->name; o++)
                n_extra++;
        options = calloc(n_common + n_extra + 1, sizeof(struct option));
        if (!options) {
                fprintf(stderr, "%s: out of memory\n", prog);
                return -ENOMEM;
        }
        memcpy(options, common_options, sizeof common_options);
        for (size_t k = 0; k < n_extra; k++)
                options[n_common + k] = (struct option) {
                        .name = info->options[k].name,
                        .has_arg = info->options[k].arg ? required_argument : no_argument,
                        .val = ARG_EXTRA + (int) k,
                };

        /*
         * "+": stop at the first argument that is not an option (daemons
         * take none, so it is an error below) instead of permuting, so that
         * options are acted on strictly from left to right. ":": a missing
         * argument is reported as ':', and opterr = 0 keeps getopt's own
         * messages out: every mistake gets exactly one line, ours.
         * optind = 0 is glibc's full reset, for repeated calls.
         */
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", options, NULL)) >= 0) {
                end = optind;
                switch (c) {
                case 'h':
                        daemon_help(info, stdout);
                        return 1;
                case ARG_VERSION:
                        printf("%s %s\n", prog, PACKAGE_VERSION);
                        return 1;
                case ARG_CONFIG:
                        if (*optarg == '\0') {
                                fprintf(stderr, "%s: --config needs a file name\n", prog);
                                return -EINVAL;
                        }
                        args.config_path = optarg;
                        break;
                case ARG_USER:
                        args.user = true;
                        break;
                case ARG_DUMP_CONFIG:
                        dump = true;
                        break;
                case ':':
                        fprintf(stderr, "%s: option %s needs an argument\n", prog,
                                option_name(options, optopt, namebuf));
                        return -EINVAL;
                case '?':
                        /* glibc sets optopt to the option's value when a
                         * known long option got an argument it takes none
                         * of; to the letter of an unknown short option;
                         * to 0 for an unknown (or ambiguous) long one. */
                        for (const struct option *o = options; o->name; o++)
                                if (o->val == optopt && strncmp(argv[optind - 1], "--", 2) == 0) {
                                        fprintf(stderr, "%s: option --%s takes no argument\n", prog, o->name);
                                        return -EINVAL;
                                }
                        if (optopt > 0 && optopt < 0x80)
                                fprintf(stderr, "%s: unknown option '-%c' (see --help)\n", prog, optopt);
                        else
                                fprintf(stderr, "%s: unknown option '%s' (see --help)\n", prog,
                                        argv[optind - 1]);
                        return -EINVAL;
                default: {
                        const DaemonOption *o = &info->options[c - ARG_EXTRA];

                        if (info->parse_option && info->parse_option(o->id, optarg, info->userdata) < 0)
                                return -EINVAL;
                        break;
                }
                }
        }

        /* Daemons take no positional arguments. getopt skips a "--" without
         * returning anything for it: optind then moved past the last
         * option seen. */
        if (optind < argc || optind > end) {
                fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog,
                        optind > end ? "--" : argv[optind]);
                return -EINVAL;
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

int daemon_add_deferred(sd_event *e, sd_event_source **ret, sd_event_handler_t cb, void *userdata,
                        const char *description) {
        sd_event_source *s = NULL;
        int r;

        r = sd_event_add_defer(e, &s, cb, userdata);
        if (r < 0)
                return r;
        r = sd_event_source_set_priority(s, SD_EVENT_PRIORITY_NORMAL + 50);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (r < 0) {
                sd_event_source_unref(s);
                return r;
        }
        (void) sd_event_source_set_description(s, description);
        *ret = s;
        return 0;
}
