-- Delta meter: total per project and UTC day (each delta sample is the amount since the last
-- one, so the day's total is the sum of the day's samples).
-- The meter: change the marked literal ('image.download', 'image.serve', ...).
SELECT DATE(`timestamp`) AS day,
       project_id,
       project,
       SUM(counter_volume) AS total,
       COUNT(*) AS samples
FROM samples_named
WHERE counter_name = 'image.download'  -- <== METER
GROUP BY DATE(`timestamp`), project_id, project
ORDER BY day, project, project_id;
