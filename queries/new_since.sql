-- answers: Active findings first seen after a date: no scan before it reported the same advisory for the same package in the same repository.
-- param since: a date or timestamp (UTC)
-- param subscription: (optional) only this subscription
WITH first_seen AS (
    SELECT subscription, registry, repository, finding_id, package_name, min(scanned_at) AS first_seen_at
    FROM findings
    GROUP BY subscription, registry, repository, finding_id, package_name
)
SELECT a.subscription, a.registry, a.repository, a.image_digest AS digest, a.platform, a.finding_id,
       a.severity, a.cvss_v3_score, a.package_name, a.package_version, a.fixed_version, a.patchable,
       fs.first_seen_at
FROM active_findings a
JOIN first_seen fs ON a.subscription = fs.subscription AND a.registry = fs.registry
 AND a.repository = fs.repository AND a.finding_id = fs.finding_id AND a.package_name = fs.package_name
WHERE fs.first_seen_at > CAST($since AS TIMESTAMP)
  AND ($subscription IS NULL OR a.subscription = $subscription)
ORDER BY fs.first_seen_at DESC, a.severity_rank DESC, a.finding_id
