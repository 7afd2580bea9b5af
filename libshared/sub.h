/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The event subscriber: a SUB socket on the hub's XPUB endpoint, driven by
 * sd-event. ZMQ_FD is edge-triggered, so every wake-up drains the socket
 * until ZMQ_EVENTS has no POLLIN left (in bounded slices, so one busy socket
 * cannot starve the rest of the loop).
 */

#include <stddef.h>

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
 * = everything). Returns 0, -EINVAL (bad endpoint), -ENOMEM, -EIO.
 */
int event_subscriber_new(EventSubscriber **ret, sd_event *e, void *zctx, const char *endpoint,
                         char *const *topics, EventHandler handler, void *userdata);
EventSubscriber *event_subscriber_free(EventSubscriber *s);
