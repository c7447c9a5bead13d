-- Exact column types for tap-ceilometer tables made by thk-target-mysql 0.1.3.
--
-- The target creates `counter_volume` as FLOAT (single precision) and `timestamp`/`recorded_at`
-- as DATETIME (whole seconds). It keeps the types of existing columns, so widening them once,
-- before any row is loaded, makes every later load exact. Create the tables first with a
-- schema-only pass (the target creates a table when it sees the SCHEMA message), then run:
--
--   mysql -N ceilometer < config/target-mysql-exact-types.sql | mysql ceilometer
--
-- This prints one ALTER TABLE per table that still has an inexact column, for the current
-- database only; it prints nothing once all are exact, so it is safe to run before every load.
SELECT CONCAT(
    'ALTER TABLE `', REPLACE(table_name, '`', '``'), '` ',
    GROUP_CONCAT(
        CASE
            WHEN column_name = 'counter_volume' THEN 'MODIFY `counter_volume` DOUBLE NULL'
            ELSE CONCAT('MODIFY `', column_name, '` DATETIME(6) NULL')
        END
        ORDER BY ordinal_position SEPARATOR ', '
    ),
    ';'
)
FROM information_schema.columns
WHERE table_schema = DATABASE()
  AND (
      (column_name = 'counter_volume' AND data_type IN ('float', 'decimal'))
      OR (column_name IN ('timestamp', 'recorded_at') AND data_type = 'datetime'
          AND datetime_precision = 0)
  )
  AND table_name IN (
      SELECT table_name FROM information_schema.columns
      WHERE table_schema = DATABASE() AND column_name = 'message_id'
  )
GROUP BY table_name
ORDER BY table_name;
