/* SPDX-License-Identifier: MIT */
/*
 * libshared's EventPublisher and EventSubscriber (and zmq-io under them),
 * over inproc:// sockets on one sd-event loop: the bounded queue while
 * nobody subscribed, drops and seq gaps past the bound, delivery in order
 * once a subscriber appears, unsubscription, topic filters, ZMQ_XPUB_NODROP
 * back-pressure from a subscriber that does not read, and flush.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>
#include <zmq.h>

#include "cleanup.h"
#include "envelope.h"
#include "pub.h"
#include "sub.h"
#include "tap.h"
#include "time-util.h"

typedef struct Received {
        uint64_t seq[256];
        char topic[256][64];
        size_t n;
} Received;

static int on_event(EventSubscriber *s, const char *topic, size_t topic_len, const char *body, size_t body_len,
                    void *userdata) {
        Received *r = userdata;
        struct json_object *o = NULL;
        Envelope e;

        if (r->n >= ELEMENTSOF(r->seq) || envelope_parse(body, body_len, &e, &o) < 0)
                return -EBADMSG;
        r->seq[r->n] = e.seq;
        json_object_put(o);
        snprintf(r->topic[r->n], sizeof(r->topic[0]), "%.*s", (int) topic_len, topic);
        r->n++;
        return 0;
}

/* Run the loop until cond holds or a second passed. */
#define RUN_UNTIL(e, cond)                                                              \
        ({                                                                              \
                usec_t _end_ = now_usec(CLOCK_MONOTONIC) + USEC_PER_SEC;                \
                while (!(cond) && now_usec(CLOCK_MONOTONIC) < _end_)                    \
                        (void) sd_event_run((e), 10 * USEC_PER_MSEC);                   \
                (cond);                                                                 \
        })

static bool connected(EventPublisher *p) {
        EventPublisherStats st;

        event_publisher_get_stats(p, &st);
        return st.connected;
}

static void test_queue_then_deliver(sd_event *e, void *zctx) {
        EventsConfig config = { .publish = (char *) "inproc://queue", .buffer = 5, .hwm = 1000 };
        EventSubscriberOptions bind = { .bind = true };
        EventPublisher *p = NULL;
        EventSubscriber *s = NULL;
        EventPublisherStats st;
        Received got = {};
        bool in_order = true;

        is_int(event_publisher_new(&p, e, zctx, &config, "test"), 0, "publisher created before anybody listens");
        is_int(event_publisher_emit(p, "bad type!", NULL), -EINVAL, "bad type refused");
        for (int i = 1; i <= 5; i++)
                is_int(event_publisher_emit(p, "thing.happened", NULL), i, "event %d queued, seq %d", i, i);
        is_int(event_publisher_emit(p, "thing.happened", NULL), -ENOBUFS, "6th event: queue full, dropped");
        is_int(event_publisher_emit(p, "thing.happened", NULL), -ENOBUFS, "7th event: dropped");
        event_publisher_get_stats(p, &st);
        ok(st.emitted == 7 && st.queued == 5 && st.dropped == 2 && st.sent == 0 && !st.connected,
           "stats: 7 emitted, 5 queued, 2 dropped, not connected");
        is_int(event_publisher_flush(p, 50 * USEC_PER_MSEC), -ETIMEDOUT, "flush without a subscriber times out");

        is_int(event_subscriber_new_full(&s, e, zctx, "inproc://queue", NULL, &bind, on_event, &got), 0,
               "subscriber binds");
        ok(RUN_UNTIL(e, got.n >= 5), "queued events delivered once subscribed");
        for (size_t i = 0; i < 5; i++)
                in_order = in_order && got.seq[i] == i + 1;
        ok(in_order && got.n == 5, "seq 1..5, in order");
        is_str(got.topic[0], "test.thing.happened", "topic is <source>.<type>");

        is_int(event_publisher_emit(p, "thing.happened", NULL), 8, "next event has seq 8: the gap shows the drops");
        ok(RUN_UNTIL(e, got.n >= 6) && got.seq[5] == 8, "seq 8 delivered");
        event_publisher_get_stats(p, &st);
        ok(st.sent == 6 && st.queued == 0 && st.connected, "stats: 6 sent, none queued, connected");

        s = event_subscriber_free(s);
        ok(RUN_UNTIL(e, !connected(p)), "unsubscription seen when the subscriber leaves");
        is_int(event_publisher_emit(p, "thing.happened", NULL), 9, "emit while nobody listens: queued");
        event_publisher_get_stats(p, &st);
        is_int(st.queued, 1, "one event queued again");
        event_publisher_free(p);
}

