/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "daemons/routerd/conf.h"
#include "libshared/log.h"

/*
 * The [router] table: keys, defaults and help text in one place, so that
 * --dump-config and the commented example file cannot drift from what the
 * daemon reads. Checks a table cannot express (listen syntax, ids, the
 * queues words) are in router_config_verify().
 */
const ConfigItem router_config_items[] = {
        { .key = "listen", .type = CONFIG_STRING, .offset = offsetof(RouterConfig, listen),
          .def = "127.0.0.1:5678", .env = "CALLCENTER_ROUTER",
          .help = "TCP address (HOST:PORT) of the JSON-lines protocol; a socket passed by systemd wins." },
        { .key = "operators", .type = CONFIG_STRV, .offset = offsetof(RouterConfig, operators),
          .def = "A B",
          .help = "Operators at first start, in configured order (later the database's set wins; a reload adds those never seen)." },
        { .key = "queues", .type = CONFIG_STRV, .offset = offsetof(RouterConfig, queues),
          .def = "",
          .help = "Named queues, words NAME[/STRATEGY]:OP[,OP...] (\"sales:A,B support/round-robin:B\"); operators in none serve \"default\". Queues set at run time (SetOperatorQueues) win, across restarts and reloads." },
        { .key = "strategy", .type = CONFIG_ENUM, .offset = offsetof(RouterConfig, strategy),
          .def = "longest-idle", .names = acd_strategy_names,
          .help = "How the operator for a call is chosen (default queue, and named queues without their own)." },
        { .key = "ring_timeout", .type = CONFIG_TIMESPAN, .offset = offsetof(RouterConfig, ring_timeout),
          .def = "10s", .help = "A call not answered this long is \"ignored\" and offered again." },
        { .key = "reject_delay", .type = CONFIG_TIMESPAN, .offset = offsetof(RouterConfig, reject_delay),
          .def = "0", .help = "An operator who rejects a call is offered none for this long." },
        { .key = "no_answer_delay", .type = CONFIG_TIMESPAN,
          .offset = offsetof(RouterConfig, no_answer_delay), .def = "0",
          .help = "An operator who lets a call ring out is offered none for this long." },
        { .key = "wrap_up", .type = CONFIG_TIMESPAN, .offset = offsetof(RouterConfig, wrap_up),
          .def = "0", .help = "After a finished call the operator is offered none for this long." },
        { .key = "max_no_answer", .type = CONFIG_UINT, .offset = offsetof(RouterConfig, max_no_answer),
          .def = "0", .help = "Consecutive ring timeouts that pause an operator; 0 = never." },
        { .key = "service_level", .type = CONFIG_TIMESPAN,
          .offset = offsetof(RouterConfig, service_level), .def = "20s",
          .help = "Statistics: a call answered within this long of arrival meets the service level." },
        { .key = "max_connections", .type = CONFIG_UINT,
          .offset = offsetof(RouterConfig, max_connections), .def = "4096",
          .help = "TCP connections served at once; more are refused." },
        { .key = "max_queued", .type = CONFIG_UINT,
          .offset = offsetof(RouterConfig, max_queued), .def = "10000",
          .help = "Calls waiting at most, all queues together; a new call that would wait beyond it is refused (queue_full, D-Bus Unavailable)." },
        { .key = "idle_timeout", .type = CONFIG_TIMESPAN,
          .offset = offsetof(RouterConfig, idle_timeout), .def = "1h",
          .help = "A TCP connection with no traffic either way for this long is closed; \"infinity\" keeps idle ones." },
        { .key = "output_buffer_max", .type = CONFIG_UINT64,
          .offset = offsetof(RouterConfig, output_buffer_max), .def = "4M",
          .help = "Unsent notices (K/M suffixes) a TCP client may leave unread, beyond the kernel's buffers, before it is disconnected." },
        {},
};

