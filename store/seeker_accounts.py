"""Seekers' own accounts in either store: the account link, registered profiles, the openid.

Three things live beside the seekers table, in the same database (the SQLite store file
or PostgreSQL, migration ``0014_seeker_accounts``):

- ``seeker_accounts`` links a seeker login account to one seeker profile. ``origin`` is
  ``matched`` when the account's mobile blind index equals a stored profile's, and
  ``registered`` when the seeker created the profile.
- Profiles a seeker registers or edits are rows of ``seekers`` with ``simulated`` false,
  in the stored form of :mod:`store.seeker_records` (envelopes, no plaintext).
- ``seeker_contacts`` keeps the seeker's WeChat mini-program openid as an SM4-GCM envelope.

A profile write, its operation-log record and the digest push it triggers are written
in one transaction, so a stored change never lacks its push decision or its record.
The store layer gets no key, because the API layer encrypts before a write.
"""

import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import psycopg

from geo.errors import DoorstepError
from store import postgres_audit, sqlite_audit
from store.audit import AuditWrite
from store.envelope_column import EnvelopeColumn
from store.push_outbox import PushBatch, ensure_sqlite_tables, write_digest
from store.push_sql import SqlTx
from store.seeker_records import EnvelopeUpdate

if TYPE_CHECKING:
    from store.postgres import Pool

logger = logging.getLogger(__name__)

LinkOrigin = Literal["matched", "registered"]

SQLITE_TABLES = """
CREATE TABLE IF NOT EXISTS seeker_accounts (
    account_id TEXT PRIMARY KEY,
    seeker_id TEXT NOT NULL UNIQUE,
    origin TEXT NOT NULL CHECK (origin IN ('matched', 'registered')),
    linked_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seeker_contacts (
    seeker_id TEXT PRIMARY KEY,
    wechat_openid_enc TEXT NOT NULL CHECK (wechat_openid_enc LIKE 'pi1.%'),
    bound_at TEXT NOT NULL
)
"""
"""The tables of the embedded store; PostgreSQL gets them from migration 0014."""

OPENID_ENVELOPE = EnvelopeColumn("seeker_contacts", "wechat_openid_enc")
"""The WeChat openid envelope; its table and column names are the cipher's context."""

PROFILE_COLUMNS = (
    "simulated", "group", "education", "experience_years", "major", "occupation_wish_code",
    "occupation_wish_name", "keywords", "salary_wish_min", "salary_wish_max",
    "max_commute_min", "modes", "home_lon", "home_lat", "home_kind", "home_district_code",
    "home_street_code", "home_community_code", "name_enc", "mobile_enc", "id_number_enc",
    "hardship_enc", "home_enc", "id_number_index", "mobile_index",
)  # fmt: skip
"""Columns of ``seekers`` that a registered profile writes, besides ``seeker_id``."""


class ProfileConflictError(DoorstepError, LookupError):
    """The account is already linked to another profile, or the profile to another account."""


@dataclass(frozen=True, slots=True)
class ProfileWrite:
    """One stored profile row to insert or replace, and what the same transaction also writes.

    ``row`` contains ``seeker_id`` and every column of :data:`PROFILE_COLUMNS`, personal
    fields already encrypted. ``digest`` is the batch of the preference-change push.
    """

    account_id: str
    row: Mapping[str, Any]
    audit: AuditWrite | None = None
    digest: PushBatch | None = None


