/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * UTF-8 validation by RFC 3629: overlong forms, UTF-16 surrogates
 * (U+D800-DFFF) and values past U+10FFFF are invalid, as PostgreSQL's UTF8
 * encoding has them. Pure.
 */

#include <stdbool.h>
#include <stddef.h>

/* Length (1-4) of the valid sequence at s, n > 0 bytes left; 0 when the
 * bytes there are not one. */
size_t utf8_sequence_len(const unsigned char *s, size_t n);

/* True when s[0..n) is valid UTF-8. With allow_nul false a NUL byte makes it
 * invalid (it crosses neither D-Bus nor libpq). */
bool utf8_is_valid(const char *s, size_t n, bool allow_nul);
