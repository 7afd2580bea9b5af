/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "envelope.h"
#include "json-util.h"
#include "scan.h"

/*
 * A hand-written validator instead of json-c: the hub checks every event at
 * a few hundred thousand per second, and a DOM parser would allocate an
 * object per value only for us to throw it away. This walks the bytes once
 * and remembers where the six envelope fields are.
 */

typedef struct Scanner {
        const unsigned char *p, *end;
        const char *reason;
} Scanner;

/* Bytes a string may hold as they are: printable ASCII but '"' and '\\'. */
static const bool plain_char[256] = {
        [0x20 ... 0x21] = true, /* 0x22 is '"' */
        [0x23 ... 0x5b] = true, /* 0x5c is '\\' */
        [0x5d ... 0x7f] = true,
};

enum {
        FIELD_SEQ = 1 << 0,
        FIELD_TIME = 1 << 1,
        FIELD_SOURCE = 1 << 2,
        FIELD_HOST = 1 << 3,
        FIELD_TYPE = 1 << 4,
        FIELD_DATA = 1 << 5,
        FIELD_ALL = (1 << 6) - 1,
};

#define ONES UINT64_C(0x0101010101010101)

/* Bit 7 of each byte of the result is set where w has a zero byte (and
 * possibly above one; callers only test for any). */
static inline uint64_t has_zero(uint64_t w) {
        return (w - ONES) & ~w & ONES * 0x80;
}

static bool fail(Scanner *s, const char *reason) {
        if (!s->reason)
                s->reason = reason;
        return false;
}

static void skip_ws(Scanner *s) {
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
                s->p++;
}

static int hexval(unsigned char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Four hex digits at p (bounds already checked), or -1. */
static int hex4(const unsigned char *p) {
        int v = 0;

        for (int i = 0; i < 4; i++) {
                int h = hexval(p[i]);
                if (h < 0)
                        return -1;
                v = v * 16 + h;
        }
        return v;
}

/*
 * One UTF-8 sequence starting at a byte >= 0x80 (RFC 3629 table 3.7: no
 * overlong forms, no surrogates, nothing above U+10FFFF). PostgreSQL checks
 * the same when COPY reads text, so anything we let through here it takes.
 */
static bool scan_utf8(Scanner *s) {
        const unsigned char *p = s->p;
        size_t left = (size_t) (s->end - p);
        unsigned char c = p[0], lo = 0x80, hi = 0xBF;
        size_t n;

        if (c >= 0xC2 && c <= 0xDF)
                n = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
                n = 3;
                if (c == 0xE0)
                        lo = 0xA0;
                else if (c == 0xED)
                        hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
                n = 4;
                if (c == 0xF0)
                        lo = 0x90;
                else if (c == 0xF4)
                        hi = 0x8F;
        } else
                return fail(s, "invalid UTF-8");

        if (left < n)
                return fail(s, "invalid UTF-8");
        if (p[1] < lo || p[1] > hi)
                return fail(s, "invalid UTF-8");
        for (size_t i = 2; i < n; i++)
                if (p[i] < 0x80 || p[i] > 0xBF)
                        return fail(s, "invalid UTF-8");
        s->p += n;
        return true;
}

