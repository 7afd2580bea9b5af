/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "daemons/routerd/record.h"
#include "libshared/cleanup.h"
#include "libshared/db.h"
#include "libshared/json-util.h"
#include "libshared/time-util.h"

static const char *const record_state_names[_RECORD_STATE_MAX] = {
        [RECORD_QUEUED] = "queued",
        [RECORD_RINGING] = "ringing",
        [RECORD_ANSWERED] = "answered",
        [RECORD_FINISHED] = "finished",
        [RECORD_MISSED] = "missed",
};

const char *record_state_to_string(RecordState s) {
        return s >= 0 && s < _RECORD_STATE_MAX ? record_state_names[s] : NULL;
}

static void copy_id(char dst[static ACD_ID_MAX + 1], const char *src) {
        size_t n = strnlen(src, ACD_ID_MAX);

        memcpy(dst, src, n);
        dst[n] = '\0';
}

/* --- folding events --------------------------------------------------------- */

void record_call_init(CallRecord *c, uint64_t seq, const AcdEvent *e) {
        *c = (CallRecord) {
                .seq = seq,
                .state = RECORD_QUEUED,
                .arrived = e->time,
                .rang = USEC_INFINITY,
                .answered = USEC_INFINITY,
                .ended = USEC_INFINITY,
                .waited = USEC_INFINITY,
                .live = true,
        };
        copy_id(c->id, e->call);
        copy_id(c->queue, e->queue);
}

bool record_call_fold(CallRecord *c, const AcdEvent *e) {
        switch (e->kind) {
        case ACD_EVENT_RINGING:
                c->state = RECORD_RINGING;
                copy_id(c->operator, e->operator);
                if (c->rang == USEC_INFINITY)
                        c->rang = e->time;
                c->offers++;
                return false;
        case ACD_EVENT_QUEUED:
                c->state = RECORD_QUEUED;
                return false;
        case ACD_EVENT_ANSWERED:
                c->state = RECORD_ANSWERED;
                copy_id(c->operator, e->operator);
                c->answered = e->time;
                c->waited = e->waited;
                return false;
        case ACD_EVENT_REJECTED:
                c->rejects++;
                return false;
        case ACD_EVENT_IGNORED:
                c->ignores++;
                return false;
        case ACD_EVENT_FINISHED:
        case ACD_EVENT_MISSED:
                c->state = e->kind == ACD_EVENT_FINISHED ? RECORD_FINISHED : RECORD_MISSED;
                if (e->operator[0])
                        copy_id(c->operator, e->operator);
                c->ended = e->time;
                /* A finished call keeps its wait until the answer; a
                 * missed one waited until the hangup. */
                if (e->kind == ACD_EVENT_MISSED || c->waited == USEC_INFINITY)
                        c->waited = e->waited;
                c->live = false;
                return true;
        default:
                return false;
        }
}

void record_call_abandon(CallRecord *c, usec_t now) {
        c->state = RECORD_MISSED;
        c->ended = now;
        c->waited = now > c->arrived ? now - c->arrived : 0;
        c->live = false;
}

/* --- the COPY row ---------------------------------------------------------------- */

/* Numbers are formatted by hand (no vsnprintf(): this runs for every
 * changed call, thousands of times a second under load). */
static int copy_u64(char **buf, size_t *len, size_t *alloc, uint64_t v) {
        char digits[20], *p = digits + sizeof digits;

        do {
                *--p = (char) ('0' + v % 10);
                v /= 10;
        } while (v > 0);
        return db_copy_append(buf, len, alloc, p, (size_t) (digits + sizeof digits - p));
}

static int copy_text(char **buf, size_t *len, size_t *alloc, const char *s) {
        /* "" is SQL NULL (no operator yet). */
        if (!s || !*s)
                return db_copy_escape(buf, len, alloc, NULL, 0);
        return db_copy_escape(buf, len, alloc, s, strlen(s));
}

/* A time as an RFC 3339 literal with microseconds: exact, unlike
 * to_timestamp() on a double, so that the arrival order read back at a
 * restart is the order we had. */
