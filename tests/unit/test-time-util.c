/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "tap.h"
#include "time-util.h"

#define S(x) ((usec_t) (x) * USEC_PER_SEC)

/* 2026-11-22T10:00:00Z, the "now" of every relative case below. */
#define NOW S(1795341600ULL)

static const struct {
        const char *in;
        int r;
        usec_t usec;
} timespans[] = {
        { "10", 0, S(10) },
        { "10s", 0, S(10) },
        { "1.5s", 0, 1500000 },
        { "0.000001s", 0, 1 },
        { ".5s", 0, 500000 },
        { "500ms", 0, 500000 },
        { "250us", 0, 250 },
        { "250usec", 0, 250 },
        { "250\xc2\xb5s", 0, 250 },
        { "2min", 0, S(120) },
        { "2m", 0, S(120) },
        { "2 minutes", 0, S(120) },
        { "1h", 0, S(3600) },
        { "1hr", 0, S(3600) },
        { "1d", 0, S(86400) },
        { "1w", 0, S(7 * 86400) },
        { "1h30min", 0, S(5400) },
        { "1h 30min 5s", 0, S(5405) },
        { "1.5h", 0, S(5400) },
        { "1min30", 0, S(90) },
        { "  10s  ", 0, S(10) },
        { "0", 0, 0 },
        { "infinity", 0, USEC_INFINITY },
        { "18446744073709551614us", 0, UINT64_MAX - 1 },
        /* bad */
        { "", -EINVAL, 0 },
        { "   ", -EINVAL, 0 },
        { "s", -EINVAL, 0 },
        { "-1s", -EINVAL, 0 },
        { "+1s", -EINVAL, 0 },
        { "1x", -EINVAL, 0 },
        { "5mins", -EINVAL, 0 },
        { "1.s", 0, S(1) },
        { ".", -EINVAL, 0 },
        { "1..5s", -EINVAL, 0 },
        { "10s garbage", -EINVAL, 0 },
        { "0x10", -EINVAL, 0 },
        { "18446744073709551615us", -EINVAL, 0 },  /* would be USEC_INFINITY */
        { "99999999999999999999", -EINVAL, 0 },
        { "30000000w", 0, 30000000ULL * 7 * 86400 * USEC_PER_SEC },
        { "40000000w", -EINVAL, 0 },
        { "infinity1", -EINVAL, 0 },
};

static const struct {
        const char *in;
        int r;
        usec_t usec;
} timestamps[] = {
        { "2026-11-22T10:00:00Z", 0, NOW },
        { "2026-11-22t10:00:00z", 0, NOW },
        { "2026-11-22 10:00:00Z", 0, NOW },
        { "2026-11-22T10:00:00.123456Z", 0, NOW + 123456 },
        { "2026-11-22T10:00:00.1234567Z", 0, NOW + 123456 },
        { "2026-11-22T10:00:00.5+01:00", 0, NOW - S(3600) + 500000 },
        { "2026-11-22T10:00:00-05:30", 0, NOW + S(5 * 3600 + 1800) },
        { "2026-11-22T10:00:00+0100", 0, NOW - S(3600) },
        { "2026-11-22T10:00:00", 0, NOW },
        { "2026-11-22 10:00", 0, NOW },
        { "2026-11-22", 0, S(1795305600ULL) },
        { "2000-02-29T00:00:00Z", 0, S(951782400ULL) },
        { "1970-01-01T00:00:00Z", 0, 0 },
        { "1970-01-01T01:00:00+01:00", 0, 0 },
        { "2024-12-31T23:59:60Z", 0, S(1735689600ULL) }, /* leap second */
        { "now", 0, NOW },
        { "today", 0, S(1795305600ULL) },
        { "yesterday", 0, S(1795219200ULL) },
        { "tomorrow", 0, S(1795305600ULL + 86400) },
        { "-10min", 0, NOW - S(600) },
        { "+1h", 0, NOW + S(3600) },
        { "-1h30min", 0, NOW - S(5400) },
        { "10min ago", 0, NOW - S(600) },
        { "@1795341600", 0, NOW },
        { "@1795341600.25", 0, NOW + 250000 },
        { " 2026-11-22T10:00:00Z ", 0, NOW },
        /* bad */
        { "", -EINVAL, 0 },
        { "garbage", -EINVAL, 0 },
        { "2026-13-01T00:00:00Z", -EINVAL, 0 },
        { "2026-02-29T00:00:00Z", -EINVAL, 0 },  /* not a leap year */
        { "2026-11-31T00:00:00Z", -EINVAL, 0 },
        { "2026-11-22T24:00:00Z", -EINVAL, 0 },
        { "2026-11-22T10:60:00Z", -EINVAL, 0 },
        { "2026-11-22T10:00:61Z", -EINVAL, 0 },
        { "2026-11-22T10:00:00.Z", -EINVAL, 0 },
        { "2026-11-22T10:00:00+25:00", -EINVAL, 0 },
        { "2026-11-22T10:00:00Zjunk", -EINVAL, 0 },
        { "2026-11-22T10", -EINVAL, 0 },
        { "26-11-22T10:00:00Z", -EINVAL, 0 },
        { "1969-12-31T23:59:59Z", -ERANGE, 0 },
        { "1970-01-01T00:00:00+00:01", -ERANGE, 0 },
        { "-10", 0, NOW - S(10) },
        { "-10x", -EINVAL, 0 },
        { "-infinity", -EINVAL, 0 },
        { "-100000w", -ERANGE, 0 },
        { "@", -EINVAL, 0 },
        { "@10s", -EINVAL, 0 },
        { "ago", -EINVAL, 0 },
};

