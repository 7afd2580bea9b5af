/* SPDX-License-Identifier: MIT */
/* The shell's line splitter (tools/ctl-shell.c), fed a table of lines. */
#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "tap.h"
#include "tools/ctl-shell.h"

static const struct {
        const char *line;
        int ret;
        const char *words[6]; /* NULL-terminated */
} cases[] = {
        { "", 0, { NULL } },
        { "   \t ", 0, { NULL } },
        { "quit", 0, { "quit", NULL } },
        { "call 1", 0, { "call", "1", NULL } },
        { "  answer\tA  \r\n", 0, { "answer", "A", NULL } },
        { "task add 'Call back, tomorrow'", 0, { "task", "add", "Call back, tomorrow", NULL } },
        { "task add \"say \\\"hi\\\" \\\\ bye\"", 0, { "task", "add", "say \"hi\" \\ bye", NULL } },
        { "a\\ b c", 0, { "a b", "c", NULL } },
        { "x'y z'\"w\"", 0, { "xy zw", NULL } },
        { "call ''", 0, { "call", "", NULL } },
        { "\"a\\nb\"", 0, { "a\\nb", NULL } },
        { "# a comment", 0, { NULL } },
        { "status # trailing comment", 0, { "status", NULL } },
        { "call a#b", 0, { "call", "a#b", NULL } },
        { "call 'open", -EINVAL, { NULL } },
        { "call \"open", -EINVAL, { NULL } },
        { "call \\", -EINVAL, { NULL } },
        { "events --since -10min -o json", 0, { "events", "--since", "-10min", "-o", "json", NULL } },
};

int main(void) {
        plan_no_plan();

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(strv_freep) char **v = NULL;
                int argc = -1, r, n = 0;

                r = ctl_split_line(cases[i].line, &v, &argc);
                /* Lines may hold CR/LF: name cases by index, not by text. */
                is_int(r, cases[i].ret, "case %zu returns %d", i, cases[i].ret);
                if (r < 0) {
                        ok(v == NULL && argc == -1, "  outputs untouched on failure");
                        continue;
                }
                while (cases[i].words[n])
                        n++;
                is_int(argc, n, "  %d words", n);
                for (int j = 0; j < n && j < argc; j++)
                        is_str(v[j], cases[i].words[j], "  word %d", j);
                ok(v[argc] == NULL, "  vector is NULL-terminated");
        }

        return done_testing();
}
