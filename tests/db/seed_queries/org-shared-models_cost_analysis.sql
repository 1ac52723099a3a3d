SELECT
response_data->>'_selected_model' as model,
COUNT(*) as requests,
SUM(CAST(response_data->>'total_tokens' AS INTEGER)) as total_tokens,
ROUND(SUM(CAST(response_data->>'_cost' AS NUMERIC)), 2) as total_cost,
ROUND(AVG(CAST(response_data->>'_cost' AS NUMERIC)), 4) as avg_cost_per_request
FROM request_logs
WHERE request_data->>'model' = 'collection/org-shared-models'
AND created_at > NOW() - INTERVAL '7 days'
GROUP BY response_data->>'_selected_model'
ORDER BY total_cost DESC;
