/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "tap.h"

/* A section with one item of every type, to drive the value parsers. */
typedef struct TestConfig {
        char *name;
        char **words;
        bool flag;
        unsigned small;
        unsigned plain;
        uint64_t big;
        usec_t span;
        double ratio;
        int color;
        int level;
} TestConfig;

static const char *const colors[] = { "red", "green", "blue", NULL };

static const ConfigItem test_items[] = {
        { .key = "name", .type = CONFIG_STRING, .offset = offsetof(TestConfig, name), .def = "dflt" },
        { .key = "words", .type = CONFIG_STRV, .offset = offsetof(TestConfig, words), .def = "A B" },
        { .key = "flag", .type = CONFIG_BOOL, .offset = offsetof(TestConfig, flag), .def = "no" },
        { .key = "small", .type = CONFIG_UINT, .offset = offsetof(TestConfig, small), .def = "5", .max = 10 },
        { .key = "plain", .type = CONFIG_UINT, .offset = offsetof(TestConfig, plain), .def = "0" },
        { .key = "big", .type = CONFIG_UINT64, .offset = offsetof(TestConfig, big), .def = "1" },
        { .key = "span", .type = CONFIG_TIMESPAN, .offset = offsetof(TestConfig, span), .def = "10s" },
        { .key = "ratio", .type = CONFIG_DOUBLE, .offset = offsetof(TestConfig, ratio), .def = "1.5" },
        { .key = "color", .type = CONFIG_ENUM, .offset = offsetof(TestConfig, color), .def = "green", .names = colors },
        { .key = "level", .type = CONFIG_LOGLEVEL, .offset = offsetof(TestConfig, level), .def = "info" },
        {},
};

static DatabaseConfig db;
static EventsConfig ev;
static TestConfig tc;
static const ConfigSection sections[] = {
        { "database", config_database_items, &db },
        { "events", config_events_items, &ev },
        { "test", test_items, &tc },
        {},
};

static char dir[] = "/tmp/test-conf-XXXXXX";

static char *path_in(const char *name) {
        static char buf[4][512];
        static int k;

        k = (k + 1) % 4;
        snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
        return buf[k];
}

static void write_file(const char *name, const char *text) {
        FILE *f = fopen(path_in(name), "we");

        if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
                printf("Bail out! cannot write %s\n", name);
                exit(1);
        }
}

/* Run config_load() with stderr going into a buffer, so that the exact
 * message (file:line) can be checked. */
static char *load_capture(const char *path, int *ret_r) {
        char log_path[600];
        int saved, fd;
        FILE *f;
        char *out;
        long n;

        snprintf(log_path, sizeof log_path, "%s/stderr.log", dir);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        dup2(fd, STDERR_FILENO);
        close(fd);

        config_free(sections);
        *ret_r = config_load(path, sections);

        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);

        f = fopen(log_path, "re");
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        rewind(f);
        out = calloc(1, (size_t) n + 1);
        if (fread(out, 1, (size_t) n, f) != (size_t) n)
                out[0] = '\0';
        fclose(f);
        /* Pass the captured lines on as TAP comments for whoever reads the log. */
        for (char *l = out, *e; *l; l = e + 1) {
                e = strchrnul(l, '\n');
                if (e > l)
                        diag("stderr: %.*s", (int) (e - l), l);
                if (!*e)
                        break;
        }
        return out;
}

static void check_contains(const char *haystack, const char *needle, const char *what) {
        if (!ok(haystack && strstr(haystack, needle) != NULL, "%s", what))
                diag("  '%s' not found in '%s'", needle, haystack ? haystack : "(null)");
}

/* One value of [test] per row: what the file says and what must result. */
static const struct {
        const char *line;
        int r;
} values[] = {
        { "name = hello world", 0 },
        { "name =", 0 },
        { "words = one  two\tthree", 0 },
        { "flag = yes", 0 },
        { "flag = ON", 0 },
        { "flag = 0", 0 },
        { "flag = maybe", -EINVAL },
        { "small = 10", 0 },
        { "small = 11", -EINVAL },
        { "small = -1", -EINVAL },
        { "small = 1x", -EINVAL },
        { "plain = 4294967295", 0 },
        { "plain = 4294967296", -EINVAL },
        { "plain = 4K", 0 },
        { "big = 18446744073709551615", 0 },
        { "big = 18446744073709551616", -EINVAL },
        { "big = 64M", 0 },
        { "big = 64MiB", 0 },
        { "big = 16EiB", -EINVAL },
        { "big = 0x10", -EINVAL },
        { "big =", -EINVAL },
        { "span = 1h30min", 0 },
        { "span = infinity", 0 },
        { "span = soon", -EINVAL },
        { "ratio = 0.25", 0 },
        { "ratio = -1", -EINVAL },
        { "ratio = nan", -EINVAL },
        { "ratio = 1,5", -EINVAL },
        { "color = blue", 0 },
        { "color = purple", -EINVAL },
        { "level = debug", 0 },
        { "level = 3", 0 },
        { "level = loud", -EINVAL },
};

