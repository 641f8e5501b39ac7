-- Initial production schema: PostGIS, anchors, postings, seekers, map layers, metadata.
-- Coordinates are WGS84 (EPSG:4326) degrees; distances are computed on geography, in metres.

CREATE EXTENSION IF NOT EXISTS postgis;

-- Build metadata. The value is json, not jsonb, so nested objects keep their key order
-- (anchors_by_precision is listed from exact to city); jsonb would sort keys by length.
CREATE TABLE meta (
    key text PRIMARY KEY,
    value json NOT NULL
);

-- Column order and pandas kind of each stored frame, so a read returns the columns the
-- build wrote, in the same order, including the ones kept in an `extra` jsonb column.
CREATE TABLE frame_columns (
    frame text NOT NULL,
    position integer NOT NULL,
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('bool', 'int', 'float', 'text', 'other')),
    PRIMARY KEY (frame, position),
    UNIQUE (frame, name)
);

-- The *_row columns keep the order in which the build wrote the rows, so reads return
-- them in that order as the SQLite store does.
CREATE TABLE anchors (
    anchor_id text PRIMARY KEY,
    anchor_row integer NOT NULL UNIQUE,
    name text NOT NULL,
    lon double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    lat double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    geom geometry(Point, 4326) NOT NULL
        GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED,
    precision text NOT NULL,
    source text NOT NULL,
    location_label text NOT NULL,
    district_code text,
    state text NOT NULL,
    n_postings integer NOT NULL,
    extra jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX anchors_geom ON anchors USING gist (geom);
CREATE INDEX anchors_geography ON anchors USING gist ((geom::geography));

CREATE TABLE postings (
    posting_id text PRIMARY KEY,
    posting_row integer NOT NULL UNIQUE,
    anchor_id text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    source text,
    title text,
    company text,
    location_text text,
    business_zones text,
    salary_text text,
    salary_min_month double precision,
    salary_max_month double precision,
    salary_period text,
    salary_months_per_year double precision,
    education smallint,
    experience_min_years double precision,
    experience_max_years double precision,
    graduate_ok boolean,
    published_on text,
    occupation_code text,
    occupation_name text,
    occupation_score double precision,
    extra jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX postings_anchor_id ON postings (anchor_id);

CREATE TABLE seekers (
    seeker_id text PRIMARY KEY,
    seeker_row integer NOT NULL UNIQUE,
    simulated boolean NOT NULL,
    "group" text,
    education smallint,
    experience_years double precision,
    major text,
    occupation_wish_code text,
    occupation_wish_name text,
    keywords text,
    salary_wish_min double precision,
    salary_wish_max double precision,
    max_commute_min integer,
    modes text,
    home_lon double precision,
    home_lat double precision,
    home_label text,
    home_kind text,
    home_district_code text,
    university text,
    extra jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE layers (
    name text PRIMARY KEY,
    title_zh text NOT NULL,
    title_en text NOT NULL,
    source text NOT NULL,
    updated text NOT NULL,
    geometry_type text NOT NULL
);

CREATE TABLE layer_features (
    feature_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    layer text NOT NULL REFERENCES layers (name) ON DELETE CASCADE,
    properties jsonb NOT NULL,
    geom geometry(Geometry, 4326) NOT NULL
);
CREATE INDEX layer_features_layer ON layer_features (layer);
CREATE INDEX layer_features_geom ON layer_features USING gist (geom);
