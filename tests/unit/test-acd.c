/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of routerd's ACD (daemons/routerd/acd.c).
 *
 * Most tests are scripts: a table of (time, command, expected output) steps
 * run against one AcdState. Commands:
 *   call ID [QUEUE] | answer OP | reject OP | hangup ID | timeout
 *   add OP [QUEUE...] | remove OP | status OP STATUS | addq NAME STRATEGY
 *   join OP [QUEUE...]  (acd_set_operator_queues) | rmq NAME | setq NAME STRATEGY
 *   set KEY=VALUE...    (acd_set_config; times in seconds)
 *   opq OP              -> "sales,default": the operator's queues
 *   queues              -> "default/longest-idle:2 sales/top-down:1" (strategy, members)
 *   deadline            -> the next deadline in seconds, or "inf"
 *   ops                 -> "A=available B=ringing:2 ..." (configured order)
 *   calls               -> "3=queued/2 2=ringing@B/4 ..." (waited, whole seconds)
 *   stats [QUEUE]       -> "w=1 r=0 t=1 rx=3 ans=1 in=1 ab=1 rej=0 ign=0 avg=4"
 * An operation's output is its message lines joined by "|" (operator-state
 * records have none), or "!ENOENT" style on failure. A step whose expected
 * text starts with "~" compares every event instead, rendered as
 * "kind:call:operator:queue" or "state:operator=state/status:call".
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "daemons/routerd/acd.h"
#include "tests/tap.h"

#define S(x) ((usec_t) ((x) * (double) USEC_PER_SEC))

typedef struct Step {
        usec_t t;
        const char *cmd;
        const char *expect;
} Step;

static const char *errno_name(int r) {
        switch (-r) {
        case ENOENT: return "!ENOENT";
        case EBUSY: return "!EBUSY";
        case EEXIST: return "!EEXIST";
        case EINVAL: return "!EINVAL";
        case ENXIO: return "!ENXIO";
        case ENOMEM: return "!ENOMEM";
        case ENOSPC: return "!ENOSPC";
        default: return "!E?";
        }
}

static void append(char *buf, size_t size, const char *sep, const char *s) {
        size_t n = strlen(buf);

        if (n > 0 && sep)
                snprintf(buf + n, size - n, "%s", sep), n = strlen(buf);
        snprintf(buf + n, size - n, "%s", s);
}

static void render_lines(const AcdEvents *ev, char *buf, size_t size) {
        buf[0] = 0;
        for (size_t i = 0; i < ev->n; i++) {
                char line[ACD_MESSAGE_MAX];

                if (acd_event_format_message(&ev->events[i], line, sizeof(line)) > 0)
                        append(buf, size, "|", line);
        }
}

static void render_events(const AcdEvents *ev, char *buf, size_t size) {
        buf[0] = 0;
        for (size_t i = 0; i < ev->n; i++) {
                const AcdEvent *e = &ev->events[i];
                char item[512];

                if (e->kind == ACD_EVENT_OPERATOR_STATE)
                        snprintf(item, sizeof(item), "state:%s=%s/%s:%s", e->operator,
                                 acd_operator_state_to_string(e->state),
                                 acd_operator_status_to_string(e->status), e->call);
                else
                        snprintf(item, sizeof(item), "%s:%s:%s:%s", acd_event_kind_to_string(e->kind),
                                 e->call, e->operator, e->queue);
                append(buf, size, " ", item);
        }
}

static void render_ops(AcdState *a, char *buf, size_t size) {
        AcdOperatorInfo *l = NULL;
        size_t n = 0;

        buf[0] = 0;
        if (acd_list_operators(a, &l, &n) < 0) {
                snprintf(buf, size, "!ENOMEM");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                char item[256];

                if (l[i].call)
                        snprintf(item, sizeof(item), "%s=%s:%s", l[i].id, acd_operator_state_to_string(l[i].state), l[i].call);
                else
                        snprintf(item, sizeof(item), "%s=%s", l[i].id, acd_operator_state_to_string(l[i].state));
                append(buf, size, " ", item);
        }
        free(l);
}

/* The calls of acd_list_calls(), or of one page when limit != SIZE_MAX. */
static void render_calls(AcdState *a, usec_t now, size_t offset, size_t limit, char *buf, size_t size) {
        AcdCallInfo *l = NULL;
        size_t n = 0;

        buf[0] = 0;
        if ((limit == SIZE_MAX ? acd_list_calls(a, now, &l, &n) : acd_list_calls_page(a, now, offset, limit, &l, &n)) < 0) {
                snprintf(buf, size, "!ENOMEM");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                char item[256];

                if (l[i].operator)
                        snprintf(item, sizeof(item), "%s=%s@%s/%llu", l[i].id, acd_call_state_to_string(l[i].state),
                                 l[i].operator, (unsigned long long) (l[i].waited / USEC_PER_SEC));
                else
                        snprintf(item, sizeof(item), "%s=%s/%llu", l[i].id, acd_call_state_to_string(l[i].state),
                                 (unsigned long long) (l[i].waited / USEC_PER_SEC));
                append(buf, size, " ", item);
        }
        free(l);
}

static void render_stats(AcdState *a, const char *queue, usec_t now, char *buf, size_t size) {
        AcdQueueStats st;
        int r = acd_queue_get_stats(a, queue, now, &st);

        if (r < 0) {
                snprintf(buf, size, "%s", errno_name(r));
                return;
        }
        snprintf(buf, size, "w=%zu r=%zu t=%zu rx=%llu ans=%llu in=%llu ab=%llu rej=%llu ign=%llu avg=%llu",
                 st.waiting, st.ringing, st.talking, (unsigned long long) st.received,
                 (unsigned long long) st.answered, (unsigned long long) st.answered_within,
                 (unsigned long long) st.abandoned, (unsigned long long) st.rejected,
                 (unsigned long long) st.ignored, (unsigned long long) (st.average_wait / USEC_PER_SEC));
}

/* Split cmd into at most 8 words (modifies a copy). */
static size_t split(char *s, char *w[static 8]) {
        size_t n = 0;

        for (char *tok = strtok(s, " "); tok && n < 8; tok = strtok(NULL, " "))
                w[n++] = tok;
        return n;
}

/* Run one command; the output goes to buf. */
static void step_run(AcdState *a, usec_t t, const char *cmd, bool all_events, char *buf, size_t size) {
        AcdEvents ev = {};
        char copy[256], *w[8] = {};
        size_t n;
        int r = 0;

        snprintf(copy, sizeof(copy), "%s", cmd);
        n = split(copy, w);
        buf[0] = 0;

        if (strcmp(w[0], "call") == 0)
                r = acd_place_call(a, w[1], n > 2 ? w[2] : NULL, t, &ev);
        else if (strcmp(w[0], "answer") == 0)
                r = acd_answer(a, w[1], t, &ev, NULL);
        else if (strcmp(w[0], "reject") == 0)
                r = acd_reject(a, w[1], t, &ev, NULL);
        else if (strcmp(w[0], "hangup") == 0)
                r = acd_hangup(a, w[1], t, &ev);
        else if (strcmp(w[0], "timeout") == 0)
                r = acd_timeout(a, t, &ev);
        else if (strcmp(w[0], "add") == 0) {
                const char *qs[8] = {};

                for (size_t i = 2; i < n; i++)
                        qs[i - 2] = w[i];
                r = acd_add_operator(a, w[1], n > 2 ? qs : NULL, ACD_STATUS_AVAILABLE, t, &ev);
        } else if (strcmp(w[0], "remove") == 0)
                r = acd_remove_operator(a, w[1], t, &ev);
        else if (strcmp(w[0], "status") == 0)
                r = acd_set_status(a, w[1], acd_operator_status_from_string(w[2]), t, &ev);
        else if (strcmp(w[0], "addq") == 0)
                r = acd_add_queue(a, w[1], acd_strategy_from_string(w[2]));
        else if (strcmp(w[0], "rmq") == 0)
                r = acd_remove_queue(a, w[1], t, &ev);
        else if (strcmp(w[0], "setq") == 0)
                r = acd_set_queue_strategy(a, w[1], acd_strategy_from_string(w[2]));
        else if (strcmp(w[0], "join") == 0) {
                const char *qs[8] = {};

                for (size_t i = 2; i < n; i++)
                        qs[i - 2] = w[i];
                r = acd_set_operator_queues(a, w[1], n > 2 ? qs : NULL, t, &ev);
        } else if (strcmp(w[0], "set") == 0) {
                AcdConfig c = *acd_get_config(a);

                /* set KEY=VALUE...: times in whole seconds */
                for (size_t i = 1; i < n; i++) {
                        char *v = strchr(w[i], '=');

                        if (!v)
                                continue;
                        *v++ = 0;
                        if (strcmp(w[i], "strategy") == 0)
                                c.strategy = acd_strategy_from_string(v);
                        else if (strcmp(w[i], "ring_timeout") == 0)
                                c.ring_timeout = S(atof(v));
                        else if (strcmp(w[i], "reject_delay") == 0)
                                c.reject_delay = S(atof(v));
                        else if (strcmp(w[i], "no_answer_delay") == 0)
                                c.no_answer_delay = S(atof(v));
                        else if (strcmp(w[i], "wrap_up") == 0)
                                c.wrap_up = S(atof(v));
                        else if (strcmp(w[i], "max_no_answer") == 0)
                                c.max_no_answer = (unsigned) atoi(v);
                        else if (strcmp(w[i], "service_level") == 0)
                                c.service_level = S(atof(v));
                        else if (strcmp(w[i], "max_queued") == 0)
                                c.max_queued = (size_t) atoi(v);
                }
                r = acd_set_config(a, &c);
        } else if (strcmp(w[0], "opq") == 0) {
                const char **l = NULL;

                r = acd_get_operator_queues(a, w[1], &l);
                if (r < 0) {
                        snprintf(buf, size, "%s", errno_name(r));
                        return;
                }
                for (size_t i = 0; l[i]; i++)
                        append(buf, size, ",", l[i]);
                free(l);
                return;
        } else if (strcmp(w[0], "queues") == 0) {
                for (size_t i = 0; i < acd_queue_count(a); i++) {
                        AcdQueueStats st;
                        char item[256];

                        (void) acd_queue_get_stats(a, acd_queue_name(a, i), t, &st);
                        snprintf(item, sizeof(item), "%s/%s:%zu", acd_queue_name(a, i),
                                 acd_strategy_to_string(st.strategy), st.members);
                        append(buf, size, " ", item);
                }
                return;
        }
        else if (strcmp(w[0], "deadline") == 0) {
                usec_t d = acd_next_deadline(a);

                if (d == USEC_INFINITY)
                        snprintf(buf, size, "inf");
                else
                        snprintf(buf, size, "%g", (double) d / USEC_PER_SEC);
                return;
        } else if (strcmp(w[0], "ops") == 0) {
                render_ops(a, buf, size);
                return;
        } else if (strcmp(w[0], "calls") == 0) {
                render_calls(a, t, 0, SIZE_MAX, buf, size);
                return;
        } else if (strcmp(w[0], "page") == 0) {
                /* page OFFSET LIMIT */
                render_calls(a, t, (size_t) atoi(w[1]), (size_t) atoi(w[2]), buf, size);
                if (!buf[0])
                        snprintf(buf, size, "(none)");
                return;
        } else if (strcmp(w[0], "stats") == 0) {
                render_stats(a, n > 1 ? w[1] : NULL, t, buf, size);
                return;
        } else {
                snprintf(buf, size, "?unknown command");
                return;
        }

        if (r < 0) {
                snprintf(buf, size, "%s", errno_name(r));
                if (ev.n > 0)
                        append(buf, size, " ", "(and events!)");
        } else if (all_events)
                render_events(&ev, buf, size);
        else
                render_lines(&ev, buf, size);
        acd_events_done(&ev);
}

