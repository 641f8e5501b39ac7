-- Drop the stored map fragments and the trigger that writes them.
DROP TRIGGER anchors_map_feature ON anchors;
DROP FUNCTION anchors_map_feature();
ALTER TABLE anchors DROP COLUMN map_feature;
