/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cleanup.h"
#include "ctl-events.h"
#include "ctl-output.h"
#include "time-util.h"

const char ctl_events_help[] =
        "Replay events from the archive callcenter-eventd keeps in PostgreSQL, oldest\n"
        "first, in the format of 'monitor' (with -o json: one envelope per line plus\n"
        "its \"topic\"). The database is $CALLCENTER_DATABASE_URL, else [database] url.\n"
        "\n"
        "Options:\n"
        "      --since=TIME     Events at or after TIME (required)\n"
        "      --until=TIME     Events at or before TIME\n"
        "      --topic=PREFIX   Only topics starting with PREFIX (\"router\", \"router.call.missed\")\n"
        "\n"
        "TIME is RFC 3339 (2026-11-22T10:00:00Z, 2026-11-22T11:00:00+01:00), a relative\n"
        "time (-10min, -1h30min, -2d), now, today or yesterday.\n";

enum {
        ARG_SINCE = CTL_ARG_COMMAND,
        ARG_UNTIL,
        ARG_TOPIC,
};

typedef struct EventsArgs {
        const char *since, *until, *topic;
} EventsArgs;

static int parse_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
        EventsArgs *a = userdata;

        switch (opt) {
        case ARG_SINCE:
                a->since = arg;
                return 0;
        case ARG_UNTIL:
                a->until = arg;
                return 0;
        case ARG_TOPIC:
                a->topic = arg;
                return 0;
        }
        return -EINVAL;
}

/* libpq messages end in a newline (sometimes two lines): keep the first. */
static const char *first_line(const char *msg, char *buf, size_t size) {
        size_t n = strcspn(msg, "\n");

        if (n >= size)
                n = size - 1;
        memcpy(buf, msg, n);
        buf[n] = '\0';
        return buf;
}

static int parse_time_arg(Ctl *ctl, const CtlCommand *cmd, const char *opt, const char *s, usec_t now,
                          usec_t *ret) {
        int r = parse_timestamp(s, now, ret);

        if (r < 0) {
                ctl_usage_error(ctl, cmd,
                                "invalid %s '%s': expected RFC 3339 (2026-11-22T10:00:00Z) or a relative time (-10min)",
                                opt, s);
                return -EINVAL;
        }
        return 0;
}

