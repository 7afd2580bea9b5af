/* SPDX-License-Identifier: MIT */
/*
 * The pure half of routerd's store (daemons/routerd/record.c), table-driven:
 * folding the ACD's outcome records into a call record, the COPY text row,
 * the JSON parameters of the operator and queue upserts, and the parsing of
 * the rows read at start.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "daemons/routerd/record.h"
#include "libshared/cleanup.h"
#include "libshared/json-util.h"
#include "tests/tap.h"


/* 2026-11-22T10:00:00Z */
#define T0 UINT64_C(1795341600000000)
#define S(n) ((usec_t) (n) * USEC_PER_SEC)

static AcdEvent ev(AcdEventKind kind, const char *op, usec_t time, usec_t waited) {
        AcdEvent e = { .kind = kind, .time = time, .waited = waited };

        snprintf(e.call, sizeof e.call, "c1");
        snprintf(e.queue, sizeof e.queue, "sales");
        snprintf(e.operator, sizeof e.operator, "%s", op ? op : "");
        return e;
}

/* --- folding ------------------------------------------------------------------ */

typedef struct FoldCase {
        const char *name;
        AcdEvent events[8];
        size_t n;
        /* expected */
        RecordState state;
        const char *operator;
        usec_t rang, answered, ended, waited;
        unsigned offers, rejects, ignores;
        bool live;
} FoldCase;

static void test_fold(void) {
        const usec_t INF = USEC_INFINITY;
        const FoldCase cases[] = {
                { "received only", { }, 0, RECORD_QUEUED, "", INF, INF, INF, INF, 0, 0, 0, true },
                { "ringing", { ev(ACD_EVENT_RINGING, "A", T0 + 1, 0) }, 1,
                  RECORD_RINGING, "A", T0 + 1, INF, INF, INF, 1, 0, 0, true },
                { "answered, then finished: the wait is until the answer",
                  { ev(ACD_EVENT_RINGING, "A", T0 + 1, 0), ev(ACD_EVENT_ANSWERED, "A", T0 + S(3), S(3)),
                    ev(ACD_EVENT_FINISHED, "A", T0 + S(60), S(3)) }, 3,
                  RECORD_FINISHED, "A", T0 + 1, T0 + S(3), T0 + S(60), S(3), 1, 0, 0, false },
                { "rejected, ignored, offered again: first ring kept, counts",
                  { ev(ACD_EVENT_RINGING, "A", T0 + 1, 0), ev(ACD_EVENT_REJECTED, "A", T0 + 2, 0),
                    ev(ACD_EVENT_RINGING, "B", T0 + 3, 0), ev(ACD_EVENT_IGNORED, "B", T0 + 4, 0),
                    ev(ACD_EVENT_QUEUED, NULL, T0 + 4, 0) }, 5,
                  RECORD_QUEUED, "B", T0 + 1, INF, INF, INF, 2, 1, 1, true },
                { "missed while queued: waited until the hangup",
                  { ev(ACD_EVENT_MISSED, NULL, T0 + S(9), S(9)) }, 1,
                  RECORD_MISSED, "", INF, INF, T0 + S(9), S(9), 0, 0, 0, false },
                { "missed while ringing keeps the operator",
                  { ev(ACD_EVENT_RINGING, "A", T0 + 5, 0), ev(ACD_EVENT_MISSED, "A", T0 + 7, 7) }, 2,
                  RECORD_MISSED, "A", T0 + 5, INF, T0 + 7, 7, 1, 0, 0, false },
                { "an operator state event changes nothing",
                  { ev(ACD_EVENT_OPERATOR_STATE, "A", T0 + 5, 0) }, 1,
                  RECORD_QUEUED, "", INF, INF, INF, INF, 0, 0, 0, true },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const FoldCase *t = &cases[i];
                AcdEvent rcv = ev(ACD_EVENT_RECEIVED, NULL, T0, 0);
                CallRecord c;
                bool ended = false;

                record_call_init(&c, 42, &rcv);
                for (size_t j = 0; j < t->n; j++)
                        ended = record_call_fold(&c, &t->events[j]);
                ok(c.seq == 42 && strcmp(c.id, "c1") == 0 && strcmp(c.queue, "sales") == 0 && c.arrived == T0,
                   "%s: seq, id, queue, arrival", t->name);
                is_str(record_state_to_string(c.state), record_state_to_string(t->state), "%s: state", t->name);
                is_str(c.operator, t->operator, "%s: operator", t->name);
                ok(c.rang == t->rang && c.answered == t->answered && c.ended == t->ended && c.waited == t->waited,
                   "%s: times (rang %llu answered %llu ended %llu waited %llu)", t->name,
                   (unsigned long long) c.rang, (unsigned long long) c.answered,
                   (unsigned long long) c.ended, (unsigned long long) c.waited);
                ok(c.offers == t->offers && c.rejects == t->rejects && c.ignores == t->ignores,
                   "%s: offers %u rejects %u ignores %u", t->name, c.offers, c.rejects, c.ignores);
                ok(c.live == t->live && ended == !t->live, "%s: live %d", t->name, c.live);
        }
}

