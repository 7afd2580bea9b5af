/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "cleanup.h"
#include "conf.h"
#include "log.h"

const char *const config_known_sections[] = {
        "database", "events", "router", "tasks", "campaigns", "mailer", "dialer", NULL,
};

const ConfigItem config_database_items[] = {
        { .key = "url", .type = CONFIG_STRING, .offset = offsetof(DatabaseConfig, url),
          .def = "postgresql:///callcenter", .env = "CALLCENTER_DATABASE_URL",
          .help = "PostgreSQL connection, a libpq conninfo or URI; empty keeps no data." },
        { .key = "buffer_bytes", .type = CONFIG_UINT64,
          .offset = offsetof(DatabaseConfig, buffer_bytes), .def = "67108864",
          .help = "Bytes of writes held in memory while PostgreSQL is away (K/M/G suffixes)." },
        { .key = "connect_timeout", .type = CONFIG_TIMESPAN,
          .offset = offsetof(DatabaseConfig, connect_timeout), .def = "10s",
          .help = "Give up on one connection attempt after this long." },
        { .key = "reconnect_max", .type = CONFIG_TIMESPAN,
          .offset = offsetof(DatabaseConfig, reconnect_max), .def = "5s",
          .help = "Longest wait between reconnection attempts (backoff starts at 100ms)." },
        {},
};

const ConfigItem config_events_items[] = {
        { .key = "publish", .type = CONFIG_STRING, .offset = offsetof(EventsConfig, publish),
          .def = "ipc:///run/callcenter/events-in", .env = "CALLCENTER_EVENTS_PUBLISH",
          .help = "ZeroMQ endpoint publishers connect to (eventd's XSUB)." },
        { .key = "subscribe", .type = CONFIG_STRING, .offset = offsetof(EventsConfig, subscribe),
          .def = "tcp://127.0.0.1:5556", .env = "CALLCENTER_EVENTS",
          .help = "ZeroMQ endpoint subscribers connect to (eventd's XPUB)." },
        { .key = "buffer", .type = CONFIG_UINT, .offset = offsetof(EventsConfig, buffer),
          .def = "100000",
          .help = "Events a publisher holds while the hub is away; past it new events are dropped." },
        { .key = "hwm", .type = CONFIG_UINT, .offset = offsetof(EventsConfig, hwm),
          .def = "100000", .help = "ZeroMQ high-water mark of every events socket, in messages." },
        {},
};

const char *config_default_path(void) {
        return SYSCONFDIR "/callcenter/callcenter.conf";
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Split on whitespace into a NULL-terminated vector (empty string: {NULL}). */
static int strv_split_words(const char *s, char ***ret) {
        char **l = NULL;
        size_t n = 0;

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (;;) {
                size_t len;
                char **nl;

                while (is_blank(*s))
                        s++;
                if (*s == '\0')
                        break;
                for (len = 0; s[len] && !is_blank(s[len]); len++)
                        ;
                nl = realloc(l, (n + 2) * sizeof(char *));
                if (!nl) {
                        strv_free(l);
                        return -ENOMEM;
                }
                l = nl;
                l[n] = strndup(s, len);
                if (!l[n]) {
                        strv_free(l);
                        return -ENOMEM;
                }
                l[++n] = NULL;
                s += len;
        }
        *ret = l;
        return 0;
}

static int parse_bool(const char *v) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(v, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(v, no[i]) == 0)
                        return 0;
        return -EINVAL;
}

/*
 * Unsigned decimal with an optional binary size suffix (K, M, G, T, also
 * written KiB ...), so that "buffer_bytes = 64M" reads as people mean it.
 * Signs, hex, octal and trailing junk are refused: strtoull() alone would
 * take "-1" and " 12abc".
 */
static int parse_unsigned(const char *v, uint64_t *ret) {
        uint64_t n = 0, mul = 1;
        const char *p = v;

        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                uint64_t d = (uint64_t) (*p - '0');

                if (n > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                n = n * 10 + d;
        }
        if (*p != '\0') {
                static const char units[] = "KMGT";
                const char *u = strchr(units, *p);

                if (!u || *u == '\0')
                        return -EINVAL;
                for (const char *i = units; i <= u; i++)
                        mul *= 1024;
                p++;
                if (strcmp(p, "") != 0 && strcmp(p, "iB") != 0 && strcmp(p, "B") != 0)
                        return -EINVAL;
                if (n > UINT64_MAX / mul)
                        return -ERANGE;
        }
        *ret = n * mul;
        return 0;
}