class SeekerAccounts:
    """Links, registered profiles and contacts on SQLite or PostgreSQL, one transaction a call."""

    def __init__(self, transaction: Callable[[], AbstractContextManager[SqlTx]], label: str):
        self._transaction = transaction
        self.label = label

    @classmethod
    def sqlite(cls, path: Path, busy_timeout_s: float = 5.0) -> "SeekerAccounts":
        """Return the accounts of an embedded store file (WAL, ``BEGIN IMMEDIATE``)."""

        @contextmanager
        def transaction() -> Iterator[SqlTx]:
            connection = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    tx = SqlTx(connection)
                    _ensure_sqlite_tables(tx)
                    yield tx
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
            finally:
                connection.close()

        return cls(transaction, f"SQLite {path}")

    @classmethod
    def postgres(cls, pool: "Pool") -> "SeekerAccounts":
        """Return the accounts of a PostgreSQL database migrated to 0014 or later."""

        @contextmanager
        def transaction() -> Iterator[SqlTx]:
            with pool.connection() as connection, connection.transaction():
                yield SqlTx(connection)

        return cls(transaction, f"PostgreSQL pool {pool.name!r}")

    # Links

    def linked_seeker(self, account_id: str, mobile_index: str) -> str | None:
        """Return the seeker id linked to an account, or None when it has no valid link.

        A link counts only while the profile's mobile blind index is the account's, so
        a link to a row that a rebuild replaced with another person's is ignored.
        """
        with self._transaction() as tx:
            rows = tx.rows(
                "SELECT l.seeker_id FROM seeker_accounts AS l JOIN seekers AS s"
                " ON s.seeker_id = l.seeker_id WHERE l.account_id = ? AND s.mobile_index = ?",
                (account_id, mobile_index),
            )
        return str(rows[0]["seeker_id"]) if rows else None

    def linked_account(self, seeker_id: str) -> str | None:
        """Return the account id linked to a seeker, or None."""
        with self._transaction() as tx:
            rows = tx.rows(
                "SELECT account_id FROM seeker_accounts WHERE seeker_id = ?", (seeker_id,)
            )
        return str(rows[0]["account_id"]) if rows else None

    def link_by_mobile(self, account_id: str, mobile_index: str, at: datetime) -> str | None:
        """Link an account to the profile with the same mobile blind index; return its id.

        Returns None when no stored profile has that index. Earlier links of the account
        or of the profile are replaced, because they are left from a replaced row.
        """
        with self._transaction() as tx:
            found = tx.rows("SELECT seeker_id FROM seekers WHERE mobile_index = ?", (mobile_index,))
            if not found:
                return None
            seeker_id = str(found[0]["seeker_id"])
            # One mobile has one seeker account, so another account's link is stale.
            tx.execute(
                "DELETE FROM seeker_accounts WHERE account_id = ? OR seeker_id = ?",
                (account_id, seeker_id),
            )
            _insert_link(tx, account_id, seeker_id, "matched", at)
            _adopt_account_pushes(tx, account_id, seeker_id)
        logger.info("account %s linked to seeker %s by mobile", account_id, seeker_id)
        return seeker_id

    # Profiles

    def save_profile(self, write: ProfileWrite, at: datetime) -> str | None:
        """Insert or replace a profile, link it, append the audit record and write the digest.

        All in one transaction. Returns the digest push id, None when no digest was
        written (no consent, nothing new, or no batch).

        Raises
        ------
        ProfileConflictError
            The seeker is linked to another account.
        """
        seeker_id = str(write.row["seeker_id"])
        with self._transaction() as tx:
            # The caller found no valid link to another profile, so such a link is stale.
            tx.execute(
                "DELETE FROM seeker_accounts WHERE account_id = ? AND seeker_id <> ?",
                (write.account_id, seeker_id),
            )
            linked = tx.rows(
                "SELECT account_id, seeker_id FROM seeker_accounts"
                " WHERE account_id = ? OR seeker_id = ?",
                (write.account_id, seeker_id),
            )
            others = [
                row
                for row in linked
                if (row["account_id"], row["seeker_id"]) != (write.account_id, seeker_id)
            ]
            if others:
                raise ProfileConflictError(
                    f"account {write.account_id} or seeker {seeker_id} is linked elsewhere"
                )
            exists = tx.rows("SELECT 1 AS found FROM seekers WHERE seeker_id = ?", (seeker_id,))
            if exists:
                _update_profile(tx, write.row)
            else:
                _insert_profile(tx, write.row)
            if not linked:
                _insert_link(tx, write.account_id, seeker_id, "registered", at)
                _adopt_account_pushes(tx, write.account_id, seeker_id)
            if write.audit is not None:
                _append_audit(tx, write.audit)
            push_id = None
            if write.digest is not None:
                ensure_sqlite_tables(tx)
                push_id = write_digest(tx, seeker_id, write.digest)
        logger.info("profile of seeker %s stored for account %s", seeker_id, write.account_id)
        return push_id

    # Contacts

    def bind_openid(
        self, seeker_id: str, envelope: str, at: datetime, audit: AuditWrite | None = None
    ) -> None:
        """Store a seeker's WeChat openid envelope, replacing an earlier one."""
        with self._transaction() as tx:
            tx.execute(
                "INSERT INTO seeker_contacts (seeker_id, wechat_openid_enc, bound_at)"
                " VALUES (?, ?, ?) ON CONFLICT (seeker_id) DO UPDATE SET"
                " wechat_openid_enc = excluded.wechat_openid_enc, bound_at = excluded.bound_at",
                (seeker_id, envelope, tx.time(at)),
            )
            if audit is not None:
                _append_audit(tx, audit)

    def unbind_openid(self, seeker_id: str, audit: AuditWrite | None = None) -> bool:
        """Delete a seeker's WeChat openid; return whether one was stored."""
        with self._transaction() as tx:
            deleted = tx.execute("DELETE FROM seeker_contacts WHERE seeker_id = ?", (seeker_id,))
            if audit is not None:
                _append_audit(tx, audit)
        return deleted > 0

    def openid_envelope(self, seeker_id: str) -> str | None:
        """Return the stored openid envelope of a seeker, or None."""
        with self._transaction() as tx:
            rows = tx.rows(
                "SELECT wechat_openid_enc FROM seeker_contacts WHERE seeker_id = ?", (seeker_id,)
            )
        return str(rows[0]["wechat_openid_enc"]) if rows else None

    # Erasure

    def count_openids_to_rotate(self, key_id: str) -> int:
        """Return the number of openid envelopes that name another key than ``key_id``."""
        with self._transaction() as tx:
            return OPENID_ENVELOPE.count_other_key(tx, key_id)

    def openids_to_rotate(self, key_id: str, limit: int) -> list[tuple[str, tuple[str]]]:
        """Return up to ``limit`` (seeker id, (openid envelope,)) rows under another key."""
        with self._transaction() as tx:
            return OPENID_ENVELOPE.other_key_rows(tx, key_id, limit)

    def replace_openids(self, updates: Sequence[EnvelopeUpdate]) -> int:
        """Write new openid envelopes in one transaction, each only over the one read."""
        with self._transaction() as tx:
            return OPENID_ENVELOPE.replace(tx, updates)

    def erase_seeker(self, seeker_id: str) -> dict[str, int]:
        """Delete a seeker's account link and contacts; return the rows deleted per table.

        Deleting nothing is no error, so a repeated erasure succeeds.
        """
        with self._transaction() as tx:
            counts = {
                table: tx.execute(
                    f"DELETE FROM {table} WHERE seeker_id = ?",  # nosec B608 # constant table names
                    (seeker_id,),
                )
                for table in ("seeker_accounts", "seeker_contacts")
            }
        logger.info("erased the account link and contacts of seeker %r: %s", seeker_id, counts)
        return counts


