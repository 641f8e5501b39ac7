-- The log of writes that change the service processes' in-memory job index: a posting
-- activated or deactivated, an anchor's pin moved, anchors merged. Each row is written in
-- the transaction of its change; writers lock the table until they commit, so a row becomes
-- visible only after every row with a lower change_id.
-- depends: 0016_push_digest_items

CREATE TABLE job_index_changes (
    change_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('posting', 'anchor')),
    object_id text NOT NULL,
    merged_ids text NOT NULL DEFAULT '[]',
    changed_at timestamptz NOT NULL
);
