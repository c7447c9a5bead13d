-- Volume storage per project and calendar month (UTC): for each volume and each clock hour in
-- which it has samples of `volume.size` (GB), the largest size seen in that hour is one
-- GB-hour per GB; gb_hours is their sum and gb_months = gb_hours / 730 (hours in an average
-- month). Hours without any sample count nothing.
SELECT month,
       project_id,
       project,
       sum(gb) AS gb_hours,
       sum(gb) / 730 AS gb_months
FROM (
    SELECT date_trunc('month', "timestamp")::date AS month,
           date_trunc('hour', "timestamp") AS hour,
           project_id,
           project,
           resource_id,
           max(counter_volume) AS gb
    FROM samples_named
    WHERE counter_name = 'volume.size'
    GROUP BY 1, 2, project_id, project, resource_id
) volume_hours
GROUP BY month, project_id, project
ORDER BY month, project, project_id;
