/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A ZeroMQ socket on an sd-event loop.
 *
 * ZeroMQ sockets are not file descriptors. ZMQ_FD is a signalling fd that
 * becomes readable when the socket's command mailbox has work; only
 * ZMQ_EVENTS tells whether a message can be read or written, and reading
 * ZMQ_EVENTS (or calling zmq_send/zmq_recv) consumes that signal. So the fd
 * behaves as edge-triggered: after every wake-up the owner must work until
 * ZMQ_EVENTS no longer shows what it wants, or it may never wake again.
 *
 * ZmqIo does that bookkeeping. On every wake-up of ZMQ_FD it reads
 * ZMQ_EVENTS and, when the socket is ready for what the owner asked
 * (ZMQ_POLLIN and/or ZMQ_POLLOUT), calls the handler once. The handler does
 * a bounded slice of work (say 256 messages) and returns. If the socket is
 * still ready afterwards, a deferred source brings the handler back on the
 * next loop iteration, after the other sources had their turn, so one busy
 * socket cannot starve the loop.
 *
 * Whoever calls zmq_send()/zmq_recv() on the socket outside the handler
 * must call zmq_io_kick() afterwards: the call may have swallowed the
 * signal the loop was waiting for.
 */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

typedef struct ZmqIo ZmqIo;

/*
 * Pseudo-event for zmq_io_set_events(): also call the handler on every
 * wake-up of ZMQ_FD, ready or not. For an XPUB socket with ZMQ_XPUB_NODROP,
 * ZMQ_POLLOUT is always set even when the high-water mark refuses messages,
 * so a blocked sender cannot poll for room; it asks for ZMQ_IO_WAKE
 * instead, and retries when the peer's "read some" command wakes the fd.
 * ZMQ_IO_WAKE alone never re-arms the deferred source.
 */
#define ZMQ_IO_WAKE 0x100u

/*
 * revents: the subset of the requested ZMQ_POLLIN / ZMQ_POLLOUT that
 * ZMQ_EVENTS shows, plus ZMQ_IO_WAKE when requested and the fd woke up.
 * A negative return is logged (debug) and otherwise ignored.
 */
typedef int (*ZmqIoHandler)(ZmqIo *io, void *socket, uint32_t revents, void *userdata);

/*
 * Watch socket (not owned; it must outlive the ZmqIo) on loop e for events
 * (a mask of ZMQ_POLLIN, ZMQ_POLLOUT, ZMQ_IO_WAKE). Checks the socket once
 * right away (on the first loop iteration), since messages may already be
 * waiting. Returns 0, -ENOMEM, -EIO (ZMQ_FD unavailable), or an sd-event
 * error.
 */
int zmq_io_new(ZmqIo **ret, sd_event *e, void *socket, uint32_t events, ZmqIoHandler handler,
               void *userdata);

/* Stop watching (the socket is left alone). Safe from inside the handler.
 * Accepts NULL, returns NULL. */
ZmqIo *zmq_io_free(ZmqIo *io);

/* Change the event mask; re-checks the socket on the next iteration. */
void zmq_io_set_events(ZmqIo *io, uint32_t events);
uint32_t zmq_io_get_events(const ZmqIo *io);

/*
 * Re-check the socket on the next loop iteration. Call after any
 * zmq_send()/zmq_recv() made outside the handler. Cheap: it only enables a
 * deferred source.
 */
void zmq_io_kick(ZmqIo *io);

/* Pause (false) or resume (true) the handler, e.g. stop reading at SIGTERM. */
int zmq_io_set_enabled(ZmqIo *io, bool enabled);

/* sd-event priority of both underlying sources (default 0). */
int zmq_io_set_priority(ZmqIo *io, int64_t priority);

/* Name the sources, for sd-event's debug logging. */
void zmq_io_set_description(ZmqIo *io, const char *description);
