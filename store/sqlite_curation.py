"""Anchor curation on the embedded SQLite store: versioned anchor writes and their history.

Reads use the host store's read-only connection. Writes open a separate writable
connection in WAL mode with a busy timeout, and run each write in one
``BEGIN IMMEDIATE`` transaction, so concurrent writers queue instead of failing.
"""

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from geo.anchor_states import AnchorState, StaffScope
from geo.curation import AnchorRecord, AnchorVersion
from geo.duplicates import MergePlan
from geo.errors import DoorstepError
from store.audit import AuditWrite, AuditWriteError, StoredAudit
from store.base import IDEMPOTENCY_KEY_TTL, KeyedInsert, replayed_insert
from store.curation_tables import (
    HISTORY_COLUMNS,
    RECORD_COLUMNS,
    STAFF_SOURCE,
    check_change_pair,
    check_new_pair,
    check_survivor,
    count_column,
    duplicate_anchor_error,
    history_from_row,
    history_params,
    location_label,
    merge_updates,
    record_from_row,
    record_to_row,
    stale_version_error,
    tidy_counts,
    update_assignments,
    update_params,
    utc_time,
)
from store.index_changes import (
    IndexChange,
    index_changes_since,
    latest_index_change,
    moves_postings,
    record_index_change,
)
from store.posting_state import write_posting_active
from store.push_outbox import PushBatch, write_job_pushes
from store.push_sql import SqlTx
from store.sqlite_audit import append_audit, read_audit_head, read_audit_records
from store.sqlite_merges import add_merged_into

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEYS_TABLE = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    staff_id TEXT NOT NULL,
    key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    anchor_id TEXT NOT NULL REFERENCES anchors(anchor_id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (staff_id, key)
);
"""
"""The table of idempotency keys of staff anchor creation; ``created_at`` is ISO 8601 in UTC.

