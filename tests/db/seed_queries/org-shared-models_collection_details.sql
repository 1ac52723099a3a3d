SELECT
id,
collection_name,
display_name,
description,
scope,
routing_strategy,
organization_id,
created_at,
updated_at
FROM model_collections
WHERE collection_name = 'org-shared-models'
AND is_active = true;
