"""Duplicate employer anchors: candidate pairs for station staff, and merge plans.

Two anchors are a candidate pair when they carry the same credit code (at any
distance), or when they lie within ``max_distance_m`` of each other and their
normalised names (:func:`geo.company_index.normalise_company_name`) have a
``difflib.SequenceMatcher`` ratio of at least ``min_name_similarity``.
Neighbours come from a BallTree with the haversine metric on a sphere of
``EARTH_RADIUS_M``. Only pairs inside the radius are compared by name.

Candidates are for review only: staff decide, then :func:`plan_merge` re-points
the postings to the surviving anchor and retires the others.
"""

import difflib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import combinations

import numpy as np
import pandas as pd
from sklearn.neighbors import BallTree

from geo.anchor_states import AnchorState, transition
from geo.company_index import normalise_company_name
from geo.credit_code import InvalidCreditCodeError, validate_credit_code
from geo.crs import EARTH_RADIUS_M, haversine_m
from geo.curation import AnchorRecord, AnchorVersion, FieldChange
from geo.errors import DoorstepError

logger = logging.getLogger(__name__)

DUPLICATE_COLUMNS = ["anchor_id_a", "anchor_id_b", "reason", "distance_m", "similarity"]

MERGE_REASON = "merged into anchor {survivor_id} as a duplicate"
"""History reason of each anchor that a merge retires, formatted with the survivor's id.

Stores keep the survivor in an anchor's ``merged_into`` column. Merges stored
before that column existed are read back from this reason with
:func:`survivor_from_reason`.
"""


class InvalidMergeError(DoorstepError, ValueError):
    """A merge request naming unknown, repeated or retired anchors."""


@dataclass(frozen=True, slots=True)
class MergePlan:
    """What merging anchors into a survivor changes; the store applies it in one transaction.

    ``posting_moves`` has columns ``posting_id``, ``from_anchor_id`` and
    ``to_anchor_id``. ``retired`` are the merged anchors in state ``retired``
    at their next version, and ``history`` has one entry for each of them.
    """

    survivor_id: str
    merged_ids: tuple[str, ...]
    posting_moves: pd.DataFrame
    retired: tuple[AnchorRecord, ...]
    history: tuple[AnchorVersion, ...]


def name_similarity(name_a: str, name_b: str) -> float:
    """Return the ``difflib`` ratio (0..1) of two company names after normalisation."""
    key_a, key_b = normalise_company_name(name_a), normalise_company_name(name_b)
    return difflib.SequenceMatcher(None, key_a, key_b, autojunk=False).ratio()


def _credit_code_pairs(anchors: pd.DataFrame) -> list[tuple[int, int]]:
    if "credit_code" not in anchors.columns:
        return []

    codes = anchors["credit_code"].map(_compact_code)
    pairs: list[tuple[int, int]] = []
    present = codes.dropna()
    # ``frame`` has a RangeIndex, so the group labels are row positions.
    for labels in present.groupby(present).groups.values():
        pairs.extend(combinations(sorted(int(label) for label in labels), 2))
    return pairs


