"""Per-posting context for ranking features: employer size, key-enterprise flag, competition.

These values depend on the whole postings table or the seeker population, not on
one (seeker, posting) pair, so they are computed once per postings frame with
`attach_posting_context` and read by `matching.features.build_features` as columns.

Employer size class
-------------------
A curated anchor's ``size`` (微型/小型/中型/大型) wins. Otherwise the posting's
company-size text (``150-500人``, ``10000人以上``, ``少于50人``) gives a headcount:
the middle of a band, the bound of an open band. The headcount is classed with the
employee bands of the industrial sector in the national rule for classifying
enterprises (统计上大中小微型企业划分办法, 2017): micro below 20, small below 300,
medium below 1,000, large from 1,000. Other sectors have other bands and revenue
tests, so the class from text is an approximation.

Key-enterprise flag
-------------------
An anchor that staff have curated (state ``pending_review`` or ``verified``) gives its
``key_enterprise`` or ``above_scale_industrial`` flag, 1 or 0. Otherwise the flag is
taken from the size class as a proxy: 1 for a large employer, 0 for a known smaller
one, NaN when the size is unknown.

Competition
-----------
The number of store seekers whose home lies within `COMPETITION_REACH_M` of the
posting's point and who pass its hard requirements: education at or above the
requirement, and experience at or above the minimum unless the posting takes fresh
graduates. Counts come from ``BallTree.query_radius(count_only=True)``, one tree per
distinct requirement. City-level postings get NaN, because their point is not a place.
"""

import logging
import re
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.neighbors import BallTree

from geo.anchor_fields import EnterpriseSize
from geo.crs import EARTH_RADIUS_M
from geo.location import Precision
from matching.candidates import StraightLineCommute

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

SIZE_CLASS_RANK: dict[str, int] = {
    EnterpriseSize.MICRO.value: 1,
    EnterpriseSize.SMALL.value: 2,
    EnterpriseSize.MEDIUM.value: 3,
    EnterpriseSize.LARGE.value: 4,
}
# Industrial-sector employee bands (persons): lower bounds of small, medium, large.
SMALL_FROM_EMPLOYEES = 20
MEDIUM_FROM_EMPLOYEES = 300
LARGE_FROM_EMPLOYEES = 1000

CURATED_STATES = ("pending_review", "verified")

# Assumption: a posting's pool of competitors is everyone within a 30-minute transit
# trip by the straight-line estimate (about 5.4 km).
COMPETITION_REACH_MIN = 30.0
COMPETITION_REACH_M = StraightLineCommute().reach_m(COMPETITION_REACH_MIN, "transit")

CONTEXT_COLUMNS = (
    "employer_size_class",
    "key_enterprise",
    "employer_active_postings",
    "competition_seekers",
)

_BAND = re.compile(r"(\d+)\s*[-~至]\s*(\d+)\s*人")
_AT_LEAST = re.compile(r"(\d+)\s*人(?:以上|及以上)")
_BELOW = re.compile(r"(?:少于|小于)\s*(\d+)\s*人|(\d+)\s*人以下")


