/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "bus-util.h"
#include "cleanup.h"
#include "ctl-output.h"
#include "ctl-task.h"
#include "dbus/names.h"

const char ctl_task_help[] =
        "Subcommands:\n"
        "  add TITLE [--parent ID] [--call ID]   Create a task (under ID; linked to a call); prints its id\n"
        "  done ID                               Mark a task done (its subtasks must be done)\n"
        "  reopen ID                             Mark a done task open again\n"
        "  rm ID                                 Delete a task and all its subtasks\n"
        "  tree [ID]                             Show the tree under ID (ID included), or every task\n"
        "\n"
        "tree prints one task per line, indented by depth: \"[ ] ID TITLE\" for an open task,\n"
        "\"[x] ID TITLE\" for a done one, and \"(call CALL)\" when it is linked to a call.\n"
        "With -o json, one object per line: id, parent, title, state, call.\n"
        "\n"
        "Options:\n"
        "  -p, --parent=ID   add: the parent task (default: top level)\n"
        "  -c, --call=ID     add: the call the task belongs to\n";

typedef struct TaskArgs {
        const char *parent;
        const char *call;
} TaskArgs;

static int parse_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
        TaskArgs *a = userdata;

        switch (opt) {
        case 'p':
                a->parent = arg;
                return 0;
        case 'c':
                a->call = arg;
                return 0;
        default:
                return -EINVAL;
        }
}

/*
 * A task id: decimal, > 0 unless zero_ok. strtoull() alone would take " 5",
 * "+5" and "-1" (as a huge number); an id typed wrong must be a usage error,
 * not a call for some other task.
 */
static int parse_id(Ctl *ctl, const CtlCommand *cmd, const char *what, const char *s, bool zero_ok,
                    uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (!*s || *end || errno != 0 || s[0] == '-' || s[0] == '+' || (v == 0 && !zero_ok)) {
                ctl_usage_error(ctl, cmd, "invalid %s '%s': expected a task id (a positive number)", what, s);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

/*
 * Report a failed call with the daemon's own message (it names the task and
 * the rule). InvalidArgument means the user's argument was bad (a title over
 * 500 bytes), which DESIGN.md counts as bad usage: exit 2, not 1.
 */
static int call_failed(const sd_bus_error *error, int r) {
        if (sd_bus_error_is_set(error)) {
                ctl_error("%s", error->message ?: error->name);
                return sd_bus_error_has_name(error, CC_ERROR_INVALID_ARGUMENT) ? CTL_EXIT_USAGE : CTL_EXIT_REFUSED;
        }
        return ctl_error("D-Bus call failed: %s", strerror(-r));
}

static int task_add(Ctl *ctl, const CtlCommand *cmd, sd_bus *bus, const TaskArgs *a, const char *title) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint64_t parent = 0, id;
        int r;

        if (a->parent && parse_id(ctl, cmd, "--parent", a->parent, true, &parent) < 0)
                return CTL_EXIT_USAGE;
        /* Caught here so that the message names the command; the daemon
         * checks the rest (length, UTF-8) and says the same in its words. */
        if (!*title)
                return ctl_usage_error(ctl, cmd, "a title must not be empty");

        r = sd_bus_call_method(bus, CC_TASKS_SERVICE, CC_TASKS_PATH, CC_TASKS_INTERFACE, "CreateTask", &error,
                               &reply, "sts", title, parent, a->call ?: "");
        if (r < 0)
                return call_failed(&error, r);
        r = sd_bus_message_read(reply, "t", &id);
        if (r < 0)
                return ctl_error("bad reply from %s: %s", CC_TASKS_SERVICE, strerror(-r));

        /* Text is the bare id, so that scripts can say id=$(callcenterctl task add ...). */
        if (ctl->output == CTL_OUTPUT_JSON) {
                _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
                if (!o || json_object_object_add(o, "id", json_object_new_uint64(id)) < 0)
                        return ctl_error("out of memory");
                r = ctl_print_json(o);
        } else
                r = printf("%" PRIu64 "\n", id) < 0 ? -EIO : 0;
        return r < 0 && r != -EPIPE ? ctl_error("cannot write the output: %s", strerror(-r)) : CTL_EXIT_SUCCESS;
}

static int task_simple(Ctl *ctl, const CtlCommand *cmd, sd_bus *bus, const char *method, const char *arg) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t id;
        int r;

        if (parse_id(ctl, cmd, "ID", arg, false, &id) < 0)
                return CTL_EXIT_USAGE;
        r = sd_bus_call_method(bus, CC_TASKS_SERVICE, CC_TASKS_PATH, CC_TASKS_INTERFACE, method, &error, NULL,
                               "t", id);
        if (r < 0)
                return call_failed(&error, r);
        return CTL_EXIT_SUCCESS;
}

/* Print s with control characters escaped: titles come from anyone. */
static void put_safe(const char *s) {
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                if (c < 0x20 || c == 0x7f)
                        printf("\\x%02x", c);
                else
                        putchar(c);
        }
}

