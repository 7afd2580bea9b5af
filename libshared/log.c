/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "log.h"
#include "time-util.h"

static int max_level = LOG_INFO;
static bool max_level_forced;
static const char *log_ident = "callcenter";
static bool to_journal;
static bool stderr_is_tty;
static bool console;

static const char *const level_names[] = {
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

int log_level_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (strcmp(s, level_names[i]) == 0)
                        return (int) i;
        if (strcmp(s, "error") == 0)
                return LOG_ERR;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        return -EINVAL;
}

/*
 * systemd sets $JOURNAL_STREAM to "device:inode" of the stream it connected
 * to our stderr. Only when they still match do we own that stream: a child
 * whose stderr was redirected must not send to the journal behind the
 * user's back.
 */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_setup(const char *ident) {
        const char *e;
        int l;

        if (ident)
                log_ident = ident;
        to_journal = stderr_is_journal();
        stderr_is_tty = isatty(STDERR_FILENO) > 0;

        e = getenv("CALLCENTER_LOG_LEVEL");
        if (e && (l = log_level_from_string(e)) >= 0) {
                max_level = l;
                max_level_forced = true;
        }
}

/* Kept apart from to_journal/stderr_is_tty, which log_setup() recomputes:
 * a tool's choice must survive a later log_setup() (a new identifier). */
void log_set_console(bool b) {
        console = b;
}

void log_set_max_level(int level) {
        /* The environment wins over configuration: it is what a developer
         * sets by hand to debug one run. */
        if (!max_level_forced && level >= 0 && level <= LOG_DEBUG)
                max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

static void write_journal(int level, int error, const char *file, int line, const char *func,
                          const char *const *fields, const char *msg) {
        char prio[32], code_file[256], code_line[32], code_func[128], ident[128], err[32];
        _cleanup_(freep) char *message = NULL;
        struct iovec iov[48];
        size_t n = 0;

        message = malloc(strlen(msg) + sizeof("MESSAGE="));
        if (!message)
                return;
        stpcpy(stpcpy(message, "MESSAGE="), msg);

        snprintf(prio, sizeof prio, "PRIORITY=%d", level);
        snprintf(code_file, sizeof code_file, "CODE_FILE=%s", file);
        snprintf(code_line, sizeof code_line, "CODE_LINE=%d", line);
        snprintf(code_func, sizeof code_func, "CODE_FUNC=%s", func);
        snprintf(ident, sizeof ident, "SYSLOG_IDENTIFIER=%s", log_ident);

        iov[n++] = (struct iovec) { message, strlen(message) };
        iov[n++] = (struct iovec) { prio, strlen(prio) };
        iov[n++] = (struct iovec) { code_file, strlen(code_file) };
        iov[n++] = (struct iovec) { code_line, strlen(code_line) };
        iov[n++] = (struct iovec) { code_func, strlen(code_func) };
        iov[n++] = (struct iovec) { ident, strlen(ident) };
        if (error != 0) {
                snprintf(err, sizeof err, "ERRNO=%d", error < 0 ? -error : error);
                iov[n++] = (struct iovec) { err, strlen(err) };
        }
        for (size_t i = 0; fields && fields[i] && n < ELEMENTSOF(iov); i++)
                iov[n++] = (struct iovec) { (void *) fields[i], strlen(fields[i]) };

        (void) sd_journal_sendv(iov, (int) n);
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *const *fields, const char *format, ...) {
        char buf[2048];
        int saved_errno = errno;
        va_list ap;

        /* %m in a format means the error we were handed, as in systemd. */
        errno = error < 0 ? -error : error;
        va_start(ap, format);
        (void) vsnprintf(buf, sizeof buf, format, ap);
        va_end(ap);

        /* A person reads a tool's errors, often through a pipe or a
         * redirection: "<3>" would only be noise there, and a tool started
         * from a unit (inheriting $JOURNAL_STREAM) still reports on stderr. */
        if (console || (!to_journal && stderr_is_tty))
                fprintf(stderr, "%s: %s\n", log_ident, buf);
        else if (to_journal)
                write_journal(level, error, file, line, func, fields, buf);
        else
                fprintf(stderr, "<%d>%s: %s\n", level, log_ident, buf);

        errno = saved_errno;
        return error == 0 ? 0 : -(error < 0 ? -error : error);
}

bool ratelimit_below(RateLimit *rl) {
        uint64_t ts = now_usec(CLOCK_MONOTONIC);

        if (rl->begin == 0 || ts - rl->begin > rl->interval_usec) {
                rl->begin = ts;
                rl->num = 0;
        }
        if (rl->num < rl->burst) {
                rl->num++;
                return true;
        }
        rl->suppressed++;
        return false;
}
