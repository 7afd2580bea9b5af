-- callcenter-routerd: an operator's queues as text[], and whether they were
-- set at run time.
--
-- router_operators.queues was one space-separated text value, split again
-- by routerd at start. It becomes an array, read back element by element.
--
-- queues_set is true when a supervisor set the operator's queues at run
-- time (Router1.SetOperatorQueues, "callcenterctl operator queues"): that
-- membership then wins over [router] queues, at a restart and at a reload.
-- An empty array with queues_set means "every queue" (DESIGN.md: an
-- operator with no explicit membership serves every queue). Without
-- queues_set the column only records what the operator served.

ALTER TABLE router_operators ALTER COLUMN queues DROP DEFAULT;
ALTER TABLE router_operators ALTER COLUMN queues TYPE text[]
        USING coalesce(regexp_split_to_array(nullif(btrim(queues), ''), ' +'), ARRAY['default']);
ALTER TABLE router_operators ALTER COLUMN queues SET DEFAULT ARRAY['default'];
ALTER TABLE router_operators ADD COLUMN queues_set boolean NOT NULL DEFAULT false;
ALTER TABLE router_operators ADD CONSTRAINT router_operators_queues
        CHECK (array_position(queues, NULL) IS NULL AND (queues_set OR cardinality(queues) > 0));
