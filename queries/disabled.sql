-- answers: What each disable rule in force hides: its criteria, reason, author and expiry, and how many latest findings and images it hides.
-- param subscription: (optional) only this subscription
SELECT r.rule_id, r.subscription, r.registry, r.repository_glob, r.finding_id, r.category,
       r.security_check_contains, r.cvss_below, r.severity_below, r.patchable, r.reason, r.author,
       r.expires, r.updated_at, r.version,
       count(d.rule_id) AS hidden_findings,
       count(DISTINCT d.registry || '/' || d.repository || '@' || d.image_digest || ' ' || d.platform) AS hidden_in_images
FROM rules_in_force r
LEFT JOIN disabled_findings d ON d.rule_id = r.rule_id
WHERE $subscription IS NULL OR r.subscription = $subscription
GROUP BY r.rule_id, r.subscription, r.registry, r.repository_glob, r.finding_id, r.category,
         r.security_check_contains, r.cvss_below, r.severity_below, r.patchable, r.reason, r.author,
         r.expires, r.updated_at, r.version
ORDER BY hidden_findings DESC, r.rule_id
