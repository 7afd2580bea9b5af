/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "ctl.h"

#define PROGRAM "callcenterctl"

/* Global options, accepted before the command and by every command. */
enum {
        ARG_USER = 0x100,
        ARG_CONFIG,
        ARG_COLOR,
};

static const struct option global_options[] = {
        { "user", no_argument, NULL, ARG_USER },
        { "output", required_argument, NULL, 'o' },
        { "config", required_argument, NULL, ARG_CONFIG },
        { "color", required_argument, NULL, ARG_COLOR },
        { "colour", required_argument, NULL, ARG_COLOR },
        { "help", no_argument, NULL, 'h' },
        {},
};

static const char *const output_names[_CTL_OUTPUT_MAX] = {
        [CTL_OUTPUT_TEXT] = "text",
        [CTL_OUTPUT_JSON] = "json",
};

CtlOutput ctl_output_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(output_names); i++)
                if (s && strcmp(s, output_names[i]) == 0)
                        return (CtlOutput) i;
        return _CTL_OUTPUT_INVALID;
}

static CtlColour colour_from_string(const char *s) {
        if (strcmp(s, "auto") == 0)
                return CTL_COLOUR_AUTO;
        if (strcmp(s, "always") == 0 || strcmp(s, "yes") == 0)
                return CTL_COLOUR_ALWAYS;
        if (strcmp(s, "never") == 0 || strcmp(s, "no") == 0)
                return CTL_COLOUR_NEVER;
        return _CTL_COLOUR_INVALID;
}

int ctl_usage_error(const Ctl *ctl, const CtlCommand *cmd, const char *format, ...) {
        va_list ap;

        fprintf(stderr, PROGRAM "%s%s: ", cmd ? " " : "", cmd ? cmd->name : "");
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        /* Inside the shell the hint names the shell's own help. */
        if (ctl && ctl->in_shell)
                fprintf(stderr, "\nTry 'help%s%s'.\n", cmd ? " " : "", cmd ? cmd->name : "");
        else
                fprintf(stderr, "\nTry '" PROGRAM "%s%s --help'.\n", cmd ? " " : "", cmd ? cmd->name : "");
        return CTL_EXIT_USAGE;
}

int ctl_error(const char *format, ...) {
        va_list ap;

        fputs(PROGRAM ": ", stderr);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
        return CTL_EXIT_REFUSED;
}

/* How to name option val in a message: "--long" if it has one, else "-c". */
static const char *option_name(const struct option *opts, int val, char buf[static 64]) {
        for (const struct option *o = opts; o && o->name; o++)
                if (o->val == val) {
                        snprintf(buf, 64, "--%s", o->name);
                        return buf;
                }
        if (val > 0 && val < 0x100) {
                snprintf(buf, 64, "-%c", val);
                return buf;
        }
        return "?";
}

