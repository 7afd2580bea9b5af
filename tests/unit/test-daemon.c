/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "tap.h"

static int extra_level = -1;
static bool extra_flag;

static int parse_extra(int id, const char *arg, void *userdata) {
        if (id == 1) {
                if (!arg || strcmp(arg, "bad") == 0) {
                        fprintf(stderr, "bad level\n");
                        return -EINVAL;
                }
                extra_level = atoi(arg);
        } else if (id == 2)
                extra_flag = true;
        return 0;
}

static const DaemonOption extra_options[] = {
        { .name = "level", .arg = "N", .help = "Set the level", .id = 1 },
        { .name = "flag", .help = "Set the flag", .id = 2 },
        {},
};

static const ConfigSection sections[] = {
        { "database", config_database_items, NULL },
        { "events", config_events_items, NULL },
        {},
};

static const DaemonInfo info = {
        .name = "callcenter-test",
        .description = "A daemon for the unit test.",
        .sections = sections,
        .options = extra_options,
        .parse_option = parse_extra,
};

/*
 * argv after the program name; what daemon_parse_argv() returns; on 0 the
 * config path, --user, and what reached parse_extra() (level 0 = not set);
 * err, when set, a piece of the one line on stderr.
 */
static const struct {
        const char *argv[5];
        int r;
        const char *config;
        bool user;
        int level;
        bool flag;
        const char *err;
} cases[] = {
        { { NULL }, 0, NULL, false },
        { { "--config=/etc/x.conf" }, 0, "/etc/x.conf", false },
        { { "--config", "/etc/y.conf", "--user" }, 0, "/etc/y.conf", true },
        { { "--user" }, 0, NULL, true },
        { { "--level=3", "--flag" }, 0, NULL, false, 3, true },
        { { "--level", "4" }, 0, NULL, false, 4 },
        { { "--help" }, 1, NULL, false },
        { { "-h" }, 1, NULL, false },
        { { "--version" }, 1, NULL, false },
        { { "--dump-config" }, 1, NULL, false },
        { { "--config" }, -EINVAL, NULL, false },
        { { "--config=" }, -EINVAL, NULL, false },
        { { "--user=yes" }, -EINVAL, NULL, false },
        { { "--users" }, -EINVAL, NULL, false },
        { { "--nope" }, -EINVAL, NULL, false },
        { { "-x" }, -EINVAL, NULL, false },
        { { "positional" }, -EINVAL, NULL, false },
        { { "--" }, -EINVAL, NULL, false },
        { { "--level" }, -EINVAL, NULL, false },
        { { "--level=bad" }, -EINVAL, NULL, false },
        { { "--flag=1" }, -EINVAL, NULL, false },
        { { "--dump-config", "--nope" }, -EINVAL, NULL, false },
        /* Left to right: --help acts at once, a mistake before it wins. */
        { { "--help", "--nope" }, 1, NULL, false },
        { { "--nope", "--help" }, -EINVAL, NULL, false, .err = "unknown option '--nope'" },
        { { "--help", "positional" }, 1, NULL, false },
        { { "positional", "--help" }, -EINVAL, NULL, false, .err = "unexpected argument 'positional'" },
        { { "--dump-config", "--help" }, 1, NULL, false },
        /* The last --config wins; a separate value is taken verbatim. */
        { { "--config=/a", "--config=/b" }, 0, "/b", false },
        { { "--config", "--user" }, 0, "--user", false },
        { { "--user", "--level=5", "--config", "/c" }, 0, "/c", true, 5 },
        /* getopt_long's unambiguous prefixes. */
        { { "--us" }, 0, NULL, true },
        { { "--conf=/z", "--fl" }, 0, "/z", false, 0, true },
        /* No positional arguments, not even after "--". */
        { { "--config=/x", "--" }, -EINVAL, NULL, false, .err = "unexpected argument '--'" },
        { { "--user", "--", "extra" }, -EINVAL, NULL, false, .err = "unexpected argument '--'" },
        { { "-" }, -EINVAL, NULL, false, .err = "unexpected argument '-'" },
        { { "--user", "x" }, -EINVAL, NULL, false, .err = "unexpected argument 'x'" },
        /* Messages name the option as written in --help. */
        { { "--help=1" }, -EINVAL, NULL, false, .err = "option --help takes no argument" },
        { { "--version=2" }, -EINVAL, NULL, false, .err = "option --version takes no argument" },
        { { "--dump-config=x" }, -EINVAL, NULL, false, .err = "option --dump-config takes no argument" },
        { { "--user", "--config" }, -EINVAL, NULL, false, .err = "option --config needs an argument" },
        { { "--level" }, -EINVAL, NULL, false, .err = "option --level needs an argument" },
        { { "--USER" }, -EINVAL, NULL, false, .err = "unknown option '--USER'" },
        { { "-u" }, -EINVAL, NULL, false, .err = "unknown option '-u'" },
};

