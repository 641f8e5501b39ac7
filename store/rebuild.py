"""Anchors that a rebuild keeps: the rule both stores apply when new build data replaces the old.

Staff-curated anchors survive a rebuild. An anchor is curated when staff edited
it (``version > 1``) or created it (``source`` is :data:`STAFF_SOURCE`). A kept
anchor keeps its whole stored row and its history. The build's fresh anchors
fill in every other id, and new postings attach to a kept anchor when their
computed ``anchor_id`` matches. A kept anchor whose id the new data no longer
produces stays with 0 postings. Both stores recount ``n_postings`` of kept
anchors from the new postings.

Idempotency keys of staff anchor creation point only at staff-created anchors,
which are always kept, so they survive as well: PostgreSQL leaves the
``idempotency_keys`` table alone, and SQLite copies the keys of the kept
anchors into the new file.

NOTE: merges are not replayed. A posting that a merge moved to the survivor goes
back to the retired anchor whose id it gets again.
"""

import logging
from collections.abc import Collection, Sequence

from store.curation_tables import STAFF_SOURCE

logger = logging.getLogger(__name__)

KEPT_FILTER = f"(version > 1 OR source = '{STAFF_SOURCE}')"
"""SQL condition, valid in SQLite and PostgreSQL, that selects the anchors a rebuild keeps."""


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
