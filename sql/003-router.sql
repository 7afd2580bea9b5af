-- callcenter-routerd: operators, queues and call records
-- (DESIGN.md "Routing semantics", "org.callcenter.Router1").
--
-- routerd keeps the live state in memory (daemons/routerd/acd.c) and writes
-- it behind, in batches: every 10 ms at most one multi-statement job with the
-- current state of each call and operator that changed since the last one.
-- Each statement is an upsert keyed by the primary key, so a batch that the
-- database link runs again after a lost connection changes nothing twice.
--
-- At start routerd reads the operators (in position order, with their
-- status) and the live calls (ended IS NULL, in arrival order) back: queued
-- and ringing calls return to their place in the queue, answered calls to
-- their operator. Times are CLOCK_REALTIME, written with microseconds.

-- Operators in configured order. A removed operator keeps its row with
-- removed = true, so that a restart does not bring back an operator from
-- [router] operators that a supervisor removed.
CREATE TABLE router_operators (
        id text PRIMARY KEY CHECK (octet_length(id) BETWEEN 1 AND 64),
        position bigint NOT NULL,
        status text NOT NULL CHECK (status IN ('available', 'paused', 'offline')),
        -- the queues the operator serves, space-separated ("default" = the
        -- queue of calls placed without one)
        queues text NOT NULL DEFAULT 'default',
        removed boolean NOT NULL DEFAULT false,
        updated timestamptz NOT NULL DEFAULT now()
);

-- Queues seen by routerd (from [router] queues) and their strategy, for
-- reports; the configuration stays the source of truth for both.
CREATE TABLE router_queues (
        name text PRIMARY KEY CHECK (octet_length(name) BETWEEN 1 AND 64),
        strategy text NOT NULL,
        updated timestamptz NOT NULL DEFAULT now()
);

-- One record per call, from arrival to hangup. seq is routerd's record
-- number (a call id may come back after its call ended, so the id alone is
-- not a key); it also breaks ties between calls that arrived in the same
-- microsecond. While the call lives, state is queued, ringing or answered
-- and ended is NULL; at hangup state and outcome become finished (it was
-- answered) or missed.
CREATE TABLE router_calls (
        seq bigint PRIMARY KEY,
        call text NOT NULL CHECK (octet_length(call) BETWEEN 1 AND 64),
        queue text NOT NULL,
        state text NOT NULL CHECK (state IN ('queued', 'ringing', 'answered', 'finished', 'missed')),
        operator text,              -- ringing/answering operator, or the last one
        arrived timestamptz NOT NULL,
        rang timestamptz,           -- first offer to an operator
        answered timestamptz,
        ended timestamptz,
        outcome text CHECK (outcome IN ('finished', 'missed')),
        waited interval,            -- arrival to answer, or to hangup when missed
        offers integer NOT NULL DEFAULT 0,
        rejects integer NOT NULL DEFAULT 0,
        ignores integer NOT NULL DEFAULT 0,
        CHECK ((ended IS NULL) = (outcome IS NULL))
);

-- The restart's read: live calls in arrival order.
CREATE INDEX router_calls_live ON router_calls (arrived, seq) WHERE ended IS NULL;
-- Reports by call id and by day.
CREATE INDEX router_calls_call ON router_calls (call);
CREATE INDEX router_calls_arrived ON router_calls (arrived);

-- Per-queue figures over ended calls, the way GetStats computes them live:
--   SELECT * FROM router_queue_report WHERE day = current_date;
CREATE VIEW router_queue_report AS
SELECT queue,
       date_trunc('day', arrived) AS day,
       count(*) AS calls,
       count(*) FILTER (WHERE outcome = 'finished') AS answered,
       count(*) FILTER (WHERE outcome = 'missed') AS abandoned,
       avg(waited) FILTER (WHERE outcome = 'finished') AS average_wait,
       max(waited) AS longest_wait
FROM router_calls
WHERE ended IS NOT NULL
GROUP BY queue, date_trunc('day', arrived);
