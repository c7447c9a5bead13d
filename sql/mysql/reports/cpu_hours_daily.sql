-- CPU hours per project and UTC day: the increase of the cumulative meter `cpu` (CPU time in
-- nanoseconds, see cumulative_daily.sql) divided by 3.6e12 ns per hour.
SELECT DATE(`timestamp`) AS day,
       project_id,
       project,
       SUM(increase) / 3.6e12 AS cpu_hours
FROM cumulative_increase
WHERE counter_name = 'cpu' AND increase IS NOT NULL
GROUP BY DATE(`timestamp`), project_id, project
ORDER BY day, project, project_id;
