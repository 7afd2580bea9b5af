/* SPDX-License-Identifier: MIT */
/*
 * tasks-bench: load callcenter-taskd over D-Bus and time it.
 *
 *   tasks-bench [--tasks N] [--depth D] [--inflight K] [--user|--system]
 *               [--acked=FILE] [--until-error] [--title-bytes=N]
 *
 * 1. Builds a tree of N tasks, D levels deep, with CreateTask calls sent
 *    asynchronously, K in flight at any time. Level sizes double from one
 *    level to the next (a level-i task's parent is a level-(i-1) task, round
 *    robin), so the tree is exactly D deep. Levels are created in order
 *    because a parent's id must be known before its children are sent.
 * 2. Times ListTasks(0) (the whole forest) and ListTasks of one top-level
 *    task, end to end: call, reply transfer and reading every element.
 *
 * Prints one line per figure and its ratio to the target of issue 4
 * (CreateTask >= 5000/s; ListTasks(0) of 100000 tasks under 1 s).
 * Exit status 0 when every call succeeded (the figures are reported, not
 * judged), 1 when a call failed.
 *
 * For the durability test: --acked=FILE writes the id of every acknowledged
 * CreateTask, one per line, as the replies arrive; --until-error stops
 * sending at the first failed call (taskd killed), waits for the calls in
 * flight, and exits 0 without the ListTasks part. --title-bytes pads
 * every title to N bytes (at most 500), for replies near the bus's limits. Calls never auto-start the
 * service: a dead taskd stays dead until the test restarts it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>

#include "cleanup.h"
#include "dbus/names.h"

typedef struct Bench {
        sd_bus *bus;
        unsigned inflight_max;
        unsigned inflight;
        uint64_t *ids;          /* ids of all tasks created, by creation index */
        size_t level_start[64]; /* index of each level's first task */
        size_t level_len[64];
        size_t depth;
        size_t next;            /* next index to send in the current level */
        size_t level;
        size_t done_in_level;
        uint64_t failed;
        size_t n_acked;
        char first_error[256];
        FILE *acked;
        size_t title_bytes;
        bool until_error;
        bool stopped;           /* --until-error saw a failure: send no more */
} Bench;

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int send_next(Bench *b);

/* The reply handler needs to know which task it created: one slot each. */
typedef struct Slot {
        Bench *b;
        size_t index;
} Slot;

static int on_created(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Slot *s = userdata;
        Bench *b = s->b;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        uint64_t id = 0;

        b->inflight--;
        b->done_in_level++;
        if (!e && sd_bus_message_read(reply, "t", &id) >= 0) {
                b->ids[s->index] = id;
                b->n_acked++;
                if (b->acked) {
                        fprintf(b->acked, "%" PRIu64 "\n", id);
                        fflush(b->acked);
                }
        } else if (b->failed++ == 0)
                snprintf(b->first_error, sizeof(b->first_error), "%s: %s", e ? e->name : "bad reply",
                         e && e->message ? e->message : "");
        free(s);
        if (b->failed > 0 && b->until_error)
                b->stopped = true;
        /* Keep the pipeline full. */
        return send_next(b);
}

static int send_next(Bench *b) {
        while (!b->stopped && b->level < b->depth && b->inflight < b->inflight_max) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                size_t len = b->level_len[b->level];
                size_t start = b->level_start[b->level];
                char title[512];
                uint64_t parent = 0;
                Slot *s;
                int r;

                if (b->next >= len) {
                        /* The next level needs every parent id: wait. */
                        if (b->done_in_level < len)
                                return 0;
                        b->level++;
                        b->next = 0;
                        b->done_in_level = 0;
                        continue;
                }
                if (b->level > 0) {
                        size_t pstart = b->level_start[b->level - 1], plen = b->level_len[b->level - 1];
                        parent = b->ids[pstart + b->next % plen];
                }
                int tlen = snprintf(title, sizeof(title), "bench task %zu.%zu", b->level, b->next);
                if (b->title_bytes > (size_t) tlen) {
                        memset(title + tlen, '.', b->title_bytes - (size_t) tlen);
                        title[b->title_bytes] = '\0';
                }

                s = malloc(sizeof(*s));
                if (!s)
                        return -ENOMEM;
                *s = (Slot) { b, start + b->next };
                r = sd_bus_message_new_method_call(b->bus, &m, CC_TASKS_SERVICE, CC_TASKS_PATH,
                                                   CC_TASKS_INTERFACE, "CreateTask");
                if (r >= 0)
                        r = sd_bus_message_append(m, "sts", title, parent, "");
                if (r >= 0)
                        r = sd_bus_message_set_auto_start(m, false);
                if (r >= 0)
                        r = sd_bus_call_async(b->bus, NULL, m, on_created, s, 0);
                if (r < 0) {
                        free(s);
                        return r;
                }
                b->next++;
                b->inflight++;
        }
        return 0;
}

