/* SPDX-License-Identifier: MIT */
/* Unit tests of daemons/taskd/tasktree.c: the rules, the walk, deletes. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/taskd/tasktree.h"
#include "libshared/utf8.h"
#include "tests/tap.h"

static const struct {
        const char *s;
        size_t n; /* 0 = strlen */
        bool valid;
} utf8_cases[] = {
        { "", 0, true },
        { "plain ascii", 0, true },
        { "ol\xc3\xa1 tarefa", 0, true },                 /* á */
        { "\xe2\x82\xac", 0, true },                       /* € */
        { "\xf0\x9f\x93\x9e call", 0, true },              /* 📞 */
        { "\xf4\x8f\xbf\xbf", 0, true },                   /* U+10FFFF */
        { "\xc3", 0, false },                              /* truncated */
        { "\xe2\x82", 0, false },
        { "\xc0\xaf", 0, false },                          /* overlong / */
        { "\xe0\x80\xaf", 0, false },                      /* overlong */
        { "\xf0\x80\x80\xaf", 0, false },                  /* overlong */
        { "\xed\xa0\x80", 0, false },                      /* surrogate D800 */
        { "\xf4\x90\x80\x80", 0, false },                  /* > U+10FFFF */
        { "\xff", 0, false },
        { "\x80", 0, false },                              /* lone continuation */
        { "a\0b", 3, false },                              /* NUL */
};

static void test_utf8(void) {
        for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
                size_t n = utf8_cases[i].n ? utf8_cases[i].n : strlen(utf8_cases[i].s);
                ok(utf8_is_valid(utf8_cases[i].s, n, false) == utf8_cases[i].valid, "utf8 case %zu is %s", i,
                   utf8_cases[i].valid ? "valid" : "invalid");
        }
}

static void test_title(void) {
        char buf[TASK_TITLE_MAX + 2];

        is_int(task_title_check(""), -EINVAL, "empty title refused");
        is_int(task_title_check("x"), 0, "1-byte title accepted");
        memset(buf, 'a', TASK_TITLE_MAX);
        buf[TASK_TITLE_MAX] = '\0';
        is_int(task_title_check(buf), 0, "500-byte title accepted");
        buf[TASK_TITLE_MAX] = 'a';
        buf[TASK_TITLE_MAX + 1] = '\0';
        is_int(task_title_check(buf), -EINVAL, "501-byte title refused");
        /* 499 ASCII bytes plus a 2-byte character: 501 bytes, 500 characters. */
        memset(buf, 'a', TASK_TITLE_MAX - 1);
        memcpy(buf + TASK_TITLE_MAX - 1, "\xc3\xa1", 3);
        is_int(task_title_check(buf), -EINVAL, "the limit counts bytes, not characters");
        is_int(task_title_check("bad \xff"), -EINVAL, "invalid UTF-8 title refused");
        is_int(task_call_check(""), 0, "empty call id means none");
        is_int(task_call_check("call-1"), 0, "call id accepted");
        is_int(task_call_check("\xc3"), -EINVAL, "invalid UTF-8 call id refused");
}

/* The walk of root as "id(parent)state ..." for comparison. */
static char *walk(TaskTree *t, uint64_t root) {
        static char buf[4096];
        size_t n = 0;

        buf[0] = '\0';
        for (Task *i = task_tree_walk_first(t, root); i; i = task_tree_walk_next(t, root, i))
                n += (size_t) snprintf(buf + n, sizeof(buf) - n, "%s%" PRIu64 "(%" PRIu64 ")%c", n ? " " : "",
                                       i->id, task_parent_id(i), i->state == TASK_DONE ? 'd' : 'o');
        return buf;
}

static uint64_t create(TaskTree *t, uint64_t parent, const char *title) {
        Task *task = NULL;
        int r = task_tree_create(t, parent, title, "", &task);
        return r < 0 ? 0 : task->id;
}