/* A string at s->p (on the opening quote). Returns its contents. */
static bool scan_string(Scanner *s, const unsigned char **ret, size_t *ret_len, bool *ret_escaped) {
        const unsigned char *start;
        bool escaped = false;

        s->p++;
        start = s->p;
        for (;;) {
                unsigned char c;

                /* The common case, eight bytes at a time: stop at the first
                 * word holding a control byte, '"', '\\' or a byte >= 0x80. */
                while (s->end - s->p >= 8) {
                        uint64_t w;

                        memcpy(&w, s->p, 8);
                        if (((w - ONES * 0x20) | has_zero(w ^ (ONES * '"')) | has_zero(w ^ (ONES * '\\')) | w) &
                            ONES * 0x80)
                                break;
                        s->p += 8;
                }
                while (s->p < s->end && plain_char[*s->p])
                        s->p++;
                if (s->p >= s->end)
                        return fail(s, "unterminated string");
                c = *s->p;
                if (c == '"')
                        break;
                if (c < 0x20)
                        return fail(s, "control character in string");
                if (c >= 0x80) {
                        if (!scan_utf8(s))
                                return false;
                        continue;
                }
                if (c != '\\') {
                        s->p++;
                        continue;
                }

                escaped = true;
                if (s->end - s->p < 2)
                        return fail(s, "unterminated string");
                c = s->p[1];
                if (strchr("\"\\/bfnrt", c) && c) {
                        s->p += 2;
                        continue;
                }
                if (c != 'u')
                        return fail(s, "bad escape in string");

                /* \u escapes: PostgreSQL's jsonb refuses \u0000, and both
                 * json and jsonb refuse unpaired surrogates. */
                int u = s->end - s->p >= 6 ? hex4(s->p + 2) : -1;
                if (u < 0)
                        return fail(s, "bad \\u escape in string");
                if (u == 0)
                        return fail(s, "\\u0000 in string");
                if (u >= 0xDC00 && u <= 0xDFFF)
                        return fail(s, "lone low surrogate in string");
                s->p += 6;
                if (u >= 0xD800 && u <= 0xDBFF) {
                        int l = s->end - s->p >= 6 && s->p[0] == '\\' && s->p[1] == 'u' ? hex4(s->p + 2) : -1;
                        if (l < 0xDC00 || l > 0xDFFF)
                                return fail(s, "lone high surrogate in string");
                        s->p += 6;
                }
        }

        if (ret)
                *ret = start;
        if (ret_len)
                *ret_len = (size_t) (s->p - start);
        if (ret_escaped)
                *ret_escaped = escaped;
        s->p++;
        return true;
}

static bool is_digit(unsigned char c) {
        return c >= '0' && c <= '9';
}

/* A number per RFC 8259 grammar. *ret_uint: it is a plain non-negative
 * integer (digits only). */
static bool scan_number(Scanner *s, const unsigned char **ret, size_t *ret_len, bool *ret_uint) {
        const unsigned char *start = s->p;
        bool uint = true;

        if (s->p < s->end && *s->p == '-') {
                uint = false;
                s->p++;
        }
        if (s->p >= s->end || !is_digit(*s->p))
                return fail(s, "bad number");
        if (*s->p == '0')
                s->p++;
        else
                while (s->p < s->end && is_digit(*s->p))
                        s->p++;
        if (s->p < s->end && *s->p == '.') {
                uint = false;
                s->p++;
                if (s->p >= s->end || !is_digit(*s->p))
                        return fail(s, "bad number");
                while (s->p < s->end && is_digit(*s->p))
                        s->p++;
        }
        if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
                uint = false;
                s->p++;
                if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
                        s->p++;
                if (s->p >= s->end || !is_digit(*s->p))
                        return fail(s, "bad number");
                while (s->p < s->end && is_digit(*s->p))
                        s->p++;
        }
        if (ret)
                *ret = start;
        if (ret_len)
                *ret_len = (size_t) (s->p - start);
        if (ret_uint)
                *ret_uint = uint;
        return true;
}

static bool scan_literal(Scanner *s, const char *word, size_t n) {
        if ((size_t) (s->end - s->p) < n || memcmp(s->p, word, n) != 0)
                return fail(s, "bad literal");
        s->p += n;
        return true;
}

static bool scan_value(Scanner *s, unsigned depth);

static bool scan_object(Scanner *s, unsigned depth) {
        if (depth > JSON_DEPTH_MAX)
                return fail(s, "nested too deeply");
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == '}') {
                s->p++;
                return true;
        }
        for (;;) {
                skip_ws(s);
                if (s->p >= s->end || *s->p != '"')
                        return fail(s, "object key expected");
                if (!scan_string(s, NULL, NULL, NULL))
                        return false;
                skip_ws(s);
                if (s->p >= s->end || *s->p != ':')
                        return fail(s, "':' expected");
                s->p++;
                skip_ws(s);
                if (!scan_value(s, depth + 1))
                        return false;
                skip_ws(s);
                if (s->p < s->end && *s->p == ',') {
                        s->p++;
                        continue;
                }
                if (s->p < s->end && *s->p == '}') {
                        s->p++;
                        return true;
                }
                return fail(s, "',' or '}' expected");
        }
}

