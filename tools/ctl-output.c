/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "ctl-output.h"
#include "envelope.h"
#include "json-util.h"

bool ctl_colour_enabled(const Ctl *ctl) {
        const char *term;

        if (ctl->output == CTL_OUTPUT_JSON)
                return false; /* escapes would corrupt the JSON */
        if (ctl->colour == CTL_COLOUR_ALWAYS)
                return true;
        if (ctl->colour == CTL_COLOUR_NEVER)
                return false;
        /* https://no-color.org: present and non-empty disables colour. */
        if (getenv("NO_COLOR") && *getenv("NO_COLOR"))
                return false;
        term = getenv("TERM");
        if (term && strcmp(term, "dumb") == 0)
                return false;
        return isatty(STDOUT_FILENO) > 0;
}

/*
 * Verbs grouped by how an operator reads them: red needs attention, yellow
 * is a detour (the call is still alive), green is a good end, cyan is work
 * starting. Anything else stays uncoloured: the table need not know every
 * verb a future daemon invents.
 */
static const struct {
        const char *verb;
        const char *colour;
} verb_colours[] = {
        { "missed", ANSI_RED },     { "failed", ANSI_RED },        { "error", ANSI_RED },
        { "refused", ANSI_RED },    { "dropped", ANSI_RED },       { "expired", ANSI_RED },
        { "bounced", ANSI_RED },    { "abandoned", ANSI_RED },     { "cancelled", ANSI_RED },
        { "rejected", ANSI_YELLOW }, { "ignored", ANSI_YELLOW },   { "queued", ANSI_YELLOW },
        { "paused", ANSI_YELLOW },  { "retry", ANSI_YELLOW },      { "reopened", ANSI_YELLOW },
        { "deleted", ANSI_YELLOW },
        { "answered", ANSI_GREEN }, { "done", ANSI_GREEN },        { "finished", ANSI_GREEN },
        { "sent", ANSI_GREEN },     { "completed", ANSI_GREEN },   { "delivered", ANSI_GREEN },
        { "accepted", ANSI_GREEN }, { "resumed", ANSI_GREEN },
        { "ringing", ANSI_CYAN },   { "created", ANSI_CYAN },      { "started", ANSI_CYAN },
        { "dialing", ANSI_CYAN },   { "state", ANSI_BLUE },
};

const char *ctl_topic_colour(const char *topic, size_t len) {
        const char *verb = topic;
        size_t vlen;

        for (size_t i = 0; i < len; i++)
                if (topic[i] == '.')
                        verb = topic + i + 1;
        vlen = len - (size_t) (verb - topic);

        for (size_t i = 0; i < ELEMENTSOF(verb_colours); i++)
                if (strlen(verb_colours[i].verb) == vlen && memcmp(verb_colours[i].verb, verb, vlen) == 0)
                        return verb_colours[i].colour;
        return "";
}

char *ctl_format_local_time(char buf[static CTL_LOCAL_TIME_MAX], usec_t t) {
        time_t sec = (time_t) (t / USEC_PER_SEC);
        struct tm tm;
        size_t n;

        if (!localtime_r(&sec, &tm)) {
                snprintf(buf, CTL_LOCAL_TIME_MAX, "@%llu", (unsigned long long) sec);
                return buf;
        }
        n = strftime(buf, CTL_LOCAL_TIME_MAX, "%Y-%m-%d %H:%M:%S", &tm);
        snprintf(buf + n, CTL_LOCAL_TIME_MAX - n, ".%03u", (unsigned) (t % USEC_PER_SEC / USEC_PER_MSEC));
        return buf;
}

/*
 * stdio keeps only a sticky error flag, while errno is soon overwritten (by
 * libpq's next recv, say). Remember what the first failure was, so that a
 * closed pipe is still told apart from a full disk when checked later.
 */
static int output_error;

int ctl_output_error(void) {
        if (output_error == 0 && ferror(stdout))
                output_error = errno == EPIPE ? -EPIPE : -EIO;
        return output_error;
}

int ctl_flush(void) {
        if (output_error == 0 && fflush(stdout) != 0)
                output_error = errno == EPIPE ? -EPIPE : -EIO;
        return ctl_output_error();
}

int ctl_print_json(struct json_object *o) {
        const char *s = json_to_string_compact(o);

        if (!s)
                return -ENOMEM;
        fputs(s, stdout);
        fputc('\n', stdout);
        return ctl_output_error();
}

static const char *const envelope_keys[] = { "seq", "time", "source", "host", "type", "data" };

int ctl_print_event(const Ctl *ctl, const char *topic, size_t topic_len, const char *body, size_t body_len) {
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        Envelope env;
        int r;

        r = envelope_parse(body, body_len, &env, &obj);
        if (r < 0)
                return -EBADMSG;

        if (ctl->output == CTL_OUTPUT_JSON) {
                _cleanup_(json_object_putp) struct json_object *out = NULL;

                /* The topic first, then the envelope's fields in the order
                 * of DESIGN.md, then anything newer. The archive hands back
                 * jsonb, whose key order is its own; this makes `events`
                 * and `monitor` lines look alike. */
                out = json_object_new_object();
                if (!out || json_object_object_add(out, "topic", json_object_new_string_len(topic, (int) topic_len)) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < ELEMENTSOF(envelope_keys); i++) {
                        struct json_object *val;

                        if (json_object_object_get_ex(obj, envelope_keys[i], &val) &&
                            json_object_object_add(out, envelope_keys[i], json_object_get(val)) < 0)
                                return -ENOMEM;
                }
                json_object_object_foreach(obj, key, val) {
                        if (json_object_object_get_ex(out, key, NULL))
                                continue;
                        if (json_object_object_add(out, key, json_object_get(val)) < 0)
                                return -ENOMEM;
                }
                return ctl_print_json(out);
        }

        _cleanup_(freep) char *safe = NULL;
        char ts[CTL_LOCAL_TIME_MAX];
        const char *data = json_to_string_compact(env.data);
        if (!data)
                return -ENOMEM;

        /* The topic frame is whatever a publisher sent: keep control bytes
         * (escape sequences, NULs) away from the terminal. DATA is JSON,
         * already escaped. */
        safe = malloc(topic_len + 1);
        if (!safe)
                return -ENOMEM;
        for (size_t i = 0; i < topic_len; i++)
                safe[i] = (unsigned char) topic[i] < 0x20 || topic[i] == 0x7f ? '?' : topic[i];
        safe[topic_len] = '\0';

        (void) ctl_format_local_time(ts, env.time);
        if (ctl_colour_enabled(ctl)) {
                const char *c = ctl_topic_colour(topic, topic_len);
                printf(ANSI_DIM "%s" ANSI_RESET " %s%s%s %s\n", ts, c, safe, *c ? ANSI_RESET : "", data);
        } else
                printf("%s %s %s\n", ts, safe, data);
        return ctl_output_error();
}
