/* SPDX-License-Identifier: MIT */
/*
 * zpub: a raw ZeroMQ publisher for the integration tests, independent of
 * libshared's publisher (so that a test of a subscriber does not depend on
 * the code it tests against).
 *
 *   zpub [--bind] ENDPOINT SECONDS TOPIC BODY [TOPIC BODY ...]
 *
 * Connects (or, with --bind, binds) a PUB socket and sends the TOPIC/BODY
 * pairs in turn, one every 20 ms, for SECONDS or until SIGTERM. Sending
 * repeatedly is what makes PUB/SUB testable: a subscriber that joins late
 * (ZeroMQ's "slow joiner") still gets the next copy.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

static volatile sig_atomic_t stop;

static void on_term(int sig) {
        stop = 1;
}

int main(int argc, char **argv) {
        struct timespec tick = { 0, 20 * 1000 * 1000 };
        int bind = 0, i = 1, npairs, linger = 0;
        double seconds;
        void *ctx, *sock;
        time_t end;

        if (argc > 1 && strcmp(argv[1], "--bind") == 0) {
                bind = 1;
                i++;
        }
        if (argc - i < 4 || (argc - i - 2) % 2 != 0) {
                fprintf(stderr, "usage: zpub [--bind] ENDPOINT SECONDS TOPIC BODY [TOPIC BODY ...]\n");
                return 2;
        }
        seconds = atof(argv[i + 1]);
        npairs = (argc - i - 2) / 2;

        signal(SIGTERM, on_term);
        signal(SIGINT, on_term);
        /* A test that pipes our stderr away must not kill us by SIGPIPE. */
        signal(SIGPIPE, SIG_IGN);

        ctx = zmq_ctx_new();
        sock = zmq_socket(ctx, ZMQ_PUB);
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
        if ((bind ? zmq_bind(sock, argv[i]) : zmq_connect(sock, argv[i])) < 0) {
                fprintf(stderr, "zpub: %s %s: %s\n", bind ? "bind" : "connect", argv[i], zmq_strerror(zmq_errno()));
                return 1;
        }

        end = time(NULL) + (time_t) seconds + 1;
        for (unsigned long n = 0; !stop && time(NULL) < end; n++) {
                const char *topic = argv[i + 2 + 2 * (int) (n % (unsigned long) npairs)];
                const char *body = argv[i + 3 + 2 * (int) (n % (unsigned long) npairs)];

                /* ZMQ_DONTWAIT: with no subscriber, PUB drops; never block. */
                zmq_send(sock, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
                zmq_send(sock, body, strlen(body), ZMQ_DONTWAIT);
                nanosleep(&tick, NULL);
        }

        zmq_close(sock);
        zmq_ctx_term(ctx);
        return 0;
}
