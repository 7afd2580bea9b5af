/* SPDX-License-Identifier: MIT */
#pragma once

/* Microsecond time, as sd-event and the D-Bus contract (RingTimeoutUSec) use. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef uint64_t usec_t;

#define USEC_INFINITY ((usec_t) UINT64_MAX)
#define USEC_PER_SEC ((usec_t) 1000000ULL)
#define USEC_PER_MSEC ((usec_t) 1000ULL)
#define USEC_PER_MINUTE ((usec_t) (60ULL * USEC_PER_SEC))
#define USEC_PER_HOUR ((usec_t) (60ULL * USEC_PER_MINUTE))
#define USEC_PER_DAY ((usec_t) (24ULL * USEC_PER_HOUR))
#define USEC_PER_WEEK ((usec_t) (7ULL * USEC_PER_DAY))

/* The current time of clock, in microseconds. */
usec_t now_usec(clockid_t clock);

/* Size of a buffer that holds any format_timestamp_rfc3339() result. */
#define RFC3339_MAX sizeof("2026-11-22T10:00:00.123456Z")

/*
 * Format t (CLOCK_REALTIME µs) as RFC 3339 in UTC with microseconds, as the
 * event envelope carries it: "2026-11-22T10:00:00.123456Z". Returns buf.
 */
char *format_timestamp_rfc3339(char buf[static RFC3339_MAX], usec_t t);

/*
 * Parse a time span: "10" (seconds), "10s", "1.5s", "500ms", "250us",
 * "2min", "1h", "1d", "1w", and sums like "1h30min". Returns 0 and sets
 * *ret, or -EINVAL (nothing else is touched on failure). "infinity" gives
 * USEC_INFINITY.
 */
int parse_timespan(const char *s, usec_t *ret);

/*
 * Parse a point in time: RFC 3339 ("2026-11-22T10:00:00Z",
 * "2026-11-22T10:00:00.5+01:00", "2026-11-22 10:00:00Z"), a journalctl-style
 * relative time ("-10min", "+1h", "-1h30min"), "now", "today" or
 * "yesterday" (midnight UTC). Relative forms are taken from now (CLOCK_REALTIME
 * µs), passed in so that the function stays pure. Returns 0 and sets *ret,
 * or -EINVAL / -ERANGE.
 */
int parse_timestamp(const char *s, usec_t now, usec_t *ret);

/*
 * Parse a strict RFC 3339 date-time only: date, time with seconds, optional
 * fraction, and a mandatory "Z" or "±HH:MM" offset (as the envelope's
 * "time" field). Returns 0 and sets *ret, -EINVAL, or -ERANGE before 1970.
 */
int parse_timestamp_rfc3339(const char *s, usec_t *ret);
