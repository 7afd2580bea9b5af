/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "subs.h"

/*
 * A connection's prefixes in a plain array: at most
 * SUBS_PER_CONNECTION_MAX short strings, searched linearly. Subscriptions
 * change rarely (at connect, and when a client changes its filters), so
 * this costs nothing next to forwarding events, and it is easy to bound.
 */
typedef struct Prefix {
        size_t len;
        char *data;
} Prefix;

typedef struct Conn {
        Prefix *prefixes;
        size_t n, alloc;
        bool connected, ended;
} Conn;

struct Subs {
        Conn *conns;            /* indexed by fd + 1 */
        size_t n_conns;
        size_t active;          /* connections holding a prefix */
};

Subs *subs_new(void) {
        return calloc(1, sizeof(Subs));
}

static void conn_clear(Conn *c) {
        bool connected = c->connected, ended = c->ended;

        for (size_t i = 0; i < c->n; i++)
                free(c->prefixes[i].data);
        free(c->prefixes);
        *c = (Conn) { .connected = connected, .ended = ended };
}

Subs *subs_free(Subs *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_conns; i++)
                conn_clear(&s->conns[i]);
        free(s->conns);
        free(s);
        return NULL;
}

static Conn *subs_conn(const Subs *s, int fd) {
        if (fd < -1 || (size_t) (fd + 1) >= s->n_conns)
                return NULL;
        return &s->conns[fd + 1];
}

static ssize_t conn_find(const Conn *c, const void *prefix, size_t len) {
        for (size_t i = 0; i < c->n; i++)
                if (c->prefixes[i].len == len && memcmp(c->prefixes[i].data, prefix, len) == 0)
                        return (ssize_t) i;
        return -1;
}

static int subs_grow(Subs *s, int fd) {
        size_t n;
        Conn *p;

        if ((size_t) (fd + 1) < s->n_conns)
                return 0;
        n = (size_t) fd + 1 + 16;
        p = realloc(s->conns, n * sizeof(Conn));
        if (!p)
                return -ENOMEM;
        memset(p + s->n_conns, 0, (n - s->n_conns) * sizeof(Conn));
        s->conns = p;
        s->n_conns = n;
        return 0;
}

int subs_add(Subs *s, int fd, const void *prefix, size_t len) {
        Conn *c;
        char *copy;

        if (!s || fd < -1 || (!prefix && len > 0))
                return _SUBS_RESULT_INVALID;
        if (len > SUBS_PREFIX_MAX)
                return SUBS_TOO_LONG;

        if (subs_grow(s, fd) < 0)
                return -ENOMEM;
        c = &s->conns[fd + 1];
        if (c->ended)
                return SUBS_ENDED;
        if (conn_find(c, prefix, len) >= 0)
                return SUBS_HELD;
        if (c->n >= SUBS_PER_CONNECTION_MAX)
                return SUBS_TOO_MANY;

        if (c->n == c->alloc) {
                size_t n = c->alloc ? c->alloc * 2 : 4;
                Prefix *p = realloc(c->prefixes, n * sizeof(Prefix));

                if (!p)
                        return -ENOMEM;
                c->prefixes = p;
                c->alloc = n;
        }
        copy = malloc(len ? len : 1);
        if (!copy)
                return -ENOMEM;
        if (len > 0)
                memcpy(copy, prefix, len);
        if (c->n == 0)
                s->active++;
        c->prefixes[c->n++] = (Prefix) { .len = len, .data = copy };
        return SUBS_ADDED;
}

int subs_remove(Subs *s, int fd, const void *prefix, size_t len) {
        Conn *c;
        ssize_t i;

        if (!s || fd < -1 || (!prefix && len > 0))
                return _SUBS_RESULT_INVALID;
        c = subs_conn(s, fd);
        if (!c || len > SUBS_PREFIX_MAX)
                return SUBS_NOT_HELD;
        i = conn_find(c, prefix, len);
        if (i < 0)
                return SUBS_NOT_HELD;
        free(c->prefixes[i].data);
        c->prefixes[i] = c->prefixes[--c->n];
        if (c->n == 0) {
                conn_clear(c);
                s->active--;
        }
        return SUBS_REMOVED;
}

void subs_forget(Subs *s, int fd) {
        Conn *c;

        if (!s)
                return;
        c = subs_conn(s, fd);
        if (!c)
                return;
        if (c->n > 0)
                s->active--;
        conn_clear(c);
}

int subs_set_connected(Subs *s, int fd, bool connected) {
        if (!s || fd < 0)
                return -EINVAL;
        subs_forget(s, fd);
        if (!connected) {
                if (subs_conn(s, fd))
                        s->conns[fd + 1].connected = s->conns[fd + 1].ended = false;
                return 0;
        }
        if (subs_grow(s, fd) < 0)
                return -ENOMEM;
        s->conns[fd + 1].connected = true;
        s->conns[fd + 1].ended = false;
        return 0;
}

void subs_end(Subs *s, int fd) {
        if (!s || fd < 0)
                return;
        subs_forget(s, fd);
        if (subs_grow(s, fd) >= 0)
                s->conns[fd + 1].ended = true;
}

bool subs_is_connected(const Subs *s, int fd) {
        const Conn *c = s ? subs_conn(s, fd) : NULL;

        return c && c->connected;
}

size_t subs_count(const Subs *s, int fd) {
        const Conn *c = s ? subs_conn(s, fd) : NULL;

        return c ? c->n : 0;
}

size_t subs_connections(const Subs *s) {
        return s ? s->active : 0;
}
