/* SPDX-License-Identifier: MIT */
#include "utf8.h"

size_t utf8_sequence_len(const unsigned char *s, size_t n) {
        unsigned c = s[0];

        if (c < 0x80)
                return 1;
        /* 0xc0/0xc1 could only start overlong two-byte forms. */
        if (c >= 0xc2 && c <= 0xdf)
                return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
        if (c >= 0xe0 && c <= 0xef) {
                if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
                        return 0;
                /* 0xe0 needs >= U+0800 (no overlong); 0xed must stay below
                 * the surrogates. */
                if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))
                        return 0;
                return 3;
        }
        if (c >= 0xf0 && c <= 0xf4) {
                if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
                    (s[3] & 0xc0) != 0x80)
                        return 0;
                /* 0xf0 needs >= U+10000; 0xf4 must stay <= U+10FFFF. */
                if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
                        return 0;
                return 4;
        }
        return 0;
}

bool utf8_is_valid(const char *s, size_t n, bool allow_nul) {
        const unsigned char *p = (const unsigned char *) s, *end = p + n;

        while (p < end) {
                size_t l;

                /* ASCII fast path: most of what we check is plain text. */
                if (*p < 0x80) {
                        if (*p == 0 && !allow_nul)
                                return false;
                        p++;
                        continue;
                }
                l = utf8_sequence_len(p, (size_t) (end - p));
                if (l == 0)
                        return false;
                p += l;
        }
        return true;
}