int main(void) {
        char text[2048], *out;
        int r;

        if (!mkdtemp(dir)) {
                printf("Bail out! mkdtemp failed\n");
                return 1;
        }
        unsetenv("CALLCENTER_DATABASE_URL");
        unsetenv("CALLCENTER_EVENTS");
        unsetenv("CALLCENTER_EVENTS_PUBLISH");

        is_str(config_default_path(), SYSCONFDIR "/callcenter/callcenter.conf", "default path");
        ok(config_known_sections[0] && config_known_sections[6] && !config_known_sections[7],
           "seven known sections");

        /* Defaults from an empty file. */
        write_file("empty.conf", "");
        out = load_capture(path_in("empty.conf"), &r);
        is_int(r, 0, "empty file loads");
        is_str(out, "", "and says nothing");
        free(out);
        is_str(db.url, "postgresql:///callcenter", "[database] url default");
        ok(db.buffer_bytes == 64ULL * 1024 * 1024, "[database] buffer_bytes default is 64 MiB");
        ok(db.connect_timeout == 10 * USEC_PER_SEC, "[database] connect_timeout default 10s");
        ok(db.reconnect_max == 5 * USEC_PER_SEC, "[database] reconnect_max default 5s");
        is_str(ev.publish, "ipc:///run/callcenter/events-in", "[events] publish default");
        is_str(ev.subscribe, "tcp://127.0.0.1:5556", "[events] subscribe default");
        is_int(ev.buffer, 100000, "[events] buffer default");
        is_int(ev.hwm, 100000, "[events] hwm default");
        is_str(tc.name, "dflt", "string default");
        ok(tc.words && !strcmp(tc.words[0], "A") && !strcmp(tc.words[1], "B") && !tc.words[2],
           "strv default");
        is_int(tc.color, 1, "enum default");
        is_int(tc.level, LOG_INFO, "log level default");
        ok(tc.ratio == 1.5, "double default");

        /* Every type, good and bad values. */
        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
                snprintf(text, sizeof text, "# a comment\n[test]\n%s\n", values[i].line);
                write_file("value.conf", text);
                out = load_capture(path_in("value.conf"), &r);
                is_int(r, values[i].r, "'%s' gives %d", values[i].line, values[i].r);
                if (values[i].r < 0) {
                        char expect[700];

                        snprintf(expect, sizeof expect, "%s:3: [test] ", path_in("value.conf"));
                        check_contains(out, expect, "error names file:3 and the section");
                        check_contains(out, "invalid value '", "error quotes the value");
                        check_contains(out, "(expected ", "error says what was expected");
                }
                free(out);
        }

        /* Spot checks of parsed values. */
        write_file("types.conf",
                   "[test]\n"
                   "  name = \"  spaced  \"   \n"
                   "\twords = one  two\tthree\n"
                   "flag = true ; inline comment\n"
                   "; a comment\n"
                   "# another\n"
                   "small = 7\n"
                   "big = 64M\n"
                   "span = 1h30min\n"
                   "ratio = 0.25\n"
                   "color = blue\n"
                   "level = debug\n"
                   "plain: 12\n");
        out = load_capture(path_in("types.conf"), &r);
        is_int(r, 0, "types.conf loads");
        free(out);
        is_str(tc.name, "  spaced  ", "quotes keep inner blanks");
        ok(tc.words && !strcmp(tc.words[0], "one") && !strcmp(tc.words[1], "two") &&
                   !strcmp(tc.words[2], "three") && !tc.words[3],
           "indented strv splits on blanks");
        is_int(tc.flag, 1, "bool with inline comment");
        is_int(tc.small, 7, "uint");
        is_int(tc.plain, 12, "key: value form");
        ok(tc.big == 64ULL << 20, "uint64 with M suffix");
        ok(tc.span == 5400 * USEC_PER_SEC, "timespan");
        ok(tc.ratio == 0.25, "double");
        is_int(tc.color, 2, "enum index");
        is_int(tc.level, LOG_DEBUG, "log level");

        /* Order: main file < drop-ins (lexical) < environment. */
        write_file("main.conf",
                   "[database]\nurl = main\nbuffer_bytes = 1\n[events]\nhwm = 1\n");
        mkdir(path_in("main.conf.d"), 0755);
        write_file("main.conf.d/20-b.conf", "[database]\nurl = b\n");
        write_file("main.conf.d/10-a.conf", "[database]\nurl = a\nreconnect_max = 1min\n[events]\nhwm = 5\n");
        write_file("main.conf.d/30-c.conf.disabled", "[database]\nurl = disabled\n");
        write_file("main.conf.d/05-z.conf", "[events]\nbuffer = 7\n");
        out = load_capture(path_in("main.conf"), &r);
        is_int(r, 0, "main file with drop-ins loads");
        free(out);
        is_str(db.url, "b", "the lexically last drop-in wins");
        ok(db.buffer_bytes == 1, "a key only in the main file stays");
        ok(db.reconnect_max == 60 * USEC_PER_SEC, "a key only in a drop-in applies");
        is_int(ev.hwm, 5, "a drop-in overrides the main file");
        is_int(ev.buffer, 7, "05-z.conf is read (before 10-a)");

        setenv("CALLCENTER_DATABASE_URL", "postgresql://env/db", 1);
        setenv("CALLCENTER_EVENTS", "tcp://127.0.0.1:9999", 1);
        out = load_capture(path_in("main.conf"), &r);
        is_int(r, 0, "load with environment overrides");
        free(out);
        is_str(db.url, "postgresql://env/db", "CALLCENTER_DATABASE_URL wins over every file");
        is_str(ev.subscribe, "tcp://127.0.0.1:9999", "CALLCENTER_EVENTS overrides subscribe");
        is_str(ev.publish, "ipc:///run/callcenter/events-in", "publish keeps its default");
        setenv("CALLCENTER_DATABASE_URL", "", 1);
        out = load_capture(path_in("main.conf"), &r);
        is_int(r, 0, "empty CALLCENTER_DATABASE_URL loads");
        free(out);
        is_str(db.url, "", "an empty variable still overrides (no persistence)");
        unsetenv("CALLCENTER_DATABASE_URL");
        unsetenv("CALLCENTER_EVENTS");

        /* A drop-in directory without a main file is still read. */
        mkdir(path_in("nomain.conf.d"), 0755);
        write_file("nomain.conf.d/x.conf", "[events]\nhwm = 9\n");
        out = load_capture(path_in("nomain.conf"), &r);
        is_int(r, -ENOENT, "an explicit missing file is -ENOENT even with drop-ins");
        check_contains(out, path_in("nomain.conf"), "the error names the missing file");
        free(out);

        /* Unknown keys and sections warn but load. */
        write_file("unknown.conf",
                   "[database]\n"
                   "url = x\n"
                   "bogus = 1\n"
                   "[router]\n"
                   "operators = A B\n"
                   "[nosuch]\n"
                   "k = v\n"
                   "k2 = v\n"
                   "[events]\n"
                   "hwm = 3\n");
        out = load_capture(path_in("unknown.conf"), &r);
        is_int(r, 0, "unknown key and section still load");
        snprintf(text, sizeof text, "%s:3: unknown key [database] bogus, ignoring",
                 path_in("unknown.conf"));
        check_contains(out, text, "unknown key warned with file:line");
        snprintf(text, sizeof text, "%s:7: unknown section [nosuch], ignoring",
                 path_in("unknown.conf"));
        check_contains(out, text, "unknown section warned with file:line");
        ok(out && !strstr(out, "router") && !strstr(out, ":8:"),
           "other daemons' sections are silent, an unknown section warns once");
        free(out);
        is_str(db.url, "x", "values before the unknown key applied");
        is_int(ev.hwm, 3, "values after the unknown section applied");

        /* A bad value fails with its line. */
        write_file("bad.conf",
                   "[database]\n"
                   "url = x\n"
                   "\n"
                   "connect_timeout = soon\n"
                   "reconnect_max = 1s\n");
        out = load_capture(path_in("bad.conf"), &r);
        is_int(r, -EINVAL, "a bad value fails the load");
        snprintf(text, sizeof text,
                 "%s:4: [database] connect_timeout: invalid value 'soon' (expected a time span",
                 path_in("bad.conf"));
        check_contains(out, text, "bad value message names file:4, key, value, expectation");
        free(out);

        /* ... also in a drop-in, which names the drop-in. */
        write_file("main.conf.d/40-bad.conf", "[events]\n\nbuffer = many\n");
        out = load_capture(path_in("main.conf"), &r);
        is_int(r, -EINVAL, "a bad value in a drop-in fails the load");
        snprintf(text, sizeof text, "%s:3: [events] buffer: invalid value 'many'",
                 path_in("main.conf.d/40-bad.conf"));
        check_contains(out, text, "the drop-in and its line are named");
        free(out);
        unlink(path_in("main.conf.d/40-bad.conf"));

        /* A bad environment value names the variable. */
        setenv("CALLCENTER_DATABASE_URL", "x", 1);
        setenv("CALLCENTER_EVENTS_PUBLISH", "ipc:///x", 1);
        out = load_capture(path_in("empty.conf"), &r);
        is_int(r, 0, "string variables take anything");
        free(out);
        unsetenv("CALLCENTER_DATABASE_URL");
        unsetenv("CALLCENTER_EVENTS_PUBLISH");

        /* Syntax errors. */
        write_file("syntax.conf", "[database]\nurl = x\nthis line has no equals sign\n");
        out = load_capture(path_in("syntax.conf"), &r);
        is_int(r, -EINVAL, "a line without '=' fails");
        snprintf(text, sizeof text, "%s:3: syntax error", path_in("syntax.conf"));
        check_contains(out, text, "syntax error names file:3");
        free(out);

        write_file("section.conf", "[database\nurl = x\n");
        out = load_capture(path_in("section.conf"), &r);
        is_int(r, -EINVAL, "an unclosed section fails");
        snprintf(text, sizeof text, "%s:1: syntax error", path_in("section.conf"));
        check_contains(out, text, "unclosed section names file:1");
        free(out);

        {
                char longline[1200];

                memset(longline, 'x', sizeof longline);
                memcpy(longline, "url = ", 6);
                longline[sizeof longline - 2] = '\n';
                longline[sizeof longline - 1] = '\0';
                snprintf(text, sizeof text, "[database]\n%s", longline);
                write_file("long.conf", text);
                out = load_capture(path_in("long.conf"), &r);
                is_int(r, -EINVAL, "an over-long line fails instead of being split");
                snprintf(text, sizeof text, "%s:2: line too long", path_in("long.conf"));
                check_contains(out, text, "over-long line names file:2");
                free(out);
        }

        /* A list goes on over indented lines; anything else indented is a
         * key of its own. */
        write_file("cont.conf",
                   "[test]\n"
                   "words = one two\n"
                   "    three four\n"
                   "# a comment between continuations\n"
                   "\tfive ; an inline comment\n"
                   "  name = after\n"
                   "[events]\n"
                   "unknownkey = x\n"
                   "   ignored words\n");
        out = load_capture(path_in("cont.conf"), &r);
        is_int(r, 0, "continuation lines load");
        ok(tc.words && tc.words[0] && tc.words[4] && !strcmp(tc.words[0], "one") &&
                   !strcmp(tc.words[2], "three") && !strcmp(tc.words[4], "five") && !tc.words[5],
           "indented lines continue the list (comments skipped, inline comment cut)");
        is_str(tc.name, "after", "an indented key = value is a key, not a continuation");
        check_contains(out, "unknown key [events] unknownkey", "the unknown key is warned about");
        ok(!strstr(out, "ignored"), "its continuation is skipped silently");
        free(out);

        {
                /* Operators beyond what one line holds. */
                char big[8192];
                size_t o = 0;

                o += (size_t) snprintf(big + o, sizeof big - o, "[test]\nwords =");
                for (int k = 0; k < 300; k++)
                        o += (size_t) snprintf(big + o, sizeof big - o, "%sagent%03d", k % 10 == 0 ? "\n  " : " ", k);
                snprintf(big + o, sizeof big - o, "\n");
                write_file("many.conf", big);
                out = load_capture(path_in("many.conf"), &r);
                is_int(r, 0, "300 words over 30 lines load");
                {
                        size_t n = 0;

                        while (tc.words && tc.words[n])
                                n++;
                        is_int((int) n, 300, "all 300 words are in the list");
                        ok(n == 300 && !strcmp(tc.words[299], "agent299"), "in order");
                }
                free(out);
        }

        write_file("cont-bad.conf", "[test]\nsmall = 3\n   4\n");
        out = load_capture(path_in("cont-bad.conf"), &r);
        is_int(r, -EINVAL, "a continuation of a single value fails");
        snprintf(text, sizeof text, "%s:3: [test] small takes one value", path_in("cont-bad.conf"));
        check_contains(out, text, "and names file:3 and the key");
        free(out);

        write_file("cont-section.conf", "[test]\nwords = a\n[test]\n   b c\n");
        out = load_capture(path_in("cont-section.conf"), &r);
        is_int(r, -EINVAL, "an indented line right after a section header is a syntax error");
        free(out);

        /* A missing explicit file is an error naming it. */
        out = load_capture(path_in("does-not-exist.conf"), &r);
        is_int(r, -ENOENT, "missing explicit file is -ENOENT");
        check_contains(out, path_in("does-not-exist.conf"), "the error names the file");
        free(out);

        /* A directory given as the file. */
        out = load_capture(dir, &r);
        ok(r < 0, "a directory as config file fails (%d)", r);
        free(out);

        config_free(sections);
        ok(db.url == NULL && ev.publish == NULL && tc.words == NULL, "config_free leaves NULLs");
        config_free(sections);
        ok(1, "config_free twice is harmless");

        /* The example printer and the installed example file. */
        {
                const ConfigSection shared[] = {
                        { "database", config_database_items, NULL },
                        { "events", config_events_items, NULL },
                        {},
                };
                const char *top = getenv("top_srcdir");
                char *dump = NULL, *file = NULL, example[600];
                size_t dump_len = 0;
                FILE *f;
                long n;

                f = open_memstream(&dump, &dump_len);
                config_dump_example(shared, f);
                fclose(f);

                for (const ConfigSection *s = shared; s->name; s++)
                        for (const ConfigItem *i = s->items; i->key; i++) {
                                snprintf(text, sizeof text, "#%s=%s\n", i->key, i->def ? i->def : "");
                                check_contains(dump, text, "dump has the key with its default");
                        }
                check_contains(dump, "# $CALLCENTER_DATABASE_URL overrides it.\n",
                               "dump names the overriding variable");

                snprintf(example, sizeof example, "%s/conf/callcenter.conf", top ? top : ".");
                f = fopen(example, "re");
                if (!ok(f != NULL, "example file %s exists", example))
                        return done_testing();
                fseek(f, 0, SEEK_END);
                n = ftell(f);
                rewind(f);
                file = calloc(1, (size_t) n + 1);
                if (fread(file, 1, (size_t) n, f) != (size_t) n)
                        file[0] = '\0';
                fclose(f);

                for (const ConfigSection *s = shared; s->name; s++) {
                        char header[64];
                        const char *sect;

                        snprintf(header, sizeof header, "\n[%s]\n", s->name);
                        sect = strstr(file, header);
                        ok(sect != NULL, "example has [%s]", s->name);
                        for (const ConfigItem *i = s->items; sect && i->key; i++) {
                                const char *next = strstr(sect + 1, "\n[");
                                const char *hit;

                                snprintf(text, sizeof text, "\n#%s=%s\n", i->key, i->def ? i->def : "");
                                hit = strstr(sect, text);
                                ok(hit && (!next || hit < next),
                                   "example has #%s=%s under [%s]", i->key, i->def ? i->def : "",
                                   s->name);
                        }
                }
                check_contains(file, dump, "example file contains config_dump_example() verbatim");

                /* And it loads, giving the defaults. */
                out = load_capture(example, &r);
                is_int(r, 0, "the example file itself loads");
                free(out);
                is_str(db.url, "postgresql:///callcenter", "and yields the defaults");

                free(dump);
                free(file);
        }

        config_free(sections);
        {
                char cmd[600];

                snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
                if (system(cmd) != 0)
                        diag("could not remove %s", dir);
        }
        return done_testing();
}
