-- answers: Old digests that still carry findings after their tag moved to a new digest: delete them once the new image is clean.
-- param subscription: (optional) only this subscription
WITH current_tags AS (
    SELECT subscription, registry, repository, platform, image_digest, unnest(tags) AS tag
    FROM latest_images
),
past_tags AS (
    SELECT subscription, registry, repository, platform, image_digest, finding_count, highest_severity,
           scanned_at, unnest(tags) AS tag
    FROM images
),
moved AS (
    SELECT p.subscription, p.registry, p.repository, p.platform, p.tag, p.image_digest AS old_digest,
           c.image_digest AS new_digest, max(p.scanned_at) AS old_last_scanned_at
    FROM past_tags p
    JOIN current_tags c ON p.subscription = c.subscription AND p.registry = c.registry
     AND p.repository = c.repository AND p.platform = c.platform AND p.tag = c.tag
    WHERE p.image_digest <> c.image_digest
      AND NOT EXISTS (SELECT 1 FROM latest_images l
                      WHERE l.subscription = p.subscription AND l.registry = p.registry
                        AND l.repository = p.repository AND l.image_digest = p.image_digest
                        AND l.platform = p.platform)
    GROUP BY p.subscription, p.registry, p.repository, p.platform, p.tag, p.image_digest, c.image_digest
),
old_state AS (
    SELECT * FROM (
        SELECT subscription, registry, repository, platform, image_digest, finding_count, highest_severity,
               row_number() OVER (PARTITION BY image_id
                                  ORDER BY scanned_at DESC, scan_id DESC) AS newest
        FROM images
    ) ranked WHERE newest = 1
)
SELECT m.subscription, m.registry, m.repository, m.tag, m.platform, m.old_digest,
       o.finding_count AS old_findings, o.highest_severity AS old_severity, m.old_last_scanned_at,
       m.new_digest, a.active_findings AS new_active_findings, a.assessment AS new_assessment
FROM moved m
JOIN old_state o ON o.subscription = m.subscription AND o.registry = m.registry
 AND o.repository = m.repository AND o.image_digest = m.old_digest AND o.platform = m.platform
LEFT JOIN image_assessments a ON a.subscription = m.subscription AND a.registry = m.registry
 AND a.repository = m.repository AND a.digest = m.new_digest AND a.platform = m.platform
WHERE o.finding_count > 0 AND ($subscription IS NULL OR m.subscription = $subscription)
ORDER BY m.subscription, m.registry, m.repository, m.tag, m.platform
