/* SPDX-License-Identifier: MIT */
#pragma once

#include "ctl.h"

/*
 * callcenterctl shell: read command lines from stdin and run them as the
 * commands of the table (so `events --since -1h` works in the shell as on
 * the command line), plus `help [COMMAND]` and `quit`/`exit`/end of input.
 * The prompt "(callcenter) " is shown when stdin is a terminal; piped input
 * gives only the commands' own output, so scripts can compare it.
 *
 * The shell runs one sd-event loop (ctl->shell_event) reading stdin, so
 * that later commands can keep connections open on it and print notices
 * that arrive between two lines the user types.
 */
int verb_shell(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv);

extern const char ctl_shell_help[];

/*
 * Split one command line into words: blanks separate words; '...' is
 * literal; "..." allows \" and \\; a backslash outside quotes escapes the
 * next character; a word starting with an unquoted '#' starts a comment.
 * Returns 0 and a NULL-terminated vector (free with strv_free(), count in
 * *ret_argc), or -EINVAL for an unterminated quote or trailing backslash,
 * -ENOMEM.
 */
int ctl_split_line(const char *line, char ***ret_argv, int *ret_argc);
