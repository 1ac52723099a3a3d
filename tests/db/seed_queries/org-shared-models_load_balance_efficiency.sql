WITH model_usage AS (
SELECT
response_data->>'_selected_model' as model,
COUNT(*) as request_count,
ROUND(100.0 * COUNT(*) / SUM(COUNT(*)) OVER(), 2) as percentage
FROM request_logs
WHERE request_data->>'model' = 'collection/org-shared-models'
AND created_at > NOW() - INTERVAL '24 hours'
GROUP BY response_data->>'_selected_model'
)
SELECT
COUNT(*) as total_models,
ROUND(AVG(percentage), 2) as ideal_percentage,
ROUND(STDDEV(percentage), 2) as distribution_stddev,
MAX(percentage) as max_percentage,
MIN(percentage) as min_percentage
FROM model_usage;
