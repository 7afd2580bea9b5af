/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "daemons/routerd/idmap.h"

/* Separate chaining: an entry is one allocation with its key inline, so a
 * lookup touches one cache line per probe, and removal is simple (no
 * tombstones, which matters for a map that sees a put and a remove for
 * every call). */
typedef struct Entry {
        struct Entry *next;
        uint64_t hash;
        void *value;
        char key[];
} Entry;

struct IdMap {
        Entry **buckets;
        size_t n_buckets;            /* a power of two */
        size_t n;
        uint64_t k0, k1;
};

/* FNV-1a over the key, then a keyed finalizer: a client who does not know
 * k0/k1 cannot predict which ids collide. */
static uint64_t hash_string(const IdMap *m, const char *s) {
        uint64_t h = 0xcbf29ce484222325ULL ^ m->k0;

        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= 0x100000001b3ULL;
        }
        h ^= m->k1;
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 33;
        return h;
}

int idmap_new(IdMap **ret) {
        IdMap *m;

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->n_buckets = 16;
        m->buckets = calloc(m->n_buckets, sizeof(Entry *));
        if (!m->buckets) {
                free(m);
                return -ENOMEM;
        }
        /* A weak key is still a working map, so a short read is not fatal. */
        if (getrandom(&m->k0, sizeof m->k0, GRND_NONBLOCK) != sizeof m->k0)
                m->k0 = (uint64_t) (uintptr_t) m;
        if (getrandom(&m->k1, sizeof m->k1, GRND_NONBLOCK) != sizeof m->k1)
                m->k1 = (uint64_t) (uintptr_t) m->buckets;
        *ret = m;
        return 0;
}

IdMap *idmap_free(IdMap *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_buckets; i++)
                for (Entry *e = m->buckets[i], *next; e; e = next) {
                        next = e->next;
                        free(e);
                }
        free(m->buckets);
        free(m);
        return NULL;
}

size_t idmap_size(const IdMap *m) {
        return m ? m->n : 0;
}

/* The link that points at key's entry, or the NULL link at the end of its
 * chain where it would be inserted. Comparing the full hash first skips
 * most strcmp() calls. */
static Entry **find_slot(const IdMap *m, const char *key, uint64_t h) {
        Entry **p = &m->buckets[h & (m->n_buckets - 1)];

        for (; *p; p = &(*p)->next)
                if ((*p)->hash == h && strcmp((*p)->key, key) == 0)
                        return p;
        return p;
}

void *idmap_get(const IdMap *m, const char *key) {
        Entry **p;

        if (!m || !key)
                return NULL;
        p = find_slot(m, key, hash_string(m, key));
        return *p ? (*p)->value : NULL;
}

/* Double the buckets, reusing the stored hashes: keys are not hashed
 * again. */
static int grow(IdMap *m) {
        size_t n = m->n_buckets * 2;
        Entry **b;

        b = calloc(n, sizeof(Entry *));
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_buckets; i++)
                for (Entry *e = m->buckets[i], *next; e; e = next) {
                        next = e->next;
                        e->next = b[e->hash & (n - 1)];
                        b[e->hash & (n - 1)] = e;
                }
        free(m->buckets);
        m->buckets = b;
        m->n_buckets = n;
        return 0;
}

int idmap_put(IdMap *m, const char *key, void *value) {
        uint64_t h = hash_string(m, key);
        Entry **p = find_slot(m, key, h), *e;
        size_t len;

        if (*p) {
                (*p)->value = value;
                return 0;
        }

        /* Keep the load factor at most 1; a failed grow only costs speed. */
        if (m->n >= m->n_buckets && grow(m) >= 0)
                p = find_slot(m, key, h);

        len = strlen(key);
        e = malloc(sizeof *e + len + 1);
        if (!e)
                return -ENOMEM;
        memcpy(e->key, key, len + 1);
        e->hash = h;
        e->value = value;
        e->next = NULL;
        *p = e;
        m->n++;
        return 0;
}

void *idmap_remove(IdMap *m, const char *key) {
        Entry **p, *e;
        void *v;

        if (!m || !key)
                return NULL;
        p = find_slot(m, key, hash_string(m, key));
        e = *p;
        if (!e)
                return NULL;
        *p = e->next;
        v = e->value;
        free(e);
        m->n--;
        return v;
}

/* Used when a TCP connection closes: a full scan is fine for that rare
 * event and saves a reverse index per connection. */
size_t idmap_remove_value(IdMap *m, const void *value) {
        size_t removed = 0;

        if (!m)
                return 0;
        for (size_t i = 0; i < m->n_buckets; i++)
                for (Entry **p = &m->buckets[i]; *p;) {
                        if ((*p)->value == value) {
                                Entry *e = *p;

                                *p = e->next;
                                free(e);
                                m->n--;
                                removed++;
                        } else
                                p = &(*p)->next;
                }
        return removed;
}

bool idmap_iterate(const IdMap *m, size_t *state, const char **ret_key, void **ret_value) {
        /* state encodes (bucket, position in chain) as bucket * 2^20 + pos;
         * chains stay short with the load factor at 1. */
        size_t b, pos;

        if (!m)
                return false;
        b = *state >> 20;
        pos = *state & ((1U << 20) - 1);
        for (; b < m->n_buckets; b++, pos = 0) {
                Entry *e = m->buckets[b];

                for (size_t i = 0; e && i < pos; i++)
                        e = e->next;
                if (e) {
                        *state = (b << 20) | (pos + 1);
                        if (ret_key)
                                *ret_key = e->key;
                        if (ret_value)
                                *ret_value = e->value;
                        return true;
                }
        }
        *state = b << 20;
        return false;
}
