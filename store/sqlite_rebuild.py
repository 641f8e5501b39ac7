"""Carry curated anchors from the old SQLite store file into the file that replaces it.

:func:`store.sqlite.write_store` builds a new file and renames it over the old
one. Before the rename it locks the old file with :func:`locked_old_store`,
reads the curated anchors, merge survivors, their history, merge links and
idempotency keys with :func:`read_kept`, and writes them with the build's
anchors through :func:`write_anchors`, which also moves the postings of merged
anchors to their survivors. The rule of what is kept is in :mod:`store.rebuild`.
"""

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from geo.errors import DoorstepError
from store.curation_tables import HISTORY_COLUMNS
from store.rebuild import CURATED_FILTER, anchor_positions, resolve_merges
from store.sqlite_merges import read_merge_links

logger = logging.getLogger(__name__)

KEY_COLUMNS = ("staff_id", "key", "body_hash", "anchor_id", "created_at")
"""Columns of the ``idempotency_keys`` table that a rebuild copies."""

WAL_CHECKPOINT_ATTEMPTS = 5
"""Times a rebuild tries to empty the old store's WAL before it gives up."""


class StoreBusyError(DoorstepError, RuntimeError):
    """The old store stayed busy, so a rebuild could not take it over; nothing was replaced."""


@dataclass
class KeptCuration:
    """Kept anchor rows, their history, merge links and idempotency keys from the old store.

    The anchor rows have every column but ``anchor_row`` and ``merged_into``.
    ``merges`` maps each merged anchor id to its survivor id instead.
    """

    anchors: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)
    merges: dict[str, str] = field(default_factory=dict)


@contextmanager
def locked_old_store(path: Path, busy_timeout_s: float) -> Iterator[sqlite3.Connection | None]:
    """Lend a connection holding the old store's write lock over an empty WAL.

    Yields None when ``path`` does not exist or is not an SQLite database. The
    new file inherits the old file's ``-wal`` and ``-shm`` names, so the WAL is
    checkpointed into the old file before the lock is taken, and the lock keeps
    writers from adding to it until the rename. The lock is released with a
    rollback because nothing is written to the old file.
    """
    if not path.is_file():
        yield None
        return

    connection = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    try:
        try:
            _lock_with_empty_wal(connection, path)
        except sqlite3.DatabaseError as err:
            if err.sqlite_errorcode != sqlite3.SQLITE_NOTADB:
                raise
            logger.warning("old store %s is not an SQLite database (%s); replacing it", path, err)
            yield None
            return
        try:
            yield connection
        finally:
            connection.execute("ROLLBACK")
    finally:
        connection.close()


def _lock_with_empty_wal(connection: sqlite3.Connection, path: Path) -> None:
    """Checkpoint the WAL into the database file and take the write lock once the WAL is empty.

    A writer can commit between the checkpoint and ``BEGIN IMMEDIATE``, so the
    WAL is checked under the lock and the step repeated.
    """
    wal = path.with_name(path.name + "-wal")
    for attempt in range(1, WAL_CHECKPOINT_ATTEMPTS + 1):
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("BEGIN IMMEDIATE")
        if not wal.exists() or wal.stat().st_size == 0:
            return
        connection.execute("ROLLBACK")
        time.sleep(0.05 * attempt)
    raise StoreBusyError(
        f"could not empty the write-ahead log {wal} in {WAL_CHECKPOINT_ATTEMPTS} attempts,"
        " because other connections keep reading or writing the store;"
        " stop the service and run the build again"
    )


def read_kept(path: Path, old: sqlite3.Connection | None, schema_version: str) -> KeptCuration:
    """Read the kept anchors (in write order), their history and merge links from the old store.

    Kept anchors are the curated ones and the survivors of merges. An old store
    of another schema version has nothing to carry over, because schema 1 had
    no curation; its version is logged.
    """
    if old is None:
        return KeptCuration()
    try:
        row = old.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError:
        row = None
    version = None if row is None else json.loads(row[0])
    if version != schema_version:
        logger.warning(
            "old store %s has schema version %r, not %r; its anchors are not carried over",
            path,
            version,
            schema_version,
        )
        return KeptCuration()

    merges = read_merge_links(old)
    survivors = json.dumps(sorted(set(merges.values())))
    kept_filter = f"({CURATED_FILTER} OR anchor_id IN (SELECT value FROM json_each(?)))"  # nosec B608 # constant identifiers, bound values
    old.row_factory = sqlite3.Row
    anchors = old.execute(
        f"SELECT * FROM anchors WHERE {kept_filter} ORDER BY anchor_row",  # nosec B608 # constant identifiers, bound values
        (survivors,),
    ).fetchall()
    history = old.execute(
        f"SELECT {', '.join(HISTORY_COLUMNS)} FROM anchor_history"  # nosec B608 # constant identifiers, bound values
        f" WHERE anchor_id IN (SELECT anchor_id FROM anchors WHERE {kept_filter})"
        " ORDER BY history_id",
        (survivors,),
    ).fetchall()
    # The new file numbers the rows again, and write_anchors sets the merge links.
    kept_anchors = [dict(row) for row in anchors]
    for row in kept_anchors:
        del row["anchor_row"]
        row.pop("merged_into", None)
    keys = _read_keys(old, kept_anchors)
    return KeptCuration(kept_anchors, [dict(row) for row in history], keys, merges)


