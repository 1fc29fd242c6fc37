-- The views every report and `vigil sql` query builds on. `findings`, `images` and `crawls` are already
-- restricted to committed scans when these are created. One statement per `;`. `image_id` is a hash of
-- (subscription, registry, repository, digest, platform): joins and groupings use it instead of five
-- strings.

-- The newest scan of each image that still exists: an image missing from a later full crawl of its
-- registry no longer exists. Scan ids sort by start time.
CREATE VIEW latest_images AS
SELECT i.* FROM images i
JOIN (
    SELECT im.image_id AS n_image_id, max(im.scan_id) AS n_scan_id
    FROM images im
    LEFT JOIN (
        SELECT subscription AS c_subscription, registry AS c_registry, max(crawled_at) AS c_crawled_at
        FROM crawls GROUP BY subscription, registry
    ) c ON im.subscription = c.c_subscription AND im.registry = c.c_registry
    WHERE c.c_crawled_at IS NULL OR im.scanned_at >= c.c_crawled_at
    GROUP BY im.image_id
) newest ON i.image_id = newest.n_image_id AND i.scan_id = newest.n_scan_id;

-- The findings of those scans (an image a run did not re-evaluate keeps the findings of the scan that did).
CREATE VIEW latest_findings AS
SELECT f.* FROM findings f
JOIN (SELECT findings_scan_id AS l_scan_id, image_id AS l_image_id FROM latest_images) l
  ON f.scan_id = l.l_scan_id AND f.image_id = l.l_image_id;

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

-- Latest findings hidden by a rule, once per rule that hides them.
CREATE VIEW disabled_findings AS
SELECT f.*, r.rule_id, r.reason AS rule_reason, r.author AS rule_author
FROM latest_findings f JOIN rules_in_force r ON {rule_matches};

-- Findings of every committed scan that no rule hides. (A left join keeping the rows no rule matched:
-- both DataFusion and DuckDB run it as one hash join on the subscription.)
CREATE VIEW unhidden_findings AS
SELECT f.* FROM findings f
LEFT JOIN (SELECT rule_id AS r_rule_id, * FROM rules_in_force) r ON {rule_matches}
WHERE r.r_rule_id IS NULL;

-- Latest findings no rule hides: what counts against the security score.
CREATE VIEW active_findings AS
SELECT f.* FROM unhidden_findings f
JOIN (SELECT findings_scan_id AS l_scan_id, image_id AS l_image_id FROM latest_images) l
  ON f.scan_id = l.l_scan_id AND f.image_id = l.l_image_id;

-- Each latest image with its severity assessment over active findings. The unhidden findings are counted
-- per scan and image first and joined to the latest images after, so the join sees one row per image
-- instead of one per finding. (The counts are keyed by subscription and registry too, so a report's
-- filter on them prunes the findings scan.)
CREATE VIEW image_assessments AS
SELECT i.subscription, i.registry, i.repository, i.tags, i.image_digest AS digest, i.platform, i.os,
       i.package_count, i.coverage_status, i.coverage_reason, i.scanned_at, i.scan_id, i.image_id,
       coalesce(a.findings, 0) AS active_findings,
       coalesce(a.critical, 0) AS critical, coalesce(a.high, 0) AS high,
       coalesce(a.medium, 0) AS medium, coalesce(a.low, 0) AS low, coalesce(a.unknown, 0) AS unknown,
       coalesce(a.patchable, 0) AS patchable,
       CASE WHEN coalesce(a.findings, 0) > 0 THEN 'Unhealthy'
            WHEN i.coverage_status = 'complete' THEN 'Healthy'
            ELSE 'Not fully assessed' END AS assessment,
       CASE a.highest WHEN 4 THEN 'Critical' WHEN 3 THEN 'High' WHEN 2 THEN 'Medium' WHEN 1 THEN 'Low'
            WHEN 0 THEN 'Unknown' END AS severity
FROM latest_images i
LEFT JOIN (
    SELECT subscription AS a_subscription, registry AS a_registry, scan_id AS a_scan_id,
           image_id AS a_image_id, count(*) AS findings,
           sum(CASE WHEN severity_rank = 4 THEN 1 ELSE 0 END) AS critical,
           sum(CASE WHEN severity_rank = 3 THEN 1 ELSE 0 END) AS high,
           sum(CASE WHEN severity_rank = 2 THEN 1 ELSE 0 END) AS medium,
           sum(CASE WHEN severity_rank = 1 THEN 1 ELSE 0 END) AS low,
           sum(CASE WHEN severity_rank = 0 THEN 1 ELSE 0 END) AS unknown,
           sum(CASE WHEN patchable THEN 1 ELSE 0 END) AS patchable,
           max(severity_rank) AS highest
    FROM unhidden_findings
    GROUP BY subscription, registry, scan_id, image_id
) a ON i.image_id = a.a_image_id AND i.findings_scan_id = a.a_scan_id
   AND i.subscription = a.a_subscription AND i.registry = a.a_registry;
