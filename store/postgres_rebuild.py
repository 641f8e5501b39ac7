"""Keep curated anchors and replay merges when a rebuild replaces the PostgreSQL store's data.

:meth:`store.postgres.PostgresStore.replace_all` runs these steps inside its one
transaction: :func:`delete_build_rows` before it writes the new rows, and
:func:`replay_merges` after the new postings are in. The rule of what is kept
is in :mod:`store.rebuild`.
"""

import logging
from typing import Any

import psycopg
from psycopg import sql

from store.rebuild import KEPT_FILTER, resolve_merges

logger = logging.getLogger(__name__)

Connection = psycopg.Connection[tuple[Any, ...]]


def delete_build_rows(connection: Connection) -> list[str]:
    """Delete every row a build wrote except the kept anchors; return their ids in row order.

    Kept anchors are the curated ones and the survivors of merges. The history
    of the deleted anchors goes with them. The kept anchors move to negative
    ``anchor_row`` numbers, out of the way of the build's numbers.
    """
    # DELETE, not TRUNCATE: TRUNCATE would block readers until the commit, while
    # DELETE lets them read the previous data until the new data is committed.
    kept_filter = sql.SQL(KEPT_FILTER)
    rows = connection.execute(
        sql.SQL("SELECT anchor_id FROM anchors WHERE {} ORDER BY anchor_row").format(kept_filter)
    ).fetchall()
    kept_ids = [str(anchor_id) for (anchor_id,) in rows]

    connection.execute(
        "DELETE FROM anchor_history WHERE NOT (anchor_id = ANY(%s::text[]))", (kept_ids,)
    )
    for table in ("layer_features", "layers", "postings", "seekers"):
        connection.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
    connection.execute(sql.SQL("DELETE FROM anchors WHERE NOT {}").format(kept_filter))
    connection.execute("UPDATE anchors SET anchor_row = -anchor_row")
    connection.execute("DELETE FROM frame_columns")
    connection.execute("DELETE FROM meta")
    return kept_ids


def replay_merges(connection: Connection) -> tuple[int, int]:
    """Move postings from merged anchors to the end of their merge chains.

    Returns the number of merged anchors and the number of postings moved.

    Raises
    ------
    store.rebuild.MergeCycleError
        If the merge links form a cycle.
    """
    rows = connection.execute(
        "SELECT anchor_id, merged_into FROM anchors WHERE merged_into IS NOT NULL"
    ).fetchall()
    resolved = resolve_merges({str(merged): str(survivor) for merged, survivor in rows})
    if not resolved:
        return 0, 0
    moved = connection.execute(
        "UPDATE postings SET anchor_id = chain.survivor"
        " FROM unnest(%s::text[], %s::text[]) AS chain (merged, survivor)"
        " WHERE postings.anchor_id = chain.merged",
        (list(resolved), list(resolved.values())),
    ).rowcount
    return len(resolved), moved
