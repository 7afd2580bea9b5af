/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/routerd/idmap.h"
#include "hashtable.h"

/* An entry is one allocation with its key inline, found through the
 * libshared string table (SipHash under the map's random key). Separate
 * chaining keeps removal simple: no tombstones, which matters for a map
 * that sees a put and a remove for every call. */
typedef struct Entry {
        HashNode node;
        void *value;
        char key[];
} Entry;

struct IdMap {
        HashTable table;
};

/* Enough for the maps that stay small (queue lists, dirty operators)
 * without a doubling on the first few puts. */
#define INITIAL_BUCKETS 16

int idmap_new(IdMap **ret) {
        IdMap *m;

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        hashtable_init_string(&m->table, HASHTABLE_KEY_OFFSET(Entry, node, key), NULL);
        /* Buckets from the start: a later failed grow only costs speed
         * (see idmap_put()). */
        if (hashtable_reserve(&m->table, INITIAL_BUCKETS) < 0) {
                free(m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

IdMap *idmap_free(IdMap *m) {
        HashIter i = HASH_ITER_INIT;
        HashNode *n;

        if (!m)
                return NULL;
        while (hashtable_iterate(&m->table, &i, &n)) {
                hashtable_remove(&m->table, n);
                free(container_of(n, Entry, node));
        }
        hashtable_done(&m->table);
        free(m);
        return NULL;
}

size_t idmap_size(const IdMap *m) {
        return m ? hashtable_size(&m->table) : 0;
}

void *idmap_get(const IdMap *m, const char *key) {
        HashNode *n;

        if (!m)
                return NULL;
        n = hashtable_find_string(&m->table, key);
        return n ? container_of(n, Entry, node)->value : NULL;
}

int idmap_put(IdMap *m, const char *key, void *value) {
        uint64_t h = hashtable_hash_string(&m->table, key);
        HashNode *n = hashtable_find_string_hashed(&m->table, key, h);
        Entry *e;
        size_t len;

        if (n) {
                container_of(n, Entry, node)->value = value;
                return 0;
        }

        /* Keep the load factor at most 1; a failed grow only costs speed,
         * since the table has buckets since idmap_new(). */
        (void) hashtable_reserve(&m->table, hashtable_size(&m->table) + 1);

        len = strlen(key);
        e = malloc(sizeof *e + len + 1);
        if (!e)
                return -ENOMEM;
        memcpy(e->key, key, len + 1);
        e->value = value;
        hashtable_insert_hashed(&m->table, &e->node, h);
        return 0;
}

void *idmap_remove(IdMap *m, const char *key) {
        HashNode *n;
        Entry *e;
        void *v;

        if (!m)
                return NULL;
        n = hashtable_find_string(&m->table, key);
        if (!n)
                return NULL;
        hashtable_remove(&m->table, n);
        e = container_of(n, Entry, node);
        v = e->value;
        free(e);
        return v;
}

/* Used when a TCP connection closes: a full scan is fine for that rare
 * event and saves a reverse index per connection. */
size_t idmap_remove_value(IdMap *m, const void *value) {
        HashIter i = HASH_ITER_INIT;
        HashNode *n;
        size_t removed = 0;

        if (!m)
                return 0;
        /* The iterator allows removing the entry it just returned. */
        while (hashtable_iterate(&m->table, &i, &n)) {
                Entry *e = container_of(n, Entry, node);

                if (e->value != value)
                        continue;
                hashtable_remove(&m->table, n);
                free(e);
                removed++;
        }
        return removed;
}

bool idmap_iterate(const IdMap *m, size_t *state, const char **ret_key, void **ret_value) {
        /* state encodes (bucket, position in chain) as bucket * 2^20 + pos,
         * rather than a HashIter's pointer to the next entry: an entry
         * removed between two calls cannot leave it dangling. Chains stay
         * short with the load factor at 1. */
        const HashTable *t;
        size_t b, pos;

        if (!m)
                return false;
        t = &m->table;
        b = *state >> 20;
        pos = *state & ((1U << 20) - 1);
        for (; b < t->n_buckets; b++, pos = 0) {
                HashNode *n = t->buckets[b];

                for (size_t i = 0; n && i < pos; i++)
                        n = n->next;
                if (n) {
                        Entry *e = container_of(n, Entry, node);

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
