/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bus-util.h"
#include "dbus/names.h"
#include "log.h"

/*
 * The errno of each name is what a client sees from sd_bus_error_get_errno()
 * and what callcenterctl turns into a message and exit status. The NoSuch*
 * names share ENOENT: the name itself says what was missing.
 */
const sd_bus_error_map bus_callcenter_error_map[] = {
        SD_BUS_ERROR_MAP(CC_ERROR_NO_SUCH_OPERATOR, ENOENT),
        SD_BUS_ERROR_MAP(CC_ERROR_NO_SUCH_CALL, ENOENT),
        SD_BUS_ERROR_MAP(CC_ERROR_NO_SUCH_TASK, ENOENT),
        SD_BUS_ERROR_MAP(CC_ERROR_NO_SUCH_CAMPAIGN, ENOENT),
        SD_BUS_ERROR_MAP(CC_ERROR_INVALID_STATE, EBUSY),
        SD_BUS_ERROR_MAP(CC_ERROR_EXISTS, EEXIST),
        SD_BUS_ERROR_MAP(CC_ERROR_INVALID_ARGUMENT, EINVAL),
        SD_BUS_ERROR_MAP(CC_ERROR_ACCESS_DENIED, EACCES),
        SD_BUS_ERROR_MAP(CC_ERROR_UNAVAILABLE, EAGAIN),
        SD_BUS_ERROR_MAP_END,
};

int bus_register_errors(void) {
        static bool registered;
        int r;

        /* sd_bus_error_add_map() itself ignores a map added twice, but a
         * flag spares the walk over its list on every call. */
        if (registered)
                return 0;
        r = sd_bus_error_add_map(bus_callcenter_error_map);
        if (r < 0)
                return r;
        registered = true;
        return 0;
}

int bus_error_errno(const char *name) {
        if (name)
                for (const sd_bus_error_map *m = bus_callcenter_error_map; m->name; m++)
                        if (strcmp(m->name, name) == 0)
                                return m->code;
        return EIO;
}

int bus_error_setf(sd_bus_error *error, const char *name, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        (void) sd_bus_error_setfv(error, name, format, ap);
        va_end(ap);

        /* sd_bus_error_setfv() returns the errno it derives from the name,
         * which depends on the map being registered; return ours so that
         * callers get the same value either way. */
        return -bus_error_errno(name);
}

int bus_reply_errorf(sd_bus_message *m, const char *name, const char *format, ...) {
        va_list ap;
        int r;

        /* A caller that set NO_REPLY_EXPECTED gets nothing, as sd-bus does
         * for synchronous handlers. */
        if (!sd_bus_message_get_expect_reply(m))
                return 0;

        va_start(ap, format);
        r = sd_bus_reply_method_errorfv(m, name, format, ap);
        va_end(ap);
        return r < 0 ? r : 0;
}

int bus_attach_event(sd_bus *bus, sd_event *e) {
        int r;

        r = sd_bus_attach_event(bus, e, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;
        /* Without the bus a daemon can neither be reached nor release its
         * name cleanly: leave the loop and let systemd restart us. */
        return sd_bus_set_exit_on_disconnect(bus, true);
}

typedef struct NameRequest {
        char *name;
        BusNameHandler handler;
        void *userdata;
} NameRequest;

static void name_request_free(void *p) {
        NameRequest *req = p;

        if (!req)
                return;
        free(req->name);
        free(req);
}

static int on_request_name_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        NameRequest *req = userdata;
        sd_bus *bus = sd_bus_message_get_bus(reply);
        const sd_bus_error *e;
        uint32_t result;
        int r;

        e = sd_bus_message_get_error(reply);
        if (e)
                r = -sd_bus_error_get_errno(e);
        else {
                /* RequestName replies 1 (primary owner), 2 (queued), 3
                 * (exists) or 4 (already owner). We asked without
                 * queueing, so anything but 1 and 4 means someone else
                 * has the name. */
                r = sd_bus_message_read(reply, "u", &result);
                if (r >= 0)
                        r = result == 1 || result == 4 ? 0 : -EEXIST;
        }

        if (req->handler) {
                req->handler(bus, req->name, r, req->userdata);
                return 0;
        }

        if (r == -EEXIST)
                log_error("D-Bus name %s is owned by another process; is another instance running?",
                          req->name);
        else if (r < 0)
                log_error_errno(r, "Failed to acquire D-Bus name %s: %s", req->name,
                                e && e->message ? e->message : strerror(-r));
        else {
                log_debug("Acquired D-Bus name %s", req->name);
                return 0;
        }

        sd_event *ev = sd_bus_get_event(bus);
        if (ev)
                (void) sd_event_exit(ev, r);
        return 0;
}

int bus_request_name(sd_bus *bus, const char *name, BusNameHandler handler, void *userdata) {
        NameRequest *req;
        sd_bus_slot *slot = NULL;
        int r;

        req = calloc(1, sizeof(*req));
        if (!req)
                return -ENOMEM;
        req->name = strdup(name);
        if (!req->name) {
                free(req);
                return -ENOMEM;
        }
        req->handler = handler;
        req->userdata = userdata;

        r = sd_bus_call_method_async(bus, &slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "RequestName", on_request_name_reply,
                                     req, "su", name, (uint32_t) 0);
        if (r < 0) {
                name_request_free(req);
                return r;
        }

        /* The slot owns the request from here on: floating, it lives until
         * the reply has been handled or the bus is freed. */
        (void) sd_bus_slot_set_destroy_callback(slot, name_request_free);
        (void) sd_bus_slot_set_floating(slot, true);
        sd_bus_slot_unref(slot);
        return 0;
}
