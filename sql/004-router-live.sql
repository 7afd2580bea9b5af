-- callcenter-routerd: live calls apart from the records of ended ones.
--
-- A call's row used to live in router_calls from arrival to hangup, and
-- the partial index of live calls (WHERE ended IS NULL) made the hangup's
-- update a new row version in every index. Now a call that outlives one
-- write-behind batch has a row in router_live_calls (primary key only, so
-- its updates are HOT); at hangup that row is deleted and the finished
-- record is inserted once into router_call_records, which only grows. A
-- call placed and ended within one batch is just that one insert.
--
-- router_calls stays, as a view of both, for the queries that used it
-- (live calls: WHERE ended IS NULL). Records are what they were: same
-- columns, same seq.

ALTER TABLE router_calls RENAME TO router_call_records;
ALTER INDEX router_calls_pkey RENAME TO router_call_records_pkey;
ALTER INDEX router_calls_call RENAME TO router_call_records_call;
ALTER INDEX router_calls_arrived RENAME TO router_call_records_arrived;

CREATE TABLE router_live_calls (LIKE router_call_records INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE router_live_calls ADD PRIMARY KEY (seq);
ALTER TABLE router_live_calls ADD CONSTRAINT router_live_calls_live CHECK (ended IS NULL);
-- Room on each page for the updates of a ringing, then answered call.
ALTER TABLE router_live_calls SET (fillfactor = 70);

INSERT INTO router_live_calls SELECT * FROM router_call_records WHERE ended IS NULL;
DELETE FROM router_call_records WHERE ended IS NULL;
DROP INDEX router_calls_live;
ALTER TABLE router_call_records ADD CONSTRAINT router_call_records_ended CHECK (ended IS NOT NULL);

CREATE VIEW router_calls AS
        SELECT * FROM router_call_records
        UNION ALL
        SELECT * FROM router_live_calls;
