/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * sd-bus glue shared by every D-Bus daemon of the suite (and callcenterctl):
 *
 *  - the org.callcenter.Error.* names of DESIGN.md "D-Bus", registered with
 *    sd_bus_error_add_map() so that a client's sd_bus_error_get_errno() and
 *    sd_bus_error_has_name() work on them (NoSuch* -> ENOENT, InvalidState ->
 *    EBUSY, Exists -> EEXIST, InvalidArgument -> EINVAL, AccessDenied ->
 *    EACCES, Unavailable -> EAGAIN);
 *  - setting and replying such a named error with a human message, both for
 *    handlers that answer at once and for replies sent later from a
 *    callback (asynchronous methods);
 *  - attaching a bus to the daemon's sd_event loop and acquiring the
 *    daemon's well-known name asynchronously, so that nothing blocks the
 *    loop and a name held by someone else ends the daemon with a clear line.
 *
 * Everything here is generic: names, paths and vtables stay in each daemon.
 */

#include <stdbool.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "cleanup.h"

/* The suite's error names and the errno each maps to; SD_BUS_ERROR_MAP_END-terminated. */
extern const sd_bus_error_map bus_callcenter_error_map[];

/*
 * Register bus_callcenter_error_map with sd-bus (once per process; later
 * calls do nothing). Returns 0 or a negative errno.
 */
int bus_register_errors(void);

/*
 * The errno bus_callcenter_error_map assigns to name (a positive value), or
 * EIO for a name outside the map.
 */
int bus_error_errno(const char *name);

/*
 * Set error to the named error with a printf-style human message. Returns
 * the negative errno of the name, so that a method handler can
 * "return bus_error_setf(error, CC_ERROR_NO_SUCH_TASK, "No task %" PRIu64, id);"
 * and sd-bus sends the named error (the set error wins over the errno).
 */
int bus_error_setf(sd_bus_error *error, const char *name, const char *format, ...) _printf_(3, 4);

/*
 * Reply to the method call m with the named error and message, for replies
 * sent after the handler returned. Does nothing (returns 0) when the caller
 * asked for no reply. Returns 0 or the negative errno of sending.
 */
int bus_reply_errorf(sd_bus_message *m, const char *name, const char *format, ...) _printf_(3, 4);

/*
 * Attach bus to loop e at normal priority and make a lost bus connection end
 * the loop (sd_bus_set_exit_on_disconnect), as a daemon must exit when its
 * bus goes away. Returns 0 or a negative errno.
 */
int bus_attach_event(sd_bus *bus, sd_event *e);

/*
 * Called once the outcome of bus_request_name() is known: error is 0 when
 * the name is ours, -EEXIST when another peer owns it, another negative
 * errno (e.g. -EACCES from the bus policy) on failure.
 */
typedef void (*BusNameHandler)(sd_bus *bus, const char *name, int error, void *userdata);

/*
 * Ask for the well-known name asynchronously (no queueing, no replacement:
 * one active owner per name). When handler is NULL a failure is logged and
 * exits the bus's event loop with the error, success is logged at debug.
 * The request lives as long as the bus (floating slot). Returns 0 or a
 * negative errno when the request could not be sent.
 */
int bus_request_name(sd_bus *bus, const char *name, BusNameHandler handler, void *userdata);

