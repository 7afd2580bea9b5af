/* SPDX-License-Identifier: MIT */
/*
 * db_copy_escape() / db_copy_append(): COPY text format, checked against a
 * table of inputs. No server needed (test-db.sh checks that PostgreSQL reads
 * the result back unchanged).
 */
#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "db.h"
#include "tap.h"

static const struct {
        const char *in;
        size_t n;
        const char *out;
} cases[] = {
        { "", 0, "" },
        { "plain", 5, "plain" },
        { "a\tb", 3, "a\\tb" },
        { "line\nnext", 9, "line\\nnext" },
        { "cr\r", 3, "cr\\r" },
        { "back\\slash", 10, "back\\\\slash" },
        { "\\N", 2, "\\\\N" },                  /* the text "\N", not NULL */
        { "\\.", 2, "\\\\." },                  /* cannot end the data early */
        { "\t\n\r\\", 4, "\\t\\n\\r\\\\" },
        { "quote ' \" é ☎", strlen("quote ' \" é ☎"), "quote ' \" é ☎" },
        { "prefix only", 6, "prefix" },         /* n, not strlen, decides */
};

int main(void) {
        char *buf = NULL, big[5000];
        size_t len = 0, alloc = 0, expect_len;
        int r;

        plan((int) ELEMENTSOF(cases) * 2 + 9);

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                len = 0;
                r = db_copy_escape(&buf, &len, &alloc, cases[i].in, cases[i].n);
                is_int(r, 0, "escape case %zu returns 0", i);
                is_str(buf, cases[i].out, "escape case %zu", i);
        }

        /* A row: fields joined by raw tabs, NULL as \N, ended by a newline. */
        len = 0;
        r = db_copy_escape(&buf, &len, &alloc, "1", 1);
        r = r ?: db_copy_append(&buf, &len, &alloc, "\t", 1);
        r = r ?: db_copy_escape(&buf, &len, &alloc, NULL, 0);
        r = r ?: db_copy_append(&buf, &len, &alloc, "\t", 1);
        r = r ?: db_copy_escape(&buf, &len, &alloc, "x\ty", 3);
        r = r ?: db_copy_append(&buf, &len, &alloc, "\n", 1);
        is_int(r, 0, "building a row succeeds");
        is_str(buf, "1\t\\N\tx\\ty\n", "row with NULL and an escaped tab");
        is_int(len, strlen("1\t\\N\tx\\ty\n"), "len tracks the bytes");

        /* NUL cannot be stored in text: refused, buffer unchanged. */
        expect_len = len;
        r = db_copy_escape(&buf, &len, &alloc, "a\0b", 3);
        is_int(r, -EINVAL, "a NUL byte is refused");
        is_int(len, expect_len, "refused input leaves the buffer as it was");

        /* Growth across many reallocations keeps content and termination. */
        memset(big, '\\', sizeof big);
        len = 0;
        for (int k = 0; k < 20; k++)
                if (db_copy_escape(&buf, &len, &alloc, big, sizeof big) < 0)
                        break;
        is_int(len, 20 * 2 * sizeof big, "20 x 5000 backslashes double to 200000 bytes");
        ok(alloc > len && buf[len] == '\0', "buffer stays NUL-terminated after growth");
        ok(buf[0] == '\\' && buf[len - 1] == '\\', "content survives reallocation");

        is_int(db_copy_escape(NULL, &len, &alloc, "x", 1), -EINVAL, "NULL buffer pointer refused");

        free(buf);
        return exit_status();
}