def _compact_code(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return validate_credit_code(value)
    except InvalidCreditCodeError:
        # Two rows with the same invalid code are still the same entry typed twice.
        return value.strip().upper()


def _nearby_pairs(lons: np.ndarray, lats: np.ndarray, max_distance_m: float) -> np.ndarray:
    """Return index pairs (i < j) of points within ``max_distance_m``, shape (n, 2)."""
    coords = np.radians(np.column_stack([lats, lons]))
    tree = BallTree(coords, metric="haversine")
    neighbours = tree.query_radius(coords, r=max_distance_m / EARTH_RADIUS_M)

    counts = np.array([len(found) for found in neighbours])
    left = np.repeat(np.arange(len(coords)), counts)
    right = np.concatenate(neighbours) if len(neighbours) else np.array([], dtype=int)
    keep = left < right
    return np.column_stack([left[keep], right[keep]])


def find_duplicates(
    anchors: pd.DataFrame, *, max_distance_m: float = 300.0, min_name_similarity: float = 0.85
) -> pd.DataFrame:
    """Find candidate duplicate anchors.

    Parameters
    ----------
    anchors
        Columns ``anchor_id``, ``name``, ``lon``, ``lat`` (WGS84 degrees) and
        optionally ``credit_code``. Rows with a NaN coordinate take part only
        in credit-code matching.
    max_distance_m
        Radius in metres (haversine on ``EARTH_RADIUS_M``) for name matching.
    min_name_similarity
        Minimum :func:`name_similarity` of a nearby pair, 0..1.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`DUPLICATE_COLUMNS`, one row per pair with ``anchor_id_a``
        the row earlier in ``anchors``. ``reason`` is ``same_credit_code`` (at
        any distance, which wins when both apply) or ``similar_name_nearby``.
        ``distance_m`` is NaN when a point is missing.
    """
    frame = anchors.reset_index(drop=True)
    names = frame["name"].fillna("").astype(str).map(normalise_company_name).to_numpy()
    lons = frame["lon"].to_numpy(dtype=np.float64)
    lats = frame["lat"].to_numpy(dtype=np.float64)

    by_code = set(_credit_code_pairs(frame))
    located = np.flatnonzero(~(np.isnan(lons) | np.isnan(lats)))
    nearby = located[_nearby_pairs(lons[located], lats[located], max_distance_m)]

    rows = [(i, j, "same_credit_code") for i, j in sorted(by_code)]
    for i, j in nearby.tolist():
        if (i, j) in by_code:
            continue
        matcher = difflib.SequenceMatcher(None, names[i], names[j], autojunk=False)
        if matcher.real_quick_ratio() >= min_name_similarity and (
            matcher.ratio() >= min_name_similarity
        ):
            rows.append((i, j, "similar_name_nearby"))

    return _pairs_frame(frame, names, rows)


def _pairs_frame(
    frame: pd.DataFrame, names: np.ndarray, rows: list[tuple[int, int, str]]
) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame(columns=DUPLICATE_COLUMNS)

    left = np.array([row[0] for row in rows])
    right = np.array([row[1] for row in rows])
    lons = frame["lon"].to_numpy(dtype=np.float64)
    lats = frame["lat"].to_numpy(dtype=np.float64)
    ids = frame["anchor_id"].to_numpy()
    similarity = [
        difflib.SequenceMatcher(None, names[i], names[j], autojunk=False).ratio()
        for i, j in zip(left, right, strict=True)
    ]
    pairs = pd.DataFrame(
        {
            "anchor_id_a": ids[left],
            "anchor_id_b": ids[right],
            "reason": [row[2] for row in rows],
            "distance_m": haversine_m(lons[left], lats[left], lons[right], lats[right]),
            "similarity": similarity,
        }
    )
    logger.info("found %d candidate duplicate pairs among %d anchors", len(pairs), len(frame))
    return pairs


def plan_merge(
    survivor_id: str,
    merged_ids: Sequence[str],
    postings: pd.DataFrame,
    *,
    records: Mapping[str, AnchorRecord],
    actor: str,
    now: datetime,
) -> MergePlan:
    """Plan merging duplicate anchors into one survivor.

    Parameters
    ----------
    survivor_id
        The anchor that stays.
    merged_ids
        Anchors to retire; at least one, none repeated, none the survivor.
    postings
        Columns ``posting_id`` and ``anchor_id``; rows on a merged anchor move.
    records
        Current records by anchor id, covering the survivor and every merged id.
    actor
        Staff account id for the history entries.
    now
        Time-zone aware time of the merge.

    Returns
    -------
    MergePlan

    Raises
    ------
    InvalidMergeError
        If an id is unknown, repeated, equal to the survivor, or the survivor is retired.
    InvalidTransitionError
        If a merged anchor cannot be retired from its state (``pending_review``
        and ``rejected`` are decided first).
    """
    merged = _check_merge_ids(survivor_id, merged_ids, records)

    on_merged = postings["anchor_id"].isin(merged)
    moves = pd.DataFrame(
        {
            "posting_id": postings.loc[on_merged, "posting_id"].to_numpy(),
            "from_anchor_id": postings.loc[on_merged, "anchor_id"].to_numpy(),
            "to_anchor_id": survivor_id,
        }
    )

    reason = MERGE_REASON.format(survivor_id=survivor_id)
    retired, history = [], []
    for anchor_id in merged:
        record = records[anchor_id]
        state = transition(record.state, AnchorState.RETIRED)
        retired.append(replace(record, state=state, version=record.version + 1))
        change = FieldChange("state", record.state, state)
        history.append(
            AnchorVersion(anchor_id, record.version + 1, actor, now, reason, (change,), state)
        )

    logger.info(
        "merge plan: %d anchors into %r, %d postings move", len(merged), survivor_id, len(moves)
    )
    return MergePlan(survivor_id, merged, moves, tuple(retired), tuple(history))


def survivor_from_reason(reason: str) -> str | None:
    """Return the survivor id in a history reason written by :func:`plan_merge`, else None."""
    prefix, _, suffix = MERGE_REASON.partition("{survivor_id}")
    if len(reason) <= len(prefix) + len(suffix):
        return None
    if not (reason.startswith(prefix) and reason.endswith(suffix)):
        return None
    return reason[len(prefix) : len(reason) - len(suffix)]


def _check_merge_ids(
    survivor_id: str, merged_ids: Sequence[str], records: Mapping[str, AnchorRecord]
) -> tuple[str, ...]:
    merged = tuple(merged_ids)
    if not merged:
        raise InvalidMergeError("merged_ids is empty; name at least one anchor to merge")
    if len(set(merged)) != len(merged):
        raise InvalidMergeError(f"merged_ids {list(merged)} repeats an anchor")
    if survivor_id in merged:
        raise InvalidMergeError(f"survivor {survivor_id!r} is also in merged_ids")

    unknown = [anchor_id for anchor_id in (survivor_id, *merged) if anchor_id not in records]
    if unknown:
        raise InvalidMergeError(f"anchors {unknown} are not in records")
    if records[survivor_id].state is AnchorState.RETIRED:
        raise InvalidMergeError(f"survivor {survivor_id!r} is retired; pick an active anchor")
    return merged
