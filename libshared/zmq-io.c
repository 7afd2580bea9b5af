/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include <zmq.h>

#include "cleanup.h"
#include "log.h"
#include "zmq-io.h"

struct ZmqIo {
        void *socket;
        uint32_t events;
        bool enabled;
        ZmqIoHandler handler;
        void *userdata;

        sd_event_source *io;    /* ZMQ_FD readable */
        sd_event_source *defer; /* "still ready, come back next iteration" */

        /* zmq_io_free() from inside the handler only marks the object; the
         * dispatcher frees it when the handler has returned. */
        bool dispatching;
        bool dead;
};

static void zmq_io_destroy(ZmqIo *io) {
        sd_event_source_disable_unref(io->io);
        sd_event_source_disable_unref(io->defer);
        free(io);
}

ZmqIo *zmq_io_free(ZmqIo *io) {
        if (!io)
                return NULL;
        if (io->dispatching) {
                io->dead = true;
                (void) sd_event_source_set_enabled(io->io, SD_EVENT_OFF);
                (void) sd_event_source_set_enabled(io->defer, SD_EVENT_OFF);
                return NULL;
        }
        zmq_io_destroy(io);
        return NULL;
}

/* ZMQ_EVENTS, or 0 when the socket is gone (context terminated ...). Reading
 * it also processes pending commands, which resets ZMQ_FD. */
static uint32_t zmq_io_poll(ZmqIo *io) {
        int ev = 0;
        size_t sz = sizeof(ev);

        if (zmq_getsockopt(io->socket, ZMQ_EVENTS, &ev, &sz) < 0) {
                log_debug("zmq_getsockopt(ZMQ_EVENTS) failed: %s", zmq_strerror(zmq_errno()));
                return 0;
        }
        return (uint32_t) ev;
}

static void zmq_io_arm(ZmqIo *io, bool again) {
        (void) sd_event_source_set_enabled(io->defer, again && io->enabled ? SD_EVENT_ONESHOT : SD_EVENT_OFF);
}

static int zmq_io_dispatch(ZmqIo *io, bool woke) {
        const uint32_t want = io->events & (ZMQ_POLLIN | ZMQ_POLLOUT);
        uint32_t revents;
        int r;

        if (!io->enabled)
                return 0;

        revents = zmq_io_poll(io) & want;
        if (woke && (io->events & ZMQ_IO_WAKE))
                revents |= ZMQ_IO_WAKE;
        if (revents == 0) {
                /* Nothing to do: the fd is reset (ZMQ_EVENTS processed the
                 * mailbox), so the next state change will wake it. */
                zmq_io_arm(io, false);
                return 0;
        }

        io->dispatching = true;
        r = io->handler(io, io->socket, revents, io->userdata);
        io->dispatching = false;
        if (io->dead) {
                zmq_io_destroy(io);
                return 0;
        }
        if (r < 0)
                log_debug_errno(r, "ZeroMQ socket handler failed, continuing: %m");

        /* The handler's own send/recv calls may have consumed the fd's
         * signal: whatever is ready now must be served from the deferred
         * source, the fd will not tell us. */
        zmq_io_arm(io, zmq_io_poll(io) & (io->events & (ZMQ_POLLIN | ZMQ_POLLOUT)));
        return 0;
}

static int on_fd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        return zmq_io_dispatch(userdata, true);
}

static int on_defer(sd_event_source *s, void *userdata) {
        return zmq_io_dispatch(userdata, false);
}

int zmq_io_new(ZmqIo **ret, sd_event *e, void *socket, uint32_t events, ZmqIoHandler handler,
               void *userdata) {
        ZmqIo *io;
        int fd = -1, r;
        size_t sz = sizeof(fd);

        if (!ret || !e || !socket || !handler)
                return -EINVAL;

        if (zmq_getsockopt(socket, ZMQ_FD, &fd, &sz) < 0 || fd < 0)
                return log_debug_errno(EIO, "zmq_getsockopt(ZMQ_FD) failed: %s", zmq_strerror(zmq_errno()));

        io = calloc(1, sizeof(*io));
        if (!io)
                return -ENOMEM;
        io->socket = socket;
        io->events = events;
        io->enabled = true;
        io->handler = handler;
        io->userdata = userdata;

        /* Level-triggered is right here: once ZMQ_EVENTS has been read the
         * fd is no longer readable, so there is no busy loop. */
        r = sd_event_add_io(e, &io->io, fd, EPOLLIN, on_fd, io);
        if (r < 0)
                goto fail;
        r = sd_event_add_defer(e, &io->defer, on_defer, io);
        if (r < 0)
                goto fail;

        /* Messages may be waiting already (and their signal consumed by the
         * setsockopt/connect calls the owner made): look once. */
        zmq_io_arm(io, true);

        *ret = io;
        return 0;

fail:
        zmq_io_destroy(io);
        return r;
}

void zmq_io_set_events(ZmqIo *io, uint32_t events) {
        if (!io || io->events == events)
                return;
        io->events = events;
        zmq_io_arm(io, true);
}

uint32_t zmq_io_get_events(const ZmqIo *io) {
        return io ? io->events : 0;
}

void zmq_io_kick(ZmqIo *io) {
        if (io && !io->dead)
                zmq_io_arm(io, true);
}

int zmq_io_set_enabled(ZmqIo *io, bool enabled) {
        int r;

        if (!io)
                return -EINVAL;
        io->enabled = enabled;
        r = sd_event_source_set_enabled(io->io, enabled ? SD_EVENT_ON : SD_EVENT_OFF);
        if (r < 0)
                return r;
        zmq_io_arm(io, enabled);
        return 0;
}

int zmq_io_set_priority(ZmqIo *io, int64_t priority) {
        int r;

        if (!io)
                return -EINVAL;
        r = sd_event_source_set_priority(io->io, priority);
        if (r < 0)
                return r;
        return sd_event_source_set_priority(io->defer, priority);
}

void zmq_io_set_description(ZmqIo *io, const char *description) {
        if (!io)
                return;
        (void) sd_event_source_set_description(io->io, description);
        (void) sd_event_source_set_description(io->defer, description);
}
