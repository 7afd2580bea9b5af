/* SPDX-License-Identifier: MIT */
#pragma once

#include "ctl.h"

/*
 * callcenterctl events --since TIME [--until TIME] [--topic PREFIX]: replay
 * the archive eventd keeps in PostgreSQL (table events), in the order the
 * hub stored the events (by id), in the format of `monitor`.
 */
int verb_events(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv);

extern const char ctl_events_help[];
