/* SPDX-License-Identifier: MIT */
/* eventd's per-connection subscription bounds (daemons/eventd/subs.c): a
 * table of (un)subscriptions and what each must return, then the bounds. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "daemons/eventd/subs.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(Subs *, subs_free);
#include "tap.h"

static void test_table(void) {
        static const struct {
                char op;        /* '+' subscribe, '-' unsubscribe, 'x' connection gone */
                int fd;
                const char *prefix;
                int result;
                size_t count;   /* prefixes of fd afterwards */
        } steps[] = {
                { '+', 5, "router.", SUBS_ADDED, 1 },
                { '+', 5, "router.", SUBS_HELD, 1 },
                { '+', 5, "", SUBS_ADDED, 2 },                  /* everything */
                { '+', 6, "router.", SUBS_ADDED, 1 },           /* another connection */
                { '-', 5, "tasks.", SUBS_NOT_HELD, 2 },
                { '-', 5, "router.", SUBS_REMOVED, 1 },
                { '-', 5, "router.", SUBS_NOT_HELD, 1 },
                { '-', 9, "router.", SUBS_NOT_HELD, 0 },        /* unknown connection */
                { 'x', 5, NULL, 0, 0 },
                { '-', 5, "", SUBS_NOT_HELD, 0 },
                { '+', 6, "tasks.", SUBS_ADDED, 2 },
                { '+', -1, "a.", SUBS_ADDED, 1 },               /* descriptor unknown */
                { 'x', 6, NULL, 0, 0 },
                { '+', 6, "router.", SUBS_ADDED, 1 },           /* a new connection on fd 6 */
        };
        _cleanup_(subs_freep) Subs *s = subs_new();

        ok(s != NULL, "subs_new");
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                int r = 0;

                if (steps[i].op == 'x')
                        subs_forget(s, steps[i].fd);
                else if (steps[i].op == '+')
                        r = subs_add(s, steps[i].fd, steps[i].prefix, strlen(steps[i].prefix));
                else
                        r = subs_remove(s, steps[i].fd, steps[i].prefix, strlen(steps[i].prefix));
                ok(r == steps[i].result && subs_count(s, steps[i].fd) == steps[i].count,
                   "step %zu: %c fd %d \"%s\" -> %d (want %d), %zu held (want %zu)", i, steps[i].op, steps[i].fd,
                   steps[i].prefix ?: "", r, steps[i].result, subs_count(s, steps[i].fd), steps[i].count);
        }
        ok(subs_connections(s) == 2, "two connections hold prefixes (%zu)", subs_connections(s));
}

static void test_bounds(void) {
        _cleanup_(subs_freep) Subs *s = subs_new();
        char prefix[2048];
        size_t added = 0, too_many = 0;
        int r;

        memset(prefix, 'x', sizeof(prefix));
        ok(subs_add(s, 3, prefix, SUBS_PREFIX_MAX) == SUBS_ADDED, "a prefix of SUBS_PREFIX_MAX (%d) bytes is taken",
           SUBS_PREFIX_MAX);
        ok(subs_add(s, 3, prefix, SUBS_PREFIX_MAX + 1) == SUBS_TOO_LONG, "one byte more is refused");
        ok(subs_add(s, 3, prefix, 1024) == SUBS_TOO_LONG, "1 KB is refused");
        ok(subs_remove(s, 3, prefix, 1024) == SUBS_NOT_HELD, "unsubscribing from it changes nothing");

        /* 20,000 distinct prefixes on one connection: SUBS_PER_CONNECTION_MAX
         * are taken, the rest refused. */
        for (unsigned i = 0; i < 20000; i++) {
                int n = snprintf(prefix, sizeof(prefix), "spam%u.", i);

                r = subs_add(s, 4, prefix, (size_t) n);
                added += r == SUBS_ADDED;
                too_many += r == SUBS_TOO_MANY;
        }
        ok(added == SUBS_PER_CONNECTION_MAX && too_many == 20000 - SUBS_PER_CONNECTION_MAX,
           "20,000 subscriptions on one connection: %zu taken, %zu refused", added, too_many);
        ok(subs_add(s, 5, "router.", 7) == SUBS_ADDED, "another connection is not affected");

        /* Unsubscribing from a refused prefix must not make room. */
        ok(subs_remove(s, 4, "spam19999.", 10) == SUBS_NOT_HELD, "a refused prefix is not held");
        ok(subs_add(s, 4, "more.", 5) == SUBS_TOO_MANY, "so there is still no room");
        ok(subs_remove(s, 4, "spam0.", 6) == SUBS_REMOVED, "unsubscribing from a held one");
        ok(subs_add(s, 4, "more.", 5) == SUBS_ADDED, "makes room for one");

        subs_forget(s, 4);
        ok(subs_count(s, 4) == 0, "a connection that is gone holds nothing");
        ok(subs_add(s, 4, "router.", 7) == SUBS_ADDED, "and its number starts afresh");
        ok(subs_add(s, -2, "x", 1) == _SUBS_RESULT_INVALID, "fd < -1 is invalid");
}

static void test_connected(void) {
        _cleanup_(subs_freep) Subs *s = subs_new();

        ok(!subs_is_connected(s, 7), "an fd never seen is not a connection");
        ok(subs_add(s, 7, "a.", 2) == SUBS_ADDED && !subs_is_connected(s, 7),
           "a subscription does not make it one");
        ok(subs_set_connected(s, 7, true) == 0 && subs_is_connected(s, 7) && subs_count(s, 7) == 0,
           "connected: a live connection with an empty account");
        ok(subs_add(s, 7, "a.", 2) == SUBS_ADDED, "subscribes");
        ok(subs_set_connected(s, 7, false) == 0 && !subs_is_connected(s, 7) && subs_count(s, 7) == 0,
           "gone: not live, nothing held");
        ok(subs_set_connected(s, 1000, false) == 0 && !subs_is_connected(s, 1000), "gone before seen");
        ok(subs_set_connected(s, -1, true) == -EINVAL, "-1 is no connection");

        ok(subs_set_connected(s, 8, true) == 0 && subs_add(s, 8, "a.", 2) == SUBS_ADDED, "fd 8 subscribes");
        subs_end(s, 8);
        ok(subs_count(s, 8) == 0 && subs_add(s, 8, "b.", 2) == SUBS_ENDED,
           "ended: nothing held, whatever else it sent is refused");
        ok(subs_set_connected(s, 8, true) == 0 && subs_add(s, 8, "b.", 2) == SUBS_ADDED,
           "a new connection on fd 8 starts afresh");
}

int main(void) {
        test_table();
        test_bounds();
        test_connected();
        return done_testing();
}
