/* SPDX-License-Identifier: MIT */
/* eventd's archive spill file (daemons/eventd/spill.c): records come back
 * in order, the file empties when all are read, a later open finds what an
 * earlier run left, and a record torn by a crash is cut off. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "daemons/eventd/spill.h"
#include "tap.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(Spill *, spill_free);

static char dir[] = "/tmp/test-eventd-spill.XXXXXX";

static off_t file_size(void) {
        char path[256];
        struct stat st;

        (void) snprintf(path, sizeof(path), "%s/%s", dir, SPILL_FILE_NAME);
        return stat(path, &st) < 0 ? -1 : st.st_size;
}

/* Read one record and compare it with what was written. */
static int next_is(Spill *s, const char *name, uint64_t rows, const char *data) {
        _cleanup_(freep) char *n = NULL, *d = NULL;
        uint64_t r_rows;
        size_t len;
        int r;

        r = spill_next(s, &n, &r_rows, &d, &len);
        if (r != 1)
                return r;
        return strcmp(n, name) == 0 && r_rows == rows && len == strlen(data) && memcmp(d, data, len) == 0;
}

int main(void) {
        static const struct {
                const char *name;
                uint64_t rows;
                const char *data;
        } records[] = {
                { "run:1", 3, "first batch" },
                { "run:2", 1, "" },
                { "run:3", 5000, "a longer batch with\0bytes" },
        };
        _cleanup_(spill_freep) Spill *s = NULL;
        SpillStats st;

        if (!mkdtemp(dir)) {
                printf("Bail out! mkdtemp: %m\n");
                return 1;
        }

        ok(spill_open(&s, dir) == 0, "open creates the file");
        ok(spill_peek(s) == 0, "an empty file has nothing to read");
        for (size_t i = 0; i < ELEMENTSOF(records); i++)
                ok(spill_append(s, records[i].name, records[i].rows, records[i].data, strlen(records[i].data)) == 0,
                   "append %s", records[i].name);
        spill_get_stats(s, &st);
        ok(st.records == 3 && st.rows == 5004 && st.bytes == (uint64_t) file_size(), "stats: 3 records, 5004 rows");
        ok(spill_append(s, "", 1, "x", 1) == -EINVAL, "a record needs a name");

        ok(spill_peek(s) == strlen(records[0].data), "peek: the first record's length");
        ok(next_is(s, "run:1", 3, "first batch") == 1, "first record back");
        ok(spill_reset(s) == 0 && file_size() > 0, "reset while records remain changes nothing");
        /* Appending while reading: it goes behind the others. */
        ok(spill_append(s, "run:4", 2, "late", 4) == 0, "append while reading");
        ok(next_is(s, "run:2", 1, "") == 1, "second record back (empty data)");
        ok(next_is(s, "run:3", 5000, "a longer batch with") == 1, "third record back");
        ok(next_is(s, "run:4", 2, "late") == 1, "the late one last");
        ok(next_is(s, "x", 0, "") == 0, "then nothing");
        spill_get_stats(s, &st);
        ok(st.records == 0 && st.rows == 0, "stats: nothing unread");
        ok(spill_reset(s) == 0 && file_size() == 0, "reset empties the file");

        /* What a run leaves, the next finds; a torn record is cut off. */
        ok(spill_append(s, "old:1", 7, "kept", 4) == 0 && spill_append(s, "old:2", 8, "torn", 4) == 0,
           "two records for the next run");
        s = spill_free(s);
        {
                char path[256];

                (void) snprintf(path, sizeof(path), "%s/%s", dir, SPILL_FILE_NAME);
                ok(truncate(path, file_size() - 2) == 0, "a crash tears the last record");
        }
        ok(spill_open(&s, dir) == 0, "reopen");
        spill_get_stats(s, &st);
        ok(st.records == 1 && st.rows == 7, "the whole record is found, the torn one is not (%" PRIu64 " records)",
           st.records);
        ok(next_is(s, "old:1", 7, "kept") == 1, "and reads back");
        ok(next_is(s, "x", 0, "") == 0, "nothing after it");
        ok(spill_append(s, "new:1", 1, "n", 1) == 0 && next_is(s, "new:1", 1, "n") == 1,
           "appending goes on where the whole records end");

        s = spill_free(s);
        {
                char path[256];

                (void) snprintf(path, sizeof(path), "%s/%s", dir, SPILL_FILE_NAME);
                (void) unlink(path);
        }
        (void) rmdir(dir);
        ok(spill_open(&s, "/nonexistent/dir") == -ENOENT, "a missing directory is -ENOENT");
        return done_testing();
}
