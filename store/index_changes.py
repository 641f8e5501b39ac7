"""The log of writes that change the in-memory job index: posting states and anchor moves.

Every service process keeps the active postings in memory
(:class:`matching.recommend.Recommender`). A write that activates or deactivates a
posting, moves an anchor's pin or merges anchors appends one row to
``job_index_changes`` in its own transaction, so the row commits or rolls back with the
change. Each process reads the rows after the last one it applied and applies them to
its own index (``api.index_sync``).

Readers rely on one invariant: a row becomes visible only after every row with a lower
``change_id``. SQLite serialises writers, so its ``AUTOINCREMENT`` ids commit in order.
PostgreSQL hands out identity values when rows are inserted, not when they commit, so
each writer first locks the table (``EXCLUSIVE``, which still lets readers in) and holds
the lock until it commits. Writers log their change as the last statement of the
transaction (the operation-log append may follow), so no writer holding the lock waits
for a row lock of another writer that in turn waits for the lock.
"""

import contextlib
import json
import logging
import secrets
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from store.push_sql import SqlTx

logger = logging.getLogger(__name__)

ChangeKind = Literal["posting", "anchor"]

MOVED_FIELDS = frozenset({"lon", "lat", "precision", "district_code"})
"""Anchor fields whose change moves the anchor's postings in the job index."""

SQLITE_INDEX_CHANGES_TABLE = """
CREATE TABLE IF NOT EXISTS job_index_changes (
    change_id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('posting', 'anchor')),
    object_id TEXT NOT NULL,
    merged_ids TEXT NOT NULL DEFAULT '[]',
    changed_at TEXT NOT NULL
)
"""
"""The change log of the embedded store; PostgreSQL gets it from migration 0017."""


GENERATION_KEY = "store_generation"
"""Build-metadata key of a random token that each write of a whole store replaces."""


def with_new_generation(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Return the build metadata with a new store generation token.

    Service processes compare the build identity (a hash of the metadata) with the one
    their job index was loaded from, and load the index again when it differs. The token
    makes it differ after every rebuild, also one of identical inputs within a second,
    whose change ids restart at 1 in a new embedded store file.
    """
    return {**meta, GENERATION_KEY: secrets.token_hex(8)}


@dataclass(frozen=True, slots=True)
class IndexChange:
    """One stored change: a posting whose state changed, or an anchor whose postings moved."""

    change_id: int
    kind: ChangeKind
    object_id: str
    """The posting id, or the anchor id (the survivor of a merge)."""
    merged_ids: tuple[str, ...] = ()
    """Anchors merged into ``object_id``, whose postings moved to it."""


def add_sqlite_index_changes(path: Path, busy_timeout_s: float) -> None:
    """Create the change log in a SQLite store file written before it existed.

    A file that has the table is only read.
    """
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as reader:
        found = reader.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'job_index_changes'"
        ).fetchone()
    if found:
        return
    with contextlib.closing(
        sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    ) as connection:
        connection.execute(SQLITE_INDEX_CHANGES_TABLE)
    logger.info("added the job_index_changes table to %s", path)


def record_index_change(
    tx: SqlTx, kind: ChangeKind, object_id: str, merged_ids: Sequence[str] = ()
) -> None:
    """Append one change inside the caller's transaction (see the module for the lock)."""
    if tx.is_sqlite:
        tx.execute(SQLITE_INDEX_CHANGES_TABLE)
    else:
        tx.execute("LOCK TABLE job_index_changes IN EXCLUSIVE MODE")
    tx.execute(
        "INSERT INTO job_index_changes (kind, object_id, merged_ids, changed_at)"
        " VALUES (?, ?, ?, ?)",
        (kind, object_id, json.dumps(list(merged_ids)), tx.time(datetime.now(UTC))),
    )


def moves_postings(fields: Collection[str]) -> bool:
    """Return whether an anchor edit of ``fields`` moves its postings in the job index."""
    return not MOVED_FIELDS.isdisjoint(fields)


def index_changes_since(tx: SqlTx, after: int, limit: int) -> list[IndexChange]:
    """Return up to ``limit`` changes with ids above ``after``, oldest first."""
    rows = tx.rows(
        "SELECT change_id, kind, object_id, merged_ids FROM job_index_changes"
        " WHERE change_id > ? ORDER BY change_id LIMIT ?",
        (after, limit),
    )
    return [
        IndexChange(
            change_id=int(row["change_id"]),
            kind=row["kind"],
            object_id=str(row["object_id"]),
            merged_ids=tuple(json.loads(row["merged_ids"])),
        )
        for row in rows
    ]


def latest_index_change(tx: SqlTx) -> int:
    """Return the highest stored change id, 0 when no change is stored."""
    rows = tx.rows("SELECT max(change_id) AS latest FROM job_index_changes")
    latest = rows[0]["latest"] if rows else None
    return 0 if latest is None else int(latest)
