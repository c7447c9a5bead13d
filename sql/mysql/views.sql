-- tap-ceilometer BI views for MySQL 8 / MariaDB 10.2+ (docs/bi.md).
--
-- Run it with the command-line client in the database the tap loads into, e.g. `ceilometer`:
--   mariadb -h 127.0.0.1 -u root ceilometer < sql/mysql/views.sql
-- (`mysql` works the same). It creates the procedure refresh_ceilometer_views() in that
-- database and calls it once. After a load that brought new meters (new tables), call it again:
--   CALL ceilometer.refresh_ceilometer_views();
--
-- Views made (in the same database):
--   all_samples          every row of every table that has the sample columns (both layouts)
--   samples_named        all_samples + project_name (from table projects) + project (name, or id)
--   cumulative_increase  cumulative samples with the increase since the previous sample of the
--                        same resource and meter (the value itself after a reset)

DROP PROCEDURE IF EXISTS refresh_ceilometer_views;

DELIMITER //
CREATE PROCEDURE refresh_ceilometer_views()
    MODIFIES SQL DATA
    SQL SECURITY INVOKER
BEGIN
    -- Inside a procedure, DATABASE() is the procedure's own database.
    DECLARE db_quoted VARCHAR(200) DEFAULT CONCAT('`', REPLACE(DATABASE(), '`', '``'), '`');
    DECLARE saved_group_concat_max_len BIGINT UNSIGNED DEFAULT @@SESSION.group_concat_max_len;
    DECLARE sample_tables INT DEFAULT 0;
    DECLARE has_projects INT DEFAULT 0;

    -- One SELECT per table is about 400 bytes; the default limit (1024) would cut the list.
    SET SESSION group_concat_max_len = 67108864;

    -- Every base table of the database with all the sample columns: one per meter (layout
    -- per_meter) or `samples` (layout single).
    SELECT COUNT(*), GROUP_CONCAT(
            CONCAT('SELECT counter_name, counter_type, counter_unit, counter_volume, message_id, ',
                   'project_id, resource_id, source, `timestamp`, user_id, recorded_at, ',
                   'resource_metadata, ', QUOTE(t.relation), ' AS sample_table FROM ', db_quoted,
                   '.`', REPLACE(t.relation, '`', '``'), '`')
            ORDER BY t.relation SEPARATOR ' UNION ALL ')
    INTO sample_tables, @ceilometer_views_sql
    FROM (
        SELECT c.table_name AS relation
        FROM information_schema.columns c
        JOIN information_schema.tables r
          ON r.table_schema = c.table_schema AND r.table_name = c.table_name
        WHERE c.table_schema = DATABASE() AND r.table_type = 'BASE TABLE'
          AND c.column_name IN ('counter_name', 'counter_type', 'counter_unit', 'counter_volume',
                                'message_id', 'project_id', 'resource_id', 'source', 'timestamp',
                                'user_id', 'recorded_at', 'resource_metadata')
        GROUP BY c.table_name
        HAVING COUNT(*) = 12
    ) t;
    SET SESSION group_concat_max_len = saved_group_concat_max_len;

    IF sample_tables = 0 THEN  -- nothing loaded yet: an empty view of the right shape
        SET @ceilometer_views_sql = CONCAT(
            'SELECT CAST(NULL AS CHAR(1000)) AS counter_name, CAST(NULL AS CHAR(1000)) AS counter_type, ',
            'CAST(NULL AS CHAR(1000)) AS counter_unit, CAST(NULL AS DOUBLE) AS counter_volume, ',
            'CAST(NULL AS CHAR(128)) AS message_id, CAST(NULL AS CHAR(1000)) AS project_id, ',
            'CAST(NULL AS CHAR(1000)) AS resource_id, CAST(NULL AS CHAR(1000)) AS source, ',
            'CAST(NULL AS DATETIME(6)) AS `timestamp`, CAST(NULL AS CHAR(1000)) AS user_id, ',
            'CAST(NULL AS DATETIME(6)) AS recorded_at, CAST(NULL AS CHAR) AS resource_metadata, ',
            'CAST(NULL AS CHAR(64)) AS sample_table FROM DUAL WHERE FALSE');
    END IF;
    SET @ceilometer_views_sql = CONCAT('CREATE OR REPLACE VIEW ', db_quoted, '.all_samples AS ',
                                       @ceilometer_views_sql);
    PREPARE ceilometer_views_statement FROM @ceilometer_views_sql;
    EXECUTE ceilometer_views_statement;
    DEALLOCATE PREPARE ceilometer_views_statement;

    -- Project names from the tap's `projects` table (Keystone); the id where none is known.
    SELECT COUNT(*) INTO has_projects FROM information_schema.tables
    WHERE table_schema = DATABASE() AND table_name = 'projects';
    IF has_projects > 0 THEN
        SET @ceilometer_views_sql = CONCAT(
            'CREATE OR REPLACE VIEW ', db_quoted, '.samples_named AS ',
            'SELECT s.*, p.name AS project_name, COALESCE(p.name, s.project_id) AS project ',
            'FROM ', db_quoted, '.all_samples s LEFT JOIN ', db_quoted, '.projects p ',
            'ON p.id = s.project_id');
    ELSE
        SET @ceilometer_views_sql = CONCAT(
            'CREATE OR REPLACE VIEW ', db_quoted, '.samples_named AS ',
            'SELECT s.*, CAST(NULL AS CHAR(1000)) AS project_name, s.project_id AS project ',
            'FROM ', db_quoted, '.all_samples s');
    END IF;
    PREPARE ceilometer_views_statement FROM @ceilometer_views_sql;
    EXECUTE ceilometer_views_statement;
    DEALLOCATE PREPARE ceilometer_views_statement;

    -- Cumulative counters: per resource and meter, in timestamp order (equal timestamps in
    -- message_id order), increase = value - previous value, or the value itself when it is
    -- lower than the previous one (the counter was reset). A series' first sample has none.
    SET @ceilometer_views_sql = CONCAT(
        'CREATE OR REPLACE VIEW ', db_quoted, '.cumulative_increase AS ',
        'SELECT `timestamp`, previous_timestamp, counter_name, counter_unit, resource_id, ',
        'project_id, project_name, project, user_id, message_id, counter_volume, previous_volume, ',
        'CASE WHEN previous_volume IS NULL THEN NULL ',
        'WHEN counter_volume < previous_volume THEN counter_volume ',
        'ELSE counter_volume - previous_volume END AS increase, ',
        'COALESCE(counter_volume < previous_volume, FALSE) AS is_reset ',
        'FROM (SELECT s.*, ',
        'LAG(s.counter_volume) OVER (PARTITION BY s.resource_id, s.counter_name ',
        'ORDER BY s.`timestamp`, CAST(s.message_id AS BINARY)) AS previous_volume, ',
        'LAG(s.`timestamp`) OVER (PARTITION BY s.resource_id, s.counter_name ',
        'ORDER BY s.`timestamp`, CAST(s.message_id AS BINARY)) AS previous_timestamp ',
        'FROM ', db_quoted, '.samples_named s WHERE s.counter_type = ''cumulative'') x');
    PREPARE ceilometer_views_statement FROM @ceilometer_views_sql;
    EXECUTE ceilometer_views_statement;
    DEALLOCATE PREPARE ceilometer_views_statement;
    SET @ceilometer_views_sql = NULL;

    SELECT sample_tables AS all_samples_tables, DATABASE() AS in_database;
END//
DELIMITER ;

CALL refresh_ceilometer_views();
