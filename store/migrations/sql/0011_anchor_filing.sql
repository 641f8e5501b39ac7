-- Anchor filing: the street or community station whose staff curate an anchor. NULL
-- leaves the anchor to its district's staff. Street and station staff see and change
-- only the anchors filed under their own organisation subtree.
-- depends: 0002_anchor_curation

ALTER TABLE anchors ADD COLUMN filed_org text;
CREATE INDEX anchors_filed_org ON anchors (filed_org);
