SELECT property_value
FROM system_properties
WHERE property_name = 'routing.auto_free_models';