const ConfigSection routerd_config_sections[] = {
        { .name = "database", .items = config_database_items },
        { .name = "events", .items = config_events_items },
        { .name = "router", .items = router_config_items },
        {},
};

/* The same sections with their bases pointing into c: the configuration
 * lives in a struct, never in globals, so tests can load several. */
static void sections_for(RouterdConfig *c, ConfigSection ret[static 4]) {
        ret[0] = (ConfigSection) { "database", config_database_items, &c->database };
        ret[1] = (ConfigSection) { "events", config_events_items, &c->events };
        ret[2] = (ConfigSection) { "router", router_config_items, &c->router };
        ret[3] = (ConfigSection) {};
}

void router_queue_spec_done(RouterQueueSpec *q) {
        if (!q)
                return;
        free(q->name);
        q->name = NULL;
        q->members = strv_free(q->members);
}

int router_queue_spec_parse(const char *word, AcdStrategy def, RouterQueueSpec *ret) {
        _cleanup_(freep) char *copy = NULL;
        RouterQueueSpec q = { .strategy = def };
        char *colon, *slash, *p;
        size_t n = 0, allocated = 0;
        int r = -EINVAL;

        /* NAME[/STRATEGY]:MEMBERS. The first ':' ends the name (ids may not
         * contain one in practice, and a queue name with ':' could not be
         * written here anyway); '/' inside the name part starts the
         * strategy. */
        copy = strdup(word);
        if (!copy)
                return -ENOMEM;
        colon = strchr(copy, ':');
        if (!colon)
                return -EINVAL;
        *colon = '\0';

        slash = strchr(copy, '/');
        if (slash) {
                *slash = '\0';
                q.strategy = acd_strategy_from_string(slash + 1);
                if (q.strategy < 0)
                        return -EINVAL;
        }
        if (!acd_id_is_valid(copy))
                return -EINVAL;
        q.name = strdup(copy);
        if (!q.name)
                return -ENOMEM;

        /* Members: a comma-separated list of ids, none empty, no duplicate
         * (acd refuses a duplicated queue list the same way). */
        p = colon + 1;
        for (;;) {
                char *comma = strchr(p, ',');

                if (comma)
                        *comma = '\0';
                if (!acd_id_is_valid(p))
                        goto fail;
                for (size_t i = 0; i < n; i++)
                        if (strcmp(q.members[i], p) == 0)
                                goto fail;
                if (n + 2 > allocated) {
                        char **l;

                        allocated = allocated ? allocated * 2 : 4;
                        l = realloc(q.members, allocated * sizeof(char *));
                        if (!l) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        q.members = l;
                }
                q.members[n] = strdup(p);
                if (!q.members[n]) {
                        r = -ENOMEM;
                        goto fail;
                }
                q.members[++n] = NULL;
                if (!comma)
                        break;
                p = comma + 1;
        }

        *ret = q;
        return 0;
fail:
        router_queue_spec_done(&q);
        return r;
}

