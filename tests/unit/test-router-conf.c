/* SPDX-License-Identifier: MIT */
/*
 * routerd's configuration helpers ([router] queues and listen) and the id
 * map, table-driven. (The store's pure parts: test-record.c.)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemons/routerd/conf.h"
#include "libshared/cleanup.h"
#include "daemons/routerd/idmap.h"
#include "tap.h"

static const struct {
        const char *word;
        int ret;
        const char *name;
        AcdStrategy strategy;
        const char *members;         /* space-separated */
} queue_cases[] = {
        { "sales:A,B", 0, "sales", ACD_STRATEGY_LONGEST_IDLE, "A B" },
        { "support/round-robin:B", 0, "support", ACD_STRATEGY_ROUND_ROBIN, "B" },
        { "vip/top-down:X,Y,Z", 0, "vip", ACD_STRATEGY_TOP_DOWN, "X Y Z" },
        { "default:C", 0, "default", ACD_STRATEGY_LONGEST_IDLE, "C" },
        { "sales", -EINVAL },                /* no members */
        { "sales:", -EINVAL },               /* empty member */
        { "sales:A,", -EINVAL },
        { "sales:A,,B", -EINVAL },
        { ":A", -EINVAL },                   /* no name */
        { "sales:A,A", -EINVAL },            /* duplicate member */
        { "sales/fastest:A", -EINVAL },      /* unknown strategy */
        { "sales/:A", -EINVAL },
};

static const struct {
        const char *s;
        int ret;
        int family;
        const char *host;
        unsigned port;
} listen_cases[] = {
        { "127.0.0.1:5678", 0, AF_INET, "127.0.0.1", 5678 },
        { "localhost:1", 0, AF_INET, "127.0.0.1", 1 },
        { ":5678", 0, AF_INET, "0.0.0.0", 5678 },
        { "[::1]:5678", 0, AF_INET6, "::1", 5678 },
        { "0.0.0.0:0", 0, AF_INET, "0.0.0.0", 0 },
        { "127.0.0.1", -EINVAL },
        { "127.0.0.1:", -EINVAL },
        { "127.0.0.1:65536", -EINVAL },
        { "127.0.0.1:-1", -EINVAL },
        { "127.0.0.1:80x", -EINVAL },
        { "::1:5678", -EINVAL },             /* v6 needs brackets */
        { "example.com:80", -EINVAL },       /* numeric hosts only */
        { "", -EINVAL },
};

static void test_queue_specs(void) {
        for (size_t i = 0; i < ELEMENTSOF(queue_cases); i++) {
                RouterQueueSpec q = {};
                char members[256] = "";
                int r;

                r = router_queue_spec_parse(queue_cases[i].word, ACD_STRATEGY_LONGEST_IDLE, &q);
                is_int(r, queue_cases[i].ret, "queues word \"%s\"", queue_cases[i].word);
                if (r < 0)
                        continue;
                is_str(q.name, queue_cases[i].name, "  name");
                is_int(q.strategy, queue_cases[i].strategy, "  strategy");
                for (char **m = q.members; *m; m++) {
                        if (members[0])
                                strcat(members, " ");
                        strcat(members, *m);
                }
                is_str(members, queue_cases[i].members, "  members");
                router_queue_spec_done(&q);
        }
}

static void test_listen(void) {
        for (size_t i = 0; i < ELEMENTSOF(listen_cases); i++) {
                struct sockaddr_storage sa;
                unsigned len = 0;
                char host[INET6_ADDRSTRLEN] = "";
                unsigned port = 0;
                int r;

                r = router_parse_listen(listen_cases[i].s, &sa, &len);
                is_int(r, listen_cases[i].ret, "listen \"%s\"", listen_cases[i].s);
                if (r < 0)
                        continue;
                is_int(sa.ss_family, listen_cases[i].family, "  family");
                if (sa.ss_family == AF_INET) {
                        struct sockaddr_in *in = (struct sockaddr_in *) &sa;

                        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
                        port = ntohs(in->sin_port);
                        is_int(len, sizeof(struct sockaddr_in), "  length");
                } else {
                        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &sa;

                        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
                        port = ntohs(in6->sin6_port);
                        is_int(len, sizeof(struct sockaddr_in6), "  length");
                }
                is_str(host, listen_cases[i].host, "  host");
                is_int(port, listen_cases[i].port, "  port");
        }
}

static void test_idmap(void) {
        IdMap *m = NULL;
        char key[32];
        int a = 1, b = 2, c = 3;
        size_t state = 0, seen = 0;
        const char *k;
        void *v;

        is_int(idmap_new(&m), 0, "idmap_new");
        /* Enough keys to make the table grow several times. */
        for (int i = 0; i < 5000; i++) {
                snprintf(key, sizeof key, "call-%d", i);
                if (idmap_put(m, key, i % 2 ? &a : &b) < 0)
                        break;
        }
        is_int(idmap_size(m), 5000, "5000 keys");
        ok(idmap_get(m, "call-4999") == &a && idmap_get(m, "call-0") == &b, "lookups after growth");
        ok(idmap_get(m, "call-5000") == NULL, "absent key");
        is_int(idmap_put(m, "call-0", &c), 0, "replace");
        ok(idmap_get(m, "call-0") == &c && idmap_size(m) == 5000, "replaced in place");
        ok(idmap_remove(m, "call-1") == &a && idmap_get(m, "call-1") == NULL, "remove");
        ok(idmap_remove(m, "call-1") == NULL, "remove twice");
        while (idmap_iterate(m, &state, &k, &v))
                seen++;
        is_int(seen, 4999, "iterate sees every entry");
        is_int(idmap_remove_value(m, &a), 2499, "remove by value");
        is_int(idmap_size(m), 2500, "what is left");
        ok(idmap_free(m) == NULL, "idmap_free");
        ok(idmap_free(NULL) == NULL, "idmap_free(NULL)");
}

