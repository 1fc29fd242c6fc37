-- answers: The images affected by one advisory or CVE as of a date: the newest scan of each image that existed then, disable rules ignored.
-- param advisory: an advisory id or CVE id, e.g. CVE-2019-17571
-- param as_of: (optional) a date or timestamp (UTC); the default is now
WITH cutoff AS (
    SELECT coalesce(CAST($as_of AS TIMESTAMP), now()) AS at
),
crawled AS (
    SELECT subscription, registry, max(crawled_at) AS crawled_at
    FROM crawls, cutoff WHERE crawled_at <= cutoff.at
    GROUP BY subscription, registry
),
existing AS (
    SELECT * FROM (
        SELECT i.subscription, i.registry, i.repository, i.image_digest, i.platform, i.scan_id, i.scanned_at,
               row_number() OVER (PARTITION BY i.image_id
                                  ORDER BY i.scanned_at DESC, i.scan_id DESC) AS newest
        FROM images i CROSS JOIN cutoff
        LEFT JOIN crawled c ON i.subscription = c.subscription AND i.registry = c.registry
        WHERE i.scanned_at <= cutoff.at AND (c.crawled_at IS NULL OR i.scanned_at >= c.crawled_at)
    ) ranked WHERE newest = 1
)
SELECT f.subscription, f.registry, f.repository, array_to_string(f.tags, ',') AS tags, f.image_digest AS digest,
       f.platform, f.finding_id, array_to_string(f.aliases, ',') AS cve_ids, f.severity, f.package_name,
       f.package_version, f.fixed_version, f.scanned_at
FROM findings f
JOIN existing e ON f.scan_id = e.scan_id AND f.subscription = e.subscription AND f.registry = e.registry
 AND f.repository = e.repository AND f.image_digest = e.image_digest AND f.platform = e.platform
WHERE f.finding_id = $advisory OR array_has(f.aliases, $advisory)
ORDER BY f.subscription, f.registry, f.repository, f.image_digest, f.platform, f.package_name
