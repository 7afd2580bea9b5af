/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The event subscriber: a SUB socket on the hub's XPUB endpoint, driven by
 * sd-event. ZMQ_FD is edge-triggered, so every wake-up drains the socket
 * until ZMQ_EVENTS has no POLLIN left (in bounded slices, so one busy socket
 * cannot starve the rest of the loop).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

typedef struct EventSubscriber EventSubscriber;

/*
 * One event: topic and body as received (not NUL-terminated, borrowed for the
 * call). A negative return is logged and the subscriber goes on.
 */
typedef int (*EventHandler)(EventSubscriber *s, const char *topic, size_t topic_len,
                            const char *body, size_t body_len, void *userdata);

/*
 * Connect to endpoint and subscribe to every prefix in topics (NULL or empty
 * = everything), with ZMQ_RCVHWM EVENT_SUBSCRIBER_DEFAULT_HWM. Returns 0,
 * -EINVAL (bad endpoint), -ENOMEM, -EIO.
 */
int event_subscriber_new(EventSubscriber **ret, sd_event *e, void *zctx, const char *endpoint,
                         char *const *topics, EventHandler handler, void *userdata);

typedef struct EventSubscriberOptions {
        unsigned hwm;           /* ZMQ_RCVHWM; 0 = EVENT_SUBSCRIBER_DEFAULT_HWM */
        bool bind;              /* bind endpoint instead of connecting to it: publishers
                                 * then connect straight to this subscriber (no hub) */
} EventSubscriberOptions;

#define EVENT_SUBSCRIBER_DEFAULT_HWM 100000u

/*
 * As event_subscriber_new(), with options (NULL = defaults). With bind,
 * beware that ZeroMQ replaces an existing ipc:// socket file; a TCP port in
 * use gives -EADDRINUSE.
 */
int event_subscriber_new_full(EventSubscriber **ret, sd_event *e, void *zctx, const char *endpoint,
                              char *const *topics, const EventSubscriberOptions *options,
                              EventHandler handler, void *userdata);

/* Frees the subscriber (closing its socket). Safe from inside the handler.
 * Accepts NULL, returns NULL. */
EventSubscriber *event_subscriber_free(EventSubscriber *s);

/* Events handed to the handler, and messages thrown away as malformed (not
 * two frames). */
typedef struct EventSubscriberStats {
        uint64_t received;
        uint64_t malformed;
} EventSubscriberStats;
void event_subscriber_get_stats(const EventSubscriber *s, EventSubscriberStats *ret);
