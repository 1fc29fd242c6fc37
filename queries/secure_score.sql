-- answers: The security score: the share of assessed images with no active finding (findings hidden by rules do not count), per subscription.
-- param subscription: (optional) only this subscription
SELECT subscription,
       count(*) AS images,
       sum(CASE WHEN assessment = 'Healthy' THEN 1 ELSE 0 END) AS healthy_images,
       sum(CASE WHEN assessment = 'Unhealthy' THEN 1 ELSE 0 END) AS unhealthy_images,
       sum(CASE WHEN assessment = 'Not fully assessed' THEN 1 ELSE 0 END) AS not_fully_assessed_images,
       round(100.0 * sum(CASE WHEN assessment = 'Healthy' THEN 1 ELSE 0 END)
             / nullif(sum(CASE WHEN assessment <> 'Not fully assessed' THEN 1 ELSE 0 END), 0), 1) AS secure_score_percent
FROM image_assessments
WHERE $subscription IS NULL OR subscription = $subscription
GROUP BY subscription
ORDER BY subscription
