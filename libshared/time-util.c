/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "time-util.h"

/*
 * Everything here is pure and independent of the locale and of $TZ: dates
 * are converted with the civil-calendar arithmetic below (proleptic
 * Gregorian, as RFC 3339 defines) instead of mktime()/strftime(), so a
 * daemon started with an odd LANG or TZ still writes and reads the same
 * timestamps.
 */

usec_t now_usec(clockid_t clock) {
        struct timespec ts;

        if (clock_gettime(clock, &ts) < 0)
                return 0;
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

/* Days since 1970-01-01 of y-m-d (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
        int64_t era;
        unsigned yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = (unsigned) (y - era * 400);
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t) doe - 719468;
}

/* The inverse, for days >= 0 only (usec_t cannot go before 1970). */
static void civil_from_days(int64_t z, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d) {
        int64_t era, y;
        unsigned doe, yoe, doy, mp, m;

        z += 719468;
        era = z / 146097;
        doe = (unsigned) (z - era * 146097);
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        y = (int64_t) yoe + era * 400;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        m = mp < 10 ? mp + 3 : mp - 9;
        *ret_y = y + (m <= 2);
        *ret_m = m;
        *ret_d = doy - (153 * mp + 2) / 5 + 1;
}

static bool is_leap(int64_t y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m) {
        static const unsigned mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

        return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

/* Write v as exactly n decimal digits, zero-padded. */
static void put_digits(char *p, unsigned v, unsigned n) {
        while (n > 0) {
                p[--n] = (char) ('0' + v % 10);
                v /= 10;
        }
}

char *format_timestamp_rfc3339(char buf[static RFC3339_MAX], usec_t t) {
        /* The format has room for four-digit years only; anything later
         * (USEC_INFINITY included) is shown as the last representable
         * instant rather than as a truncated string. */
        static const usec_t max = 253402300799999999ULL; /* 9999-12-31T23:59:59.999999Z */
        int64_t days, y;
        unsigned m, d, secs;

        if (t > max)
                t = max;

        days = (int64_t) (t / USEC_PER_DAY);
        secs = (unsigned) ((t % USEC_PER_DAY) / USEC_PER_SEC);
        civil_from_days(days, &y, &m, &d);

        /* Digits by hand: this runs for every event published, and the
         * field widths are fixed by the clamp above. */
        put_digits(buf, (unsigned) y, 4);
        buf[4] = '-';
        put_digits(buf + 5, m, 2);
        buf[7] = '-';
        put_digits(buf + 8, d, 2);
        buf[10] = 'T';
        put_digits(buf + 11, secs / 3600, 2);
        buf[13] = ':';
        put_digits(buf + 14, secs / 60 % 60, 2);
        buf[16] = ':';
        put_digits(buf + 17, secs % 60, 2);
        buf[19] = '.';
        put_digits(buf + 20, (unsigned) (t % USEC_PER_SEC), 6);
        buf[26] = 'Z';
        buf[27] = '\0';
        return buf;
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static const struct {
        const char *suffix;
        usec_t usec;
} timespan_units[] = {
        /* Longer suffixes first: "ms" must not be read as "m" followed by
         * "s", nor "min" as "m" + garbage. */
        { "seconds", USEC_PER_SEC },
        { "second", USEC_PER_SEC },
        { "minutes", USEC_PER_MINUTE },
        { "minute", USEC_PER_MINUTE },
        { "hours", USEC_PER_HOUR },
        { "hour", USEC_PER_HOUR },
        { "days", USEC_PER_DAY },
        { "day", USEC_PER_DAY },
        { "weeks", USEC_PER_WEEK },
        { "week", USEC_PER_WEEK },
        { "usec", 1 },
        { "msec", USEC_PER_MSEC },
        { "sec", USEC_PER_SEC },
        { "min", USEC_PER_MINUTE },
        { "hr", USEC_PER_HOUR },
        { "us", 1 },
        { "\xc2\xb5s", 1 }, /* µs */
        { "ms", USEC_PER_MSEC },
        { "s", USEC_PER_SEC },
        { "m", USEC_PER_MINUTE },
        { "h", USEC_PER_HOUR },
        { "d", USEC_PER_DAY },
        { "w", USEC_PER_WEEK },
};

/*
 * Read one "<number>[<unit>]" component at *p, add it to *sum. A number
 * without unit counts as seconds, as in systemd.time(7).
 */
static int timespan_component(const char **p, usec_t *sum, bool *ret_unit) {
        const char *s = *p, *number_end;
        usec_t whole = 0, frac = 0, frac_div = 1, unit = USEC_PER_SEC, v, f;
        bool digits = false;

        for (; is_digit(*s); s++) {
                usec_t d = (usec_t) (*s - '0');

                if (whole > (UINT64_MAX - d) / 10)
                        return -EINVAL;
                whole = whole * 10 + d;
                digits = true;
        }
        if (*s == '.') {
                s++;
                for (; is_digit(*s); s++) {
                        /* Digits past nanoseconds cannot matter at µs
                         * resolution; skip them instead of overflowing. */
                        if (frac_div < 1000000000ULL) {
                                frac = frac * 10 + (usec_t) (*s - '0');
                                frac_div *= 10;
                        }
                        digits = true;
                }
        }
        if (!digits)
                return -EINVAL;

        number_end = s;
        *ret_unit = false;
        while (is_space(*s))
                s++;
        for (size_t i = 0; i < ELEMENTSOF(timespan_units); i++) {
                size_t l = strlen(timespan_units[i].suffix);

                /* A unit must not run on into letters: "5mins" or "5sx"
                 * are typos, not "5min" plus garbage. */
                if (strncmp(s, timespan_units[i].suffix, l) == 0 &&
                    !((s[l] >= 'a' && s[l] <= 'z') || (s[l] >= 'A' && s[l] <= 'Z'))) {
                        unit = timespan_units[i].usec;
                        s += l;
                        *ret_unit = true;
                        break;
                }
        }
        if (!*ret_unit)
                s = number_end;

        if (whole > UINT64_MAX / unit)
                return -EINVAL;
        v = whole * unit;
        /* frac (< 1e9) times a week in µs (6e11) overflows 64 bits. */
        f = (usec_t) ((unsigned __int128) frac * unit / frac_div);
        if (f > UINT64_MAX - v)
                return -EINVAL;
        v += f;
        /* The sum must stay below USEC_INFINITY, which means "never". */
        if (v > UINT64_MAX - 1 - *sum)
                return -EINVAL;

        *sum += v;
        *p = s;
        return 0;
}

int parse_timespan(const char *s, usec_t *ret) {
        usec_t sum = 0;
        int r;

        if (!s)
                return -EINVAL;
        while (is_space(*s))
                s++;
        if (strcmp(s, "infinity") == 0) {
                *ret = USEC_INFINITY;
                return 0;
        }
        if (*s == '\0')
                return -EINVAL;

        while (*s != '\0') {
                bool unit;

                r = timespan_component(&s, &sum, &unit);
                if (r < 0)
                        return r;
                /* A bare number must end the string or be followed by a
                 * blank: "1..5s" is not "1s" plus ".5s". */
                if (!unit && *s != '\0' && !is_space(*s))
                        return -EINVAL;
                while (is_space(*s))
                        s++;
        }

        *ret = sum;
        return 0;
}

/* Read exactly n digits at *p into *ret. */
static bool read_digits(const char **p, unsigned n, unsigned *ret) {
        unsigned v = 0;

        for (unsigned i = 0; i < n; i++) {
                if (!is_digit((*p)[i]))
                        return false;
                v = v * 10 + (unsigned) ((*p)[i] - '0');
        }
        *p += n;
        *ret = v;
        return true;
}

/*
 * RFC 3339 and the shorter forms journalctl accepts:
 *   YYYY-MM-DD[(T|t| )HH:MM[:SS[.frac]]][Z|z|±HH:MM|±HHMM]
 * A missing offset means UTC (we never consult $TZ).
 */
static int parse_rfc3339_full(const char *s, bool strict, usec_t *ret) {
        unsigned year, mon, day, hour = 0, min = 0, sec = 0, oh = 0, om = 0;
        usec_t frac = 0, frac_mul = USEC_PER_SEC;
        int64_t t, offset = 0;

        if (!read_digits(&s, 4, &year) || *s++ != '-' || !read_digits(&s, 2, &mon) ||
            *s++ != '-' || !read_digits(&s, 2, &day))
                return -EINVAL;

        if (*s == 'T' || *s == 't' || *s == ' ') {
                s++;
                if (!read_digits(&s, 2, &hour) || *s++ != ':' || !read_digits(&s, 2, &min))
                        return -EINVAL;
                if (*s == ':') {
                        s++;
                        if (!read_digits(&s, 2, &sec))
                                return -EINVAL;
                        if (*s == '.' || *s == ',') {
                                s++;
                                if (!is_digit(*s))
                                        return -EINVAL;
                                /* Keep µs, ignore finer digits (truncate). */
                                for (; is_digit(*s); s++)
                                        if (frac_mul > 1) {
                                                frac_mul /= 10;
                                                frac += (usec_t) (*s - '0') * frac_mul;
                                        }
                        }
                } else if (strict)
                        return -EINVAL;
        } else if (strict)
                return -EINVAL;

        if (*s == 'Z' || *s == 'z')
                s++;
        else if (*s == '+' || *s == '-') {
                int sign = *s++ == '-' ? -1 : 1;

                if (!read_digits(&s, 2, &oh))
                        return -EINVAL;
                if (*s == ':')
                        s++;
                else if (strict)
                        return -EINVAL;
                if (!read_digits(&s, 2, &om))
                        return -EINVAL;
                if (oh > 23 || om > 59)
                        return -EINVAL;
                offset = sign * (int64_t) (oh * 3600 + om * 60);
        } else if (strict)
                return -EINVAL;

        if (*s != '\0')
                return -EINVAL;

        /* Second 60 is a leap second (RFC 3339 allows it); it folds into
         * the next minute since we count POSIX time. */
        if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 ||
            min > 59 || sec > 60)
                return -EINVAL;

        t = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec - offset;
        if (t < 0)
                return -ERANGE;

        *ret = (usec_t) t * USEC_PER_SEC + frac;
        return 0;
}

int parse_timestamp_rfc3339(const char *s, usec_t *ret) {
        if (!s)
                return -EINVAL;
        return parse_rfc3339_full(s, true, ret);
}

int parse_timestamp(const char *s, usec_t now, usec_t *ret) {
        char buf[64];
        size_t l;
        usec_t span;
        int r;

        if (!s)
                return -EINVAL;

        /* Trim into a local copy so that the grammar below can rely on the
         * string ending right after the value. */
        while (is_space(*s))
                s++;
        l = strlen(s);
        while (l > 0 && is_space(s[l - 1]))
                l--;
        if (l == 0 || l >= sizeof buf)
                return -EINVAL;
        memcpy(buf, s, l);
        buf[l] = '\0';

        if (strcmp(buf, "now") == 0) {
                *ret = now;
                return 0;
        }
        if (strcmp(buf, "today") == 0 || strcmp(buf, "yesterday") == 0 ||
            strcmp(buf, "tomorrow") == 0) {
                usec_t midnight = now - now % USEC_PER_DAY;

                if (buf[0] == 'y') {
                        if (midnight < USEC_PER_DAY)
                                return -ERANGE;
                        midnight -= USEC_PER_DAY;
                } else if (buf[1] == 'o' && buf[2] == 'm')
                        midnight += USEC_PER_DAY;
                *ret = midnight;
                return 0;
        }

        /* "@1700000000" (UNIX seconds, fraction allowed), as systemd. */
        if (buf[0] == '@') {
                if (!is_digit(buf[1]) && buf[1] != '.')
                        return -EINVAL;
                r = parse_timespan(buf + 1, &span);
                if (r < 0 || strspn(buf + 1, "0123456789.") != l - 1)
                        return -EINVAL;
                *ret = span;
                return 0;
        }

        /* Relative: "-10min", "+1h", and journalctl's "10min ago". */
        if (buf[0] == '-' || buf[0] == '+') {
                r = parse_timespan(buf + 1, &span);
                if (r < 0 || span == USEC_INFINITY)
                        return -EINVAL;
                if (buf[0] == '-') {
                        if (span > now)
                                return -ERANGE;
                        *ret = now - span;
                } else {
                        if (span >= USEC_INFINITY - now)
                                return -ERANGE;
                        *ret = now + span;
                }
                return 0;
        }
        if (l > 4 && strcmp(buf + l - 4, " ago") == 0) {
                buf[l - 4] = '\0';
                r = parse_timespan(buf, &span);
                if (r < 0 || span == USEC_INFINITY)
                        return -EINVAL;
                if (span > now)
                        return -ERANGE;
                *ret = now - span;
                return 0;
        }

        return parse_rfc3339_full(buf, false, ret);
}
