"""Merge links in the SQLite store: the ``merged_into`` column, also in files written before it.

A merge stores the survivor's id in each merged anchor's ``merged_into``. Store
files written before that column existed get it on their first curation write,
filled from the history, and a rebuild reads their links from the history too.
A retired anchor accepts no edit but reactivation, so the history entry at its
current version is its retirement, and a merge writes
:data:`geo.duplicates.MERGE_REASON` there.
"""

import json
import logging
import sqlite3
from pathlib import Path

from geo.duplicates import survivor_from_reason

logger = logging.getLogger(__name__)

MERGED_INTO_COLUMN = (
    "merged_into TEXT REFERENCES anchors(anchor_id)"
    " CHECK (merged_into IS NULL OR (state = 'retired' AND merged_into <> anchor_id))"
)
"""Definition of the ``merged_into`` column: only a retired anchor links to another anchor."""


def has_merged_into(connection: sqlite3.Connection) -> bool:
    """Return whether the store's ``anchors`` table has the ``merged_into`` column."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(anchors)")}
    return "merged_into" in columns


def read_merge_links(connection: sqlite3.Connection) -> dict[str, str]:
    """Return the survivor of each merged anchor; files without ``merged_into`` read the history."""
    if not has_merged_into(connection):
        return _links_from_history(connection)
    rows = connection.execute(
        "SELECT anchor_id, merged_into FROM anchors WHERE merged_into IS NOT NULL"
    ).fetchall()
    return {str(row[0]): str(row[1]) for row in rows}


def add_merged_into(connection: sqlite3.Connection, path: Path) -> None:
    """Add the ``merged_into`` column to a store file that lacks it, with links from the history.

    Runs inside the caller's write transaction, so the column and its values
    are committed together with the caller's write or not at all.
    """
    if has_merged_into(connection):
        return
    links = _links_from_history(connection)
    connection.execute(f"ALTER TABLE anchors ADD COLUMN {MERGED_INTO_COLUMN}")
    connection.executemany(
        "UPDATE anchors SET merged_into = ? WHERE anchor_id = ?",
        [(survivor, merged) for merged, survivor in links.items()],
    )
    logger.info(
        "added the merged_into column to %s, with %d merge links from the history",
        path,
        len(links),
    )


def _links_from_history(connection: sqlite3.Connection) -> dict[str, str]:
    """Return merge links read from the retirement entries of retired anchors.

    A link counts only when its survivor is another stored anchor.
    """
    rows = connection.execute(
        "SELECT h.anchor_id, h.reason FROM anchor_history AS h"
        " JOIN anchors AS a ON a.anchor_id = h.anchor_id AND a.version = h.version"
        " WHERE a.state = 'retired'"
    ).fetchall()
    links = {}
    for anchor_id, reason in rows:
        survivor = survivor_from_reason(str(reason))
        if survivor is not None and survivor != anchor_id:
            links[str(anchor_id)] = survivor

    stored = connection.execute(
        "SELECT anchor_id FROM anchors WHERE anchor_id IN (SELECT value FROM json_each(?))",
        (json.dumps(sorted(set(links.values()))),),
    ).fetchall()
    known = {str(row[0]) for row in stored}
    return {merged: survivor for merged, survivor in links.items() if survivor in known}
