/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Logging for every binary of the suite.
 *
 * Under systemd (when $JOURNAL_STREAM names our stderr) records go to the
 * journal with structured fields: PRIORITY, CODE_FILE/LINE/FUNC,
 * SYSLOG_IDENTIFIER, ERRNO, MESSAGE plus whatever the caller adds
 * (MESSAGE_ID=, ROUTER_PEER= ...). Otherwise one line on stderr: with a
 * "<N>" syslog prefix when stderr is not a terminal (systemd's stderr
 * convention), plain "ident: message" on a terminal. Command-line tools
 * call log_set_console(true): always plain lines on stderr.
 *
 * The level is LOG_INFO by default; $CALLCENTER_LOG_LEVEL (a name such as
 * "debug" or a number 0-7) or log_set_max_level() changes it.
 */

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "cleanup.h"

/* Remember the identifier and decide between journal and stderr. Call once,
 * first thing in main(); later calls only change the identifier. */
void log_setup(const char *ident);

/*
 * Console mode, for command-line tools: every record is one plain
 * "ident: message" line on stderr, whatever stderr is (terminal, pipe,
 * file, or a journal stream inherited from a unit): never the journal,
 * never a "<N>" prefix. Off by default (the daemons' behaviour above);
 * may be called before or after log_setup(), which leaves it alone.
 */
void log_set_console(bool console);

void log_set_max_level(int level);
int log_get_max_level(void);

/* Parse "debug", "info", ... or "0".."7". Returns the level or -EINVAL. */
int log_level_from_string(const char *s);

/*
 * Write one record. fields is NULL or a NULL-terminated array of extra
 * "KEY=value" journal fields. Returns -abs(error) when error != 0, else 0,
 * so that "return log_error_errno(r, ...)" logs and fails in one line.
 */
int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *const *fields, const char *format, ...) _printf_(7, 8);

#define LOG_FIELDS(...) ((const char *const[]) { __VA_ARGS__, NULL })

#define log_full_errno(level, error, ...)                                               \
        ({                                                                              \
                int _l_ = (level), _e_ = (error);                                       \
                (log_get_max_level() >= _l_)                                            \
                        ? log_internal(_l_, _e_, __FILE__, __LINE__, __func__, NULL,    \
                                       __VA_ARGS__)                                     \
                        : (_e_ == 0 ? 0 : -(_e_ < 0 ? -_e_ : _e_));                     \
        })

/* A record with extra journal fields: log_struct(LOG_NOTICE, 0,
 * LOG_FIELDS("MESSAGE_ID=...", peer_field), "Client %s connected", peer). */
#define log_struct(level, error, fields, ...)                                           \
        ({                                                                              \
                int _l_ = (level), _e_ = (error);                                       \
                (log_get_max_level() >= _l_)                                            \
                        ? log_internal(_l_, _e_, __FILE__, __LINE__, __func__, (fields), \
                                       __VA_ARGS__)                                     \
                        : (_e_ == 0 ? 0 : -(_e_ < 0 ? -_e_ : _e_));                     \
        })

#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)

#define log_debug_errno(r, ...) log_full_errno(LOG_DEBUG, r, __VA_ARGS__)
#define log_info_errno(r, ...) log_full_errno(LOG_INFO, r, __VA_ARGS__)
#define log_notice_errno(r, ...) log_full_errno(LOG_NOTICE, r, __VA_ARGS__)
#define log_warning_errno(r, ...) log_full_errno(LOG_WARNING, r, __VA_ARGS__)
#define log_error_errno(r, ...) log_full_errno(LOG_ERR, r, __VA_ARGS__)

/* Out-of-memory: logs and returns -ENOMEM. */
#define log_oom() log_full_errno(LOG_ERR, ENOMEM, "Out of memory.")

/*
 * A token bucket for messages that could flood the log (dropped events,
 * refused clients): at most burst records per interval. ratelimit_below()
 * returns true when this record may be written; the number suppressed since
 * the last allowed one is in ->suppressed, for the caller to report.
 */
typedef struct RateLimit {
        uint64_t interval_usec;
        unsigned burst;
        uint64_t begin;
        unsigned num;
        uint64_t suppressed;
} RateLimit;

bool ratelimit_below(RateLimit *rl);
