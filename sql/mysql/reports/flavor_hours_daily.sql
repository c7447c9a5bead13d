-- Resource-hours per flavor, project and UTC day: a resource counts one hour for each clock
-- hour (UTC, 10:00:00-10:59:59) in which it has at least one sample of the marked meter.
-- The flavor is the sample's own metadata `flavor.name`, else `instance_type` (NULL when it
-- has neither); an hour in which a resource changed flavor counts once for each flavor.
SELECT day,
       project_id,
       project,
       flavor,
       COUNT(*) AS resource_hours
FROM (
    SELECT DISTINCT DATE(`timestamp`) AS day,
           HOUR(`timestamp`) AS hour_of_day,
           project_id,
           project,
           resource_id,
           COALESCE(JSON_UNQUOTE(JSON_EXTRACT(resource_metadata, '$."flavor.name"')),
                    JSON_UNQUOTE(JSON_EXTRACT(resource_metadata, '$.instance_type'))) AS flavor
    FROM samples_named
    WHERE counter_name = 'cpu'  -- <== METER (one sample per instance and polling interval)
) resource_hours
GROUP BY day, project_id, project, flavor
ORDER BY day, project, project_id, flavor;
