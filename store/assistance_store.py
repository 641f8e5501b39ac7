"""Assistance targets, the 131 ledger and return visits, on SQLite or PostgreSQL.

PostgreSQL gets the tables from migration ``0012_assistance``; a SQLite store file gets
the same tables (:data:`SQLITE_ASSISTANCE_TABLES`) when the store is opened. Every write
runs in one transaction together with its operation-log record, so a write whose record
fails is rolled back. The state rules come from :mod:`matching.assistance`; this module
applies them to the stored rows inside the write's transaction.

The sign-off of recommendations checks each posting's headcount under a lock on that
posting. SQLite serialises writers with ``BEGIN IMMEDIATE``, and PostgreSQL takes a
transaction-scoped advisory lock per posting. So two officers signing off the last
vacancy at the same time cannot both succeed.
"""

import logging
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geo.errors import DoorstepError
from matching.assistance import (
    HOLDING_STATES,
    LedgerConflictError,
    LedgerError,
    check_sign_off,
    check_training_offer,
    check_training_response,
    check_transition,
    check_visit_day,
    service_day,
    visit_due_on,
)
from store import postgres_audit, sqlite_audit
from store.audit import AuditWrite
from store.envelope_column import EnvelopeColumn
from store.push_sql import SqlTx
from store.seeker_records import EnvelopeUpdate

if TYPE_CHECKING:
    from store.postgres import Pool

logger = logging.getLogger(__name__)

SQLITE_ASSISTANCE_TABLES = """
CREATE TABLE IF NOT EXISTS assistance_targets (
    seeker_id TEXT PRIMARY KEY,
    officer_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    district_code TEXT NOT NULL,
    category_enc TEXT NOT NULL,
    assigned_at TEXT NOT NULL,
    assigned_by TEXT NOT NULL,
    guidance_at TEXT,
    guidance_topic TEXT,
    training_institution TEXT,
    training_offered_at TEXT,
    training_response TEXT CHECK (training_response IN ('accepted', 'declined')),
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assistance_targets_officer ON assistance_targets (officer_id);
CREATE INDEX IF NOT EXISTS assistance_targets_district ON assistance_targets (district_code);
CREATE TABLE IF NOT EXISTS service_131_recommendations (
    seeker_id TEXT NOT NULL REFERENCES assistance_targets (seeker_id) ON DELETE CASCADE,
    posting_id TEXT NOT NULL,
    district_code TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN (
        'signed_off', 'delivered', 'interested', 'declined', 'interviewed', 'hired', 'not_hired'
    )),
    signed_off_at TEXT NOT NULL,
    signed_off_by TEXT NOT NULL,
    delivered_at TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (seeker_id, posting_id)
);
CREATE INDEX IF NOT EXISTS service_131_recommendations_posting
    ON service_131_recommendations (posting_id);
CREATE TABLE IF NOT EXISTS assistance_visits (
    visit_id TEXT PRIMARY KEY,
    seeker_id TEXT NOT NULL REFERENCES assistance_targets (seeker_id) ON DELETE CASCADE,
    due_on TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('delivery', 'scheduled')),
    done_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assistance_visits_due ON assistance_visits (seeker_id, due_on);
"""
"""The assistance tables of the embedded store; PostgreSQL gets them from 0012_assistance."""

ASSISTANCE_TABLES = ("assistance_targets", "service_131_recommendations", "assistance_visits")
"""Table names in the order a copy must insert them (parents first)."""

_TIME_COLUMNS = frozenset(
    {
        "assigned_at",
        "guidance_at",
        "training_offered_at",
        "updated_at",
        "signed_off_at",
        "delivered_at",
        "done_at",
        "created_at",
    }
)
_HOLDING = tuple(sorted(HOLDING_STATES))

CATEGORY_ENVELOPE = EnvelopeColumn("assistance_targets", "category_enc")
"""The assistance category envelope; its table and column names are the cipher's context."""


class TargetNotFoundError(DoorstepError, LookupError):
    """No assistance target with this seeker id is stored."""


class RecommendationNotFoundError(DoorstepError, LookupError):
    """The target has no recommendation of this posting."""


class VisitNotFoundError(DoorstepError, LookupError):
    """No return visit with this id belongs to the target."""


@dataclass(frozen=True, slots=True)
class TargetAssignment:
    """One target assigned to an officer; ``category_enc`` is the category's SM4-GCM envelope."""

    seeker_id: str
    officer_id: str
    org_id: str
    district_code: str
    category_enc: str


