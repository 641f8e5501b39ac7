-- Identity: the organisation tree, accounts and their roles, login failures, server-side
-- sessions, bound devices and one-time codes. Personal fields of accounts are FieldCipher
-- envelopes (SM4-GCM) and an HMAC-SM3 blind index of the mobile, never plaintext.
-- depends: 0006_audit_log

CREATE TABLE organisations (
    org_id text PRIMARY KEY,
    parent_id text REFERENCES organisations (org_id),
    level text NOT NULL CHECK (level IN ('city', 'district', 'street', 'station')),
    name text NOT NULL,
    region_code text NOT NULL,
    district_code text,
    CHECK ((level = 'city') = (parent_id IS NULL))
);
CREATE INDEX organisations_parent ON organisations (parent_id);

-- A parent is exactly one level above its child: city > district > street > station.
CREATE FUNCTION organisations_check_parent() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent_level text;
    expected_level text;
BEGIN
    IF NEW.parent_id IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT level INTO parent_level FROM organisations WHERE org_id = NEW.parent_id;
    -- Computed apart from the IF, whose condition PL/pgSQL ends at the first THEN.
    expected_level := CASE NEW.level
        WHEN 'district' THEN 'city' WHEN 'street' THEN 'district' WHEN 'station' THEN 'street'
    END;
    IF parent_level IS DISTINCT FROM expected_level THEN
        RAISE EXCEPTION 'organisation % (level %) cannot sit below % (level %)',
            NEW.org_id, NEW.level, NEW.parent_id, parent_level
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER organisations_parent_level BEFORE INSERT OR UPDATE ON organisations
    FOR EACH ROW EXECUTE FUNCTION organisations_check_parent();

CREATE TABLE accounts (
    account_id text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('staff', 'seeker')),
    login text NOT NULL,
    org_id text REFERENCES organisations (org_id),
    name_enc text NOT NULL,
    mobile_enc text NOT NULL,
    mobile_index text NOT NULL,
    password_hash text,
    password_changed_at timestamptz,
    second_factor text NOT NULL CHECK (second_factor IN ('sms', 'totp')),
    totp_secret_enc text,
    locked_until timestamptz,
    created_at timestamptz NOT NULL,
    UNIQUE (kind, login),
    UNIQUE (kind, mobile_index),
    CHECK (kind = 'seeker' OR (org_id IS NOT NULL AND password_hash IS NOT NULL)),
    CHECK (second_factor = 'sms' OR totp_secret_enc IS NOT NULL)
);

CREATE TABLE account_roles (
    account_id text NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN (
        'seeker', 'station_staff', 'assistance_officer', 'analyst',
        'system_admin', 'security_admin', 'audit_admin'
    )),
    PRIMARY KEY (account_id, role)
);
-- Separation of duties: one account holds at most one of the three administrator roles.
-- A unique index, unlike a trigger, also holds for two concurrent inserts.
CREATE UNIQUE INDEX account_roles_one_admin ON account_roles (account_id)
    WHERE role IN ('system_admin', 'security_admin', 'audit_admin');

CREATE TABLE login_failures (
    account_id text NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    at timestamptz NOT NULL
);
CREATE INDEX login_failures_account ON login_failures (account_id, at);

CREATE TABLE sessions (
    session_id text PRIMARY KEY,
    account_id text NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    device_id text,
    created_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoke_reason text
);
CREATE INDEX sessions_account ON sessions (account_id) WHERE revoked_at IS NULL;

CREATE TABLE devices (
    account_id text NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    device_id text NOT NULL,
    label text NOT NULL,
    bound_at timestamptz NOT NULL,
    unbound_at timestamptz,
    PRIMARY KEY (account_id, device_id)
);

CREATE TABLE one_time_codes (
    code_id text PRIMARY KEY,
    mobile_index text NOT NULL,
    purpose text NOT NULL,
    code_hash text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    attempts integer NOT NULL DEFAULT 0
);
CREATE INDEX one_time_codes_lookup ON one_time_codes (mobile_index, purpose, created_at);
