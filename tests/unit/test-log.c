/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"
#include "time-util.h"

static const struct {
        const char *in;
        int level;
} levels[] = {
        { "emerg", LOG_EMERG },   { "alert", LOG_ALERT }, { "crit", LOG_CRIT },
        { "err", LOG_ERR },       { "error", LOG_ERR },   { "warning", LOG_WARNING },
        { "notice", LOG_NOTICE }, { "info", LOG_INFO },   { "debug", LOG_DEBUG },
        { "0", 0 },               { "7", 7 },             { "8", -EINVAL },
        { "-1", -EINVAL },        { "", -EINVAL },        { "Debug", -EINVAL },
        { "77", -EINVAL },        { "debugx", -EINVAL },  { "warn", -EINVAL },
};

static char capture_path[] = "/tmp/test-log-XXXXXX";
static int saved_stderr = -1;

static void capture_begin(void) {
        int fd = open(capture_path, O_WRONLY | O_TRUNC | O_CLOEXEC);

        fflush(stderr);
        saved_stderr = dup(STDERR_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
}

static char *capture_end(void) {
        static char buf[4096];
        FILE *f;
        size_t n;

        fflush(stderr);
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        f = fopen(capture_path, "re");
        n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

int main(void) {
        RateLimit rl = { .interval_usec = USEC_PER_HOUR, .burst = 3 };
        RateLimit quick = { .interval_usec = 20 * USEC_PER_MSEC, .burst = 1 };
        unsigned allowed = 0;
        struct stat st;
        char *out;
        int fd, r;

        for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
                is_int(log_level_from_string(levels[i].in), levels[i].level,
                       "log_level_from_string('%s') = %d", levels[i].in, levels[i].level);
        is_int(log_level_from_string(NULL), -EINVAL, "log_level_from_string(NULL)");

        /* Token bucket: burst records, then everything is counted. */
        for (int i = 0; i < 10; i++)
                allowed += ratelimit_below(&rl);
        is_int(allowed, 3, "burst of 3 allowed in the interval");
        is_int(rl.suppressed, 7, "the other 7 are counted as suppressed");

        ok(ratelimit_below(&quick), "first record of a new bucket passes");
        ok(!ratelimit_below(&quick), "second record within 20ms is refused");
        usleep(30 * 1000);
        ok(ratelimit_below(&quick), "after the interval a record passes again");
        is_int(quick.suppressed, 1, "one was suppressed");

        /* Output format on a non-terminal stderr and level filtering. */
        fd = mkstemp(capture_path);
        close(fd);
        unsetenv("JOURNAL_STREAM");
        unsetenv("CALLCENTER_LOG_LEVEL");
        log_setup("test-log");
        is_int(log_get_max_level(), LOG_INFO, "default level is info");

        capture_begin();
        r = log_error_errno(ENOENT, "open %s: %m", "x");
        (void) log_debug("hidden");
        out = capture_end();
        is_int(r, -ENOENT, "log_error_errno returns -errno");
        is_str(out, "<3>test-log: open x: No such file or directory\n",
               "syslog prefix, ident, and %m from the error");
        capture_begin();
        is_int(log_warning_errno(-EIO, "x"), -EIO, "a negative error is returned as is");
        is_int(log_debug_errno(EPERM, "hidden"), -EPERM, "a filtered record still returns -errno");
        is_int(log_info("y"), 0, "no error returns 0");
        out = capture_end();
        is_str(out, "<4>test-log: x\n<6>test-log: y\n", "warning and info written, debug not");

        log_set_max_level(LOG_DEBUG);
        capture_begin();
        (void) log_debug("shown %d", 7);
        out = capture_end();
        is_str(out, "<7>test-log: shown 7\n", "debug shows after log_set_max_level(LOG_DEBUG)");

        log_set_max_level(LOG_ERR);
        capture_begin();
        (void) log_warning("hidden");
        (void) log_error("shown");
        out = capture_end();
        is_str(out, "<3>test-log: shown\n", "warning filtered at LOG_ERR");

        /* Console mode (command-line tools): plain lines on a non-terminal
         * stderr, and even when $JOURNAL_STREAM names that stderr. */
        log_set_console(true);
        capture_begin();
        r = log_error_errno(ENOENT, "open %s: %m", "x");
        out = capture_end();
        is_int(r, -ENOENT, "console: log_error_errno still returns -errno");
        is_str(out, "test-log: open x: No such file or directory\n", "console: no <N> prefix on a file");

        capture_begin();
        if (fstat(STDERR_FILENO, &st) == 0) {
                char js[64];

                snprintf(js, sizeof js, "%llu:%llu", (unsigned long long) st.st_dev,
                         (unsigned long long) st.st_ino);
                setenv("JOURNAL_STREAM", js, 1);
        }
        log_setup(NULL);
        (void) log_error("not to the journal");
        out = capture_end();
        unsetenv("JOURNAL_STREAM");
        log_setup(NULL);
        is_str(out, "test-log: not to the journal\n",
               "console: stderr even when $JOURNAL_STREAM matches it, kept across log_setup()");

        log_set_console(false);
        capture_begin();
        (void) log_error("prefixed");
        out = capture_end();
        is_str(out, "<3>test-log: prefixed\n", "log_set_console(false) restores the <N> prefix");

        /* The environment wins over the configuration. */
        setenv("CALLCENTER_LOG_LEVEL", "debug", 1);
        log_setup(NULL);
        log_set_max_level(LOG_ERR);
        is_int(log_get_max_level(), LOG_DEBUG, "CALLCENTER_LOG_LEVEL wins over log_set_max_level");

        unlink(capture_path);
        return done_testing();
}