class LedgerTx(SqlTx):
    """One transaction of the assistance tables on either driver, with the ledger's extras."""

    time_columns = _TIME_COLUMNS
    day_columns = frozenset({"due_on"})

    def append_audit(self, write: AuditWrite) -> None:
        """Append an operation-log record inside this transaction."""
        if isinstance(self.connection, sqlite3.Connection):
            sqlite_audit.append_audit(self.connection, write)
        else:
            postgres_audit.append_audit(self.connection, write)

    def lock_posting(self, posting_id: str) -> None:
        """Hold a lock on one posting's headcount until the transaction ends.

        SQLite needs none: ``BEGIN IMMEDIATE`` already serialises every writer.
        """
        if not self.is_sqlite:
            self.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(?, 131))", (f"posting:{posting_id}",)
            )


def create_sqlite_tables(connection: sqlite3.Connection) -> None:
    """Create the assistance tables in a SQLite store file that lacks them."""
    for statement in SQLITE_ASSISTANCE_TABLES.split(";"):
        if statement.strip():
            connection.execute(statement)


def copy_assistance_tables(old: sqlite3.Connection | None, new: sqlite3.Connection) -> int:
    """Copy every assistance row from an old store file into a rebuilt one; return the count."""
    create_sqlite_tables(new)
    if old is None:
        return 0
    present = {
        str(row[0])
        for row in old.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    }
    copied = 0
    for table in ASSISTANCE_TABLES:
        if table not in present:
            continue
        cursor = old.execute(f"SELECT * FROM {table}")  # nosec B608 # table names are constants
        names = [item[0] for item in cursor.description]
        rows = cursor.fetchall()
        new.executemany(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",  # nosec B608 # constant identifiers, bound values
            rows,
        )
        copied += len(rows)
    return copied


