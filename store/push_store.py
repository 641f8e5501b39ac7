"""The push tables of either store, one transaction per call: consent, outbox, inbox.

Trigger writes do not go through this class: the curation and posting writes of
each store call :func:`store.push_outbox.write_job_pushes` inside their own
transaction. Everything else (consent, relay, delivery, the inbox, erasure) does.
"""

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matching.push_rules import Lang, PushRules
from store import push_outbox
from store.push_outbox import Claim, PushBatch, PushState
from store.push_sql import SqlTx

if TYPE_CHECKING:
    from store.postgres import Pool

logger = logging.getLogger(__name__)


class PushStore:
    """Push reads and writes on SQLite or PostgreSQL, each call in its own transaction.

    Parameters
    ----------
    transaction
        Factory of a context manager that lends a :class:`SqlTx` inside one
        transaction, committed when the block ends and rolled back on an exception.
    label
        Description for logs, without secrets.
    """

    def __init__(
        self,
        transaction: Callable[[], AbstractContextManager[SqlTx]],
        label: str,
        read: Callable[[], AbstractContextManager[SqlTx]] | None = None,
    ) -> None:
        self._transaction = transaction
        self._read = read or transaction
        self.label = label

    @classmethod
    def sqlite(cls, path: Path, busy_timeout_s: float = 5.0) -> "PushStore":
        """Return the push store of an embedded store file (WAL, ``BEGIN IMMEDIATE``)."""

        @contextmanager
        def transaction() -> Iterator[SqlTx]:
            connection = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute("BEGIN IMMEDIATE")
                try:
                    tx = SqlTx(connection)
                    push_outbox.ensure_sqlite_tables(tx)
                    yield tx
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
            finally:
                connection.close()

        @contextmanager
        def read() -> Iterator[SqlTx]:
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=busy_timeout_s)
            try:
                yield SqlTx(connection)
            finally:
                connection.close()

        return cls(transaction, f"SQLite {path}", read)

    @classmethod
    def postgres(cls, pool: "Pool") -> "PushStore":
        """Return the push store of a migrated PostgreSQL database (READ COMMITTED)."""

        @contextmanager
        def transaction() -> Iterator[SqlTx]:
            with pool.connection() as connection, connection.transaction():
                yield SqlTx(connection)

        return cls(transaction, f"PostgreSQL pool {pool.name!r}")

    def set_consent(
        self,
        seeker_id: str,
        *,
        consent: bool,
        at: datetime,
        channel: str = "inbox",
        lang: Lang | None = None,
    ) -> dict[str, Any]:
        """Store a seeker's consent with its time, or their opt-out; return the stored row.

        ``lang`` None keeps the stored language, ``zh`` for a seeker without a row.
        """
        with self._transaction() as tx:
            return push_outbox.set_consent(
                tx, seeker_id, consent=consent, at=at, channel=channel, lang=lang
            )

    def consent(self, seeker_id: str) -> dict[str, Any] | None:
        """Return a seeker's consent row, or None when they never gave or refused consent."""
        with self._transaction() as tx:
            return push_outbox.read_consent(tx, seeker_id)

    def write_pushes(self, batch: PushBatch) -> list[str]:
        """Write a batch of push decisions on its own, without a triggering change."""
        with self._transaction() as tx:
            return push_outbox.write_job_pushes(tx, batch)

    def write_digest(self, seeker_id: str, batch: PushBatch) -> str | None:
        """Write one preference-change digest for a seeker; see :func:`push_outbox.write_digest`."""
        with self._transaction() as tx:
            return push_outbox.write_digest(tx, seeker_id, batch)

    def due_for_relay(self, now: datetime, lease: timedelta, limit: int) -> list[dict[str, Any]]:
        """Return pushes to put on the stream and mark them queued (see ``due_for_relay``)."""
        with self._transaction() as tx:
            return push_outbox.due_for_relay(tx, now, lease, limit)

    def has_due(self, now: datetime, lease: timedelta) -> bool:
        """Return whether :meth:`due_for_relay` would find a push, without taking a write lock.

        The embedded worker polls with it, so an idle store file is not locked twice a
        second. A SQLite file without push tables has nothing due.
        """
        try:
            with self._read() as tx:
                return push_outbox.has_due(tx, now, lease)
        except sqlite3.OperationalError as err:
            if "no such table" in str(err):
                return False
            raise

    def claim(self, push_id: str, now: datetime, rules: PushRules, lease: timedelta) -> Claim:
        """Decide whether to send one push now; see :func:`push_outbox.claim_push`."""
        with self._transaction() as tx:
            return push_outbox.claim_push(tx, push_id, now, rules, lease)

    def mark_delivered(self, push: dict[str, Any], now: datetime) -> bool:
        """Mark a push delivered (and store its inbox message); False when it already was."""
        with self._transaction() as tx:
            return push_outbox.mark_delivered(tx, push, now)

    def mark_failed(
        self, push_id: str, error: str, now: datetime, rules: PushRules, retry_after: timedelta
    ) -> PushState:
        """Record a failed delivery; return the push's new state (pending or dead)."""
        with self._transaction() as tx:
            return push_outbox.mark_failed(tx, push_id, error, now, rules, retry_after)

    def mark_skipped(self, push_id: str, reason: str, attempts: int) -> bool:
        """Mark a claimed push skipped with a reason; False when it was no longer being sent.

        ``attempts`` is the claim's count, as :meth:`claim` returned it in the push.
        """
        with self._transaction() as tx:
            return push_outbox.mark_skipped(tx, push_id, reason, attempts)

    def dead_letters(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Return dead-lettered pushes, oldest first, without message text."""
        with self._transaction() as tx:
            return push_outbox.dead_letters(tx, limit, offset)

    def inbox(
        self, seeker_id: str, *, unread_only: bool = False, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Return a seeker's inbox messages, newest first."""
        with self._transaction() as tx:
            return push_outbox.inbox_messages(tx, seeker_id, unread_only=unread_only, limit=limit)

    def mark_read(self, seeker_id: str, push_id: str, now: datetime) -> bool:
        """Mark one inbox message read; False when the seeker has no message with that id."""
        with self._transaction() as tx:
            return push_outbox.mark_read(tx, seeker_id, push_id, now)

    def status_counts(self) -> dict[str, int]:
        """Return the number of outbox rows in each status."""
        with self._transaction() as tx:
            return push_outbox.status_counts(tx)

    def outbox_rows(self, seeker_id: str | None = None) -> list[dict[str, Any]]:
        """Return outbox rows in write order, all or one seeker's, for checks and tests."""
        where, params = ("WHERE seeker_id = ?", (seeker_id,)) if seeker_id else ("", ())
        with self._transaction() as tx:
            return tx.rows(f"SELECT * FROM push_outbox {where} ORDER BY seq", params)  # nosec B608 # constant text

    def erase_seeker(self, seeker_id: str) -> tuple[list[str], dict[str, int]]:
        """Delete a seeker's push rows; return their push ids and the rows deleted per table."""
        with self._transaction() as tx:
            return push_outbox.erase_seeker_rows(tx, seeker_id)