static void test_rules(void) {
        TaskTree *t = NULL;
        Task *task = NULL;

        is_int(task_tree_new(&t), 0, "new tree");
        is_int(task_tree_next_id(t), 1, "ids start at 1");

        /*
         * 1
         * ├─ 2
         * │  ├─ 4
         * │  └─ 5
         * └─ 3
         * 6
         */
        is_int(create(t, 0, "one"), 1, "top-level task 1");
        is_int(create(t, 1, "two"), 2, "subtask 2 of 1");
        is_int(create(t, 1, "three"), 3, "subtask 3 of 1");
        is_int(create(t, 2, "four"), 4, "subtask 4 of 2");
        is_int(create(t, 2, "five"), 5, "subtask 5 of 2");
        is_int(create(t, 0, "six"), 6, "top-level task 6");
        is_int(task_tree_create(t, 99, "orphan", "", &task), -ENOENT, "unknown parent: -ENOENT");
        is_int(task_tree_create(t, 0, "", "", &task), -EINVAL, "empty title: -EINVAL");
        is_int(task_tree_next_id(t), 7, "a refused create consumes no id");

        is_str(walk(t, 0), "1(0)o 2(1)o 4(2)o 5(2)o 3(1)o 6(0)o", "whole forest depth-first, creation order");
        is_str(walk(t, 2), "2(1)o 4(2)o 5(2)o", "subtree of 2 includes 2");
        is_str(walk(t, 5), "5(2)o", "a leaf's subtree is the leaf");
        is_str(walk(t, 6), "6(0)o", "the walk stays inside the subtree (no siblings)");
        is_int(task_tree_count_subtree(t, 1), 5, "subtree of 1 has 5 tasks");
        is_int(task_tree_open_count(t), 6, "6 open tasks");

        /* The completion rule. */
        is_int(task_tree_complete(t, 2), -EBUSY, "2 has open subtasks: -EBUSY");
        is_int(task_tree_complete(t, 1), -EBUSY, "1 has open subtasks: -EBUSY");
        is_int(task_tree_complete(t, 4), 0, "complete 4");
        is_int(task_tree_complete(t, 2), -EBUSY, "2 still has open subtask 5");
        is_int(task_tree_complete(t, 5), 0, "complete 5, the last subtask of 2");
        is_int(task_tree_get(t, 2)->state, TASK_OPEN, "completing the last subtask leaves the parent open");
        is_int(task_tree_complete(t, 5), -EALREADY, "completing a done task: -EALREADY");
        is_int(task_tree_complete(t, 2), 0, "complete 2 once its subtasks are done");
        is_int(task_tree_complete(t, 0), -ENOENT, "id 0 is no task");
        is_int(task_tree_complete(t, 42), -ENOENT, "unknown id: -ENOENT");

        /* The invariant: nothing open under a done task. */
        is_int(task_tree_create(t, 2, "late", "", &task), -EPERM, "no new subtask under a done task");
        is_int(task_tree_reopen(t, 4), -EPERM, "no reopening under a done parent");
        is_int(task_tree_reopen(t, 3), -EALREADY, "reopening an open task: -EALREADY");
        is_int(task_tree_reopen(t, 2), 0, "reopen 2");
        is_int(task_tree_reopen(t, 4), 0, "then reopen 4");
        is_int(task_tree_complete(t, 2), -EBUSY, "2 has an open subtask again");
        is_int(task_tree_get(t, 2)->n_open_children, 1, "2 counts one open child");
        is_int(task_tree_open_count(t), 5, "5 open tasks");

        /* Call links. */
        is_int(task_tree_create(t, 6, "Call back 7", "7", &task), 0, "a task linked to a call");
        is_str(task->call, "7", "the call id is kept");
        is_int(task->id, 7, "it is task 7");

        task_tree_free(t);
}

typedef struct Seen {
        char buf[256];
        size_t n;
} Seen;

static void on_visit(const Task *task, void *userdata) {
        Seen *s = userdata;
        /* The task is still linked while it is reported. */
        s->n += (size_t) snprintf(s->buf + s->n, sizeof(s->buf) - s->n, "%s%" PRIu64 "<%" PRIu64,
                                  s->n ? " " : "", task->id, task_parent_id(task));
}

static void test_delete(void) {
        TaskTree *t = NULL;
        Seen seen = {};

        (void) task_tree_new(&t);
        create(t, 0, "1");
        create(t, 1, "2");
        create(t, 2, "3");
        create(t, 2, "4");
        create(t, 1, "5");
        create(t, 0, "6");
        (void) task_tree_complete(t, 3);

        is_int(task_tree_delete(t, 2, on_visit, &seen), 3, "delete 2 removes its subtree of 3");
        is_str(seen.buf, "4<2 3<2 2<1", "every task reported before its parent, root last");
        ok(!task_tree_get(t, 2) && !task_tree_get(t, 3) && !task_tree_get(t, 4), "2, 3, 4 are gone");
        is_str(walk(t, 0), "1(0)o 5(1)o 6(0)o", "the rest of the forest is intact");
        is_int(task_tree_size(t), 3, "3 tasks left");
        is_int(task_tree_open_count(t), 3, "3 open tasks left");
        is_int(task_tree_get(t, 1)->n_open_children, 1, "1 counts only 5 as open child");
        is_int(task_tree_delete(t, 2, NULL, NULL), -ENOENT, "deleting it again: -ENOENT");
        is_int(task_tree_delete(t, 0, NULL, NULL), -ENOENT, "id 0 cannot be deleted");
        is_int(task_tree_complete(t, 5), 0, "complete 5");
        is_int(task_tree_complete(t, 1), 0, "now 1 can be completed");

        is_int(task_tree_delete(t, 6, NULL, NULL), 1, "delete the last top-level task");
        is_str(walk(t, 0), "1(0)d 5(1)d", "last sibling unlinked cleanly");
        is_int(task_tree_delete(t, 1, NULL, NULL), 2, "delete the first top-level task");
        ok(task_tree_walk_first(t, 0) == NULL, "the forest is empty");
        is_int(task_tree_size(t), 0, "no tasks");
        is_int(create(t, 0, "again"), 7, "ids are never reused");
        task_tree_free(t);
}

