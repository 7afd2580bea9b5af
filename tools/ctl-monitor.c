/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "cleanup.h"
#include "ctl-monitor.h"
#include "ctl-output.h"
#include "log.h"
#include "sub.h"

const char ctl_monitor_help[] =
        "Print every event published on the hub as it arrives, one line each:\n"
        "  TIME TOPIC DATA      (local time, the topic, the event's data as compact JSON)\n"
        "With -o json, one envelope per line with its \"topic\" added.\n"
        "TOPIC is a prefix (\"router\", \"router.call.\", \"tasks.task.done\"); several may be\n"
        "given; none means every event. The hub is $CALLCENTER_EVENTS, else\n"
        "[events] subscribe of the configuration (default tcp://127.0.0.1:5556).\n"
        "Stops on Ctrl-C, SIGTERM, or when the reader of its output goes away.\n"
        "\n"
        "Options:\n"
        "  -n, --count=N   Exit after printing N events\n";

typedef struct Monitor {
        const Ctl *ctl;
        sd_event *event;
        uint64_t printed, max;
        RateLimit bad_ratelimit;
        bool done;
} Monitor;

static void monitor_stop(Monitor *m, int code) {
        if (m->done)
                return;
        m->done = true;
        (void) sd_event_exit(m->event, code);
}

static int on_event(EventSubscriber *s, const char *topic, size_t topic_len, const char *body,
                    size_t body_len, void *userdata) {
        Monitor *m = userdata;
        int r;

        /* The subscriber drains a whole slice per wake-up: after --count or
         * a broken pipe, drop the rest of the slice silently. */
        if (m->done)
                return 0;

        r = ctl_print_event(m->ctl, topic, topic_len, body, body_len);
        if (r == -EBADMSG) {
                /* Somebody published garbage: say so, but do not let a
                 * flood of it bury the terminal. */
                if (ratelimit_below(&m->bad_ratelimit))
                        fprintf(stderr, "callcenterctl: ignoring a malformed event on topic '%.*s' (%zu bytes)\n",
                                (int) (topic_len > 200 ? 200 : topic_len), topic, body_len);
                return 0;
        }
        /* One flush per event: a monitor is watched live, often through
         * grep, so nothing may sit in a buffer. */
        if (r >= 0)
                r = ctl_flush();
        if (r == -EPIPE) {
                monitor_stop(m, 0);
                return 0;
        }
        if (r < 0) {
                ctl_error("cannot write the output: %s", strerror(-r));
                monitor_stop(m, r);
                return 0;
        }

        if (m->max > 0 && ++m->printed >= m->max)
                monitor_stop(m, 0);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        /* The terminal echoed "^C" where the cursor was: end that line so
         * that the next prompt (shell's or ours) starts clean. */
        if (si->ssi_signo == SIGINT && isatty(STDERR_FILENO) > 0)
                fputc('\n', stderr);
        monitor_stop(userdata, 0);
        return 0;
}

/* The write end of a pipe reports EPOLLERR once the reader has gone; this
 * ends an idle monitor at once instead of at the next event. */
static int on_stdout_hangup(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        monitor_stop(userdata, 0);
        return 0;
}

static int parse_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
        Monitor *m = userdata;
        char *end;

        switch (opt) {
        case 'n':
                errno = 0;
                m->max = strtoull(arg, &end, 10);
                if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' || m->max == 0) {
                        ctl_usage_error(ctl, ctl_find_command(ctl, "monitor"),
                                        "invalid --count '%s': expected a positive number", arg);
                        return -EINVAL;
                }
                return 0;
        }
        return -EINVAL;
}

int verb_monitor(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv) {
        static const struct option options[] = {
                { "count", required_argument, NULL, 'n' },
                {},
        };
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        EventSubscriber *sub = NULL;
        Monitor m = {
                .ctl = ctl,
                .bad_ratelimit = { .interval_usec = 10 * USEC_PER_SEC, .burst = 5 },
        };
        sigset_t mask, saved;
        void *zctx = NULL;
        int r, idx, code = 0;

        idx = ctl_parse_options(ctl, cmd, argc, argv, options, "n:", parse_option, &m);
        CTL_PARSE_OR_RETURN(idx);

        /* Each argument is a prefix; an empty one would mean "everything"
         * and is surely a quoting mistake. */
        for (int i = idx; i < argc; i++)
                if (argv[i][0] == '\0')
                        return ctl_usage_error(ctl, cmd, "empty TOPIC; omit it to see every event");

        r = ctl_load_config(ctl);
        if (r < 0)
                return CTL_EXIT_REFUSED;
        if (!ctl->events.subscribe || ctl->events.subscribe[0] == '\0')
                return ctl_error("no events endpoint: set [events] subscribe or $CALLCENTER_EVENTS");

        /* A loop of our own even inside the shell: the shell's loop is
         * dispatching the line that started us and cannot be re-entered. */
        r = sd_event_new(&event);
        if (r < 0)
                return ctl_error("cannot create an event loop: %s", strerror(-r));
        m.event = event;

        /* signalfd needs the signals blocked; the shell has them blocked
         * already, a plain run has not. Restored on the way out. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, &saved) < 0)
                return ctl_error("cannot block signals: %m");
        if (sd_event_add_signal(event, NULL, SIGINT, on_signal, &m) < 0 ||
            sd_event_add_signal(event, NULL, SIGTERM, on_signal, &m) < 0) {
                code = ctl_error("cannot watch signals");
                goto finish;
        }
        /* Not every stdout can be watched (a regular file cannot): then a
         * closed reader is noticed at the next write instead. */
        (void) sd_event_add_io(event, NULL, STDOUT_FILENO, 0, on_stdout_hangup, &m);

        zctx = zmq_ctx_new();
        if (!zctx) {
                code = ctl_error("cannot create a ZeroMQ context: %s", zmq_strerror(zmq_errno()));
                goto finish;
        }
        /* Never hang in zmq_ctx_term() on unsent subscriptions. */
        (void) zmq_ctx_set(zctx, ZMQ_BLOCKY, 0);

        r = event_subscriber_new(&sub, event, zctx, ctl->events.subscribe, idx < argc ? argv + idx : NULL,
                                 on_event, &m);
        if (r < 0) {
                code = ctl_error("cannot subscribe to %s: %s", ctl->events.subscribe,
                                 r == -EINVAL ? "invalid endpoint" : strerror(-r));
                goto finish;
        }

        /* ZeroMQ connects in the background and says nothing about an
         * absent hub; on a terminal at least say where we listen. */
        if (isatty(STDERR_FILENO) > 0 && ctl->output == CTL_OUTPUT_TEXT)
                fprintf(stderr, "Watching events at %s (Ctrl-C to stop)...\n", ctl->events.subscribe);

        r = sd_event_loop(event);
        if (r < 0)
                code = CTL_EXIT_REFUSED;

finish:
        sub = event_subscriber_free(sub);
        event = sd_event_unref(event);
        if (zctx)
                (void) zmq_ctx_term(zctx);
        (void) sigprocmask(SIG_SETMASK, &saved, NULL);
        return code;
}
