/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <zmq.h>

#include "archive.h"
#include "cleanup.h"
#include "daemon.h"
#include "escape.h"
#include "log.h"
#include "manager.h"
#include "scan.h"
#include "subs.h"
#include "zmq-io.h"

/* Messages forwarded per loop iteration; then the archive and the database
 * link get their turn. */
#define MANAGER_SLICE 512
/* At SIGTERM, events in flight are taken until none came for MANAGER_QUIET,
 * for at most MANAGER_FINAL_DRAIN. */
#define MANAGER_QUIET (100 * USEC_PER_MSEC)
#define MANAGER_FINAL_DRAIN (2 * USEC_PER_SEC)

static void manager_note_invalid(Manager *m, const void *topic, size_t topic_len, const char *reason) {
        char shown[65];
        size_t n = 0;

        m->stats.invalid++;
        m->invalid_unreported++;
        if (!ratelimit_below(&m->invalid_limit))
                return;

        /* The topic is whatever a stranger sent: show a printable prefix. */
        for (size_t i = 0; i < topic_len && n < sizeof(shown) - 1; i++) {
                unsigned char c = ((const unsigned char *) topic)[i];
                shown[n++] = c >= 0x20 && c < 0x7f ? (char) c : '?';
        }
        shown[n] = '\0';
        log_struct(LOG_WARNING, 0, LOG_FIELDS("MESSAGE_ID=6c1e0c4bd0a84c6fa7d3d6b5f0e2a901"),
                   "Dropped invalid event (topic \"%s\"): %s; %" PRIu64 " invalid message(s) since the last report, %" PRIu64 " in total.",
                   shown, reason, m->invalid_unreported, m->stats.invalid);
        m->invalid_unreported = 0;
}

/*
 * Forward up to limit messages from XSUB to XPUB. Returns how many messages
 * were read (less than limit: XSUB is empty).
 */
