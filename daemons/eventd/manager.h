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
 *
 * Hostile peers: both sockets refuse frames beyond MANAGER_EVENT_FRAME_MAX
 * (a publisher) or MANAGER_SUBSCRIPTION_FRAME_MAX (a subscriber) by
 * dropping that connection before the frame is read into memory. XPUB runs
 * in manual mode: each subscription reaches the manager, which applies it
 * only within the per-connection bounds of subs.h (a socket monitor tells
 * which connections come and go) and ends a connection that breaks them;
 * refusals are counted (STATUS=) and logged, rate-limited.
 */

#include <stdint.h>

#include <systemd/sd-event.h>

#include "conf.h"
#include "log.h"
#include "subs.h"

typedef struct Archive Archive;
typedef struct ZmqIo ZmqIo;

/* An event's frames: the envelope is at most SCAN_BODY_MAX (1 MiB), the
 * topic far less. A subscription is one byte and a prefix; anything longer
 * than SUBS_PREFIX_MAX is refused anyway, this bound only keeps a peer from
 * making the hub read a huge frame. */
#define MANAGER_EVENT_FRAME_MAX (1024 * 1024)
#define MANAGER_SUBSCRIPTION_FRAME_MAX (SUBS_PREFIX_MAX + 1)
/* XPUB's receive high-water mark: libzmq moves all that its inbound pipe
 * holds into its own (unbounded) store at once, so keeping the pipe short
 * keeps a flooding subscriber from getting far ahead of our checks. */
#define MANAGER_SUBSCRIPTION_HWM 64

/* Give the archive this long to write what it holds at SIGTERM. */
#define MANAGER_STOP_TIMEOUT (5 * USEC_PER_SEC)

typedef struct ManagerStats {
        uint64_t received;      /* messages read from XSUB */
        uint64_t forwarded;     /* valid events sent on to XPUB */
        uint64_t invalid;       /* messages that were not valid events */
        uint64_t subscriptions_refused; /* beyond the bounds of subs.h */
} ManagerStats;

typedef struct Manager {
        sd_event *event;
        void *zctx;
        void *xsub, *xpub;
        ZmqIo *xsub_io, *xpub_io;
        void *monitor;          /* PAIR: XPUB's connection events */
        ZmqIo *monitor_io;
        Subs *subs;
        Archive *archive;       /* NULL: [database] url is empty */

        EventsConfig events;    /* borrowed from main's config tables */
        DatabaseConfig database;

        sd_event_source *status_timer;
        ManagerStats stats;
        uint64_t status_last_received;
        usec_t status_last_time;

        uint64_t invalid_unreported;
        RateLimit invalid_limit;
        uint64_t refused_unreported;
        /* Status ticks left that return freed heap to the system: set when a
         * connection is refused, as libzmq frees what it kept for it
         * (possibly much, in its own arena) only as the connection ends. */
        unsigned trim_ticks;
        RateLimit refused_limit;
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
