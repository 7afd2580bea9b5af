/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tasktree.h"
#include "utf8.h"

/*
 * The id index is a libshared hash table with uint64_t keys (Task.hash_node):
 * ids are assigned here, sequentially, so its unkeyed multiplicative hash
 * spreads them well. The follow-up set is a string table: its call ids come
 * from routerd's clients, so it is keyed (SipHash under a random key).
 * Both double when the load factor would pass 1.
 */
typedef struct Followup {
        HashNode node;
        uint64_t task;
        char call[];
} Followup;

struct TaskTree {
        Task root;              /* the sentinel: id 0, parent of top-level tasks */
        HashTable index;        /* Task by id; the sentinel is not in it */
        size_t n_tasks;
        size_t n_open;
        uint64_t next_id;

        HashTable followups;    /* Followup by call */
};

#define INITIAL_BUCKETS 1024

static const char *const state_names[_TASK_STATE_MAX] = {
        [TASK_OPEN] = "open",
        [TASK_DONE] = "done",
};

const char *task_state_to_string(TaskState s) {
        if (s < 0 || s >= _TASK_STATE_MAX)
                return NULL;
        return state_names[s];
}

TaskState task_state_from_string(const char *s) {
        if (s)
                for (int i = 0; i < _TASK_STATE_MAX; i++)
                        if (strcmp(s, state_names[i]) == 0)
                                return (TaskState) i;
        return _TASK_STATE_INVALID;
}

uint64_t task_parent_id(const Task *t) {
        return t->parent ? t->parent->id : 0;
}


int task_title_check(const char *title) {
        size_t n;

        if (!title)
                return -EINVAL;
        n = strlen(title);
        if (n < 1 || n > TASK_TITLE_MAX || !utf8_is_valid(title, n, false))
                return -EINVAL;
        return 0;
}

int task_call_check(const char *call) {
        size_t n;

        if (!call)
                return -EINVAL;
        n = strlen(call);
        if (n > TASK_CALL_MAX || !utf8_is_valid(call, n, false))
                return -EINVAL;
        return 0;
}

int task_tree_new(TaskTree **ret) {
        TaskTree *t;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        hashtable_init(&t->index);
        hashtable_init_string(&t->followups, HASHTABLE_KEY_OFFSET(Followup, node, call), NULL);
        if (hashtable_reserve(&t->index, INITIAL_BUCKETS) < 0 ||
            hashtable_reserve(&t->followups, INITIAL_BUCKETS) < 0) {
                hashtable_done(&t->index);
                hashtable_done(&t->followups);
                free(t);
                return -ENOMEM;
        }
        t->next_id = 1;
        *ret = t;
        return 0;
}

static void task_free(Task *task) {
        free(task->title);
        free(task->call);
        free(task);
}

TaskTree *task_tree_free(TaskTree *t) {
        HashIter i = HASH_ITER_INIT;
        HashNode *n;

        if (!t)
                return NULL;
        /* Every task is in the index: free them from there, no tree walk. */
        while (hashtable_iterate(&t->index, &i, &n)) {
                hashtable_remove(&t->index, n);
                task_free(container_of(n, Task, hash_node));
        }
        i = HASH_ITER_INIT;
        while (hashtable_iterate(&t->followups, &i, &n)) {
                hashtable_remove(&t->followups, n);
                free(container_of(n, Followup, node));
        }
        hashtable_done(&t->index);
        hashtable_done(&t->followups);
        free(t);
        return NULL;
}

size_t task_tree_size(const TaskTree *t) {
        return t->n_tasks;
}

size_t task_tree_open_count(const TaskTree *t) {
        return t->n_open;
}

uint64_t task_tree_next_id(const TaskTree *t) {
        return t->next_id;
}

void task_tree_reserve_ids(TaskTree *t, uint64_t last) {
        if (last < UINT64_MAX && last >= t->next_id)
                t->next_id = last + 1;
}

Task *task_tree_get(const TaskTree *t, uint64_t id) {
        HashNode *n;

        if (id == 0)
                return NULL;
        n = hashtable_find_u64(&t->index, id);
        return n ? container_of(n, Task, hash_node) : NULL;
}

/*
 * Allocate, index and link a task as the last child of parent. The caller
 * has validated everything; only allocation can fail here, and then nothing
 * has changed.
 */
static int tree_insert(TaskTree *t, uint64_t id, Task *parent, const char *title,
                       const char *call, TaskState state, Task **ret) {
        Task *task;

        if (hashtable_reserve(&t->index, t->n_tasks + 1) < 0)
                return -ENOMEM;

        task = calloc(1, sizeof(*task));
        if (!task)
                return -ENOMEM;
        task->title = strdup(title);
        task->call = strdup(call ? call : "");
        if (!task->title || !task->call) {
                task_free(task);
                return -ENOMEM;
        }
        task->id = id;
        task->state = state;
        task->parent = parent;

        hashtable_insert_u64(&t->index, &task->hash_node, id);

        task->prev_sibling = parent->last_child;
        if (parent->last_child)
                parent->last_child->next_sibling = task;
        else
                parent->first_child = task;
        parent->last_child = task;

        if (state == TASK_OPEN) {
                parent->n_open_children++;
                t->n_open++;
        }
        t->n_tasks++;
        if (id >= t->next_id)
                t->next_id = id + 1;
        if (ret)
                *ret = task;
        return 0;
}

static Task *parent_lookup(const TaskTree *t, uint64_t parent) {
        return parent == 0 ? (Task *) &t->root : task_tree_get(t, parent);
}

