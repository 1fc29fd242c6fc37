-- answers: Each registry with its images, unhealthy images and active findings by severity (the first level of the drill-down).
-- param subscription: (optional) only this subscription
SELECT subscription, registry,
       count(*) AS images,
       sum(CASE WHEN assessment = 'Unhealthy' THEN 1 ELSE 0 END) AS unhealthy_images,
       sum(CASE WHEN assessment = 'Not fully assessed' THEN 1 ELSE 0 END) AS not_fully_assessed_images,
       sum(critical) AS critical, sum(high) AS high, sum(medium) AS medium, sum(low) AS low,
       sum(unknown) AS unknown, sum(patchable) AS patchable_findings,
       max(scanned_at) AS last_scanned_at
FROM image_assessments
WHERE $subscription IS NULL OR subscription = $subscription
GROUP BY subscription, registry
ORDER BY unhealthy_images DESC, subscription, registry