static int list_tasks(sd_bus *bus, uint64_t root, size_t *ret_n, double *ret_s) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        double t0 = now_s();
        size_t n = 0;
        int r;

        r = sd_bus_call_method(bus, CC_TASKS_SERVICE, CC_TASKS_PATH, CC_TASKS_INTERFACE, "ListTasks", &error,
                               &reply, "t", root);
        if (r < 0) {
                fprintf(stderr, "ListTasks(%" PRIu64 "): %s\n", root, error.message ? error.message : strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(ttsss)");
        while (r >= 0) {
                uint64_t id, parent;
                const char *title, *state, *call;

                r = sd_bus_message_read(reply, "(ttsss)", &id, &parent, &title, &state, &call);
                if (r <= 0)
                        break;
                n++;
        }
        sd_bus_message_unref(reply);
        if (r < 0)
                return r;
        *ret_n = n;
        *ret_s = now_s() - t0;
        return 0;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "tasks", required_argument, NULL, 'n' },
                { "depth", required_argument, NULL, 'd' },
                { "inflight", required_argument, NULL, 'k' },
                { "user", no_argument, NULL, 'u' },
                { "system", no_argument, NULL, 's' },
                { "acked", required_argument, NULL, 'a' },
                { "until-error", no_argument, NULL, 'e' },
                { "title-bytes", required_argument, NULL, 'b' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        Bench b = { .inflight_max = 64, .depth = 10 };
        size_t n_tasks = 100000, n, total;
        bool user = true;
        int rc = 1;
        double t0, elapsed, list_s;
        int c, r;

        while ((c = getopt_long(argc, argv, "n:d:k:h", options, NULL)) >= 0)
                switch (c) {
                case 'n':
                        n_tasks = strtoul(optarg, NULL, 10);
                        break;
                case 'd':
                        b.depth = strtoul(optarg, NULL, 10);
                        break;
                case 'k':
                        b.inflight_max = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'u':
                        user = true;
                        break;
                case 's':
                        user = false;
                        break;
                case 'a':
                        b.acked = fopen(optarg, "we");
                        if (!b.acked) {
                                fprintf(stderr, "cannot open %s: %m\n", optarg);
                                return 1;
                        }
                        break;
                case 'e':
                        b.until_error = true;
                        break;
                case 'b':
                        b.title_bytes = strtoul(optarg, NULL, 10);
                        break;
                case 'h':
                        printf("%s [--tasks N] [--depth D] [--inflight K] [--user|--system] [--acked=FILE] [--until-error] [--title-bytes=N]\n",
                               argv[0]);
                        return 0;
                default:
                        return 2;
                }
        if (b.depth < 1 || b.depth > 30 || n_tasks < b.depth || b.inflight_max < 1 || b.title_bytes > 500) {
                fprintf(stderr, "bad arguments\n");
                return 2;
        }

        /* Level i holds about n * 2^i / (2^depth - 1) tasks; the last level
         * takes the rounding remainder; every level has at least one. */
        total = 0;
        for (size_t i = 0; i < b.depth; i++) {
                double share = (double) n_tasks * (double) (1u << i) / (double) ((1u << b.depth) - 1);
                b.level_len[i] = share < 1 ? 1 : (size_t) share;
                total += b.level_len[i];
        }
        if (total > n_tasks)
                b.level_len[0] -= total - n_tasks;
        else
                b.level_len[b.depth - 1] += n_tasks - total;
        for (size_t i = 1; i < b.depth; i++)
                b.level_start[i] = b.level_start[i - 1] + b.level_len[i - 1];

        b.ids = calloc(n_tasks, sizeof(uint64_t));
        if (!b.ids)
                return 1;
        r = user ? sd_bus_open_user(&b.bus) : sd_bus_open_system(&b.bus);
        if (r < 0) {
                fprintf(stderr, "cannot connect to the bus: %s\n", strerror(-r));
                goto finish;
        }

        t0 = now_s();
        r = send_next(&b);
        while (r >= 0 && ((!b.stopped && b.level < b.depth) || b.inflight > 0)) {
                r = sd_bus_process(b.bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(b.bus, UINT64_MAX);
        }
        elapsed = now_s() - t0;
        if (r < 0) {
                fprintf(stderr, "bus error: %s\n", strerror(-r));
                goto finish;
        }
        if (b.until_error) {
                printf("until-error: %" PRIu64 " failed calls (first: %s); %zu acknowledged before\n", b.failed,
                       b.failed ? b.first_error : "none", b.n_acked);
                rc = 0;
                goto finish;
        }
        if (b.failed > 0) {
                fprintf(stderr, "%" PRIu64 " CreateTask calls failed, first: %s\n", b.failed, b.first_error);
                goto finish;
        }
        printf("CreateTask: %zu tasks, %zu levels, %u in flight: %.2f s, %.0f creates/s (target >= 5000/s: ratio %.2f)\n",
               n_tasks, b.depth, b.inflight_max, elapsed, (double) n_tasks / elapsed,
               (double) n_tasks / elapsed / 5000.0);

        if (list_tasks(b.bus, 0, &n, &list_s) < 0)
                goto finish;
        printf("ListTasks(0): %zu tasks in %.3f s (target < 1 s: ratio %.2f)\n", n, list_s, list_s / 1.0);
        if (list_tasks(b.bus, b.ids[0], &n, &list_s) < 0)
                goto finish;
        printf("ListTasks(first top-level task): %zu tasks in %.3f s\n", n, list_s);
        rc = 0;

finish:
        /* Nothing is in flight here except after a bus error, whose
         * pending slots die with the process. */
        sd_bus_flush_close_unref(b.bus);
        free(b.ids);
        if (b.acked)
                fclose(b.acked);
        return rc;
}
