/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * callcenterctl's router commands (DESIGN.md "Command line", "Router1 D-Bus",
 * "TCP wire"):
 *
 *   call ID [--queue NAME], answer OP,         call control
 *   reject OP, hangup ID
 *   operators, calls, status, stats            what the router is doing
 *   operator add|rm OP, operator status OP S   operator administration
 *
 * On the command line every command calls org.callcenter.Router1 over D-Bus
 * (system bus, or the session bus with --user). Call control prints the
 * seed's message lines rebuilt from the method replies ("Call 1 received",
 * "Call 1 ringing for operator A"); -o json prints one object per line with
 * keys named after the D-Bus fields.
 *
 * Inside `callcenterctl shell` (text output), call/answer/reject/hangup
 * speak the seed-compatible TCP wire instead ($CALLCENTER_ROUTER, default
 * 127.0.0.1:5678): the lines printed are the router's own "messages",
 * exactly as the seeds word them, and the connection stays open for the
 * whole shell session so that unsolicited notices (a ring timeout: "Call 1
 * ignored by operator A") are printed as they arrive, between commands.
 * `call ID --queue NAME` sends the wire's optional "queue" (and
 * PlaceCallInQueue over D-Bus); without it the request is the seeds'.
 *
 * Every handler returns CTL_EXIT_SUCCESS, CTL_EXIT_REFUSED (the router said
 * no, or is unreachable: the message is on stderr) or CTL_EXIT_USAGE.
 */

#include "ctl.h"

int verb_router_call(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv);
int verb_router_answer(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv);
int verb_router_reject(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv);
int verb_router_hangup(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv);
int verb_router_operators(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv);
int verb_router_calls(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv);
int verb_router_status(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv);
int verb_router_stats(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv);
int verb_router_operator(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv);

/* --help texts of the rows above. */
extern const char ctl_router_call_help[];
extern const char ctl_router_list_help[];
extern const char ctl_router_operator_help[];

/*
 * Split "HOST:PORT" or "[V6]:PORT" (the $CALLCENTER_ROUTER syntax) into
 * host and port (new strings, free() them). NULL or "" means the default
 * 127.0.0.1:5678. Returns 0, -EINVAL for a malformed address, -ENOMEM.
 */
int ctl_router_parse_address(const char *s, char **ret_host, char **ret_port);
