"""Key-enterprise labour zone (重点企业用工专区): key enterprises' vacancies and suitable seekers.

A key enterprise is an employer anchor that staff have curated (state
``pending_review`` or ``verified``) with the 重点企业 (``key_enterprise``) or 规上工业企业
(``above_scale_industrial``) flag set. The company POIs of the data folder carry no
such flag, so the zone is empty until staff set it.

The zone lists each key enterprise's active postings before other jobs. For one key
enterprise it lists the seekers nearby who suit at least one of its open posts, best
first, for a station to contact:

- nearby: the great-circle distance from the seeker's home to the enterprise's point is
  within the seeker's commute reach by their fastest allowed mode
  (`matching.candidates.StraightLineCommute.reach_m`);
- suits: the seeker's education meets the post's requirement, where unknown and none
  count as met. Also, the seeker's wished occupation shares at least the 中类 with the
  post's occupation code, or one of the seeker's wish keywords occurs in its title.

Seekers are ordered by the occupation levels they share with their best post, then by
distance. Masking, scope and audit of the list belong to the API layer.
"""

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo.crs import EARTH_RADIUS_M
from geo.errors import DoorstepError
from matching.candidates import StraightLineCommute, parse_modes
from matching.scoring import seeker_keywords

logger = logging.getLogger(__name__)

KEY_FLAGS = ("key_enterprise", "above_scale_industrial")

MIN_SHARED_LEVELS = 2
"""Occupation levels (大类, 中类, ...) a seeker's wish must share with a post to suit it."""

_CODE_PARTS = ((0, 1), (2, 4), (5, 7), (8, 10))


class KeyEnterpriseNotFoundError(DoorstepError, LookupError):
    """The anchor is not a key enterprise, or lies outside the caller's region."""


def key_enterprises(curated: pd.DataFrame | None, anchors: pd.DataFrame) -> pd.DataFrame:
    """Return the anchors flagged as key or above-scale enterprises.

    Parameters
    ----------
    curated
        Curation fields of curated anchors (`models.dataset.curated_anchors`), or None.
    anchors
        Every anchor (``anchor_id``, ``name``, ``lon``/``lat`` WGS84 degrees,
        ``precision``, ``district_code``, ``n_postings``).

    Returns
    -------
    pandas.DataFrame
        The flagged anchors' rows of ``anchors`` plus the two flags, ordered by
        ``n_postings`` descending and then ``anchor_id``.
    """
    columns = [*anchors.columns, *KEY_FLAGS]
    if curated is None or curated.empty:
        return pd.DataFrame(columns=columns)
    flags = curated.set_index("anchor_id")[list(KEY_FLAGS)].astype(bool)
    flagged = flags.loc[flags.any(axis=1)]
    rows = anchors.loc[anchors["anchor_id"].isin(flagged.index)].join(flagged, on="anchor_id")
    return rows.sort_values(["n_postings", "anchor_id"], ascending=[False, True]).reset_index(
        drop=True
    )


def in_region(district_codes: pd.Series, region_code: str | None) -> npt.NDArray[np.bool_]:
    """Return which rows lie in a region: None is the whole city, else its 6-digit district."""
    if region_code is None:
        return np.ones(len(district_codes), dtype=bool)
    return (district_codes.fillna("").astype(str) == region_code[:6]).to_numpy(dtype=bool)


def key_vacancies_first(postings: pd.DataFrame, key_anchor_ids: frozenset[str]) -> pd.DataFrame:
    """Return ``postings`` with the key enterprises' rows first, keeping the order within each."""
    key = postings["anchor_id"].astype(str).isin(key_anchor_ids)
    return pd.concat([postings.loc[key], postings.loc[~key]]).assign(
        key_enterprise=np.r_[np.ones(int(key.sum()), bool), np.zeros(int((~key).sum()), bool)]
    )


@dataclass(frozen=True)
class EnterpriseMatch:
    """Seekers who suit a key enterprise's open posts."""

    anchor_id: str
    vacancies: pd.DataFrame
    """The enterprise's active postings."""
    seekers: pd.DataFrame
    """``seeker_id``, ``distance_m``, ``shared_levels``, ``best_posting_id``, ordered."""


