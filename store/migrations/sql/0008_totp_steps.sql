-- The last TOTP time step each account used, so a code (and any older one) works once.
-- A login stores a step only if it is later than the stored one, in one atomic upsert.
-- depends: 0007_identity

CREATE TABLE totp_last_steps (
    account_id text PRIMARY KEY REFERENCES accounts (account_id) ON DELETE CASCADE,
    step bigint NOT NULL CHECK (step >= 0)
);
