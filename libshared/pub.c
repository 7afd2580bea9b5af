/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "cleanup.h"
#include "envelope.h"
#include "log.h"
#include "pub.h"
#include "zmq-io.h"

/*
 * Why an XPUB socket and not a PUB: a PUB socket silently discards what
 * nobody has subscribed to, and it cannot tell whether anybody has. The
 * hub binds an XSUB that subscribes to everything as soon as a connection
 * is up. With XPUB we receive that subscription ("\x01") as a message, so
 * we know when sending is useful: until it arrives (hub down, or connected
 * but the subscription still in flight, the "slow joiner" problem) events
 * wait in our bounded queue instead of vanishing. An unsubscription
 * ("\x00") returns us to queueing.
 *
 * ZMQ_XPUB_NODROP makes a full pipe (SNDHWM reached: slow hub) answer
 * EAGAIN instead of dropping, so the event stays queued. The catch is that
 * XPUB always reports ZMQ_POLLOUT, so while blocked we cannot poll for
 * room; we retry on every wake-up of the socket (the peer's "I have read
 * some" command signals ZMQ_FD) and, as a safety net, on a short timer.
 */

#define PUB_RETRY_USEC (5 * USEC_PER_MSEC)
#define PUB_SLICE 256
#define PUB_LINGER_MSEC 1000
#define PUB_CHECK_EVERY 16

typedef struct PubEntry {
        char *buf;              /* body, NUL, topic, NUL: one allocation */
        size_t body_len;
        size_t topic_len;
} PubEntry;

struct EventPublisher {
        sd_event *event;
        void *socket;
        ZmqIo *io;
        sd_event_source *retry;

        char *source;
        char host[HOST_NAME_MAX + 1];
        char *endpoint;

        uint64_t seq;

        /* Ring buffer of events not yet handed to ZeroMQ, oldest at head.
         * It grows by doubling up to bound entries. */
        PubEntry *ring;
        size_t ring_size, head, count, bound;
        bool head_topic_sent;   /* first frame of the head entry is out */

        unsigned subscriptions; /* distinct topics somebody subscribed to */
        unsigned unchecked;     /* sends since pub_check_subscribed() last looked */
        bool blocked;           /* last send said EAGAIN (HWM reached) */

        EventPublisherStats stats;
        RateLimit drop_limit;
        uint64_t drops_unreported;
};