int router_parse_listen(const char *s, struct sockaddr_storage *ret, unsigned *ret_len) {
        _cleanup_(freep) char *host = NULL;
        const char *colon, *port_s;
        char *end;
        unsigned long port;

        if (!s || !*s)
                return -EINVAL;

        /* IPv6 needs brackets: "::1:5678" is ambiguous. Host names other
         * than "localhost" are refused rather than resolved: resolving
         * would block, and a listening address should not depend on DNS. */
        if (s[0] == '[') {
                const char *close = strchr(s, ']');

                if (!close || close[1] != ':')
                        return -EINVAL;
                host = strndup(s + 1, close - s - 1);
                port_s = close + 2;
        } else {
                colon = strrchr(s, ':');
                if (!colon || strchr(s, ':') != colon)
                        return -EINVAL;
                host = strndup(s, colon - s);
                port_s = colon + 1;
        }
        if (!host)
                return -ENOMEM;

        /* strtoul() accepts "-1" (wrapping) and leading blanks: reject
         * both explicitly. */
        errno = 0;
        port = strtoul(port_s, &end, 10);
        if (errno != 0 || *port_s == '\0' || *end != '\0' || port > 65535 || *port_s == '-')
                return -EINVAL;

        memset(ret, 0, sizeof *ret);
        if (strcmp(host, "localhost") == 0 || strcmp(host, "") == 0) {
                struct sockaddr_in *in = (struct sockaddr_in *) ret;

                /* "" means every interface, "localhost" the loopback one. */
                in->sin_family = AF_INET;
                in->sin_port = htons((uint16_t) port);
                in->sin_addr.s_addr = htonl(*host ? INADDR_LOOPBACK : INADDR_ANY);
                *ret_len = sizeof(struct sockaddr_in);
                return 0;
        }
        {
                struct sockaddr_in *in = (struct sockaddr_in *) ret;

                if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
                        in->sin_family = AF_INET;
                        in->sin_port = htons((uint16_t) port);
                        *ret_len = sizeof(struct sockaddr_in);
                        return 0;
                }
        }
        {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ret;

                if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
                        in6->sin6_family = AF_INET6;
                        in6->sin6_port = htons((uint16_t) port);
                        *ret_len = sizeof(struct sockaddr_in6);
                        return 0;
                }
        }
        return -EINVAL;
}

/* The checks a table cannot express; one line per problem, as config_load()
 * words them. */
static int router_config_verify(const RouterConfig *c) {
        struct sockaddr_storage sa;
        unsigned len;
        int r;

        if (router_parse_listen(c->listen, &sa, &len) < 0)
                return log_error_errno(EINVAL, "[router] listen: \"%s\" is not HOST:PORT.", c->listen);

        for (char **o = c->operators; o && *o; o++) {
                if (!acd_id_is_valid(*o))
                        return log_error_errno(EINVAL,
                                               "[router] operators: \"%s\" is not a valid operator id (1-%d printable characters).",
                                               *o, ACD_ID_MAX);
                for (char **p = c->operators; p < o; p++)
                        if (strcmp(*p, *o) == 0)
                                return log_error_errno(EINVAL, "[router] operators: \"%s\" is listed twice.", *o);
        }

        for (char **w = c->queues; w && *w; w++) {
                RouterQueueSpec q = {};

                r = router_queue_spec_parse(*w, c->strategy, &q);
                if (r == -ENOMEM)
                        return log_oom();
                if (r < 0)
                        return log_error_errno(r,
                                               "[router] queues: \"%s\" is not NAME[/STRATEGY]:OP[,OP...].", *w);
                for (char **v = c->queues; v < w; v++)
                        if (strncmp(*v, q.name, strlen(q.name)) == 0 &&
                            strchr("/:", (*v)[strlen(q.name)])) {
                                router_queue_spec_done(&q);
                                return log_error_errno(EINVAL, "[router] queues: queue \"%s\" is listed twice.",
                                                       *w);
                        }
                router_queue_spec_done(&q);
        }

        /* The ACD refuses these too (acd_new()), but a line naming the
         * key is more useful to an admin than "Invalid argument". */
        if (c->ring_timeout == 0)
                return log_error_errno(EINVAL, "[router] ring_timeout must be greater than 0.");
        if (c->reject_delay == USEC_INFINITY || c->no_answer_delay == USEC_INFINITY ||
            c->wrap_up == USEC_INFINITY)
                return log_error_errno(EINVAL, "[router] reject_delay, no_answer_delay and wrap_up must be finite.");
        if (c->max_connections == 0)
                return log_error_errno(EINVAL, "[router] max_connections must be at least 1.");
        if (c->output_buffer_max < 65536)
                return log_error_errno(EINVAL, "[router] output_buffer_max must be at least 64K.");
        if (c->max_queued == 0)
                return log_error_errno(EINVAL, "[router] max_queued must be at least 1.");
        if (c->idle_timeout < USEC_PER_SEC)
                return log_error_errno(EINVAL, "[router] idle_timeout must be at least 1s (\"infinity\" for never).");
        return 0;
}