static bool scan_array(Scanner *s, unsigned depth) {
        if (depth > JSON_DEPTH_MAX)
                return fail(s, "nested too deeply");
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == ']') {
                s->p++;
                return true;
        }
        for (;;) {
                skip_ws(s);
                if (!scan_value(s, depth + 1))
                        return false;
                skip_ws(s);
                if (s->p < s->end && *s->p == ',') {
                        s->p++;
                        continue;
                }
                if (s->p < s->end && *s->p == ']') {
                        s->p++;
                        return true;
                }
                return fail(s, "',' or ']' expected");
        }
}

/* Any value at s->p (whitespace already skipped). */
static bool scan_value(Scanner *s, unsigned depth) {
        if (s->p >= s->end)
                return fail(s, "value expected");
        switch (*s->p) {
        case '{':
                return scan_object(s, depth);
        case '[':
                return scan_array(s, depth);
        case '"':
                return scan_string(s, NULL, NULL, NULL);
        case 't':
                return scan_literal(s, "true", 4);
        case 'f':
                return scan_literal(s, "false", 5);
        case 'n':
                return scan_literal(s, "null", 4);
        default:
                return scan_number(s, NULL, NULL, NULL);
        }
}

/* n digits at p as a number; false if any is not a digit. */
static bool digits(const char *p, size_t n, unsigned *ret) {
        unsigned v = 0;

        for (size_t i = 0; i < n; i++) {
                if (!is_digit((unsigned char) p[i]))
                        return false;
                v = v * 10 + (unsigned) (p[i] - '0');
        }
        *ret = v;
        return true;
}

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

int scan_time(const char *s, size_t len, usec_t *ret) {
        static const unsigned mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        /* 9999-12-31T23:59:59.999999Z, the last instant the canonical
         * four-digit-year form can show. */
        static const int64_t max = INT64_C(253402300799999999);
        unsigned y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0, dim;
        int64_t t;
        size_t i = 19;
        int sign = 0;

        /* YYYY-MM-DDTHH:MM:SS */
        if (len < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
            !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
            !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
            !digits(s + 17, 2, &sec))
                return -EBADMSG;

        if (s[i] == '.') {
                unsigned n = 0;

                /* Microseconds; further digits are truncated. */
                for (i++; i < len && is_digit((unsigned char) s[i]); i++, n++)
                        if (n < 6)
                                frac = frac * 10 + (unsigned) (s[i] - '0');
                if (n == 0)
                        return -EBADMSG;
                for (; n < 6; n++)
                        frac *= 10;
        }

        if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z'))
                i++;
        else if (i + 6 == len && (s[i] == '+' || s[i] == '-')) {
                sign = s[i] == '+' ? 1 : -1;
                if (!digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || !digits(s + i + 4, 2, &om) || oh > 23 ||
                    om > 59)
                        return -EBADMSG;
                i += 6;
        } else
                return -EBADMSG;

        if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
                return -EBADMSG;
        dim = mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0) ? 29 : mdays[mo - 1];
        if (d > dim)
                return -EBADMSG;

        /* A leap second (:60) counts as the first second of the next
         * minute, as PostgreSQL reads it. */
        t = days_from_civil(y, mo, d) * 86400 + (int64_t) h * 3600 + (int64_t) mi * 60 + sec;
        t -= sign * ((int64_t) oh * 3600 + (int64_t) om * 60);
        if (t < 0 || t > max / 1000000)
                return -EBADMSG;
        t = t * 1000000 + frac;
        if (t > max)
                return -EBADMSG;
        *ret = (usec_t) t;
        return 0;
}

