/* SPDX-License-Identifier: MIT */
#pragma once

#include "ctl.h"

/*
 * callcenterctl task add TITLE [--parent ID] [--call ID] | done ID |
 * reopen ID | rm ID | tree [ID]: org.callcenter.Tasks1 from the command
 * line (DESIGN.md "Command line").
 *
 *  - add prints the new task's id (text) or {"id":N} (-o json);
 *  - done, reopen and rm print nothing on success;
 *  - tree prints the subtree of ID (root included; none = every task) as an
 *    indented tree, or with -o json one object per line with the keys id,
 *    parent, title, state, call (the D-Bus fields; parent 0 = top level,
 *    call "" = none), depth-first, children in creation order.
 * Exit status: 0 success; 1 when the daemon refuses (NoSuchTask,
 * InvalidState, Unavailable ...); 2 for bad usage, including an argument the
 * daemon rejects as InvalidArgument (a title over 500 bytes).
 */
int verb_task(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv);

extern const char ctl_task_help[];
