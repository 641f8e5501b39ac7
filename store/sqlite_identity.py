"""The identity store in an embedded SQLite file.

The tables mirror PostgreSQL migrations ``0007_identity`` and ``0008_totp_steps``,
with times as UTC ISO 8601 text of one fixed width, so text order is time order.
They live in their own file (``DOORSTEP_IDENTITY_PATH``), because ``doorstep build
--force`` rewrites the store file. Each call runs in one ``BEGIN IMMEDIATE`` transaction
with foreign keys on, so concurrent writers queue.
"""

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from store.audit import utc_text
from store.identity_sql import SqlIdentity

BUSY_TIMEOUT_S = 5.0

IDENTITY_TABLES = """
CREATE TABLE IF NOT EXISTS organisations (
    org_id TEXT PRIMARY KEY,
    parent_id TEXT REFERENCES organisations (org_id),
    level TEXT NOT NULL CHECK (level IN ('city', 'district', 'street', 'station')),
    name TEXT NOT NULL,
    region_code TEXT NOT NULL,
    district_code TEXT,
    CHECK ((level = 'city') = (parent_id IS NULL))
);
CREATE INDEX IF NOT EXISTS organisations_parent ON organisations (parent_id);
CREATE TRIGGER IF NOT EXISTS organisations_parent_level BEFORE INSERT ON organisations
WHEN NEW.parent_id IS NOT NULL AND (
    SELECT level FROM organisations WHERE org_id = NEW.parent_id
) IS NOT CASE NEW.level
    WHEN 'district' THEN 'city' WHEN 'street' THEN 'district' WHEN 'station' THEN 'street'
END
BEGIN SELECT RAISE(ABORT, 'organisation parent must be exactly one level up'); END;
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('staff', 'seeker')),
    login TEXT NOT NULL,
    org_id TEXT REFERENCES organisations (org_id),
    name_enc TEXT NOT NULL,
    mobile_enc TEXT NOT NULL,
    mobile_index TEXT NOT NULL,
    password_hash TEXT,
    password_changed_at TEXT,
    second_factor TEXT NOT NULL CHECK (second_factor IN ('sms', 'totp')),
    totp_secret_enc TEXT,
    locked_until TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (kind, login),
    UNIQUE (kind, mobile_index),
    CHECK (kind = 'seeker' OR (org_id IS NOT NULL AND password_hash IS NOT NULL)),
    CHECK (second_factor = 'sms' OR totp_secret_enc IS NOT NULL)
);
CREATE TABLE IF NOT EXISTS account_roles (
    account_id TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN (
        'seeker', 'station_staff', 'assistance_officer', 'analyst',
        'system_admin', 'security_admin', 'audit_admin'
    )),
    PRIMARY KEY (account_id, role)
);
CREATE UNIQUE INDEX IF NOT EXISTS account_roles_one_admin ON account_roles (account_id)
    WHERE role IN ('system_admin', 'security_admin', 'audit_admin');
CREATE TABLE IF NOT EXISTS login_failures (
    account_id TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_account ON login_failures (account_id, at);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    device_id TEXT,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    revoked_at TEXT,
    revoke_reason TEXT
);
CREATE TABLE IF NOT EXISTS devices (
    account_id TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    label TEXT NOT NULL,
    bound_at TEXT NOT NULL,
    unbound_at TEXT,
    PRIMARY KEY (account_id, device_id)
);
CREATE TABLE IF NOT EXISTS one_time_codes (
    code_id TEXT PRIMARY KEY,
    mobile_index TEXT NOT NULL,
    purpose TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS one_time_codes_lookup
    ON one_time_codes (mobile_index, purpose, created_at);
CREATE TABLE IF NOT EXISTS totp_last_steps (
    account_id TEXT PRIMARY KEY REFERENCES accounts (account_id) ON DELETE CASCADE,
    step INTEGER NOT NULL CHECK (step >= 0)
);
"""


class _SqliteTransaction:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self._connection.execute(statement.replace("%s", "?"), params)
        return [tuple(row) for row in cursor.fetchall()]

    def run(self, statement: str, params: Sequence[Any] = ()) -> int:
        return self._connection.execute(statement.replace("%s", "?"), params).rowcount


class SqliteIdentity(SqlIdentity):
    """Identity records in the SQLite file at ``path``, created with its tables on first use."""

    for_update = ""  # BEGIN IMMEDIATE already holds the file's write lock

    def __init__(self, path: Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as connection:
            connection.executescript(IDENTITY_TABLES)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        connection.execute("PRAGMA foreign_keys = ON")
        return connection

    def describe(self) -> str:
        """Return the identity file's path, for logs."""
        return f"SQLite {self.path}"

    @contextmanager
    def transaction(self) -> Iterator[_SqliteTransaction]:
        """Run one ``BEGIN IMMEDIATE`` transaction on a fresh connection."""
        with closing(self._connect()) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTransaction(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def to_db_time(self, at: datetime) -> str:
        """Format an aware time as fixed-width UTC text."""
        return utc_text(at)

    def from_db_time(self, value: Any) -> datetime:
        """Parse the stored UTC text."""
        return datetime.fromisoformat(str(value)).astimezone(UTC)

    def is_unique_violation(self, err: Exception) -> bool:
        """Return whether ``err`` is SQLite's UNIQUE or PRIMARY KEY failure."""
        return isinstance(err, sqlite3.IntegrityError) and "UNIQUE" in str(err)

    def is_foreign_key_violation(self, err: Exception) -> bool:
        """Return whether ``err`` is SQLite's FOREIGN KEY failure."""
        return isinstance(err, sqlite3.IntegrityError) and "FOREIGN KEY" in str(err)
