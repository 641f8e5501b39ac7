-- The jobs each preference-change digest lists, with their line of text in the digest's
-- language. A worker's claim drops the jobs of postings deactivated after the digest was
-- written and renders the digest text again from the jobs that remain.
-- depends: 0010_push 0014_seeker_accounts

CREATE TABLE push_digest_items (
    push_id text NOT NULL REFERENCES push_outbox (push_id) ON DELETE CASCADE,
    position integer NOT NULL CHECK (position >= 0),
    seeker_id text NOT NULL,
    posting_id text NOT NULL,
    score double precision NOT NULL,
    lang text NOT NULL CHECK (lang IN ('zh', 'en')),
    line text NOT NULL,
    PRIMARY KEY (push_id, position)
);
CREATE INDEX push_digest_items_seeker ON push_digest_items (seeker_id);
