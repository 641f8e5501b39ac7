-- The map's bbox query concatenates one stored GeoJSON fragment per anchor instead of
-- building JSON objects row by row, which cost most of its time. The fragment is the
-- Feature up to the language-independent properties; the query appends the labels of
-- the request's language and closes it (store/anchor_map.py describes the body).
-- A trigger writes it on every insert and update, so no write path can leave it stale.
-- depends: 0003_idempotency_keys

ALTER TABLE anchors ADD COLUMN map_feature text;

-- extra_float_digits = 1 prints each double with the fewest digits that read back
-- to the same value, as Python's repr does.
CREATE FUNCTION anchors_map_feature() RETURNS trigger
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

CREATE TRIGGER anchors_map_feature
    BEFORE INSERT OR UPDATE ON anchors
    FOR EACH ROW EXECUTE FUNCTION anchors_map_feature();

-- Fill the rows already stored; the trigger computes the value.
UPDATE anchors SET map_feature = NULL;
ALTER TABLE anchors ALTER COLUMN map_feature SET NOT NULL;