int routerd_config_load(RouterdConfig *c, const char *path) {
        ConfigSection s[4];
        int r;

        sections_for(c, s);
        r = config_load(path, s);
        if (r < 0)
                return r;
        return router_config_verify(&c->router);
}

void routerd_config_done(RouterdConfig *c) {
        ConfigSection s[4];

        sections_for(c, s);
        config_free(s);
}

void router_config_to_acd(const RouterConfig *c, AcdConfig *ret) {
        acd_config_init(ret);
        ret->strategy = c->strategy;
        ret->ring_timeout = c->ring_timeout;
        ret->reject_delay = c->reject_delay;
        ret->no_answer_delay = c->no_answer_delay;
        ret->wrap_up = c->wrap_up;
        ret->max_no_answer = c->max_no_answer;
        ret->service_level = c->service_level;
        ret->max_queued = c->max_queued;
}

/* --- reload ------------------------------------------------------------------------ */

/*
 * [router] keys a reload does not apply: the listening socket exists once
 * (and may be systemd's), and the pause threshold of every connection is
 * derived from output_buffer_max when the server starts. [database] and
 * [events] are in the same case as a whole: the link and the publisher are
 * set up once.
 */
static const char *const router_restart_keys[] = { "listen", "output_buffer_max", NULL };

bool router_config_key_reloadable(const char *key) {
        for (const char *const *k = router_restart_keys; *k; k++)
                if (strcmp(*k, key) == 0)
                        return false;
        return true;
}

static bool strv_equal_safe(char *const *a, char *const *b) {
        /* NULL and an empty vector both mean "no words". */
        for (; a && *a; a++, b++)
                if (!b || !*b || strcmp(*a, *b) != 0)
                        return false;
        return !b || !*b;
}

static bool item_equal(const ConfigItem *it, const void *a, const void *b) {
        const void *pa = (const char *) a + it->offset, *pb = (const char *) b + it->offset;

        switch (it->type) {
        case CONFIG_STRING: {
                const char *x = *(char *const *) pa, *y = *(char *const *) pb;
                return strcmp(x ? x : "", y ? y : "") == 0;
        }
        case CONFIG_STRV:
                return strv_equal_safe(*(char **const *) pa, *(char **const *) pb);
        case CONFIG_BOOL:
                return *(const bool *) pa == *(const bool *) pb;
        case CONFIG_UINT:
                return *(const unsigned *) pa == *(const unsigned *) pb;
        case CONFIG_UINT64:
        case CONFIG_TIMESPAN:
                return *(const uint64_t *) pa == *(const uint64_t *) pb;
        case CONFIG_DOUBLE:
                return *(const double *) pa == *(const double *) pb;
        case CONFIG_ENUM:
        case CONFIG_LOGLEVEL:
                return *(const int *) pa == *(const int *) pb;
        default:
                return true;
        }
}

/* A time span the way a configuration file would say it. */
static void fprint_timespan(FILE *f, usec_t t) {
        if (t == USEC_INFINITY)
                fputs("infinity", f);
        else if (t == 0)
                fputs("0", f);
        else if (t % (60 * USEC_PER_SEC) == 0)
                fprintf(f, "%" PRIu64 "min", t / (60 * USEC_PER_SEC));
        else if (t % USEC_PER_SEC == 0)
                fprintf(f, "%" PRIu64 "s", t / USEC_PER_SEC);
        else if (t % USEC_PER_MSEC == 0)
                fprintf(f, "%" PRIu64 "ms", t / USEC_PER_MSEC);
        else
                fprintf(f, "%" PRIu64 "us", t);
}

