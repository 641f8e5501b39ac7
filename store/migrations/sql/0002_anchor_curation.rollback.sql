-- Drop the anchor curation history and columns; the anchors written by the build stay.
DROP TABLE anchor_history;
DROP INDEX anchors_zone_key;
DROP INDEX anchors_district_code;
DROP INDEX anchors_credit_code;
ALTER TABLE anchors ALTER COLUMN anchor_row DROP DEFAULT;
DROP SEQUENCE anchors_anchor_row_seq;
ALTER TABLE anchors ALTER COLUMN n_postings DROP DEFAULT;
ALTER TABLE anchors ALTER COLUMN state DROP DEFAULT;
ALTER TABLE anchors
    DROP COLUMN version,
    DROP COLUMN zone_key,
    DROP COLUMN address,
    DROP COLUMN entrance_lon,
    DROP COLUMN entrance_lat,
    DROP COLUMN credit_code,
    DROP COLUMN industry_code,
    DROP COLUMN size,
    DROP COLUMN key_enterprise,
    DROP COLUMN above_scale_industrial,
    DROP COLUMN contact_role,
    DROP COLUMN contact_phone,
    DROP COLUMN shift_times,
    DROP COLUMN shuttle_stop;
