-- Anchor curation: version, place and employer details of each anchor, and its edit history.
-- Anchors written by the build get the defaults (version 1, state draft, no details).
-- depends: 0001_initial

ALTER TABLE anchors
    ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    ADD COLUMN zone_key text,
    ADD COLUMN address text NOT NULL DEFAULT '',
    ADD COLUMN entrance_lon double precision CHECK (entrance_lon BETWEEN -180 AND 180),
    ADD COLUMN entrance_lat double precision CHECK (entrance_lat BETWEEN -90 AND 90),
    ADD COLUMN credit_code text,
    ADD COLUMN industry_code text,
    ADD COLUMN size text CHECK (size IN ('micro', 'small', 'medium', 'large')),
    ADD COLUMN key_enterprise boolean NOT NULL DEFAULT false,
    ADD COLUMN above_scale_industrial boolean NOT NULL DEFAULT false,
    ADD COLUMN contact_role text,
    ADD COLUMN contact_phone text,
    ADD COLUMN shift_times jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN shuttle_stop jsonb;
ALTER TABLE anchors ALTER COLUMN state SET DEFAULT 'draft';
ALTER TABLE anchors ALTER COLUMN n_postings SET DEFAULT 0;

-- Staff-added anchors take their write-order number from this sequence; the build's COPY
-- writes the numbers itself and then moves the sequence past them.
CREATE SEQUENCE anchors_anchor_row_seq OWNED BY anchors.anchor_row;
SELECT setval('anchors_anchor_row_seq', coalesce(max(anchor_row), 0) + 1, false) FROM anchors;
ALTER TABLE anchors ALTER COLUMN anchor_row SET DEFAULT nextval('anchors_anchor_row_seq');

-- One credit code (统一社会信用代码) names one employer, so at most one anchor carries it.
CREATE UNIQUE INDEX anchors_credit_code ON anchors (credit_code) WHERE credit_code IS NOT NULL;
CREATE INDEX anchors_district_code ON anchors (district_code);
CREATE INDEX anchors_zone_key ON anchors (zone_key);

-- One row per stored version of an anchor: who changed which fields, when and why.
-- `changes` is a JSON list of {field, old, new}.
CREATE TABLE anchor_history (
    history_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    anchor_id text NOT NULL REFERENCES anchors (anchor_id),
    version integer NOT NULL,
    actor text NOT NULL,
    at timestamptz NOT NULL,
    reason text NOT NULL,
    changes jsonb NOT NULL,
    state text NOT NULL,
    UNIQUE (anchor_id, version)
);