/* --- COPY rows -------------------------------------------------------------------- */

static void test_render(void) {
        const struct {
                const char *name;
                CallRecord c;
                const char *row;
        } cases[] = {
                { "a new call: NULLs, default queue for an empty one",
                  { .seq = 7, .id = "c7", .queue = "", .state = RECORD_QUEUED, .arrived = T0 + 1,
                    .rang = USEC_INFINITY, .answered = USEC_INFINITY, .ended = USEC_INFINITY,
                    .waited = USEC_INFINITY, .live = true },
                  "7\tc7\tdefault\tqueued\t\\N\t2026-11-22T10:00:00.000001Z\t\\N\t\\N\t\\N\t\\N\t\\N\t0\t0\t0\n" },
                { "a finished call, exact microseconds",
                  { .seq = 18446744073709551615ULL, .id = "c\\8", .queue = "sales", .operator = "A",
                    .state = RECORD_FINISHED, .arrived = T0, .rang = T0 + 5, .answered = T0 + S(3),
                    .ended = T0 + S(60), .waited = S(3), .offers = 2, .rejects = 1, .ignores = 4294967295U },
                  "18446744073709551615\tc\\\\8\tsales\tfinished\tA\t2026-11-22T10:00:00.000000Z\t"
                  "2026-11-22T10:00:00.000005Z\t2026-11-22T10:00:03.000000Z\t2026-11-22T10:01:00.000000Z\t"
                  "finished\t3000000 microseconds\t2\t1\t4294967295\n" },
                { "a missed call",
                  { .seq = 1, .id = "m", .queue = "q", .state = RECORD_MISSED, .arrived = T0,
                    .rang = USEC_INFINITY, .answered = USEC_INFINITY, .ended = T0 + 9, .waited = 9 },
                  "1\tm\tq\tmissed\t\\N\t2026-11-22T10:00:00.000000Z\t\\N\t\\N\t2026-11-22T10:00:00.000009Z\t"
                  "missed\t9 microseconds\t0\t0\t0\n" },
        };
        _cleanup_(freep) char *all = NULL;
        size_t all_len = 0, all_alloc = 0;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) char *buf = NULL;
                size_t len = 0, alloc = 0;

                is_int(record_call_render(&buf, &len, &alloc, &cases[i].c), 0, "%s: rendered", cases[i].name);
                is_str(buf, cases[i].row, "%s: row", cases[i].name);
                ok(buf && len == strlen(buf), "%s: length", cases[i].name);
                (void) record_call_render(&all, &all_len, &all_alloc, &cases[i].c);
        }
        ok(all && strlen(all) == all_len &&
           all_len == strlen(cases[0].row) + strlen(cases[1].row) + strlen(cases[2].row),
           "rows append one after the other");
}

/* --- upsert parameters ----------------------------------------------------------- */

