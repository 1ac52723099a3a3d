SELECT
EXTRACT(HOUR FROM created_at) as hour,
COUNT(*) as requests,
ROUND(AVG(CAST(response_data->>'_latency_ms' AS NUMERIC)), 2) as avg_latency,
SUM(CAST(response_data->>'total_tokens' AS INTEGER)) as total_tokens
FROM request_logs
WHERE request_data->>'model' = 'collection/flash2.5'
AND DATE(created_at) = CURRENT_DATE
GROUP BY EXTRACT(HOUR FROM created_at)
ORDER BY hour DESC;