/* The top-level object, picking out the envelope's fields. */
static bool scan_top(Scanner *s, ScanEnvelope *e) {
        unsigned seen = 0;

        skip_ws(s);
        if (s->p >= s->end || *s->p != '{')
                return fail(s, "not a JSON object");
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == '}')
                return fail(s, "missing fields");

        for (;;) {
                const unsigned char *key, *v;
                size_t key_len, v_len;
                bool escaped, uint;
                unsigned field = 0;

                skip_ws(s);
                if (s->p >= s->end || *s->p != '"')
                        return fail(s, "object key expected");
                if (!scan_string(s, &key, &key_len, &escaped))
                        return false;
                /* Escaped top-level keys could alias ours ("s\u0065q") and
                 * make the stored JSON say something else than the columns
                 * we extract; no producer of ours escapes them. */
                if (escaped)
                        return fail(s, "escaped key in envelope");
                skip_ws(s);
                if (s->p >= s->end || *s->p != ':')
                        return fail(s, "':' expected");
                s->p++;
                skip_ws(s);
                if (s->p >= s->end)
                        return fail(s, "value expected");

#define KEY_IS(k) (key_len == sizeof(k) - 1 && memcmp(key, k, sizeof(k) - 1) == 0)
                if (KEY_IS("seq"))
                        field = FIELD_SEQ;
                else if (KEY_IS("time"))
                        field = FIELD_TIME;
                else if (KEY_IS("source"))
                        field = FIELD_SOURCE;
                else if (KEY_IS("host"))
                        field = FIELD_HOST;
                else if (KEY_IS("type"))
                        field = FIELD_TYPE;
                else if (KEY_IS("data"))
                        field = FIELD_DATA;
#undef KEY_IS
                if (field & seen)
                        return fail(s, "duplicate envelope field");
                seen |= field;

                switch (field) {
                case FIELD_SEQ: {
                        uint64_t seq = 0;

                        if (!scan_number(s, &v, &v_len, &uint))
                                return false;
                        /* bigint in the archive: at most INT64_MAX. */
                        if (!uint || v_len > 19)
                                return fail(s, "seq is not an unsigned integer");
                        for (size_t i = 0; i < v_len; i++)
                                seq = seq * 10 + (uint64_t) (v[i] - '0');
                        if (seq > INT64_MAX)
                                return fail(s, "seq out of range");
                        e->seq = seq;
                        break;
                }
                case FIELD_TIME:
                        if (*s->p != '"')
                                return fail(s, "time is not a string");
                        if (!scan_string(s, &v, &v_len, &escaped))
                                return false;
                        if (escaped || scan_time((const char *) v, v_len, &e->time) < 0)
                                return fail(s, "time is not RFC 3339");
                        break;
                case FIELD_SOURCE:
                case FIELD_TYPE:
                        if (*s->p != '"')
                                return fail(s, field == FIELD_SOURCE ? "source is not a string" : "type is not a string");
                        if (!scan_string(s, &v, &v_len, &escaped))
                                return false;
                        if (escaped || !(field == FIELD_SOURCE ? envelope_source_is_valid((const char *) v, v_len)
                                                               : envelope_type_is_valid((const char *) v, v_len)))
                                return fail(s, field == FIELD_SOURCE ? "bad source" : "bad type");
                        if (field == FIELD_SOURCE) {
                                e->source = (const char *) v;
                                e->source_len = v_len;
                        } else {
                                e->type = (const char *) v;
                                e->type_len = v_len;
                        }
                        break;
                case FIELD_HOST:
                        if (*s->p != '"')
                                return fail(s, "host is not a string");
                        if (!scan_string(s, &v, &v_len, &escaped))
                                return false;
                        if (v_len > SCAN_HOST_MAX)
                                return fail(s, "bad host");
                        e->host = (const char *) v;
                        e->host_len = v_len;
                        e->host_escaped = escaped;
                        break;
                case FIELD_DATA:
                        if (*s->p != '{')
                                return fail(s, "data is not an object");
                        if (!scan_object(s, 2))
                                return false;
                        break;
                default:
                        if (!scan_value(s, 2))
                                return false;
                }

                skip_ws(s);
                if (s->p < s->end && *s->p == ',') {
                        s->p++;
                        continue;
                }
                if (s->p < s->end && *s->p == '}') {
                        s->p++;
                        break;
                }
                return fail(s, "',' or '}' expected");
        }

        skip_ws(s);
        if (s->p != s->end)
                return fail(s, "trailing data after the object");
        if (seen != FIELD_ALL)
                return fail(s, "missing fields");
        return true;
}

