/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "tap.h"

/* in[0..len) escaped into a buffer of size bytes must give out. */
static const struct {
        const char *in;
        size_t len;
        size_t size;
        const char *out;
} cases[] = {
        /* Printable ASCII is kept; backslash and quote get a backslash. */
        { "A", 1, 80, "A" },
        { "call-17", 7, 80, "call-17" },
        { "a b", 3, 80, "a b" },
        { "a\"b\\c", 5, 80, "a\\\"b\\\\c" },
        { "", 0, 80, "" },
        /* The C escapes, the rest of the control bytes as \xNN. */
        { "\a\b\f\n\r\t\v", 7, 80, "\\a\\b\\f\\n\\r\\t\\v" },
        { "\x1b[31mred", 8, 80, "\\x1b[31mred" },
        { "\x01\x1f\x7f", 3, 80, "\\x01\\x1f\\x7f" },
        { "a\0b", 3, 80, "a\\x00b" },
        /* Bytes from 0x80 up, valid UTF-8 or not, become ASCII. */
        { "Zo\xc3\xab", 4, 80, "Zo\\xc3\\xab" },
        { "\xff\xfe", 2, 80, "\\xff\\xfe" },
        /* Exactly fitting: no cut. */
        { "abcdefg", 7, 8, "abcdefg" },
        { "\x1b", 1, 5, "\\x1b" },
        /* One byte too long: cut with "..." */
        { "abcdefgh", 8, 8, "abcd..." },
        { "abcdefghijklmnopqrstuvwxyz", 26, 10, "abcdef..." },
        /* A cut never splits an escape sequence. */
        { "ab\x1b\x1b\x1b", 5, 10, "ab\\x1b..." },
        { "a\x1b\x1b\x1b", 4, 10, "a\\x1b..." },
        { "\"\"\"\"\"\"", 6, 10, "\\\"\\\"\\\"..." },
        { "\n\n\n\n\n", 5, 9, "\\n\\n..." },
        /* Buffers too small for "..." get what fits of it. */
        { "abcdef", 6, 4, "..." },
        { "abcdef", 6, 3, ".." },
        { "abcdef", 6, 1, "" },
        { "ab", 2, 3, "ab" },
};

int main(void) {
        char buf[128];

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                memset(buf, 'X', sizeof buf);
                escape_cut_len(buf, cases[i].size, cases[i].in, cases[i].len);
                is_str(buf, cases[i].out, "case %zu: %zu bytes into %zu", i, cases[i].len, cases[i].size);
                ok(strlen(buf) < cases[i].size, "case %zu: fits", i);
                ok(buf[cases[i].size] == 'X', "case %zu: nothing written past the buffer", i);
        }

        /* Size 0 writes nothing at all. */
        buf[0] = 'X';
        escape_cut_len(buf, 0, "abc", 3);
        ok(buf[0] == 'X', "size 0 writes nothing");

        /* NUL-terminated form, and NULL. */
        is_str(escape_cut(buf, sizeof buf, "x\ty"), "x\\ty", "escape_cut");
        is_str(escape_cut(buf, sizeof buf, NULL), "", "escape_cut(NULL)");

        /* A megabyte id of ESC bytes: the message part stays short and
         * holds no control byte. */
        {
                size_t n = 1U << 20;
                char *big = malloc(n + 1), id[ESCAPE_ID_SIZE];
                bool clean = true;

                if (!big)
                        return 1;
                memset(big, '\x1b', n);
                big[n] = 0;
                escape_cut(id, sizeof id, big);
                ok(strlen(id) < ESCAPE_ID_SIZE, "1 MiB id cut to %zu bytes", strlen(id));
                for (const char *p = id; *p; p++)
                        if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                                clean = false;
                ok(clean, "no control byte left");
                ok(strcmp(id + strlen(id) - 3, "...") == 0, "ends in ...");
                free(big);
        }

        return done_testing();
}
