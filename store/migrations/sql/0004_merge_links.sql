-- Merge links: a merged anchor stores the survivor it was merged into, so that a rebuild
-- moves the postings of the merged anchor to the survivor again. Only a retired anchor
-- has a link; reactivating the anchor removes it.
-- depends: 0002_anchor_curation

ALTER TABLE anchors
    ADD COLUMN merged_into text REFERENCES anchors (anchor_id),
    ADD CONSTRAINT anchors_merged_into_retired
        CHECK (merged_into IS NULL OR (state = 'retired' AND merged_into <> anchor_id));
-- Rebuilds look up survivors, and each deleted anchor is checked against the links.
CREATE INDEX anchors_merged_into ON anchors (merged_into);

-- Merges made before this migration: a retired anchor accepts no edit but reactivation,
-- so the history entry at its current version is its retirement. A merge wrote the reason
-- 'merged into anchor <survivor id> as a duplicate' there.
UPDATE anchors AS merged
SET merged_into = retirement.survivor
FROM (
    SELECT history.anchor_id,
           substring(history.reason FROM '^merged into anchor (.+) as a duplicate$') AS survivor
    FROM anchor_history AS history
    JOIN anchors ON anchors.anchor_id = history.anchor_id
        AND anchors.version = history.version
    WHERE anchors.state = 'retired'
) AS retirement
WHERE merged.anchor_id = retirement.anchor_id
  AND retirement.survivor <> merged.anchor_id
  AND EXISTS (SELECT 1 FROM anchors AS survivor WHERE survivor.anchor_id = retirement.survivor);
