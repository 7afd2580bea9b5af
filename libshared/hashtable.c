/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "hashtable.h"

/* Small enough for a table that stays nearly empty (one per queue list,
 * one per connection's bookkeeping), large enough to skip the first
 * doublings. */
#define MIN_BUCKETS_LOG2 4

/* ---- SipHash-2-4 ---- */

#define ROTL64(x, b) (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                \
        do {                                                                    \
                v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32);   \
                v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2;                        \
                v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0;                        \
                v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32);   \
        } while (0)

uint64_t siphash24(const void *data, size_t len, const uint64_t key[2]) {
        const uint8_t *p = data;
        uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ key[0], v1 = UINT64_C(0x646f72616e646f6d) ^ key[1];
        uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ key[0], v3 = UINT64_C(0x7465646279746573) ^ key[1];
        uint64_t b = (uint64_t) len << 56;

        /* The message is read as little-endian words; memcpy() is one
         * unaligned load on the machines we run on. */
        for (; len >= 8; len -= 8, p += 8) {
                uint64_t m;

                memcpy(&m, p, sizeof m);
                m = le64toh(m);
                v3 ^= m;
                SIPROUND;
                SIPROUND;
                v0 ^= m;
        }
        switch (len) {
        case 7: b |= (uint64_t) p[6] << 48; /* fall through */
        case 6: b |= (uint64_t) p[5] << 40; /* fall through */
        case 5: b |= (uint64_t) p[4] << 32; /* fall through */
        case 4: b |= (uint64_t) p[3] << 24; /* fall through */
        case 3: b |= (uint64_t) p[2] << 16; /* fall through */
        case 2: b |= (uint64_t) p[1] << 8;  /* fall through */
        case 1: b |= (uint64_t) p[0];       /* fall through */
        case 0: break;
        }
        v3 ^= b;
        SIPROUND;
        SIPROUND;
        v0 ^= b;
        v2 ^= 0xff;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t splitmix64(uint64_t x) {
        x += UINT64_C(0x9e3779b97f4a7c15);
        x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
        return x ^ (x >> 31);
}

void hashtable_random_key(uint64_t ret[2]) {
        struct timespec ts = {};

        if (getrandom(ret, 2 * sizeof(uint64_t), GRND_NONBLOCK) == 2 * sizeof(uint64_t))
                return;
        /* Early boot without entropy: a weak key still makes a working table,
         * and with ASLR and the clock an outsider still has to guess. */
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        ret[0] = splitmix64((uint64_t) (uintptr_t) ret ^ (uint64_t) ts.tv_nsec);
        ret[1] = splitmix64(ret[0] ^ (uint64_t) (uintptr_t) &hashtable_random_key ^ (uint64_t) ts.tv_sec);
}

/* ---- the table ---- */

void hashtable_init_string(HashTable *t, ptrdiff_t key_offset, const uint64_t key[2]) {
        uint64_t k[2];

        if (!key) {
                hashtable_random_key(k);
                key = k;
        }
        *t = (HashTable) {
                .key_offset = key_offset,
                .key = { key[0], key[1] },
        };
}

void hashtable_init(HashTable *t) {
        *t = (HashTable) {};
}

void hashtable_done(HashTable *t) {
        free(t->buckets);
        t->buckets = NULL;
        t->n_buckets = 0;
        t->n = 0;
        t->shift = 0;
}

static size_t bucket_of(const HashTable *t, uint64_t hash) {
        /* The top bits: what Fibonacci hashing needs (its low bits are
         * poor), and as good as any for SipHash. */
        return (size_t) (hash >> t->shift);
}

int hashtable_reserve(HashTable *t, size_t n) {
        HashNode **b;
        size_t want;
        unsigned shift;

        if (n <= t->n_buckets)
                return 0;
        if (t->n_buckets > 0) {
                want = t->n_buckets;
                shift = t->shift;
        } else {
                want = (size_t) 1 << MIN_BUCKETS_LOG2;
                shift = 64 - MIN_BUCKETS_LOG2;
        }
        while (want < n) {
                if (want > SIZE_MAX / 2 / sizeof(HashNode *) || shift <= 1)
                        return -ENOMEM;
                want *= 2;
                shift--;
        }
        b = calloc(want, sizeof(HashNode *));
        if (!b)
                return -ENOMEM;

        /* Each old chain splits between two new buckets; the stored hashes
         * spare hashing the keys again. */
        for (size_t i = 0; i < t->n_buckets; i++)
                for (HashNode *node = t->buckets[i], *next; node; node = next) {
                        size_t j = (size_t) (node->hash >> shift);

                        next = node->next;
                        node->next = b[j];
                        b[j] = node;
                }
        free(t->buckets);
        t->buckets = b;
        t->n_buckets = want;
        t->shift = shift;
        return 0;
}

void hashtable_insert_hashed(HashTable *t, HashNode *node, uint64_t hash) {
        size_t j;

        assert(t->n_buckets > 0);
        node->hash = hash;
        j = bucket_of(t, hash);
        node->next = t->buckets[j];
        t->buckets[j] = node;
        t->n++;
}

HashNode *hashtable_chain(const HashTable *t, uint64_t hash) {
        if (t->n == 0)
                return NULL;
        return t->buckets[bucket_of(t, hash)];
}

void hashtable_remove(HashTable *t, HashNode *node) {
        HashNode **p;

        assert(t->n > 0);
        for (p = &t->buckets[bucket_of(t, node->hash)]; *p; p = &(*p)->next)
                if (*p == node) {
                        *p = node->next;
                        node->next = NULL;
                        t->n--;
                        return;
                }
        assert(!"node not in table");
}

bool hashtable_iterate(const HashTable *t, HashIter *i, HashNode **ret) {
        HashNode *node = i->next;

        /* i->next is taken before the node is handed out, which is what
         * lets the caller remove the node it was just given. */
        while (!node) {
                if (i->bucket >= t->n_buckets)
                        return false;
                node = t->buckets[i->bucket++];
        }
        i->next = node->next;
        *ret = node;
        return true;
}

/* ---- string keys ---- */

uint64_t hashtable_hash_string(const HashTable *t, const char *key) {
        return siphash24(key, strlen(key), t->key);
}

void hashtable_insert_string(HashTable *t, HashNode *node) {
        hashtable_insert_hashed(t, node, hashtable_hash_string(t, hashtable_node_key(t, node)));
}

HashNode *hashtable_find_string_hashed(const HashTable *t, const char *key, uint64_t hash) {
        /* Comparing the full hash first skips nearly every strcmp() of a
         * node that merely shares the bucket. */
        for (HashNode *node = hashtable_chain(t, hash); node; node = node->next)
                if (node->hash == hash && strcmp(hashtable_node_key(t, node), key) == 0)
                        return node;
        return NULL;
}

HashNode *hashtable_find_string(const HashTable *t, const char *key) {
        if (t->n == 0 || !key)
                return NULL;
        return hashtable_find_string_hashed(t, key, hashtable_hash_string(t, key));
}

/* ---- uint64_t keys ---- */

void hashtable_insert_u64(HashTable *t, HashNode *node, uint64_t key) {
        hashtable_insert_hashed(t, node, hashtable_hash_u64(key));
}

HashNode *hashtable_find_u64(const HashTable *t, uint64_t key) {
        uint64_t h = hashtable_hash_u64(key);

        /* The hash is a bijection of the key: no key to compare. */
        for (HashNode *node = hashtable_chain(t, h); node; node = node->next)
                if (node->hash == h)
                        return node;
        return NULL;
}