int ctl_parse_options(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv,
                      const struct option *options, const char *shortopts,
                      CtlOptionHandler handler, void *userdata) {
        _cleanup_(freep) struct option *merged = NULL;
        _cleanup_(freep) char *shorts = NULL;
        size_t n_global = ELEMENTSOF(global_options) - 1, n_cmd = 0;
        char namebuf[64];
        int c;

        for (const struct option *o = options; o && o->name; o++)
                n_cmd++;
        merged = calloc(n_global + n_cmd + 1, sizeof(struct option));
        if (!merged)
                return -ENOMEM;
        memcpy(merged, global_options, n_global * sizeof(struct option));
        if (n_cmd > 0)
                memcpy(merged + n_global, options, n_cmd * sizeof(struct option));

        /*
         * Before the command ("+": stop at the first non-option, which is
         * the command name) options must not be permuted; after it they may
         * follow arguments. The leading ':' makes getopt report a missing
         * argument as ':' so that both messages are ours, not getopt's
         * (which would name argv[0], the command, as the program).
         */
        if (asprintf(&shorts, "%s:ho:%s", cmd ? "" : "+", shortopts ?: "") < 0) {
                shorts = NULL;
                return -ENOMEM;
        }

        optind = 0; /* glibc: a full reset, the shell parses many argvs */
        opterr = 0;
        while ((c = getopt_long(argc, argv, shorts, merged, NULL)) >= 0) {
                int r;

                switch (c) {
                case 'h':
                        if (cmd)
                                ctl_print_command_help(ctl, cmd, stdout);
                        else
                                ctl_print_help(ctl, stdout);
                        return 0;
                case 'o': {
                        CtlOutput o = ctl_output_from_string(optarg);
                        if (o < 0) {
                                ctl_usage_error(ctl, cmd, "invalid output format '%s': expected 'text' or 'json'", optarg);
                                return -EINVAL;
                        }
                        ctl->output = o;
                        break;
                }
                case ARG_USER:
                        ctl->user = true;
                        break;
                case ARG_CONFIG:
                        if (ctl->config_loaded && (!ctl->config_path || strcmp(ctl->config_path, optarg) != 0)) {
                                ctl_usage_error(ctl, cmd, "--config cannot change once the configuration is loaded");
                                return -EINVAL;
                        }
                        ctl->config_path = optarg;
                        break;
                case ARG_COLOR: {
                        CtlColour col = colour_from_string(optarg);
                        if (col < 0) {
                                ctl_usage_error(ctl, cmd, "invalid --color value '%s': expected auto, always or never", optarg);
                                return -EINVAL;
                        }
                        ctl->colour = col;
                        break;
                }
                case ':':
                        ctl_usage_error(ctl, cmd, "option '%s' needs an argument",
                                        optopt ? option_name(merged, optopt, namebuf) : argv[optind - 1]);
                        return -EINVAL;
                case '?':
                        if (optopt)
                                ctl_usage_error(ctl, cmd, "unknown option '-%c'", optopt);
                        else
                                ctl_usage_error(ctl, cmd, "unknown option '%s'", argv[optind - 1]);
                        return -EINVAL;
                default:
                        /* A command's own option (or, before the command,
                         * main's --version). */
                        if (!handler) {
                                ctl_usage_error(ctl, cmd, "unknown option '%s'", argv[optind - 1]);
                                return -EINVAL;
                        }
                        r = handler(ctl, c, optarg, userdata);
                        if (r < 0)
                                return r;
                }
        }
        /* A command's index is >= 1 (argv[0] is its name); at top level
         * optind == argc means "no command", which main reports. */
        return optind;
}

/* Command list: "  name usage   summary", the name and usage padded to a column. */
void ctl_print_help(const Ctl *ctl, FILE *f) {
        int width = 0;

        for (size_t i = 0; i < ctl->n_commands; i++) {
                int w = (int) (strlen(ctl->commands[i].name) + 1 + strlen(ctl->commands[i].usage));
                if (w > width)
                        width = w;
        }
        if (width > 34)
                width = 34;

        if (ctl->in_shell)
                fputs("Commands (global options such as -o json work after a command):\n", f);
        else
                fputs("Usage: " PROGRAM " [OPTIONS] COMMAND [ARGUMENTS...]\n\n"
                      "Control and watch the callcenter daemons.\n\n"
                      "Commands:\n", f);

        for (size_t i = 0; i < ctl->n_commands; i++) {
                const CtlCommand *c = &ctl->commands[i];
                char col[128];

                if (ctl->in_shell && (c->flags & CTL_COMMAND_NO_SHELL))
                        continue;
                snprintf(col, sizeof col, "%s%s%s", c->name, c->usage[0] ? " " : "", c->usage);
                if ((int) strlen(col) > width)
                        fprintf(f, "  %s\n  %*s  %s\n", col, width, "", c->summary);
                else
                        fprintf(f, "  %-*s  %s\n", width, col, c->summary);
        }

        if (ctl->in_shell) {
                fprintf(f, "  %-*s  %s\n", width, "quit", "Leave the shell (also: exit, end of input)");
                return;
        }

        fputs("\nOptions:\n"
              "      --user             Talk to the daemons on the session bus (default: system bus)\n"
              "  -o, --output=FORMAT    Output format: text (default) or json (one object per line)\n"
              "      --config=PATH      Configuration file (default: ", f);
        fputs(config_default_path(), f);
        fputs(")\n"
              "      --color=WHEN       Colour the output: auto (on a terminal), always, never\n"
              "  -h, --help             Show this help\n"
              "      --version          Show the version\n"
              "\nRun '" PROGRAM " COMMAND --help' for a command's arguments.\n"
              "Environment: CALLCENTER_DATABASE_URL, CALLCENTER_EVENTS, CALLCENTER_EVENTS_PUBLISH,\n"
              "DBUS_SESSION_BUS_ADDRESS (with --user), NO_COLOR.\n"
              "Exit status: 0 success, 1 refused or failed operation, 2 bad usage.\n", f);
}

