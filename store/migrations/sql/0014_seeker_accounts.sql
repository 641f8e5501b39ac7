-- Seekers' own accounts: the link from a seeker login account to its seeker profile, and
-- the seeker's WeChat mini-program openid (an SM4-GCM envelope) for subscription messages.
-- A profile a seeker registers is a row of seekers with simulated = false; its seeker_row
-- comes from a sequence that starts far above the rows a build writes.
-- depends: 0010_push 0011_anchor_filing

CREATE TABLE seeker_accounts (
    account_id text PRIMARY KEY,
    seeker_id text NOT NULL UNIQUE,
    origin text NOT NULL CHECK (origin IN ('matched', 'registered')),
    linked_at timestamptz NOT NULL
);

CREATE TABLE seeker_contacts (
    seeker_id text PRIMARY KEY,
    wechat_openid_enc text NOT NULL CHECK (wechat_openid_enc LIKE 'pi1.%'),
    bound_at timestamptz NOT NULL
);

CREATE SEQUENCE seekers_registered_row START 1000000000;