def _read_keys(old: sqlite3.Connection, kept_anchors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Read the idempotency keys of the kept anchors; a file from before the table has none."""
    table = old.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'idempotency_keys'"
    ).fetchone()
    if table is None:
        return []
    rows = old.execute(
        f"SELECT {', '.join(KEY_COLUMNS)} FROM idempotency_keys"  # nosec B608 # constant identifiers, bound values
        " WHERE anchor_id IN (SELECT value FROM json_each(?))",
        (json.dumps([row["anchor_id"] for row in kept_anchors]),),
    ).fetchall()
    return [dict(row) for row in rows]


def write_anchors(connection: sqlite3.Connection, anchors: pd.DataFrame, kept: KeptCuration) -> int:
    """Write the fresh anchors, the kept ones in their place, the R*Tree, kept history and keys.

    The postings must be written already: the postings of merged anchors move
    to their survivors, and the kept anchors' ``n_postings`` are recounted.
    Returns the number of postings moved.

    Raises
    ------
    store.rebuild.MergeCycleError
        If the merge links form a cycle.
    """
    kept_ids = [row["anchor_id"] for row in kept.anchors]
    positions = anchor_positions(anchors["anchor_id"].tolist(), kept_ids)

    fresh = anchors[~anchors["anchor_id"].isin(kept_ids)].reset_index(drop=True)
    fresh.insert(0, "anchor_row", fresh["anchor_id"].map(positions))
    fresh.to_sql("anchors", connection, if_exists="append", index=False)

    for row in kept.anchors:
        columns = ["anchor_row", *row]
        connection.execute(
            f"INSERT INTO anchors ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",  # nosec B608 # constant identifiers, bound values
            [positions[row["anchor_id"]], *row.values()],
        )
    connection.executemany(
        f"INSERT INTO anchor_history ({', '.join(HISTORY_COLUMNS)})"  # nosec B608 # constant identifiers, bound values
        f" VALUES ({', '.join('?' * len(HISTORY_COLUMNS))})",
        [[row[name] for name in HISTORY_COLUMNS] for row in kept.history],
    )
    connection.executemany(
        f"INSERT INTO idempotency_keys ({', '.join(KEY_COLUMNS)})"  # nosec B608 # constant identifiers, bound values
        f" VALUES ({', '.join('?' * len(KEY_COLUMNS))})",
        [[row[name] for name in KEY_COLUMNS] for row in kept.keys],
    )
    connection.executemany(
        "UPDATE anchors SET merged_into = ? WHERE anchor_id = ?",
        [(survivor, merged) for merged, survivor in kept.merges.items()],
    )
    moved = _replay_merges(connection, kept.merges)
    connection.execute(
        "UPDATE anchors SET n_postings ="
        " (SELECT count(*) FROM postings AS p WHERE p.anchor_id = anchors.anchor_id)"
        " WHERE anchor_id IN (SELECT value FROM json_each(?))",
        (json.dumps(kept_ids),),
    )
    connection.execute(
        "INSERT INTO anchors_rtree SELECT anchor_row, lon, lon, lat, lat FROM anchors"
    )
    return moved


def _replay_merges(connection: sqlite3.Connection, merges: dict[str, str]) -> int:
    """Move postings from merged anchors to the end of their merge chains; return how many."""
    resolved = resolve_merges(merges)
    cursor = connection.executemany(
        "UPDATE postings SET anchor_id = ? WHERE anchor_id = ?",
        [(survivor, merged) for merged, survivor in resolved.items()],
    )
    return max(cursor.rowcount, 0)
