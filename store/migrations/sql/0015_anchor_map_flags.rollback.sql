-- Restore the map fragment of 0005, without the enterprise flags, and rewrite the rows.
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
        ',"district_code":', coalesce(to_json(NEW.district_code)::text, 'null')
    );
    RETURN NEW;
END;
$$;

UPDATE anchors SET map_feature = NULL;
