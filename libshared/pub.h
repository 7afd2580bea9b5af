/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The event publisher (DESIGN.md "Events"): connects to the hub's XSUB
 * endpoint and sends each event as two frames, topic and envelope.
 *
 * It never blocks the loop. Events are sent with ZMQ_DONTWAIT; while the hub
 * is absent, has not yet subscribed, or is slow (high-water mark reached),
 * events wait in a bounded local queue (EventsConfig.buffer) and go out in
 * order when the hub can take them. Past the bound, the oldest is kept and
 * the new event is dropped: drops are counted and logged (rate-limited).
 * seq counts every event emitted since the publisher was created, dropped or
 * not, so subscribers see a gap where one was lost.
 */

#include <stdint.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "conf.h"

typedef struct EventPublisher EventPublisher;

/*
 * Create a publisher for source ("router", "tasks" ...) on loop e, using the
 * ZeroMQ context zctx (not owned) and config->publish / buffer / hwm.
 * The host field is gethostname(). Returns 0, -EINVAL, -ENOMEM, -EIO.
 */
int event_publisher_new(EventPublisher **ret, sd_event *e, void *zctx,
                        const EventsConfig *config, const char *source);

/* Frees the publisher; events still queued are counted as dropped and logged. */
EventPublisher *event_publisher_free(EventPublisher *p);

/*
 * Emit an event of type "<entity>.<verb>" with data (an object, or NULL for
 * {}; not consumed). Returns the event's seq (>= 1), or -ENOBUFS when it was
 * dropped, -EINVAL for a bad type.
 */
int64_t event_publisher_emit(EventPublisher *p, const char *type, struct json_object *data);

/*
 * Try to hand every queued event to ZeroMQ within timeout (at SIGTERM).
 * Runs its own short poll; returns 0 or -ETIMEDOUT. On success, what is
 * left of timeout (at least 1 s) becomes the socket's ZMQ_LINGER, so that
 * zmq_ctx_term() after event_publisher_free() gives ZeroMQ that long to
 * deliver the events it holds (up to [events] hwm of them for a slow hub).
 * Without a flush the linger is 1 s.
 */
int event_publisher_flush(EventPublisher *p, usec_t timeout);

typedef struct EventPublisherStats {
        uint64_t emitted;
        uint64_t sent;
        uint64_t queued;
        uint64_t dropped;
        int connected;              /* the hub has subscribed to us */
} EventPublisherStats;
void event_publisher_get_stats(const EventPublisher *p, EventPublisherStats *ret);