static char out_path[] = "/tmp/test-daemon-out-XXXXXX";
static char err_path[] = "/tmp/test-daemon-err-XXXXXX";

static char *slurp(const char *path) {
        static char buf[2][8192];
        static int k;
        FILE *f = fopen(path, "re");
        size_t n;

        k = !k;
        n = f ? fread(buf[k], 1, sizeof buf[k] - 1, f) : 0;
        buf[k][n] = '\0';
        if (f)
                fclose(f);
        return buf[k];
}

/* Run daemon_parse_argv with stdout and stderr captured into files. */
static int parse_captured(int argc, char **argv, DaemonArgs *args) {
        int so, se, fo, fe, r;

        fflush(stdout);
        fflush(stderr);
        so = dup(STDOUT_FILENO);
        se = dup(STDERR_FILENO);
        fo = open(out_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        fe = open(err_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        dup2(fo, STDOUT_FILENO);
        dup2(fe, STDERR_FILENO);
        close(fo);
        close(fe);

        r = daemon_parse_argv(argc, argv, &info, args);

        fflush(stdout);
        fflush(stderr);
        dup2(so, STDOUT_FILENO);
        dup2(se, STDERR_FILENO);
        close(so);
        close(se);
        return r;
}

static unsigned hups;

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        hups++;
        /* Deliver the SIGTERM only once the SIGHUP was seen, so that the
         * order is deterministic. */
        kill(getpid(), SIGTERM);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), -ETIMEDOUT);
}