/* strtod() follows LC_NUMERIC; config files always use '.'. */
static int parse_double(const char *v, double *ret) {
        locale_t c;
        char *end = NULL;
        double d;

        c = newlocale(LC_NUMERIC_MASK, "C", (locale_t) 0);
        if (c == (locale_t) 0)
                return -ENOMEM;
        errno = 0;
        d = strtod_l(v, &end, c);
        freelocale(c);
        if (errno != 0 || end == v || *end != '\0' || !isfinite(d) || d < 0 || is_blank(*v))
                return -EINVAL;
        *ret = d;
        return 0;
}

/* What a valid value of item looks like, for the error message. */
static void describe_expected(const ConfigItem *item, char *buf, size_t size) {
        size_t n;

        switch (item->type) {
        case CONFIG_BOOL:
                snprintf(buf, size, "a boolean: yes/no, true/false, on/off, 1/0");
                break;
        case CONFIG_UINT:
        case CONFIG_UINT64:
                if (item->max != 0)
                        snprintf(buf, size, "an unsigned integer up to %llu",
                                 (unsigned long long) item->max);
                else
                        snprintf(buf, size, "an unsigned integer%s",
                                 item->type == CONFIG_UINT ? " below 2^32" : "");
                break;
        case CONFIG_TIMESPAN:
                snprintf(buf, size, "a time span such as 10s, 500ms, 2min, 1h30min or infinity");
                break;
        case CONFIG_DOUBLE:
                snprintf(buf, size, "a number >= 0");
                break;
        case CONFIG_ENUM:
                n = (size_t) snprintf(buf, size, "one of:");
                for (size_t i = 0; item->names && item->names[i] && n < size; i++)
                        n += (size_t) snprintf(buf + n, size - n, "%s %s", i > 0 ? "," : "",
                                               item->names[i]);
                break;
        case CONFIG_LOGLEVEL:
                snprintf(buf, size,
                         "a log level: emerg, alert, crit, err, warning, notice, info, debug or 0-7");
                break;
        default:
                snprintf(buf, size, "a valid value");
        }
}

/*
 * Parse value for item and store it into base + item->offset. The old value
 * is replaced only when the new one parsed, so a failed load still leaves
 * something config_free() can release.
 */
static int config_assign(const ConfigItem *item, void *base, const char *value) {
        void *p = (char *) base + item->offset;
        uint64_t u;
        usec_t t;
        double d;
        int r;

        switch (item->type) {
        case CONFIG_STRING: {
                char *s = strdup(value);

                if (!s)
                        return -ENOMEM;
                free(*(char **) p);
                *(char **) p = s;
                return 0;
        }
        case CONFIG_STRV: {
                char **l = NULL;

                r = strv_split_words(value, &l);
                if (r < 0)
                        return r;
                strv_free(*(char ***) p);
                *(char ***) p = l;
                return 0;
        }
        case CONFIG_BOOL:
                r = parse_bool(value);
                if (r < 0)
                        return -EINVAL;
                *(bool *) p = r;
                return 0;
        case CONFIG_UINT:
                if (parse_unsigned(value, &u) < 0 || u > UINT_MAX || (item->max && u > item->max))
                        return -EINVAL;
                *(unsigned *) p = (unsigned) u;
                return 0;
        case CONFIG_UINT64:
                if (parse_unsigned(value, &u) < 0 || (item->max && u > item->max))
                        return -EINVAL;
                *(uint64_t *) p = u;
                return 0;
        case CONFIG_TIMESPAN:
                if (parse_timespan(value, &t) < 0)
                        return -EINVAL;
                *(usec_t *) p = t;
                return 0;
        case CONFIG_DOUBLE:
                r = parse_double(value, &d);
                if (r < 0)
                        return r;
                *(double *) p = d;
                return 0;
        case CONFIG_ENUM:
                for (int i = 0; item->names && item->names[i]; i++)
                        if (strcmp(item->names[i], value) == 0) {
                                *(int *) p = i;
                                return 0;
                        }
                return -EINVAL;
        case CONFIG_LOGLEVEL:
                r = log_level_from_string(value);
                if (r < 0)
                        return -EINVAL;
                *(int *) p = r;
                return 0;
        default:
                return -EINVAL;
        }
}

