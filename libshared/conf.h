/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Table-driven configuration (DESIGN.md "Configuration").
 *
 * One INI file (default SYSCONFDIR/callcenter/callcenter.conf) plus drop-ins
 * <file>.d/ *.conf, read in lexical order, later values winning. Each daemon
 * describes the sections it reads as ConfigSection tables; defaults live in
 * the tables (as strings parsed by the same parser), so the table is the one
 * source of truth for keys, defaults and the commented example file.
 *
 * Rules:
 *  - a key the daemon's tables do not know, in a section the daemon reads,
 *    is warned about ("file:line: unknown key ..., ignoring");
 *  - sections of other daemons (config_known_sections) are skipped silently;
 *    a section nobody knows is warned about;
 *  - a bad value fails the load with one line naming file:line, the key, the
 *    value and what was expected;
 *  - an item with .env set is overridden by that environment variable when it
 *    is set (CALLCENTER_DATABASE_URL for [database] url ...).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "time-util.h"

typedef enum ConfigType {
        CONFIG_STRING,   /* char *, malloc'd, may be "" */
        CONFIG_STRV,     /* char **, whitespace-separated words, NULL-terminated */
        CONFIG_BOOL,     /* bool: yes/no, true/false, on/off, 1/0 */
        CONFIG_UINT,     /* unsigned (32 bit); .max bounds it when non-zero */
        CONFIG_UINT64,   /* uint64_t; .max bounds it when non-zero */
        CONFIG_TIMESPAN, /* usec_t: parse_timespan() */
        CONFIG_DOUBLE,   /* double, finite and >= 0 */
        CONFIG_ENUM,     /* int: index into .names (NULL-terminated) */
        CONFIG_LOGLEVEL, /* int: log_level_from_string() */
        _CONFIG_TYPE_MAX,
        _CONFIG_TYPE_INVALID = -22,
} ConfigType;

typedef struct ConfigItem {
        const char *key;
        ConfigType type;
        size_t offset;              /* offsetof() in the section's struct */
        const char *def;            /* default, in the file's syntax; NULL = "" */
        const char *help;           /* one line, for --help and the example file */
        const char *env;            /* overriding environment variable, or NULL */
        uint64_t max;               /* CONFIG_UINT / CONFIG_UINT64 bound, 0 = none */
        const char *const *names;   /* CONFIG_ENUM values */
} ConfigItem;

typedef struct ConfigSection {
        const char *name;           /* "router" for [router] */
        const ConfigItem *items;    /* terminated by an item with key NULL */
        void *base;                 /* the struct the offsets point into */
} ConfigSection;

/* Every section name of DESIGN.md; any of them may appear in the file. */
extern const char *const config_known_sections[];

/* The default path: SYSCONFDIR "/callcenter/callcenter.conf". */
const char *config_default_path(void);

/*
 * Apply defaults, then read path (or the default path when path is NULL; a
 * missing default file is fine, a missing explicit one is -ENOENT), its
 * drop-ins, then environment overrides, into every section of the
 * {NULL}-terminated array. Errors are logged (one line, file:line) and
 * returned: -ENOENT, -EINVAL (bad value), -EIO. On error the sections may be
 * partly filled: call config_free() anyway.
 */
int config_load(const char *path, const ConfigSection *sections);

/* Free the strings and vectors the tables own, leaving NULLs behind. */
void config_free(const ConfigSection *sections);

/* Print "[section]\n# help\n#key=default\n" for every item, as the example file. */
void config_dump_example(const ConfigSection *sections, FILE *f);

/* [database], shared by every daemon that keeps data. */
typedef struct DatabaseConfig {
        char *url;                  /* libpq conninfo or URI; "" = no persistence */
        uint64_t buffer_bytes;      /* writes held while PostgreSQL is away */
        usec_t connect_timeout;
        usec_t reconnect_max;       /* backoff cap */
} DatabaseConfig;
extern const ConfigItem config_database_items[];

/* [events], shared by every publisher and subscriber. */
typedef struct EventsConfig {
        char *publish;              /* where publishers connect (the hub's XSUB) */
        char *subscribe;            /* where subscribers connect (the hub's XPUB) */
        unsigned buffer;            /* events a publisher holds while the hub is away */
        unsigned hwm;               /* ZeroMQ high-water marks */
} EventsConfig;
extern const ConfigItem config_events_items[];