int scan_envelope(const char *topic, size_t topic_len, const char *body, size_t body_len,
                  ScanEnvelope *ret, const char **ret_reason) {
        Scanner s = {
                .p = (const unsigned char *) body,
                .end = (const unsigned char *) body + body_len,
        };
        ScanEnvelope e = {};

        if (body_len > SCAN_BODY_MAX)
                s.reason = "envelope too large";
        else if (topic_len >= ENVELOPE_TOPIC_MAX)
                s.reason = "topic too long";
        else if (scan_top(&s, &e)) {
                /* Subscribers filter on the topic: it must say what the
                 * envelope says. */
                if (topic_len != e.source_len + 1 + e.type_len || memcmp(topic, e.source, e.source_len) != 0 ||
                    topic[e.source_len] != '.' || memcmp(topic + e.source_len + 1, e.type, e.type_len) != 0)
                        s.reason = "topic does not match source and type";
                else {
                        if (ret)
                                *ret = e;
                        return 0;
                }
        }

        if (ret_reason)
                *ret_reason = s.reason ? s.reason : "invalid envelope";
        return -EBADMSG;
}

/* Encode code point u as UTF-8 into buf[*n...]. */
static bool put_utf8(char *buf, size_t size, size_t *n, unsigned u) {
        unsigned char tmp[4];
        size_t k;

        if (u < 0x80) {
                tmp[0] = (unsigned char) u;
                k = 1;
        } else if (u < 0x800) {
                tmp[0] = (unsigned char) (0xC0 | (u >> 6));
                tmp[1] = (unsigned char) (0x80 | (u & 0x3F));
                k = 2;
        } else if (u < 0x10000) {
                tmp[0] = (unsigned char) (0xE0 | (u >> 12));
                tmp[1] = (unsigned char) (0x80 | ((u >> 6) & 0x3F));
                tmp[2] = (unsigned char) (0x80 | (u & 0x3F));
                k = 3;
        } else {
                tmp[0] = (unsigned char) (0xF0 | (u >> 18));
                tmp[1] = (unsigned char) (0x80 | ((u >> 12) & 0x3F));
                tmp[2] = (unsigned char) (0x80 | ((u >> 6) & 0x3F));
                tmp[3] = (unsigned char) (0x80 | (u & 0x3F));
                k = 4;
        }
        if (size - *n < k)
                return false;
        memcpy(buf + *n, tmp, k);
        *n += k;
        return true;
}

int scan_unescape(const char *s, size_t len, char *buf, size_t size) {
        size_t n = 0;

        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];
                int u;

                if (c != '\\') {
                        if (n >= size)
                                return -ENOBUFS;
                        buf[n++] = (char) c;
                        continue;
                }
                if (++i >= len)
                        return -EBADMSG;
                switch (s[i]) {
                case '"': c = '"'; break;
                case '\\': c = '\\'; break;
                case '/': c = '/'; break;
                case 'b': c = '\b'; break;
                case 'f': c = '\f'; break;
                case 'n': c = '\n'; break;
                case 'r': c = '\r'; break;
                case 't': c = '\t'; break;
                case 'u':
                        if (len - i < 5 || (u = hex4((const unsigned char *) s + i + 1)) < 0)
                                return -EBADMSG;
                        i += 4;
                        if (u >= 0xD800 && u <= 0xDBFF) {
                                int l;

                                if (len - i < 7 || s[i + 1] != '\\' || s[i + 2] != 'u' ||
                                    (l = hex4((const unsigned char *) s + i + 3)) < 0xDC00 || l > 0xDFFF)
                                        return -EBADMSG;
                                u = 0x10000 + ((u - 0xD800) << 10) + (l - 0xDC00);
                                i += 6;
                        } else if (u == 0 || (u >= 0xDC00 && u <= 0xDFFF))
                                return -EBADMSG;
                        if (!put_utf8(buf, size, &n, (unsigned) u))
                                return -ENOBUFS;
                        continue;
                default:
                        return -EBADMSG;
                }
                if (n >= size)
                        return -ENOBUFS;
                buf[n++] = (char) c;
        }
        return (int) n;
}
