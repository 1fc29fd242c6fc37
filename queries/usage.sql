-- answers: Images scanned per subscription and registry per day (UTC): what a per-image price would bill.
-- param since: (optional) the first day counted
-- param subscription: (optional) only this subscription
SELECT subscription, registry, CAST(date_trunc('day', scanned_at) AS DATE) AS day,
       count(DISTINCT repository || '@' || image_digest || ' ' || platform) AS images_scanned,
       count(*) AS image_scans,
       count(DISTINCT scan_id) AS scans
FROM images
WHERE ($since IS NULL OR scanned_at >= CAST($since AS TIMESTAMP))
  AND ($subscription IS NULL OR subscription = $subscription)
GROUP BY subscription, registry, CAST(date_trunc('day', scanned_at) AS DATE)
ORDER BY day, subscription, registry