static void run_script(const char *name, const AcdConfig *cfg, const Step *steps, size_t n) {
        AcdState *a = NULL;
        int r;

        r = acd_new(cfg, &a);
        if (!ok(r == 0, "%s: acd_new", name))
                return;
        for (size_t i = 0; i < n; i++) {
                bool all = steps[i].expect[0] == '~';
                char out[4096];

                step_run(a, steps[i].t, steps[i].cmd, all, out, sizeof(out));
                is_str(out, steps[i].expect + all, "%s: t=%g %s", name, (double) steps[i].t / USEC_PER_SEC,
                       steps[i].cmd);
        }
        acd_free(a);
}

#define RUN(name, cfg, steps) run_script(name, cfg, steps, ELEMENTSOF(steps))

static AcdConfig config(void) {
        AcdConfig c;
        acd_config_init(&c);
        return c;
}

/* ---- the DESIGN.md session with the default configuration ---- */

static void test_classic(void) {
        AcdConfig c = config();
        static const Step steps[] = {
                { S(0), "add A", "" },
                { S(0), "add B", "" },
                { S(0), "deadline", "inf" },
                { S(1), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                { S(2), "call 2", "Call 2 received|Call 2 ringing for operator B" },
                { S(3), "call 3", "Call 3 received|Call 3 waiting in queue" },
                { S(4), "answer A", "Call 1 answered by operator A" },
                /* B rejects: call 2 goes back before call 3 and is offered
                 * again at once; nobody but B is available, so B again. */
                { S(5), "reject B", "Call 2 rejected by operator B|Call 2 ringing for operator B" },
                { S(5), "calls", "3=queued/2 2=ringing@B/3 1=answered@A/3" },
                /* A freed: it takes the next queued call in the same reply. */
                { S(6), "hangup 1", "Call 1 finished and operator A available|Call 3 ringing for operator A" },
                { S(6), "ops", "A=ringing:3 B=ringing:2" },
                /* B's ring began at 5 (the reject restarted it). */
                { S(6), "deadline", "15" },
                { S(14.9), "timeout", "" },
                { S(15), "timeout", "Call 2 ignored by operator B|Call 2 ringing for operator B" },
                { S(15), "deadline", "16" },
                { S(16), "timeout", "Call 3 ignored by operator A|Call 3 ringing for operator A" },
                { S(17), "answer B", "Call 2 answered by operator B" },
                { S(18), "hangup 3", "Call 3 missed" },
                { S(19), "hangup 2", "Call 2 finished and operator B available" },
                { S(19), "deadline", "inf" },
                { S(19), "calls", "" },
                { S(19), "ops", "A=available B=available" },
                /* Errors. */
                { S(20), "hangup 2", "!ENOENT" },
                { S(20), "answer A", "!EBUSY" },
                { S(20), "reject B", "!EBUSY" },
                { S(20), "answer C", "!ENOENT" },
                { S(20), "reject C", "!ENOENT" },
                { S(20), "call bad\x01id", "!EINVAL" },
                { S(20), "call 1 nosuchqueue", "!ENXIO" },
                /* An id is free again once its call ended; A has been
                 * available longest (since 18). */
                { S(21), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                { S(21), "call 1", "!EEXIST" },
                { S(22), "answer B", "!EBUSY" },
                { S(22), "add A", "!EEXIST" },
                { S(22), "status C paused", "!ENOENT" },
                /* Waits: call 1 answered after 3 s, call 2 after 15 s. */
                { S(22), "stats", "w=0 r=1 t=0 rx=4 ans=2 in=2 ab=1 rej=1 ign=2 avg=9" },
        };

        RUN("classic", &c, steps);
}

/* Every record of one reply, with queue names and operator states. */
static void test_events(void) {
        AcdConfig c = config();
        static const Step steps[] = {
                { S(0), "add A", "~state:A=available/available:" },
                { S(1), "call 1", "~received:1::default ringing:1:A:default state:A=ringing/available:1" },
                { S(2), "call 2", "~received:2::default queued:2::default" },
                { S(3), "answer A", "~answered:1:A:default state:A=busy/available:1" },
                { S(4), "hangup 1",
                  "~finished:1:A:default state:A=available/available: ringing:2:A:default state:A=ringing/available:2" },
                { S(5), "status A paused", "~state:A=ringing/paused:2" },
                { S(6), "reject A", "~rejected:2:A:default state:A=paused/paused: queued:2::default" },
                { S(7), "status A available",
                  "~state:A=available/available: ringing:2:A:default state:A=ringing/available:2" },
                { S(8), "hangup 2", "~missed:2:A:default state:A=available/available:" },
                { S(9), "status A available", "~" },
                { S(9), "status A offline", "~state:A=offline/offline:" },
                { S(9), "remove A", "~" },
                { S(9), "ops", "" },
        };

        RUN("events", &c, steps);
}

/* A refused call goes to another operator first, and keeps its place. */
static void test_reject(void) {
        AcdConfig c = config();
        static const Step other[] = {
                { S(0), "add A", "" },
                { S(0), "add B", "" },
                { S(0), "add C", "" },
                { S(1), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                /* A refused: B and C have been idle since 0, A only since
                 * 2; B comes first in configured order. */
                { S(2), "reject A", "Call 1 rejected by operator A|Call 1 ringing for operator B" },
                /* B refuses: C (idle since 0) beats A (since 2). */
                { S(3), "reject B", "Call 1 rejected by operator B|Call 1 ringing for operator C" },
                /* C refuses: A (since 2) beats B (since 3). */
                { S(4), "reject C", "Call 1 rejected by operator C|Call 1 ringing for operator A" },
                { S(5), "answer A", "Call 1 answered by operator A" },
                { S(5), "stats", "w=0 r=0 t=1 rx=1 ans=1 in=1 ab=0 rej=3 ign=0 avg=4" },
        };
        static const Step place[] = {
                { S(0), "add A", "" },
                { S(1), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                { S(2), "call 2", "Call 2 received|Call 2 waiting in queue" },
                { S(3), "call 3", "Call 3 received|Call 3 waiting in queue" },
                /* Call 1 is older than 2 and 3: it goes back in front. */
                { S(4), "reject A", "Call 1 rejected by operator A|Call 1 ringing for operator A" },
                { S(5), "hangup 1", "Call 1 missed|Call 2 ringing for operator A" },
                { S(6), "call 4", "Call 4 received|Call 4 waiting in queue" },
                { S(7), "reject A", "Call 2 rejected by operator A|Call 2 ringing for operator A" },
                { S(7), "calls", "3=queued/4 4=queued/1 2=ringing@A/5" },
                { S(8), "hangup 3", "Call 3 missed" },
                { S(9), "calls", "4=queued/3 2=ringing@A/7" },
        };

        RUN("reject to another operator", &c, other);
        RUN("reject keeps place", &c, place);
}

static void test_reject_delay(void) {
        AcdConfig c = config();
        static const Step steps[] = {
                { S(0), "add A", "" },
                { S(0), "add B", "" },
                { S(1), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                { S(2), "call 2", "Call 2 received|Call 2 ringing for operator B" },
                { S(3), "call 3", "Call 3 received|Call 3 waiting in queue" },
                /* A is held back 5 s; nobody else is free: call 1 waits, ahead of 3. */
                { S(4), "reject A", "Call 1 rejected by operator A|Call 1 waiting in queue" },
                { S(4), "ops", "A=delayed B=ringing:2" },
                { S(4), "deadline", "9" },
                { S(4), "calls", "1=queued/3 3=queued/1 2=ringing@B/2" },
                /* B freed first: it takes call 1, the oldest. */
                { S(5), "hangup 2", "Call 2 missed|Call 1 ringing for operator B" },
                { S(8.9), "timeout", "" },
                { S(9), "timeout", "Call 3 ringing for operator A" },
                /* After the delay, A may get call 1 again if nobody else can. */
                { S(10), "reject B", "Call 1 rejected by operator B|Call 1 waiting in queue" },
                { S(10), "reject A", "Call 3 rejected by operator A|Call 3 waiting in queue" },
                { S(10), "deadline", "15" },
                /* Both delays end at 15 and are handled as one group: call
                 * 1 (oldest, refused last by B) goes to A, call 3 (refused
                 * by A) to B. */
                { S(15), "timeout", "Call 1 ringing for operator A|Call 3 ringing for operator B" },
        };

        c.reject_delay = S(5);
        RUN("reject delay", &c, steps);
}

/* Within a group of simultaneous deadlines the refuser yields to another. */
static void test_same_instant(void) {
        AcdConfig c = config();
        static const Step steps[] = {
                { S(0), "add A", "" },
                { S(0), "add B", "" },
                { S(1), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                { S(1), "call 2", "Call 2 received|Call 2 ringing for operator B" },
                /* Both rings time out at 11: handled together, each call
                 * goes to the operator that did not refuse it. */
                { S(11), "timeout", "Call 1 ignored by operator A|Call 2 ignored by operator B|"
                                    "Call 1 ringing for operator B|Call 2 ringing for operator A" },
                /* A late timer: the rings that follow start at the now it
                 * was called with (the ring really starts then), not at the
                 * deadline that was missed. Same-instant order: A first. */
                { S(40), "timeout", "Call 2 ignored by operator A|Call 1 ignored by operator B|"
                                    "Call 1 ringing for operator A|Call 2 ringing for operator B" },
                { S(40), "deadline", "50" },
        };

        RUN("simultaneous deadlines", &c, steps);
}

static void test_wrap_up(void) {
        AcdConfig c = config();
        static const Step steps[] = {
                { S(0), "add A", "" },
                { S(1), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                { S(2), "answer A", "Call 1 answered by operator A" },
                { S(3), "call 2", "Call 2 received|Call 2 waiting in queue" },
                /* The seed's wording says "available"; the operator record
                 * says wrap-up, and no call rings until it ends. */
                { S(4), "hangup 1", "~finished:1:A:default state:A=wrap-up/available:" },
                { S(4), "ops", "A=wrap-up" },
                { S(4), "deadline", "9" },
                { S(5), "answer A", "!EBUSY" },
                { S(8), "timeout", "" },
                { S(9), "timeout", "Call 2 ringing for operator A" },
                { S(10), "answer A", "Call 2 answered by operator A" },
                /* Paused during the call: after wrap-up it stays away. */
                { S(11), "status A paused", "" },
                { S(11), "ops", "A=busy:2" },
                { S(12), "hangup 2", "Call 2 finished and operator A available" },
                { S(12), "call 3", "Call 3 received|Call 3 waiting in queue" },
                { S(17), "timeout", "" },
                { S(17), "ops", "A=paused" },
                { S(18), "status A available", "Call 3 ringing for operator A" },
        };

        c.wrap_up = S(5);
        RUN("wrap-up", &c, steps);
}

static void test_no_answer(void) {
        AcdConfig c = config();
        static const Step pause[] = {
                { S(0), "add A", "" },
                { S(0), "add B", "" },
                { S(0), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                { S(10), "timeout", "Call 1 ignored by operator A|Call 1 ringing for operator B" },
                { S(20), "timeout", "Call 1 ignored by operator B|Call 1 ringing for operator A" },
                /* A's second consecutive no-answer: paused. */
                { S(30), "timeout", "~ignored:1:A:default state:A=paused/paused: ringing:1:B:default state:B=ringing/available:1" },
                { S(40), "timeout", "Call 1 ignored by operator B|Call 1 waiting in queue" },
                { S(40), "ops", "A=paused B=paused" },
                { S(40), "deadline", "inf" },
                { S(41), "status A available", "Call 1 ringing for operator A" },
                /* The count started again at 0 when A was made available. */
                { S(51), "timeout", "Call 1 ignored by operator A|Call 1 ringing for operator A" },
                { S(55), "answer A", "Call 1 answered by operator A" },
                { S(55), "stats", "w=0 r=0 t=1 rx=1 ans=1 in=0 ab=0 rej=0 ign=5 avg=55" },
        };
        static const Step reset[] = {
                /* An answer in between resets the count. */
                { S(0), "add A", "" },
                { S(0), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                { S(10), "timeout", "Call 1 ignored by operator A|Call 1 ringing for operator A" },
                { S(11), "answer A", "Call 1 answered by operator A" },
                { S(12), "hangup 1", "Call 1 finished and operator A available" },
                { S(12), "call 2", "Call 2 received|Call 2 ringing for operator A" },
                { S(22), "timeout", "Call 2 ignored by operator A|Call 2 ringing for operator A" },
                { S(22), "ops", "A=ringing:2" },
                { S(32), "timeout", "Call 2 ignored by operator A|Call 2 waiting in queue" },
                { S(32), "ops", "A=paused" },
        };
        static const Step delay[] = {
                { S(0), "add A", "" },
                { S(0), "add B", "" },
                { S(0), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                { S(10), "timeout", "Call 1 ignored by operator A|Call 1 ringing for operator B" },
                { S(10), "ops", "A=delayed B=ringing:1" },
                { S(10), "deadline", "13" },
                /* A's delay ends at 13, B's ring at 20: one late timer
                 * handles both, in order. */
                { S(20), "timeout", "Call 1 ignored by operator B|Call 1 ringing for operator A" },
                { S(20), "ops", "A=ringing:1 B=delayed" },
                /* The reject delay is separate (0 here). */
                { S(21), "reject A", "Call 1 rejected by operator A|Call 1 ringing for operator A" },
        };

        c.max_no_answer = 2;
        RUN("max no answer", &c, pause);
        RUN("no-answer count reset", &c, reset);
        c.max_no_answer = 0;
        c.no_answer_delay = S(3);
        RUN("no-answer delay", &c, delay);
}

/* The same arrivals under each strategy. */
static void test_strategies(void) {
        static const struct {
                AcdStrategy strategy;
                const char *third;   /* who rings for call 3 */
                const char *fourth;  /* and call 4 */
        } table[] = {
                /* A: offered 1, answered, free at 4. B: offered 2, free at 3
                 * without answering. C: never offered. */
                { ACD_STRATEGY_LONGEST_IDLE, "C", "B" },
                { ACD_STRATEGY_TOP_DOWN, "A", "A" },
                { ACD_STRATEGY_ROUND_ROBIN, "C", "A" },
                { ACD_STRATEGY_FEWEST_CALLS, "B", "B" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                AcdConfig c = config();
                char third[128], fourth[128];
                Step steps[] = {
                        { S(0), "add A", "" },
                        { S(0), "add B", "" },
                        { S(0), "add C", "" },
                        { S(1), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                        { S(2), "call 2", "Call 2 received|Call 2 ringing for operator B" },
                        { S(2), "answer A", "Call 1 answered by operator A" },
                        { S(3), "hangup 2", "Call 2 missed" },
                        { S(4), "hangup 1", "Call 1 finished and operator A available" },
                        { S(5), "call 3", third },
                        { S(6), "hangup 3", "Call 3 missed" },
                        { S(7), "call 4", fourth },
                };

                /* Call 4: longest-idle skips whoever took call 3 (idle
                 * since 6); round-robin goes on to the least recently
                 * offered; missed calls do not count for fewest-calls. */
                snprintf(third, sizeof(third), "Call 3 received|Call 3 ringing for operator %s", table[i].third);
                snprintf(fourth, sizeof(fourth), "Call 4 received|Call 4 ringing for operator %s", table[i].fourth);
                c.strategy = table[i].strategy;
                run_script(acd_strategy_to_string(c.strategy), &c, steps, ELEMENTSOF(steps));
        }
}

/* Round-robin keeps cycling even when everybody is always free. */
static void test_round_robin_cycle(void) {
        AcdConfig c = config();
        static const Step steps[] = {
                { S(0), "add A", "" },
                { S(0), "add B", "" },
                { S(0), "add C", "" },
                { S(1), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                { S(1), "hangup 1", "Call 1 missed" },
                { S(2), "call 2", "Call 2 received|Call 2 ringing for operator B" },
                { S(2), "hangup 2", "Call 2 missed" },
                { S(3), "call 3", "Call 3 received|Call 3 ringing for operator C" },
                { S(3), "hangup 3", "Call 3 missed" },
                { S(4), "call 4", "Call 4 received|Call 4 ringing for operator A" },
                /* A refuses: the next in the cycle, B. */
                { S(4), "reject A", "Call 4 rejected by operator A|Call 4 ringing for operator B" },
                { S(5), "hangup 4", "Call 4 missed" },
                { S(5), "call 5", "Call 5 received|Call 5 ringing for operator C" },
        };

        c.strategy = ACD_STRATEGY_ROUND_ROBIN;
        RUN("round-robin cycle", &c, steps);
}

/* Where the strategy's first choice is the refuser itself, another
 * operator must still come first. */
static void test_refuser_last(void) {
        static const AcdStrategy strategies[] = {
                /* (Under longest-idle the refuser, idle since the refusal,
                 * is never first unless times tie: see test_same_instant.) */
                ACD_STRATEGY_TOP_DOWN, ACD_STRATEGY_FEWEST_CALLS,
        };
        static const Step steps[] = {
                { S(0), "add A", "" },
                { S(0), "add B", "" },
                { S(0), "add C", "" },
                { S(1), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                { S(1), "reject A", "Call 1 rejected by operator A|Call 1 ringing for operator B" },
                { S(1), "reject B", "Call 1 rejected by operator B|Call 1 ringing for operator A" },
                { S(1), "call 2", "Call 2 received|Call 2 ringing for operator B" },
                { S(1), "reject A", "Call 1 rejected by operator A|Call 1 ringing for operator C" },
        };

        for (size_t i = 0; i < ELEMENTSOF(strategies); i++) {
                AcdConfig c = config();
                char name[64];

                c.strategy = strategies[i];
                snprintf(name, sizeof(name), "refuser last (%s)", acd_strategy_to_string(c.strategy));
                run_script(name, &c, steps, ELEMENTSOF(steps));
        }
}

static void shuffle(unsigned *v, unsigned n, uint64_t *seed) {
        for (unsigned i = n - 1; i > 0; i--) {
                unsigned j, t;

                *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
                j = (unsigned) ((*seed >> 33) % (i + 1));
                t = v[i], v[i] = v[j], v[j] = t;
        }
}

/*
 * Many operators and calls going in and out of the heaps in shuffled order,
 * so that every sift path runs: the order in which they come out must be
 * exactly the strategy's (operators) or the arrival order (calls).
 */
static void test_heap_order(void) {
        enum { N = 97 };
        static const AcdStrategy strategies[] = {
                ACD_STRATEGY_TOP_DOWN, ACD_STRATEGY_LONGEST_IDLE, ACD_STRATEGY_ROUND_ROBIN,
        };
        uint64_t seed = 7;

        for (size_t k = 0; k < ELEMENTSOF(strategies); k++) {
                AcdConfig c = config();
                AcdState *a = NULL;
                unsigned perm[N], bad = 0;
                char id[16], op[16];
                usec_t t = S(1);

                c.strategy = strategies[k];
                if (acd_new(&c, &a) < 0)
                        return (void) ok(0, "heap order: acd_new");
                for (unsigned i = 0; i < N; i++) {
                        snprintf(op, sizeof(op), "op%02u", i);
                        (void) acd_add_operator(a, op, NULL, ACD_STATUS_AVAILABLE, 0, NULL);
                        perm[i] = i;
                }
                /* Everybody rings, then is freed in shuffled order. */
                for (unsigned i = 0; i < N; i++) {
                        snprintf(id, sizeof(id), "c%u", i);
                        (void) acd_place_call(a, id, NULL, t, NULL);
                }
                shuffle(perm, N, &seed);
                for (unsigned i = 0; i < N; i++) {
                        snprintf(id, sizeof(id), "c%u", perm[i]);
                        (void) acd_hangup(a, id, t += 1000, NULL);
                }
                /* New calls: top-down gives configured order, longest-idle
                 * the order of freeing, round-robin the order of the last
                 * offers (call c<i> had gone to op<i>). */
                for (unsigned i = 0; i < N; i++) {
                        AcdCallInfo ci;
                        unsigned want = strategies[k] == ACD_STRATEGY_TOP_DOWN ? 0 : perm[i];

                        snprintf(id, sizeof(id), "d%u", i);
                        (void) acd_place_call(a, id, NULL, t += 1000, NULL);
                        if (strategies[k] == ACD_STRATEGY_ROUND_ROBIN)
                                want = i;
                        snprintf(op, sizeof(op), "op%02u", want);
                        if (acd_get_call(a, id, t, &ci) < 0 || !ci.operator || strcmp(ci.operator, op) != 0) {
                                if (bad++ == 0)
                                        diag("call %s went to %s, expected %s", id, ci.operator ?: "-", op);
                        }
                        /* Top-down: free the operator at once, it is first again. */
                        if (strategies[k] == ACD_STRATEGY_TOP_DOWN)
                                (void) acd_hangup(a, id, t, NULL);
                }
                is_int(bad, 0, "heap order: %s picks operators in strategy order", acd_strategy_to_string(strategies[k]));
                acd_free(a);
        }

        /* Calls: every one ringing, operators paused, then refused in
         * shuffled order: they re-enter the queue out of order and must
         * come out oldest first. */
        {
                AcdConfig c = config();
                AcdState *a = NULL;
                unsigned perm[N], bad = 0;
                char id[16], op[16];

                if (acd_new(&c, &a) < 0)
                        return (void) ok(0, "heap order: acd_new");
                for (unsigned i = 0; i < N; i++) {
                        snprintf(op, sizeof(op), "op%02u", i);
                        (void) acd_add_operator(a, op, NULL, ACD_STATUS_AVAILABLE, 0, NULL);
                        snprintf(id, sizeof(id), "c%u", i);
                        (void) acd_place_call(a, id, NULL, S(1), NULL);
                        (void) acd_set_status(a, op, ACD_STATUS_PAUSED, S(1), NULL);
                        perm[i] = i;
                }
                shuffle(perm, N, &seed);
                for (unsigned i = 0; i < N; i++) {
                        snprintf(op, sizeof(op), "op%02u", perm[i]);
                        (void) acd_reject(a, op, S(2), NULL, NULL);
                }
                is_int(acd_queue_length(a), N, "heap order: every refused call waits");
                (void) acd_add_operator(a, "Z", NULL, ACD_STATUS_AVAILABLE, S(3), NULL);
                for (unsigned i = 0; i < N; i++) {
                        AcdOperatorInfo oi;

                        snprintf(id, sizeof(id), "c%u", i);
                        if (acd_get_operator(a, "Z", &oi) < 0 || !oi.call || strcmp(oi.call, id) != 0) {
                                if (bad++ == 0)
                                        diag("Z rings %s, expected %s", oi.call ?: "-", id);
                        }
                        (void) acd_hangup(a, oi.call ?: id, S(4), NULL);
                }
                is_int(bad, 0, "heap order: refused calls come back oldest first");
                acd_free(a);
        }
}

static void test_random(void) {
        static const char *const names[] = { "A", "B", "C", "D" };
        unsigned counts[4] = {};
        char first[2][64] = {};
        bool refused_other = true;
        unsigned dups = 0;

        for (int round = 0; round < 2; round++) {
                AcdState *a = NULL;
                AcdConfig c = config();
                AcdEvents ev = {};
                char id[16];

                c.strategy = ACD_STRATEGY_RANDOM;
                c.seed = 42;
                if (acd_new(&c, &a) < 0)
                        return (void) ok(0, "random: acd_new");
                for (size_t i = 0; i < ELEMENTSOF(names); i++)
                        (void) acd_add_operator(a, names[i], NULL, ACD_STATUS_AVAILABLE, 0, NULL);

                for (unsigned i = 0; i < 4000; i++) {
                        AcdOperatorInfo info;
                        const char *call = NULL;
                        AcdCallInfo ci;

                        snprintf(id, sizeof(id), "%u", i);
                        acd_events_clear(&ev);
                        (void) acd_place_call(a, id, NULL, i, &ev);
                        if (acd_get_call(a, id, i, &ci) < 0 || !ci.operator)
                                break;
                        if (i < 8)
                                snprintf(first[round] + strlen(first[round]), 8, "%s", ci.operator);
                        for (size_t k = 0; k < ELEMENTSOF(names); k++)
                                if (round == 0 && strcmp(names[k], ci.operator) == 0)
                                        counts[k]++;
                        /* Every fourth call is refused: it must go to another. */
                        if (i % 4 == 0) {
                                char refuser[ACD_ID_MAX + 1];

                                snprintf(refuser, sizeof(refuser), "%s", ci.operator);
                                (void) acd_reject(a, refuser, i, NULL, &call);
                                if (acd_get_operator(a, refuser, &info) < 0 || info.call)
                                        refused_other = false;
                        }
                        (void) acd_hangup(a, id, i, NULL);
                        (void) call;
                }
                dups += acd_call_count(a);
                acd_events_done(&ev);
                acd_free(a);
        }

        is_str(first[1], first[0], "random: the same seed picks the same operators (%s)", first[0]);
        ok(strcmp(first[0], "AAAAAAAA") != 0 && strcmp(first[0], "ABCDABCD") != 0,
           "random: the picks are not an ordered pattern (%s)", first[0]);
        for (size_t k = 0; k < ELEMENTSOF(names); k++)
                ok(counts[k] > 800 && counts[k] < 1200, "random: operator %s got %u of 4000 (uniform is 1000)",
                   names[k], counts[k]);
        ok(refused_other, "random: a refused call always went to another available operator");
        is_int(dups, 0, "random: every call hung up");
}

static void test_queues(void) {
        AcdConfig c = config();
        static const Step steps[] = {
                { S(0), "addq sales longest-idle", "" },
                { S(0), "addq support top-down", "" },
                { S(0), "addq sales top-down", "!EEXIST" },
                { S(0), "addq bad\x7fname top-down", "!EINVAL" },
                { S(0), "add A sales", "" },
                { S(0), "add B support", "" },
                { S(0), "add C sales support", "" },
                { S(0), "add D nosuch", "!ENXIO" },
                { S(0), "add D sales sales", "!EINVAL" },
                /* The default queue has no members: its calls wait. */
                { S(1), "call 0", "Call 0 received|Call 0 waiting in queue" },
                { S(1), "call 1 sales", "Call 1 received|Call 1 ringing for operator A" },
                { S(2), "call 2 support", "Call 2 received|Call 2 ringing for operator B" },
                { S(3), "call 3 sales", "Call 3 received|Call 3 ringing for operator C" },
                { S(4), "call 4 support", "Call 4 received|Call 4 waiting in queue" },
                { S(5), "call 5 sales", "Call 5 received|Call 5 waiting in queue" },
                { S(5), "call 5 support", "!EEXIST" },
                { S(5), "stats sales", "w=1 r=2 t=0 rx=3 ans=0 in=0 ab=0 rej=0 ign=0 avg=0" },
                { S(5), "stats support", "w=1 r=1 t=0 rx=2 ans=0 in=0 ab=0 rej=0 ign=0 avg=0" },
                { S(5), "stats", "w=1 r=0 t=0 rx=1 ans=0 in=0 ab=0 rej=0 ign=0 avg=0" },
                { S(5), "stats nosuch", "!ENXIO" },
                /* C serves both queues: it takes the older head (call 4). */
                { S(6), "hangup 3", "Call 3 missed|Call 4 ringing for operator C" },
                /* A serves sales only. */
                { S(7), "hangup 1", "Call 1 missed|Call 5 ringing for operator A" },
                /* B is in support only: the waiting default call stays. */
                { S(8), "hangup 2", "Call 2 missed" },
                { S(8), "calls", "0=queued/7 4=ringing@C/4 5=ringing@A/3" },
                /* C refuses call 4: B (support) gets it. */
                { S(9), "reject C", "Call 4 rejected by operator C|Call 4 ringing for operator B" },
                /* Removing a ringing operator re-offers its call. */
                { S(10), "remove B", "Call 4 ringing for operator C" },
                { S(10), "remove B", "!ENOENT" },
                { S(11), "answer C", "Call 4 answered by operator C" },
                { S(11), "remove C", "!EBUSY" },
                { S(12), "remove A", "Call 5 waiting in queue" },
                { S(12), "ops", "C=busy:4" },
                { S(13), "add E sales", "Call 5 ringing for operator E" },
                { S(14), "add F", "Call 0 ringing for operator F" },
                { S(14), "ops", "C=busy:4 E=ringing:5 F=ringing:0" },
        };

        RUN("queues", &c, steps);
}

/* ---- reconfiguration (routerd's reload) ---- */

/* New settings apply to later decisions; running deadlines keep theirs. */
static void test_reload_settings(void) {
        AcdConfig c = config();
        static const Step steps[] = {
                { S(0), "add A", "" },
                { S(0), "add B", "" },
                { S(1), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                { S(2), "set ring_timeout=5 wrap_up=3", "" },
                /* The ring in progress keeps its 10 s; the next one gets 5 s. */
                { S(2), "deadline", "11" },
                { S(3), "call 2", "Call 2 received|Call 2 ringing for operator B" },
                { S(3), "deadline", "8" },
                { S(4), "answer A", "Call 1 answered by operator A" },
                { S(5), "hangup 1", "Call 1 finished and operator A available" },
                { S(5), "ops", "A=wrap-up B=ringing:2" },
                /* B's ring and A's wrap-up end together: A takes call 2. */
                { S(8), "timeout", "Call 2 ignored by operator B|Call 2 ringing for operator A" },
                { S(8), "deadline", "13" },
                /* A idle since 9, B since 8: longest-idle would pick B. */
                { S(9), "hangup 2", "Call 2 missed" },
                { S(10), "set strategy=top-down", "" },
                { S(10), "call 3", "Call 3 received|Call 3 ringing for operator A" },
                { S(10), "set ring_timeout=0", "!EINVAL" },
                { S(10), "set strategy=nosuch", "!EINVAL" },
                { S(10), "queues", "default/top-down:2" },
                /* And back: B, idle since 8, before A, idle since 11. */
                { S(11), "hangup 3", "Call 3 missed" },
                { S(11), "set strategy=longest-idle", "" },
                { S(11), "call 4", "Call 4 received|Call 4 ringing for operator B" },
                { S(12), "set reject_delay=2 max_no_answer=1", "" },
                { S(12), "reject B", "Call 4 rejected by operator B|Call 4 ringing for operator A" },
                { S(12), "ops", "A=ringing:4 B=delayed" },
                { S(12), "deadline", "14" },
                /* B's delay ends at 14; A's ring times out at 17 and, with
                 * max_no_answer=1 now, pauses A. */
                { S(17), "timeout", "Call 4 ignored by operator A|Call 4 ringing for operator B" },
                { S(17), "ops", "A=paused B=ringing:4" },
                /* Call 4 waited 7 s: outside a 5 s service level. */
                { S(17), "set service_level=5", "" },
                { S(18), "answer B", "Call 4 answered by operator B" },
                { S(18), "stats", "w=0 r=0 t=1 rx=4 ans=2 in=1 ab=2 rej=1 ign=2 avg=5" },
        };

        RUN("reload settings", &c, steps);
}

/* Membership changes act on the next routing decision. */
static void test_reload_membership(void) {
        AcdConfig c = config();
        static const Step steps[] = {
                { S(0), "addq sales longest-idle", "" },
                { S(0), "add A", "" },
                { S(0), "add B sales", "" },
                { S(1), "call 1 sales", "Call 1 received|Call 1 ringing for operator B" },
                { S(2), "call 2 sales", "Call 2 received|Call 2 waiting in queue" },
                /* A, available, joins sales: it takes the waiting call at once. */
                { S(3), "join A default sales", "~ringing:2:A:sales state:A=ringing/available:2" },
                { S(3), "opq A", "default,sales" },
                { S(3), "queues", "default/longest-idle:1 sales/longest-idle:2" },
                /* B leaves sales while ringing: the call keeps ringing... */
                { S(4), "join B", "" },
                { S(4), "opq B", "default" },
                { S(4), "ops", "A=ringing:2 B=ringing:1" },
                /* ...and, refused, goes back to sales, which B no longer serves. */
                { S(5), "reject B", "Call 1 rejected by operator B|Call 1 waiting in queue" },
                { S(5), "ops", "A=ringing:2 B=available" },
                { S(6), "call 3", "Call 3 received|Call 3 ringing for operator B" },
                { S(7), "hangup 2", "Call 2 missed|Call 1 ringing for operator A" },
                /* Errors change nothing. */
                { S(7), "join C", "!ENOENT" },
                { S(7), "join A nosuch", "!ENXIO" },
                { S(7), "join A sales sales", "!EINVAL" },
                { S(7), "join A bad\x7f", "!EINVAL" },
                { S(7), "opq A", "default,sales" },
                { S(7), "opq C", "!ENOENT" },
                /* The same list again: nothing happens. */
                { S(7), "join A default sales", "" },
                { S(7), "join A sales", "" },
                { S(7), "queues", "default/longest-idle:1 sales/longest-idle:1" },
                /* A paused joins default: no call for it. */
                { S(8), "answer A", "Call 1 answered by operator A" },
                { S(9), "call 4", "Call 4 received|Call 4 waiting in queue" },
                { S(9), "hangup 1", "Call 1 finished and operator A available" },
                { S(9), "status A paused", "" },
                { S(10), "join A sales default", "" },
                { S(11), "status A available", "Call 4 ringing for operator A" },
        };

        RUN("reload membership", &c, steps);
}

/* Joining keeps the operator's longest-idle time and round-robin turn. */
static void test_reload_keys_kept(void) {
        AcdConfig c = config();
        static const Step idle[] = {
                { S(0), "addq sales longest-idle", "" },
                { S(0), "add A", "" },
                { S(0), "add B", "" },
                { S(1), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                { S(2), "hangup 1", "Call 1 missed" },
                /* B has been idle since 0, A since 2. */
                { S(3), "join A sales", "" },
                { S(3), "join B sales", "" },
                { S(4), "call 2 sales", "Call 2 received|Call 2 ringing for operator B" },
        };
        static const Step rr[] = {
                { S(0), "addq rr round-robin", "" },
                { S(0), "add A rr", "" },
                { S(0), "add B rr", "" },
                { S(1), "call 1 rr", "Call 1 received|Call 1 ringing for operator A" },
                { S(1), "hangup 1", "Call 1 missed" },
                { S(2), "call 2 rr", "Call 2 received|Call 2 ringing for operator B" },
                { S(2), "hangup 2", "Call 2 missed" },
                { S(3), "call 3 rr", "Call 3 received|Call 3 ringing for operator A" },
                /* A stays in rr (and joins default) while ringing: B's
                 * turn is next once A is free again. */
                { S(4), "join A default rr", "" },
                { S(4), "hangup 3", "Call 3 missed" },
                { S(5), "call 4 rr", "Call 4 received|Call 4 ringing for operator B" },
                /* A strategy change re-orders the operators in place. */
                { S(5), "hangup 4", "Call 4 missed" },
                { S(6), "setq rr top-down", "" },
                { S(6), "call 5 rr", "Call 5 received|Call 5 ringing for operator A" },
                { S(6), "setq rr nosuch", "!EINVAL" },
                { S(6), "setq nosuch top-down", "!ENXIO" },
                { S(6), "setq default random", "" },
                { S(6), "queues", "default/random:1 rr/top-down:2" },
        };

        RUN("reload keeps longest-idle", &c, idle);
        RUN("reload keeps round-robin", &c, rr);
}

/* A removed queue hands its calls to the default queue. */
static void test_reload_remove_queue(void) {
        AcdConfig c = config();
        static const Step steps[] = {
                { S(0), "addq sales top-down", "" },
                { S(0), "add A sales", "" },
                { S(0), "add B", "" },
                { S(1), "call 1 sales", "Call 1 received|Call 1 ringing for operator A" },
                { S(2), "call 2", "Call 2 received|Call 2 ringing for operator B" },
                { S(3), "call 3 sales", "Call 3 received|Call 3 waiting in queue" },
                { S(4), "call 4", "Call 4 received|Call 4 waiting in queue" },
                { S(5), "call 5 sales", "Call 5 received|Call 5 waiting in queue" },
                { S(6), "rmq sales", "!EBUSY" },
                { S(6), "rmq default", "!EINVAL" },
                { S(6), "rmq nosuch", "!ENXIO" },
                { S(6), "join A", "" },
                /* Waiting calls merge into the default queue by arrival. */
                { S(6), "rmq sales", "~queued:3::default queued:5::default" },
                { S(6), "queues", "default/longest-idle:2" },
                { S(6), "stats sales", "!ENXIO" },
                { S(6), "calls", "3=queued/3 4=queued/2 5=queued/1 1=ringing@A/5 2=ringing@B/4" },
                /* The ringing call of sales, refused, is back in front in
                 * default (A is the only one eligible). */
                { S(7), "reject A", "Call 1 rejected by operator A|Call 1 ringing for operator A" },
                { S(8), "hangup 2", "Call 2 missed|Call 3 ringing for operator B" },
                { S(8), "stats", "w=2 r=2 t=0 rx=2 ans=0 in=0 ab=1 rej=1 ign=0 avg=0" },
                { S(8), "addq sales round-robin", "" },
                { S(8), "queues", "default/longest-idle:2 sales/round-robin:0" },
        };
        static const Step busy[] = {
                { S(0), "addq vip top-down", "" },
                { S(0), "add A vip", "" },
                { S(0), "add B", "" },
                { S(0), "status B paused", "" },
                { S(1), "call 1 vip", "Call 1 received|Call 1 ringing for operator A" },
                { S(2), "answer A", "Call 1 answered by operator A" },
                { S(3), "call 2 vip", "Call 2 received|Call 2 waiting in queue" },
                { S(4), "join A", "" },
                { S(5), "status B available", "" },
                /* An operator of the default queue takes the moved call at once. */
                { S(5), "rmq vip", "Call 2 ringing for operator B" },
                { S(5), "stats", "w=0 r=1 t=1 rx=0 ans=0 in=0 ab=0 rej=0 ign=0 avg=0" },
                { S(6), "hangup 1", "Call 1 finished and operator A available" },
                { S(6), "stats", "w=0 r=1 t=0 rx=0 ans=0 in=0 ab=0 rej=0 ign=0 avg=0" },
                { S(7), "answer B", "Call 2 answered by operator B" },
        };

        RUN("reload removes a queue", &c, steps);
        RUN("reload removes a queue with a busy call", &c, busy);
}

static void test_status(void) {
        AcdConfig c = config();
        static const Step steps[] = {
                { S(0), "add A", "" },
                { S(0), "add B", "" },
                { S(0), "status A paused", "" },
                { S(0), "status B offline", "" },
                { S(0), "status B bogus", "!EINVAL" },
                { S(0), "ops", "A=paused B=offline" },
                { S(1), "call 1", "Call 1 received|Call 1 waiting in queue" },
                { S(2), "status B available", "Call 1 ringing for operator B" },
                /* Status does not touch a ringing call... */
                { S(3), "status B offline", "" },
                { S(3), "ops", "A=paused B=ringing:1" },
                { S(4), "answer B", "Call 1 answered by operator B" },
                { S(5), "hangup 1", "Call 1 finished and operator B available" },
                /* ...but decides what comes after. */
                { S(5), "ops", "A=paused B=offline" },
                { S(6), "call 2", "Call 2 received|Call 2 waiting in queue" },
                { S(7), "status A available", "Call 2 ringing for operator A" },
        };

        RUN("status", &c, steps);
}

/* [router] max_queued: a new call that would wait is refused once the
 * queues hold that many; one that rings at once never is. */
static void test_max_queued(void) {
        AcdConfig c = config();
        static const Step steps[] = {
                { S(0), "set max_queued=2", "" },
                { S(0), "addq vip longest-idle", "" },
                { S(0), "add A", "" },
                { S(0), "add V vip", "" },
                { S(1), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                { S(2), "call 2", "Call 2 received|Call 2 waiting in queue" },
                { S(3), "call 3", "Call 3 received|Call 3 waiting in queue" },
                { S(4), "call 4", "!ENOSPC" },
                { S(4), "calls", "2=queued/2 3=queued/1 1=ringing@A/3" },
                /* Its queue has an eligible operator: it rings, full or not. */
                { S(5), "call 5 vip", "Call 5 received|Call 5 ringing for operator V" },
                { S(6), "call 6 vip", "!ENOSPC" },
                /* A call that leaves the queue makes room for one. */
                { S(7), "hangup 2", "Call 2 missed" },
                { S(8), "call 4", "Call 4 received|Call 4 waiting in queue" },
                { S(9), "call 7", "!ENOSPC" },
                /* A reload that raises the cap lets more in (0: none). */
                { S(10), "set max_queued=0", "" },
                { S(10), "call 7", "Call 7 received|Call 7 waiting in queue" },
                { S(10), "call 8", "Call 8 received|Call 8 waiting in queue" },
                /* Pages of the list: queued first, then ringing. */
                { S(10), "page 0 2", "3=queued/7 4=queued/2" },
                { S(10), "page 2 2", "7=queued/0 8=queued/0" },
                { S(10), "page 3 100", "8=queued/0 1=ringing@A/9 5=ringing@V/5" },
                { S(10), "page 6 1", "(none)" },
                { S(10), "page 1000 1", "(none)" },
                { S(10), "page 0 0", "(none)" },
        };

        RUN("max_queued", &c, steps);
}

static void test_stats(void) {
        AcdConfig c = config();
        AcdQueueStats st;
        AcdState *a = NULL;
        static const Step steps[] = {
                { S(0), "add A", "" },
                { S(0), "status A paused", "" },
                { S(0), "call 1", "Call 1 received|Call 1 waiting in queue" },
                { S(1), "call 2", "Call 2 received|Call 2 waiting in queue" },
                { S(2), "call 3", "Call 3 received|Call 3 waiting in queue" },
                /* call 1 answered 5 s after arrival: within 20 s. */
                { S(4), "status A available", "Call 1 ringing for operator A" },
                { S(5), "answer A", "Call 1 answered by operator A" },
                /* call 2 answered at 26 (25 s): not within. */
                { S(25), "hangup 1", "Call 1 finished and operator A available|Call 2 ringing for operator A" },
                { S(26), "answer A", "Call 2 answered by operator A" },
                { S(27), "stats", "w=1 r=0 t=1 rx=3 ans=2 in=1 ab=0 rej=0 ign=0 avg=15" },
                { S(28), "hangup 3", "Call 3 missed" },
                { S(28), "stats", "w=0 r=0 t=1 rx=3 ans=2 in=1 ab=1 rej=0 ign=0 avg=15" },
        };

        RUN("stats", &c, steps);

        /* The ratios and the longest wait, on a state driven directly. */
        if (acd_new(&c, &a) < 0)
                return (void) ok(0, "stats: acd_new");
        (void) acd_queue_get_stats(a, NULL, 0, &st);
        ok(st.service_level == 1.0 && st.abandon_rate == 0.0 && st.longest_wait == 0 && st.average_wait == 0,
           "stats: an idle queue has service level 1, abandon rate 0, no wait");
        (void) acd_place_call(a, "1", NULL, S(10), NULL);
        (void) acd_place_call(a, "2", NULL, S(11), NULL);
        (void) acd_place_call(a, "3", NULL, S(12), NULL);
        (void) acd_queue_get_stats(a, NULL, S(15), &st);
        is_int(st.longest_wait, S(5), "stats: longest wait is the oldest queued call's");
        is_int(st.waiting, 3, "stats: three waiting");
        (void) acd_add_operator(a, "A", NULL, ACD_STATUS_AVAILABLE, S(16), NULL);
        (void) acd_answer(a, "A", S(16), NULL, NULL);  /* call 1 after 6 s */
        (void) acd_hangup(a, "2", S(17), NULL);        /* abandoned */
        (void) acd_hangup(a, "1", S(18), NULL);        /* A takes call 3 */
        (void) acd_answer(a, "A", S(40), NULL, NULL);  /* call 3 after 28 s */
        (void) acd_queue_get_stats(a, NULL, S(41), &st);
        ok(st.answered == 2 && st.answered_within == 1 && st.abandoned == 1, "stats: 2 answered, 1 within, 1 abandoned");
        ok(st.service_level > 0.333 && st.service_level < 0.334, "stats: service level 1/3 (%f)", st.service_level);
        ok(st.abandon_rate > 0.333 && st.abandon_rate < 0.334, "stats: abandon rate 1/3 (%f)", st.abandon_rate);
        is_int(st.average_wait, S(17), "stats: average wait (6 + 28) / 2 s");
        is_int(st.total_wait, S(34), "stats: total wait");
        ok(st.members == 1 && st.available == 0 && st.talking == 1, "stats: members, available, talking");
        is_int(acd_queue_length(a), 0, "stats: queue length 0");
        is_int(acd_operators_available(a), 0, "stats: no operator available");
        a = acd_free(a);
}

static void test_recovery(void) {
        AcdConfig c = config();
        AcdState *a = NULL;
        AcdEvents ev = {};
        char out[2048];
        int r;

        if (acd_new(&c, &a) < 0)
                return (void) ok(0, "recovery: acd_new");
        (void) acd_add_queue(a, "vip", ACD_STRATEGY_TOP_DOWN);
        (void) acd_add_operator(a, "A", NULL, ACD_STATUS_AVAILABLE, S(100), NULL);
        (void) acd_add_operator(a, "B", NULL, ACD_STATUS_AVAILABLE, S(100), NULL);
        (void) acd_add_operator(a, "C", NULL, ACD_STATUS_PAUSED, S(100), NULL);
        (void) acd_add_operator(a, "D", (const char *const[]) { "vip", NULL }, ACD_STATUS_AVAILABLE, S(100), NULL);

        r = acd_restore_call(a, &(AcdCallRestore) { .id = "1", .state = ACD_CALL_ANSWERED, .operator = "A",
                                                    .arrived_at = S(10), .answered_at = S(12) }, S(100), &ev);
        is_int(r, 0, "recovery: answered call restored");
        render_events(&ev, out, sizeof(out));
        is_str(out, "state:A=busy/available:1", "recovery: its operator is busy");
        acd_events_clear(&ev);

        r = acd_restore_call(a, &(AcdCallRestore) { .id = "2", .state = ACD_CALL_QUEUED, .arrived_at = S(20) }, S(100), &ev);
        is_int(r, 0, "recovery: queued call restored");
        r = acd_restore_call(a, &(AcdCallRestore) { .id = "3", .state = ACD_CALL_RINGING, .operator = "B",
                                                    .arrived_at = S(30) }, S(100), &ev);
        is_int(r, 0, "recovery: ringing call restored");
        r = acd_restore_call(a, &(AcdCallRestore) { .id = "4", .state = ACD_CALL_QUEUED, .arrived_at = S(40) }, S(100), &ev);
        is_int(r, 0, "recovery: second queued call restored");
        r = acd_restore_call(a, &(AcdCallRestore) { .id = "5", .queue = "vip", .state = ACD_CALL_QUEUED,
                                                    .arrived_at = S(50) }, S(100), &ev);
        is_int(r, 0, "recovery: call of another queue restored");
        is_int(ev.n, 0, "recovery: restoring waiting calls reports nothing");

        is_str(errno_name(acd_restore_call(a, &(AcdCallRestore) { .id = "2", .state = ACD_CALL_QUEUED }, S(100), NULL)),
               "!EEXIST", "recovery: duplicate id refused");
        is_str(errno_name(acd_restore_call(a, &(AcdCallRestore) { .id = "6", .state = ACD_CALL_ANSWERED,
                                                                  .operator = "A" }, S(100), NULL)),
               "!EBUSY", "recovery: operator busy twice refused");
        is_str(errno_name(acd_restore_call(a, &(AcdCallRestore) { .id = "6", .state = ACD_CALL_ANSWERED,
                                                                  .operator = "Z" }, S(100), NULL)),
               "!ENOENT", "recovery: unknown operator refused");
        is_str(errno_name(acd_restore_call(a, &(AcdCallRestore) { .id = "6", .state = ACD_CALL_ANSWERED }, S(100), NULL)),
               "!ENOENT", "recovery: answered call without operator refused");
        is_str(errno_name(acd_restore_call(a, &(AcdCallRestore) { .id = "6", .queue = "zz", .state = ACD_CALL_QUEUED }, S(100), NULL)),
               "!ENXIO", "recovery: unknown queue refused");
        is_str(errno_name(acd_restore_call(a, &(AcdCallRestore) { .id = "", .state = ACD_CALL_QUEUED }, S(100), NULL)),
               "!EINVAL", "recovery: bad id refused");
        is_str(errno_name(acd_restore_call(a, &(AcdCallRestore) { .id = "6", .state = 7 }, S(100), NULL)),
               "!EINVAL", "recovery: bad state refused");

        /* Only B and D are eligible (A busy, C paused): calls 2 and 5. */
        acd_restore_done(a, S(100), &ev);
        render_lines(&ev, out, sizeof(out));
        is_str(out, "Call 2 ringing for operator B|Call 5 ringing for operator D", "recovery: waiting calls offered");
        render_calls(a, S(100), 0, SIZE_MAX, out, sizeof(out));
        is_str(out, "3=queued/70 4=queued/60 2=ringing@B/80 5=ringing@D/50 1=answered@A/2",
               "recovery: original arrival times and order kept");
        is_int(acd_queue_length(a), 2, "recovery: queue length");

        acd_events_clear(&ev);
        (void) acd_hangup(a, "1", S(101), &ev);
        render_lines(&ev, out, sizeof(out));
        is_str(out, "Call 1 finished and operator A available|Call 3 ringing for operator A",
               "recovery: restored call finishes like any other");

        acd_events_done(&ev);
        acd_free(a);
}

static void test_format(void) {
        static const struct {
                AcdEventKind kind;
                const char *call, *op, *line;
        } table[] = {
                { ACD_EVENT_RECEIVED, "1", "", "Call 1 received" },
                { ACD_EVENT_RINGING, "1", "A", "Call 1 ringing for operator A" },
                { ACD_EVENT_QUEUED, "3", "", "Call 3 waiting in queue" },
                { ACD_EVENT_ANSWERED, "1", "A", "Call 1 answered by operator A" },
                { ACD_EVENT_REJECTED, "2", "B", "Call 2 rejected by operator B" },
                { ACD_EVENT_FINISHED, "1", "A", "Call 1 finished and operator A available" },
                { ACD_EVENT_MISSED, "9", "A", "Call 9 missed" },
                { ACD_EVENT_IGNORED, "2", "B", "Call 2 ignored by operator B" },
                { ACD_EVENT_OPERATOR_STATE, "1", "A", "" },
        };
        AcdEvent e = {};
        AcdEvents ev = {};
        char buf[ACD_MESSAGE_MAX], **l = NULL;
        char longid[ACD_ID_MAX + 1];

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                int r;

                e = (AcdEvent) { .kind = table[i].kind };
                snprintf(e.call, sizeof(e.call), "%s", table[i].call);
                snprintf(e.operator, sizeof(e.operator), "%s", table[i].op);
                r = acd_event_format_message(&e, buf, sizeof(buf));
                is_str(buf, table[i].line, "format: %s", acd_event_kind_to_string(table[i].kind));
                is_int(r, strlen(table[i].line), "format: %s length", acd_event_kind_to_string(table[i].kind));
        }

        /* The longest line fits ACD_MESSAGE_MAX; a short buffer is refused. */
        memset(longid, 'x', ACD_ID_MAX);
        longid[ACD_ID_MAX] = 0;
        e = (AcdEvent) { .kind = ACD_EVENT_FINISHED };
        memcpy(e.call, longid, sizeof(longid));
        memcpy(e.operator, longid, sizeof(longid));
        ok(acd_event_format_message(&e, buf, sizeof(buf)) > 0, "format: longest ids fit");
        is_int(acd_event_format_message(&e, buf, 20), -ENOBUFS, "format: short buffer");
        e.kind = _ACD_EVENT_KIND_MAX;
        is_int(acd_event_format_message(&e, buf, sizeof(buf)), -EINVAL, "format: bad kind");

        /* acd_events_to_strv skips records without a line, from an offset. */
        ev.events = (AcdEvent[]) {
                { .kind = ACD_EVENT_RECEIVED, .call = "1" },
                { .kind = ACD_EVENT_RINGING, .call = "1", .operator = "A" },
                { .kind = ACD_EVENT_OPERATOR_STATE, .operator = "A" },
                { .kind = ACD_EVENT_QUEUED, .call = "2" },
        };
        ev.n = 4;
        if (acd_events_to_strv(&ev, 1, &l) == 0) {
                ok(l[0] && l[1] && !l[2], "to_strv: two lines");
                is_str(l[0], "Call 1 ringing for operator A", "to_strv: first");
                is_str(l[1], "Call 2 waiting in queue", "to_strv: second");
                strv_free(l);
        } else
                ok(0, "to_strv");

        is_str(acd_event_topic(ACD_EVENT_IGNORED), "router.call.ignored", "topic: ignored");
        is_str(acd_event_topic(ACD_EVENT_OPERATOR_STATE), "router.operator.state", "topic: operator state");
        ok(acd_event_topic(_ACD_EVENT_KIND_MAX) == NULL, "topic: out of range");
}

static void test_names_and_ids(void) {
        static const struct {
                const char *id;
                bool valid;
        } ids[] = {
                { "1", true },
                { "A", true },
                { "call-42_x.y@z", true },
                { "~!\"#$%&'()*+,", true },
                { "", false },
                { "a b", false },
                { "a\tb", false },
                { "caf\xc3\xa9", false },
                { "\x7f", false },
                { "1234567890123456789012345678901234567890123456789012345678901234", true },
                { "12345678901234567890123456789012345678901234567890123456789012345", false },
        };
        AcdConfig c = config();
        AcdState *a = NULL;

        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                is_int(acd_id_is_valid(ids[i].id), ids[i].valid, "id '%s' valid=%d", ids[i].id, ids[i].valid);
        ok(!acd_id_is_valid(NULL), "id NULL invalid");

        for (int s = 0; s < _ACD_STRATEGY_MAX; s++)
                is_int(acd_strategy_from_string(acd_strategy_to_string(s)), s, "strategy %s round trip",
                       acd_strategy_to_string(s));
        is_int(acd_strategy_from_string("fastest"), -EINVAL, "unknown strategy");
        ok(acd_strategy_names[_ACD_STRATEGY_MAX] == NULL, "strategy names NULL-terminated");
        is_int(acd_operator_status_from_string("paused"), ACD_STATUS_PAUSED, "status from string");
        is_int(acd_operator_status_from_string("busy"), -EINVAL, "busy is not a status");
        is_str(acd_operator_state_to_string(ACD_OPERATOR_WRAP_UP), "wrap-up", "state wrap-up");
        is_int(acd_call_state_from_string("answered"), ACD_CALL_ANSWERED, "call state from string");

        c.ring_timeout = 0;
        is_int(acd_new(&c, &a), -EINVAL, "config: ring timeout 0 refused");
        c = config();
        c.wrap_up = USEC_INFINITY;
        is_int(acd_new(&c, &a), -EINVAL, "config: infinite wrap-up refused");
        c = config();
        c.strategy = 99;
        is_int(acd_new(&c, &a), -EINVAL, "config: bad strategy refused");
        ok(a == NULL, "config: nothing returned on failure");
        ok(acd_free(NULL) == NULL, "acd_free(NULL)");
}

/* Ring forever; time that runs backwards is clamped. */
static void test_time(void) {
        AcdConfig c = config();
        static const Step steps[] = {
                { S(0), "add A", "" },
                { S(100), "call 1", "Call 1 received|Call 1 ringing for operator A" },
                { S(100), "deadline", "inf" },
                { S(1000), "timeout", "" },
                { S(50), "call 2", "Call 2 received|Call 2 waiting in queue" },
                /* Call 2 arrived at the clamped 1000. */
                { S(60), "calls", "2=queued/0 1=ringing@A/900" },
                { S(1001), "calls", "2=queued/1 1=ringing@A/901" },
        };

        c.ring_timeout = USEC_INFINITY;
        RUN("ring forever, clock backwards", &c, steps);
}

/*
 * Random operations, checking the invariants that tie the indexes together
 * after every step: no queue has both a waiting call and an eligible member,
 * counters match the listings, operators and calls point at each other, and
 * the next deadline is the earliest of the operators'.
 */
static uint64_t test_rng = 0x1234567;
static unsigned rnd(unsigned n) {
        test_rng ^= test_rng << 13;
        test_rng ^= test_rng >> 7;
        test_rng ^= test_rng << 17;
        return (unsigned) (test_rng % n);
}

static bool check_invariants(AcdState *a, usec_t now, char *why, size_t size) {
        AcdOperatorInfo *ops = NULL;
        AcdCallInfo *calls = NULL;
        size_t n_ops = 0, n_calls = 0, available = 0, waiting = 0;
        usec_t min_deadline = USEC_INFINITY;
        bool good = true;

        if (acd_list_operators(a, &ops, &n_ops) < 0 || acd_list_calls(a, now, &calls, &n_calls) < 0) {
                snprintf(why, size, "listing failed");
                free(ops);
                return false;
        }
#define FAIL(...) do { snprintf(why, size, __VA_ARGS__); good = false; goto out; } while (0)
        for (size_t q = 0; q < acd_queue_count(a); q++) {
                AcdQueueStats st;

                (void) acd_queue_get_stats(a, acd_queue_name(a, q), now, &st);
                if (st.waiting > 0 && st.available > 0)
                        FAIL("queue %s has %zu waiting and %zu available", acd_queue_name(a, q), st.waiting, st.available);
                waiting += st.waiting;
        }
        if (waiting != acd_queue_length(a))
                FAIL("queue length %zu != %zu", acd_queue_length(a), waiting);
        if (n_calls != acd_call_count(a) || n_ops != acd_operator_count(a))
                FAIL("counts");

        for (size_t i = 0; i < n_ops; i++) {
                AcdCallInfo ci;

                if (ops[i].state == ACD_OPERATOR_AVAILABLE)
                        available++;
                if (ops[i].deadline < min_deadline)
                        min_deadline = ops[i].deadline;
                if ((ops[i].state == ACD_OPERATOR_RINGING || ops[i].state == ACD_OPERATOR_BUSY) != (ops[i].call != NULL))
                        FAIL("operator %s state %s call %s", ops[i].id, acd_operator_state_to_string(ops[i].state),
                             ops[i].call ?: "-");
                if ((ops[i].state == ACD_OPERATOR_RINGING || ops[i].state == ACD_OPERATOR_WRAP_UP ||
                     ops[i].state == ACD_OPERATOR_DELAYED) != (ops[i].deadline != USEC_INFINITY))
                        FAIL("operator %s state %s deadline", ops[i].id, acd_operator_state_to_string(ops[i].state));
                if (!ops[i].call)
                        continue;
                if (acd_get_call(a, ops[i].call, now, &ci) < 0 || !ci.operator || strcmp(ci.operator, ops[i].id) != 0 ||
                    ci.state != (ops[i].state == ACD_OPERATOR_RINGING ? ACD_CALL_RINGING : ACD_CALL_ANSWERED))
                        FAIL("operator %s and call %s disagree", ops[i].id, ops[i].call);
        }
        if (available != acd_operators_available(a))
                FAIL("available %zu != %zu", acd_operators_available(a), available);

        /* Each queue's member and eligible counts agree with the
         * operators' queue lists (membership changes keep them in step). */
        for (size_t q = 0; q < acd_queue_count(a); q++) {
                const char *name = acd_queue_name(a, q);
                size_t members = 0, eligible = 0;
                AcdQueueStats st;

                for (size_t i = 0; i < n_ops; i++) {
                        const char **l = NULL;

                        if (acd_get_operator_queues(a, ops[i].id, &l) < 0)
                                FAIL("operator queues of %s", ops[i].id);
                        for (size_t j = 0; l[j]; j++)
                                if (strcmp(l[j], name) == 0) {
                                        members++;
                                        if (ops[i].state == ACD_OPERATOR_AVAILABLE)
                                                eligible++;
                                }
                        free(l);
                }
                (void) acd_queue_get_stats(a, name, now, &st);
                if (st.members != members || st.available != eligible)
                        FAIL("queue %s: %zu/%zu members, %zu/%zu available", name, st.members, members,
                             st.available, eligible);
        }
        if (min_deadline != acd_next_deadline(a))
                FAIL("next deadline");

        for (size_t i = 0; i < n_calls; i++) {
                AcdOperatorInfo oi;

                if (i > 0 && calls[i].state < calls[i - 1].state)
                        FAIL("call listing not grouped by state");
                if (i > 0 && calls[i].state == calls[i - 1].state && calls[i].arrived_at < calls[i - 1].arrived_at)
                        FAIL("call listing not in arrival order");
                if ((calls[i].state == ACD_CALL_QUEUED) != (calls[i].operator == NULL))
                        FAIL("call %s state/operator", calls[i].id);
                if (calls[i].operator &&
                    (acd_get_operator(a, calls[i].operator, &oi) < 0 || !oi.call || strcmp(oi.call, calls[i].id) != 0))
                        FAIL("call %s and operator %s disagree", calls[i].id, calls[i].operator);
        }
out:
#undef FAIL
        free(ops);
        free(calls);
        return good;
}

static void test_random_walk(void) {
        static const char *const opnames[] = { "A", "B", "C", "D", "E", "F" };
        unsigned failures = 0, steps = 0;

        for (int variant = 0; variant < 2 * _ACD_STRATEGY_MAX; variant++) {
                AcdConfig c = config();
                AcdState *a = NULL;
                usec_t now = 0;
                char why[256] = "";

                c.strategy = variant % _ACD_STRATEGY_MAX;
                c.seed = (uint64_t) variant;
                if (variant >= _ACD_STRATEGY_MAX) {
                        c.reject_delay = S(2);
                        c.no_answer_delay = S(3);
                        c.wrap_up = S(1);
                        c.max_no_answer = 2;
                        c.ring_timeout = S(4);
                }
                if (acd_new(&c, &a) < 0)
                        return (void) ok(0, "random walk: acd_new");
                (void) acd_add_queue(a, "q2", (variant + 1) % _ACD_STRATEGY_MAX);
                for (size_t i = 0; i < ELEMENTSOF(opnames); i++)
                        (void) acd_add_operator(a, opnames[i], i % 3 == 0 ? (const char *const[]) { "q2", NULL }
                                                               : i % 3 == 1 ? NULL
                                                                            : (const char *const[]) { "default", "q2", NULL },
                                                ACD_STATUS_AVAILABLE, 0, NULL);

                for (int i = 0; i < 3000 && failures == 0; i++, steps++) {
                        char id[8];
                        const char *op = opnames[rnd(ELEMENTSOF(opnames))];
                        AcdEvents ev = {};

                        snprintf(id, sizeof(id), "%u", rnd(40));
                        now += rnd(3) * USEC_PER_SEC / 2;
                        switch (rnd(10)) {
                        case 0: case 1: case 2:
                                (void) acd_place_call(a, id, rnd(2) ? "q2" : NULL, now, &ev);
                                break;
                        case 3:
                                (void) acd_answer(a, op, now, &ev, NULL);
                                break;
                        case 4:
                                (void) acd_reject(a, op, now, &ev, NULL);
                                break;
                        case 5: case 6:
                                (void) acd_hangup(a, id, now, &ev);
                                break;
                        case 7:
                                (void) acd_set_status(a, op, rnd(4) == 0 ? ACD_STATUS_PAUSED : ACD_STATUS_AVAILABLE, now, &ev);
                                break;
                        case 8:
                                if (rnd(10) == 0) {
                                        if (acd_remove_operator(a, op, now, &ev) >= 0)
                                                (void) acd_add_operator(a, op, rnd(2) ? NULL : (const char *const[]) { "q2", NULL },
                                                                        ACD_STATUS_AVAILABLE, now, &ev);
                                } else if (rnd(4) == 0) {
                                        /* A reload: new queue sets, strategies,
                                         * sometimes q2 dropped and made again. */
                                        static const char *const only_q2[] = { "q2", NULL };
                                        static const char *const both[] = { "default", "q2", NULL };
                                        static const char *const both_rev[] = { "q2", "default", NULL };
                                        static const char *const *const sets[] = { NULL, only_q2, both, both_rev };

                                        (void) acd_set_operator_queues(a, op, sets[rnd(ELEMENTSOF(sets))], now, &ev);
                                        if (rnd(4) == 0)
                                                (void) acd_set_queue_strategy(a, rnd(2) ? "q2" : NULL,
                                                                              rnd(_ACD_STRATEGY_MAX));
                                        if (rnd(8) == 0) {
                                                for (size_t k = 0; k < ELEMENTSOF(opnames); k++)
                                                        (void) acd_set_operator_queues(a, opnames[k], NULL, now, &ev);
                                                if (acd_remove_queue(a, "q2", now, &ev) < 0 ||
                                                    acd_add_queue(a, "q2", rnd(_ACD_STRATEGY_MAX)) < 0) {
                                                        failures++;
                                                        diag("variant %d step %d: removing q2 failed", variant, i);
                                                }
                                        }
                                }
                                break;
                        default:
                                (void) acd_timeout(a, now, &ev);
                        }
                        if (ev.lost > 0 || !check_invariants(a, now, why, sizeof(why))) {
                                failures++;
                                diag("variant %d step %d: %s", variant, i, why);
                        }
                        acd_events_done(&ev);
                }
                acd_free(a);
        }
        is_int(failures, 0, "random walk: invariants held over %u steps, 10 configurations", steps);
}

static double elapsed(const struct timespec *t0) {
        struct timespec t1;

        clock_gettime(CLOCK_MONOTONIC, &t1);
        return (double) (t1.tv_sec - t0->tv_sec) + (double) (t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* 10,000 operators, 100,000 calls: built fast and small. */
static void test_scale(void) {
        enum { OPS = 10000, CALLS = 100000 };
        AcdConfig c = config();
        AcdState *a = NULL;
        AcdEvents ev = {};
        struct timespec t0;
        struct mallinfo2 m0, m1;
        size_t bytes;
        char id[32];
        unsigned bad = 0;
        int r;

        m0 = mallinfo2();
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (acd_new(&c, &a) < 0)
                return (void) ok(0, "scale: acd_new");
        for (unsigned i = 0; i < OPS; i++) {
                snprintf(id, sizeof(id), "op%05u", i);
                if (acd_add_operator(a, id, NULL, ACD_STATUS_AVAILABLE, 0, NULL) < 0)
                        bad++;
        }
        for (unsigned i = 0; i < CALLS; i++) {
                snprintf(id, sizeof(id), "call-%06u", i);
                acd_events_clear(&ev);
                r = acd_place_call(a, id, NULL, S(1), &ev);
                if (r != (i < OPS ? ACD_CALL_RINGING : ACD_CALL_QUEUED))
                        bad++;
        }
        diag("scale: %u operators and %u calls placed in %.3f s", OPS, CALLS, elapsed(&t0));
        m1 = mallinfo2();
        bytes = m1.uordblks > m0.uordblks ? m1.uordblks - m0.uordblks : 0;
        is_int(bad, 0, "scale: every operator added, first %u calls ringing, the rest queued", OPS);
        is_int(acd_queue_length(a), CALLS - OPS, "scale: queue length");
        if (bytes > 0) {
                diag("scale: %zu bytes in use, %zu bytes per call (operators included)", bytes, bytes / CALLS);
                ok(bytes < 64u * 1024 * 1024 / 2, "scale: state uses %zu MiB, well under the 64 MiB budget",
                   bytes >> 20);
        } else
                ok(1, "scale: # SKIP malloc statistics unavailable (sanitizer build)");

        /* Every ring times out at the same instant: one group of 10,000
         * operators freed together; each refused call goes back in front
         * and is offered to another operator. */
        clock_gettime(CLOCK_MONOTONIC, &t0);
        acd_events_clear(&ev);
        r = acd_timeout(a, S(1) + c.ring_timeout, &ev);
        diag("scale: %d ring timeouts handled in %.3f s", r, elapsed(&t0));
        is_int(r, OPS, "scale: one timeout per ringing operator");
        is_int(acd_queue_length(a), CALLS - OPS, "scale: refused calls back in the queue, others ringing");

        /* Hang up every call, oldest first: each frees an operator that
         * takes the next. */
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (unsigned i = 0; i < CALLS; i++) {
                snprintf(id, sizeof(id), "call-%06u", i);
                acd_events_clear(&ev);
                if (acd_hangup(a, id, S(100), &ev) != ACD_EVENT_MISSED)
                        bad++;
        }
        diag("scale: %u hangups in %.3f s", CALLS, elapsed(&t0));
        is_int(bad, 0, "scale: every call missed");
        is_int(acd_call_count(a), 0, "scale: no call left");
        is_int(acd_operators_available(a), OPS, "scale: every operator available again");
        acd_events_done(&ev);
        acd_free(a);
}

int main(void) {
        test_classic();
        test_events();
        test_reject();
        test_reject_delay();
        test_same_instant();
        test_wrap_up();
        test_no_answer();
        test_strategies();
        test_round_robin_cycle();
        test_refuser_last();
        test_heap_order();
        test_random();
        test_queues();
        test_status();
        test_max_queued();
        test_reload_settings();
        test_reload_membership();
        test_reload_keys_kept();
        test_reload_remove_queue();
        test_stats();
        test_recovery();
        test_format();
        test_names_and_ids();
        test_time();
        test_random_walk();
        test_scale();
        return done_testing();
}