static const struct {
        const char *in;
        int r;
        usec_t usec;
} strict[] = {
        { "2026-11-22T10:00:00Z", 0, NOW },
        { "2026-11-22T10:00:00.123456Z", 0, NOW + 123456 },
        { "2026-11-22T11:00:00+01:00", 0, NOW },
        { "2026-11-22T10:00:00", -EINVAL, 0 },
        { "2026-11-22T10:00Z", -EINVAL, 0 },
        { "2026-11-22", -EINVAL, 0 },
        { "2026-11-22T11:00:00+0100", -EINVAL, 0 },
        { "now", -EINVAL, 0 },
        { "-10min", -EINVAL, 0 },
};

static const struct {
        usec_t t;
        const char *out;
} formats[] = {
        { 0, "1970-01-01T00:00:00.000000Z" },
        { NOW + 123456, "2026-11-22T10:00:00.123456Z" },
        { S(951782400ULL) + 1, "2000-02-29T00:00:00.000001Z" },
        { S(1735689599ULL) + 999999, "2024-12-31T23:59:59.999999Z" },
        { USEC_INFINITY, "9999-12-31T23:59:59.999999Z" },
};

int main(void) {
        char buf[RFC3339_MAX];
        usec_t a, b;

        for (size_t i = 0; i < sizeof timespans / sizeof timespans[0]; i++) {
                usec_t v = 4242;
                int r = parse_timespan(timespans[i].in, &v);

                is_int(r, timespans[i].r, "parse_timespan('%s') returns %d", timespans[i].in,
                       timespans[i].r);
                if (timespans[i].r == 0)
                        is_int(v == timespans[i].usec, 1, "parse_timespan('%s') = %llu (got %llu)",
                               timespans[i].in, (unsigned long long) timespans[i].usec,
                               (unsigned long long) v);
                else
                        is_int(v, 4242, "parse_timespan('%s') leaves *ret alone", timespans[i].in);
        }

        for (size_t i = 0; i < sizeof timestamps / sizeof timestamps[0]; i++) {
                usec_t v = 4242;
                int r = parse_timestamp(timestamps[i].in, NOW, &v);

                is_int(r, timestamps[i].r, "parse_timestamp('%s') returns %d", timestamps[i].in,
                       timestamps[i].r);
                if (timestamps[i].r == 0)
                        is_int(v == timestamps[i].usec, 1,
                               "parse_timestamp('%s') = %llu (got %llu)", timestamps[i].in,
                               (unsigned long long) timestamps[i].usec, (unsigned long long) v);
                else
                        is_int(v, 4242, "parse_timestamp('%s') leaves *ret alone", timestamps[i].in);
        }

        for (size_t i = 0; i < sizeof strict / sizeof strict[0]; i++) {
                usec_t v = 4242;
                int r = parse_timestamp_rfc3339(strict[i].in, &v);

                is_int(r, strict[i].r, "parse_timestamp_rfc3339('%s') returns %d", strict[i].in,
                       strict[i].r);
                is_int(v == (strict[i].r == 0 ? strict[i].usec : 4242), 1,
                       "parse_timestamp_rfc3339('%s') value", strict[i].in);
        }

        for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
                is_str(format_timestamp_rfc3339(buf, formats[i].t), formats[i].out,
                       "format_timestamp_rfc3339(%llu)", (unsigned long long) formats[i].t);

        /* Round trip over a spread of instants, including month ends and
         * leap days, must give back the same microsecond. */
        for (usec_t t = 0; t < S(253402300799ULL); t += S(86400) * 997 + 123457) {
                usec_t back = 0;

                format_timestamp_rfc3339(buf, t);
                if (parse_timestamp_rfc3339(buf, &back) < 0 || back != t) {
                        ok(0, "round trip of %llu through '%s'", (unsigned long long) t, buf);
                        break;
                }
        }
        ok(1, "format/parse round trip over 1970..9999");

        /* No dependence on the locale or $TZ. */
        setenv("TZ", "America/New_York", 1);
        tzset();
        is_int(parse_timestamp("2026-11-22T10:00:00", NOW, &a), 0, "parse with TZ set");
        is_int(a == NOW, 1, "a missing offset still means UTC with TZ set");
        is_str(format_timestamp_rfc3339(buf, NOW), "2026-11-22T10:00:00.000000Z",
               "format ignores TZ");

        a = now_usec(CLOCK_REALTIME);
        b = now_usec(CLOCK_MONOTONIC);
        ok(a > S(1700000000ULL), "now_usec(CLOCK_REALTIME) is after 2023");
        ok(b > 0 && now_usec(CLOCK_MONOTONIC) >= b, "now_usec(CLOCK_MONOTONIC) does not go back");

        return done_testing();
}
