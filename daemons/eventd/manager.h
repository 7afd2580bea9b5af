/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The hub (DESIGN.md "Events", "Processes"): an XSUB socket where publishers
 * connect ([events] publish) and an XPUB socket where subscribers connect
 * ([events] subscribe). Every message read from XSUB is checked
 * (scan_envelope()); valid events are forwarded to XPUB, frames together and
 * without copying, and handed to the archive. Invalid ones are counted and
 * logged (rate-limited) and go nowhere.
 *
 * XSUB subscribes to everything, so publishers send every event whether or
 * not anybody listens (the archive wants them all). XPUB drops events for a
 * subscriber past its high-water mark; that subscriber sees a seq gap.
 */

#include <stdint.h>

#include <systemd/sd-event.h>

#include "conf.h"
#include "log.h"

typedef struct Archive Archive;
typedef struct ZmqIo ZmqIo;

/* Give the archive this long to write what it holds at SIGTERM. */
#define MANAGER_STOP_TIMEOUT (5 * USEC_PER_SEC)

typedef struct ManagerStats {
        uint64_t received;      /* messages read from XSUB */
        uint64_t forwarded;     /* valid events sent on to XPUB */
        uint64_t invalid;       /* messages that were not valid events */
} ManagerStats;

typedef struct Manager {
        sd_event *event;
        void *zctx;
        void *xsub, *xpub;
        ZmqIo *xsub_io, *xpub_io;
        Archive *archive;       /* NULL: [database] url is empty */

        EventsConfig events;    /* borrowed from main's config tables */
        DatabaseConfig database;

        sd_event_source *status_timer;
        ManagerStats stats;
        uint64_t status_last_received;
        usec_t status_last_time;

        uint64_t invalid_unreported;
        RateLimit invalid_limit;
        char *ipc_path;         /* our XSUB socket file, removed at exit */
        int exit_code;
        bool stopping;
} Manager;

/* Create the manager with its own sd-event loop and ZeroMQ context. The
 * configs are copied by value (their strings stay owned by the caller and
 * must outlive the manager). Returns 0 or -ENOMEM / sd-event errors. */
int manager_new(Manager **ret, const EventsConfig *events, const DatabaseConfig *database);

/* Close everything, without flushing (see manager_stop()). Accepts NULL,
 * returns NULL. */
Manager *manager_free(Manager *m);

/*
 * Bind both sockets (taking the XPUB listening socket from systemd when one
 * was passed), start the archive and the status timer. Errors are logged
 * with the endpoint and reason and returned: -EADDRINUSE (another eventd
 * holds the ipc socket, or the port is taken), -EINVAL (bad endpoint), ...
 */
int manager_start(Manager *m);

/*
 * Clean shutdown (SIGTERM): unsubscribe from publishers (they then queue
 * their events until a hub subscribes again), take the events already in
 * flight, write the archive (up to MANAGER_STOP_TIMEOUT), then
 * sd_event_exit(0). Safe to call from a loop callback.
 */
void manager_stop(Manager *m);

/* One line for STATUS= and logs: "N events/s, archive lag N, spilled N,
 * dropped N, invalid N[, database unreachable]": spilled counts the events
 * waiting in the spill file, dropped those lost for good. */
void manager_format_status(Manager *m, char *buf, size_t size);
