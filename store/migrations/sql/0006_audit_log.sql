-- The operation log: one row per audited operation, in an HMAC-SM3 hash chain computed by
-- the service (store.audit), and a one-row chain head. An append locks the head row
-- FOR UPDATE, so appends are serialised and the chain cannot fork.
-- depends: 0005_anchor_map_feature

CREATE TABLE audit_log (
    seq bigint PRIMARY KEY CHECK (seq >= 1),
    at timestamptz NOT NULL,
    actor text NOT NULL,
    role text NOT NULL,
    org text NOT NULL,
    action text NOT NULL,
    object_id text NOT NULL,
    result text NOT NULL,
    status_code integer NOT NULL,
    source text NOT NULL,
    request_id text NOT NULL,
    tag bytea NOT NULL CHECK (length(tag) = 32)
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE audit_head (
    id smallint PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL,
    tag bytea NOT NULL
);
INSERT INTO audit_head (id, seq, tag) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- Rows of audit_log are never changed or removed, by any role: the trigger fires for the
-- owner and for superusers too. Only a role that may ALTER the table (its owner or a
-- superuser) can disable the triggers, so the service should run as a role that does not
-- own it; docs/security.md has the GRANT statements.
CREATE FUNCTION audit_log_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_reject_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_reject_change();
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_log_reject_change();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_reject_change();

-- The head may only advance by one, to a record that exists with the same tag.
CREATE FUNCTION audit_head_check_advance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq <> OLD.seq + 1 OR NOT EXISTS (
        SELECT 1 FROM audit_log WHERE seq = NEW.seq AND tag = NEW.tag
    ) THEN
        RAISE EXCEPTION 'audit_head may only advance to the record appended last'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER audit_head_advance BEFORE UPDATE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_check_advance();

REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;

-- A deployment that runs the service as the role doorstep_app gets insert and read only.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'doorstep_app') THEN
        REVOKE ALL ON audit_log, audit_head FROM doorstep_app;
        GRANT SELECT, INSERT ON audit_log TO doorstep_app;
        GRANT SELECT, UPDATE ON audit_head TO doorstep_app;
    END IF;
END;
$$;
