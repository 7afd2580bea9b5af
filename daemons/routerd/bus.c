/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>

#include "daemons/routerd/bus.h"
#include "daemons/routerd/idmap.h"
#include "daemons/routerd/manager.h"
#include "dbus/names.h"
#include "libshared/bus-util.h"
#include "libshared/cleanup.h"
#include "libshared/daemon.h"
#include "libshared/escape.h"
#include "libshared/log.h"

/* The ACD runs on CLOCK_REALTIME (see manager.c): waits reported by
 * ListCalls and GetStats use the same clock. */
static usec_t now_realtime(void) {
        return now_usec(CLOCK_REALTIME);
}

int bus_router_operator_path(const char *id, char **ret) {
        return sd_bus_path_encode(CC_ROUTER_OPERATOR_PREFIX, id, ret);
}

/*
 * Turn an ACD failure into the suite's named errors (DESIGN.md "D-Bus"):
 * -ENOENT names what was looked up (operator or call), -EBUSY is
 * InvalidState with busy_msg, -EEXIST Exists, -EINVAL and -ENXIO
 * InvalidArgument, -ENOSPC (the queues hold [router] max_queued calls)
 * Unavailable. Anything else goes back as the errno. The id is the
 * caller's: it is echoed escaped and cut (escape_cut()), never raw.
 */
static int map_acd_error(sd_bus_error *error, int r, bool is_operator, const char *id, const char *busy_msg) {
        char e[ESCAPE_ID_SIZE];

        escape_cut(e, sizeof e, id);
        switch (r) {
        case -ENOENT:
                return is_operator ? bus_error_setf(error, CC_ERROR_NO_SUCH_OPERATOR, "No such operator %s", e)
                                   : bus_error_setf(error, CC_ERROR_NO_SUCH_CALL, "No such call %s", e);
        case -EBUSY:
                return bus_error_setf(error, CC_ERROR_INVALID_STATE, "%s", busy_msg);
        case -EEXIST:
                return bus_error_setf(error, CC_ERROR_EXISTS, "%s %s already exists",
                                      is_operator ? "Operator" : "Call", e);
        case -EINVAL:
                return bus_error_setf(error, CC_ERROR_INVALID_ARGUMENT,
                                      "Invalid %s id \"%s\" (1-%d printable ASCII characters, no spaces)",
                                      is_operator ? "operator" : "call", e, ACD_ID_MAX);
        case -ENXIO:
                return bus_error_setf(error, CC_ERROR_INVALID_ARGUMENT, "No such queue");
        case -ENOSPC:
                return bus_error_setf(error, CC_ERROR_UNAVAILABLE,
                                      "Call %s refused: the queue is full ([router] max_queued), try again later", e);
        default:
                return r;
        }
}

/* Checked here as well as in the ACD so that the message names what was
 * wrong (the ACD's -EINVAL cannot say which argument). */
static int check_id(sd_bus_error *error, const char *id, const char *what) {
        char e[ESCAPE_ID_SIZE];

        if (!acd_id_is_valid(id))
                return bus_error_setf(error, CC_ERROR_INVALID_ARGUMENT,
                                      "Invalid %s id \"%s\" (1-%d printable ASCII characters, no spaces)",
                                      what, escape_cut(e, sizeof e, id), ACD_ID_MAX);
        return 0;
}

/* Past the shutdown grace period the final flush has been handed to the
 * database link: a change accepted now could be lost, so it is refused,
 * the way the TCP side answers "unavailable". */
static int check_serving(Manager *m, sd_bus_error *error) {
        if (m->grace_over)
                return bus_error_setf(error, CC_ERROR_UNAVAILABLE, "The router is shutting down");
        return 0;
}

/* The one string argument of a mutating method: read it, refuse when the
 * router no longer serves, and check it is a valid id. */
static int read_id(sd_bus_message *msg, Manager *m, sd_bus_error *error, const char *what,
                   const char **ret) {
        const char *id;
        int r;

        r = sd_bus_message_read(msg, "s", &id);
        if (r < 0)
                return r;
        r = check_serving(m, error);
        if (r < 0)
                return r;
        r = check_id(error, id, what);
        if (r < 0)
                return r;
        *ret = id;
        return 0;
}

/* --- methods ------------------------------------------------------------------ */

/* The reply to a change goes out once the change is committed (DESIGN.md
 * "TCP wire": what a client saw acknowledged survives a SIGKILL). The
 * reply is built now, while the values it carries are at hand, and held
 * here until the manager says the batch is written. */
