/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "cleanup.h"
#include "ctl-shell.h"
#include "ctl-output.h"

#define SHELL_PROMPT "(callcenter) "
/* A line longer than this is refused rather than buffered without end. */
#define SHELL_LINE_MAX (64 * 1024)

const char ctl_shell_help[] =
        "Read commands from the terminal (or stdin) and run them one by one. Every\n"
        "command of 'callcenterctl --help' works, with its options; also:\n"
        "  help [COMMAND]   the command list, or one command's help\n"
        "  quit, exit       leave (so does end of input, Ctrl-D)\n"
        "The prompt '" SHELL_PROMPT "' is shown only when stdin is a terminal.\n"
        "Quote words with '...' or \"...\"; a word starting with # begins a comment.\n";

typedef struct Shell {
        Ctl *ctl;
        sd_event *event;
        char *buf;
        size_t len, alloc;
        bool interactive;
        bool overlong;          /* discarding the rest of a line that was too long */
        bool finished;
} Shell;

/* Grow the word being built by one byte. */
static int word_push(char **w, size_t *n, size_t *alloc, char c) {
        if (*n + 2 > *alloc) {
                size_t a = *alloc ? *alloc * 2 : 32;
                char *p = realloc(*w, a);
                if (!p)
                        return -ENOMEM;
                *w = p;
                *alloc = a;
        }
        (*w)[(*n)++] = c;
        (*w)[*n] = '\0';
        return 0;
}

static int strv_push(char ***v, int *n, char *s) {
        char **p = realloc(*v, sizeof(char *) * (size_t) (*n + 2));
        if (!p)
                return -ENOMEM;
        p[(*n)++] = s;
        p[*n] = NULL;
        *v = p;
        return 0;
}

int ctl_split_line(const char *line, char ***ret_argv, int *ret_argc) {
        _cleanup_(strv_freep) char **v = NULL;
        int n = 0, r;
        const char *p = line;

        /* An empty vector, not NULL, for a blank line: callers index v[0]. */
        v = calloc(1, sizeof(char *));
        if (!v)
                return -ENOMEM;

        for (;;) {
                _cleanup_(freep) char *w = NULL;
                size_t wn = 0, wa = 0;
                bool have = false;

                while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
                        p++;
                if (*p == '\0' || *p == '#')
                        break;

                while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
                        have = true;
                        if (*p == '\'') {
                                const char *end = strchr(p + 1, '\'');
                                if (!end)
                                        return -EINVAL;
                                for (p++; p < end; p++)
                                        if ((r = word_push(&w, &wn, &wa, *p)) < 0)
                                                return r;
                                p++;
                        } else if (*p == '"') {
                                for (p++; *p != '"'; p++) {
                                        if (*p == '\0')
                                                return -EINVAL;
                                        /* Only \" and \\ are escapes inside
                                         * double quotes; "\n" stays two bytes. */
                                        if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                                                p++;
                                        if ((r = word_push(&w, &wn, &wa, *p)) < 0)
                                                return r;
                                }
                                p++;
                        } else if (*p == '\\') {
                                if (p[1] == '\0')
                                        return -EINVAL;
                                if ((r = word_push(&w, &wn, &wa, p[1])) < 0)
                                        return r;
                                p += 2;
                        } else {
                                if ((r = word_push(&w, &wn, &wa, *p)) < 0)
                                        return r;
                                p++;
                        }
                }

                /* '' is a real (empty) word. */
                if (have) {
                        if (!w && !(w = strdup("")))
                                return -ENOMEM;
                        if ((r = strv_push(&v, &n, w)) < 0)
                                return r;
                        w = NULL;
                }
        }

        *ret_argv = TAKE_PTR(v);
        *ret_argc = n;
        return 0;
}

static void shell_prompt(Shell *s) {
        if (s->interactive && !s->finished) {
                fputs(SHELL_PROMPT, stdout);
                (void) fflush(stdout);
        }
}

static void shell_finish(Shell *s) {
        if (s->finished)
                return;
        s->finished = true;
        (void) sd_event_exit(s->event, 0);
}

/* Run one complete line. */
static void shell_execute(Shell *s, const char *line) {
        _cleanup_(strv_freep) char **argv = NULL;
        int argc, r;

        r = ctl_split_line(line, &argv, &argc);
        if (r == -EINVAL) {
                ctl_usage_error(s->ctl, NULL, "unterminated quote or trailing backslash");
                return;
        }
        if (r < 0) {
                ctl_error("out of memory");
                return;
        }
        if (argc == 0)
                return;

        if (strcmp(argv[0], "quit") == 0 || strcmp(argv[0], "exit") == 0) {
                shell_finish(s);
                return;
        }
        if (strcmp(argv[0], "?") == 0) {
                char *h = strdup("help");
                if (!h) {
                        ctl_error("out of memory");
                        return;
                }
                free(argv[0]);
                argv[0] = h;
        }

        /* Options such as -o json apply to one command only: put the
         * session's own settings back afterwards. */
        Ctl saved = *s->ctl;
        (void) ctl_run_command(s->ctl, argc, argv);
        s->ctl->user = saved.user;
        s->ctl->output = saved.output;
        s->ctl->colour = saved.colour;
        s->ctl->config_path = saved.config_path;

        /* Keep the output in step with the prompt and with stderr. A reader
         * that went away ends the shell, as it ends monitor. */
        if (ctl_flush() == -EPIPE)
                shell_finish(s);
}