static int task_tree(Ctl *ctl, const CtlCommand *cmd, sd_bus *bus, const char *arg) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(freep) uint64_t *stack = NULL;
        size_t depth = 0, stack_alloc = 0;
        bool colour = ctl_colour_enabled(ctl);
        uint64_t root = 0;
        int r;

        if (arg && parse_id(ctl, cmd, "ID", arg, true, &root) < 0)
                return CTL_EXIT_USAGE;
        r = sd_bus_call_method(bus, CC_TASKS_SERVICE, CC_TASKS_PATH, CC_TASKS_INTERFACE, "ListTasks", &error,
                               &reply, "t", root);
        if (r < 0)
                return call_failed(&error, r);

        /* One line per task as it is read: a big tree is never held twice. */
        r = sd_bus_message_enter_container(reply, 'a', "(ttsss)");
        while (r >= 0) {
                const char *title, *state, *call;
                uint64_t id, parent;

                r = sd_bus_message_read(reply, "(ttsss)", &id, &parent, &title, &state, &call);
                if (r <= 0)
                        break;

                /* The keys and values are the D-Bus fields (DESIGN.md): parent 0
                 * and call "" mean none, as on the bus. */
                if (ctl->output == CTL_OUTPUT_JSON) {
                        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
                        if (!o || json_object_object_add(o, "id", json_object_new_uint64(id)) < 0 ||
                            json_object_object_add(o, "parent", json_object_new_uint64(parent)) < 0 ||
                            json_object_object_add(o, "title", json_object_new_string(title)) < 0 ||
                            json_object_object_add(o, "state", json_object_new_string(state)) < 0 ||
                            json_object_object_add(o, "call", json_object_new_string(call)) < 0)
                                return ctl_error("out of memory");
                        r = ctl_print_json(o);
                        if (r < 0)
                                break;
                        continue;
                }

                /* Depth from the list itself: it is depth-first, so the
                 * ancestors of a task are exactly the stack up to its
                 * parent. */
                while (depth > 0 && stack[depth - 1] != parent)
                        depth--;
                for (size_t i = 0; i < depth; i++)
                        fputs("  ", stdout);
                bool done = strcmp(state, "done") == 0;
                printf("%s[%c] %" PRIu64 " ", colour && done ? ANSI_DIM : "", done ? 'x' : ' ', id);
                put_safe(title);
                if (*call) {
                        fputs(" (call ", stdout);
                        put_safe(call);
                        putchar(')');
                }
                fputs(colour && done ? ANSI_RESET "\n" : "\n", stdout);

                if (depth + 1 > stack_alloc) {
                        size_t n = stack_alloc ? stack_alloc * 2 : 16;
                        uint64_t *s = realloc(stack, n * sizeof(uint64_t));
                        if (!s)
                                return ctl_error("out of memory");
                        stack = s;
                        stack_alloc = n;
                }
                stack[depth++] = id;
                r = ctl_output_error();
                if (r < 0)
                        break;
        }
        if (r == -EPIPE)
                return CTL_EXIT_SUCCESS;
        if (r < 0)
                return ctl_error("cannot read the task list: %s", strerror(-r));
        r = ctl_flush();
        return r < 0 && r != -EPIPE ? ctl_error("cannot write the output: %s", strerror(-r)) : CTL_EXIT_SUCCESS;
}

int verb_task(Ctl *ctl, const CtlCommand *cmd, int argc, char **argv) {
        static const struct option options[] = {
                { "parent", required_argument, NULL, 'p' },
                { "call", required_argument, NULL, 'c' },
                {},
        };
        TaskArgs a = {};
        const char *sub;
        sd_bus *bus;
        int idx, nargs;

        idx = ctl_parse_options(ctl, cmd, argc, argv, options, "p:c:", parse_option, &a);
        CTL_PARSE_OR_RETURN(idx);
        if (idx >= argc)
                return ctl_usage_error(ctl, cmd, "missing subcommand: add, done, reopen, rm or tree");
        sub = argv[idx];
        nargs = argc - idx - 1;

        /* getopt permutes, so options may come anywhere; they still belong
         * to add alone. */
        if ((a.parent || a.call) && strcmp(sub, "add") != 0)
                return ctl_usage_error(ctl, cmd, "--parent and --call belong to 'task add'");

        /* Check the arguments before touching the bus. */
        if (strcmp(sub, "add") == 0) {
                if (nargs != 1)
                        return ctl_usage_error(ctl, cmd, "'task add' takes one TITLE (quote it)");
        } else if (strcmp(sub, "done") == 0 || strcmp(sub, "reopen") == 0 || strcmp(sub, "rm") == 0) {
                if (nargs != 1)
                        return ctl_usage_error(ctl, cmd, "'task %s' takes one task ID", sub);
        } else if (strcmp(sub, "tree") == 0) {
                if (nargs > 1)
                        return ctl_usage_error(ctl, cmd, "'task tree' takes at most one task ID");
        } else
                return ctl_usage_error(ctl, cmd, "unknown subcommand '%s': expected add, done, reopen, rm or tree",
                                       sub);

        /* So that sd_bus_error_get_errno() maps our error names too. */
        (void) bus_register_errors();
        if (ctl_get_bus(ctl, &bus) < 0)
                return CTL_EXIT_REFUSED;

        if (strcmp(sub, "add") == 0)
                return task_add(ctl, cmd, bus, &a, argv[idx + 1]);
        if (strcmp(sub, "done") == 0)
                return task_simple(ctl, cmd, bus, "CompleteTask", argv[idx + 1]);
        if (strcmp(sub, "reopen") == 0)
                return task_simple(ctl, cmd, bus, "ReopenTask", argv[idx + 1]);
        if (strcmp(sub, "rm") == 0)
                return task_simple(ctl, cmd, bus, "DeleteTask", argv[idx + 1]);
        return task_tree(ctl, cmd, bus, nargs == 1 ? argv[idx + 1] : NULL);
}