static void on_reply_committed(void *userdata, bool committed) {
        sd_bus_message *reply = userdata;
        int r;

        if (committed) {
                r = sd_bus_send(NULL, reply, NULL);
                if (r < 0)
                        log_debug_errno(r, "Could not send a held reply: %m");
        }
        sd_bus_message_unref(reply);
}

/* Send the return of msg, with the given string arguments (up to two),
 * after the commit of the changes made so far. Returns 1 (the reply is
 * sent, now or later) or a negative errno. */
static int reply_after_commit(Manager *m, sd_bus_message *msg, const char *types, const char *a,
                              const char *b) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        for (const char *t = types; r >= 0 && t && *t; t++)
                r = sd_bus_message_append_basic(reply, 's', t == types ? a : b);
        if (r < 0)
                return r;
        r = manager_after_commit(m, on_reply_committed, reply);
        if (r < 0)
                return r;
        TAKE_PTR(reply);
        return 1;
}

static int place_call(sd_bus_message *msg, Manager *m, const char *id, const char *queue,
                      sd_bus_error *error) {
        const char *op;
        char busy[128], e[ESCAPE_ID_SIZE];
        int r;

        r = check_serving(m, error);
        if (r < 0)
                return r;
        r = check_id(error, id, "call");
        if (r < 0)
                return r;
        if (queue && !acd_id_is_valid(queue))
                return bus_error_setf(error, CC_ERROR_INVALID_ARGUMENT, "Invalid queue name \"%s\"",
                                      escape_cut(e, sizeof e, queue));

        r = manager_place_call(m, id, queue);
        if (r == -ENXIO)
                return bus_error_setf(error, CC_ERROR_INVALID_ARGUMENT, "No such queue %s",
                                      escape_cut(e, sizeof e, queue));
        if (r < 0) {
                (void) snprintf(busy, sizeof busy, "Call %s cannot be placed now", id);
                return map_acd_error(error, r, false, id, busy);
        }
        /* The ACD returns the state; the operator is in the RINGING
         * outcome record of this very operation. */
        op = r == ACD_CALL_RINGING ? manager_events_ringing_operator(m, id) : NULL;
        return reply_after_commit(m, msg, "ss", acd_call_state_to_string(r), op ? op : "");
}

static int method_place_call(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *id;
        int r;

        r = sd_bus_message_read(msg, "s", &id);
        if (r < 0)
                return r;
        return place_call(msg, userdata, id, NULL, error);
}

static int method_place_call_in_queue(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *id, *queue;
        int r;

        r = sd_bus_message_read(msg, "ss", &id, &queue);
        if (r < 0)
                return r;
        return place_call(msg, userdata, id, queue[0] ? queue : NULL, error);
}

static int answer_or_reject(sd_bus_message *msg, void *userdata, sd_bus_error *error, bool answer) {
        Manager *m = userdata;
        const char *op, *call = NULL;
        char busy[128];
        int r;

        r = read_id(msg, m, error, "operator", &op);
        if (r < 0)
                return r;

        /* call is borrowed from the ACD; it stays valid until the call
         * ends, so past the reply below. */
        r = answer ? manager_answer(m, op, &call) : manager_reject(m, op, &call);
        if (r < 0) {
                (void) snprintf(busy, sizeof busy, "Operator %s is not ringing", op);
                return map_acd_error(error, r, true, op, busy);
        }
        return reply_after_commit(m, msg, "s", call ? call : "", NULL);
}

static int method_answer(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return answer_or_reject(msg, userdata, error, true);
}

static int method_reject(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return answer_or_reject(msg, userdata, error, false);
}

static int method_hangup(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *id;
        int r;

        r = read_id(msg, m, error, "call", &id);
        if (r < 0)
                return r;

        r = manager_hangup(m, id);
        if (r < 0)
                return map_acd_error(error, r, false, id, "The call cannot be hung up now");
        return reply_after_commit(m, msg, "s", r == ACD_EVENT_FINISHED ? "finished" : "missed", NULL);
}

static int method_add_operator(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *id;
        int r;

        r = read_id(msg, m, error, "operator", &id);
        if (r < 0)
                return r;

        r = manager_add_operator(m, id, NULL, ACD_STATUS_AVAILABLE);
        if (r < 0)
                return map_acd_error(error, r, true, id, "The operator cannot be added now");
        return reply_after_commit(m, msg, NULL, NULL, NULL);
}

