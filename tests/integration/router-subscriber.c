/* SPDX-License-Identifier: MIT */
/*
 * router-subscriber: a bus client of org.callcenter.Router1 that calls
 * Subscribe() and prints every signal the router sends, one line each, in
 * the order the bus delivers them:
 *
 *     CallStateChanged <call> <state> <operator>
 *     OperatorStateChanged <operator> <state> <call>
 *     PropertiesChanged <path> <name>=<value> ...
 *     InterfacesAdded <path> / InterfacesRemoved <path>
 *
 * It prints "subscribed" once Subscribe() returned. Each SIGUSR1 calls
 * Unsubscribe() and prints "unsubscribed" (or "unsubscribe-error <name>");
 * SIGTERM or SIGINT ends it, closing its connection. With --no-call
 * it only watches, subscribing to nothing (a third client's match rule);
 * with --twice it calls Subscribe() twice on its one connection.
 * The session bus (the tests' private dbus-daemon) is used.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#define ROUTER_NAME "org.callcenter.Router1"
#define ROUTER_PATH "/org/callcenter/Router1"
#define ROUTER_IFACE "org.callcenter.Router1"

static int print_properties(sd_bus_message *m) {
        const char *iface;
        int r;

        printf("PropertiesChanged %s", sd_bus_message_get_path(m));
        r = sd_bus_message_read(m, "s", &iface);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name, *contents;
                char type;

                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        return r;
                r = sd_bus_message_enter_container(m, 'v', contents);
                if (r < 0)
                        return r;
                if (strcmp(contents, "s") == 0) {
                        const char *v;

                        r = sd_bus_message_read(m, "s", &v);
                        printf(" %s=%s", name, v);
                } else if (strcmp(contents, "u") == 0) {
                        uint32_t v;

                        r = sd_bus_message_read(m, "u", &v);
                        printf(" %s=%u", name, v);
                } else if (strcmp(contents, "t") == 0) {
                        uint64_t v;

                        r = sd_bus_message_read(m, "t", &v);
                        printf(" %s=%llu", name, (unsigned long long) v);
                } else {
                        r = sd_bus_message_skip(m, contents);
                        printf(" %s=?", name);
                }
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        printf("\n");
        return r;
}

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *member = sd_bus_message_get_member(m), *a, *b, *c;

        if (strcmp(member, "CallStateChanged") == 0 || strcmp(member, "OperatorStateChanged") == 0) {
                if (sd_bus_message_read(m, "sss", &a, &b, &c) >= 0)
                        printf("%s %s %s %s\n", member, a, b, c);
        } else if (strcmp(member, "PropertiesChanged") == 0) {
                if (print_properties(m) < 0)
                        printf("\n");
        } else if (strcmp(member, "InterfacesAdded") == 0 || strcmp(member, "InterfacesRemoved") == 0) {
                const char *path;

                if (sd_bus_message_read(m, "o", &path) >= 0)
                        printf("%s %s\n", member, path);
        } else
                printf("%s\n", member);
        fflush(stdout);
        return 0;
}

static int call_simple(sd_bus *bus, const char *method, const char *ok_word) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(bus, ROUTER_NAME, ROUTER_PATH, ROUTER_IFACE, method, &error, &reply, NULL);
        if (r < 0)
                printf("%s-error %s\n", method[0] == 'S' ? "subscribe" : "unsubscribe",
                       error.name ? error.name : strerror(-r));
        else
                printf("%s\n", ok_word);
        fflush(stdout);
        sd_bus_message_unref(reply);
        sd_bus_error_free(&error);
        return r;
}

static int on_usr(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) call_simple(userdata, "Unsubscribe", "unsubscribed");
        return 0;
}

int main(int argc, char *argv[]) {
        sd_event *e = NULL;
        sd_bus *bus = NULL;
        const char *opt = argc > 1 ? argv[1] : "";
        bool subscribe = strcmp(opt, "--no-call") != 0, twice = strcmp(opt, "--twice") == 0;
        sigset_t ss;
        int r;

        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGUSR1);
        sigprocmask(SIG_BLOCK, &ss, NULL);

        r = sd_event_default(&e);
        if (r >= 0)
                r = sd_bus_open_user(&bus);
        if (r >= 0)
                r = sd_bus_attach_event(bus, e, 0);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, ROUTER_NAME, NULL, NULL, NULL, on_signal, NULL);
        if (r >= 0)
                r = sd_event_add_signal(e, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(e, NULL, SIGINT, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(e, NULL, SIGUSR1, on_usr, bus);
        if (r < 0) {
                fprintf(stderr, "router-subscriber: setup failed: %s\n", strerror(-r));
                return 1;
        }
        if (subscribe) {
                if (call_simple(bus, "Subscribe", "subscribed") < 0)
                        return 1;
                if (twice && call_simple(bus, "Subscribe", "subscribed") < 0)
                        return 1;
        } else {
                printf("watching\n");
                fflush(stdout);
        }
        r = sd_event_loop(e);
        sd_bus_flush_close_unref(bus);
        sd_event_unref(e);
        return r < 0 ? 1 : 0;
}
