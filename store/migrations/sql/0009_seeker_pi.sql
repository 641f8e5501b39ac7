-- Seekers' personal fields only as SM4-GCM envelopes, with HMAC-SM3 blind indexes of the
-- ID number and the mobile. home_lon/home_lat now hold the street office point, not the
-- home; the exact home (point, compound name, campus) is inside home_enc.
-- The seekers stored so far are simulated and keep an exact home in plaintext, so they
-- are deleted; `doorstep build` writes them again in the encrypted form.
-- depends: 0008_totp_steps

DELETE FROM seekers WHERE simulated;

ALTER TABLE seekers
    DROP COLUMN home_label,
    DROP COLUMN university,
    ADD COLUMN home_street_code text,
    ADD COLUMN home_community_code text,
    ADD COLUMN name_enc text,
    ADD COLUMN mobile_enc text,
    ADD COLUMN id_number_enc text,
    ADD COLUMN hardship_enc text,
    ADD COLUMN home_enc text,
    ADD COLUMN id_number_index text CHECK (id_number_index ~ '^[0-9a-f]{64}$'),
    ADD COLUMN mobile_index text CHECK (mobile_index ~ '^[0-9a-f]{64}$');

CREATE UNIQUE INDEX seekers_id_number_index ON seekers (id_number_index);
CREATE UNIQUE INDEX seekers_mobile_index ON seekers (mobile_index);
CREATE INDEX seekers_home_community_code ON seekers (home_community_code);

DELETE FROM frame_columns WHERE frame = 'seekers';