static int method_remove_operator(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *id;
        char busy[160];
        int r;

        r = read_id(msg, m, error, "operator", &id);
        if (r < 0)
                return r;

        r = manager_remove_operator(m, id);
        if (r < 0) {
                (void) snprintf(busy, sizeof busy, "Operator %s is busy with a call; hang it up first", id);
                return map_acd_error(error, r, true, id, busy);
        }
        return reply_after_commit(m, msg, NULL, NULL, NULL);
}

static int method_set_operator_status(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *id, *status_s;
        AcdOperatorStatus status;
        char e[ESCAPE_ID_SIZE];
        int r;

        r = sd_bus_message_read(msg, "ss", &id, &status_s);
        if (r < 0)
                return r;
        r = check_serving(m, error);
        if (r < 0)
                return r;
        r = check_id(error, id, "operator");
        if (r < 0)
                return r;
        status = acd_operator_status_from_string(status_s);
        if (status < 0)
                return bus_error_setf(error, CC_ERROR_INVALID_ARGUMENT,
                                      "Invalid status \"%s\" (available, paused or offline)",
                                      escape_cut(e, sizeof e, status_s));

        r = manager_set_status(m, id, status);
        if (r < 0)
                return map_acd_error(error, r, true, id, "The status cannot be changed now");
        return reply_after_commit(m, msg, NULL, NULL, NULL);
}

/*
 * SetOperatorQueues(s operator, as queues): the queues the operator serves
 * from now on, kept in PostgreSQL; an empty array is every queue. A name
 * that is no queue of [router] queues (or "default") is InvalidArgument,
 * and the message names it.
 */
static int method_set_operator_queues(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(strv_freep) char **queues = NULL;
        Manager *m = userdata;
        AcdOperatorInfo info;
        const char *id;
        int r;

        r = read_id(msg, m, error, "operator", &id);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(msg, &queues);
        if (r < 0)
                return r;
        /* The operator first: NoSuchOperator whatever the list says. */
        if (acd_get_operator(m->acd, id, &info) < 0)
                return map_acd_error(error, -ENOENT, true, id, NULL);
        for (size_t i = 0; queues && queues[i]; i++) {
                AcdQueueStats st;

                if (!acd_id_is_valid(queues[i]) ||
                    acd_queue_get_stats(m->acd, queues[i], now_realtime(), &st) < 0)
                        return bus_error_setf(error, CC_ERROR_INVALID_ARGUMENT, "No such queue \"%s\"", queues[i]);
                for (size_t j = 0; j < i; j++)
                        if (strcmp(queues[i], queues[j]) == 0)
                                return bus_error_setf(error, CC_ERROR_INVALID_ARGUMENT,
                                                      "Queue \"%s\" is named twice", queues[i]);
        }

        r = manager_set_operator_queues(m, id, queues ? (const char *const *) queues : (const char *const[]) { NULL });
        if (r == -ENXIO || r == -EINVAL)
                return bus_error_setf(error, CC_ERROR_INVALID_ARGUMENT, "Invalid queue list for operator %s", id);
        if (r < 0)
                return map_acd_error(error, r, true, id, "The queues cannot be changed now");
        /* "Kept in PostgreSQL": the reply waits for the commit. */
        return reply_after_commit(m, msg, NULL, NULL, NULL);
}

/* The List* replies are built in full before sending: the ACD's snapshot
 * strings are only valid until its next change, and nothing runs in
 * between here. */
static int method_list_operators(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(freep) AcdOperatorInfo *ops = NULL;
        Manager *m = userdata;
        size_t n = 0;
        int r;

        r = acd_list_operators(m->acd, &ops, &n);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sss)");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "(sss)", ops[i].id, acd_operator_state_to_string(ops[i].state),
                                          ops[i].call ? ops[i].call : "");
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_calls(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(freep) AcdCallInfo *calls = NULL;
        Manager *m = userdata;
        size_t n = 0;
        int r;

        r = acd_list_calls(m->acd, now_realtime(), &calls, &n);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ssst)");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "(ssst)", calls[i].id, acd_call_state_to_string(calls[i].state),
                                          calls[i].operator ? calls[i].operator : "", (uint64_t) calls[i].waited);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* --- subscriptions ------------------------------------------------------------- */

/*
 * The per-call signals (CallStateChanged, OperatorStateChanged and the
 * PropertiesChanged of the operator objects and of QueueLength and
 * OperatorsAvailable) go out only while some client is subscribed, as
 * systemd's Manager does for its unit signals: dbus-daemon routes each
 * signal to every peer, and at routing rates that costs far more than the
 * routing (DESIGN.md: D-Bus is the control plane, ZeroMQ carries the call
 * stream). Subscribers are tracked with sd_bus_track, so one that crashes
 * or leaves the bus stops counting; a client counts once however often it
 * subscribes (the track is not recursive).
 */