def suitable_seekers(
    anchor: pd.Series, postings: pd.DataFrame, seekers: pd.DataFrame, limit: int
) -> EnterpriseMatch:
    """Find the seekers near a key enterprise who suit at least one of its open posts.

    Parameters
    ----------
    anchor
        The enterprise's anchor row (``anchor_id``, ``lon``/``lat`` WGS84 degrees).
    postings
        All postings; the enterprise's are those with its ``anchor_id``.
    seekers
        Seekers with their homes (WGS84 degrees), ``education``, ``max_commute_min``,
        ``modes``, ``occupation_wish_code``, ``occupation_wish_name`` and ``keywords``.
    limit
        Most seekers returned.
    """
    anchor_id = str(anchor["anchor_id"])
    vacancies = postings.loc[postings["anchor_id"].astype(str) == anchor_id]
    if "active" in vacancies.columns:
        vacancies = vacancies.loc[vacancies["active"].astype(bool)]
    vacancies = vacancies.reset_index(drop=True)
    empty = pd.DataFrame(columns=["seeker_id", "distance_m", "shared_levels", "best_posting_id"])
    if vacancies.empty or seekers.empty:
        return EnterpriseMatch(anchor_id, vacancies, empty)

    distance = _distance_m(seekers, float(anchor["lon"]), float(anchor["lat"]))
    nearby = seekers.loc[distance <= _reach_m(seekers)]
    if nearby.empty:
        return EnterpriseMatch(anchor_id, vacancies, empty)

    shared, best = _best_fit(nearby, vacancies)
    found = pd.DataFrame(
        {
            "seeker_id": nearby["seeker_id"].to_numpy(),
            "distance_m": distance[seekers.index.get_indexer(nearby.index)],
            "shared_levels": shared,
            "best_posting_id": vacancies["posting_id"].to_numpy()[best],
            "suits": shared >= 0,
        }
    )
    found = found.loc[found.pop("suits")].sort_values(
        ["shared_levels", "distance_m", "seeker_id"], ascending=[False, True, True]
    )
    return EnterpriseMatch(anchor_id, vacancies, found.head(limit).reset_index(drop=True))


def _best_fit(
    seekers: pd.DataFrame, vacancies: pd.DataFrame
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """Return each seeker's best shared occupation levels over the posts they suit, and that post.

    -1 marks a seeker who suits no post. A keyword match without the shared 中类 counts as
    `MIN_SHARED_LEVELS`.
    """
    wishes = seekers["occupation_wish_code"].fillna("").astype(str).to_numpy()
    codes = vacancies["occupation_code"].fillna("").astype(str).to_numpy()
    shared = np.zeros((len(wishes), len(codes)), dtype=np.int64)
    same = np.ones_like(shared, dtype=bool)
    for start, stop in _CODE_PARTS:
        wish_part = np.asarray([code[start:stop] for code in wishes], dtype=object)[:, None]
        post_part = np.asarray([code[start:stop] for code in codes], dtype=object)[None, :]
        same &= (wish_part == post_part) & (post_part != "") & (post_part != "00")
        shared += same

    titles = vacancies["title"].fillna("").astype(str).str.lower().to_numpy()
    for row, (_, seeker) in enumerate(seekers.iterrows()):
        words = [word.lower() for word in seeker_keywords(seeker) if len(word) >= 2]
        hit = np.asarray([any(word in title for word in words) for title in titles], dtype=bool)
        shared[row] = np.where(hit, np.maximum(shared[row], MIN_SHARED_LEVELS), shared[row])

    required = pd.to_numeric(vacancies["education"], errors="coerce").fillna(-1).to_numpy()
    level = seekers["education"].to_numpy(dtype=np.int64)[:, None]
    suits = (shared >= MIN_SHARED_LEVELS) & (required[None, :] <= level)
    scored = np.where(suits, shared, -1)
    best = scored.argmax(axis=1)
    return scored[np.arange(len(best)), best], best


def _distance_m(seekers: pd.DataFrame, lon: float, lat: float) -> npt.NDArray[np.float64]:
    """Great-circle metres from each seeker's home to a point (haversine, `EARTH_RADIUS_M`)."""
    lon1 = np.radians(seekers["home_lon"].to_numpy(np.float64))
    lat1 = np.radians(seekers["home_lat"].to_numpy(np.float64))
    lon2, lat2 = np.radians(lon), np.radians(lat)
    half = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(half)), dtype=np.float64)


def _reach_m(seekers: pd.DataFrame) -> npt.NDArray[np.float64]:
    estimator = StraightLineCommute()
    return np.asarray(
        [
            max(estimator.reach_m(float(limit), mode) for mode in parse_modes(str(modes or "walk")))
            for limit, modes in zip(seekers["max_commute_min"], seekers["modes"], strict=True)
        ],
        dtype=np.float64,
    )
