"""Targeted match lists of assistance officers: ranked, rule-filtered and capacity-allocated.

For each of an officer's targets the recommender ranks the postings within the target's
commute limit. :func:`matching.assistance.apply_group_rules` keeps those that suit the
target's category and rescores them. :func:`matching.allocation.allocate` then proposes
the recommendations each target still needs, so that no posting is proposed to more
targets than it has vacancies left. Vacancies left are the posting's headcount minus
the recommendations of every officer's targets that hold one (the whole ledger, so
targets of other officers in the district count too).
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.crs import haversine_m
from matching.allocation import allocate
from matching.assistance import AssistanceRules, apply_group_rules
from matching.recommend import Recommender, SeekerNotFoundError

logger = logging.getLogger(__name__)

DEFAULT_HEADCOUNT = 1
"""Vacancies of a posting whose source gives no headcount (招聘人数).

NOTE: no posting set in the data folder records a headcount, so every posting counts
as one vacancy until postings carry a ``headcount`` column.
"""

CANDIDATES_PER_TARGET = 30
"""Ranked postings considered per target before the group rules and the allocation."""

ALTERNATIVES_PER_TARGET = 5
"""Rule-passing postings with a vacancy left, shown besides the proposals."""

MATCH_COLUMNS = (
    "seeker_id", "posting_id", "title", "company", "district_code", "estimated_commute_min",
    "public_welfare", "night_shift", "match_score", "proposed",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TargetRequest:
    """One target of the list: its category code and the recommendations it still needs."""

    seeker_id: str
    category: str | None
    slots: int


@dataclass(frozen=True, slots=True)
class MatchList:
    """Proposals and alternatives per target, and the targets the recommender does not know."""

    rows: pd.DataFrame
    """Columns :data:`MATCH_COLUMNS`; ``proposed`` marks the allocated rows."""
    unknown: list[str]


def posting_headcounts(postings: pd.DataFrame) -> dict[str, int]:
    """Return posting id to its headcount: the ``headcount`` column, else DEFAULT_HEADCOUNT."""
    ids = postings["posting_id"].astype(str)
    if "headcount" not in postings.columns:
        return dict.fromkeys(ids, DEFAULT_HEADCOUNT)
    counts = pd.to_numeric(postings["headcount"], errors="coerce").fillna(DEFAULT_HEADCOUNT)
    return {pid: max(int(n), 0) for pid, n in zip(ids, counts, strict=True)}


def build_match_list(
    recommender: Recommender,
    targets: Sequence[TargetRequest],
    headcounts: Mapping[str, int],
    holding: Mapping[str, int],
    rules: AssistanceRules,
    lang: str = "zh",
) -> MatchList:
    """Rank, filter and allocate postings for ``targets``; see the module docstring.

    Parameters
    ----------
    recommender : Recommender
        The service's ranker over active postings and seekers.
    targets : Sequence[TargetRequest]
        The officer's targets; a target with ``slots`` 0 gets alternatives only.
    headcounts : Mapping[str, int]
        Posting id to headcount (:func:`posting_headcounts`).
    holding : Mapping[str, int]
        Posting id to the recommendations that hold one of its vacancies.
    rules : AssistanceRules
        The assistance group rules.
    lang : str
        ``zh`` or ``en`` for the ranker's reasons (not returned here).
    """
    frames: list[pd.DataFrame] = []
    unknown: list[str] = []
    for target in targets:
        try:
            seeker, ranked = recommender.recommend(target.seeker_id, CANDIDATES_PER_TARGET, lang)
        except SeekerNotFoundError:
            unknown.append(target.seeker_id)
            continue
        suited = apply_group_rules(ranked, target.category, float(seeker["max_commute_min"]), rules)
        frames.append(suited.assign(seeker_id=target.seeker_id))
    if unknown:
        logger.warning("match list: %d targets are not in the recommender's seekers", len(unknown))
    candidates = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if candidates.empty:
        return MatchList(pd.DataFrame(columns=list(MATCH_COLUMNS)), unknown)

    vacancies = {
        posting_id: max(headcounts.get(posting_id, 0) - holding.get(posting_id, 0), 0)
        for posting_id in candidates["posting_id"].astype(str).unique()
    }
    slots = {target.seeker_id: target.slots for target in targets}
    allocation = allocate(candidates.assign(score=candidates["match_score"]), vacancies, slots)
    return MatchList(_with_alternatives(candidates, allocation.chosen, vacancies), unknown)


def _with_alternatives(
    candidates: pd.DataFrame, chosen: pd.DataFrame, vacancies: Mapping[str, int]
) -> pd.DataFrame:
    """Return the proposals and, per target, the best unproposed postings with a vacancy left."""
    proposed_pairs = set(zip(chosen["seeker_id"], chosen["posting_id"], strict=True))
    marked = candidates.assign(
        posting_id=candidates["posting_id"].astype(str),
        proposed=[
            (s, p) in proposed_pairs
            for s, p in zip(
                candidates["seeker_id"], candidates["posting_id"].astype(str), strict=True
            )
        ],
    )
    open_posting = marked["posting_id"].map(lambda pid: vacancies.get(pid, 0) > 0)
    alternatives = (
        marked[~marked["proposed"] & open_posting]
        .groupby("seeker_id", sort=False)
        .head(ALTERNATIVES_PER_TARGET)
    )
    rows = pd.concat([marked[marked["proposed"]], alternatives], ignore_index=True)
    for column in MATCH_COLUMNS:
        if column not in rows.columns:
            rows[column] = np.nan
    ordered = rows.sort_values(
        ["seeker_id", "proposed", "match_score"], ascending=[True, False, False], kind="stable"
    )
    return ordered[list(MATCH_COLUMNS)].reset_index(drop=True)


def nearest_institutions(
    institutions: gpd.GeoDataFrame, lon: float, lat: float, limit: int
) -> pd.DataFrame:
    """Return the ``limit`` training institutions nearest a WGS84 point, nearest first.

    Parameters
    ----------
    institutions : geopandas.GeoDataFrame
        The ``training`` HR map layer in EPSG:4326 with ``name``, ``baidu_uid``,
        ``address`` and ``district_code`` columns.
    lon, lat : float
        The target's street office point, WGS84 degrees (not the exact home).
    limit : int
        Number of institutions to return.

    Returns
    -------
    pandas.DataFrame
        Columns ``institution_id`` (the Baidu uid), ``name``, ``address``,
        ``district_code`` and ``distance_m`` (great-circle metres).
    """
    if institutions.crs is not None and institutions.crs.to_epsg() != 4326:
        raise ValueError(f"training layer CRS is {institutions.crs}; expected EPSG:4326")
    points = institutions.geometry
    distances = haversine_m(lon, lat, points.x.to_numpy(), points.y.to_numpy())
    order = np.argsort(distances, kind="stable")[:limit]
    found = institutions.iloc[order]
    return pd.DataFrame(
        {
            "institution_id": found["baidu_uid"].astype(str).to_numpy(),
            "name": found["name"].astype(str).to_numpy(),
            "address": found["address"].fillna("").astype(str).to_numpy(),
            "district_code": found["district_code"].astype(str).to_numpy(),
            "distance_m": distances[order],
        }
    )