def attach_posting_context(
    postings: pd.DataFrame,
    seekers: pd.DataFrame,
    curated_anchors: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Add the `CONTEXT_COLUMNS` to a postings frame.

    Parameters
    ----------
    postings
        Active postings with ``anchor_id``, ``company_size``, ``lon``/``lat`` (WGS84
        degrees), ``precision``, ``education``, ``experience_min_years`` and
        ``graduate_ok``.
    seekers
        The seeker population with ``home_lon``/``home_lat`` (WGS84 degrees),
        ``education`` and ``experience_years``.
    curated_anchors
        Curated anchors with ``anchor_id``, ``state``, ``size`` (an `EnterpriseSize`
        value or None), ``key_enterprise`` and ``above_scale_industrial``; None when no
        anchor has been curated.

    Returns
    -------
    pandas.DataFrame
        A copy of ``postings`` with ``employer_size_class`` (1 micro .. 4 large, NaN
        unknown), ``key_enterprise`` (1, 0 or NaN), ``employer_active_postings``
        (active postings on the same anchor) and ``competition_seekers`` (count, NaN
        for city-level postings).
    """
    context = postings.copy()
    size_from_text = company_size_classes(context["company_size"])
    curated = _curated_by_posting(context, curated_anchors)

    size_class = curated["size_class"].fillna(size_from_text)
    context["employer_size_class"] = size_class.to_numpy(dtype=np.float64)
    proxy = np.where(
        size_class.isna(), np.nan, (size_class >= SIZE_CLASS_RANK["large"]).astype(float)
    )
    context["key_enterprise"] = curated["key_enterprise"].fillna(
        pd.Series(proxy, index=context.index)
    )
    context["key_enterprise"] = context["key_enterprise"].astype(np.float64)

    counts = context.groupby("anchor_id")["anchor_id"].transform("size")
    context["employer_active_postings"] = counts.to_numpy(dtype=np.float64)
    context["competition_seekers"] = competition_counts(context, seekers)
    return context


def company_size_classes(texts: pd.Series) -> pd.Series:
    """Class company-size texts into 1 micro .. 4 large (float, NaN when not understood)."""
    headcount = texts.fillna("").astype(str).map(company_headcount)
    classes = np.select(
        [
            headcount.isna(),
            headcount < SMALL_FROM_EMPLOYEES,
            headcount < MEDIUM_FROM_EMPLOYEES,
            headcount < LARGE_FROM_EMPLOYEES,
        ],
        [np.nan, 1.0, 2.0, 3.0],
        default=4.0,
    )
    return pd.Series(classes, index=texts.index, dtype=np.float64)


def company_headcount(text: str) -> float:
    """Return a representative headcount for a company-size text, NaN when not understood.

    ``"150-500人"`` gives 325 (the middle), ``"10000人以上"`` 10000, ``"少于50人"`` 49.
    """
    if match := _BAND.search(text):
        return (float(match.group(1)) + float(match.group(2))) / 2.0
    if match := _AT_LEAST.search(text):
        return float(match.group(1))
    if match := _BELOW.search(text):
        bound = match.group(1) or match.group(2)
        return max(float(bound) - 1.0, 0.0)
    return float("nan")


def competition_counts(
    postings: pd.DataFrame, seekers: pd.DataFrame, reach_m: float = COMPETITION_REACH_M
) -> FloatArray:
    """Count seekers within ``reach_m`` metres of each posting who pass its hard requirements.

    Returns NaN for city-level postings and postings without a point. See the module
    notes for the rule.
    """
    counts = np.full(len(postings), np.nan)
    located = (postings["precision"].astype(str).to_numpy() != Precision.CITY.value) & np.isfinite(
        postings["lat"].to_numpy(dtype=np.float64)
    )
    if not located.any() or seekers.empty:
        return np.where(located, 0.0, np.nan) if seekers.empty else counts

    required_education = np.clip(postings["education"].fillna(-1).to_numpy(dtype=np.int64), 0, None)
    graduate_ok = postings["graduate_ok"].fillna(False).to_numpy(dtype=bool)
    min_years = postings["experience_min_years"].to_numpy(dtype=np.float64)
    required_years = np.where(graduate_ok | np.isnan(min_years), 0.0, min_years)

    homes = np.radians(seekers[["home_lat", "home_lon"]].to_numpy(dtype=np.float64))
    education = seekers["education"].to_numpy(dtype=np.int64)
    experience = seekers["experience_years"].to_numpy(dtype=np.float64)
    points = np.radians(postings[["lat", "lon"]].to_numpy(dtype=np.float64))
    radius = reach_m / EARTH_RADIUS_M

    requirements = pd.DataFrame({"education": required_education, "years": required_years})
    for (level, years), rows in (
        requirements[located].groupby(["education", "years"]).groups.items()
    ):
        eligible = (education >= level) & (experience >= years)
        positions = requirements.index.get_indexer(rows)
        if not eligible.any():
            counts[positions] = 0.0
            continue
        tree = BallTree(homes[eligible], metric="haversine")
        counts[positions] = tree.query_radius(points[positions], r=radius, count_only=True)
    return counts


def _curated_by_posting(
    postings: pd.DataFrame, curated_anchors: pd.DataFrame | None
) -> pd.DataFrame:
    """Return per posting the curated size class and key flag, NaN where not curated."""
    empty = pd.DataFrame(
        {"size_class": np.nan, "key_enterprise": np.nan}, index=postings.index, dtype=np.float64
    )
    if curated_anchors is None or curated_anchors.empty:
        return empty
    anchors = curated_anchors.loc[curated_anchors["state"].astype(str).isin(CURATED_STATES)]
    size_rank: Mapping[str, int] = SIZE_CLASS_RANK
    by_anchor = pd.DataFrame(
        {
            "size_class": anchors["size"].map(lambda value: size_rank.get(str(value), np.nan)),
            "key_enterprise": (
                anchors["key_enterprise"].astype(bool)
                | anchors["above_scale_industrial"].astype(bool)
            ).astype(np.float64),
        }
    ).set_index(anchors["anchor_id"].to_numpy())
    joined = by_anchor.reindex(postings["anchor_id"].to_numpy())
    joined.index = postings.index
    return joined.astype(np.float64)
