-- The map's anchor features carry the staff-curated flags key_enterprise (重点企业) and
-- above_scale_industrial (规上工业企业), so the stored fragment of 0005 gains both after
-- district_code. The trigger of 0005 calls this function on every insert and update, so a
-- curation edit of a flag rewrites the fragment in the same statement.
-- depends: 0002_anchor_curation 0005_anchor_map_feature

CREATE OR REPLACE FUNCTION anchors_map_feature() RETURNS trigger
LANGUAGE plpgsql
SET extra_float_digits = 1
AS $$
BEGIN
    NEW.map_feature := concat(
        '{"type":"Feature","geometry":{"type":"Point","coordinates":[',
        to_json(NEW.lon)::text, ',', to_json(NEW.lat)::text,
        ']},"properties":{"anchor_id":', to_json(NEW.anchor_id)::text,
        ',"name":', to_json(NEW.name)::text,
        ',"precision":', to_json(NEW."precision")::text,
        ',"state":', to_json(NEW.state)::text,
        ',"n_postings":', NEW.n_postings::text,
        ',"location_label":', to_json(NEW.location_label)::text,
        ',"district_code":', coalesce(to_json(NEW.district_code)::text, 'null'),
        ',"key_enterprise":', to_json(NEW.key_enterprise)::text,
        ',"above_scale_industrial":', to_json(NEW.above_scale_industrial)::text
    );
    RETURN NEW;
END;
$$;

-- Rewrite the rows already stored; the trigger computes the value.
UPDATE anchors SET map_feature = NULL;
