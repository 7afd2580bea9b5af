/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The hub's account of its subscribers' subscriptions, per connection, so
 * that one client cannot make it hold unbounded memory (libzmq keeps every
 * subscription prefix in a trie, a node per byte: 20,000 prefixes of 1 KB
 * cost ~600 MB). The XPUB socket runs in manual mode: every (un)subscription
 * reaches the manager, which asks here and applies only what is accepted.
 *
 * libzmq itself also keeps, per connection, every subscription it hands
 * over in manual mode (to unsubscribe when the connection ends), whether
 * applied or not; only ending the connection frees that. So a connection
 * that breaks a rule is ended (the manager shuts its socket down), and
 * XPUB's ZMQ_MAXMSGSIZE refuses a subscription frame longer than
 * SUBS_PREFIX_MAX + 1 before it is read.
 *
 * Rules, per connection (keyed by its file descriptor):
 *   - a prefix is at most SUBS_PREFIX_MAX bytes (no topic is longer, see
 *     ENVELOPE_TOPIC_MAX, so a longer prefix could never match);
 *   - at most SUBS_PER_CONNECTION_MAX distinct prefixes at a time;
 *   - subscribing to a prefix held already changes nothing; unsubscribing
 *     from one not held (refused, or never sent) changes nothing.
 * Pure: no I/O; memory bounded by the rules times the connections.
 */

#include <stdbool.h>
#include <stddef.h>

#include "envelope.h"

#define SUBS_PREFIX_MAX (ENVELOPE_TOPIC_MAX - 1)
#define SUBS_PER_CONNECTION_MAX 256

typedef struct Subs Subs;

typedef enum SubsResult {
        SUBS_ADDED,             /* apply it (ZMQ_SUBSCRIBE) */
        SUBS_HELD,              /* held already: nothing to do */
        SUBS_REMOVED,           /* apply it (ZMQ_UNSUBSCRIBE) */
        SUBS_NOT_HELD,          /* nothing to do */
        SUBS_TOO_LONG,          /* refused: prefix longer than SUBS_PREFIX_MAX */
        SUBS_TOO_MANY,          /* refused: SUBS_PER_CONNECTION_MAX reached */
        SUBS_ENDED,             /* refused: the connection was ended (subs_end()) */
        _SUBS_RESULT_MAX,
        _SUBS_RESULT_INVALID = -22,
} SubsResult;

/* Returns NULL on out of memory. subs_free() accepts NULL, returns NULL. */
Subs *subs_new(void);
Subs *subs_free(Subs *s);

/*
 * Connection fd (>= -1; -1 for a peer whose descriptor is unknown, all such
 * peers sharing one account) subscribes to / unsubscribes from
 * prefix[0..len). Returns a SubsResult, or -ENOMEM (nothing changed).
 */
int subs_add(Subs *s, int fd, const void *prefix, size_t len);
int subs_remove(Subs *s, int fd, const void *prefix, size_t len);

/* Connection fd is new (connected true: its account starts empty and
 * subs_is_connected() says true) or gone (false: forgotten). Returns 0 or
 * -ENOMEM. */
int subs_set_connected(Subs *s, int fd, bool connected);
void subs_forget(Subs *s, int fd);
/* The manager ends connection fd: forget its prefixes and refuse whatever
 * more it sent (still on its way) until a new connection gets fd. */
void subs_end(Subs *s, int fd);
/* Whether fd is a live connection of the socket (seen connect, not gone):
 * only then may the manager shut it down. */
bool subs_is_connected(const Subs *s, int fd);

/* Prefixes held by connection fd; connections with any. */
size_t subs_count(const Subs *s, int fd);
size_t subs_connections(const Subs *s);