int task_tree_load(TaskTree *t, uint64_t id, uint64_t parent, const char *title,
                   const char *call, TaskState state) {
        Task *p;

        if (id == 0 || id < t->next_id || task_title_check(title) < 0 ||
            task_call_check(call ? call : "") < 0 || (state != TASK_OPEN && state != TASK_DONE))
                return -EINVAL;
        p = parent_lookup(t, parent);
        if (!p)
                return -ENOENT;
        return tree_insert(t, id, p, title, call, state, NULL);
}

int task_tree_create(TaskTree *t, uint64_t parent, const char *title, const char *call,
                     Task **ret) {
        Task *p;

        if (task_title_check(title) < 0 || task_call_check(call ? call : "") < 0)
                return -EINVAL;
        p = parent_lookup(t, parent);
        if (!p)
                return -ENOENT;
        /* Keeps "every descendant of a done task is done". */
        if (p != &t->root && p->state == TASK_DONE)
                return -EPERM;
        return tree_insert(t, t->next_id, p, title, call, TASK_OPEN, ret);
}

int task_tree_complete(TaskTree *t, uint64_t id) {
        Task *task;

        task = task_tree_get(t, id);
        if (!task)
                return -ENOENT;
        if (task->state == TASK_DONE)
                return -EALREADY;
        /* Only direct children need counting: by the invariant a done child
         * has no open descendants. */
        if (task->n_open_children > 0)
                return -EBUSY;
        task->state = TASK_DONE;
        task->parent->n_open_children--;
        t->n_open--;
        return 0;
}

int task_tree_reopen(TaskTree *t, uint64_t id) {
        Task *task;

        task = task_tree_get(t, id);
        if (!task)
                return -ENOENT;
        if (task->state == TASK_OPEN)
                return -EALREADY;
        if (task->parent != &t->root && task->parent->state == TASK_DONE)
                return -EPERM;
        task->state = TASK_OPEN;
        task->parent->n_open_children++;
        t->n_open++;
        return 0;
}

Task *task_tree_walk_first(const TaskTree *t, uint64_t root) {
        if (root == 0)
                return t->root.first_child;
        return task_tree_get(t, root);
}

Task *task_tree_walk_next(const TaskTree *t, uint64_t root, const Task *cur) {
        const Task *stop = root == 0 ? &t->root : task_tree_get(t, root);

        if (!cur)
                return NULL;
        if (cur->first_child)
                return cur->first_child;
        /* Climb until a node with a next sibling, never above the subtree's
         * root: the root's own siblings are outside the walk. */
        while (cur != stop && cur->parent) {
                if (cur->next_sibling)
                        return cur->next_sibling;
                cur = cur->parent;
                if (cur == stop)
                        break;
        }
        return NULL;
}

size_t task_tree_count_subtree(const TaskTree *t, uint64_t root) {
        size_t n = 0;

        if (root == 0)
                return t->n_tasks;
        for (Task *i = task_tree_walk_first(t, root); i; i = task_tree_walk_next(t, root, i))
                n++;
        return n;
}

int task_tree_delete(TaskTree *t, uint64_t id, TaskVisitor visitor, void *userdata) {
        Task *task, **list;
        size_t n = 0, count;

        task = task_tree_get(t, id);
        if (!task)
                return -ENOENT;

        /* Collect the subtree first: reversed, a pre-order list puts every
         * task before its parent, which is the order subscribers are told
         * (they never see a child outlive its parent). */
        count = task_tree_count_subtree(t, id);
        list = malloc(count * sizeof(Task *));
        if (!list)
                return -ENOMEM;
        for (Task *i = task_tree_walk_first(t, id); i; i = task_tree_walk_next(t, id, i))
                list[n++] = i;

        if (visitor)
                for (size_t i = n; i > 0; i--)
                        visitor(list[i - 1], userdata);

        /* Unlink the subtree's root from its parent; the rest goes with it. */
        if (task->prev_sibling)
                task->prev_sibling->next_sibling = task->next_sibling;
        else
                task->parent->first_child = task->next_sibling;
        if (task->next_sibling)
                task->next_sibling->prev_sibling = task->prev_sibling;
        else
                task->parent->last_child = task->prev_sibling;
        if (task->state == TASK_OPEN)
                task->parent->n_open_children--;

        for (size_t i = 0; i < n; i++) {
                if (list[i]->state == TASK_OPEN)
                        t->n_open--;
                hashtable_remove(&t->index, &list[i]->hash_node);
                task_free(list[i]);
        }
        t->n_tasks -= n;
        free(list);
        return (int) (n > INT32_MAX ? INT32_MAX : n);
}

bool task_tree_has_followup(const TaskTree *t, const char *call) {
        if (!call || !*call)
                return false;
        return hashtable_find_string(&t->followups, call) != NULL;
}

int task_tree_add_followup(TaskTree *t, const char *call, uint64_t task) {
        Followup *f;
        uint64_t h;
        size_t len;

        if (!call || !*call)
                return -EINVAL;
        h = hashtable_hash_string(&t->followups, call);
        if (hashtable_find_string_hashed(&t->followups, call, h))
                return -EEXIST;
        if (hashtable_reserve(&t->followups, hashtable_size(&t->followups) + 1) < 0)
                return -ENOMEM;

        len = strlen(call);
        f = malloc(sizeof(*f) + len + 1);
        if (!f)
                return -ENOMEM;
        memcpy(f->call, call, len + 1);
        f->task = task;
        hashtable_insert_hashed(&t->followups, &f->node, h);
        return 0;
}

size_t task_tree_followup_count(const TaskTree *t) {
        return hashtable_size(&t->followups);
}
