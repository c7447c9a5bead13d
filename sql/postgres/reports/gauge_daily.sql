-- Gauge meter: average and maximum per project and UTC day.
-- average = plain mean of the day's samples (every sample weighs the same, whatever the
-- resource or the time between samples); maximum = largest sample; samples = how many.
-- The meter: change the marked literal ('memory.usage', 'cpu_util', 'disk.usage', ...).
SELECT "timestamp"::date AS day,
       project_id,
       project,
       avg(counter_volume) AS average,
       max(counter_volume) AS maximum,
       count(*) AS samples
FROM samples_named
WHERE counter_name = 'memory.usage'  -- <== METER
GROUP BY "timestamp"::date, project_id, project
ORDER BY day, project, project_id;
