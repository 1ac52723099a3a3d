SELECT
-- Extract model from response metadata
response_data->>'_selected_model' as actual_model,
COUNT(*) as request_count,
ROUND(AVG(CAST(response_data->>'_latency_ms' AS NUMERIC)), 2) as avg_latency_ms
FROM request_logs
WHERE request_data->>'model' = 'collection/flash2.5'
AND DATE(created_at) = CURRENT_DATE
GROUP BY actual_model
ORDER BY request_count DESC;
