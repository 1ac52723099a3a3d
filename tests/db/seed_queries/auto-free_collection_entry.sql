SELECT *
FROM model_collections
WHERE collection_name = 'auto-free'
  AND is_active = true;