void ctl_print_command_help(const Ctl *ctl, const CtlCommand *cmd, FILE *f) {
        fprintf(f, "Usage: %s%s%s%s\n\n%s\n", ctl->in_shell ? "" : PROGRAM " [OPTIONS] ", cmd->name,
                cmd->usage[0] ? " " : "", cmd->usage, cmd->summary);
        if (cmd->help)
                fprintf(f, "\n%s", cmd->help);
        if (!ctl->in_shell)
                fputs("\nGlobal options (--user, -o json, --config=PATH ...) are accepted too;\n"
                      "see '" PROGRAM " --help'.\n", f);
}

const CtlCommand *ctl_find_command(const Ctl *ctl, const char *name) {
        for (size_t i = 0; i < ctl->n_commands; i++)
                if (strcmp(ctl->commands[i].name, name) == 0)
                        return &ctl->commands[i];
        return NULL;
}

int ctl_run_command(Ctl *ctl, int argc, char **argv) {
        const CtlCommand *cmd;
        int r;

        cmd = ctl_find_command(ctl, argv[0]);
        if (!cmd || (ctl->in_shell && (cmd->flags & CTL_COMMAND_NO_SHELL)))
                return ctl_usage_error(ctl, NULL, "unknown command '%s'", argv[0]);

        r = cmd->run(ctl, cmd, argc, argv);
        /* Commands print their own messages; a bare errno is a failure the
         * command already reported. */
        return r < 0 ? CTL_EXIT_REFUSED : r;
}

int ctl_load_config(Ctl *ctl) {
        int r;

        if (ctl->config_loaded)
                return 0;

        const ConfigSection sections[] = {
                { "database", config_database_items, &ctl->database },
                { "events", config_events_items, &ctl->events },
                {},
        };

        /* On failure config_load() has said what and where (file:line). */
        r = config_load(ctl->config_path, sections);
        if (r < 0) {
                config_free(sections);
                return r;
        }

        ctl->config_loaded = true;
        return 0;
}

int ctl_get_bus(Ctl *ctl, sd_bus **ret) {
        int r;

        if (!ctl->bus) {
                r = ctl->user ? sd_bus_open_user(&ctl->bus) : sd_bus_open_system(&ctl->bus);
                if (r < 0) {
                        ctl->bus = NULL;
                        ctl_error("cannot connect to the %s bus: %s%s", ctl->user ? "session" : "system",
                                  strerror(-r),
                                  ctl->user ? " (is DBUS_SESSION_BUS_ADDRESS set? ./dev.sh up prints it)" : "");
                        return r;
                }
        }
        *ret = ctl->bus;
        return 0;
}

void ctl_done(Ctl *ctl) {
        if (ctl->config_loaded) {
                const ConfigSection sections[] = {
                        { "database", config_database_items, &ctl->database },
                        { "events", config_events_items, &ctl->events },
                        {},
                };
                config_free(sections);
                ctl->config_loaded = false;
        }
        ctl->bus = sd_bus_flush_close_unref(ctl->bus);
}

int verb_help(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv) {
        const CtlCommand *c;
        int idx;

        idx = ctl_parse_options(ctl, cmd, argc, argv, NULL, NULL, NULL, NULL);
        CTL_PARSE_OR_RETURN(idx);
        if (idx >= argc) {
                ctl_print_help(ctl, stdout);
                return CTL_EXIT_SUCCESS;
        }
        if (idx + 1 < argc)
                return ctl_usage_error(ctl, cmd, "unexpected argument '%s'", argv[idx + 1]);

        c = ctl_find_command(ctl, argv[idx]);
        if (!c || (ctl->in_shell && (c->flags & CTL_COMMAND_NO_SHELL)))
                return ctl_usage_error(ctl, NULL, "unknown command '%s'", argv[idx]);
        ctl_print_command_help(ctl, c, stdout);
        return CTL_EXIT_SUCCESS;
}