class AssistanceStore:
    """The assistance tables of one store, each call in its own transaction.

    Parameters
    ----------
    transaction
        Factory of a context manager that lends a :class:`LedgerTx` inside one write
        transaction, committed when the block ends and rolled back on an exception.
    read
        Factory of a read-only :class:`LedgerTx`.
    label
        Description for logs, without secrets.
    """

    def __init__(
        self,
        transaction: Callable[[], AbstractContextManager[LedgerTx]],
        read: Callable[[], AbstractContextManager[LedgerTx]],
        label: str,
    ) -> None:
        self._transaction = transaction
        self._read = read
        self.label = label

    @classmethod
    def sqlite(cls, path: Path, busy_timeout_s: float = 5.0) -> "AssistanceStore":
        """Return the assistance store of an embedded store file; create its tables if missing."""

        @contextmanager
        def transaction() -> Iterator[LedgerTx]:
            connection = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute("PRAGMA foreign_keys = ON")
                connection.execute("BEGIN IMMEDIATE")
                try:
                    create_sqlite_tables(connection)
                    yield LedgerTx(connection)
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
            finally:
                connection.close()

        @contextmanager
        def read() -> Iterator[LedgerTx]:
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=busy_timeout_s)
            try:
                yield LedgerTx(connection)
            finally:
                connection.close()

        with transaction():
            pass
        return cls(transaction, read, f"SQLite {path}")

    @classmethod
    def postgres(cls, pool: "Pool") -> "AssistanceStore":
        """Return the assistance store of a database migrated to 0012_assistance."""

        @contextmanager
        def transaction() -> Iterator[LedgerTx]:
            with pool.connection() as connection, connection.transaction():
                yield LedgerTx(connection)

        return cls(transaction, transaction, f"PostgreSQL pool {pool.name!r}")

    # --- targets ------------------------------------------------------------------------

    def assign_targets(
        self, assignments: Sequence[TargetAssignment], by: str, at: datetime, audit: AuditWrite
    ) -> int:
        """Assign targets to officers, all or none; a reassigned target keeps its ledger.

        Only the officer ``by`` who is assigned a target may hand it over, so one officer cannot
        take another's targets, ledger and category. Returns the number of targets written.

        Raises
        ------
        LedgerConflictError
            A seeker is already the target of an officer other than ``by``; nothing is
            written.
        """
        with self._transaction() as tx:
            for item in assignments:
                written = tx.execute(
                    "INSERT INTO assistance_targets (seeker_id, officer_id, org_id, district_code,"
                    " category_enc, assigned_at, assigned_by, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (seeker_id) DO UPDATE SET officer_id = excluded.officer_id,"
                    " org_id = excluded.org_id, district_code = excluded.district_code,"
                    " category_enc = excluded.category_enc, assigned_at = excluded.assigned_at,"
                    " assigned_by = excluded.assigned_by, updated_at = excluded.updated_at"
                    " WHERE assistance_targets.officer_id = ?",
                    (
                        item.seeker_id, item.officer_id, item.org_id, item.district_code,
                        item.category_enc, tx.time(at), by, tx.time(at), by,
                    ),
                )  # fmt: skip
                if written == 0:
                    raise LedgerConflictError(
                        f"seeker {item.seeker_id!r} is already the target of another officer;"
                        " only that officer can hand the target over",
                        "该求职者已由其他援助员负责，只能由该援助员移交",
                    )
            tx.append_audit(audit)
        logger.info("assigned %d assistance targets (by %s)", len(assignments), by)
        return len(assignments)

    def target(self, seeker_id: str) -> dict[str, Any] | None:
        """Return one target row, or None when the seeker is not a target."""
        with self._read() as tx:
            found = tx.rows("SELECT * FROM assistance_targets WHERE seeker_id = ?", (seeker_id,))
        return found[0] if found else None

    def targets(self, officer_id: str | None = None) -> list[dict[str, Any]]:
        """Return the targets of one officer, or every target, in seeker id order."""
        query = "SELECT * FROM assistance_targets"
        params: tuple[str, ...] = ()
        if officer_id is not None:
            query += " WHERE officer_id = ?"
            params = (officer_id,)
        with self._read() as tx:
            return tx.rows(query + " ORDER BY seeker_id", params)

    def recommendations(self, seeker_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Return the recommendations of the given targets, or of all, by target and time."""
        with self._read() as tx:
            rows = tx.rows(
                "SELECT * FROM service_131_recommendations ORDER BY seeker_id, signed_off_at"
            )
        if seeker_ids is None:
            return rows
        wanted = set(seeker_ids)
        return [row for row in rows if row["seeker_id"] in wanted]

    def holding_counts(self) -> dict[str, int]:
        """Return posting id to the number of recommendations that hold one of its vacancies."""
        marks = ", ".join("?" * len(_HOLDING))
        with self._read() as tx:
            rows = tx.rows(
                "SELECT posting_id, count(*) AS n FROM service_131_recommendations"
                f" WHERE state IN ({marks}) GROUP BY posting_id",  # nosec B608 # constant markers, bound values
                _HOLDING,
            )
        return {str(row["posting_id"]): int(row["n"]) for row in rows}

    def delete_target(self, seeker_id: str) -> bool:
        """Erase a target with its ledger and visits; return False when it was not stored."""
        with self._transaction() as tx:
            tx.execute("DELETE FROM assistance_visits WHERE seeker_id = ?", (seeker_id,))
            tx.execute("DELETE FROM service_131_recommendations WHERE seeker_id = ?", (seeker_id,))
            found = tx.execute("DELETE FROM assistance_targets WHERE seeker_id = ?", (seeker_id,))
        return found > 0

    # --- key rotation of the category envelopes ----------------------------------------

    def count_categories_to_rotate(self, key_id: str) -> int:
        """Return the number of targets whose category envelope names another key."""
        with self._read() as tx:
            return CATEGORY_ENVELOPE.count_other_key(tx, key_id)

    def categories_to_rotate(self, key_id: str, limit: int) -> list[tuple[str, tuple[str]]]:
        """Return up to ``limit`` (seeker id, (category envelope,)) rows under another key."""
        with self._read() as tx:
            return CATEGORY_ENVELOPE.other_key_rows(tx, key_id, limit)

    def replace_categories(self, updates: Sequence[EnvelopeUpdate]) -> int:
        """Write new category envelopes in one transaction, each only over the one read."""
        with self._transaction() as tx:
            return CATEGORY_ENVELOPE.replace(tx, updates)

    # --- the 131 ledger -----------------------------------------------------------------

    def record_guidance(
        self, seeker_id: str, topic: str, at: datetime, audit: AuditWrite
    ) -> dict[str, Any]:
        """Record the career guidance session; raise LedgerError when it is already recorded."""
        with self._transaction() as tx:
            target = _locked_target(tx, seeker_id)
            if target["guidance_at"] is not None:
                raise LedgerError(
                    "the career guidance of this target is already recorded",
                    "该援助对象已记录职业指导",
                )
            tx.execute(
                "UPDATE assistance_targets SET guidance_at = ?, guidance_topic = ?,"
                " updated_at = ? WHERE seeker_id = ?",
                (tx.time(at), topic, tx.time(at), seeker_id),
            )
            tx.append_audit(audit)
            return _locked_target(tx, seeker_id)

    def sign_off(
        self,
        seeker_id: str,
        postings: Sequence[tuple[str, str]],
        headcounts: dict[str, int],
        by: str,
        at: datetime,
        audit: AuditWrite,
    ) -> list[dict[str, Any]]:
        """Sign off recommendations of (posting id, district code) pairs for one target.

        Raises
        ------
        LedgerError
            A state rule of :func:`matching.assistance.check_sign_off` is broken.
        LedgerConflictError
            A posting's vacancies are all held by other recommendations; nothing is written.
        """
        with self._transaction() as tx:
            target = _locked_target(tx, seeker_id)
            signed = [
                str(row["posting_id"])
                for row in tx.rows(
                    "SELECT posting_id FROM service_131_recommendations WHERE seeker_id = ?",
                    (seeker_id,),
                )
            ]
            posting_ids = [posting_id for posting_id, _ in postings]
            check_sign_off(posting_ids, signed, target["guidance_at"] is not None)
            for posting_id, district_code in postings:
                _check_vacancy(tx, posting_id, headcounts.get(posting_id, 0))
                tx.execute(
                    "INSERT INTO service_131_recommendations (seeker_id, posting_id, district_code,"
                    " state, signed_off_at, signed_off_by, updated_at)"
                    " VALUES (?, ?, ?, 'signed_off', ?, ?, ?)",
                    (seeker_id, posting_id, district_code, tx.time(at), by, tx.time(at)),
                )
            tx.append_audit(audit)
            return tx.rows(
                "SELECT * FROM service_131_recommendations WHERE seeker_id = ?"
                " ORDER BY signed_off_at, posting_id",
                (seeker_id,),
            )

    def move_recommendation(
        self, seeker_id: str, posting_id: str, state: str, at: datetime, audit: AuditWrite
    ) -> dict[str, Any]:
        """Move a recommendation to ``state``; a delivery also schedules the return visit.

        Raises
        ------
        RecommendationNotFoundError
            The target has no recommendation of the posting.
        LedgerError
            The move is not allowed (:data:`matching.assistance.TRANSITIONS`).
        """
        with self._transaction() as tx:
            _locked_target(tx, seeker_id)
            found = tx.rows(
                "SELECT * FROM service_131_recommendations WHERE seeker_id = ? AND posting_id = ?",
                (seeker_id, posting_id),
            )
            if not found:
                raise RecommendationNotFoundError(
                    f"target {seeker_id!r} has no recommendation of posting {posting_id!r}"
                )
            check_transition(str(found[0]["state"]), state)
            tx.execute(
                "UPDATE service_131_recommendations SET state = ?, updated_at = ?,"
                " delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END"
                " WHERE seeker_id = ? AND posting_id = ?",
                (state, tx.time(at), state, tx.time(at), seeker_id, posting_id),
            )
            if state == "delivered":
                _schedule_delivery_visit(tx, seeker_id, at)
            tx.append_audit(audit)
            return tx.rows(
                "SELECT * FROM service_131_recommendations WHERE seeker_id = ? AND posting_id = ?",
                (seeker_id, posting_id),
            )[0]

    def offer_training(
        self, seeker_id: str, institution: str, at: datetime, audit: AuditWrite
    ) -> dict[str, Any]:
        """Record the training offer: the institution's layer feature id and name."""
        with self._transaction() as tx:
            target = _locked_target(tx, seeker_id)
            check_training_offer(
                target["guidance_at"] is not None, target["training_offered_at"] is not None
            )
            tx.execute(
                "UPDATE assistance_targets SET training_institution = ?, training_offered_at = ?,"
                " updated_at = ? WHERE seeker_id = ?",
                (institution, tx.time(at), tx.time(at), seeker_id),
            )
            tx.append_audit(audit)
            return _locked_target(tx, seeker_id)

    def record_training_response(
        self, seeker_id: str, response: str, at: datetime, audit: AuditWrite
    ) -> dict[str, Any]:
        """Record whether the target accepted or declined the training offer."""
        with self._transaction() as tx:
            target = _locked_target(tx, seeker_id)
            check_training_response(
                target["training_offered_at"] is not None, response, target["training_response"]
            )
            tx.execute(
                "UPDATE assistance_targets SET training_response = ?, updated_at = ?"
                " WHERE seeker_id = ?",
                (response, tx.time(at), seeker_id),
            )
            tx.append_audit(audit)
            return _locked_target(tx, seeker_id)

    # --- return visits ------------------------------------------------------------------

    def schedule_visit(
        self, seeker_id: str, due_on: date, at: datetime, audit: AuditWrite
    ) -> dict[str, Any]:
        """Schedule a return visit on ``due_on`` (today or later, in Xi'an days)."""
        check_visit_day(due_on, service_day(at))
        with self._transaction() as tx:
            _locked_target(tx, seeker_id)
            visit_id = _insert_visit(tx, seeker_id, due_on, "scheduled", at)
            tx.append_audit(audit)
            return tx.rows("SELECT * FROM assistance_visits WHERE visit_id = ?", (visit_id,))[0]

    def complete_visit(
        self, seeker_id: str, visit_id: str, at: datetime, audit: AuditWrite
    ) -> dict[str, Any]:
        """Mark a return visit done; raise LedgerError when it already is."""
        with self._transaction() as tx:
            _locked_target(tx, seeker_id)
            found = tx.rows(
                "SELECT * FROM assistance_visits WHERE visit_id = ? AND seeker_id = ?",
                (visit_id, seeker_id),
            )
            if not found:
                raise VisitNotFoundError(f"target {seeker_id!r} has no visit {visit_id!r}")
            if found[0]["done_at"] is not None:
                raise LedgerError(f"visit {visit_id!r} is already done")
            tx.execute(
                "UPDATE assistance_visits SET done_at = ? WHERE visit_id = ?",
                (tx.time(at), visit_id),
            )
            tx.append_audit(audit)
            return tx.rows("SELECT * FROM assistance_visits WHERE visit_id = ?", (visit_id,))[0]

    def visits(self, seeker_ids: Sequence[str], open_only: bool = False) -> list[dict[str, Any]]:
        """Return the visits of the given targets, earliest due first."""
        query = "SELECT * FROM assistance_visits"
        if open_only:
            query += " WHERE done_at IS NULL"
        with self._read() as tx:
            rows = tx.rows(query + " ORDER BY due_on, visit_id")
        wanted = set(seeker_ids)
        return [row for row in rows if row["seeker_id"] in wanted]


def _locked_target(tx: LedgerTx, seeker_id: str) -> dict[str, Any]:
    """Return the target row, locked until the transaction ends on PostgreSQL."""
    lock = "" if tx.is_sqlite else " FOR UPDATE"
    found = tx.rows(f"SELECT * FROM assistance_targets WHERE seeker_id = ?{lock}", (seeker_id,))  # nosec B608 # constant suffix, bound values
    if not found:
        raise TargetNotFoundError(f"assistance target {seeker_id!r} not found")
    return found[0]


def _check_vacancy(tx: LedgerTx, posting_id: str, headcount: int) -> None:
    tx.lock_posting(posting_id)
    marks = ", ".join("?" * len(_HOLDING))
    held = tx.rows(
        "SELECT count(*) AS n FROM service_131_recommendations"
        f" WHERE posting_id = ? AND state IN ({marks})",  # nosec B608 # constant markers, bound values
        (posting_id, *_HOLDING),
    )[0]["n"]
    if int(held) >= headcount:
        raise LedgerConflictError(
            f"posting {posting_id!r} has no vacancy left: {held} of its {headcount} are"
            " held by other recommendations; choose another posting",
            "该岗位名额已满，请选择其他岗位",
        )


def _schedule_delivery_visit(tx: LedgerTx, seeker_id: str, at: datetime) -> None:
    """Schedule the follow-up visit of a delivery unless an open one is already pending."""
    pending = tx.rows(
        "SELECT visit_id FROM assistance_visits"
        " WHERE seeker_id = ? AND reason = 'delivery' AND done_at IS NULL",
        (seeker_id,),
    )
    if not pending:
        _insert_visit(tx, seeker_id, visit_due_on(service_day(at)), "delivery", at)


def _insert_visit(tx: LedgerTx, seeker_id: str, due_on: date, reason: str, at: datetime) -> str:
    visit_id = f"visit-{secrets.token_hex(8)}"
    tx.execute(
        "INSERT INTO assistance_visits (visit_id, seeker_id, due_on, reason, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (visit_id, seeker_id, tx.day(due_on), reason, tx.time(at)),
    )
    return visit_id


def assistance_store_for(store: object) -> AssistanceStore:
    """Return the assistance store that shares the service's store (file or connection pool)."""
    from store.postgres import PostgresStore
    from store.sqlite import SqliteStore

    if isinstance(store, PostgresStore):
        return AssistanceStore.postgres(store.pool)
    if isinstance(store, SqliteStore):
        return AssistanceStore.sqlite(store.path, store.busy_timeout_s)
    raise TypeError(f"store {type(store).__name__} has no assistance tables")
