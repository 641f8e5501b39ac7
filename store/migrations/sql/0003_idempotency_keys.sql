-- Idempotency keys of staff anchor creation: a retried POST /v1/staff/anchors with the
-- same key and body returns the anchor the first request created. The key row is written
-- in the transaction that inserts the anchor, and the next keyed insert deletes rows older
-- than 24 hours.
-- depends: 0002_anchor_curation

-- The foreign key is checked at commit, because a keyed insert writes the key row before
-- the anchor so that a second request with the same key waits on the primary key.
CREATE TABLE idempotency_keys (
    staff_id text NOT NULL,
    key text NOT NULL CHECK (length(key) BETWEEN 1 AND 128),
    body_hash text NOT NULL,
    anchor_id text NOT NULL
        REFERENCES anchors (anchor_id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (staff_id, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
