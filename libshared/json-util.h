/* SPDX-License-Identifier: MIT */
#pragma once

/* Small helpers on json-c that every codec needs. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cleanup.h"

/*
 * json-c 0.14 (Rocky/RHEL 9) lacks a few 0.15 calls; these stand in.
 */
#if JSON_C_VERSION_NUM < ((0 << 16) | (15 << 8))
static inline size_t json_tokener_parse_end(struct json_tokener *tok) {
        return (size_t) tok->char_offset;
}
#define json_object_new_array_ext(n) json_object_new_array()
#else
#define json_tokener_parse_end(tok) json_tokener_get_parse_end(tok)
#endif

/*
 * The deepest nesting of objects and arrays any of our JSON may have, the
 * outermost container counting as 1: input comes from the network, and
 * json-c recurses when freeing and serializing. The one limit for every
 * reader and checker (json_parse(), eventd's scan_envelope(), and so the
 * archive and callcenterctl events), so that nothing one accepts is
 * refused by another.
 */
#define JSON_DEPTH_MAX 32

/*
 * Parse exactly one JSON value from buf[0..len) (no NUL needed; trailing
 * whitespace allowed, anything else after the value is an error).
 * Returns 0 and a new reference in *ret, or -EBADMSG on bad JSON, -E2BIG
 * when nesting is deeper than JSON_DEPTH_MAX.
 */
int json_parse(const char *buf, size_t len, struct json_object **ret);

/* As json_parse(), but the value must be an object (-EBADMSG otherwise). */
int json_parse_object(const char *buf, size_t len, struct json_object **ret);

/*
 * Field getters. Return 0 and set *ret (a borrowed pointer for strings:
 * valid while obj lives), -ENOENT when the key is absent (or null),
 * -EBADMSG when it has another type. Integers must be integral and in range.
 */
int json_get_string(struct json_object *obj, const char *key, const char **ret);
int json_get_uint64(struct json_object *obj, const char *key, uint64_t *ret);
int json_get_bool(struct json_object *obj, const char *key, bool *ret);

/* The compact serialization (no spaces, "/" not escaped); borrowed from obj. */
const char *json_to_string_compact(struct json_object *obj);
