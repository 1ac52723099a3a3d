SELECT
mcm.id,
mc.category_display_id as model_id,
mc.model_name,
mcm.priority,
mcm.weight,
mcm.is_active
FROM model_collection_members mcm
JOIN model_categories mc ON mcm.model_category_id = mc.id
WHERE mcm.collection_id = (
SELECT id FROM model_collections
WHERE collection_name = 'flash2.5'
)
ORDER BY mcm.priority DESC;
