/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "escape.h"

/* The escape sequence for byte c into out (room for 4 bytes); returns its
 * length. */
static size_t escape_char(unsigned char c, char out[static 4]) {
        static const char hex[] = "0123456789abcdef";

        switch (c) {
        case '\\': memcpy(out, "\\\\", 2); return 2;
        case '"':  memcpy(out, "\\\"", 2); return 2;
        case '\a': memcpy(out, "\\a", 2); return 2;
        case '\b': memcpy(out, "\\b", 2); return 2;
        case '\f': memcpy(out, "\\f", 2); return 2;
        case '\n': memcpy(out, "\\n", 2); return 2;
        case '\r': memcpy(out, "\\r", 2); return 2;
        case '\t': memcpy(out, "\\t", 2); return 2;
        case '\v': memcpy(out, "\\v", 2); return 2;
        default:
                if (c >= 0x20 && c < 0x7f) {
                        out[0] = (char) c;
                        return 1;
                }
                /* Bytes from 0x80 up are escaped too, valid UTF-8 or not:
                 * the result is then plain ASCII whatever came in. */
                out[0] = '\\';
                out[1] = 'x';
                out[2] = hex[c >> 4];
                out[3] = hex[c & 15];
                return 4;
        }
}

char *escape_cut_len(char *buf, size_t size, const char *s, size_t len) {
        static const char ellipsis[] = "...";
        size_t o = 0, mark = 0, i;

        if (size == 0)
                return buf;

        for (i = 0; i < len; i++) {
                char e[4];
                size_t n = escape_char((unsigned char) s[i], e);

                /* Remember the last place where "..." still fits, so that a
                 * cut never splits an escape sequence. */
                if (o + sizeof ellipsis <= size)
                        mark = o;
                if (o + n + 1 > size)
                        break;
                memcpy(buf + o, e, n);
                o += n;
        }

        if (i < len) {
                /* Cut: "..." after the last whole sequence before which it
                 * fits; a buffer too small for it gets as much of it as
                 * fits. */
                if (mark + sizeof ellipsis > size)
                        mark = 0;
                o = mark;
                for (size_t k = 0; k < sizeof ellipsis - 1 && o + 1 < size; k++)
                        buf[o++] = ellipsis[k];
        }
        buf[o] = 0;
        return buf;
}

char *escape_cut(char *buf, size_t size, const char *s) {
        return escape_cut_len(buf, size, s, s ? strlen(s) : 0);
}
