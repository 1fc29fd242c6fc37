-- answers: The one recommendation, "Vulnerabilities in container registry images should be remediated": affected registries, unhealthy images, active findings by severity, how many are patchable.
-- param subscription: (optional) only this subscription
SELECT 'Vulnerabilities in container registry images should be remediated' AS recommendation,
       CASE WHEN sum(CASE WHEN assessment = 'Unhealthy' THEN 1 ELSE 0 END) > 0 THEN 'Unhealthy' ELSE 'Healthy' END AS status,
       count(DISTINCT CASE WHEN assessment = 'Unhealthy' THEN subscription || '/' || registry END) AS affected_registries,
       sum(CASE WHEN assessment = 'Unhealthy' THEN 1 ELSE 0 END) AS unhealthy_images,
       sum(CASE WHEN assessment = 'Healthy' THEN 1 ELSE 0 END) AS healthy_images,
       sum(CASE WHEN assessment = 'Not fully assessed' THEN 1 ELSE 0 END) AS not_fully_assessed_images,
       coalesce(sum(critical), 0) AS critical,
       coalesce(sum(high), 0) AS high,
       coalesce(sum(medium), 0) AS medium,
       coalesce(sum(low), 0) AS low,
       coalesce(sum(unknown), 0) AS unknown,
       coalesce(sum(active_findings), 0) AS findings,
       coalesce(sum(patchable), 0) AS patchable_findings
FROM image_assessments
WHERE $subscription IS NULL OR subscription = $subscription
