-- Gauge meter: average and maximum per project and UTC day.
-- average = plain mean of the day's samples (every sample weighs the same, whatever the
-- resource or the time between samples); maximum = largest sample; samples = how many.
-- The meter: change the marked literal ('memory.usage', 'cpu_util', 'disk.usage', ...).
SELECT DATE(`timestamp`) AS day,
       project_id,
       project,
       AVG(counter_volume) AS average,
       MAX(counter_volume) AS maximum,
       COUNT(*) AS samples
FROM samples_named
WHERE counter_name = 'memory.usage'  -- <== METER
GROUP BY DATE(`timestamp`), project_id, project
ORDER BY day, project, project_id;
