SELECT
id,
collection_name,
display_name,
description,
scope,
routing_strategy,
organization_id
FROM model_collections
WHERE collection_name = 'flash2.5'
AND is_active = true;