static void test_load(void) {
        TaskTree *t = NULL;

        (void) task_tree_new(&t);
        is_int(task_tree_load(t, 5, 0, "five", "", TASK_OPEN), 0, "load 5");
        is_int(task_tree_load(t, 9, 5, "nine", "c1", TASK_DONE), 0, "load 9 under 5");
        is_int(task_tree_load(t, 7, 0, "seven", "", TASK_OPEN), -EINVAL, "ids must increase");
        is_int(task_tree_load(t, 12, 11, "orphan", "", TASK_OPEN), -ENOENT, "parent must be loaded first");
        is_int(task_tree_load(t, 13, 0, "", "", TASK_OPEN), -EINVAL, "bad title refused when loading");
        is_int(task_tree_next_id(t), 10, "next id follows the largest loaded id");
        is_int(task_tree_get(t, 5)->n_open_children, 0, "done child is not counted as open");
        is_int(task_tree_open_count(t), 1, "one open task loaded");
        is_int(create(t, 5, "ten"), 10, "new task gets id 10");

        ok(!task_tree_has_followup(t, "c1"), "no follow-up for c1 yet");
        is_int(task_tree_add_followup(t, "c1", 9), 0, "record a follow-up");
        ok(task_tree_has_followup(t, "c1"), "c1 has its follow-up");
        is_int(task_tree_add_followup(t, "c1", 11), -EEXIST, "a second one is refused");
        is_int(task_tree_add_followup(t, "", 11), -EINVAL, "empty call refused");
        for (int i = 0; i < 5000; i++) {
                char call[32];
                snprintf(call, sizeof(call), "call-%d", i);
                if (task_tree_add_followup(t, call, (uint64_t) i + 100) < 0)
                        break;
        }
        is_int(task_tree_followup_count(t), 5001, "the follow-up set grows");
        ok(task_tree_has_followup(t, "call-4999") && task_tree_has_followup(t, "call-0") &&
                   !task_tree_has_followup(t, "call-5000"),
           "lookups after growth");
        task_tree_free(t);
}

/* Recount every task's open children and check the tree's counters. */
static bool invariants_hold(TaskTree *t) {
        size_t n = 0, open = 0;

        for (Task *i = task_tree_walk_first(t, 0); i; i = task_tree_walk_next(t, 0, i)) {
                unsigned o = 0;
                n++;
                if (i->state == TASK_OPEN)
                        open++;
                for (Task *c = i->first_child; c; c = c->next_sibling) {
                        if (c->parent != i || (c->next_sibling && c->next_sibling->id <= c->id))
                                return false;
                        if (c->state == TASK_OPEN)
                                o++;
                        /* Nothing open under a done task. */
                        if (i->state == TASK_DONE && c->state == TASK_OPEN)
                                return false;
                }
                if (o != i->n_open_children || task_tree_get(t, i->id) != i)
                        return false;
        }
        return n == task_tree_size(t) && open == task_tree_open_count(t);
}

static void test_random(void) {
        TaskTree *t = NULL;
        uint64_t seed = 42;
        bool good = true;

        (void) task_tree_new(&t);
        for (int step = 0; step < 20000 && good; step++) {
                uint64_t next = task_tree_next_id(t), id;
                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                id = next > 1 ? (seed >> 33) % next : 0;
                switch ((seed >> 20) % 8) {
                case 0: case 1: case 2: case 3:
                        (void) task_tree_create(t, task_tree_get(t, id) ? id : 0, "t", "", NULL);
                        break;
                case 4: case 5:
                        (void) task_tree_complete(t, id);
                        break;
                case 6:
                        (void) task_tree_reopen(t, id);
                        break;
                case 7:
                        if ((seed >> 40) % 4 == 0)
                                (void) task_tree_delete(t, id, NULL, NULL);
                        break;
                }
                if (step % 500 == 0)
                        good = invariants_hold(t);
        }
        ok(good && invariants_hold(t), "20000 random operations keep every invariant (%zu tasks left)",
           task_tree_size(t));
        task_tree_free(t);
}

static void test_deep(void) {
        TaskTree *t = NULL;
        uint64_t parent = 0;
        size_t n = 0;

        /* A chain 100000 deep: the walk and the delete must not recurse. */
        (void) task_tree_new(&t);
        for (int i = 0; i < 100000; i++)
                parent = create(t, parent, "deep");
        for (Task *i = task_tree_walk_first(t, 0); i; i = task_tree_walk_next(t, 0, i))
                n++;
        is_int(n, 100000, "walk of a 100000-deep chain");
        is_int(task_tree_delete(t, 1, NULL, NULL), 100000, "delete of a 100000-deep chain");
        is_int(task_tree_size(t), 0, "nothing left");
        task_tree_free(t);
}

int main(void) {
        test_utf8();
        test_title();
        test_rules();
        test_delete();
        test_load();
        test_random();
        test_deep();
        ok(task_state_from_string("done") == TASK_DONE && task_state_from_string("open") == TASK_OPEN &&
                   task_state_from_string("closed") == _TASK_STATE_INVALID,
           "state names");
        ok(task_tree_free(NULL) == NULL, "task_tree_free(NULL)");
        return done_testing();
}