static unsigned manager_forward(Manager *m, unsigned limit) {
        zmq_msg_t topic, body;
        unsigned n = 0;

        zmq_msg_init(&topic);
        zmq_msg_init(&body);
        for (; n < limit; n++) {
                ScanEnvelope e;
                const char *reason = NULL;

                if (zmq_msg_recv(&topic, m->xsub, ZMQ_DONTWAIT) < 0)
                        break;
                m->stats.received++;

                /* Frames of one message arrive together: when the first
                 * is here, so is the rest. */
                if (!zmq_msg_more(&topic)) {
                        manager_note_invalid(m, zmq_msg_data(&topic), zmq_msg_size(&topic),
                                             "one frame instead of topic and envelope");
                        continue;
                }
                if (zmq_msg_recv(&body, m->xsub, ZMQ_DONTWAIT) < 0)
                        break;
                if (zmq_msg_more(&body)) {
                        while (zmq_msg_more(&body) && zmq_msg_recv(&body, m->xsub, ZMQ_DONTWAIT) >= 0)
                                ;
                        manager_note_invalid(m, zmq_msg_data(&topic), zmq_msg_size(&topic),
                                             "more than two frames");
                        continue;
                }

                if (scan_envelope(zmq_msg_data(&topic), zmq_msg_size(&topic), zmq_msg_data(&body),
                                  zmq_msg_size(&body), &e, &reason) < 0) {
                        manager_note_invalid(m, zmq_msg_data(&topic), zmq_msg_size(&topic), reason);
                        continue;
                }

                if (m->archive)
                        archive_add(m->archive, zmq_msg_data(&topic), zmq_msg_size(&topic), &e,
                                    zmq_msg_data(&body), zmq_msg_size(&body));

                /* zmq_msg_send() takes the messages over (no copy) and
                 * leaves them empty for the next recv. XPUB never blocks:
                 * a subscriber past its high-water mark loses the event. */
                if (zmq_msg_send(&topic, m->xpub, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
                    zmq_msg_send(&body, m->xpub, ZMQ_DONTWAIT) < 0) {
                        log_debug("Forwarding to subscribers failed: %s", zmq_strerror(zmq_errno()));
                        continue;
                }
                m->stats.forwarded++;
        }
        zmq_msg_close(&topic);
        zmq_msg_close(&body);

        /* Our sends on XPUB may have eaten its fd signal. */
        if (n > 0)
                zmq_io_kick(m->xpub_io);
        return n;
}

static int on_xsub(ZmqIo *io, void *socket, uint32_t revents, void *userdata) {
        (void) manager_forward(userdata, MANAGER_SLICE);
        return 0;
}

/*
 * XPUB's connection events: a connection that ends, or a new one that got
 * a number in use before, starts with no subscriptions. The monitor sends
 * ACCEPTED before the connection's first message reaches XPUB, and
 * on_xpub() reads the monitor first, so an account never carries over.
 */
static int on_monitor(ZmqIo *io, void *socket, uint32_t revents, void *userdata) {
        Manager *m = userdata;

        for (unsigned i = 0; i < MANAGER_SLICE; i++) {
                uint8_t ev[6];
                char addr[256];
                uint16_t event;
                uint32_t value;
                int n;

                n = zmq_recv(socket, ev, sizeof(ev), ZMQ_DONTWAIT);
                if (n < 0)
                        break;
                /* The second frame (the endpoint) is not needed. */
                (void) zmq_recv(socket, addr, sizeof(addr), ZMQ_DONTWAIT);
                if (n != (int) sizeof(ev))
                        continue;
                memcpy(&event, ev, sizeof(event));
                memcpy(&value, ev + 2, sizeof(value));
                if (event == ZMQ_EVENT_ACCEPTED || event == ZMQ_EVENT_DISCONNECTED)
                        (void) subs_set_connected(m->subs, (int) value, event == ZMQ_EVENT_ACCEPTED);
        }
        return 0;
}

/*
 * Refuse a subscription and end its connection: libzmq keeps every
 * subscription it hands over in manual mode until the connection ends
 * (subs.h), so only that bounds a client that keeps sending. shutdown()
 * (not close(): the fd is libzmq's) makes libzmq see the peer go, drop
 * what it kept and close the fd; the monitor then tells us. Only a
 * connection the monitor showed us, so never a reused descriptor.
 */
static void manager_refuse(Manager *m, int fd, size_t len, const char *why) {
        bool ended = false;

        if (fd >= 0 && subs_is_connected(m->subs, fd)) {
                ended = shutdown(fd, SHUT_RDWR) >= 0;
                /* What it sent before the end still comes: refused too. */
                subs_end(m->subs, fd);
        }
        m->stats.subscriptions_refused++;
        m->refused_unreported++;
        m->trim_ticks = 3;
        if (!ratelimit_below(&m->refused_limit))
                return;
        log_struct(LOG_WARNING, 0, LOG_FIELDS("MESSAGE_ID=2f0d6f7c9a3e4b51b8c2a4d7e6f10b33"),
                   "Refused a subscription (%zu bytes) of subscriber connection %d: %s%s; %" PRIu64
                   " refused since the last report, %" PRIu64 " in total.",
                   len, fd, why, ended ? ", connection closed" : "", m->refused_unreported,
                   m->stats.subscriptions_refused);
        m->refused_unreported = 0;
}

/*
 * Subscribers' (un)subscriptions. XPUB is in manual mode: one applies only
 * when we pass it back with ZMQ_(UN)SUBSCRIBE, which acts on the connection
 * of the message read last. XSUB already takes everything, so nothing goes
 * upstream (an unsubscription must not: the archive wants every event).
 */
static int on_xpub(ZmqIo *io, void *socket, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        zmq_msg_t msg;

        if (m->monitor)
                (void) on_monitor(m->monitor_io, m->monitor, ZMQ_POLLIN, m);

        zmq_msg_init(&msg);
        for (unsigned i = 0; i < MANAGER_SLICE; i++) {
                const uint8_t *d;
                size_t len;
                int fd, r;

                if (zmq_msg_recv(&msg, socket, ZMQ_DONTWAIT) < 0)
                        break;
                d = zmq_msg_data(&msg);
                len = zmq_msg_size(&msg);
                /* Anything but a (un)subscription is not for us. */
                if (len == 0 || d[0] > 1 || zmq_msg_more(&msg))
                        continue;
                fd = zmq_msg_get(&msg, ZMQ_SRCFD);
                if (fd < -1)
                        fd = -1;

                if (d[0] == 1) {
                        r = subs_add(m->subs, fd, d + 1, len - 1);
                        if (r == SUBS_ADDED &&
                            zmq_setsockopt(socket, ZMQ_SUBSCRIBE, d + 1, len - 1) < 0)
                                log_debug("Cannot apply a subscription: %s", zmq_strerror(zmq_errno()));
                        else if (r == SUBS_TOO_LONG)
                                manager_refuse(m, fd, len - 1, "longer than any topic");
                        else if (r == SUBS_TOO_MANY)
                                manager_refuse(m, fd, len - 1, "too many subscriptions on one connection");
                        else if (r == SUBS_ENDED)
                                manager_refuse(m, fd, len - 1, "connection being closed");
                        else if (r < 0 && r != _SUBS_RESULT_INVALID)
                                manager_refuse(m, fd, len - 1, "out of memory");
                } else {
                        r = subs_remove(m->subs, fd, d + 1, len - 1);
                        if (r == SUBS_REMOVED && zmq_setsockopt(socket, ZMQ_UNSUBSCRIBE, d + 1, len - 1) < 0)
                                log_debug("Cannot apply an unsubscription: %s", zmq_strerror(zmq_errno()));
                }
                /* A topic is whatever bytes a subscriber sent: logged
                 * escaped, never raw. */
                if (log_get_max_level() >= LOG_DEBUG) {
                        char topic[ESCAPE_ID_SIZE];

                        escape_cut_len(topic, sizeof topic, (const char *) d + 1, len - 1);
                        log_debug("Subscriber connection %d %s \"%s\": %d.", fd,
                                  d[0] == 1 ? "subscribed to" : "unsubscribed from", topic, r);
                }
        }
        zmq_msg_close(&msg);
        return 0;
}

void manager_format_status(Manager *m, char *buf, size_t size) {
        usec_t now = now_usec(CLOCK_MONOTONIC);
        uint64_t rate = 0;

        if (m->status_last_time > 0 && now > m->status_last_time)
                rate = (m->stats.received - m->status_last_received) * USEC_PER_SEC /
                       (now - m->status_last_time);
        m->status_last_time = now;
        m->status_last_received = m->stats.received;

        if (m->archive) {
                ArchiveStats a;

                archive_get_stats(m->archive, &a);
                (void) snprintf(buf, size,
                                "%" PRIu64 " events/s, archive lag %" PRIu64 ", spilled %" PRIu64 ", dropped %" PRIu64
                                ", invalid %" PRIu64 ", subscriptions refused %" PRIu64 "%s",
                                rate, a.pending, a.spill_rows, a.dropped + a.failed, m->stats.invalid,
                                m->stats.subscriptions_refused, a.connected ? "" : ", database unreachable");
        } else
                (void) snprintf(buf, size,
                                "%" PRIu64 " events/s, archive off, invalid %" PRIu64 ", subscriptions refused %" PRIu64,
                                rate, m->stats.invalid, m->stats.subscriptions_refused);
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        char status[256];

        manager_format_status(m, status, sizeof(status));
        daemon_notify_status("%s", status);
        archive_report(m->archive);
        if (m->trim_ticks > 0) {
                m->trim_ticks--;
                (void) malloc_trim(0);
        }
        (void) sd_event_source_set_time(s, usec + USEC_PER_SEC);
        return 0;
}

int manager_new(Manager **ret, const EventsConfig *events, const DatabaseConfig *database) {
        Manager *m;
        int r;

        if (!ret || !events || !database)
                return -EINVAL;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->events = *events;
        m->database = *database;
        m->invalid_limit = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 5 };
        m->refused_limit = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 5 };
        m->subs = subs_new();
        if (!m->subs) {
                manager_free(m);
                return -ENOMEM;
        }

        r = sd_event_new(&m->event);
        if (r < 0) {
                manager_free(m);
                return r;
        }
        /* The context starts its I/O thread with the first socket, in
         * manager_start(): after main() has blocked the signals, so that
         * SIGTERM reaches our signalfd and not that thread. */
        m->zctx = zmq_ctx_new();
        if (!m->zctx) {
                manager_free(m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

static void zmq_close_now(void *s) {
        int linger = 0;

        if (!s)
                return;
        (void) zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
        (void) zmq_close(s);
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        m->archive = archive_free(m->archive);
        zmq_io_free(m->xsub_io);
        zmq_io_free(m->xpub_io);
        zmq_io_free(m->monitor_io);
        if (m->xpub && m->monitor)
                (void) zmq_socket_monitor(m->xpub, NULL, 0);
        zmq_close_now(m->monitor);
        zmq_close_now(m->xsub);
        zmq_close_now(m->xpub);
        m->subs = subs_free(m->subs);
        if (m->zctx)
                (void) zmq_ctx_term(m->zctx);
        if (m->ipc_path)
                (void) unlink(m->ipc_path);
        free(m->ipc_path);
        sd_event_source_disable_unref(m->status_timer);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

/* mkdir -p of path's parent directory. */
static int mkdir_parents(const char *path) {
        _cleanup_(freep) char *p = strdup(path);
        char *slash;

        if (!p)
                return -ENOMEM;
        slash = strrchr(p, '/');
        if (!slash || slash == p)
                return 0;
        *slash = '\0';
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/*
 * Before binding an ipc:// endpoint: ZeroMQ unlinks whatever socket file is
 * there, which would silently steal the endpoint from a running eventd. So
 * connect first: refused (or missing) means stale, fine; accepted means
 * another hub serves it.
 */
static int ipc_check_free(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_(closep) int fd = -1;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0)
                return -EADDRINUSE;
        return 0;
}

static bool endpoint_is_ipc(const char *endpoint) {
        return strncmp(endpoint, "ipc://", 6) == 0;
}

/* A listening socket systemd passed for this endpoint, or -ENOENT. */
static int manager_passed_fd(const char *name, const char *endpoint, int avoid) {
        int fd, r;

        fd = daemon_listen_fd(name, AF_UNSPEC, SOCK_STREAM);
        if (fd < 0 || fd == avoid)
                return fd < 0 ? fd : -ENOENT;
        r = endpoint_is_ipc(endpoint) ? sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0)
                                      : sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0);
        if (r <= 0)
                return log_error_errno(r < 0 ? r : EINVAL,
                                       "The socket systemd passed (fd %d) does not fit endpoint %s.", fd, endpoint);
        return fd;
}

static int manager_bind(Manager *m, void *socket, const char *what, const char *endpoint, int fd) {
        int r;

        if (!endpoint || !*endpoint)
                return log_error_errno(EINVAL, "[events] %s is empty.", what);

        if (fd >= 0) {
                if (zmq_setsockopt(socket, ZMQ_USE_FD, &fd, sizeof(fd)) < 0)
                        return log_error_errno(EIO, "Cannot use the socket systemd passed for %s: %s", endpoint,
                                               zmq_strerror(zmq_errno()));
        } else if (endpoint_is_ipc(endpoint) && endpoint[6] != '@' && endpoint[6] != '*') {
                const char *path = endpoint + 6;

                r = mkdir_parents(path);
                if (r < 0)
                        return log_error_errno(r, "Cannot create the directory of %s: %m", endpoint);
                r = ipc_check_free(path);
                if (r == -EADDRINUSE)
                        return log_error_errno(r, "Cannot bind %s: another process (a running eventd?) is serving it.",
                                               endpoint);
                if (r < 0)
                        return log_error_errno(r, "Cannot bind %s: %m", endpoint);
        }

        if (zmq_bind(socket, endpoint) < 0) {
                int e = zmq_errno();

                r = e == EADDRINUSE ? -EADDRINUSE
                    : e == EINVAL || e == EPROTONOSUPPORT || e == ENOCOMPATPROTO || e == ENODEV || e == ENOENT
                            ? -EINVAL
                            : -EIO;
                return log_error_errno(r, "Cannot bind [events] %s = %s: %s", what, endpoint, zmq_strerror(e));
        }

        if (fd < 0 && endpoint_is_ipc(endpoint) && endpoint[6] != '@' && endpoint[6] != '*' && !m->ipc_path &&
            socket == m->xsub) {
                m->ipc_path = strdup(endpoint + 6);
                if (!m->ipc_path)
                        return log_oom();
        }
        return 0;
}

static void *manager_socket(Manager *m, int type, int hwm_option, int64_t frame_max) {
        int hwm = m->events.hwm > INT_MAX ? INT_MAX : (int) m->events.hwm, linger = 0;
        void *s;

        s = zmq_socket(m->zctx, type);
        if (!s)
                return NULL;
        /* ZMQ_MAXMSGSIZE applies to each frame: a peer announcing a
         * longer one is disconnected before it is read. */
        if (zmq_setsockopt(s, hwm_option, &hwm, sizeof(hwm)) < 0 ||
            zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
            zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &frame_max, sizeof(frame_max)) < 0) {
                (void) zmq_close(s);
                return NULL;
        }
        return s;
}

