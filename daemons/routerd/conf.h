/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * callcenter-routerd's configuration: [database], [events] (shared tables
 * from libshared/conf.h) and its own [router] section, in one struct so that
 * nothing lives in globals.
 *
 * [router]
 *   listen = 127.0.0.1:5678     TCP address of the JSON-lines protocol
 *                               (HOST:PORT, [V6]:PORT; ignored when systemd
 *                               passes a listening socket)
 *   operators = A B             operators at first start, in configured order
 *   queues =                    named queues and their members, words of the
 *                               form NAME[/STRATEGY]:OP[,OP...], e.g.
 *                               "sales:A,B support/round-robin:B". An operator
 *                               listed in no queue serves the queue "default";
 *                               one listed somewhere serves only those queues
 *                               (list it under "default" too to keep both).
 *   strategy = longest-idle     the default queue's (and every named queue's
 *                               unless it names its own) strategy
 *   ring_timeout = 10s, reject_delay = 0, no_answer_delay = 0, wrap_up = 0,
 *   max_no_answer = 0, service_level = 20s  (see AcdConfig)
 *   max_connections = 4096      TCP connections served at once
 *   max_queued = 10000          calls waiting at most (AcdConfig.max_queued)
 *   idle_timeout = 1h           a TCP connection silent both ways this long
 *                               is closed ("infinity": never)
 *   output_buffer_max = 4M      unsent notices before a client is dropped
 */

#include <stdbool.h>

#include "libshared/conf.h"
#include "daemons/routerd/acd.h"

typedef struct RouterConfig {
        char *listen;
        char **operators;
        char **queues;
        int strategy;                /* AcdStrategy */
        usec_t ring_timeout;
        usec_t reject_delay;
        usec_t no_answer_delay;
        usec_t wrap_up;
        unsigned max_no_answer;
        usec_t service_level;
        unsigned max_connections;
        unsigned max_queued;
        usec_t idle_timeout;
        uint64_t output_buffer_max;
} RouterConfig;

typedef struct RouterdConfig {
        DatabaseConfig database;
        EventsConfig events;
        RouterConfig router;
} RouterdConfig;

/* One parsed word of [router] queues. */
typedef struct RouterQueueSpec {
        char *name;
        AcdStrategy strategy;
        char **members;              /* NULL-terminated, at least one */
} RouterQueueSpec;

/* The [router] table. */
extern const ConfigItem router_config_items[];

/* The sections routerd reads, without a base (for --dump-config). */
extern const ConfigSection routerd_config_sections[];

/*
 * Load defaults, then path (NULL = the default file), drop-ins and
 * environment overrides into c, and check the [router] values that the
 * table cannot (listen syntax, ids, the queues syntax). Returns 0 or a
 * negative errno (logged). Call routerd_config_done() in every case.
 */
int routerd_config_load(RouterdConfig *c, const char *path);

/* Free what c owns, leaving NULLs. */
void routerd_config_done(RouterdConfig *c);

/* Fill an AcdConfig from c (strategy, times, max_no_answer, max_queued). */
void router_config_to_acd(const RouterConfig *c, AcdConfig *ret);

/*
 * Parse one word of [router] queues ("sales/round-robin:A,B") with default
 * strategy def. Returns 0 and fills *ret (free with router_queue_spec_done()),
 * -EINVAL for bad syntax, a bad id or an unknown strategy, -ENOMEM.
 */
int router_queue_spec_parse(const char *word, AcdStrategy def, RouterQueueSpec *ret);
void router_queue_spec_done(RouterQueueSpec *q);

/*
 * Parse [router] listen: "HOST:PORT" or "[V6]:PORT" (HOST numeric, or
 * "localhost"). Returns 0 and the address in *ret / *ret_len, or -EINVAL.
 */
struct sockaddr_storage;
int router_parse_listen(const char *s, struct sockaddr_storage *ret, unsigned *ret_len);

/*
 * Reload (SIGHUP). Every [router] key is applied by a reload except those
 * for which router_config_key_reloadable() is false (listen,
 * output_buffer_max); [database] and [events] need a restart as a whole.
 */
bool router_config_key_reloadable(const char *key);

/*
 * Compare the configuration in use with a newly loaded one. *ret_applied
 * lists the reloadable [router] keys that differ with both values, in table
 * order, comma-separated: `ring_timeout 10s -> 5s, strategy longest-idle ->
 * top-down`; *ret_restart names the other keys that differ (`listen,
 * [database] url`), without values (a database URL may hold a password).
 * Both are new strings, "" when nothing differs. Returns 0 or -ENOMEM.
 */
int routerd_config_diff(const RouterdConfig *old, const RouterdConfig *new, char **ret_applied,
                        char **ret_restart);

/*
 * Make next carry the values of cur that a reload does not apply
 * ([database], [events], listen, output_buffer_max), so that it describes
 * what is in effect; cur gets next's in exchange (each struct still owns
 * its strings: routerd_config_done() both).
 */
void routerd_config_keep_restart_values(RouterdConfig *next, RouterdConfig *cur);
