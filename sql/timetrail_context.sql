-- Who and why for captured changes (timetrail capture). Install once in the source database:
--   psql "$SOURCE_URL" -f sql/timetrail_context.sql
-- Nothing here writes to any table: the context travels in the write-ahead log as a
-- transactional logical message (prefix 'timetrail'), which the capture reads and puts in the
-- metadata of the changes that follow it in the same transaction. Safe to run again (upgrades).
CREATE SCHEMA IF NOT EXISTS timetrail;

-- 1. Explicit: inside a transaction, before its changes.
--   BEGIN; SELECT timetrail.set_context('{"actor": "alice", "reason": "refund"}'); UPDATE ...; COMMIT;
-- A context set this way wins over query comments (2.) for the rest of its transaction.
CREATE OR REPLACE FUNCTION timetrail.set_context(context jsonb) RETURNS void
LANGUAGE sql VOLATILE AS $$
  SELECT set_config('timetrail.explicit_context', 'on', true);
  SELECT pg_logical_emit_message(true, 'timetrail', context::text);
$$;

-- 2. Automatic: a write statement that ends with a comment
--      UPDATE orders SET status = 'paid' WHERE id = 42 /*timetrail {"actor":"alice"}*/
-- carries that context, also in an implicit (autocommit) transaction, a bulk UPDATE, a COPY or
-- raw SQL, once a table has the statement trigger below (timetrail.track_context). The client
-- integrations (clients/python, clients/ruby, clients/node) append the comment for you.
--
-- Rules, so that the comment cannot be forged through data and never breaks a write:
--   * only a comment at the very end of the statement text counts (trailing blanks and ';'
--     aside): data in a literal cannot end the statement text with "*/";
--   * the JSON text must not contain '/' (clients write it as \u002f), so it can neither close
--     the comment nor hide another marker; the last '/*timetrail ' in the text opens it;
--   * the text is passed on as it is, never cast here: the capture parses it, and keeps text
--     that is not a JSON object as {"context": "<text>"}. A bad comment cannot fail a write;
--   * one message per transaction and context: the trigger fires per statement but emits only
--     when the context differs from the one this transaction last emitted.
CREATE OR REPLACE FUNCTION timetrail.context_from_query() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  tail text;
  found int;
  context text;
BEGIN
  IF current_setting('timetrail.explicit_context', true) = 'on' THEN
    RETURN NULL;
  END IF;
  -- The end of the statement text is enough: the comment is its last part.
  tail := rtrim(right(current_query(), 16384), E' \t\r\n;');
  IF right(tail, 2) <> '*/' THEN
    RETURN NULL;
  END IF;
  found := position(' liartemit*/' IN reverse(tail));  -- the last '/*timetrail '
  IF found = 0 THEN
    RETURN NULL;
  END IF;
  context := substr(tail, length(tail) - found + 2, found - 3);
  IF context = '' OR position('/' IN context) > 0 THEN
    RETURN NULL;
  END IF;
  IF current_setting('timetrail.query_context', true) IS NOT DISTINCT FROM context THEN
    RETURN NULL;  -- this transaction already said so
  END IF;
  PERFORM set_config('timetrail.query_context', context, true);
  PERFORM pg_logical_emit_message(true, 'timetrail', context);
  RETURN NULL;
END
$$;

-- Installs the statement trigger on one table (needs to own it); idempotent.
--   SELECT timetrail.track_context('public.orders');
CREATE OR REPLACE FUNCTION timetrail.track_context(tbl regclass) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  EXECUTE format('CREATE OR REPLACE TRIGGER timetrail_context'
                 ' BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s'
                 ' FOR EACH STATEMENT EXECUTE FUNCTION timetrail.context_from_query()', tbl);
END
$$;

-- Installs it on every table of a publication (the capture's is "timetrail" unless
-- --publication says otherwise); returns how many tables. Run it again after adding tables.
--   SELECT timetrail.track_context_for_publication('timetrail');
CREATE OR REPLACE FUNCTION timetrail.track_context_for_publication(publication name)
RETURNS int LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  t record;
  n int := 0;
BEGIN
  FOR t IN SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = publication
  LOOP
    PERFORM timetrail.track_context(format('%I.%I', t.schemaname, t.tablename)::regclass);
    n := n + 1;
  END LOOP;
  RETURN n;
END
$$;

-- Removes it from one table.
CREATE OR REPLACE FUNCTION timetrail.untrack_context(tbl regclass) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  EXECUTE format('DROP TRIGGER IF EXISTS timetrail_context ON %s', tbl);
END
$$;
