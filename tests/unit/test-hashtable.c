/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "hashtable.h"
#include "tap.h"

/* An element of a string table: the key is a flexible array member. */
typedef struct Item {
        HashNode node;
        unsigned value;
        unsigned seen;
        char key[];
} Item;

/* Key in front of the node: a negative key offset. */
typedef struct Before {
        char key[16];
        HashNode node;
} Before;

/* An element of a uint64_t table. */
typedef struct Num {
        uint64_t id;
        HashNode node;
        unsigned seen;
} Num;

static Item *item_new(const char *key, unsigned value) {
        size_t len = strlen(key);
        Item *it = calloc(1, sizeof(Item) + len + 1);

        if (!it)
                abort();
        memcpy(it->key, key, len + 1);
        it->value = value;
        return it;
}

static Item *item_find(const HashTable *t, const char *key) {
        HashNode *n = hashtable_find_string(t, key);
        return n ? container_of(n, Item, node) : NULL;
}

/* The longest chain and whether the load factor is at most 1. */
static size_t longest_chain(const HashTable *t) {
        size_t max = 0;

        for (size_t i = 0; i < t->n_buckets; i++) {
                size_t len = 0;

                for (HashNode *n = t->buckets[i]; n; n = n->next)
                        len++;
                if (len > max)
                        max = len;
        }
        return max;
}

/* Free every element, removing each as the iterator hands it out. */
static void items_free(HashTable *t) {
        HashIter i = HASH_ITER_INIT;
        HashNode *n;

        while (hashtable_iterate(t, &i, &n)) {
                hashtable_remove(t, n);
                free(container_of(n, Item, node));
        }
        hashtable_done(t);
}

static void test_siphash(void) {
        /* The reference implementation's vectors: key 00..0f, message
         * 00 01 02 ... of each length. */
        static const struct {
                size_t len;
                uint64_t h;
        } vectors[] = {
                { 0, UINT64_C(0x726fdb47dd0e0e31) },
                { 1, UINT64_C(0x74f839c593dc67fd) },
                { 7, UINT64_C(0xab0200f58b01d137) },
                { 8, UINT64_C(0x93f5f5799a932462) },
                { 15, UINT64_C(0xa129ca6149be45e5) },
                { 16, UINT64_C(0x3f2acc7f57c29bdb) },
                { 63, UINT64_C(0x958a324ceb064572) },
        };
        const uint64_t key[2] = { UINT64_C(0x0706050403020100), UINT64_C(0x0f0e0d0c0b0a0908) };
        uint8_t msg[64];

        for (size_t i = 0; i < sizeof msg; i++)
                msg[i] = (uint8_t) i;
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                uint64_t h = siphash24(msg, vectors[i].len, key);

                if (!ok(h == vectors[i].h, "siphash24: reference vector, %zu bytes", vectors[i].len))
                        diag("  got %016" PRIx64 ", expected %016" PRIx64, h, vectors[i].h);
        }
        /* Unaligned input reads the same bytes. */
        {
                uint8_t buf[80];

                memcpy(buf + 3, msg, 63);
                ok(siphash24(buf + 3, 63, key) == UINT64_C(0x958a324ceb064572), "siphash24: unaligned input");
        }
}

static void test_empty(void) {
        HashTable t;
        HashIter i = HASH_ITER_INIT;
        HashNode *n;
        const uint64_t key[2] = { 1, 2 };

        hashtable_init_string(&t, HASHTABLE_KEY_OFFSET(Item, node, key), key);
        ok(hashtable_size(&t) == 0 && t.buckets == NULL, "empty: no allocation before reserve");
        ok(hashtable_find_string(&t, "x") == NULL, "empty: find without buckets");
        ok(hashtable_find_string(&t, NULL) == NULL, "empty: find NULL");
        ok(hashtable_chain(&t, 42) == NULL, "empty: no chain");
        ok(!hashtable_iterate(&t, &i, &n), "empty: iteration ends at once");
        is_int(hashtable_reserve(&t, 0), 0, "empty: reserve 0");
        ok(t.buckets == NULL, "empty: reserve 0 allocates nothing");
        is_int(hashtable_reserve(&t, 1), 0, "empty: reserve 1");
        is_int(t.n_buckets, 16, "empty: 16 buckets at first");
        ok(hashtable_find_string(&t, "x") == NULL, "empty: find with buckets");
        is_int(hashtable_reserve(&t, SIZE_MAX), -ENOMEM, "reserve SIZE_MAX: -ENOMEM");
        is_int(t.n_buckets, 16, "failed reserve changes nothing");
        hashtable_done(&t);
        ok(t.buckets == NULL && t.n_buckets == 0 && t.key[0] == 1 && t.key[1] == 2,
           "done: buckets freed, key kept");
        hashtable_done(&t);
        ok(1, "done twice");
}

