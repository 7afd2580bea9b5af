/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * callcenter-taskd's configuration: [database], [events] (shared tables from
 * libshared/conf.h) and its own [tasks] section, all in one struct so that
 * nothing lives in globals.
 *
 * [tasks]
 *   followup_on_missed = yes   on router.call.missed, create the top-level
 *                              task "Call back <call>" linked to the call,
 *                              once per call id (a repeated event, a replay
 *                              or a restart never makes a second one)
 */

#include <stdbool.h>

#include "libshared/conf.h"

typedef struct TasksConfig {
        bool followup_on_missed;
} TasksConfig;

typedef struct TaskdConfig {
        DatabaseConfig database;
        EventsConfig events;
        TasksConfig tasks;
} TaskdConfig;

/* The [tasks] table. */
extern const ConfigItem tasks_config_items[];

/*
 * The sections taskd reads, without a base (for --dump-config); taskd_config_load()
 * points a copy at a TaskdConfig.
 */
extern const ConfigSection taskd_config_sections[];

/*
 * Load defaults, then path (NULL = the default file), drop-ins and
 * environment overrides into c. Returns 0 or the negative errno of
 * config_load() (already logged). Call taskd_config_done() in every case.
 */
int taskd_config_load(TaskdConfig *c, const char *path);

/* Free what c owns (strings), leaving NULLs. */
void taskd_config_done(TaskdConfig *c);
