-- callcenter-taskd: the task tree (DESIGN.md "org.callcenter.Tasks1").
--
-- One row per task; parent references the parent task (NULL = top level),
-- and deleting a task deletes its subtree through ON DELETE CASCADE. Ids are
-- assigned by taskd in increasing order, so id order is creation order
-- (children are listed ORDER BY id). taskd validates every change against
-- its in-memory copy of this table and writes batches of changes, one
-- transaction per batch; the CHECKs below hold the same rules so that no
-- other writer can store what taskd would refuse.

CREATE TABLE tasks (
        id bigint PRIMARY KEY CHECK (id > 0),
        parent bigint REFERENCES tasks (id) ON DELETE CASCADE,
        title text NOT NULL CHECK (octet_length(title) BETWEEN 1 AND 500),
        state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done')),
        call text CHECK (call <> '' AND octet_length(call) <= 500),
        created timestamptz NOT NULL DEFAULT now(),
        updated timestamptz NOT NULL DEFAULT now(),
        CHECK (parent IS NULL OR parent < id)
);

-- Children of a task in creation order, and the cascade's lookups.
CREATE INDEX tasks_parent_id ON tasks (parent, id);
-- Tasks linked to a call.
CREATE INDEX tasks_call ON tasks (call) WHERE call IS NOT NULL;

-- The highest id ever assigned, so that a restart after deleting the newest
-- tasks never hands their ids out again (events and logs keep naming them).
-- Every batch that creates tasks raises it in the same transaction.
CREATE TABLE task_ids (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        last bigint NOT NULL
);
INSERT INTO task_ids (last) VALUES (0);

-- Which calls already got their "Call back <call>" task ([tasks]
-- followup_on_missed). The primary key makes a repeated router.call.missed
-- event a no-op (INSERT ... ON CONFLICT DO NOTHING), even across restarts
-- and even after the follow-up task itself was deleted; so task is not a
-- foreign key.
CREATE TABLE task_followups (
        call text PRIMARY KEY,
        task bigint NOT NULL,
        created timestamptz NOT NULL DEFAULT now()
);

-- A subtree in one query, depth-first with children in creation order, for
-- reports and for operators at the psql prompt:
--   SELECT * FROM task_subtree(42);   -- 42 and everything under it
--   SELECT * FROM task_subtree(NULL); -- the whole forest
-- taskd itself answers ListTasks from its in-memory index.
CREATE FUNCTION task_subtree(root bigint)
RETURNS TABLE (id bigint, parent bigint, title text, state text, call text, depth int)
LANGUAGE sql STABLE AS $$
        WITH RECURSIVE sub AS (
                SELECT t.id, t.parent, t.title, t.state, t.call, 0 AS depth,
                       ARRAY[t.id] AS path
                FROM tasks t
                WHERE (root IS NULL AND t.parent IS NULL) OR t.id = root
                UNION ALL
                SELECT c.id, c.parent, c.title, c.state, c.call, s.depth + 1, s.path || c.id
                FROM tasks c JOIN sub s ON c.parent = s.id
        )
        SELECT sub.id, sub.parent, sub.title, sub.state, sub.call, sub.depth
        FROM sub ORDER BY sub.path
$$;
