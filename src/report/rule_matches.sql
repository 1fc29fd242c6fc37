r.subscription = f.subscription -- subscription
r.registry = f.registry -- registry
f.repository LIKE r.repository_like ESCAPE '\' -- repository
(r.finding_id = f.finding_id OR array_has(f.aliases, r.finding_id)) -- finding_id
lower(r.category) = lower(f.category) -- category
strpos(lower(f.summary), lower(r.security_check_contains)) > 0 -- security_check_contains
f.cvss_v3_score < r.cvss_below -- cvss_below
(f.severity_rank > 0 AND f.severity_rank < r.severity_below_rank) -- severity_below
r.patchable = f.patchable -- patchable