static void test_upsert(void) {
        char *sales_support[] = { (char *) "sales", (char *) "support", NULL };
        char *none[] = { NULL };
        OperatorRecord a = { .id = "o'brien", .queues = sales_support, .position = 3,
                             .status = ACD_STATUS_PAUSED, .queues_set = true };
        OperatorRecord b = { .id = "B\\x", .queues = none, .position = 4, .status = ACD_STATUS_AVAILABLE,
                             .queues_set = true };
        OperatorRecord c = { .id = "C", .queues = NULL, .position = 5, .status = ACD_STATUS_OFFLINE,
                             .removed = true };
        OperatorRecord *ops[] = { &a, &b, &c };
        QueueRecord qs[] = { { (char *) "sales\"x", ACD_STRATEGY_ROUND_ROBIN }, { (char *) "default",
                                                                                  ACD_STRATEGY_LONGEST_IDLE } };
        _cleanup_(freep) char *q = NULL, *o = NULL, *q0 = NULL, *o0 = NULL;

        is_int(record_render_upsert(qs, 2, ops, 3, &q, &o), 0, "upsert parameters rendered");
        is_str(q, "[{\"name\":\"sales\\\"x\",\"strategy\":\"round-robin\"},"
                  "{\"name\":\"default\",\"strategy\":\"longest-idle\"}]", "queues parameter (JSON, escaped)");
        is_str(o, "[{\"queues\":[\"sales\",\"support\"],\"id\":\"o'brien\",\"position\":3,\"status\":\"paused\","
                  "\"queues_set\":true,\"removed\":false},"
                  "{\"queues\":[],\"id\":\"B\\\\x\",\"position\":4,\"status\":\"available\","
                  "\"queues_set\":true,\"removed\":false},"
                  "{\"queues\":[\"default\"],\"id\":\"C\",\"position\":5,\"status\":\"offline\","
                  "\"queues_set\":false,\"removed\":true}]",
               "operators parameter: lists kept, empty = every queue, none = default");
        is_int(record_render_upsert(NULL, 0, NULL, 0, &q0, &o0), 0, "empty batch");
        is_str(q0, "[]", "  no queues");
        is_str(o0, "[]", "  no operators");
        ok(strstr(record_upsert_sql, "$1::json") && strstr(record_upsert_sql, "$2::json") &&
           !strchr(record_upsert_sql, '\''), "the statement takes parameters and quotes nothing");
}

/* --- the start's rows ------------------------------------------------------------ */

static void test_parse_operator(void) {
        const struct {
                const char *v[6];
                int r;
                const char *queues;     /* joined with "," */
                bool queues_set, removed;
                int64_t position;
        } cases[] = {
                { { "A", "available", "[\"default\"]", "f", "1", "f" }, 0, "default", false, false, 1 },
                { { "B", "paused", "[\"sales\", \"support\"]", "t", "9000000000", "f" }, 0, "sales,support",
                  false, true, INT64_C(9000000000) },
                { { "C", "offline", "[]", "f", "2", "t" }, 0, "", true, false, 2 },
                { { "D", "available", "[\"sales\"]", "f", "3", "t" }, 0, "sales", true, false, 3 },
                /* malformed */
                { { "E", "available", "[]", "f", "3", "f" }, -EBADMSG },           /* empty, not set */
                { { "F", "sleepy", "[\"default\"]", "f", "3", "f" }, -EBADMSG },
                { { "a b", "available", "[\"default\"]", "f", "3", "f" }, -EBADMSG },
                { { "G", "available", "[\"a b\"]", "f", "3", "f" }, -EBADMSG },    /* bad queue name */
                { { "H", "available", "[\"x\",\"x\"]", "f", "3", "f" }, -EBADMSG }, /* twice */
                { { "I", "available", "[1]", "f", "3", "f" }, -EBADMSG },
                { { "J", "available", "{\"default\"}", "f", "3", "f" }, -EBADMSG }, /* array literal, not JSON */
                { { "K", "available", "[\"default\"]", "true", "3", "f" }, -EBADMSG },
                { { "L", "available", "[\"default\"]", "f", "-1", "f" }, -EBADMSG },
                { { "M", "available", NULL, "f", "3", "f" }, -EBADMSG },
                { { NULL, "available", "[\"default\"]", "f", "3", "f" }, -EBADMSG },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                StoreOperatorRow o = {};
                int64_t pos = -1;
                char joined[256] = "";
                int r = record_parse_operator(cases[i].v, &o, &pos);

                is_int(r, cases[i].r, "operator row %zu (%s)", i, cases[i].v[0] ? cases[i].v[0] : "NULL");
                if (r < 0) {
                        ok(!o.id && !o.queues, "  nothing kept");
                        continue;
                }
                for (char **q = o.queues; *q; q++)
                        snprintf(joined + strlen(joined), sizeof joined - strlen(joined), "%s%s",
                                 q == o.queues ? "" : ",", *q);
                is_str(joined, cases[i].queues, "  queues");
                ok(o.queues_set == cases[i].queues_set && o.removed == cases[i].removed &&
                   pos == cases[i].position && strcmp(o.id, cases[i].v[0]) == 0 &&
                   o.status == acd_operator_status_from_string(cases[i].v[1]),
                   "  id, status, set, removed, position");
                store_operator_row_done(&o);
        }
}

