r.subscription = f.subscription
AND (r.registry IS NULL OR r.registry = f.registry)
AND (r.repository_like IS NULL OR f.repository LIKE r.repository_like ESCAPE '\')
AND (r.finding_id IS NULL OR r.finding_id = f.finding_id OR array_has(f.aliases, r.finding_id))
AND (r.category IS NULL OR lower(r.category) = lower(f.category))
AND (r.security_check_contains IS NULL OR strpos(lower(f.summary), lower(r.security_check_contains)) > 0)
AND (r.cvss_below IS NULL OR f.cvss_v3_score < r.cvss_below)
AND (r.severity_below_rank IS NULL OR (f.severity_rank > 0 AND f.severity_rank < r.severity_below_rank))
AND (r.patchable IS NULL OR r.patchable = f.patchable)