``IF NOT EXISTS`` because store files written before the table existed get it on
their first keyed insert.
"""


FILED_ORG_COLUMN = "filed_org TEXT"
"""Definition of the ``filed_org`` column: the street or station an anchor is filed under."""


def add_filed_org(path: Path, busy_timeout_s: float) -> None:
    """Add the ``filed_org`` column to a store file written before it, in one transaction.

    Every anchor of such a file is left to its district (NULL). Files that have the
    column are only read.
    """
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as reader:
        columns = {row[1] for row in reader.execute("PRAGMA table_info(anchors)")}
    if "filed_org" in columns:
        return
    connection = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        columns = {row[1] for row in connection.execute("PRAGMA table_info(anchors)")}
        if "filed_org" not in columns:
            connection.execute(f"ALTER TABLE anchors ADD COLUMN {FILED_ORG_COLUMN}")
            connection.execute("CREATE INDEX anchors_filed_org ON anchors(filed_org)")
        connection.execute("COMMIT")
    finally:
        connection.close()
    logger.info("added the filed_org column to %s", path)


class StoreReplacedError(DoorstepError, RuntimeError):
    """A rebuild replaced the store file while a curation write waited; nothing was written."""


class SqliteCuration:
    """The :class:`store.base.CurationStore` methods of :class:`store.sqlite.SqliteStore`.

    The host class sets ``path`` and ``busy_timeout_s`` in its ``__init__`` and
    defines ``_connect``.
    """

    path: Path
    """The store file."""
    busy_timeout_s: float
    """Seconds a write waits for another writer's lock before it fails."""
    _connect: Callable[[], AbstractContextManager[sqlite3.Connection]]
    """The host store's factory of read-only connections to the store file."""

    @contextmanager
    def _write(self, audit: AuditWrite | None = None) -> Iterator[sqlite3.Connection]:
        """Lend a writable WAL connection inside one ``BEGIN IMMEDIATE`` transaction.

        The transaction commits when the block ends and rolls back on any exception.
        ``audit`` is appended to the operation log after the block, in the same
        transaction, so a write whose audit record fails is rolled back too.
        A store file written before the ``merged_into`` column gets it here.
        """
        opened = _file_identity(self.path)
        connection = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("BEGIN IMMEDIATE")
            # A rebuild holds the old file's lock until it has renamed the new file into
            # place, so a write that waited for it would otherwise land in the replaced file.
            if _file_identity(self.path) != opened:
                connection.execute("ROLLBACK")
                raise StoreReplacedError(
                    f"store file {self.path} was rebuilt while this write waited;"
                    " nothing was written, reload the anchor and retry"
                )
            try:
                add_merged_into(connection, self.path)
                yield connection
                if audit is not None:
                    append_audit(connection, audit)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()

    def _read_rows(self, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        with self._connect() as connection:
            connection.row_factory = sqlite3.Row
            return [dict(row) for row in connection.execute(query, params).fetchall()]

    def index_changes_since(self, after: int, limit: int = 500) -> list[IndexChange]:
        """Return up to ``limit`` job-index changes with ids above ``after``, oldest first."""
        with self._connect() as connection:
            return index_changes_since(SqlTx(connection), after, limit)

    def latest_index_change(self) -> int:
        """Return the highest stored job-index change id, 0 when none is stored."""
        with self._connect() as connection:
            return latest_index_change(SqlTx(connection))

    def get_anchor(self, anchor_id: str) -> AnchorRecord | None:
        """Return the stored record of one anchor, or None when the id is unknown."""
        rows = self._read_rows(
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM anchors WHERE anchor_id = ?",  # nosec B608 # constant identifiers, bound values
            (anchor_id,),
        )
        return record_from_row(rows[0]) if rows else None

    def anchors_for_scope(
        self,
        scope: StaffScope,
        *,
        state: AnchorState | None = None,
        name_contains: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AnchorRecord]:
        """Return anchors in the scope's districts or zones, optionally in one state.

        ``name_contains`` keeps anchors whose name contains it (case-sensitive).
        Records are ordered by ``anchor_id`` in byte order and paged by ``limit`` and ``offset``.
        """
        _check_page(limit, offset)
        query = f"""
            SELECT {", ".join(RECORD_COLUMNS)} FROM anchors WHERE {_SCOPE_FILTER}
            ORDER BY anchor_id LIMIT ? OFFSET ?
        """  # nosec B608 # constant identifiers, bound values
        params = (*_scope_params(scope, state, name_contains), limit, offset)
        return [record_from_row(row) for row in self._read_rows(query, params)]

    def count_for_scope(
        self,
        scope: StaffScope,
        *,
        state: AnchorState | None = None,
        name_contains: str | None = None,
    ) -> int:
        """Count the anchors that :meth:`anchors_for_scope` pages through."""
        query = f"SELECT count(*) AS n FROM anchors WHERE {_SCOPE_FILTER}"  # nosec B608 # constant identifiers, bound values
        rows = self._read_rows(query, _scope_params(scope, state, name_contains))
        return int(rows[0]["n"])

    def posting_counts(self, anchor_ids: Collection[str]) -> dict[str, int]:
        """Return the number of postings on each stored anchor of ``anchor_ids``."""
        rows = self._read_rows(
            "SELECT anchor_id, n_postings FROM anchors"
            " WHERE anchor_id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(anchor_ids)),),
        )
        return {str(row["anchor_id"]): int(row["n_postings"] or 0) for row in rows}

    def enterprise_flags(self, anchor_ids: Collection[str]) -> dict[str, tuple[bool, bool]]:
        """Return (key_enterprise, above_scale_industrial) of each stored anchor in ``anchor_ids``.

        Unknown ids are left out. The flags are 重点企业 and 规上工业企业.
        """
        rows = self._read_rows(
            "SELECT anchor_id, key_enterprise, above_scale_industrial FROM anchors"
            " WHERE anchor_id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(anchor_ids)),),
        )
        return {
            str(row["anchor_id"]): (
                bool(row["key_enterprise"]),
                bool(row["above_scale_industrial"]),
            )
            for row in rows
        }

    def anchor_history(self, anchor_id: str) -> list[AnchorVersion]:
        """Return the history entries of one anchor, oldest first."""
        rows = self._read_rows(
            f"SELECT {', '.join(HISTORY_COLUMNS)} FROM anchor_history"  # nosec B608 # constant identifiers, bound values
            " WHERE anchor_id = ? ORDER BY version",
            (anchor_id,),
        )
        return [history_from_row(row) for row in rows]

    def save_anchor_change(
        self,
        record: AnchorRecord,
        version: AnchorVersion,
        *,
        expected_version: int,
        audit: AuditWrite | None = None,
        pushes: PushBatch | None = None,
    ) -> None:
        """Store an edited record and its history entry if the anchor is at ``expected_version``.

        ``pushes`` (an anchor becoming verified) are written in the same transaction.

        Raises
        ------
        StaleVersionError
            Another edit moved the anchor past ``expected_version``; nothing is written.
        AnchorNotFoundError
            The anchor is not stored.
        DuplicateAnchorError
            The new credit code belongs to another anchor.
        """
        check_change_pair(record, version, expected_version)
        with self._write(audit) as connection:
            _update_record(connection, record, version, expected_version)
            if pushes is not None:
                write_job_pushes(SqlTx(connection), pushes)
            if moves_postings({item.field for item in version.changes}):
                record_index_change(SqlTx(connection), "anchor", record.anchor_id)
        logger.info(
            "stored anchor %r at version %d in %s", record.anchor_id, record.version, self.path
        )

    def posting_for_push(self, posting_id: str) -> dict[str, Any] | None:
        """Return one posting, active or not, joined with its anchor's location.

        The row has every column of `postings_frame`, because an activation adds it to
        the job index as it is.
        """
        rows = self._read_rows(
            "SELECT p.*, a.lon, a.lat, a.precision, a.location_label, a.district_code,"
            " a.source AS location_source, a.state AS anchor_state"
            " FROM postings AS p JOIN anchors AS a USING (anchor_id) WHERE p.posting_id = ?",
            (posting_id,),
        )
        return rows[0] if rows else None

    def set_posting_active(
        self,
        posting_id: str,
        active: bool,
        *,
        audit: AuditWrite | None = None,
        pushes: PushBatch | None = None,
    ) -> bool:
        """Set whether a posting is active; return False when it already was in that state.

        See :func:`store.posting_state.write_posting_active`: activation writes ``pushes``,
        deactivation skips the posting's undelivered pushes, in one transaction.

        Raises
        ------
        PostingNotFoundError
            The posting is not stored; nothing is written.
        """
        with self._write(audit) as connection:
            changed = write_posting_active(SqlTx(connection), posting_id, active, pushes)
        logger.info(
            "posting %r active=%s (changed: %s) in %s", posting_id, active, changed, self.path
        )
        return changed

    def insert_anchor(
        self, record: AnchorRecord, version: AnchorVersion, *, audit: AuditWrite | None = None
    ) -> None:
        """Store a staff-added anchor (version 1) and its creation entry.

        Raises
        ------
        DuplicateAnchorError
            The id or the credit code is already stored; nothing is written.
        """
        check_new_pair(record, version)
        with self._write(audit) as connection:
            _insert_record(connection, record, version)
        logger.info("stored new anchor %r in %s", record.anchor_id, self.path)

    def insert_anchor_once(
        self,
        record: AnchorRecord,
        version: AnchorVersion,
        *,
        staff_id: str,
        key: str,
        body_hash: str,
        audit: AuditWrite | None = None,
    ) -> KeyedInsert:
        """Store a staff-added anchor under an idempotency key, or find the anchor of that key.

        ``BEGIN IMMEDIATE`` makes concurrent writers queue, so the key lookup and the
        inserts cannot interleave with another request using the same key. Keys
        older than :data:`store.base.IDEMPOTENCY_KEY_TTL` at ``version.at`` are
        deleted first.

        Raises
        ------
        IdempotencyKeyConflictError
            The key is stored with another body hash; nothing is written.
        DuplicateAnchorError
            The id or the credit code is already stored; nothing is written.
        """
        check_new_pair(record, version)
        created_at = utc_time(version.at)
        with self._write(audit) as connection:
            connection.execute(IDEMPOTENCY_KEYS_TABLE)
            connection.execute(
                "DELETE FROM idempotency_keys WHERE created_at < ?",
                (_key_time(created_at - IDEMPOTENCY_KEY_TTL),),
            )
            found = connection.execute(
                "SELECT body_hash, anchor_id FROM idempotency_keys WHERE staff_id = ? AND key = ?",
                (staff_id, key),
            ).fetchone()
            if found is None:
                _insert_record(connection, record, version)
                connection.execute(
                    "INSERT INTO idempotency_keys (staff_id, key, body_hash, anchor_id, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (staff_id, key, body_hash, record.anchor_id, _key_time(created_at)),
                )
        if found is not None:
            return replayed_insert(staff_id, key, body_hash, str(found[0]), str(found[1]))
        logger.info(
            "stored new anchor %r under idempotency key %r of %r in %s",
            record.anchor_id,
            key,
            staff_id,
            self.path,
        )
        return KeyedInsert(record.anchor_id, replayed=False)

    def apply_merge(
        self,
        plan: MergePlan,
        *,
        expected_versions: Mapping[str, int],
        audit: AuditWrite | None = None,
    ) -> int:
        """Retire the merged anchors, move their postings to the survivor; return postings moved.

        ``expected_versions`` has the version the plan was made from for each
        merged anchor, and for the survivor when it is to be checked as well.
        Each merged anchor's ``merged_into`` is set to the survivor, so a rebuild
        moves the postings again. One transaction writes everything or, on any
        error, nothing.

        Raises
        ------
        StaleVersionError
            An anchor moved past its expected version.
        AnchorNotFoundError, InvalidMergeError
            The survivor is gone or was retired meanwhile.
        """
        updates = merge_updates(plan, expected_versions)
        merged = json.dumps(list(plan.merged_ids))
        with self._write(audit) as connection:
            found = connection.execute(
                "SELECT version, state FROM anchors WHERE anchor_id = ?", (plan.survivor_id,)
            ).fetchone()
            check_survivor(plan.survivor_id, found, expected_versions.get(plan.survivor_id))
            for record, entry, expected in updates:
                _update_record(connection, record, entry, expected)
            # A rebuild reads this link to move the postings again (store.rebuild).
            connection.execute(
                "UPDATE anchors SET merged_into = ?"
                " WHERE anchor_id IN (SELECT value FROM json_each(?))",
                (plan.survivor_id, merged),
            )

            moved = connection.execute(
                "UPDATE postings SET anchor_id = ?"
                " WHERE anchor_id IN (SELECT value FROM json_each(?))",
                (plan.survivor_id, merged),
            ).rowcount
            record_index_change(
                SqlTx(connection), "anchor", plan.survivor_id, list(plan.merged_ids)
            )
            connection.execute(
                "UPDATE anchors SET n_postings ="
                " (SELECT count(*) FROM postings AS p WHERE p.anchor_id = anchors.anchor_id)"
                " WHERE anchor_id = ? OR anchor_id IN (SELECT value FROM json_each(?))",
                (plan.survivor_id, merged),
            )
        logger.info(
            "merged anchors %s into %r in %s: %d postings moved",
            list(plan.merged_ids),
            plan.survivor_id,
            self.path,
            moved,
        )
        return moved

    def apply_import(
        self,
        created: Sequence[tuple[AnchorRecord, AnchorVersion]],
        *,
        audit: AuditWrite | None = None,
    ) -> int:
        """Store every imported anchor with its creation entry, or none; return the count.

        Raises
        ------
        DuplicateAnchorError
            An id or credit code is already stored or repeated in the import.
        """
        for record, entry in created:
            check_new_pair(record, entry)
        with self._write(audit) as connection:
            for record, entry in created:
                _insert_record(connection, record, entry)
        logger.info("imported %d anchors into %s", len(created), self.path)
        return len(created)

    def append_audit(self, write: AuditWrite) -> int:
        """Append one audit record in its own transaction; return its sequence number.

        Raises
        ------
        AuditWriteError
            The record could not be stored.
        """
        try:
            with self._write() as connection:
                seq = append_audit(connection, write)
        except sqlite3.Error as err:
            raise AuditWriteError(f"audit log of {self.path} is not writable: {err}") from err
        return seq

    def audit_records(self) -> Iterator[StoredAudit]:
        """Yield every audit record in sequence order."""
        with self._connect() as connection:
            yield from read_audit_records(connection)

    def audit_head(self) -> tuple[int, bytes]:
        """Return the chain head: the last sequence number and tag (0 and zeros when empty)."""
        with self._connect() as connection:
            return read_audit_head(connection)

    def precision_state_counts(self, by: str = "district") -> pd.DataFrame:
        """Count anchors by district (or zone), precision and state.

        Columns ``district_code`` (``zone_key`` when ``by="zone"``), ``precision``,
        ``state`` and ``n``, ordered by key (missing last), precision, state.
        """
        column = count_column(by)
        query = (
            f"SELECT {column}, precision, state, count(*) AS n FROM anchors"  # nosec B608 # constant identifiers, bound values
            f" GROUP BY {column}, precision, state"
        )
        with self._connect() as connection:
            frame = pd.read_sql_query(query, connection)
        return tidy_counts(frame, column)


# The filter of anchors_for_scope and count_for_scope; parameters from _scope_params.
_SCOPE_FILTER = """
    (district_code IN (SELECT value FROM json_each(?))
     OR zone_key IN (SELECT value FROM json_each(?)))
    AND (? IS NULL OR filed_org IN (SELECT value FROM json_each(?)))
    AND (? IS NULL OR state = ?)
    AND (? IS NULL OR instr(name, ?) > 0)
"""


def _scope_params(
    scope: StaffScope, state: AnchorState | None, name_contains: str | None
) -> tuple[Any, ...]:
    state_value = None if state is None else AnchorState(state).value
    name_value = name_contains or None
    filing = json.dumps(sorted(scope.filing_orgs)) if scope.by_filing else None
    return (
        json.dumps(sorted(scope.district_codes)),
        json.dumps(sorted(scope.zone_keys)),
        filing,
        filing,
        state_value,
        state_value,
        name_value,
        name_value,
    )


def _file_identity(path: Path) -> tuple[int, int]:
    """Return the (device, inode) of a file, which a rename over it changes."""
    status = os.stat(path)
    return status.st_dev, status.st_ino


def _key_time(at: datetime) -> str:
    """Format a UTC time with a fixed width, so stored key times compare as text."""
    return at.isoformat(timespec="microseconds")


def _check_page(limit: int, offset: int) -> None:
    if limit < 0:
        raise ValueError(f"limit {limit} is invalid; expected 0 or more")
    if offset < 0:
        raise ValueError(f"offset {offset} is invalid; expected 0 or more")


def _update_record(
    connection: sqlite3.Connection,
    record: AnchorRecord,
    entry: AnchorVersion,
    expected_version: int,
) -> None:
    """Update an anchor row at ``expected_version``, its R*Tree entry and its history."""
    try:
        cursor = connection.execute(
            f"UPDATE anchors SET {update_assignments('?')} WHERE anchor_id = ? AND version = ?",  # nosec B608 # constant identifiers, bound values
            update_params(record, expected_version),
        )
    except sqlite3.IntegrityError as err:
        raise duplicate_anchor_error(record, str(err)) from err

    if cursor.rowcount != 1:
        found = connection.execute(
            "SELECT version FROM anchors WHERE anchor_id = ?", (record.anchor_id,)
        ).fetchone()
        raise stale_version_error(
            record.anchor_id, expected_version, None if found is None else found[0]
        )

    connection.execute(
        "UPDATE anchors_rtree SET min_lon = ?, max_lon = ?, min_lat = ?, max_lat = ?"
        " WHERE anchor_row = (SELECT anchor_row FROM anchors WHERE anchor_id = ?)",
        (record.lon, record.lon, record.lat, record.lat, record.anchor_id),
    )
    _insert_history(connection, entry)


def _insert_record(
    connection: sqlite3.Connection, record: AnchorRecord, entry: AnchorVersion
) -> None:
    """Insert a new anchor row with its R*Tree entry and its creation history entry."""
    row = record_to_row(record)
    columns = ["source", "location_label", "n_postings", *RECORD_COLUMNS]
    values = [STAFF_SOURCE, location_label(record), 0, *(row[name] for name in RECORD_COLUMNS)]
    try:
        cursor = connection.execute(
            f"INSERT INTO anchors ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",  # nosec B608 # constant identifiers, bound values
            values,
        )
    except sqlite3.IntegrityError as err:
        raise duplicate_anchor_error(record, str(err)) from err

    connection.execute(
        "INSERT INTO anchors_rtree VALUES (?, ?, ?, ?, ?)",
        (cursor.lastrowid, record.lon, record.lon, record.lat, record.lat),
    )
    _insert_history(connection, entry)


def _insert_history(connection: sqlite3.Connection, entry: AnchorVersion) -> None:
    placeholders = ", ".join("?" * len(HISTORY_COLUMNS))
    connection.execute(
        f"INSERT INTO anchor_history ({', '.join(HISTORY_COLUMNS)}) VALUES ({placeholders})",  # nosec B608 # constant identifiers, bound values
        history_params(entry, at=utc_time(entry.at).isoformat()),
    )