static void fprint_item(FILE *f, const ConfigItem *it, const void *base) {
        const void *p = (const char *) base + it->offset;

        switch (it->type) {
        case CONFIG_STRING: {
                const char *x = *(char *const *) p;
                fprintf(f, "\"%s\"", x ? x : "");
                break;
        }
        case CONFIG_STRV:
                fputc('"', f);
                for (char **l = *(char **const *) p; l && *l; l++)
                        fprintf(f, "%s%s", l == *(char **const *) p ? "" : " ", *l);
                fputc('"', f);
                break;
        case CONFIG_BOOL:
                fputs(*(const bool *) p ? "yes" : "no", f);
                break;
        case CONFIG_UINT:
                fprintf(f, "%u", *(const unsigned *) p);
                break;
        case CONFIG_UINT64:
                fprintf(f, "%" PRIu64, *(const uint64_t *) p);
                break;
        case CONFIG_TIMESPAN:
                fprint_timespan(f, *(const usec_t *) p);
                break;
        case CONFIG_DOUBLE:
                fprintf(f, "%g", *(const double *) p);
                break;
        case CONFIG_ENUM: {
                int i = *(const int *) p;
                fputs(i >= 0 && it->names ? it->names[i] : "?", f);
                break;
        }
        default:
                fprintf(f, "%d", *(const int *) p);
        }
}

int routerd_config_diff(const RouterdConfig *old, const RouterdConfig *new, char **ret_applied,
                        char **ret_restart) {
        _cleanup_(freep) char *applied = NULL, *restart = NULL;
        size_t applied_len = 0, restart_len = 0;
        ConfigSection so[4], sn[4];
        FILE *fa, *fr;
        int r = 0;

        /* The sections of a RouterdConfig are only read here: the casts
         * drop a const that sections_for() has no use for. */
        sections_for((RouterdConfig *) old, so);
        sections_for((RouterdConfig *) new, sn);

        fa = open_memstream(&applied, &applied_len);
        if (!fa)
                return -ENOMEM;
        fr = open_memstream(&restart, &restart_len);
        if (!fr) {
                fclose(fa);
                return -ENOMEM;
        }

        for (size_t i = 0; so[i].name; i++) {
                bool router = strcmp(so[i].name, "router") == 0;

                for (const ConfigItem *it = so[i].items; it->key; it++) {
                        if (item_equal(it, so[i].base, sn[i].base))
                                continue;
                        if (router && router_config_key_reloadable(it->key)) {
                                fprintf(fa, "%s%s ", ftell(fa) > 0 ? ", " : "", it->key);
                                fprint_item(fa, it, so[i].base);
                                fputs(" -> ", fa);
                                fprint_item(fa, it, sn[i].base);
                        } else if (router)
                                fprintf(fr, "%s%s", ftell(fr) > 0 ? ", " : "", it->key);
                        else
                                /* Names only: a [database] url may hold a
                                 * password, and the journal is widely read. */
                                fprintf(fr, "%s[%s] %s", ftell(fr) > 0 ? ", " : "", so[i].name, it->key);
                }
        }

        if (fclose(fa) != 0)
                r = -ENOMEM;
        if (fclose(fr) != 0)
                r = -ENOMEM;
        if (r < 0 || !applied || !restart)
                return -ENOMEM;
        *ret_applied = TAKE_PTR(applied);
        *ret_restart = TAKE_PTR(restart);
        return 0;
}

#define SWAP(a, b)                      \
        do {                            \
                typeof(a) _t = (a);     \
                (a) = (b);              \
                (b) = _t;               \
        } while (0)

void routerd_config_keep_restart_values(RouterdConfig *next, RouterdConfig *cur) {
        /* Swapped rather than copied: each struct keeps owning exactly
         * one set of strings, so freeing cur afterwards frees what next
         * did not keep. */
        SWAP(next->database, cur->database);
        SWAP(next->events, cur->events);
        SWAP(next->router.listen, cur->router.listen);
        SWAP(next->router.output_buffer_max, cur->router.output_buffer_max);
}
