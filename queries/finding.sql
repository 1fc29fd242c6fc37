-- answers: One finding in full: description, CVE ids, CVSS, references, remediation, and the rule that hides it if one does.
-- param registry: the registry's name
-- param digest: the image's manifest digest (sha256:...)
-- param finding_id: the finding (advisory) id, e.g. GHSA-2qrg-x229-3v8q
-- param subscription: (optional) only this subscription
SELECT f.finding_id, f.summary AS security_check, f.details AS description, f.aliases AS cve_ids,
       f.severity, f.severity_source, f.cvss_v3_score, f.cvss_v3_vector, f.cvss_v4_score, f.cvss_v4_vector,
       f.category, f.package_type, f.package_name, f.package_version, f.ecosystem, f.source_package,
       f.fixed_version, f.patchable, f.remediation, f."references", f.published, f.modified,
       f.subscription, f.registry, f.repository, f.tags, f.image_digest, f.platform, f.layer_digest,
       f.location, f.scanned_at, f.scan_id, f.db_content_hash,
       (SELECT min(d.rule_id) FROM disabled_findings d
         WHERE d.scan_id = f.scan_id AND d.subscription = f.subscription AND d.registry = f.registry
           AND d.image_digest = f.image_digest AND d.platform = f.platform
           AND d.finding_id = f.finding_id AND d.package_name = f.package_name) AS disabled_by
FROM latest_findings f
WHERE f.registry = $registry AND f.image_digest = $digest AND f.finding_id = $finding_id
  AND ($subscription IS NULL OR f.subscription = $subscription)
ORDER BY f.platform, f.package_name
