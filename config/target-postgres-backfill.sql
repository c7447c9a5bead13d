-- tap-ceilometer: ready a PostgreSQL schema for a large backfill by target-postgres (README,
-- "Scaling out", "Large backfills").
--
-- Run it in the schema the target loads into, once its tables exist (`tap-ceilometer
-- --test=schema | target-postgres` makes them):
--   psql -q -h 127.0.0.1 -U postgres -d test -v ON_ERROR_STOP=1 -c 'SET search_path TO ceilometer' -f config/target-postgres-backfill.sql
-- It creates the function prepare_ceilometer_backfill() in that schema and runs it once; run it
-- again after a load that brought new tables: SELECT ceilometer.prepare_ceilometer_backfill();
--
-- Why: target-postgres 0.8.1 merges each batch by INSERTing the new keys from a temporary
-- table and then UPDATing every key of the batch, so every sample it loads is written twice
-- (a dead row and a second index entry per sample). PostgreSQL's own
-- suppress_redundant_updates_trigger() skips an UPDATE that changes nothing: a new sample is
-- written once, and a row whose values did change (a Gnocchi period that moved on, a renamed
-- project) is still updated. No row differs from a load without it.

CREATE OR REPLACE FUNCTION prepare_ceilometer_backfill() RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT  -- always works on the schema it was created in
AS $prepare$
DECLARE
    target_schema text := current_schema();
    missing record;
    added integer := 0;
BEGIN
    IF target_schema IS NULL THEN
        RAISE EXCEPTION 'prepare_ceilometer_backfill: no schema of the search_path exists';
    END IF;
    FOR missing IN
        SELECT c.relname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = target_schema AND c.relkind = 'r'
          AND NOT EXISTS (SELECT 1 FROM pg_trigger t
                          WHERE t.tgrelid = c.oid AND t.tgname = 'ceilometer_skip_unchanged')
    LOOP
        EXECUTE format('CREATE TRIGGER ceilometer_skip_unchanged BEFORE UPDATE ON %I.%I '
                       'FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()',
                       target_schema, missing.relname);
        added := added + 1;
    END LOOP;
    RETURN added;
END
$prepare$;

SELECT prepare_ceilometer_backfill();
