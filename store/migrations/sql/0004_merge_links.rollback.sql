-- Drop the merge links; the merged anchors stay retired.
DROP INDEX anchors_merged_into;
ALTER TABLE anchors DROP COLUMN merged_into;
