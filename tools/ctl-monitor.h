/* SPDX-License-Identifier: MIT */
#pragma once

#include "ctl.h"

/*
 * callcenterctl monitor [TOPIC...]: subscribe to the hub ($CALLCENTER_EVENTS
 * or [events] subscribe) and print every event as it arrives, one line each
 * (see ctl_print_event()). Runs until SIGINT/SIGTERM, until the reader of
 * stdout goes away, or until --count events were printed.
 */
int verb_monitor(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv);

extern const char ctl_monitor_help[];