static void test_parse_call(void) {
        const struct {
                const char *v[11];
                int r;
                AcdCallState state;
                const char *operator;
                usec_t answered, rang;
        } cases[] = {
                { { "c1", "default", "queued", NULL, "1795341600000000", "5", "0", "0", "0", NULL, NULL }, 0,
                  ACD_CALL_QUEUED, "", USEC_INFINITY, USEC_INFINITY },
                { { "c2", "sales", "ringing", "B", "1795341600000001", "6", "2", "1", "0", NULL,
                    "1795341600000002" }, 0, ACD_CALL_RINGING, "B", USEC_INFINITY, T0 + 2 },
                { { "c3", "sales", "answered", "A", "1795341600000000", "7", "1", "0", "0", "1795341603000000",
                    "1795341600000001" }, 0, ACD_CALL_ANSWERED, "A", T0 + S(3), T0 + 1 },
                /* malformed */
                { { "c4", "sales", "answered", NULL, "1795341600000000", "7", "1", "0", "0", "1", NULL }, -EBADMSG },
                { { "c5", "sales", "answered", "A", "1795341600000000", "7", "1", "0", "0", NULL, NULL }, -EBADMSG },
                { { "c6", "sales", "finished", NULL, "1795341600000000", "7", "0", "0", "0", NULL, NULL }, -EBADMSG },
                { { "c7", "a b", "queued", NULL, "1795341600000000", "7", "0", "0", "0", NULL, NULL }, -EBADMSG },
                { { "c8", "sales", "queued", NULL, "-5", "7", "0", "0", "0", NULL, NULL }, -EBADMSG },
                { { "c9", "sales", "queued", NULL, "1 2", "7", "0", "0", "0", NULL, NULL }, -EBADMSG },
                { { "c10", "sales", "queued", NULL, "1", "7", "99999999999", "0", "0", NULL, NULL }, -EBADMSG },
                { { "c11", "sales", "queued", NULL, NULL, "7", "0", "0", "0", NULL, NULL }, -EBADMSG },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                StoreCallRow c = {};
                int r = record_parse_call(cases[i].v, &c);

                is_int(r, cases[i].r, "call row %s", cases[i].v[0]);
                if (r < 0) {
                        ok(!c.id && !c.queue && !c.operator, "  nothing kept");
                        continue;
                }
                ok(strcmp(c.id, cases[i].v[0]) == 0 && strcmp(c.queue, cases[i].v[1]) == 0 &&
                   c.state == cases[i].state && strcmp(c.operator, cases[i].operator) == 0,
                   "  id, queue, state, operator");
                ok(c.answered == cases[i].answered && c.rang == cases[i].rang &&
                   c.arrived == strtoull(cases[i].v[4], NULL, 10) && c.seq == strtoull(cases[i].v[5], NULL, 10) &&
                   c.offers == strtoul(cases[i].v[6], NULL, 10) && c.rejects == strtoul(cases[i].v[7], NULL, 10),
                   "  times and counts");
                store_call_row_done(&c);
        }
}

