-- answers: The active findings of one image (disabled ones excluded), worst first.
-- param registry: the registry's name
-- param digest: the image's manifest digest (sha256:...)
-- param platform: (optional) only this platform, e.g. linux/amd64
-- param subscription: (optional) only this subscription
SELECT finding_id, severity, cvss_v3_score, array_to_string(aliases, ',') AS cve_ids, category,
       package_name, package_version, fixed_version, patchable, summary AS security_check,
       repository, platform, layer_digest
FROM active_findings
WHERE registry = $registry AND image_digest = $digest
  AND ($platform IS NULL OR platform = $platform)
  AND ($subscription IS NULL OR subscription = $subscription)
ORDER BY severity_rank DESC, cvss_v3_score DESC NULLS LAST, finding_id, package_name
