/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Output helpers shared by the commands: colour decisions, local time, the
 * one-line event format of `monitor` and `events`, and -o json lines.
 *
 * Writes go to stdout through stdio. A reader that goes away (callcenterctl
 * monitor | head) shows up as -EPIPE from these functions (SIGPIPE is
 * ignored by main), which commands treat as a normal end.
 */

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "ctl.h"
#include "time-util.h"

#define ANSI_RESET "\033[0m"
#define ANSI_DIM "\033[2m"
#define ANSI_BOLD "\033[1m"
#define ANSI_RED "\033[31m"
#define ANSI_GREEN "\033[32m"
#define ANSI_YELLOW "\033[33m"
#define ANSI_BLUE "\033[34m"
#define ANSI_CYAN "\033[36m"

/*
 * Whether stdout gets ANSI colours: --color=always/never, else only on a
 * terminal, never with $NO_COLOR set or TERM=dumb, and never with -o json.
 */
bool ctl_colour_enabled(const Ctl *ctl);

/* The colour for an event topic, chosen by its verb (the last component):
 * missed/failed red, answered/done green, ... ; "" for no particular one. */
const char *ctl_topic_colour(const char *topic, size_t len);

/* Size of a buffer for ctl_format_local_time(). */
#define CTL_LOCAL_TIME_MAX sizeof("-2147483648-12-31 23:59:59.999")

/* Format t (CLOCK_REALTIME µs) in local time: "2026-11-22 11:00:00.123". */
char *ctl_format_local_time(char buf[static CTL_LOCAL_TIME_MAX], usec_t t);

/*
 * Print one event, given the topic frame and the envelope body as received
 * (neither needs a NUL): "TIME TOPIC DATA" in text (DATA compact JSON), or
 * with -o json the envelope with "topic" added as its first key.
 * Returns 0; -EBADMSG when body is not a valid envelope (nothing printed;
 * the caller warns); -EPIPE when the reader went away; -EIO, -ENOMEM.
 * Does not flush: see ctl_flush().
 */
int ctl_print_event(const Ctl *ctl, const char *topic, size_t topic_len, const char *body, size_t body_len);

/* Print o compactly on one line. Returns 0, -EPIPE, -EIO. */
int ctl_print_json(struct json_object *o);

/* Flush stdout. Returns 0, -EPIPE (reader gone), -EIO. */
int ctl_flush(void);

/* Whether stdout has failed so far: 0, or the first failure (-EPIPE, -EIO). */
int ctl_output_error(void);
