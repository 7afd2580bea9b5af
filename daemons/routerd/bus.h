/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * org.callcenter.Router1 (DESIGN.md "D-Bus"): the vtable of
 * /org/callcenter/Router1, the operator children
 * /org/callcenter/Router1/operator/<escaped id> (a fallback vtable with a
 * node enumerator, under an ObjectManager), and the signal emitters. The
 * method handlers call the manager_* operations, so D-Bus and TCP requests
 * go through the same code.
 */

#include <stdbool.h>

#include "daemons/routerd/acd.h"

typedef struct Manager Manager;

/* Register the objects on m->bus. Returns 0 or a negative errno. */
int bus_router_register(Manager *m);

/* Whether some bus client called Subscribe() and is still subscribed.
 * The per-call signals below are sent only then. */
bool bus_router_has_subscribers(Manager *m);

/* CallStateChanged / OperatorStateChanged (and the operator object's
 * PropertiesChanged) for one outcome record. No-op without a bus or
 * without a subscriber. */
void bus_router_emit_event(Manager *m, const AcdEvent *e);

/* PropertiesChanged for QueueLength and OperatorsAvailable, when they
 * differ from what was last sent. No-op without a subscriber. */
void bus_router_emit_properties(Manager *m);

/* PropertiesChanged for Strategy and/or RingTimeoutUSec (after a reload
 * changed them). No-op without a bus or when both are false. */
void bus_router_emit_settings(Manager *m, bool strategy, bool ring_timeout);

/* InterfacesAdded / InterfacesRemoved for an operator's object. */
void bus_router_emit_operator_added(Manager *m, const char *id);
void bus_router_emit_operator_removed(Manager *m, const char *id);

/* The object path of operator id (sd_bus_path_encode). Returns 0 or -ENOMEM. */
int bus_router_operator_path(const char *id, char **ret);
