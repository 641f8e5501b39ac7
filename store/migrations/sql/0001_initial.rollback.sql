-- Drop the initial schema. The postgis extension stays: other schemas may use it.
DROP TABLE layer_features;
DROP TABLE layers;
DROP TABLE seekers;
DROP TABLE postings;
DROP TABLE anchors;
DROP TABLE frame_columns;
DROP TABLE meta;
