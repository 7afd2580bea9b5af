/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A minimal TAP producer for the unit tests, read by automake's tap-driver.sh.
 * plan(n) first (or plan_no_plan() and done_testing() at the end), then one
 * ok()/is_int()/is_str() per check. exit_status() is 0 when all passed.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_planned = -1, tap_run, tap_failed;

static inline void plan(int n) {
        tap_planned = n;
        printf("1..%d\n", n);
}

static inline void plan_no_plan(void) {
        tap_planned = -1;
}

static inline void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void diag(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        printf("# ");
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
}

static inline int ok_v(int cond, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static inline int ok_v(int cond, const char *fmt, va_list ap) {
        tap_run++;
        if (!cond)
                tap_failed++;
        printf("%s %d - ", cond ? "ok" : "not ok", tap_run);
        vprintf(fmt, ap);
        printf("\n");
        fflush(stdout);
        return cond;
}

static inline int ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int ok(int cond, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        cond = ok_v(cond, fmt, ap);
        va_end(ap);
        return cond;
}

#define is_int(got, expected, ...)                                                    \
        ({                                                                            \
                long long _g_ = (long long) (got), _x_ = (long long) (expected);      \
                int _r_ = ok(_g_ == _x_, __VA_ARGS__);                                \
                if (!_r_)                                                             \
                        diag("  got: %lld, expected: %lld", _g_, _x_);                \
                _r_;                                                                  \
        })

#define is_str(got, expected, ...)                                                    \
        ({                                                                            \
                const char *_g_ = (got), *_x_ = (expected);                           \
                int _r_ = ok(_g_ && _x_ ? strcmp(_g_, _x_) == 0 : _g_ == _x_,         \
                             __VA_ARGS__);                                            \
                if (!_r_)                                                             \
                        diag("  got: '%s', expected: '%s'", _g_ ? _g_ : "(null)",     \
                             _x_ ? _x_ : "(null)");                                   \
                _r_;                                                                  \
        })

static inline int done_testing(void) {
        if (tap_planned < 0)
                printf("1..%d\n", tap_run);
        return tap_failed == 0 && (tap_planned < 0 || tap_planned == tap_run) ? 0 : 1;
}

#define exit_status() done_testing()