bool bus_router_has_subscribers(Manager *m) {
        return m->subscribed && sd_bus_track_count(m->subscribed) > 0;
}

/* The last subscriber left (Unsubscribe or its connection closed): the
 * track goes, as systemd's Manager drops its own, and with it the changes
 * not yet sent. An empty track kept alive would be queued for its handler
 * again on every iteration of the bus. */
static void subscriptions_ended(Manager *m) {
        m->subscribed = sd_bus_track_unref(m->subscribed);
        (void) idmap_remove_value(m->bus_dirty_operators, m);
        m->bus_counts_dirty = false;
        log_debug("No bus client is subscribed any more: per-call signals stop.");
}

static int on_subscriber_gone(sd_bus_track *t, void *userdata) {
        Manager *m = userdata;

        if (t == m->subscribed && sd_bus_track_count(t) == 0)
                subscriptions_ended(m);
        return 0;
}

static int method_subscribe(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        bool first = !m->subscribed;
        int r;

        if (first) {
                r = sd_bus_track_new(sd_bus_message_get_bus(msg), &m->subscribed, on_subscriber_gone, m);
                if (r < 0)
                        return r;
        }
        r = sd_bus_track_add_sender(m->subscribed, msg);
        if (r < 0) {
                if (first)
                        m->subscribed = sd_bus_track_unref(m->subscribed);
                return r;
        }
        if (first) {
                /* The counts are compared with what was last sent: start
                 * from the values a new subscriber reads now. */
                m->queue_length = acd_queue_length(m->acd);
                m->operators_available = acd_operators_available(m->acd);
                log_debug("A bus client subscribed: per-call signals start.");
        }
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_unsubscribe(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int r;

        r = m->subscribed ? sd_bus_track_remove_sender(m->subscribed, msg) : 0;
        if (r < 0)
                return r;
        if (r == 0)
                return bus_error_setf(error, CC_ERROR_INVALID_STATE, "The client is not subscribed");
        if (sd_bus_track_count(m->subscribed) == 0)
                subscriptions_ended(m);
        return sd_bus_reply_method_return(msg, NULL);
}

/* --- statistics ----------------------------------------------------------------- */

static int append_entry_u(sd_bus_message *r, const char *key, uint32_t v) {
        return sd_bus_message_append(r, "{sv}", key, "u", v);
}

static int append_entry_t(sd_bus_message *r, const char *key, uint64_t v) {
        return sd_bus_message_append(r, "{sv}", key, "t", v);
}

static int append_entry_d(sd_bus_message *r, const char *key, double v) {
        return sd_bus_message_append(r, "{sv}", key, "d", v);
}

/* The fields of one AcdQueueStats as dictionary entries. */
static int append_stats(sd_bus_message *reply, const AcdQueueStats *s) {
        int r = 0;

        if (r >= 0) r = append_entry_u(reply, "waiting", (uint32_t) s->waiting);
        if (r >= 0) r = append_entry_u(reply, "ringing", (uint32_t) s->ringing);
        if (r >= 0) r = append_entry_u(reply, "talking", (uint32_t) s->talking);
        if (r >= 0) r = append_entry_u(reply, "members", (uint32_t) s->members);
        if (r >= 0) r = append_entry_u(reply, "available", (uint32_t) s->available);
        if (r >= 0) r = append_entry_t(reply, "longest_wait_usec", s->longest_wait);
        if (r >= 0) r = append_entry_t(reply, "average_wait_usec", s->average_wait);
        if (r >= 0) r = append_entry_t(reply, "total_wait_usec", s->total_wait);
        if (r >= 0) r = append_entry_t(reply, "received", s->received);
        if (r >= 0) r = append_entry_t(reply, "answered", s->answered);
        if (r >= 0) r = append_entry_t(reply, "answered_within", s->answered_within);
        if (r >= 0) r = append_entry_t(reply, "abandoned", s->abandoned);
        if (r >= 0) r = append_entry_t(reply, "rejected", s->rejected);
        if (r >= 0) r = append_entry_t(reply, "ignored", s->ignored);
        if (r >= 0) r = append_entry_d(reply, "service_level", s->service_level);
        if (r >= 0) r = append_entry_d(reply, "abandon_rate", s->abandon_rate);
        return r;
}

/*
 * GetStats() -> a{sv}: the totals over every queue at the top level (an
 * operator in two queues counts once in "operators"), plus "queues":
 * a{sa{sv}} with each queue's own figures and "strategy".
 */
static int method_get_stats(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        usec_t now = now_realtime();
        AcdQueueStats total = {};
        size_t nq = acd_queue_count(m->acd);
        int r;

        for (size_t i = 0; i < nq; i++) {
                AcdQueueStats s;

                r = acd_queue_get_stats(m->acd, acd_queue_name(m->acd, i), now, &s);
                if (r < 0)
                        return r;
                total.waiting += s.waiting;
                total.ringing += s.ringing;
                total.talking += s.talking;
                total.members += s.members;
                if (s.longest_wait > total.longest_wait)
                        total.longest_wait = s.longest_wait;
                total.received += s.received;
                total.answered += s.answered;
                total.answered_within += s.answered_within;
                total.abandoned += s.abandoned;
                total.rejected += s.rejected;
                total.ignored += s.ignored;
                total.total_wait += s.total_wait;
        }
        total.available = acd_operators_available(m->acd);
        total.average_wait = total.answered > 0 ? total.total_wait / total.answered : 0;
        total.service_level = total.answered + total.abandoned > 0 ?
                (double) total.answered_within / (double) (total.answered + total.abandoned) : 1.0;
        total.abandon_rate = total.answered + total.abandoned > 0 ?
                (double) total.abandoned / (double) (total.answered + total.abandoned) : 0.0;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0)
                r = append_stats(reply, &total);
        if (r >= 0)
                r = append_entry_u(reply, "operators", (uint32_t) acd_operator_count(m->acd));
        if (r >= 0)
                r = append_entry_t(reply, "service_level_usec", acd_get_config(m->acd)->service_level);
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "strategy", "s",
                                          acd_strategy_to_string(acd_get_config(m->acd)->strategy));

        /* "queues" => a{sa{sv}} */
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", "queues");
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'v', "a{sa{sv}}");
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sa{sv}}");
        for (size_t i = 0; r >= 0 && i < nq; i++) {
                const char *name = acd_queue_name(m->acd, i);
                AcdQueueStats s;

                r = acd_queue_get_stats(m->acd, name, now, &s);
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'e', "sa{sv}");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "s", name);
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'a', "{sv}");
                if (r >= 0)
                        r = append_stats(reply, &s);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "{sv}", "strategy", "s", acd_strategy_to_string(s.strategy));
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* --- properties ------------------------------------------------------------------ */

