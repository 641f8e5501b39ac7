-- Drop the encrypted personal fields and blind indexes of seekers. The encrypted
-- seekers are deleted too, because the old columns cannot hold their exact homes;
-- `doorstep build` on the old code writes them again.
DELETE FROM seekers;
DROP INDEX seekers_home_community_code;
DROP INDEX seekers_mobile_index;
DROP INDEX seekers_id_number_index;
ALTER TABLE seekers
    DROP COLUMN mobile_index,
    DROP COLUMN id_number_index,
    DROP COLUMN home_enc,
    DROP COLUMN hardship_enc,
    DROP COLUMN id_number_enc,
    DROP COLUMN mobile_enc,
    DROP COLUMN name_enc,
    DROP COLUMN home_community_code,
    DROP COLUMN home_street_code,
    ADD COLUMN home_label text,
    ADD COLUMN university text;
DELETE FROM frame_columns WHERE frame = 'seekers';
