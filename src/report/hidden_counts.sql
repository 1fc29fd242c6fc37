SELECT {subscription} AS h_subscription, h_registry, h_scan_id, h_image_id,
       findings, critical, high, medium, low, unknown, patchable
FROM (
    SELECT registry AS h_registry, scan_id AS h_scan_id, image_id AS h_image_id, count(*) AS findings,
           sum(CASE WHEN severity_rank = 4 THEN 1 ELSE 0 END) AS critical,
           sum(CASE WHEN severity_rank = 3 THEN 1 ELSE 0 END) AS high,
           sum(CASE WHEN severity_rank = 2 THEN 1 ELSE 0 END) AS medium,
           sum(CASE WHEN severity_rank = 1 THEN 1 ELSE 0 END) AS low,
           sum(CASE WHEN severity_rank = 0 THEN 1 ELSE 0 END) AS unknown,
           sum(CASE WHEN patchable THEN 1 ELSE 0 END) AS patchable
    FROM findings f
    WHERE {partitions} AND ({hidden})
    GROUP BY registry, scan_id, image_id
) hidden
