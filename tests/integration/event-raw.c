/* SPDX-License-Identifier: MIT */
/*
 * event-raw: send arbitrary frames to the hub, as a misbehaving publisher
 * would, for the integration tests.
 *
 *   event-raw --endpoint=EP [--count=N] FRAME...
 *
 * Sends one message made of the given frames (a lone frame is allowed),
 * --count times, on a raw ZeroMQ socket connected to EP, once the hub has
 * subscribed (an XPUB socket sees its subscription, a PUB would not and
 * could lose the message). Exit status 0 when sent, 1 on failure, 2 on bad
 * usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "endpoint", required_argument, NULL, 'e' },
                { "count", required_argument, NULL, 'n' },
                {},
        };
        const char *endpoint = NULL;
        unsigned long count = 1;
        char sub[256];
        void *ctx, *s;
        int c, linger = 5000, timeout = 10000, rc = 0;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'e': endpoint = optarg; break;
                case 'n': count = strtoul(optarg, NULL, 10); break;
                default: return 2;
                }
        if (!endpoint || optind >= argc) {
                fprintf(stderr, "event-raw: --endpoint and at least one frame are required\n");
                return 2;
        }

        ctx = zmq_ctx_new();
        s = zmq_socket(ctx, ZMQ_XPUB);
        if (!s || zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
            zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof(timeout)) < 0 || zmq_connect(s, endpoint) < 0) {
                fprintf(stderr, "event-raw: %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
                return 1;
        }
        /* The hub's XSUB subscribes to everything ("\x01") once connected. */
        if (zmq_recv(s, sub, sizeof(sub), 0) < 1 || sub[0] != 1) {
                fprintf(stderr, "event-raw: no subscription from %s\n", endpoint);
                rc = 1;
        }
        for (unsigned long i = 0; rc == 0 && i < count; i++)
                for (int f = optind; f < argc; f++)
                        if (zmq_send(s, argv[f], strlen(argv[f]), f + 1 < argc ? ZMQ_SNDMORE : 0) < 0) {
                                fprintf(stderr, "event-raw: send: %s\n", zmq_strerror(zmq_errno()));
                                rc = 1;
                                break;
                        }
        zmq_close(s);
        zmq_ctx_term(ctx);
        return rc;
}