static void test_strings(void) {
        enum { N = 100000 };
        HashTable t;
        HashIter i = HASH_ITER_INIT;
        HashNode *n;
        char key[32];
        size_t bad = 0, count = 0, max;

        hashtable_init_string(&t, HASHTABLE_KEY_OFFSET(Item, node, key), NULL);
        for (unsigned v = 0; v < N; v++) {
                Item *it;

                snprintf(key, sizeof key, "call-%u", v);
                if (hashtable_find_string(&t, key) || hashtable_reserve(&t, t.n + 1) < 0) {
                        bad++;
                        continue;
                }
                it = item_new(key, v);
                hashtable_insert_string(&t, &it->node);
        }
        is_int(bad, 0, "strings: %u distinct keys inserted", N);
        is_int(hashtable_size(&t), N, "strings: size");
        ok(t.n_buckets >= N && t.n_buckets < 2 * (size_t) N && (t.n_buckets & (t.n_buckets - 1)) == 0,
           "strings: %zu buckets, a power of two, load factor <= 1", t.n_buckets);
        max = longest_chain(&t);
        ok(max <= 12, "strings: longest chain %zu", max);

        for (unsigned v = 0; v < N; v++) {
                Item *it;

                snprintf(key, sizeof key, "call-%u", v);
                it = item_find(&t, key);
                if (!it || it->value != v || strcmp(it->key, key) != 0)
                        bad++;
        }
        is_int(bad, 0, "strings: every key found after the resizes");
        ok(item_find(&t, "call-100000") == NULL && item_find(&t, "") == NULL && item_find(&t, "call-") == NULL,
           "strings: absent keys not found");

        /* Remove the even values. */
        for (unsigned v = 0; v < N; v += 2) {
                Item *it;

                snprintf(key, sizeof key, "call-%u", v);
                it = item_find(&t, key);
                if (!it) {
                        bad++;
                        continue;
                }
                hashtable_remove(&t, &it->node);
                free(it);
        }
        is_int(bad, 0, "strings: removed half");
        is_int(hashtable_size(&t), N / 2, "strings: size after removal");
        for (unsigned v = 0; v < N; v++) {
                snprintf(key, sizeof key, "call-%u", v);
                if ((item_find(&t, key) != NULL) != (v % 2 == 1))
                        bad++;
        }
        is_int(bad, 0, "strings: the odd ones still found, the even ones gone");

        /* Iterate: every element exactly once. */
        while (hashtable_iterate(&t, &i, &n)) {
                container_of(n, Item, node)->seen++;
                count++;
        }
        is_int(count, N / 2, "iterate: as many as the size");
        i = HASH_ITER_INIT;
        while (hashtable_iterate(&t, &i, &n))
                if (container_of(n, Item, node)->seen != 1)
                        bad++;
        is_int(bad, 0, "iterate: each element once");

        /* Remove (and free) while iterating: every third value goes, the
         * rest is still seen exactly once. */
        count = 0;
        i = HASH_ITER_INIT;
        while (hashtable_iterate(&t, &i, &n)) {
                Item *it = container_of(n, Item, node);

                it->seen++;
                count++;
                if (it->value % 3 == 0) {
                        hashtable_remove(&t, n);
                        free(it);
                }
        }
        is_int(count, N / 2, "remove while iterating: every element visited");
        i = HASH_ITER_INIT;
        count = 0;
        while (hashtable_iterate(&t, &i, &n)) {
                Item *it = container_of(n, Item, node);

                if (it->seen != 2 || it->value % 3 == 0)
                        bad++;
                count++;
        }
        is_int(bad, 0, "remove while iterating: each visited once, the removed ones gone");
        is_int(count, hashtable_size(&t), "remove while iterating: size agrees");
        for (unsigned v = 1; v < N; v += 2) {
                snprintf(key, sizeof key, "call-%u", v);
                if ((item_find(&t, key) != NULL) != (v % 3 != 0))
                        bad++;
        }
        is_int(bad, 0, "remove while iterating: lookups agree");

        items_free(&t);
        is_int(hashtable_size(&t), 0, "strings: everything removed through the iterator");
}

static void test_keyed(void) {
        const uint64_t k1[2] = { 1, 2 }, k2[2] = { 3, 4 };
        HashTable a, b, c;
        Before x = { .key = "operator-7" };
        uint64_t r1[2] = {}, r2[2] = {};

        hashtable_init_string(&a, HASHTABLE_KEY_OFFSET(Before, node, key), k1);
        hashtable_init_string(&b, HASHTABLE_KEY_OFFSET(Before, node, key), k2);
        hashtable_init_string(&c, HASHTABLE_KEY_OFFSET(Before, node, key), k1);
        ok(HASHTABLE_KEY_OFFSET(Before, node, key) < 0, "keyed: the key may precede the node");
        ok(hashtable_hash_string(&a, "operator-7") == hashtable_hash_string(&c, "operator-7"),
           "keyed: same key, same hash");
        ok(hashtable_hash_string(&a, "operator-7") != hashtable_hash_string(&b, "operator-7"),
           "keyed: another key, another hash");
        ok(hashtable_hash_string(&a, "operator-7") == siphash24("operator-7", 10, k1), "keyed: it is SipHash");

        (void) hashtable_reserve(&a, 1);
        hashtable_insert_string(&a, &x.node);
        ok(hashtable_find_string(&a, "operator-7") == &x.node, "keyed: found through a negative offset");
        is_str(hashtable_node_key(&a, &x.node), "operator-7", "keyed: node key");
        ok(hashtable_find_string_hashed(&a, "operator-7", hashtable_hash_string(&a, "operator-7")) == &x.node,
           "keyed: find with the hash given");
        hashtable_remove(&a, &x.node);
        ok(hashtable_find_string(&a, "operator-7") == NULL && x.node.next == NULL, "keyed: removed");
        hashtable_done(&a);
        hashtable_done(&b);
        hashtable_done(&c);

        hashtable_random_key(r1);
        hashtable_random_key(r2);
        ok((r1[0] | r1[1]) != 0 && (r1[0] != r2[0] || r1[1] != r2[1]), "random keys differ");
}

