/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The TCP side of routerd (DESIGN.md "TCP wire"): accepts connections on
 * the listening socket and serves the JSON-lines protocol of wire.h on each,
 * without ever blocking the loop.
 *
 *  - Every connection has an input buffer (at most one line of
 *    WIRE_LINE_MAX bytes plus one read) and an output buffer. Requests are
 *    handled as soon as their line is complete, in order, so pipelined
 *    requests get their replies in order.
 *  - Back-pressure: while a connection has more than SERVER_OUTPUT_PAUSE
 *    bytes of replies unsent, its input is not read (the kernel's buffers
 *    and then TCP flow control slow the client down). Notices are queued
 *    regardless; a connection whose unsent output exceeds [router]
 *    output_buffer_max is a reader too slow to keep: it is disconnected,
 *    with a log line naming the peer.
 *  - An over-long line gets a line_too_long error reply at once and the
 *    rest of it is skipped; the connection stays usable.
 *  - Notices (ring timeouts and whatever else no request caused) go to the
 *    connection that placed the call and to every subscribed connection.
 *  - At most [router] max_connections at once; more are accepted and
 *    closed at once, with a rate-limited warning.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemons/routerd/acd.h"

typedef struct Manager Manager;
typedef struct Server Server;

/* Replies held back before a connection's input is paused (at most half
 * of [router] output_buffer_max). */
#define SERVER_OUTPUT_PAUSE (256U * 1024U)

/*
 * Serve on listen_fd (taken over: closed by server_free()). The socket is
 * made non-blocking. Returns 0 or a negative errno.
 */
int server_new(Server **ret, Manager *m, int listen_fd);

/* Close every connection and the listening socket. Accepts NULL. */
Server *server_free(Server *s);

/*
 * After an operation: forget the placer of every call that ended in
 * ev->events[from..n), and when unsolicited (no request caused them), send
 * their lines as notices to each call's placer and to the subscribers.
 */
void server_handle_events(Server *s, const AcdEvents *ev, size_t from, bool unsolicited);

/*
 * Shutdown, first step: accept no new connection (under socket activation
 * they wait in systemd's listening socket for the next instance) but keep
 * serving the accepted ones, so that a request already sent on them is
 * answered rather than reset.
 */
void server_stop_accepting(Server *s);

/* Shutdown, last step (after a grace period): read no more requests;
 * replies already queued are still written. */
void server_stop_reading(Server *s);

/*
 * Hold (or release) the input of every connection: no request is read
 * while held, so clients wait in TCP flow control. Replies and notices are
 * still written. On release, lines already buffered are handled at once.
 * The manager holds input while the bus has a backlog of signals.
 */
void server_hold_input(Server *s, bool hold);

/* Bytes of replies not yet written, over all connections. */
/* The store committed every batch up to committed: write the output that
 * waited for them (see "commit before reply" in server.c). */
void server_release(Server *s, uint64_t committed);

size_t server_pending_output(const Server *s);

size_t server_connection_count(const Server *s);
