UPDATE model_collections
SET is_system_collection = true
WHERE collection_name = 'auto-free' AND is_active = true;