/*
 * Trim blanks and one pair of surrounding double quotes into a new string:
 * inih leaves quotes in, and url="postgresql://..." is a common way to
 * write a value.
 */
static char *value_normalize(const char *v) {
        size_t l;

        while (is_blank(*v))
                v++;
        l = strlen(v);
        while (l > 0 && is_blank(v[l - 1]))
                l--;
        if (l >= 2 && v[0] == '"' && v[l - 1] == '"') {
                v++;
                l -= 2;
        }
        return strndup(v, l);
}

/* Assign and, on a bad value, log the one line the operator needs. where is
 * "file:line" or "$VARIABLE". */
static int config_set(const ConfigSection *s, const ConfigItem *item, const char *raw,
                      const char *where) {
        _cleanup_(freep) char *v = NULL;
        char expected[256];
        int r;

        v = value_normalize(raw);
        if (!v)
                return log_oom();
        r = config_assign(item, s->base, v);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0) {
                describe_expected(item, expected, sizeof expected);
                log_error("%s: [%s] %s: invalid value '%s' (expected %s)", where, s->name,
                          item->key, v, expected);
                return -EINVAL;
        }
        return 0;
}

/* What an indented line without '=' continues: the last key = value line
 * since the last section header. */
typedef enum ConfigLast {
        CONFIG_LAST_NONE,           /* no key yet in this section */
        CONFIG_LAST_IGNORED,        /* a key we skip: its continuations too */
        CONFIG_LAST_ITEM,           /* one of our items: last_section/last_item */
} ConfigLast;

typedef struct ConfigParser {
        const ConfigSection *sections;
        const char *path;
        FILE *f;
        unsigned line;              /* lines handed to inih so far */
        int error;                  /* first failure; stops the parse */
        char last_unknown[64];      /* section last warned about, to warn once */
        ConfigLast last;
        const ConfigSection *last_section;
        const ConfigItem *last_item;
} ConfigParser;

/* A list continued on an indented line: its words join the value the key
 * line (or an earlier continuation) assigned. */
static int config_continue(ConfigParser *p, const char *text) {
        const ConfigSection *s = p->last_section;
        const ConfigItem *item = p->last_item;
        _cleanup_(strv_freep) char **more = NULL;
        _cleanup_(freep) char *copy = NULL;
        char ***l = (char ***) ((char *) s->base + item->offset);
        size_t n = 0, m = 0;
        char **nl;
        int r;

        if (item->type != CONFIG_STRV) {
                log_error("%s:%u: [%s] %s takes one value: only lists continue on indented lines",
                          p->path, p->line, s->name, item->key);
                return -EINVAL;
        }
        /* An inline comment, as inih cuts it from values: ';' after a blank. */
        copy = strdup(text);
        if (!copy)
                return log_oom();
        for (char *c = copy + 1; *c; c++)
                if (*c == ';' && is_blank(c[-1])) {
                        *c = '\0';
                        break;
                }
        r = strv_split_words(copy, &more);
        if (r < 0)
                return log_oom();
        while (*l && (*l)[n])
                n++;
        while (more[m])
                m++;
        nl = realloc(*l, (n + m + 1) * sizeof(char *));
        if (!nl)
                return log_oom();
        memcpy(nl + n, more, (m + 1) * sizeof(char *));
        /* The words moved to the list: free only the array. */
        free(more);
        more = NULL;
        *l = nl;
        return 0;
}

/*
 * inih reads through us so that we know the line of every handler call
 * (the packaged libinih is built without INI_HANDLER_LINENO), can refuse
 * over-long lines instead of letting inih split them, and can handle
 * indentation ourselves, whatever inih's multi-line mode was built as:
 *
 *  - an indented line without '=' continues the list of the last key
 *    (operators and queues outgrow one line): its words are added here,
 *    and inih gets an empty line;
 *  - any other indented line loses its blanks, so that an indented
 *    "key = value" is that key, not a continuation of the previous value.
 */
