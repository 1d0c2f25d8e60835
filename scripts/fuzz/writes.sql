-- Installed by scripts/fuzz.sh in the fuzzing database only: every row the
-- API's sessions (application_name `boxoffice-api`) insert, update or delete
-- is logged in `fuzz_writes`, so checks.py can tell that a rejected request
-- wrote nothing. Workers and scheduler are not logged: what they do is not
-- an answer to the request. Safe to run again (new tables get theirs).
CREATE TABLE IF NOT EXISTS fuzz_writes (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  tbl text NOT NULL,
  op text NOT NULL
);

CREATE OR REPLACE FUNCTION fuzz_log_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO fuzz_writes (tbl, op) VALUES (TG_TABLE_NAME, TG_OP);
  RETURN NULL;
END $$;

DO $$
DECLARE t text;
BEGIN
  FOR t IN
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND c.relname NOT IN ('fuzz_writes', '__diesel_schema_migrations')
  LOOP
    EXECUTE format(
      'CREATE OR REPLACE TRIGGER fuzz_log_write AFTER INSERT OR UPDATE OR DELETE ON %I '
      'FOR EACH ROW WHEN (current_setting(''application_name'') = ''boxoffice-api'') '
      'EXECUTE FUNCTION fuzz_log_write()', t);
  END LOOP;
END $$;
