-- Drop the anchor filing; street and station staff then have no anchors of their own.
DROP INDEX anchors_filed_org;
ALTER TABLE anchors DROP COLUMN filed_org;