/* Load text as a configuration file into c. */
static int load_text(RouterdConfig *c, const char *text) {
        char path[] = "/tmp/test-router-conf.XXXXXX";
        int fd, r;
        FILE *f;

        fd = mkstemp(path);
        if (fd < 0)
                return -errno;
        f = fdopen(fd, "w");
        if (!f) {
                close(fd);
                unlink(path);
                return -errno;
        }
        fputs(text, f);
        fclose(f);
        r = routerd_config_load(c, path);
        unlink(path);
        return r;
}

static void test_reload_diff(void) {
        static const char *const base =
                "[database]\nurl=postgresql:///a\n[events]\npublish=\n"
                "[router]\nlisten=127.0.0.1:5678\noperators=A B\nqueues=sales:A\n";
        RouterdConfig a = {}, b = {};
        _cleanup_(freep) char *applied = NULL, *restart = NULL;
        char text[1024];

        /* The environment would override what the files say. */
        unsetenv("CALLCENTER_DATABASE_URL");
        unsetenv("CALLCENTER_ROUTER");
        unsetenv("CALLCENTER_EVENTS");
        unsetenv("CALLCENTER_EVENTS_PUBLISH");

        ok(router_config_key_reloadable("ring_timeout"), "ring_timeout is reloadable");
        ok(router_config_key_reloadable("queues"), "queues is reloadable");
        ok(!router_config_key_reloadable("listen"), "listen is not");
        ok(!router_config_key_reloadable("output_buffer_max"), "output_buffer_max is not");

        is_int(load_text(&a, base), 0, "load the first file");
        is_int(load_text(&b, base), 0, "load the same again");
        is_int(routerd_config_diff(&a, &b, &applied, &restart), 0, "diff");
        is_str(applied, "", "same file: nothing applied");
        is_str(restart, "", "same file: nothing needs a restart");
        routerd_config_done(&b);
        free(applied);
        free(restart);
        applied = restart = NULL;

        snprintf(text, sizeof text, "%s%s", base,
                 "ring_timeout=5s\nstrategy=top-down\nqueues=sales:A,B support/random:B\n"
                 "wrap_up=1500ms\nmax_no_answer=3\nlisten=127.0.0.1:6000\noutput_buffer_max=1M\n"
                 "[database]\nurl=postgresql://user:secret@db/cc\n[events]\nhwm=5\n");
        is_int(load_text(&b, text), 0, "load a changed file");
        is_int(routerd_config_diff(&a, &b, &applied, &restart), 0, "diff");
        is_str(applied,
               "queues \"sales:A\" -> \"sales:A,B support/random:B\", strategy longest-idle -> top-down, "
               "ring_timeout 10s -> 5s, wrap_up 0 -> 1500ms, max_no_answer 0 -> 3",
               "applied: old -> new, in table order");
        is_str(restart, "[database] url, [events] hwm, listen, output_buffer_max",
               "restart: names only (no password in the log)");

        /* next keeps what is in effect for the keys a reload leaves. */
        routerd_config_keep_restart_values(&b, &a);
        is_str(b.router.listen, "127.0.0.1:5678", "listen carried over");
        is_str(b.database.url, "postgresql:///a", "[database] carried over");
        ok(b.router.output_buffer_max == 4u << 20, "output_buffer_max carried over");
        is_str(b.router.queues[1], "support/random:B", "queues from the new file");
        is_str(a.router.listen, "127.0.0.1:6000", "the old struct got the new listen (freed with it)");
        routerd_config_done(&a);
        routerd_config_done(&b);
}

/* [router] max_queued and idle_timeout: defaults, bounds, and both are
 * applied by a reload. */
static void test_limits(void) {
        static const char *const base = "[database]\nurl=\n[events]\npublish=\n[router]\n";
        static const struct {
                const char *text;
                int ret;
                unsigned max_queued;
                usec_t idle_timeout;
        } cases[] = {
                { "", 0, 10000, 3600 * USEC_PER_SEC },
                { "max_queued=5\nidle_timeout=90s\n", 0, 5, 90 * USEC_PER_SEC },
                { "idle_timeout=infinity\n", 0, 10000, USEC_INFINITY },
                { "idle_timeout=1s\n", 0, 10000, USEC_PER_SEC },
                { "max_queued=0\n", -EINVAL, 0, 0 },
                { "max_queued=-1\n", -EINVAL, 0, 0 },
                { "idle_timeout=0\n", -EINVAL, 0, 0 },
                { "idle_timeout=500ms\n", -EINVAL, 0, 0 },
        };
        char text[512];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                RouterdConfig c = {};
                AcdConfig ac;
                int r;

                snprintf(text, sizeof text, "%s%s", base, cases[i].text);
                r = load_text(&c, text);
                is_int(r, cases[i].ret, "limits: \"%s\"", cases[i].text);
                if (r >= 0) {
                        is_int(c.router.max_queued, cases[i].max_queued, "  max_queued");
                        ok(c.router.idle_timeout == cases[i].idle_timeout, "  idle_timeout %llu",
                           (unsigned long long) c.router.idle_timeout);
                        router_config_to_acd(&c.router, &ac);
                        is_int(ac.max_queued, cases[i].max_queued, "  passed to the ACD");
                }
                routerd_config_done(&c);
        }
        ok(router_config_key_reloadable("max_queued"), "max_queued is reloadable");
        ok(router_config_key_reloadable("idle_timeout"), "idle_timeout is reloadable");
}

int main(void) {
        plan_no_plan();
        test_reload_diff();
        test_limits();
        test_queue_specs();
        test_listen();
        test_idmap();
        return done_testing();
}
