/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A small map from string ids (call and operator ids) to pointers, for the
 * manager's bookkeeping around the ACD: call records in the store, the
 * connection that placed each call in the TCP server. Keys are copied;
 * values are borrowed (the map never frees them).
 *
 * A thin layer over libshared/hashtable.h: keys are hashed with SipHash
 * under a random key chosen in idmap_new(), so that clients choosing ids
 * cannot push every key into one bucket. Lookups, inserts and removals are
 * O(1) on average.
 */

#include <stdbool.h>
#include <stddef.h>

typedef struct IdMap IdMap;

/* Returns 0 or -ENOMEM. */
int idmap_new(IdMap **ret);
/* Frees the map and its keys (not the values). Accepts NULL, returns NULL. */
IdMap *idmap_free(IdMap *m);

size_t idmap_size(const IdMap *m);

/* The value stored under key, or NULL. */
void *idmap_get(const IdMap *m, const char *key);

/* Store value under key, replacing an existing value. Returns 0 or -ENOMEM. */
int idmap_put(IdMap *m, const char *key, void *value);

/* Remove key; returns its value, or NULL when it was absent. */
void *idmap_remove(IdMap *m, const char *key);

/* Remove every entry whose value is value (O(n)). Returns how many. */
size_t idmap_remove_value(IdMap *m, const void *value);

/*
 * Iterate: start with *state = 0; returns false at the end. Do not change
 * the map while iterating (except through idmap_remove_value()).
 */
bool idmap_iterate(const IdMap *m, size_t *state, const char **ret_key, void **ret_value);
