-- answers: The images of one repository, each with its severity assessment (Unhealthy, Healthy or Not fully assessed, with the coverage that says why) and active findings by severity.
-- param registry: the registry's name
-- param repository: the repository, e.g. library/debian
-- param subscription: (optional) only this subscription
SELECT subscription, registry, repository, array_to_string(tags, ',') AS tags, digest, platform, os,
       assessment, severity, active_findings AS findings, critical, high, medium, low, unknown,
       patchable, package_count, coverage_status, coverage_reason, scanned_at
FROM image_assessments
WHERE registry = $registry AND repository = $repository
  AND ($subscription IS NULL OR subscription = $subscription)
ORDER BY critical DESC, high DESC, findings DESC, digest, platform
