-- answers: The repositories of one registry, each with its images, unhealthy images and active findings by severity.
-- param registry: the registry's name
-- param subscription: (optional) only this subscription
SELECT subscription, registry, repository,
       count(*) AS images,
       sum(CASE WHEN assessment = 'Unhealthy' THEN 1 ELSE 0 END) AS unhealthy_images,
       sum(critical) AS critical, sum(high) AS high, sum(medium) AS medium, sum(low) AS low,
       sum(unknown) AS unknown, sum(patchable) AS patchable_findings,
       max(scanned_at) AS last_scanned_at
FROM image_assessments
WHERE registry = $registry AND ($subscription IS NULL OR subscription = $subscription)
GROUP BY subscription, registry, repository
ORDER BY unhealthy_images DESC, critical DESC, high DESC, repository
