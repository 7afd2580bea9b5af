/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * An intrusive chained hash table: the element embeds a HashNode, the table
 * allocates only its bucket array, and an element is found, inserted and
 * removed in O(1) on average without any allocation but the occasional
 * bucket array. Pure (no I/O, no logging), so the state machines use it too.
 *
 * Three flavours share the one table type:
 *
 *  - string keys: the key is a NUL-terminated char array at a fixed offset
 *    from the node in the same element (typically a flexible array member;
 *    HASHTABLE_KEY_OFFSET() computes the offset). The hash is SipHash-2-4
 *    under a 128-bit key, so that a client who chooses ids (call ids, operator
 *    ids) but not the key cannot pile them into one bucket;
 *  - uint64_t keys: Fibonacci hashing (one multiplication), which is
 *    unkeyed: use it for ids the process assigns itself (sequential ids
 *    spread perfectly), not for numbers an outsider picks;
 *  - caller-hashed: the caller computes a 64-bit hash, inserts with
 *    hashtable_insert_hashed() and looks up by walking hashtable_chain(),
 *    comparing HashNode.hash and then its own key.
 *
 * Buckets are picked by the top bits of the hash; the load factor stays at
 * most 1 when every insertion is preceded by hashtable_reserve(t, n + 1),
 * which is also the only step that can fail: reserve first, change your own
 * structures, then insert. The table never shrinks.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef container_of
#define container_of(ptr, type, member) ((type *) ((char *) (ptr) - offsetof(type, member)))
#endif

typedef struct HashNode {
        struct HashNode *next;
        uint64_t hash;          /* the full hash; for uint64_t keys it identifies the key */
} HashNode;

typedef struct HashTable {
        HashNode **buckets;
        size_t n_buckets;       /* 0 or a power of two */
        size_t n;
        unsigned shift;         /* 64 - log2(n_buckets) */
        ptrdiff_t key_offset;   /* string tables: key address minus node address */
        uint64_t key[2];        /* string tables: the SipHash key */
} HashTable;

/* The key_offset of a string table whose elements are of type type, with
 * the node in member node_member and the key in char array key_member. */
#define HASHTABLE_KEY_OFFSET(type, node_member, key_member) \
        ((ptrdiff_t) offsetof(type, key_member) - (ptrdiff_t) offsetof(type, node_member))

/* SipHash-2-4 (Aumasson, Bernstein) of data[0..len) under key. */
uint64_t siphash24(const void *data, size_t len, const uint64_t key[2]);

/*
 * Fill ret with a random SipHash key (getrandom(); when the kernel has no
 * entropy yet, something unpredictable enough from addresses and the clock).
 * Not pure: pure callers take the key as an argument from their owner.
 */
void hashtable_random_key(uint64_t ret[2]);

/* An empty table with string keys at key_offset, hashed under key (copied;
 * NULL: a random key from hashtable_random_key()). No allocation: the first
 * hashtable_reserve() allocates. */
void hashtable_init_string(HashTable *t, ptrdiff_t key_offset, const uint64_t key[2]);
/* An empty table for uint64_t keys or caller-computed hashes. */
void hashtable_init(HashTable *t);
/* Free the bucket array (not the elements) and leave an empty table with the
 * same key and key offset. */
void hashtable_done(HashTable *t);

/* Make room for n elements at load factor <= 1. Returns 0 or -ENOMEM
 * (nothing changed then). Rehashing reuses the stored hashes. */
int hashtable_reserve(HashTable *t, size_t n);

static inline size_t hashtable_size(const HashTable *t) {
        return t->n;
}

/* A string table's key of node. */
static inline const char *hashtable_node_key(const HashTable *t, const HashNode *node) {
        return (const char *) node + t->key_offset;
}

/* ---- string keys ---- */

/* The hash of key in string table t. */
uint64_t hashtable_hash_string(const HashTable *t, const char *key);
/* Insert node, whose key is in place already, under that key. The table must
 * have buckets (hashtable_reserve()); keys must be unique (check with
 * hashtable_find_string() first) and stay unchanged while node is in. */
void hashtable_insert_string(HashTable *t, HashNode *node);
/* The node whose key is key, or NULL (also for key NULL). */
HashNode *hashtable_find_string(const HashTable *t, const char *key);
/* The same with the hash already computed (hashtable_hash_string()), for
 * a lookup followed by hashtable_insert_hashed() under the same hash. */
HashNode *hashtable_find_string_hashed(const HashTable *t, const char *key, uint64_t hash);

/* ---- uint64_t keys ---- */

/* The hash of a uint64_t key: a bijection, so equal hashes mean equal keys
 * and a node's hash is all that needs comparing. */
static inline uint64_t hashtable_hash_u64(uint64_t key) {
        return key * UINT64_C(0x9e3779b97f4a7c15);
}
/* Insert node under key (unique, see hashtable_insert_string()). */
void hashtable_insert_u64(HashTable *t, HashNode *node, uint64_t key);
/* The node inserted under key, or NULL. */
HashNode *hashtable_find_u64(const HashTable *t, uint64_t key);

/* ---- any flavour ---- */

/* Insert node under a hash computed by the caller (the table must have
 * buckets). Other nodes may share the hash: lookups compare keys. */
void hashtable_insert_hashed(HashTable *t, HashNode *node, uint64_t hash);
/* The first node of the chain where nodes with this hash are, or NULL.
 * Follow ->next; nodes with other hashes share chains. */
HashNode *hashtable_chain(const HashTable *t, uint64_t hash);
/* Unlink node, which must be in t. O(length of its chain). */
void hashtable_remove(HashTable *t, HashNode *node);

/*
 * Iteration, in no particular order:
 *
 *         HashIter i = HASH_ITER_INIT;
 *         HashNode *node;
 *         while (hashtable_iterate(t, &i, &node))
 *                 ...
 *
 * The node just returned may be removed (and freed); any other change to
 * the table (insertion, reserve, removal of another node) invalidates the
 * iterator.
 */
typedef struct HashIter {
        size_t bucket;          /* the next bucket to start */
        HashNode *next;         /* the next node in the current chain */
} HashIter;
#define HASH_ITER_INIT ((HashIter) {})

/* Store the next node in *ret and return true, or return false at the end. */
bool hashtable_iterate(const HashTable *t, HashIter *i, HashNode **ret);
