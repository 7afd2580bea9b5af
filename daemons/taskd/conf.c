/* SPDX-License-Identifier: MIT */
#include <stddef.h>

#include "daemons/taskd/conf.h"

const ConfigItem tasks_config_items[] = {
        { .key = "followup_on_missed", .type = CONFIG_BOOL,
          .offset = offsetof(TasksConfig, followup_on_missed), .def = "yes",
          .help = "On router.call.missed create the task \"Call back <call>\" linked to the call (once per call)." },
        {},
};

const ConfigSection taskd_config_sections[] = {
        { .name = "database", .items = config_database_items },
        { .name = "events", .items = config_events_items },
        { .name = "tasks", .items = tasks_config_items },
        {},
};

/* The same sections with their bases pointing into c. */
static void sections_for(TaskdConfig *c, ConfigSection ret[static 4]) {
        ret[0] = (ConfigSection) { "database", config_database_items, &c->database };
        ret[1] = (ConfigSection) { "events", config_events_items, &c->events };
        ret[2] = (ConfigSection) { "tasks", tasks_config_items, &c->tasks };
        ret[3] = (ConfigSection) {};
}

int taskd_config_load(TaskdConfig *c, const char *path) {
        ConfigSection s[4];

        sections_for(c, s);
        return config_load(path, s);
}

void taskd_config_done(TaskdConfig *c) {
        ConfigSection s[4];

        sections_for(c, s);
        config_free(s);
}