static void pub_update_watch(EventPublisher *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(EventPublisher *, event_publisher_free);

static int pub_errno(void) {
        int e = zmq_errno();
        return e > 0 ? -e : -EIO;
}

static void pub_note_drop(EventPublisher *p, const char *why) {
        p->stats.dropped++;
        p->drops_unreported++;
        /* Operators must see lost events, but one line per event could
         * flood the journal exactly when things are already bad. */
        if (ratelimit_below(&p->drop_limit)) {
                log_warning("Event publisher %s: %s, dropped %" PRIu64 " event(s) (%" PRIu64 " in total).",
                            p->source, why, p->drops_unreported, p->stats.dropped);
                p->drops_unreported = 0;
        }
}

static PubEntry *pub_entry(EventPublisher *p, size_t i) {
        return &p->ring[(p->head + i) % p->ring_size];
}

static int pub_ring_grow(EventPublisher *p) {
        size_t n = p->ring_size ? p->ring_size * 2 : 64;
        PubEntry *ring;

        if (n > p->bound)
                n = p->bound;
        if (n <= p->ring_size)
                return -ENOBUFS;
        ring = calloc(n, sizeof(*ring));
        if (!ring)
                return -ENOMEM;
        for (size_t i = 0; i < p->count; i++)
                ring[i] = *pub_entry(p, i);
        free(p->ring);
        p->ring = ring;
        p->ring_size = n;
        p->head = 0;
        return 0;
}

static void pub_pop(EventPublisher *p) {
        PubEntry *e = pub_entry(p, 0);

        free(e->buf);
        *e = (PubEntry) {};
        p->head = (p->head + 1) % p->ring_size;
        p->count--;
        p->head_topic_sent = false;
}

/*
 * Send one event, resuming after the topic frame when topic_sent. Returns 0,
 * -EAGAIN (nothing more can go now; *topic_sent tells how far it got), or
 * another negative errno (the event is lost).
 */
static int pub_send(EventPublisher *p, const char *topic, size_t topic_len, const char *body,
                    size_t body_len, bool *topic_sent) {
        if (!*topic_sent) {
                if (zmq_send(p->socket, topic, topic_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
                        return pub_errno();
                *topic_sent = true;
        }
        /* NODROP checks the HWM per frame, but the pipe counts whole
         * messages, so once the topic went out the body cannot hit EAGAIN.
         * Should it anyway, *topic_sent makes the retry send the body only,
         * keeping the two frames together. */
        if (zmq_send(p->socket, body, body_len, ZMQ_DONTWAIT) < 0)
                return pub_errno();
        *topic_sent = false;
        p->unchecked++;
        return 0;
}

static int pub_read_subscriptions(EventPublisher *p, unsigned limit);

/*
 * Is anybody still subscribed? libzmq applies an unsubscription to XPUB's
 * own table when it processes its commands, which zmq_send() may do now and
 * then, and from then on it discards what it is given, without an error; we
 * learn of it only when we read the "\x00" message. Reading ZMQ_EVENTS
 * processes the pending commands, so looking every PUB_CHECK_EVERY sends
 * bounds what such a race can lose (a hub stopping gracefully unsubscribes
 * first, so that publishers keep their events for the next one). Not every
 * send: with no command pending, the check costs a poll() system call.
 */
static bool pub_check_subscribed(EventPublisher *p) {
        int ev = 0;
        size_t sz = sizeof(ev);

        if (p->unchecked < PUB_CHECK_EVERY)
                return p->subscriptions > 0;
        p->unchecked = 0;
        if (zmq_getsockopt(p->socket, ZMQ_EVENTS, &ev, &sz) == 0 && (ev & ZMQ_POLLIN))
                (void) pub_read_subscriptions(p, UINT_MAX);
        return p->subscriptions > 0;
}

/* Hand queued events to ZeroMQ while someone listens and the pipe has room.
 * At most limit events, so that the loop stays responsive. */
static void pub_flush_queue(EventPublisher *p, size_t limit) {
        bool sent = false;
        int r;

        p->blocked = false;
        while (p->count > 0 && p->subscriptions > 0 && limit-- > 0) {
                PubEntry *e = pub_entry(p, 0);

                if (!p->head_topic_sent && !pub_check_subscribed(p))
                        break;

                r = pub_send(p, e->buf + e->body_len + 1, e->topic_len, e->buf, e->body_len,
                             &p->head_topic_sent);
                if (r == -EAGAIN) {
                        p->blocked = true;
                        break;
                }
                sent = true;
                if (r < 0) {
                        log_debug_errno(r, "Event publisher %s: send failed: %m", p->source);
                        pub_note_drop(p, "send failed");
                } else
                        p->stats.sent++;
                pub_pop(p);
        }
        if (sent)
                zmq_io_kick(p->io);
        pub_update_watch(p);
}

/* Read the (un)subscription messages of our XPUB socket. */
static int pub_read_subscriptions(EventPublisher *p, unsigned limit) {
        unsigned char buf[ENVELOPE_TOPIC_MAX + 1];
        int n;

        while (limit-- > 0) {
                n = zmq_recv(p->socket, buf, sizeof(buf), ZMQ_DONTWAIT);
                if (n < 0) {
                        if (zmq_errno() == EAGAIN)
                                return 0;
                        return pub_errno();
                }
                if (n == 0)
                        continue;
                /* XPUB (not verbose) passes on only the first subscription to
                 * a topic and the unsubscription when its last subscriber
                 * left, so a counter of topics tells whether anybody
                 * listens. */
                if (buf[0] == 1) {
                        p->subscriptions++;
                        log_debug("Event publisher %s: subscriber on %s (%u topic(s)).", p->source,
                                  p->endpoint, p->subscriptions);
                } else if (buf[0] == 0 && p->subscriptions > 0) {
                        p->subscriptions--;
                        log_debug("Event publisher %s: unsubscribed on %s (%u topic(s)).", p->source,
                                  p->endpoint, p->subscriptions);
                }
        }
        return 1;
}

static int on_socket(ZmqIo *io, void *socket, uint32_t revents, void *userdata) {
        EventPublisher *p = userdata;
        int r;

        r = pub_read_subscriptions(p, PUB_SLICE);
        if (r < 0)
                log_debug_errno(r, "Event publisher %s: reading subscriptions failed: %m", p->source);
        pub_flush_queue(p, PUB_SLICE);
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        EventPublisher *p = userdata;

        pub_flush_queue(p, PUB_SLICE);
        return 0;
}

/* Decide what wakes us: subscriptions always; when blocked by the HWM, every
 * fd wake-up plus the retry timer; when merely behind (slice limit),
 * ZMQ_POLLOUT, which XPUB keeps set, so the loop comes back next
 * iteration. */
static void pub_update_watch(EventPublisher *p) {
        uint32_t events = ZMQ_POLLIN;
        bool timer = false;

        if (p->count > 0 && p->subscriptions > 0) {
                if (p->blocked) {
                        events |= ZMQ_IO_WAKE;
                        timer = true;
                } else
                        events |= ZMQ_POLLOUT;
        }
        zmq_io_set_events(p->io, events);

        if (timer) {
                int enabled = SD_EVENT_OFF;

                (void) sd_event_source_get_enabled(p->retry, &enabled);
                if (enabled == SD_EVENT_OFF) {
                        (void) sd_event_source_set_time_relative(p->retry, PUB_RETRY_USEC);
                        (void) sd_event_source_set_enabled(p->retry, SD_EVENT_ONESHOT);
                }
        } else
                (void) sd_event_source_set_enabled(p->retry, SD_EVENT_OFF);
}

int event_publisher_new(EventPublisher **ret, sd_event *e, void *zctx, const EventsConfig *config,
                        const char *source) {
        _cleanup_(event_publisher_freep) EventPublisher *p = NULL;
        int one = 1, linger = PUB_LINGER_MSEC, hwm;
        int r;

        if (!ret || !e || !zctx || !config || !config->publish || !*config->publish || !source ||
            !*source)
                return -EINVAL;
        if (strlen(source) + 2 > ENVELOPE_TOPIC_MAX)
                return -EINVAL;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(e);
        p->bound = config->buffer;
        p->drop_limit = (RateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 1 };
        p->source = strdup(source);
        p->endpoint = strdup(config->publish);
        if (!p->source || !p->endpoint)
                return -ENOMEM;
        if (gethostname(p->host, sizeof(p->host) - 1) < 0 || !p->host[0])
                strcpy(p->host, "localhost");

        p->socket = zmq_socket(zctx, ZMQ_XPUB);
        if (!p->socket)
                return log_debug_errno(EIO, "zmq_socket(XPUB) failed: %s", zmq_strerror(zmq_errno()));

        hwm = config->hwm > INT_MAX ? INT_MAX : (int) config->hwm;
        if (zmq_setsockopt(p->socket, ZMQ_XPUB_NODROP, &one, sizeof(one)) < 0 ||
            zmq_setsockopt(p->socket, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
            zmq_setsockopt(p->socket, ZMQ_LINGER, &linger, sizeof(linger)) < 0)
                return log_debug_errno(EIO, "Setting publisher socket options failed: %s",
                                       zmq_strerror(zmq_errno()));

        /* connect() is asynchronous: a hub that is not there yet is fine,
         * ZeroMQ keeps retrying. Only a malformed endpoint fails here. */
        if (zmq_connect(p->socket, config->publish) < 0) {
                r = zmq_errno();
                return log_debug_errno(r == EINVAL || r == EPROTONOSUPPORT || r == ENOENT ? EINVAL : EIO,
                                       "Cannot connect event publisher to %s: %s", config->publish,
                                       zmq_strerror(r));
        }

        r = zmq_io_new(&p->io, e, p->socket, ZMQ_POLLIN, on_socket, p);
        if (r < 0)
                return r;
        zmq_io_set_description(p->io, "event-publisher");

        r = sd_event_add_time_relative(e, &p->retry, CLOCK_MONOTONIC, PUB_RETRY_USEC, USEC_PER_MSEC,
                                       on_retry, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(p->retry, SD_EVENT_OFF);
        (void) sd_event_source_set_description(p->retry, "event-publisher-retry");

        *ret = TAKE_PTR(p);
        return 0;
}

EventPublisher *event_publisher_free(EventPublisher *p) {
        if (!p)
                return NULL;

        if (p->count > 0) {
                p->stats.dropped += p->count;
                log_warning("Event publisher %s: %zu queued event(s) dropped at exit (%" PRIu64 " in total).",
                            p->source, p->count, p->stats.dropped);
        }
        while (p->count > 0)
                pub_pop(p);
        free(p->ring);

        zmq_io_free(p->io);
        sd_event_source_disable_unref(p->retry);
        /* ZMQ_LINGER (set at creation) lets zmq_ctx_term() deliver what
         * ZeroMQ already holds for a moment; then it gives up. */
        if (p->socket)
                (void) zmq_close(p->socket);
        sd_event_unref(p->event);
        free(p->source);
        free(p->endpoint);
        free(p);
        return NULL;
}

int64_t event_publisher_emit(EventPublisher *p, const char *type, struct json_object *data) {
        char topic[ENVELOPE_TOPIC_MAX];
        _cleanup_(freep) char *body = NULL;
        size_t body_len;
        int topic_len, r;
        char *buf;

        if (!p || !type)
                return -EINVAL;

        topic_len = envelope_topic(p->source, type, topic, sizeof(topic));
        if (topic_len < 0)
                return -EINVAL;

        r = envelope_format(&(Envelope) {
                                    .seq = p->seq + 1,
                                    .time = now_usec(CLOCK_REALTIME),
                                    .source = p->source,
                                    .host = p->host,
                                    .type = type,
                                    .data = data,
                            },
                            &body, &body_len);
        if (r < 0)
                return r;

        /* From here on the event exists: it has its seq, and losing it is a
         * drop that subscribers will see as a gap. */
        p->seq++;
        p->stats.emitted++;

        if (p->count == 0 && p->subscriptions > 0 && pub_check_subscribed(p)) {
                bool topic_sent = false;

                r = pub_send(p, topic, (size_t) topic_len, body, body_len, &topic_sent);
                zmq_io_kick(p->io);
                if (r == 0) {
                        p->stats.sent++;
                        return (int64_t) p->seq;
                }
                if (r != -EAGAIN || topic_sent) {
                        /* A half-sent message cannot be taken back; count
                         * it lost rather than send a body without topic
                         * later (should not happen, see pub_send()). */
                        log_debug_errno(r, "Event publisher %s: send failed: %m", p->source);
                        pub_note_drop(p, "send failed");
                        return -ENOBUFS;
                }
                p->blocked = true;
        }

        if (p->count >= p->bound) {
                pub_note_drop(p, "queue full (hub absent or too slow)");
                return -ENOBUFS;
        }
        if (p->count == p->ring_size) {
                r = pub_ring_grow(p);
                if (r < 0) {
                        pub_note_drop(p, "out of memory");
                        return -ENOBUFS;
                }
        }

        /* One allocation per queued event: the topic goes after the body. */
        buf = realloc(body, body_len + 1 + (size_t) topic_len + 1);
        if (!buf) {
                pub_note_drop(p, "out of memory");
                return -ENOBUFS;
        }
        body = NULL;
        memcpy(buf + body_len + 1, topic, (size_t) topic_len + 1);
        *pub_entry(p, p->count) = (PubEntry) {
                .buf = buf,
                .body_len = body_len,
                .topic_len = (size_t) topic_len,
        };
        p->count++;

        if (!p->blocked)
                pub_flush_queue(p, PUB_SLICE);
        else
                pub_update_watch(p);
        return (int64_t) p->seq;
}

int event_publisher_flush(EventPublisher *p, usec_t timeout) {
        usec_t end, now;
        int r;

        if (!p)
                return -EINVAL;

        end = now_usec(CLOCK_MONOTONIC) + timeout;
        for (;;) {
                (void) pub_read_subscriptions(p, UINT_MAX);
                pub_flush_queue(p, SIZE_MAX);
                if (p->count == 0) {
                        /* ZeroMQ may still hold up to SNDHWM events for a
                         * slow hub. Closing the socket waits ZMQ_LINGER for
                         * them: let that be the rest of our time. */
                        usec_t n = now_usec(CLOCK_MONOTONIC), ms = n < end ? (end - n) / USEC_PER_MSEC : 0;
                        int linger = ms < PUB_LINGER_MSEC ? PUB_LINGER_MSEC : ms > INT_MAX ? INT_MAX : (int) ms;

                        (void) zmq_setsockopt(p->socket, ZMQ_LINGER, &linger, sizeof(linger));
                        return 0;
                }

                now = now_usec(CLOCK_MONOTONIC);
                if (now >= end)
                        return -ETIMEDOUT;

                /* Wake on a subscription; poll again soon for HWM room,
                 * which XPUB cannot signal. */
                zmq_pollitem_t item = { .socket = p->socket, .events = ZMQ_POLLIN };
                long ms = (long) ((end - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
                r = zmq_poll(&item, 1, ms < 5 ? ms : 5);
                if (r < 0 && zmq_errno() != EINTR)
                        return pub_errno();
        }
}

void event_publisher_get_stats(const EventPublisher *p, EventPublisherStats *ret) {
        if (!p || !ret)
                return;
        *ret = p->stats;
        ret->queued = p->count;
        ret->connected = p->subscriptions > 0;
}