static int property_get_queue_length(sd_bus *bus, const char *path, const char *interface,
                                     const char *property, sd_bus_message *reply, void *userdata,
                                     sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "u", (uint32_t) acd_queue_length(m->acd));
}

static int property_get_operators_available(sd_bus *bus, const char *path, const char *interface,
                                            const char *property, sd_bus_message *reply, void *userdata,
                                            sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "u", (uint32_t) acd_operators_available(m->acd));
}

static int property_get_strategy(sd_bus *bus, const char *path, const char *interface,
                                 const char *property, sd_bus_message *reply, void *userdata,
                                 sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", acd_strategy_to_string(acd_get_config(m->acd)->strategy));
}

static int property_get_ring_timeout(sd_bus *bus, const char *path, const char *interface,
                                     const char *property, sd_bus_message *reply, void *userdata,
                                     sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "t", (uint64_t) acd_get_config(m->acd)->ring_timeout);
}

static const sd_bus_vtable router_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("QueueLength", "u", property_get_queue_length, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("OperatorsAvailable", "u", property_get_operators_available, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        /* Changed only by a reload (bus_router_emit_settings()). */
        SD_BUS_PROPERTY("Strategy", "s", property_get_strategy, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RingTimeoutUSec", "t", property_get_ring_timeout, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_NAMES("PlaceCall", "s", SD_BUS_PARAM(call), "ss",
                                 SD_BUS_PARAM(state) SD_BUS_PARAM(operator), method_place_call,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("PlaceCallInQueue", "ss", SD_BUS_PARAM(call) SD_BUS_PARAM(queue), "ss",
                                 SD_BUS_PARAM(state) SD_BUS_PARAM(operator), method_place_call_in_queue,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Answer", "s", SD_BUS_PARAM(operator), "s", SD_BUS_PARAM(call),
                                 method_answer, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Reject", "s", SD_BUS_PARAM(operator), "s", SD_BUS_PARAM(call),
                                 method_reject, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Hangup", "s", SD_BUS_PARAM(call), "s", SD_BUS_PARAM(outcome),
                                 method_hangup, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("AddOperator", "s", SD_BUS_PARAM(operator), NULL,,
                                 method_add_operator, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RemoveOperator", "s", SD_BUS_PARAM(operator), NULL,,
                                 method_remove_operator, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SetOperatorStatus", "ss", SD_BUS_PARAM(operator) SD_BUS_PARAM(status),
                                 NULL,, method_set_operator_status, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SetOperatorQueues", "sas", SD_BUS_PARAM(operator) SD_BUS_PARAM(queues),
                                 NULL,, method_set_operator_queues, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListOperators", NULL,, "a(sss)", SD_BUS_PARAM(operators),
                                 method_list_operators, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListCalls", NULL,, "a(ssst)", SD_BUS_PARAM(calls),
                                 method_list_calls, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetStats", NULL,, "a{sv}", SD_BUS_PARAM(stats),
                                 method_get_stats, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Subscribe", NULL, NULL, method_subscribe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Unsubscribe", NULL, NULL, method_unsubscribe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("CallStateChanged", "sss",
                                 SD_BUS_PARAM(call) SD_BUS_PARAM(state) SD_BUS_PARAM(operator), 0),
        SD_BUS_SIGNAL_WITH_NAMES("OperatorStateChanged", "sss",
                                 SD_BUS_PARAM(operator) SD_BUS_PARAM(state) SD_BUS_PARAM(call), 0),
        SD_BUS_VTABLE_END,
};

/* --- operator objects ------------------------------------------------------------ */

/* The operator a child path names, or -ENOENT (also for a path that does
 * not decode). */
static int operator_from_path(Manager *m, const char *path, AcdOperatorInfo *ret) {
        _cleanup_(freep) char *id = NULL;
        int r;

        r = sd_bus_path_decode(path, CC_ROUTER_OPERATOR_PREFIX, &id);
        if (r < 0)
                return r;
        if (r == 0 || !id || !*id)
                return -ENOENT;
        return acd_get_operator(m->acd, id, ret);
}

/* The fallback vtable serves every path under the prefix; this decides
 * which of them exist, so that an unknown operator is "unknown object"
 * rather than an object with failing properties. */
static int operator_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                         void **ret_found, sd_bus_error *error) {
        AcdOperatorInfo info;

        if (operator_from_path(userdata, path, &info) < 0)
                return 0;
        *ret_found = userdata;
        return 1;
}

static int operator_enumerate(sd_bus *bus, const char *path, void *userdata, char ***ret_nodes,
                              sd_bus_error *error) {
        _cleanup_(freep) AcdOperatorInfo *ops = NULL;
        _cleanup_(strv_freep) char **l = NULL;
        Manager *m = userdata;
        size_t n = 0;
        int r;

        r = acd_list_operators(m->acd, &ops, &n);
        if (r < 0)
                return r;
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = bus_router_operator_path(ops[i].id, &l[i]);
                if (r < 0)
                        return r;
        }
        *ret_nodes = TAKE_PTR(l);
        return 0;
}

static int property_get_operator(sd_bus *bus, const char *path, const char *interface,
                                 const char *property, sd_bus_message *reply, void *userdata,
                                 sd_bus_error *error) {
        AcdOperatorInfo info;
        char e[ESCAPE_ID_SIZE];
        const char *v;
        int r;

        r = operator_from_path(userdata, path, &info);
        if (r < 0)
                return bus_error_setf(error, CC_ERROR_NO_SUCH_OPERATOR, "No such operator object %s",
                                      escape_cut(e, sizeof e, path));

        if (strcmp(property, "Id") == 0)
                v = info.id;
        else if (strcmp(property, "State") == 0)
                v = acd_operator_state_to_string(info.state);
        else if (strcmp(property, "Call") == 0)
                v = info.call ? info.call : "";
        else
                v = acd_operator_status_to_string(info.status);
        return sd_bus_message_append(reply, "s", v);
}

static const sd_bus_vtable operator_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "s", property_get_operator, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get_operator, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Call", "s", property_get_operator, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Status", "s", property_get_operator, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END,
};

static int on_bus_post(sd_event_source *s, void *userdata);

/*
 * The ObjectManager sits on the router's own path, so GetManagedObjects
 * lists the operator children (found through the node enumerator), and
 * InterfacesAdded/Removed are sent from there.
 */
int bus_router_register(Manager *m) {
        int r;

        r = bus_register_errors();
        if (r < 0)
                return r;
        r = sd_bus_add_object_vtable(m->bus, NULL, CC_ROUTER_PATH, CC_ROUTER_INTERFACE, router_vtable, m);
        if (r < 0)
                return r;
        r = sd_bus_add_fallback_vtable(m->bus, NULL, CC_ROUTER_OPERATOR_PREFIX, CC_ROUTER_OPERATOR_INTERFACE,
                                       operator_vtable, operator_find, m);
        if (r < 0)
                return r;
        r = sd_bus_add_node_enumerator(m->bus, NULL, CC_ROUTER_OPERATOR_PREFIX, operator_enumerate, m);
        if (r < 0)
                return r;
        r = sd_bus_add_object_manager(m->bus, NULL, CC_ROUTER_PATH);
        if (r < 0)
                return r;
        r = idmap_new(&m->bus_dirty_operators);
        if (r < 0)
                return r;
        r = daemon_add_deferred(m->event, &m->bus_post, on_bus_post, m, "bus-properties");
        if (r < 0)
                return r;
        m->queue_length = acd_queue_length(m->acd);
        m->operators_available = acd_operators_available(m->acd);
        return 0;
}

/* --- signals ------------------------------------------------------------------------ */

/* A router signal with three string arguments. Same message as
 * sd_bus_emit_signal(..., "sss", ...), without parsing the signature
 * string on every call: these go out several times per request. */
static int emit_sss(Manager *m, const char *member, const char *a, const char *b, const char *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        int r;

        r = sd_bus_message_new_signal(m->bus, &msg, CC_ROUTER_PATH, CC_ROUTER_INTERFACE, member);
        if (r >= 0)
                r = sd_bus_message_append_basic(msg, 's', a);
        if (r >= 0)
                r = sd_bus_message_append_basic(msg, 's', b);
        if (r >= 0)
                r = sd_bus_message_append_basic(msg, 's', c);
        if (r < 0)
                return r;
        return sd_bus_send(m->bus, msg, NULL);
}

void bus_router_emit_event(Manager *m, const AcdEvent *e) {
        int r;

        if (!m->bus || !bus_router_has_subscribers(m))
                return;

        if (e->kind == ACD_EVENT_OPERATOR_STATE) {
                _cleanup_(freep) char *path = NULL;

                r = emit_sss(m, "OperatorStateChanged", e->operator, acd_operator_state_to_string(e->state),
                             e->call);
                if (r < 0)
                        log_debug_errno(r, "Could not emit OperatorStateChanged: %m");
                /* The object's PropertiesChanged carries only the final
                 * values: one per operator and loop iteration is enough. */
                if (idmap_put(m->bus_dirty_operators, e->operator, m) >= 0)
                        (void) sd_event_source_set_enabled(m->bus_post, SD_EVENT_ONESHOT);
                return;
        }
        /* "received" is not a state: a call's first state is queued or
         * ringing. */
        if (e->kind == ACD_EVENT_RECEIVED)
                return;
        r = emit_sss(m, "CallStateChanged", e->call, acd_event_kind_to_string(e->kind), e->operator);
        if (r < 0)
                log_debug_errno(r, "Could not emit CallStateChanged: %m");
}

void bus_router_emit_properties(Manager *m) {
        if (!m->bus || !bus_router_has_subscribers(m))
                return;
        m->bus_counts_dirty = true;
        (void) sd_event_source_set_enabled(m->bus_post, SD_EVENT_ONESHOT);
}

/*
 * PropertiesChanged(s interface, a{sv} changed, as invalidated) for path,
 * with n string ('s') or uint32 ('u') values, built by hand. It is the
 * signal sd_bus_emit_properties_changed() sends for EMITS_CHANGE
 * properties, but that function finds the object in the bus's tree and
 * calls each getter, which for an operator decodes the path and looks the
 * operator up again, once per property: the dearest part of a request's
 * D-Bus work. Here the values are already at hand.
 */
typedef struct BusProp {
        const char *name;
        char type;                   /* 's' or 'u' */
        const char *s;
        uint32_t u;
} BusProp;

static int emit_properties(Manager *m, const char *path, const char *interface, const BusProp *props,
                           size_t n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        int r;

        r = sd_bus_message_new_signal(m->bus, &msg, path, "org.freedesktop.DBus.Properties",
                                      "PropertiesChanged");
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(msg, 's', interface);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                const char sig[2] = { props[i].type, 0 };

                r = sd_bus_message_open_container(msg, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append_basic(msg, 's', props[i].name);
                if (r >= 0)
                        r = sd_bus_message_open_container(msg, 'v', sig);
                if (r >= 0)
                        r = sd_bus_message_append_basic(msg, props[i].type,
                                                        props[i].type == 's' ? (const void *) props[i].s
                                                                             : (const void *) &props[i].u);
                if (r >= 0)
                        r = sd_bus_message_close_container(msg);
                if (r >= 0)
                        r = sd_bus_message_close_container(msg);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(msg);
        if (r >= 0)
                r = sd_bus_message_append_strv(msg, NULL);
        if (r < 0)
                return r;
        return sd_bus_send(m->bus, msg, NULL);
}

/* Once per loop iteration that changed something. A pipelined burst of
 * requests is handled in one iteration: sending PropertiesChanged per
 * request would flood the bus with values that are stale at once (and
 * sd-bus's write queue grows costly when it backs up). Comparing with the
 * last values sent drops the signal when the counts came back. */
static void emit_counts(Manager *m) {
        size_t ql = acd_queue_length(m->acd), oa = acd_operators_available(m->acd);
        BusProp props[2];
        size_t n = 0;
        int r;

        m->bus_counts_dirty = false;
        if (ql != m->queue_length)
                props[n++] = (BusProp) { .name = "QueueLength", .type = 'u', .u = (uint32_t) ql };
        if (oa != m->operators_available)
                props[n++] = (BusProp) { .name = "OperatorsAvailable", .type = 'u', .u = (uint32_t) oa };
        if (n == 0)
                return;
        m->queue_length = ql;
        m->operators_available = oa;
        r = emit_properties(m, CC_ROUTER_PATH, CC_ROUTER_INTERFACE, props, n);
        if (r < 0)
                log_debug_errno(r, "Could not emit PropertiesChanged: %m");
}

static int on_bus_post(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        size_t state = 0;
        const char *id;

        if (m->bus_counts_dirty)
                emit_counts(m);
        while (idmap_iterate(m->bus_dirty_operators, &state, &id, NULL)) {
                _cleanup_(freep) char *path = NULL;
                AcdOperatorInfo info;
                int r;

                /* Removed in this iteration: its object is gone
                 * (InterfacesRemoved said so). */
                if (acd_get_operator(m->acd, id, &info) < 0)
                        continue;
                if (bus_router_operator_path(id, &path) < 0)
                        continue;
                r = emit_properties(m, path, CC_ROUTER_OPERATOR_INTERFACE,
                                    (const BusProp[]) {
                                            { .name = "State", .type = 's',
                                              .s = acd_operator_state_to_string(info.state) },
                                            { .name = "Call", .type = 's', .s = info.call ? info.call : "" },
                                            { .name = "Status", .type = 's',
                                              .s = acd_operator_status_to_string(info.status) },
                                    }, 3);
                if (r < 0)
                        log_debug_errno(r, "Could not emit PropertiesChanged for %s: %m", path);
        }
        (void) idmap_remove_value(m->bus_dirty_operators, m);
        return 0;
}

void bus_router_emit_operator_added(Manager *m, const char *id) {
        _cleanup_(freep) char *path = NULL;
        int r;

        if (!m->bus || bus_router_operator_path(id, &path) < 0)
                return;
        r = sd_bus_emit_interfaces_added(m->bus, path, CC_ROUTER_OPERATOR_INTERFACE, NULL);
        if (r < 0)
                log_debug_errno(r, "Could not emit InterfacesAdded for %s: %m", path);
}

void bus_router_emit_operator_removed(Manager *m, const char *id) {
        _cleanup_(freep) char *path = NULL;
        int r;

        if (!m->bus || bus_router_operator_path(id, &path) < 0)
                return;
        /* Its object is gone: no PropertiesChanged for it any more. */
        (void) idmap_remove(m->bus_dirty_operators, id);
        r = sd_bus_emit_interfaces_removed(m->bus, path, CC_ROUTER_OPERATOR_INTERFACE, NULL);
        if (r < 0)
                log_debug_errno(r, "Could not emit InterfacesRemoved for %s: %m", path);
}

void bus_router_emit_settings(Manager *m, bool strategy, bool ring_timeout) {
        int r;

        if (!m->bus || (!strategy && !ring_timeout))
                return;
        /* Rare (a reload), so sd-bus's own emitter, which reads the values
         * through the getters, is good enough here. */
        r = sd_bus_emit_properties_changed(m->bus, CC_ROUTER_PATH, CC_ROUTER_INTERFACE,
                                           strategy ? "Strategy" : "RingTimeoutUSec",
                                           strategy && ring_timeout ? "RingTimeoutUSec" : NULL, NULL);
        if (r < 0)
                log_debug_errno(r, "Could not emit PropertiesChanged for the settings: %m");
}
