-- "Job at your doorstep" pushes: consent, the per-seeker record of pushed jobs, the
-- transactional outbox that the relay moves to a Redis stream, and the in-app inbox.
-- A push decision and its outbox row are written in the transaction of the change that
-- triggered them (a posting becoming active, its anchor becoming verified).
-- depends: 0008_totp_steps

CREATE TABLE push_consents (
    seeker_id text PRIMARY KEY,
    consented_at timestamptz,
    opted_out_at timestamptz,
    channel text NOT NULL DEFAULT 'inbox' CHECK (channel IN ('inbox', 'sms', 'wechat')),
    lang text NOT NULL DEFAULT 'zh' CHECK (lang IN ('zh', 'en')),
    updated_at timestamptz NOT NULL
);

-- Jobs already pushed to a seeker: the primary key makes "never the same job twice" hold
-- under concurrent triggers, and the scores serve the "better than already shown" rule.
CREATE TABLE push_shown (
    seeker_id text NOT NULL,
    posting_id text NOT NULL,
    push_id text NOT NULL,
    score double precision NOT NULL,
    shown_at timestamptz NOT NULL,
    PRIMARY KEY (seeker_id, posting_id)
);
CREATE INDEX push_shown_recent ON push_shown (seeker_id, shown_at);

CREATE TABLE push_outbox (
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    push_id text PRIMARY KEY,
    seeker_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('job', 'digest')),
    posting_id text,
    trigger text NOT NULL,
    score double precision,
    channel text NOT NULL,
    title text NOT NULL,
    body text NOT NULL,
    link text NOT NULL,
    created_at timestamptz NOT NULL,
    not_before timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'queued', 'sending', 'delivered', 'skipped', 'dead')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    relayed_at timestamptz,
    claimed_until timestamptz,
    sent_day date,
    delivered_at timestamptz,
    skip_reason text,
    last_error text
);
CREATE INDEX push_outbox_due ON push_outbox (status, not_before)
    WHERE status IN ('pending', 'queued', 'sending');
CREATE INDEX push_outbox_seeker_day ON push_outbox (seeker_id, sent_day);
CREATE INDEX push_outbox_dead ON push_outbox (seq) WHERE status = 'dead';

CREATE TABLE push_inbox (
    push_id text PRIMARY KEY REFERENCES push_outbox (push_id) ON DELETE CASCADE,
    seeker_id text NOT NULL,
    title text NOT NULL,
    body text NOT NULL,
    link text NOT NULL,
    created_at timestamptz NOT NULL,
    read_at timestamptz
);
CREATE INDEX push_inbox_seeker ON push_inbox (seeker_id, created_at DESC);