/* Run every complete line in the buffer; keep a partial one for later. */
static void shell_process(Shell *s, bool eof) {
        size_t start = 0;

        while (!s->finished) {
                char *nl = memchr(s->buf + start, '\n', s->len - start);
                size_t end;

                if (!nl) {
                        if (!eof || start == s->len)
                                break;
                        end = s->len; /* a last line without newline */
                } else
                        end = (size_t) (nl - s->buf);

                s->buf[end] = '\0';
                if (s->overlong)
                        s->overlong = false; /* the tail of a refused line */
                else
                        shell_execute(s, s->buf + start);
                start = end < s->len ? end + 1 : end;
                if (!eof || start < s->len)
                        shell_prompt(s);
        }

        memmove(s->buf, s->buf + start, s->len - start);
        s->len -= start;

        if (s->len > SHELL_LINE_MAX) {
                ctl_error("line longer than %d bytes, ignored", SHELL_LINE_MAX);
                s->len = 0;
                s->overlong = true;
        }
}

/* Read once per wake-up: no O_NONBLOCK needed on a stdin we share with the
 * terminal or parent, and one read after POLLIN cannot block. */
static int shell_read(Shell *s) {
        ssize_t n;

        if (s->alloc - s->len < 4096 + 1) {
                size_t a = s->alloc ? s->alloc * 2 : 8192;
                char *p = realloc(s->buf, a);
                if (!p) {
                        ctl_error("out of memory");
                        return -ENOMEM;
                }
                s->buf = p;
                s->alloc = a;
        }

        n = read(STDIN_FILENO, s->buf + s->len, s->alloc - s->len - 1);
        if (n < 0) {
                if (errno == EINTR || errno == EAGAIN)
                        return 0;
                ctl_error("cannot read commands: %m");
                return -errno;
        }
        s->len += (size_t) n;
        shell_process(s, n == 0);
        if (n == 0) {
                /* Ctrl-D: leave the terminal's next prompt on a line of its own. */
                if (s->interactive && !s->finished)
                        fputc('\n', stdout);
                shell_finish(s);
        }
        return 0;
}

static int on_stdin(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        Shell *s = userdata;

        if (shell_read(s) < 0)
                shell_finish(s);
        return 0;
}

/* stdin that epoll refuses (a regular file): read it from a deferred
 * source that fires on every iteration until end of input. */
static int on_stdin_defer(sd_event_source *es, void *userdata) {
        return on_stdin(es, STDIN_FILENO, 0, userdata);
}

static int on_signal(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata) {
        Shell *s = userdata;

        /* Ctrl-C at the prompt drops the typed line (the terminal already
         * discarded it) and asks again, as a shell does; anywhere else, and
         * SIGTERM always, ends the session. */
        if (si->ssi_signo == SIGINT && s->interactive) {
                s->len = 0;
                fputc('\n', stdout);
                shell_prompt(s);
                return 0;
        }
        shell_finish(s);
        return 0;
}

int verb_shell(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        Shell s = { .ctl = ctl };
        sigset_t mask, saved;
        int r, idx, code = CTL_EXIT_SUCCESS;

        idx = ctl_parse_options(ctl, cmd, argc, argv, NULL, NULL, NULL, NULL);
        CTL_PARSE_OR_RETURN(idx);
        if (idx < argc)
                return ctl_usage_error(ctl, cmd, "unexpected argument '%s'", argv[idx]);
        if (ctl->in_shell)
                return ctl_usage_error(ctl, cmd, "already in the shell");

        r = sd_event_new(&event);
        if (r < 0)
                return ctl_error("cannot create an event loop: %s", strerror(-r));
        s.event = event;
        s.interactive = isatty(STDIN_FILENO) > 0;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, &saved) < 0)
                return ctl_error("cannot block signals: %m");
        if (sd_event_add_signal(event, NULL, SIGINT, on_signal, &s) < 0 ||
            sd_event_add_signal(event, NULL, SIGTERM, on_signal, &s) < 0) {
                code = ctl_error("cannot watch signals");
                goto finish;
        }

        r = sd_event_add_io(event, NULL, STDIN_FILENO, EPOLLIN, on_stdin, &s);
        if (r == -EPERM) {
                sd_event_source *defer = NULL;

                /* A deferred source is one-shot unless switched on for good. */
                r = sd_event_add_defer(event, &defer, on_stdin_defer, &s);
                if (r >= 0) {
                        r = sd_event_source_set_enabled(defer, SD_EVENT_ON);
                        (void) sd_event_source_set_floating(defer, true);
                        sd_event_source_unref(defer);
                }
        }
        if (r < 0) {
                code = ctl_error("cannot watch stdin: %s", strerror(-r));
                goto finish;
        }

        ctl->in_shell = true;
        ctl->shell_event = event;
        if (s.interactive)
                fputs("callcenter shell: type 'help' for the commands, 'quit' to leave.\n", stdout);
        shell_prompt(&s);

        r = sd_event_loop(event);
        if (r < 0)
                code = CTL_EXIT_REFUSED;

        ctl->in_shell = false;
        ctl->shell_event = NULL;

finish:
        /* Sources commands attached hold references; drop ours and let them
         * go with the loop. */
        event = sd_event_unref(event);
        (void) sigprocmask(SIG_SETMASK, &saved, NULL);
        free(s.buf);
        return code;
}
