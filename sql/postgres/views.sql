-- tap-ceilometer BI views for PostgreSQL (docs/bi.md).
--
-- Run it in the schema the tap loads into, e.g. with the demo's schema `ceilometer`:
--   psql -q -h 127.0.0.1 -U postgres -d test -v ON_ERROR_STOP=1 -c 'SET search_path TO ceilometer' -f sql/postgres/views.sql
-- It creates the function refresh_ceilometer_views() in that schema and runs it once. After a
-- load that brought new meters (new tables), run it again:
--   SELECT ceilometer.refresh_ceilometer_views();
--
-- Views made (in the same schema):
--   all_samples          every row of every table that has the sample columns (both layouts)
--   samples_named        all_samples + project_name (from table projects) + project (name, or id)
--   cumulative_increase  cumulative samples with the increase since the previous sample of the
--                        same resource and meter (the value itself after a reset)

CREATE OR REPLACE FUNCTION refresh_ceilometer_views() RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT  -- always works on the schema it was created in
AS $refresh$
DECLARE
    target_schema text := current_schema();
    sample_columns text[] := ARRAY[
        'counter_name', 'counter_type', 'counter_unit', 'counter_volume', 'message_id',
        'project_id', 'resource_id', 'source', 'timestamp', 'user_id', 'recorded_at',
        'resource_metadata'];
    union_sql text;
    sample_tables integer;
BEGIN
    IF target_schema IS NULL THEN
        RAISE EXCEPTION 'refresh_ceilometer_views: no schema of the search_path exists';
    END IF;

    -- Every base table of the schema with all the sample columns: one per meter (layout
    -- per_meter) or `samples` (layout single). Date-times become UTC without a zone.
    SELECT count(*), string_agg(format(
            'SELECT counter_name::text AS counter_name, counter_type::text AS counter_type, '
            'counter_unit::text AS counter_unit, counter_volume::double precision AS counter_volume, '
            'message_id::text AS message_id, project_id::text AS project_id, '
            'resource_id::text AS resource_id, source::text AS source, %s AS "timestamp", '
            'user_id::text AS user_id, %s AS recorded_at, '
            'resource_metadata::jsonb AS resource_metadata, %L::text AS sample_table FROM %I.%I',
            CASE WHEN t.timestamp_type = 'timestamp with time zone'
                 THEN '("timestamp" AT TIME ZONE ''UTC'')' ELSE '"timestamp"::timestamp' END,
            CASE WHEN t.recorded_type = 'timestamp with time zone'
                 THEN '(recorded_at AT TIME ZONE ''UTC'')' ELSE 'recorded_at::timestamp' END,
            t.relation, target_schema, t.relation),
        E'\nUNION ALL\n' ORDER BY t.relation)
    INTO sample_tables, union_sql
    FROM (
        SELECT c.table_name::text AS relation,
               max(c.data_type) FILTER (WHERE c.column_name = 'timestamp') AS timestamp_type,
               max(c.data_type) FILTER (WHERE c.column_name = 'recorded_at') AS recorded_type
        FROM information_schema.columns c
        JOIN information_schema.tables r
          ON r.table_schema = c.table_schema AND r.table_name = c.table_name
        WHERE c.table_schema = target_schema AND r.table_type = 'BASE TABLE'
          AND c.column_name = ANY (sample_columns)
        GROUP BY c.table_name
        HAVING count(*) = cardinality(sample_columns)
    ) t;

    IF sample_tables = 0 THEN  -- nothing loaded yet: an empty view of the right shape
        union_sql := 'SELECT NULL::text AS counter_name, NULL::text AS counter_type, '
            'NULL::text AS counter_unit, NULL::double precision AS counter_volume, '
            'NULL::text AS message_id, NULL::text AS project_id, NULL::text AS resource_id, '
            'NULL::text AS source, NULL::timestamp AS "timestamp", NULL::text AS user_id, '
            'NULL::timestamp AS recorded_at, NULL::jsonb AS resource_metadata, '
            'NULL::text AS sample_table WHERE false';
    END IF;
    EXECUTE format('CREATE OR REPLACE VIEW %I.all_samples AS %s', target_schema, union_sql);

    -- Project names from the tap's `projects` table (Keystone); the id where none is known.
    IF to_regclass(format('%I.projects', target_schema)) IS NOT NULL THEN
        EXECUTE format(
            'CREATE OR REPLACE VIEW %1$I.samples_named AS '
            'SELECT s.*, p.name::text AS project_name, '
            'COALESCE(p.name::text, s.project_id) AS project '
            'FROM %1$I.all_samples s LEFT JOIN %1$I.projects p ON p.id::text = s.project_id',
            target_schema);
    ELSE
        EXECUTE format(
            'CREATE OR REPLACE VIEW %1$I.samples_named AS '
            'SELECT s.*, NULL::text AS project_name, s.project_id AS project '
            'FROM %1$I.all_samples s',
            target_schema);
    END IF;

    -- Cumulative counters: per resource and meter, in timestamp order (equal timestamps in
    -- message_id order), increase = value - previous value, or the value itself when it is
    -- lower than the previous one (the counter was reset). A series' first sample has none.
    EXECUTE format(
        'CREATE OR REPLACE VIEW %1$I.cumulative_increase AS '
        'SELECT "timestamp", previous_timestamp, counter_name, counter_unit, resource_id, '
        'project_id, project_name, project, user_id, message_id, counter_volume, previous_volume, '
        'CASE WHEN previous_volume IS NULL THEN NULL '
        'WHEN counter_volume < previous_volume THEN counter_volume '
        'ELSE counter_volume - previous_volume END AS increase, '
        'COALESCE(counter_volume < previous_volume, false) AS is_reset '
        'FROM (SELECT s.*, '
        'lag(s.counter_volume) OVER w AS previous_volume, '
        'lag(s."timestamp") OVER w AS previous_timestamp '
        'FROM %1$I.samples_named s WHERE s.counter_type = ''cumulative'' '
        'WINDOW w AS (PARTITION BY s.resource_id, s.counter_name '
        'ORDER BY s."timestamp", s.message_id COLLATE "C")) x',
        target_schema);

    RAISE NOTICE 'refresh_ceilometer_views: all_samples reads % table(s) of schema %',
        sample_tables, target_schema;
    RETURN sample_tables;
END
$refresh$;

SELECT refresh_ceilometer_views();