static char *config_reader(char *str, int num, void *stream) {
        ConfigParser *p = stream;
        size_t l, skip;
        const char *t;

        if (p->error != 0)
                return NULL;
        if (!fgets(str, num, p->f))
                return NULL;
        p->line++;

        l = strlen(str);
        if (l > 0 && str[l - 1] != '\n' && !feof(p->f)) {
                int c = getc(p->f);

                if (c != '\n' && c != EOF) {
                        log_error("%s:%u: line too long (at most %d bytes; a list continues on indented lines)",
                                  p->path, p->line, num - 3);
                        p->error = -EINVAL;
                        return NULL;
                }
        }

        skip = strspn(str, " \t");
        t = str + skip;
        if (*t == '[')
                p->last = CONFIG_LAST_NONE;
        else if (skip > 0 && !strchr("#;\r\n", *t) && *t && !strchr(t, '=') &&
                 p->last != CONFIG_LAST_NONE) {
                if (p->last == CONFIG_LAST_ITEM)
                        p->error = config_continue(p, t);
                if (p->error != 0)
                        return NULL;
                str[0] = '\n';
                str[1] = '\0';
                return str;
        }
        if (skip > 0)
                memmove(str, str + skip, l - skip + 1);
        return str;
}

static const ConfigSection *section_find(const ConfigSection *sections, const char *name) {
        for (const ConfigSection *s = sections; s && s->name; s++)
                if (strcmp(s->name, name) == 0)
                        return s;
        return NULL;
}

static bool section_is_known(const char *name) {
        for (size_t i = 0; config_known_sections[i]; i++)
                if (strcmp(config_known_sections[i], name) == 0)
                        return true;
        return false;
}

static int config_handler(void *user, const char *section, const char *name, const char *value) {
        ConfigParser *p = user;
        const ConfigSection *s;
        char where[PATH_MAX + 32];

        if (p->error != 0)
                return 0;

        p->last = CONFIG_LAST_IGNORED;
        s = section_find(p->sections, section);
        if (!s) {
                /* Other daemons' sections share the file: not our business.
                 * A section nobody knows is likely a typo. */
                if (section[0] == '\0')
                        log_warning("%s:%u: '%s' outside of any section, ignoring", p->path,
                                    p->line, name);
                else if (!section_is_known(section) && strcmp(p->last_unknown, section) != 0) {
                        log_warning("%s:%u: unknown section [%s], ignoring", p->path, p->line,
                                    section);
                        snprintf(p->last_unknown, sizeof p->last_unknown, "%s", section);
                }
                return 1;
        }

        for (const ConfigItem *i = s->items; i->key; i++)
                if (strcmp(i->key, name) == 0) {
                        snprintf(where, sizeof where, "%s:%u", p->path, p->line);
                        p->error = config_set(s, i, value, where);
                        p->last = CONFIG_LAST_ITEM;
                        p->last_section = s;
                        p->last_item = i;
                        return p->error == 0;
                }

        log_warning("%s:%u: unknown key [%s] %s, ignoring", p->path, p->line, section, name);
        return 1;
}

/* Read one file. A missing file is -ENOENT, logged only when must_exist. */
static int config_parse_file(const char *path, const ConfigSection *sections, bool must_exist) {
        _cleanup_(fclosep) FILE *f = NULL;
        ConfigParser p = { .sections = sections, .path = path };
        int r;

        f = fopen(path, "re");
        if (!f) {
                r = -errno;
                if (r == -ENOENT && !must_exist) {
                        log_debug("No configuration file %s, using defaults.", path);
                        return -ENOENT;
                }
                if (r == -ENOENT)
                        return log_error_errno(r, "Configuration file %s does not exist.", path);
                return log_error_errno(r, "Failed to open configuration file %s: %m", path);
        }
        p.f = f;

        r = ini_parse_stream(config_reader, &p, config_handler, &p);
        if (p.error != 0)
                return p.error;
        if (ferror(f))
                return log_error_errno(EIO, "Failed to read configuration file %s.", path);
        if (r == -2)
                return log_oom();
        if (r > 0)
                /* inih reports lines it could not make sense of: no '=',
                 * or an unclosed '['. */
                return log_error_errno(EINVAL, "%s:%d: syntax error (expected [section] or key = value)",
                                       path, r);
        if (r < 0)
                return log_error_errno(EIO, "Failed to parse configuration file %s.", path);

        log_debug("Read configuration file %s.", path);
        return 0;
}