int verb_events(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv) {
        static const struct option options[] = {
                { "since", required_argument, NULL, ARG_SINCE },
                { "until", required_argument, NULL, ARG_UNTIL },
                { "topic", required_argument, NULL, ARG_TOPIC },
                {},
        };
        /*
         * Ordered by id, the order the hub stored them in (and so, per
         * source, by seq). starts_with() rather than LIKE: a topic prefix
         * is a plain byte prefix, as ZeroMQ subscriptions are, and must not
         * treat '_' or '%' as patterns.
         */
        static const char query[] =
                "SELECT topic, envelope::text FROM events"
                " WHERE time >= $1::timestamptz"
                " AND ($2::timestamptz IS NULL OR time <= $2::timestamptz)"
                " AND ($3::text IS NULL OR starts_with(topic, $3::text))"
                " ORDER BY id";
        _cleanup_(PQfinishp) PGconn *conn = NULL;
        EventsArgs a = {};
        char since[RFC3339_MAX], until[RFC3339_MAX], line[512];
        const char *params[3];
        usec_t now, t_since, t_until = 0;
        uint64_t n = 0, bad = 0;
        int r, idx, code = CTL_EXIT_SUCCESS;
        bool stop = false;

        idx = ctl_parse_options(ctl, cmd, argc, argv, options, NULL, parse_option, &a);
        CTL_PARSE_OR_RETURN(idx);
        if (idx < argc)
                return ctl_usage_error(ctl, cmd, "unexpected argument '%s'", argv[idx]);
        if (!a.since)
                return ctl_usage_error(ctl, cmd, "--since TIME is required");

        /* One "now" for both bounds, so --since -1h --until -0min is exact. */
        now = now_usec(CLOCK_REALTIME);
        if (parse_time_arg(ctl, cmd, "--since", a.since, now, &t_since) < 0 ||
            (a.until && parse_time_arg(ctl, cmd, "--until", a.until, now, &t_until) < 0))
                return CTL_EXIT_USAGE;
        if (a.until && t_until < t_since)
                return ctl_usage_error(ctl, cmd, "--until (%s) is before --since (%s)", a.until, a.since);

        r = ctl_load_config(ctl);
        if (r < 0)
                return CTL_EXIT_REFUSED;
        if (!ctl->database.url || ctl->database.url[0] == '\0')
                return ctl_error("no database configured: set [database] url or $CALLCENTER_DATABASE_URL");

        /*
         * Blocking libpq is fine in a CLI. The keywords before "dbname" are
         * defaults: expand_dbname applies the URL's own values after them.
         */
        {
                const char *const keys[] = { "connect_timeout", "application_name", "dbname", NULL };
                const char *const values[] = { "10", "callcenterctl", ctl->database.url, NULL };

                conn = PQconnectdbParams(keys, values, 1);
        }
        if (!conn)
                return ctl_error("cannot connect to the database: out of memory");
        if (PQstatus(conn) != CONNECTION_OK)
                return ctl_error("cannot connect to the database: %s",
                                 first_line(PQerrorMessage(conn), line, sizeof line));

        params[0] = format_timestamp_rfc3339(since, t_since);
        params[1] = a.until ? format_timestamp_rfc3339(until, t_until) : NULL;
        params[2] = a.topic;

        /* Row by row: the archive can be far larger than memory. */
        if (!PQsendQueryParams(conn, query, 3, NULL, params, NULL, NULL, 0) || !PQsetSingleRowMode(conn))
                return ctl_error("cannot query the event archive: %s",
                                 first_line(PQerrorMessage(conn), line, sizeof line));

        for (;;) {
                _cleanup_(PQclearp) PGresult *res = PQgetResult(conn);
                ExecStatusType st;

                if (!res)
                        break;
                /* After a broken pipe keep draining: libpq must see the end
                 * of the result before the connection is closed cleanly. */
                if (stop)
                        continue;

                st = PQresultStatus(res);
                if (st == PGRES_TUPLES_OK)
                        continue; /* the empty end-of-rows marker */
                if (st != PGRES_SINGLE_TUPLE) {
                        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

                        if (state && strcmp(state, "42P01") == 0)
                                code = ctl_error("this database has no event archive (table events is missing): "
                                                 "is callcenter-eventd writing to it?");
                        else
                                code = ctl_error("cannot query the event archive: %s",
                                                 first_line(PQresultErrorMessage(res), line, sizeof line));
                        stop = true;
                        continue;
                }

                r = ctl_print_event(ctl, PQgetvalue(res, 0, 0), (size_t) PQgetlength(res, 0, 0),
                                    PQgetvalue(res, 0, 1), (size_t) PQgetlength(res, 0, 1));
                if (r == -EBADMSG) {
                        bad++;
                        continue;
                }
                if (r == -EPIPE) {
                        stop = true; /* the reader has seen enough: not an error */
                        continue;
                }
                if (r < 0) {
                        code = ctl_error("cannot write the output: %s", strerror(-r));
                        stop = true;
                        continue;
                }
                n++;
        }

        r = ctl_flush();
        if (r < 0 && r != -EPIPE && code == CTL_EXIT_SUCCESS)
                code = ctl_error("cannot write the output: %s", strerror(-r));

        if (bad > 0)
                fprintf(stderr, "callcenterctl: skipped %llu malformed archived event(s)\n", (unsigned long long) bad);
        /* As journalctl does: an empty answer is not silent on a terminal. */
        if (code == CTL_EXIT_SUCCESS && n == 0 && isatty(STDOUT_FILENO) > 0 && ctl->output == CTL_OUTPUT_TEXT)
                fputs("-- No events --\n", stderr);
        return code;
}
