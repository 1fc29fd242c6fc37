-- The views every report and `vigil sql` query builds on. `findings`, `images` and `crawls` are already
-- restricted to committed scans when these are created. One statement per `;`. `image_id` is a hash of
-- (subscription, registry, repository, digest, platform): joins and groupings use it instead of five
-- strings. Sessions plan without file statistics, so each join names its smaller input first: that is the
-- side a hash join builds.

-- The newest scan of each image that still exists: an image missing from a later full crawl of its
-- registry no longer exists. Scan ids sort by start time. `_current_images` holds only the images rows of
-- the scans since each registry's newest full crawl, and `_current_crawls` those crawls (the session picks
-- their files), so this view reads no more as history grows.
CREATE VIEW latest_images AS
SELECT i.* FROM _current_images i
JOIN (
    SELECT im.image_id AS n_image_id, max(im.scan_id) AS n_scan_id
    FROM _current_images im
    LEFT JOIN (
        SELECT subscription AS c_subscription, registry AS c_registry, max(crawled_at) AS c_crawled_at
        FROM _current_crawls GROUP BY subscription, registry
    ) c ON im.subscription = c.c_subscription AND im.registry = c.c_registry
    WHERE c.c_crawled_at IS NULL OR im.scanned_at >= c.c_crawled_at
    GROUP BY im.image_id
) newest ON i.image_id = newest.n_image_id AND i.scan_id = newest.n_scan_id;

-- The findings of those scans (an image a run did not re-evaluate keeps the findings of the scan that did).
CREATE VIEW latest_findings AS
SELECT f.* FROM (SELECT findings_scan_id AS l_scan_id, image_id AS l_image_id FROM latest_images) l
JOIN findings f ON f.scan_id = l.l_scan_id AND f.image_id = l.l_image_id;

-- Each rule's newest version, deleted ones dropped.
CREATE VIEW current_rules AS
SELECT * EXCLUDE (_newest) FROM (
    SELECT r.*, row_number() OVER (PARTITION BY rule_id ORDER BY version DESC, updated_at DESC) AS _newest
    FROM disable_rules r
) newest
WHERE _newest = 1 AND op <> 'delete';

-- The rules that hide findings today: a rule stops applying on its expiry date.
CREATE VIEW rules_in_force AS
SELECT * FROM current_rules WHERE expires IS NULL OR expires > current_date;

-- Latest findings hidden by a rule, once per rule that hides them. (Only the findings some rule hides
-- reach the join: the written-out rules filter them first.)
CREATE VIEW disabled_findings AS
SELECT f.*, r.rule_id, r.reason AS rule_reason, r.author AS rule_author
FROM rules_in_force r
JOIN (SELECT * FROM latest_findings f WHERE {rules_reach} AND {hidden_by_rules}) f ON {rule_matches};

-- Findings of every committed scan that no rule hides.
CREATE VIEW unhidden_findings AS
SELECT f.* FROM findings f WHERE {hidden_by_rules} IS NOT TRUE;

-- Latest findings no rule hides: what counts against the security score.
CREATE VIEW active_findings AS
SELECT f.* FROM (SELECT findings_scan_id AS l_scan_id, image_id AS l_image_id FROM latest_images) l
JOIN unhidden_findings f ON f.scan_id = l.l_scan_id AND f.image_id = l.l_image_id;

-- Each latest image with its severity assessment over active findings: the counts its images row stores,
-- less the findings a rule hides. `{hidden_counts}` counts those per scan and image, reading only the
-- partitions some rule reaches (src/report/hidden_counts.sql); with no rule in force it reads nothing.
CREATE VIEW image_assessments AS
SELECT subscription, registry, repository, tags, digest, platform, os, package_count, coverage_status,
       coverage_reason, scanned_at, scan_id, image_id, active_findings, critical, high, medium, low, unknown,
       patchable,
       CASE WHEN active_findings > 0 THEN 'Unhealthy'
            WHEN coverage_status = 'complete' THEN 'Healthy'
            ELSE 'Not fully assessed' END AS assessment,
       CASE WHEN critical > 0 THEN 'Critical' WHEN high > 0 THEN 'High' WHEN medium > 0 THEN 'Medium'
            WHEN low > 0 THEN 'Low' WHEN unknown > 0 THEN 'Unknown' END AS severity
FROM (
    SELECT i.subscription, i.registry, i.repository, i.tags, i.image_digest AS digest, i.platform, i.os,
           i.package_count, i.coverage_status, i.coverage_reason, i.scanned_at, i.scan_id, i.image_id,
           i.finding_count - coalesce(h.findings, 0) AS active_findings,
           i.critical_count - coalesce(h.critical, 0) AS critical,
           i.high_count - coalesce(h.high, 0) AS high,
           i.medium_count - coalesce(h.medium, 0) AS medium,
           i.low_count - coalesce(h.low, 0) AS low,
           i.unknown_count - coalesce(h.unknown, 0) AS unknown,
           i.patchable_count - coalesce(h.patchable, 0) AS patchable
    FROM latest_images i
    LEFT JOIN (
        {hidden_counts}
    ) h ON i.image_id = h.h_image_id AND i.findings_scan_id = h.h_scan_id
       AND i.subscription = h.h_subscription AND i.registry = h.h_registry
) counted;
