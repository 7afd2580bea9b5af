-- callcenter-eventd: the event archive (DESIGN.md "Events").
--
-- eventd writes every valid event it forwards, in arrival order, with COPY in
-- batches of up to a few thousand rows; `callcenterctl events --since TIME
-- [--topic PREFIX]` reads them back ordered by id.
--
-- envelope is json, not jsonb: it keeps the envelope exactly as it was
-- published (byte for byte, key order included), and PostgreSQL only
-- validates it instead of converting it. Measured on a 2-core machine with
-- COPY of 100,000 typical envelopes: json 0.42 s, jsonb 0.63 s (0.5 s and
-- 0.9 s with this table's indexes). Queries that need data fields can cast
-- (envelope::jsonb) on the rows they select.
--
-- Exactly-once: eventd's database link re-runs a batch whose result it did
-- not see (connection lost during COMMIT). Each batch inserts its own row in
-- events_batches in the same transaction, so the re-run of a batch that did
-- commit fails on that row's key and stores nothing twice. This costs one
-- tiny row per batch instead of a unique index over every event, which
-- halved the archive's throughput when we tried it.

-- id: an identity with CACHE 100 rather than bigserial's one nextval() per
-- row (which takes a buffer lock each time and writes WAL every 32 values):
-- about 10% less PostgreSQL CPU per archived row. eventd writes through one
-- session at a time, so ids still follow arrival order; a reconnect only
-- skips the rest of a cached block.
CREATE TABLE events (
        id bigint GENERATED ALWAYS AS IDENTITY (CACHE 100) PRIMARY KEY,
        topic text NOT NULL,                -- "<source>.<entity>.<verb>"
        source text NOT NULL,
        host text NOT NULL,
        seq bigint NOT NULL CHECK (seq >= 0),
        time timestamptz NOT NULL,          -- the envelope's time (publisher clock)
        type text NOT NULL,                 -- "<entity>.<verb>"
        envelope json NOT NULL,             -- the whole envelope as published
        received timestamptz NOT NULL DEFAULT now() -- when the batch was stored
);

-- --since: rows arrive in about time order, which is what BRIN is for; it is
-- a few pages in size and costs next to nothing per insert. A topic prefix is
-- filtered on the rows the time range selects.
CREATE INDEX events_time_brin ON events USING brin (time);

-- One row per archived batch: "<eventd run id>:<batch number>". eventd
-- deletes rows older than a week (a batch is never re-run that late).
CREATE TABLE events_batches (
        batch text PRIMARY KEY,
        created timestamptz NOT NULL DEFAULT now()
);