def _ensure_sqlite_tables(tx: SqlTx) -> None:
    for statement in SQLITE_TABLES.split(";"):
        if statement.strip():
            tx.execute(statement)
    # A build writes the seekers table from its frame's columns, and a frame without
    # homes (as in tests and benchmarks) lacks the profile columns.
    present = {str(row["name"]) for row in tx.rows("PRAGMA table_info(seekers)")}
    for column in PROFILE_COLUMNS:
        if present and column not in present:
            tx.execute(f"ALTER TABLE seekers ADD COLUMN {_quoted(column)}")


def _insert_link(
    tx: SqlTx, account_id: str, seeker_id: str, origin: LinkOrigin, at: datetime
) -> int:
    return tx.execute(
        "INSERT INTO seeker_accounts (account_id, seeker_id, origin, linked_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (account_id, seeker_id, origin, tx.time(at)),
    )


def _adopt_account_pushes(tx: SqlTx, account_id: str, seeker_id: str) -> None:
    """Move push rows keyed by the account id (given before it had a profile) to the seeker.

    A consent the seeker already has wins over the account's, and a job recorded as
    shown under both ids is kept once.
    """
    ensure_sqlite_tables(tx)
    consent = tx.rows("SELECT 1 AS found FROM push_consents WHERE seeker_id = ?", (seeker_id,))
    if not consent:
        tx.execute(
            "UPDATE push_consents SET seeker_id = ? WHERE seeker_id = ?", (seeker_id, account_id)
        )
    tx.execute("DELETE FROM push_consents WHERE seeker_id = ?", (account_id,))
    tx.execute(
        "DELETE FROM push_shown WHERE seeker_id = ? AND posting_id IN"
        " (SELECT posting_id FROM push_shown WHERE seeker_id = ?)",
        (account_id, seeker_id),
    )
    for table in ("push_shown", "push_outbox", "push_inbox"):
        tx.execute(
            f"UPDATE {table} SET seeker_id = ? WHERE seeker_id = ?",  # nosec B608 # constant table names
            (seeker_id, account_id),
        )


def _quoted(column: str) -> str:
    return '"group"' if column == "group" else column


def _insert_profile(tx: SqlTx, row: Mapping[str, Any]) -> None:
    columns = ["seeker_id", *PROFILE_COLUMNS]
    names = ", ".join(_quoted(column) for column in columns)
    markers = ", ".join("?" for _ in columns)
    values = [row[column] for column in columns]
    if tx.is_sqlite:
        query = f"INSERT INTO seekers ({names}) VALUES ({markers})"  # nosec B608 # constant identifiers, bound values
    else:
        # PostgreSQL orders the seekers frame by seeker_row, which a build numbers from 0.
        query = (
            f"INSERT INTO seekers (seeker_row, {names})"  # nosec B608 # constant identifiers, bound values
            f" VALUES (nextval('seekers_registered_row'), {markers})"
        )
    tx.execute(query, values)


def _update_profile(tx: SqlTx, row: Mapping[str, Any]) -> None:
    assignments = ", ".join(f"{_quoted(column)} = ?" for column in PROFILE_COLUMNS)
    values = [row[column] for column in PROFILE_COLUMNS]
    tx.execute(
        f"UPDATE seekers SET {assignments} WHERE seeker_id = ?",  # nosec B608 # constant identifiers, bound values
        [*values, row["seeker_id"]],
    )


def _append_audit(tx: SqlTx, audit: AuditWrite) -> None:
    connection = tx.connection
    if isinstance(connection, sqlite3.Connection):
        sqlite_audit.append_audit(connection, audit)
    elif isinstance(connection, psycopg.Connection):
        postgres_audit.append_audit(connection, audit)
