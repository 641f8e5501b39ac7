"""Anchors that a rebuild keeps: the rule both stores apply when new build data replaces the old.

Staff-curated anchors survive a rebuild. An anchor is curated when staff edited
it (``version > 1``) or created it (``source`` is :data:`STAFF_SOURCE`). A kept
anchor keeps its whole stored row and its history. The build's fresh anchors
fill in every other id, and new postings attach to a kept anchor when their
computed ``anchor_id`` matches. A kept anchor whose id the new data no longer
produces stays with 0 postings. Both stores recount ``n_postings`` of kept
anchors from the new postings.

Merges are replayed. A merge retires each merged anchor and stores the survivor
in its ``merged_into`` column, so the merged anchor is curated and kept. The
survivor of a merge is kept as well, even when staff never edited it, so the
link always has a target. After the new postings are written, every posting
whose computed ``anchor_id`` is a merged anchor moves to the end of that
anchor's merge chain (A merged into B, B merged into C: C), and the recount
covers both ends. A reactivated anchor has no ``merged_into``, so a chain stops
there. A cycle of merges raises :class:`MergeCycleError` and fails the rebuild,
which leaves the old store as it was.

Idempotency keys of staff anchor creation point only at staff-created anchors,
which are always kept, so they survive as well: PostgreSQL leaves the
``idempotency_keys`` table alone, and SQLite copies the keys of the kept
anchors into the new file.
"""

import logging
from collections.abc import Collection, Mapping, Sequence

from geo.errors import DoorstepError
from store.curation_tables import STAFF_SOURCE

logger = logging.getLogger(__name__)

CURATED_FILTER = f"(version > 1 OR source = '{STAFF_SOURCE}')"
"""SQL condition, valid in SQLite and PostgreSQL, that selects the anchors staff curated."""

KEPT_FILTER = (
    f"({CURATED_FILTER}"  # nosec B608 # constant identifiers, bound values
    " OR anchor_id IN (SELECT merged_into FROM anchors WHERE merged_into IS NOT NULL))"
)
"""SQL condition that selects the anchors a rebuild keeps: curated ones and merge survivors.

The PostgreSQL rebuild uses it. The SQLite rebuild combines :data:`CURATED_FILTER`
with the survivors it has read, because files written before the ``merged_into``
column lack it.
"""


class MergeCycleError(DoorstepError, ValueError):
    """The stored merge links form a cycle, so a rebuild cannot tell where postings go."""


def anchor_positions(fresh_ids: Sequence[str], kept_ids: Sequence[str]) -> dict[str, int]:
    """Return the 1-based write position of every anchor stored after a rebuild.

    Fresh anchors keep the build's order, and a kept anchor with a fresh id
    takes that id's place. Kept anchors that the new data no longer produces
    come last, in ``kept_ids`` order (their order in the old store).
    """
    positions = {anchor_id: position for position, anchor_id in enumerate(fresh_ids, start=1)}
    if len(positions) != len(fresh_ids):
        raise ValueError("the build's anchors repeat an anchor_id; expected unique ids")
    for anchor_id in kept_ids:
        if anchor_id not in positions:
            positions[anchor_id] = len(positions) + 1
    return positions


def log_kept(kept_ids: Collection[str], fresh_ids: Collection[str], target: str) -> None:
    """Log how many curated anchors a rebuild of ``target`` kept, and how many lost their data."""
    orphaned = len(set(kept_ids) - set(fresh_ids))
    logger.info(
        "rebuild of %s keeps %d curated anchors with their history; %d of them have no"
        " postings in the new data",
        target,
        len(kept_ids),
        orphaned,
    )


def resolve_merges(links: Mapping[str, str]) -> dict[str, str]:
    """Return the final survivor of every merged anchor by following its merge chain.

    Parameters
    ----------
    links : Mapping[str, str]
        Each merged anchor's ``merged_into``: the survivor that staff chose.

    Returns
    -------
    dict[str, str]
        Each merged anchor to the first anchor of its chain that is not itself
        merged (A into B and B into C give A: C and B: C).

    Raises
    ------
    MergeCycleError
        If a chain comes back to an anchor already on it; the message lists the cycle.
    """
    resolved: dict[str, str] = {}
    # Sorted, so both stores report a cycle from the same anchor.
    for start in sorted(links):
        chain = [start]
        target = links[start]
        while target in links and target not in resolved:
            if target in chain:
                cycle = " -> ".join([*chain[chain.index(target) :], target])
                raise MergeCycleError(
                    f"merged_into links form a cycle: {cycle}. Reactivate one of these"
                    " anchors or set its merged_into to NULL, then run the build again"
                )
            chain.append(target)
            target = links[target]
        final = resolved.get(target, target)
        for anchor_id in chain:
            resolved[anchor_id] = final
    return resolved


def log_replayed(n_merged: int, moved: int, target: str) -> None:
    """Log how many postings a rebuild of ``target`` moved from merged anchors to survivors."""
    logger.info(
        "rebuild of %s replays the merges of %d anchors: %d postings moved to their survivors",
        target,
        n_merged,
        moved,
    )
