/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Quoting strings that a client chose (call and operator ids, queue names,
 * object paths, topics) for human messages: D-Bus error messages, TCP wire
 * error lines and log records. Such a string may be a megabyte long or hold
 * ESC and other control bytes; echoed raw it makes the message as long as
 * the request and lets a client write terminal escape sequences into an
 * operator's terminal or journal. Pure, no allocation.
 */

#include <stddef.h>

/*
 * Bytes enough for any id of up to 64 bytes that needs no escaping, or the
 * start of a longer or escaped one: the size callers use for ids.
 */
#define ESCAPE_ID_SIZE 80

/*
 * Write s[0..len) into buf (size bytes, NUL included) escaped the way
 * systemd's cescape() does it: backslash, double quote and the C escapes
 * \a \b \f \n \r \t \v as such, every other byte below 0x20 or from 0x7f
 * up (including NUL) as \xNN; printable ASCII as it is. When the result
 * does not fit, it is cut after a whole escape sequence and ends in "..."
 * (like systemd's cellescape()), so it always fits in size bytes. The
 * result is printable ASCII, hence valid UTF-8 for D-Bus and JSON. s may be
 * NULL when len is 0. Returns buf; with size 0 writes nothing.
 */
char *escape_cut_len(char *buf, size_t size, const char *s, size_t len);

/* escape_cut_len() of a NUL-terminated s (NULL writes ""). */
char *escape_cut(char *buf, size_t size, const char *s);
