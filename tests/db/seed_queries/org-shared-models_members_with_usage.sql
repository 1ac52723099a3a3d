SELECT
mcm.id,
mc.category_display_id as model_id,
mc.model_name,
mc.provider,
mcm.priority,
mcm.weight,
mcm.is_active,
-- Estimate usage from recent requests
COUNT(rl.id) as recent_requests_24h
FROM model_collection_members mcm
JOIN model_categories mc ON mcm.model_category_id = mc.id
LEFT JOIN request_logs rl ON (
rl.response_data->>'_selected_model' = mc.category_display_id
AND rl.created_at > NOW() - INTERVAL '24 hours'
)
WHERE mcm.collection_id = (
SELECT id FROM model_collections
WHERE collection_name = 'org-shared-models'
)
GROUP BY mcm.id, mc.category_display_id, mc.model_name, mc.provider, mcm.priority, mcm.weight, mcm.is_active
ORDER BY recent_requests_24h DESC;