static int copy_time(char **buf, size_t *len, size_t *alloc, usec_t t) {
        char ts[RFC3339_MAX];

        if (t == USEC_INFINITY)
                return db_copy_escape(buf, len, alloc, NULL, 0);
        return copy_text(buf, len, alloc, format_timestamp_rfc3339(ts, t));
}

int record_call_render(char **buf, size_t *len, size_t *alloc, const CallRecord *c) {
        size_t start = *len;
        int r;

#define TAB() (r >= 0 ? (r = db_copy_append(buf, len, alloc, "\t", 1)) : r)
        r = copy_u64(buf, len, alloc, c->seq);
        if (TAB() >= 0)
                r = copy_text(buf, len, alloc, c->id);
        if (TAB() >= 0)
                r = copy_text(buf, len, alloc, c->queue[0] ? c->queue : ACD_DEFAULT_QUEUE);
        if (TAB() >= 0)
                r = copy_text(buf, len, alloc, record_state_to_string(c->state));
        if (TAB() >= 0)
                r = copy_text(buf, len, alloc, c->operator);
        if (TAB() >= 0)
                r = copy_time(buf, len, alloc, c->arrived);
        if (TAB() >= 0)
                r = copy_time(buf, len, alloc, c->rang);
        if (TAB() >= 0)
                r = copy_time(buf, len, alloc, c->answered);
        if (TAB() >= 0)
                r = copy_time(buf, len, alloc, c->ended);
        if (TAB() >= 0)
                r = copy_text(buf, len, alloc,
                              c->live ? NULL : c->state == RECORD_FINISHED ? "finished" : "missed");
        if (TAB() >= 0) {
                if (c->waited == USEC_INFINITY)
                        r = db_copy_escape(buf, len, alloc, NULL, 0);
                else {
                        /* interval input takes "<n> microseconds": exact */
                        r = copy_u64(buf, len, alloc, c->waited);
                        if (r >= 0)
                                r = db_copy_append(buf, len, alloc, " microseconds", 13);
                }
        }
        if (TAB() >= 0)
                r = copy_u64(buf, len, alloc, c->offers);
        if (TAB() >= 0)
                r = copy_u64(buf, len, alloc, c->rejects);
        if (TAB() >= 0)
                r = copy_u64(buf, len, alloc, c->ignores);
        if (r >= 0)
                r = db_copy_append(buf, len, alloc, "\n", 1);
#undef TAB
        if (r < 0 && *buf) {
                /* No half row: the buffer goes to COPY as it is. */
                *len = start;
                (*buf)[start] = '\0';
        }
        return r < 0 ? -ENOMEM : 0;
}

/* --- operator and queue upserts --------------------------------------------------- */

/*
 * One statement, whatever the batch holds: the rows come as two JSON
 * parameters and json_to_recordset() turns them into rows, so nothing is
 * quoted by hand and PostgreSQL parses the same text every time. The
 * queues' upsert runs as a data-modifying CTE of the operators' (both
 * always run, whether or not the outer statement reads them). A queue
 * array keeps its order (WITH ORDINALITY).
 */
const char record_upsert_sql[] =
        "WITH q AS (INSERT INTO router_queues (name, strategy)"
        " SELECT name, strategy FROM json_to_recordset($1::json) AS x(name text, strategy text)"
        " ON CONFLICT (name) DO UPDATE SET strategy = EXCLUDED.strategy, updated = now())"
        " INSERT INTO router_operators (id, position, status, queues, queues_set, removed, updated)"
        " SELECT x.id, x.position, x.status,"
        "  ARRAY(SELECT e FROM json_array_elements_text(x.queues) WITH ORDINALITY AS t(e, i) ORDER BY i),"
        "  x.queues_set, x.removed, now()"
        " FROM json_to_recordset($2::json)"
        "  AS x(id text, position bigint, status text, queues json, queues_set boolean, removed boolean)"
        " ON CONFLICT (id) DO UPDATE SET position = EXCLUDED.position, status = EXCLUDED.status,"
        " queues = EXCLUDED.queues, queues_set = EXCLUDED.queues_set, removed = EXCLUDED.removed,"
        " updated = EXCLUDED.updated";