static void test_u64(void) {
        enum { N = 100000 };
        HashTable t;
        Num *nums, extra[3] = { { .id = 0 }, { .id = UINT64_MAX }, { .id = UINT64_C(1) << 63 } };
        HashIter i = HASH_ITER_INIT;
        HashNode *n;
        size_t bad = 0, count = 0, max;

        nums = calloc(N, sizeof(Num));
        if (!nums)
                abort();
        hashtable_init(&t);
        for (unsigned v = 0; v < N; v++) {
                nums[v].id = v + 1;
                if (hashtable_reserve(&t, t.n + 1) < 0) {
                        bad++;
                        continue;
                }
                hashtable_insert_u64(&t, &nums[v].node, nums[v].id);
        }
        for (size_t e = 0; e < ELEMENTSOF(extra); e++) {
                (void) hashtable_reserve(&t, t.n + 1);
                hashtable_insert_u64(&t, &extra[e].node, extra[e].id);
        }
        is_int(bad, 0, "u64: %u sequential ids inserted", N);
        is_int(hashtable_size(&t), N + 3, "u64: size");
        max = longest_chain(&t);
        ok(max <= 3, "u64: sequential ids spread evenly (longest chain %zu)", max);
        for (unsigned v = 0; v < N; v++) {
                n = hashtable_find_u64(&t, v + 1);
                if (!n || container_of(n, Num, node)->id != v + 1)
                        bad++;
        }
        is_int(bad, 0, "u64: every id found");
        ok(hashtable_find_u64(&t, 0) == &extra[0].node && hashtable_find_u64(&t, UINT64_MAX) == &extra[1].node &&
           hashtable_find_u64(&t, UINT64_C(1) << 63) == &extra[2].node, "u64: 0, 2^63 and UINT64_MAX found");
        ok(hashtable_find_u64(&t, N + 1) == NULL && hashtable_find_u64(&t, UINT64_MAX - 1) == NULL,
           "u64: absent ids not found");

        for (unsigned v = 0; v < N; v += 3)
                hashtable_remove(&t, &nums[v].node);
        for (unsigned v = 0; v < N; v++)
                if ((hashtable_find_u64(&t, v + 1) != NULL) != (v % 3 != 0))
                        bad++;
        is_int(bad, 0, "u64: removed ids gone, the others found");

        while (hashtable_iterate(&t, &i, &n)) {
                container_of(n, Num, node)->seen++;
                count++;
        }
        is_int(count, hashtable_size(&t), "u64: iteration sees size elements");
        for (unsigned v = 0; v < N; v++)
                if (nums[v].seen != (v % 3 != 0))
                        bad++;
        is_int(bad, 0, "u64: each element seen once");
        hashtable_done(&t);
        free(nums);
}

/* Caller-computed hashes, all equal: one chain, compared by key. */
static void test_hashed(void) {
        HashTable t;
        Num nums[5];
        size_t found = 0;

        hashtable_init(&t);
        (void) hashtable_reserve(&t, ELEMENTSOF(nums));
        for (unsigned v = 0; v < ELEMENTSOF(nums); v++) {
                nums[v] = (Num) { .id = v * 10 };
                hashtable_insert_hashed(&t, &nums[v].node, 7);
        }
        for (HashNode *n = hashtable_chain(&t, 7); n; n = n->next)
                if (n->hash == 7 && container_of(n, Num, node)->id == 20)
                        found++;
        is_int(found, 1, "hashed: found in a shared chain by the caller's key");
        hashtable_remove(&t, &nums[2].node);
        hashtable_remove(&t, &nums[0].node);
        hashtable_remove(&t, &nums[4].node);
        found = 0;
        for (HashNode *n = hashtable_chain(&t, 7); n; n = n->next)
                found += 1 + container_of(n, Num, node)->id;
        is_int(found, 2 + 10 + 30, "hashed: removal from the head, middle and tail of a chain");
        is_int(hashtable_size(&t), 2, "hashed: size");
        hashtable_done(&t);
}

int main(void) {
        test_siphash();
        test_empty();
        test_strings();
        test_keyed();
        test_u64();
        test_hashed();
        return done_testing();
}
