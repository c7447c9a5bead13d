-- Cumulative meters: increase per project, meter and UTC day, in the meter's unit.
-- Each sample adds its increase over the previous sample of the same resource (view
-- cumulative_increase: after a counter reset, the value itself), counted on the day of the
-- later sample; a resource's first sample adds nothing. intervals = increases counted.
SELECT "timestamp"::date AS day,
       project_id,
       project,
       counter_name AS meter,
       counter_unit AS unit,
       sum(increase) AS increase,
       count(*) AS intervals
FROM cumulative_increase
WHERE increase IS NOT NULL
GROUP BY "timestamp"::date, project_id, project, counter_name, counter_unit
ORDER BY day, project, project_id, meter;
