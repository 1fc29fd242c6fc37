r.subscription = f.subscription
AND (r.registry IS NULL OR r.registry = f.registry) -- registry
AND (r.repository_like IS NULL OR f.repository LIKE r.repository_like ESCAPE '\') -- repository
AND (r.finding_id IS NULL OR r.finding_id = f.finding_id OR array_has(f.aliases, r.finding_id)) -- finding_id
AND (r.category IS NULL OR lower(r.category) = lower(f.category)) -- category
AND (r.security_check_contains IS NULL OR strpos(lower(f.summary), lower(r.security_check_contains)) > 0) -- security_check_contains
AND (r.cvss_below IS NULL OR f.cvss_v3_score < r.cvss_below) -- cvss_below
AND (r.severity_below_rank IS NULL OR (f.severity_rank > 0 AND f.severity_rank < r.severity_below_rank)) -- severity_below
AND (r.patchable IS NULL OR r.patchable = f.patchable) -- patchable