static int strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* "<path>.d/ *.conf" in lexical (byte) order, independent of the locale. */
static int config_parse_dropins(const char *path, const ConfigSection *sections) {
        _cleanup_(freep) char *dir = NULL;
        _cleanup_(strv_freep) char **names = NULL;
        DIR *d;
        struct dirent *de;
        size_t n = 0;
        int r = 0;

        if (asprintf(&dir, "%s.d", path) < 0)
                return log_oom();

        d = opendir(dir);
        if (!d) {
                if (errno == ENOENT || errno == ENOTDIR)
                        return 0;
                return log_error_errno(errno, "Failed to open drop-in directory %s: %m", dir);
        }

        names = calloc(1, sizeof(char *));
        if (!names)
                r = -ENOMEM;
        while (r == 0 && (de = readdir(d))) {
                size_t l = strlen(de->d_name);
                char **nl;

                if (de->d_name[0] == '.' || l <= 5 || strcmp(de->d_name + l - 5, ".conf") != 0)
                        continue;
                if (de->d_type == DT_DIR)
                        continue;
                nl = realloc(names, (n + 2) * sizeof(char *));
                if (!nl) {
                        r = -ENOMEM;
                        break;
                }
                names = nl;
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = -ENOMEM;
                        break;
                }
                names[++n] = NULL;
        }
        closedir(d);
        if (r < 0)
                return log_oom();

        qsort(names, n, sizeof(char *), strcmp_ptr);

        for (size_t i = 0; i < n; i++) {
                _cleanup_(freep) char *f = NULL;

                if (asprintf(&f, "%s/%s", dir, names[i]) < 0)
                        return log_oom();
                r = config_parse_file(f, sections, false);
                /* A drop-in removed since we listed the directory is fine. */
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        return 0;
}

int config_load(const char *path, const ConfigSection *sections) {
        const char *file = path ? path : config_default_path();
        int r;

        /* Defaults first, through the same parser: a default that does not
         * parse is a bug in a table, caught at every start. */
        for (const ConfigSection *s = sections; s && s->name; s++)
                for (const ConfigItem *i = s->items; i->key; i++) {
                        char where[128];

                        snprintf(where, sizeof where, "default of [%s] %s", s->name, i->key);
                        r = config_set(s, i, i->def ? i->def : "", where);
                        if (r < 0)
                                return r;
                }

        r = config_parse_file(file, sections, path != NULL);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r == -ENOENT && path)
                return r;

        r = config_parse_dropins(file, sections);
        if (r < 0)
                return r;

        /* The environment wins over every file: it is how dev.sh and
         * containers point daemons at their database and hub. */
        for (const ConfigSection *s = sections; s && s->name; s++)
                for (const ConfigItem *i = s->items; i->key; i++) {
                        const char *v;
                        char where[128];

                        if (!i->env || !(v = getenv(i->env)))
                                continue;
                        snprintf(where, sizeof where, "$%s", i->env);
                        r = config_set(s, i, v, where);
                        if (r < 0)
                                return r;
                        log_debug("[%s] %s taken from $%s.", s->name, i->key, i->env);
                }

        return 0;
}

void config_free(const ConfigSection *sections) {
        for (const ConfigSection *s = sections; s && s->name; s++)
                for (const ConfigItem *i = s->items; i->key; i++) {
                        void *p = (char *) s->base + i->offset;

                        if (i->type == CONFIG_STRING) {
                                free(*(char **) p);
                                *(char **) p = NULL;
                        } else if (i->type == CONFIG_STRV) {
                                strv_free(*(char ***) p);
                                *(char ***) p = NULL;
                        }
                }
}

void config_dump_example(const ConfigSection *sections, FILE *f) {
        bool first = true;

        for (const ConfigSection *s = sections; s && s->name; s++) {
                fprintf(f, "%s[%s]\n", first ? "" : "\n", s->name);
                first = false;
                for (const ConfigItem *i = s->items; i->key; i++) {
                        if (i->help)
                                fprintf(f, "# %s\n", i->help);
                        if (i->type == CONFIG_ENUM && i->names) {
                                fputs("# One of:", f);
                                for (size_t k = 0; i->names[k]; k++)
                                        fprintf(f, "%s %s", k > 0 ? "," : "", i->names[k]);
                                fputs(".\n", f);
                        }
                        if (i->env)
                                fprintf(f, "# $%s overrides it.\n", i->env);
                        fprintf(f, "#%s=%s\n", i->key, i->def ? i->def : "");
                }
        }
}