static void test_topics(sd_event *e, void *zctx) {
        EventsConfig config = { .publish = (char *) "inproc://topics", .buffer = 100, .hwm = 1000 };
        EventSubscriberOptions bind = { .bind = true };
        char *topics[] = { (char *) "t.call.", NULL };
        EventPublisher *p = NULL;
        EventSubscriber *s = NULL;
        Received got = {};

        is_int(event_subscriber_new_full(&s, e, zctx, "inproc://topics", topics, &bind, on_event, &got), 0,
               "subscriber for t.call.* binds");
        is_int(event_publisher_new(&p, e, zctx, &config, "t"), 0, "publisher connects");
        ok(RUN_UNTIL(e, connected(p)), "publisher sees the subscription");
        (void) event_publisher_emit(p, "task.created", NULL);
        (void) event_publisher_emit(p, "call.ringing", NULL);
        (void) event_publisher_emit(p, "task.done", NULL);
        (void) event_publisher_emit(p, "call.answered", NULL);
        ok(RUN_UNTIL(e, got.n >= 2), "two events delivered");
        (void) RUN_UNTIL(e, false);     /* anything else would have arrived by now */
        ok(got.n == 2 && got.seq[0] == 2 && got.seq[1] == 4 && strcmp(got.topic[1], "t.call.answered") == 0,
           "only the t.call. topics, seq 2 and 4");
        event_publisher_free(p);
        event_subscriber_free(s);
}

/* An inproc socket nobody calls never processes its commands (here: the
 * publisher's connection), so it would never send its subscription. */
static bool touch(void *socket) {
        int ev;
        size_t sz = sizeof(ev);

        (void) zmq_getsockopt(socket, ZMQ_EVENTS, &ev, &sz);
        return true;
}

static void test_backpressure(sd_event *e, void *zctx) {
        EventsConfig config = { .publish = (char *) "inproc://slow", .buffer = 1000, .hwm = 10 };
        EventPublisher *p = NULL;
        EventPublisherStats st;
        struct json_object *data = json_object_new_object();
        void *sub = zmq_socket(zctx, ZMQ_SUB);
        int hwm = 10, n = 0, r;
        bool in_order = true;
        char buf[512];

        /* A subscriber that does not read: ZMQ_XPUB_NODROP must turn its full
         * pipe into EAGAIN, and the publisher must keep the rest queued. */
        ok(sub && zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof(hwm)) == 0 &&
                   zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0) == 0 && zmq_bind(sub, "inproc://slow") == 0,
           "raw SUB socket bound, not reading");
        is_int(event_publisher_new(&p, e, zctx, &config, "slow"), 0, "publisher with hwm 10");
        ok(RUN_UNTIL(e, touch(sub) && connected(p)), "connected");
        json_object_object_add(data, "pad", json_object_new_string("0123456789"));
        for (int i = 0; i < 200; i++)
                (void) event_publisher_emit(p, "x.y", data);
        (void) RUN_UNTIL(e, false);
        event_publisher_get_stats(p, &st);
        ok(st.connected && st.dropped == 0 && st.queued > 100 && st.sent > 0 && st.sent < 100,
           "pipe full: no drop, %llu sent, %llu wait in the queue",
           (unsigned long long) st.sent, (unsigned long long) st.queued);

        /* Now read everything, letting the publisher's loop run in between. */
        for (usec_t end = now_usec(CLOCK_MONOTONIC) + 2 * USEC_PER_SEC; n < 200 && now_usec(CLOCK_MONOTONIC) < end;) {
                r = zmq_recv(sub, buf, sizeof(buf) - 1, ZMQ_DONTWAIT);
                if (r < 0) {
                        (void) sd_event_run(e, USEC_PER_MSEC);
                        continue;
                }
                /* topic frame, then the body */
                r = zmq_recv(sub, buf, sizeof(buf) - 1, 0);
                Envelope env;
                struct json_object *o = NULL;
                in_order = in_order && r > 0 && envelope_parse(buf, (size_t) r, &env, &o) == 0 &&
                           env.seq == (uint64_t) n + 1;
                json_object_put(o);
                n++;
        }
        ok(n == 200 && in_order, "all 200 events arrive, in order (%d)", n);
        event_publisher_get_stats(p, &st);
        ok(st.sent == 200 && st.queued == 0 && st.dropped == 0, "stats: 200 sent");
        is_int(event_publisher_flush(p, USEC_PER_SEC), 0, "flush with nothing queued");

        json_object_put(data);
        event_publisher_free(p);
        zmq_close(sub);
}

int main(void) {
        sd_event *e = NULL;
        void *zctx = zmq_ctx_new();

        if (sd_event_new(&e) < 0 || !zctx)
                return 1;
        test_queue_then_deliver(e, zctx);
        test_topics(e, zctx);
        test_backpressure(e, zctx);
        zmq_ctx_term(zctx);
        sd_event_unref(e);
        return done_testing();
}