int main(void) {
        int fd;

        fd = mkstemp(out_path);
        close(fd);
        fd = mkstemp(err_path);
        close(fd);

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char *argv[7] = { (char *) "callcenter-test" };
                char desc[256] = "";
                DaemonArgs args = { .config_path = "untouched" };
                const char *err;
                int argc = 1, r;

                for (size_t k = 0; cases[i].argv[k]; k++) {
                        argv[argc++] = (char *) cases[i].argv[k];
                        strncat(desc, " ", sizeof desc - strlen(desc) - 1);
                        strncat(desc, cases[i].argv[k], sizeof desc - strlen(desc) - 1);
                }
                extra_level = -1;
                extra_flag = false;

                r = parse_captured(argc, argv, &args);
                err = slurp(err_path);
                is_int(r, cases[i].r, "argv '%s' returns %d", desc, cases[i].r);
                if (cases[i].r == 0) {
                        is_str(args.config_path, cases[i].config, "argv '%s' config path", desc);
                        is_int(args.user, cases[i].user, "argv '%s' user", desc);
                        is_int(extra_level, cases[i].level ? cases[i].level : -1, "argv '%s' level", desc);
                        is_int(extra_flag, cases[i].flag, "argv '%s' flag", desc);
                } else {
                        is_str(args.config_path, "untouched", "argv '%s' leaves *ret alone", desc);
                }
                if (cases[i].r < 0)
                        ok(err[0] && strchr(err, '\n') == err + strlen(err) - 1,
                           "argv '%s' prints exactly one line on stderr: %.*s", desc,
                           (int) strcspn(err, "\n"), err);
                else
                        is_str(err, "", "argv '%s' prints nothing on stderr", desc);
                if (cases[i].err)
                        ok(strstr(err, cases[i].err) != NULL, "argv '%s' says \"%s\"", desc, cases[i].err);
        }

        {
                char *argv[] = { (char *) "x", (char *) "--level=3", (char *) "--flag" };
                DaemonArgs args;

                extra_level = -1;
                is_int(parse_captured(3, argv, &args), 0, "extra options parse");
                is_int(extra_level, 3, "extra option with argument reached the callback");
                is_int(extra_flag, 1, "extra flag reached the callback");
        }
        {
                char *argv[] = { (char *) "x", (char *) "--help" };
                DaemonArgs args;
                const char *out;

                parse_captured(2, argv, &args);
                out = slurp(out_path);
                ok(strstr(out, "Usage: callcenter-test [OPTIONS...]") != NULL, "help: usage line");
                ok(strstr(out, "A daemon for the unit test.") != NULL, "help: description");
                ok(strstr(out, "--config=PATH") && strstr(out, "--user") && strstr(out, "--version"),
                   "help: common options");
                ok(strstr(out, "--level=N") && strstr(out, "Set the level") && strstr(out, "--flag"),
                   "help: extra options");
        }
        {
                char *argv[] = { (char *) "x", (char *) "--version" };
                DaemonArgs args;

                parse_captured(2, argv, &args);
                is_str(slurp(out_path), "callcenter-test " PACKAGE_VERSION "\n", "version line");
        }
        {
                char *argv[] = { (char *) "x", (char *) "--dump-config" };
                DaemonArgs args;
                const char *out;

                parse_captured(2, argv, &args);
                out = slurp(out_path);
                ok(strstr(out, "[database]\n") && strstr(out, "#url=postgresql:///callcenter\n") &&
                           strstr(out, "[events]\n") && strstr(out, "#hwm=100000\n"),
                   "dump-config prints the example of the daemon's sections");
        }

        /* Socket activation. */
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        is_int(daemon_listen_fd(NULL, AF_UNSPEC, SOCK_STREAM), -ENOENT, "no fds passed: -ENOENT");
        {
                struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                int s = socket(AF_INET, SOCK_STREAM, 0), flags;
                char pid[32];

                if (bind(s, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(s, 1) < 0)
                        diag("bind/listen failed: %m");
                /* Put the socket where systemd would: fd 3. */
                if (s != SD_LISTEN_FDS_START) {
                        dup2(s, SD_LISTEN_FDS_START);
                        close(s);
                }
                snprintf(pid, sizeof pid, "%d", (int) getpid());
                setenv("LISTEN_PID", pid, 1);
                setenv("LISTEN_FDS", "1", 1);
                setenv("LISTEN_FDNAMES", "router", 1);

                is_int(daemon_listen_fd("router", AF_INET, SOCK_STREAM), SD_LISTEN_FDS_START,
                       "named listening socket found");
                flags = fcntl(SD_LISTEN_FDS_START, F_GETFD);
                ok(flags >= 0 && (flags & FD_CLOEXEC), "the fd got FD_CLOEXEC");
                is_int(daemon_listen_fd(NULL, AF_UNSPEC, 0), SD_LISTEN_FDS_START,
                       "NULL name takes the first socket");
                is_int(daemon_listen_fd("other", AF_INET, SOCK_STREAM), -ENOENT,
                       "another name is -ENOENT");
                is_int(daemon_listen_fd("router", AF_UNIX, SOCK_STREAM), -EINVAL,
                       "wrong family for a named socket is -EINVAL");
                is_int(daemon_listen_fd(NULL, AF_INET, SOCK_DGRAM), -ENOENT,
                       "wrong type with no name is -ENOENT");
                setenv("LISTEN_PID", "1", 1);
                is_int(daemon_listen_fd(NULL, AF_UNSPEC, 0), -ENOENT,
                       "fds meant for another pid are ignored");
                close(SD_LISTEN_FDS_START);
        }

        /* Signals on the loop: SIGHUP reaches on_hup, SIGTERM exits 0. */
        {
                sd_event *e = NULL;
                int r;

                r = sd_event_new(&e);
                is_int(r, 0, "sd_event_new");
                is_int(daemon_setup_signals(e, NULL, on_hup, NULL), 0, "daemon_setup_signals");
                r = sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, 5 * 1000000, 0, on_timeout, NULL);
                is_int(r, 0, "safety timeout armed");
                kill(getpid(), SIGHUP);
                r = sd_event_loop(e);
                is_int(r, 0, "SIGTERM with the default handler exits the loop with 0");
                is_int(hups, 1, "SIGHUP reached its handler once");
                sd_event_unref(e);
        }

        /* Outside systemd these must be harmless no-ops. */
        unsetenv("NOTIFY_SOCKET");
        daemon_notify_status("status with\nnewline %d", 1);
        daemon_notify_reloading();
        daemon_notify_stopping();
        {
                sd_event *e = NULL;

                sd_event_new(&e);
                is_int(daemon_ready(e), 0, "daemon_ready without systemd");
                sd_event_unref(e);
        }

        unlink(out_path);
        unlink(err_path);
        return done_testing();
}