/* Add v (owned) to o. json-c keeps v only when the add succeeds. */
static int add(struct json_object *o, const char *key, struct json_object *v) {
        if (!v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int render_operator_json(struct json_object *array, const OperatorRecord *o) {
        struct json_object *obj, *queues;
        int r;

        obj = json_object_new_object();
        if (!obj || json_object_array_add(array, obj) < 0) {
                json_object_put(obj);
                return -ENOMEM;
        }
        queues = json_object_new_array();
        r = add(obj, "queues", queues);
        /* An operator without a list serves the default queue. */
        if (r >= 0 && (!o->queues || (!o->queues[0] && !o->queues_set)))
                r = json_object_array_add(queues, json_object_new_string(ACD_DEFAULT_QUEUE)) < 0 ? -ENOMEM : 0;
        for (char **q = o->queues; r >= 0 && q && *q; q++) {
                struct json_object *s = json_object_new_string(*q);

                if (!s || json_object_array_add(queues, s) < 0) {
                        json_object_put(s);
                        r = -ENOMEM;
                }
        }
        if (r >= 0)
                r = add(obj, "id", json_object_new_string(o->id));
        if (r >= 0)
                r = add(obj, "position", json_object_new_int64(o->position));
        if (r >= 0)
                r = add(obj, "status", json_object_new_string(acd_operator_status_to_string(o->status)));
        if (r >= 0)
                r = add(obj, "queues_set", json_object_new_boolean(o->queues_set));
        if (r >= 0)
                r = add(obj, "removed", json_object_new_boolean(o->removed));
        return r;
}

static int json_take_string(struct json_object *o, char **ret) {
        const char *s = json_to_string_compact(o);
        char *d = s ? strdup(s) : NULL;

        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

int record_render_upsert(const QueueRecord *queues, size_t n_queues, OperatorRecord *const *operators,
                         size_t n_operators, char **ret_queues, char **ret_operators) {
        _cleanup_(json_object_putp) struct json_object *q = NULL, *o = NULL;
        _cleanup_(freep) char *qs = NULL;
        int r = 0;

        q = json_object_new_array();
        o = json_object_new_array();
        if (!q || !o)
                return -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n_queues; i++) {
                struct json_object *obj = json_object_new_object();

                if (!obj || json_object_array_add(q, obj) < 0) {
                        json_object_put(obj);
                        return -ENOMEM;
                }
                r = add(obj, "name", json_object_new_string(queues[i].name));
                if (r >= 0)
                        r = add(obj, "strategy", json_object_new_string(acd_strategy_to_string(queues[i].strategy)));
        }
        for (size_t i = 0; r >= 0 && i < n_operators; i++)
                r = render_operator_json(o, operators[i]);
        if (r >= 0)
                r = json_take_string(q, &qs);
        if (r >= 0)
                r = json_take_string(o, ret_operators);
        if (r < 0)
                return -ENOMEM;
        *ret_queues = TAKE_PTR(qs);
        return 0;
}

/* --- the start's rows ----------------------------------------------------------- */

void store_operator_row_done(StoreOperatorRow *o) {
        free(o->id);
        strv_free(o->queues);
        *o = (StoreOperatorRow) {};
}

void store_call_row_done(StoreCallRow *c) {
        free(c->id);
        free(c->queue);
        free(c->operator);
        *c = (StoreCallRow) {};
}

/* A non-negative integer; NULL (when allowed) gives USEC_INFINITY. */
static int parse_u64(const char *s, bool null_ok, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (!s) {
                if (!null_ok)
                        return -EBADMSG;
                *ret = USEC_INFINITY;
                return 0;
        }
        if (*s < '0' || *s > '9')
                return -EBADMSG;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end != '\0' || v == UINT64_MAX)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int parse_unsigned(const char *s, unsigned *ret) {
        uint64_t v;

        if (parse_u64(s, false, &v) < 0 || v > UINT32_MAX)
                return -EBADMSG;
        *ret = (unsigned) v;
        return 0;
}

/* PostgreSQL's text output of a boolean. */
static int parse_bool(const char *s, bool *ret) {
        if (s && strcmp(s, "t") == 0)
                *ret = true;
        else if (s && strcmp(s, "f") == 0)
                *ret = false;
        else
                return -EBADMSG;
        return 0;
}

/* A JSON array of queue names (to_json(text[])): each a valid id, none
 * twice. */
static int parse_queue_array(const char *s, char ***ret) {
        _cleanup_(json_object_putp) struct json_object *a = NULL;
        _cleanup_(strv_freep) char **l = NULL;
        size_t n;

        if (!s || json_parse(s, strlen(s), &a) < 0 || !json_object_is_type(a, json_type_array))
                return -EBADMSG;
        n = json_object_array_length(a);
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(a, i);
                const char *name;

                if (!json_object_is_type(e, json_type_string))
                        return -EBADMSG;
                name = json_object_get_string(e);
                if (!acd_id_is_valid(name))
                        return -EBADMSG;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(l[j], name) == 0)
                                return -EBADMSG;
                l[i] = strdup(name);
                if (!l[i])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

int record_parse_operator(const char *const *v, StoreOperatorRow *ret, int64_t *ret_position) {
        StoreOperatorRow o = {};
        AcdOperatorStatus status;
        uint64_t position;
        int r;

        if (!v[0] || !acd_id_is_valid(v[0]) || !v[1])
                return -EBADMSG;
        status = acd_operator_status_from_string(v[1]);
        if (status < 0 || parse_bool(v[3], &o.removed) < 0 || parse_u64(v[4], false, &position) < 0 ||
            position > INT64_MAX || parse_bool(v[5], &o.queues_set) < 0)
                return -EBADMSG;
        r = parse_queue_array(v[2], &o.queues);
        if (r < 0)
                return r;
        if (!o.queues[0] && !o.queues_set) {
                strv_free(o.queues);
                return -EBADMSG;
        }
        o.id = strdup(v[0]);
        if (!o.id) {
                store_operator_row_done(&o);
                return -ENOMEM;
        }
        o.status = status;
        *ret = o;
        *ret_position = (int64_t) position;
        return 0;
}

int record_parse_call(const char *const *v, StoreCallRow *ret) {
        StoreCallRow c = {};
        const char *op = v[3] ? v[3] : "";
        uint64_t arrived, answered;

        if (!v[0] || !v[1] || !v[2] || !acd_id_is_valid(v[0]) || !acd_id_is_valid(v[1]))
                return -EBADMSG;
        c.state = acd_call_state_from_string(v[2]);
        if (c.state < 0 ||
            parse_u64(v[4], false, &arrived) < 0 || parse_u64(v[5], false, &c.seq) < 0 ||
            parse_unsigned(v[6], &c.offers) < 0 || parse_unsigned(v[7], &c.rejects) < 0 ||
            parse_unsigned(v[8], &c.ignores) < 0 ||
            parse_u64(v[9], true, &answered) < 0 || parse_u64(v[10], true, &c.rang) < 0)
                return -EBADMSG;
        if (c.state == ACD_CALL_ANSWERED && (answered == USEC_INFINITY || !acd_id_is_valid(op)))
                return -EBADMSG;
        if (op[0] && !acd_id_is_valid(op))
                return -EBADMSG;

        c.arrived = arrived;
        c.answered = c.state == ACD_CALL_ANSWERED ? answered : USEC_INFINITY;
        c.id = strdup(v[0]);
        c.queue = strdup(v[1]);
        /* The record keeps the last operator; the restore only needs the
         * answering one. */
        c.operator = strdup(op);
        if (!c.id || !c.queue || !c.operator) {
                store_call_row_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

int record_parse_queue_counts(const char *const *v, StoreQueueCountsRow *ret) {
        AcdQueueCounters k = {};

        if (!v[0] || !acd_id_is_valid(v[0]) ||
            parse_u64(v[1], false, &k.received) < 0 || parse_u64(v[2], false, &k.answered) < 0 ||
            parse_u64(v[3], false, &k.answered_within) < 0 || parse_u64(v[4], false, &k.abandoned) < 0 ||
            parse_u64(v[5], false, &k.rejected) < 0 || parse_u64(v[6], false, &k.ignored) < 0 ||
            parse_u64(v[7], false, &k.total_wait) < 0)
                return -EBADMSG;
        if (k.answered_within > k.answered)
                return -EBADMSG;
        ret->queue = strdup(v[0]);
        if (!ret->queue)
                return -ENOMEM;
        ret->counts = k;
        return 0;
}
