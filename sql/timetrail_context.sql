-- timetrail.set_context(jsonb): attach who/why to the changes that follow in this transaction.
-- The capture (timetrail capture) reads it from the write-ahead log; nothing is written to any
-- table. Call it inside the transaction, before the changes:
--   BEGIN; SELECT timetrail.set_context('{"actor": "alice", "reason": "refund"}'); UPDATE ...; COMMIT;
CREATE SCHEMA IF NOT EXISTS timetrail;
CREATE OR REPLACE FUNCTION timetrail.set_context(context jsonb) RETURNS void LANGUAGE sql VOLATILE AS $$ SELECT pg_logical_emit_message(true, 'timetrail', context::text) $$;