int manager_start(Manager *m) {
        int fd_pub, fd_sub, r;

        /* Socket activation: "publish" / "subscribe" by FileDescriptorName=,
         * or one unnamed socket, which is the subscribers' (DESIGN.md:
         * the XPUB port is socket-activated). */
        fd_pub = manager_passed_fd("publish", m->events.publish, -1);
        if (fd_pub < 0 && fd_pub != -ENOENT)
                return fd_pub;
        fd_sub = manager_passed_fd("subscribe", m->events.subscribe, -1);
        if (fd_sub == -ENOENT)
                fd_sub = manager_passed_fd(NULL, m->events.subscribe, fd_pub);
        if (fd_sub < 0 && fd_sub != -ENOENT)
                return fd_sub;

        m->xsub = manager_socket(m, ZMQ_XSUB, ZMQ_RCVHWM, MANAGER_EVENT_FRAME_MAX);
        m->xpub = manager_socket(m, ZMQ_XPUB, ZMQ_SNDHWM, MANAGER_SUBSCRIPTION_FRAME_MAX);
        if (!m->xsub || !m->xpub)
                return log_error_errno(EIO, "Cannot create ZeroMQ sockets: %s", zmq_strerror(zmq_errno()));

        /* Subscriptions are ours to apply (on_xpub()); the monitor, set up
         * before the first connection can come, tells us when a
         * connection's account ends. */
        {
                char endpoint[64];
                int one = 1;

                (void) snprintf(endpoint, sizeof(endpoint), "inproc://eventd-xpub-monitor-%p", (void *) m);
                int rcvhwm = MANAGER_SUBSCRIPTION_HWM;

                if (zmq_setsockopt(m->xpub, ZMQ_XPUB_MANUAL, &one, sizeof(one)) < 0 ||
                    zmq_setsockopt(m->xpub, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm)) < 0 ||
                    zmq_socket_monitor(m->xpub, endpoint, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) < 0)
                        return log_error_errno(EIO, "Cannot set up the subscriber socket: %s",
                                               zmq_strerror(zmq_errno()));
                m->monitor = zmq_socket(m->zctx, ZMQ_PAIR);
                if (!m->monitor || zmq_connect(m->monitor, endpoint) < 0)
                        return log_error_errno(EIO, "Cannot watch the subscriber socket's connections: %s",
                                               zmq_strerror(zmq_errno()));
        }

        r = manager_bind(m, m->xsub, "publish", m->events.publish, fd_pub);
        if (r < 0)
                return r;
        r = manager_bind(m, m->xpub, "subscribe", m->events.subscribe, fd_sub);
        if (r < 0)
                return r;

        /* Subscribe to everything: XSUB sends this to every publisher that
         * connects, now or later, which is what their XPUB waits for. */
        if (zmq_send(m->xsub, "\x01", 1, 0) < 0)
                return log_error_errno(EIO, "Cannot subscribe the hub: %s", zmq_strerror(zmq_errno()));

        r = zmq_io_new(&m->xsub_io, m->event, m->xsub, ZMQ_POLLIN, on_xsub, m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the publisher socket: %m");
        zmq_io_set_description(m->xsub_io, "xsub");
        r = zmq_io_new(&m->xpub_io, m->event, m->xpub, ZMQ_POLLIN, on_xpub, m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the subscriber socket: %m");
        zmq_io_set_description(m->xpub_io, "xpub");
        r = zmq_io_new(&m->monitor_io, m->event, m->monitor, ZMQ_POLLIN, on_monitor, m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the subscriber socket's connections: %m");
        zmq_io_set_description(m->monitor_io, "xpub-monitor");

        if (m->database.url && *m->database.url) {
                _cleanup_(freep) char *state = NULL;

                /* systemd's StateDirectory= sets $STATE_DIRECTORY (several
                 * directories are separated by ':'; the first is ours). */
                if (getenv("STATE_DIRECTORY") && *getenv("STATE_DIRECTORY")) {
                        state = strndup(getenv("STATE_DIRECTORY"), strcspn(getenv("STATE_DIRECTORY"), ":"));
                        if (!state)
                                return log_oom();
                } else
                        log_warning("$STATE_DIRECTORY is not set: events that PostgreSQL cannot take in time "
                                    "are held in memory up to [database] buffer_bytes, then dropped.");
                r = archive_new(&m->archive, m->event, &m->database, state);
                if (r < 0)
                        return log_error_errno(r, "Cannot set up the archive: %m");
        } else
                log_warning("[database] url is empty: events are forwarded but not archived.");

        r = sd_event_add_time_relative(m->event, &m->status_timer, CLOCK_MONOTONIC, USEC_PER_SEC,
                                       100 * USEC_PER_MSEC, on_status_timer, m);
        if (r < 0)
                return log_error_errno(r, "Cannot start the status timer: %m");
        (void) sd_event_source_set_enabled(m->status_timer, SD_EVENT_ON);
        m->status_last_time = now_usec(CLOCK_MONOTONIC);
        return 0;
}

void manager_stop(Manager *m) {
        unsigned taken = 0, n;
        int r;

        if (m->stopping)
                return;
        m->stopping = true;

        /*
         * A handover without loss: unsubscribe first, so that publishers
         * stop sending and keep their events queued until a hub subscribes
         * again (ours after a restart). Then take what was already on its
         * way, until nothing came for MANAGER_QUIET (or MANAGER_FINAL_DRAIN
         * passed). Blocking here is fine: we are shutting down.
         */
        if (m->xsub_io) {
                usec_t now = now_usec(CLOCK_MONOTONIC), end = now + MANAGER_FINAL_DRAIN, quiet = now;

                if (zmq_send(m->xsub, "\x00", 1, ZMQ_DONTWAIT) < 0)
                        log_debug("Cannot unsubscribe from publishers: %s", zmq_strerror(zmq_errno()));
                while (now < end) {
                        n = manager_forward(m, MANAGER_SLICE);
                        taken += n;
                        now = now_usec(CLOCK_MONOTONIC);
                        if (n > 0) {
                                quiet = now;
                                continue;
                        }
                        if (now - quiet >= MANAGER_QUIET)
                                break;
                        zmq_pollitem_t item = { .socket = m->xsub, .events = ZMQ_POLLIN };
                        (void) zmq_poll(&item, 1, 10);
                }
                (void) zmq_io_set_enabled(m->xsub_io, false);
                log_debug("Took %u event(s) in flight at shutdown.", taken);
        }
        (void) sd_event_source_set_enabled(m->status_timer, SD_EVENT_OFF);

        if (m->archive) {
                ArchiveStats a;

                archive_get_stats(m->archive, &a);
                daemon_notify_status("Stopping, writing %" PRIu64 " archived events", a.pending);
                r = archive_drain(m->archive, MANAGER_STOP_TIMEOUT);
                archive_get_stats(m->archive, &a);
                if (r < 0)
                        log_warning("Stopping with %" PRIu64 " event(s) not archived.", a.pending);
                else
                        log_info("Archive written (%" PRIu64 " events stored in this run).", a.stored);
        }
        (void) sd_event_exit(m->event, m->exit_code);
}
