/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "cleanup.h"
#include "log.h"
#include "sub.h"
#include "zmq-io.h"

/* Messages handled per loop iteration before others get their turn. */
#define SUB_SLICE 256

struct EventSubscriber {
        void *socket;
        ZmqIo *io;
        EventHandler handler;
        void *userdata;
        EventSubscriberStats stats;

        /* The handler may free us; the drain loop must then stop touching
         * the object and free it itself. */
        bool dispatching;
        bool dead;
};

static void sub_destroy(EventSubscriber *s) {
        zmq_io_free(s->io);
        if (s->socket) {
                int linger = 0;

                (void) zmq_setsockopt(s->socket, ZMQ_LINGER, &linger, sizeof(linger));
                (void) zmq_close(s->socket);
        }
        free(s);
}

EventSubscriber *event_subscriber_free(EventSubscriber *s) {
        if (!s)
                return NULL;
        if (s->dispatching)
                s->dead = true;
        else
                sub_destroy(s);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(EventSubscriber *, event_subscriber_free);

/* Skip the rest of a message that has more frames than ours. */
static void sub_skip_frames(EventSubscriber *s, zmq_msg_t *m) {
        while (zmq_msg_more(m))
                if (zmq_msg_recv(m, s->socket, ZMQ_DONTWAIT) < 0)
                        break;
}

static int on_socket(ZmqIo *io, void *socket, uint32_t revents, void *userdata) {
        EventSubscriber *s = userdata;
        zmq_msg_t topic, body;
        int r = 0;

        zmq_msg_init(&topic);
        zmq_msg_init(&body);

        s->dispatching = true;
        for (unsigned i = 0; i < SUB_SLICE && !s->dead; i++) {
                if (zmq_msg_recv(&topic, socket, ZMQ_DONTWAIT) < 0) {
                        if (zmq_errno() != EAGAIN)
                                r = -EIO;
                        break;
                }
                /* ZeroMQ delivers the frames of a message atomically: once
                 * the first is here, the rest is too. */
                if (!zmq_msg_more(&topic)) {
                        s->stats.malformed++;
                        log_debug("Event subscriber: dropped a one-frame message.");
                        continue;
                }
                if (zmq_msg_recv(&body, socket, ZMQ_DONTWAIT) < 0) {
                        r = -EIO;
                        break;
                }
                if (zmq_msg_more(&body)) {
                        sub_skip_frames(s, &body);
                        s->stats.malformed++;
                        log_debug("Event subscriber: dropped a message of more than two frames.");
                        continue;
                }

                s->stats.received++;
                r = s->handler(s, zmq_msg_data(&topic), zmq_msg_size(&topic), zmq_msg_data(&body),
                               zmq_msg_size(&body), s->userdata);
                if (r < 0)
                        log_debug_errno(r, "Event handler failed, continuing: %m");
                r = 0;
        }
        s->dispatching = false;

        zmq_msg_close(&topic);
        zmq_msg_close(&body);

        if (s->dead)
                sub_destroy(s);
        return r;
}

int event_subscriber_new_full(EventSubscriber **ret, sd_event *e, void *zctx, const char *endpoint,
                              char *const *topics, const EventSubscriberOptions *options,
                              EventHandler handler, void *userdata) {
        _cleanup_(event_subscriber_freep) EventSubscriber *s = NULL;
        unsigned hwm_u = options && options->hwm ? options->hwm : EVENT_SUBSCRIBER_DEFAULT_HWM;
        int hwm = hwm_u > INT_MAX ? INT_MAX : (int) hwm_u;
        int r;

        if (!ret || !e || !zctx || !endpoint || !*endpoint || !handler)
                return -EINVAL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->handler = handler;
        s->userdata = userdata;

        s->socket = zmq_socket(zctx, ZMQ_SUB);
        if (!s->socket)
                return log_debug_errno(EIO, "zmq_socket(SUB) failed: %s", zmq_strerror(zmq_errno()));
        if (zmq_setsockopt(s->socket, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0)
                return log_debug_errno(EIO, "Setting ZMQ_RCVHWM failed: %s", zmq_strerror(zmq_errno()));

        if (!topics || !topics[0]) {
                if (zmq_setsockopt(s->socket, ZMQ_SUBSCRIBE, "", 0) < 0)
                        return -EIO;
        } else
                for (char *const *t = topics; *t; t++)
                        if (zmq_setsockopt(s->socket, ZMQ_SUBSCRIBE, *t, strlen(*t)) < 0)
                                return -EIO;

        if (options && options->bind)
                r = zmq_bind(s->socket, endpoint);
        else
                r = zmq_connect(s->socket, endpoint);
        if (r < 0) {
                r = zmq_errno();
                return log_debug_errno(r == EADDRINUSE ? EADDRINUSE
                                       : r == EINVAL || r == EPROTONOSUPPORT || r == ENOENT || r == ENODEV
                                               ? EINVAL
                                               : EIO,
                                       "Cannot %s event subscriber on %s: %s",
                                       options && options->bind ? "bind" : "connect", endpoint,
                                       zmq_strerror(r));
        }

        r = zmq_io_new(&s->io, e, s->socket, ZMQ_POLLIN, on_socket, s);
        if (r < 0)
                return r;
        zmq_io_set_description(s->io, "event-subscriber");

        *ret = TAKE_PTR(s);
        return 0;
}

int event_subscriber_new(EventSubscriber **ret, sd_event *e, void *zctx, const char *endpoint,
                         char *const *topics, EventHandler handler, void *userdata) {
        return event_subscriber_new_full(ret, e, zctx, endpoint, topics, NULL, handler, userdata);
}

void event_subscriber_get_stats(const EventSubscriber *s, EventSubscriberStats *ret) {
        if (s && ret)
                *ret = s->stats;
}