static void test_parse_counts(void) {
        const struct {
                const char *v[8];
                int r;
                AcdQueueCounters k;
        } cases[] = {
                { { "default", "10", "7", "5", "3", "2", "1", "21000000" }, 0, { 10, 7, 5, 3, 2, 1, S(21) } },
                { { "sales", "0", "0", "0", "0", "0", "0", "0" }, 0, { 0 } },
                { { "sales", "1", "1", "2", "0", "0", "0", "0" }, -EBADMSG },      /* within > answered */
                { { "sales", "1", "1", "1", "0", "0", "0", "1.5" }, -EBADMSG },
                { { "sales", "1", "1", "1", "0", "0", NULL, "1" }, -EBADMSG },
                { { "", "1", "1", "1", "0", "0", "0", "1" }, -EBADMSG },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                StoreQueueCountsRow q = {};
                int r = record_parse_queue_counts(cases[i].v, &q);

                is_int(r, cases[i].r, "counts row %zu", i);
                if (r < 0)
                        continue;
                ok(strcmp(q.queue, cases[i].v[0]) == 0 && memcmp(&q.counts, &cases[i].k, sizeof q.counts) == 0,
                   "  queue and counters");
                free(q.queue);
        }
}

/* The counters rebuilt at start give what the ACD reported before: the
 * same formulas (acd_queue_get_stats()) on the same counts. */
static void test_counters_into_acd(void) {
        AcdConfig cfg;
        AcdState *a = NULL, *b = NULL;
        AcdQueueStats before, after;
        AcdQueueCounters k;
        usec_t t = T0;

        acd_config_init(&cfg);
        is_int(acd_new(&cfg, &a), 0, "acd a");
        is_int(acd_new(&cfg, &b), 0, "acd b");
        (void) acd_add_operator(a, "A", NULL, ACD_STATUS_AVAILABLE, t, NULL);
        /* answered after 3 s, answered after 30 s, missed while ringing,
         * rejected once then answered */
        (void) acd_place_call(a, "c1", NULL, t, NULL);
        (void) acd_answer(a, "A", t + S(3), NULL, NULL);
        (void) acd_hangup(a, "c1", t + S(10), NULL);
        (void) acd_place_call(a, "c2", NULL, t + S(10), NULL);
        (void) acd_answer(a, "A", t + S(40), NULL, NULL);
        (void) acd_hangup(a, "c2", t + S(50), NULL);
        (void) acd_place_call(a, "c3", NULL, t + S(50), NULL);
        (void) acd_hangup(a, "c3", t + S(51), NULL);
        (void) acd_place_call(a, "c4", NULL, t + S(60), NULL);
        (void) acd_reject(a, "A", t + S(61), NULL, NULL);
        (void) acd_answer(a, "A", t + S(62), NULL, NULL);
        (void) acd_hangup(a, "c4", t + S(70), NULL);
        is_int(acd_queue_get_stats(a, NULL, t + S(70), &before), 0, "stats before");

        k = (AcdQueueCounters) {
                .received = before.received, .answered = before.answered,
                .answered_within = before.answered_within, .abandoned = before.abandoned,
                .rejected = before.rejected, .ignored = before.ignored, .total_wait = before.total_wait,
        };
        is_int(acd_queue_add_counters(b, NULL, &k), 0, "counters added");
        is_int(acd_queue_add_counters(b, "nope", &k), -ENXIO, "unknown queue: -ENXIO");
        is_int(acd_queue_get_stats(b, NULL, t + S(70), &after), 0, "stats after");
        ok(after.received == 4 && after.answered == 3 && after.answered_within == 2 && after.abandoned == 1 &&
           after.rejected == 1, "counts: 4 received, 3 answered, 2 within, 1 abandoned, 1 rejected");
        ok(after.average_wait == before.average_wait && after.service_level == before.service_level &&
           after.abandon_rate == before.abandon_rate && after.total_wait == before.total_wait,
           "average wait, service level and abandon rate as before");
        acd_free(a);
        acd_free(b);
}

int main(void) {
        plan_no_plan();
        test_fold();
        test_render();
        test_upsert();
        test_parse_operator();
        test_parse_call();
        test_parse_counts();
        test_counters_into_acd();
        return done_testing();
}
