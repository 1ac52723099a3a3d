SELECT
response_data->>'_selected_model' as model,
COUNT(*) as request_count,
ROUND(AVG(CAST(response_data->>'_latency_ms' AS NUMERIC)), 2) as avg_latency,
ROUND(100.0 * COUNT(*) / SUM(COUNT(*)) OVER(), 2) as percentage
FROM request_logs
WHERE request_data->>'model' = 'collection/org-shared-models'
AND created_at > NOW() - INTERVAL '24 hours'
GROUP BY response_data->>'_selected_model'
ORDER BY request_count DESC;
