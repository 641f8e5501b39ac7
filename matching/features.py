"""Ranking features of (seeker, posting) pairs, vectorised over many pairs at once.

`FEATURES` lists every feature with its unit, meaning and source columns, in model
order; `build_features` computes them as float32, NaN where a value is unknown.
``docs/features.md`` has the same table with the rules behind each value. The
ranker is trained on simulated interaction labels (see `models.simulation`), so the
features' weights in a trained model reflect the simulation, not real seekers.

Left out because the data has no such field: headcount (招聘人数) of a posting. No
posting set in the data folder records it, so there is no headcount feature.
"""

import logging
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from matching.candidates import MODE_SPEEDS_KMH, StraightLineCommute, parse_modes
from matching.posting_context import CONTEXT_COLUMNS
from matching.scoring import SALARY_WIDTH_FLOOR, seeker_keywords
from matching.text_similarity import keyword_title_similarity

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FeatureSpec:
    """One ranking feature: its column name, unit, one-line meaning and source columns."""

    name: str
    unit: str
    meaning: str
    sources: tuple[str, ...]


_P = "posting."
_S = "seeker."
_C = "candidate."

FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        "commute_fastest_min",
        "minutes",
        "estimated one-way commute by the fastest allowed mode; NaN for city-level postings",
        (_C + "estimated_commute_min", _C + "distance_m", _S + "modes"),
    ),
    FeatureSpec(
        "commute_walk_min",
        "minutes",
        "estimated commute on foot; NaN when walking is not one of the seeker's modes",
        (_C + "distance_m", _S + "modes"),
    ),
    FeatureSpec(
        "commute_bike_min",
        "minutes",
        "estimated commute by bicycle; NaN when not allowed",
        (_C + "distance_m", _S + "modes"),
    ),
    FeatureSpec(
        "commute_transit_min",
        "minutes",
        "estimated commute by public transport; NaN when not allowed",
        (_C + "distance_m", _S + "modes"),
    ),
    FeatureSpec(
        "commute_drive_min",
        "minutes",
        "estimated commute by car; NaN when not allowed",
        (_C + "distance_m", _S + "modes"),
    ),
    FeatureSpec(
        "commute_share_of_limit",
        "ratio",
        "commute_fastest_min divided by the seeker's commute limit",
        (_C + "estimated_commute_min", _S + "max_commute_min"),
    ),
    FeatureSpec(
        "straight_line_m",
        "metres",
        "straight-line distance, widened by the location's uncertainty",
        (_C + "distance_m",),
    ),
    FeatureSpec(
        "location_precision_rank",
        "rank 0..6",
        "0 city, 1 district, 2 zone, 3 business area, 4 building, 5 POI, 6 exact",
        (_P + "precision",),
    ),
    FeatureSpec(
        "location_uncertainty_m",
        "metres",
        "radius within which an approximate workplace lies (0 for exact points)",
        (_P + "uncertainty_m",),
    ),
    FeatureSpec(
        "occupation_same_major",
        "0/1",
        "posting occupation shares the wish's 大类; NaN when the posting's code is unknown",
        (_P + "occupation_code", _S + "occupation_wish_code"),
    ),
    FeatureSpec(
        "occupation_same_middle",
        "0/1",
        "shares the 中类",
        (_P + "occupation_code", _S + "occupation_wish_code"),
    ),
    FeatureSpec(
        "occupation_same_minor",
        "0/1",
        "shares the 小类",
        (_P + "occupation_code", _S + "occupation_wish_code"),
    ),
    FeatureSpec(
        "occupation_same_unit",
        "0/1",
        "same 细类 (level-4 occupation)",
        (_P + "occupation_code", _S + "occupation_wish_code"),
    ),
    FeatureSpec(
        "occupation_confidence",
        "0..1",
        "title classifier's score for the posting's occupation code",
        (_P + "occupation_score",),
    ),
    FeatureSpec(
        "title_similarity",
        "0..1",
        "best character 1-2-gram Dice of one wish keyword with the title",
        (_P + "title", _S + "keywords", _S + "occupation_wish_name"),
    ),
    FeatureSpec(
        "keyword_containment",
        "0..1",
        "best share of one wish keyword's character pairs found in the title",
        (_P + "title", _S + "keywords", _S + "occupation_wish_name"),
    ),
    FeatureSpec(
        "education_shortfall_levels",
        "levels",
        "levels the seeker's education is below the requirement, 0 when met",
        (_P + "education", _S + "education"),
    ),
    FeatureSpec(
        "education_surplus_levels",
        "levels",
        "levels above the requirement; NaN for no or unknown requirement",
        (_P + "education", _S + "education"),
    ),
    FeatureSpec(
        "experience_shortfall_years",
        "years",
        "years of experience missing to the posting's minimum, 0 when met",
        (_P + "experience_min_years", _S + "experience_years"),
    ),
    FeatureSpec(
        "experience_surplus_years",
        "years",
        "years above the posting's maximum, 0 when within; NaN when open-ended",
        (_P + "experience_max_years", _S + "experience_years"),
    ),
    FeatureSpec(
        "graduate_ok",
        "0/1",
        "the posting takes fresh graduates (应届, no experience needed, internship)",
        (_P + "graduate_ok",),
    ),
    FeatureSpec(
        "salary_fit",
        "0..1",
        "reach of the top pay into the wish range; NaN when either is unknown",
        (
            _P + "salary_min_month",
            _P + "salary_max_month",
            _S + "salary_wish_min",
            _S + "salary_wish_max",
        ),
    ),
    FeatureSpec(
        "salary_ratio_top",
        "ratio",
        "posting's top monthly pay divided by the seeker's lowest acceptable pay",
        (_P + "salary_max_month", _S + "salary_wish_min"),
    ),
    FeatureSpec(
        "salary_mid_month",
        "yuan/month",
        "middle of the posting's monthly pay range",
        (_P + "salary_min_month", _P + "salary_max_month"),
    ),
    FeatureSpec(
        "employer_size_class",
        "class 1..4",
        "1 micro, 2 small, 3 medium, 4 large; curated anchor size, else company-size text",
        (_P + "employer_size_class",),
    ),
    FeatureSpec(
        "key_enterprise",
        "0/1",
        "curated key or above-scale enterprise flag, else large size as a proxy",
        (_P + "key_enterprise",),
    ),
    FeatureSpec(
        "employer_active_postings",
        "postings",
        "active postings on the same employer anchor",
        (_P + "employer_active_postings",),
    ),
    FeatureSpec(
        "posting_age_days",
        "days",
        "days from the posting's publication date to the query date",
        (_P + "published_on", _C + "query_time"),
    ),
    FeatureSpec(
        "competition_seekers",
        "seekers",
        "store seekers within a 30-minute transit reach who pass the hard requirements",
        (_P + "competition_seekers",),
    ),
    FeatureSpec(
        "traineeship_post",
        "0/1",
        "title or categories mention 见习 or 实习, or an internship schedule",
        (_P + "title", _P + "categories", _P + "experience_text"),
    ),
    FeatureSpec(
        "public_welfare_post",
        "0/1",
        "title or categories mention 公益性岗位 or 公益岗",
        (_P + "title", _P + "categories"),
    ),
    FeatureSpec(
        "talent_post",
        "0/1",
        "title or categories mention 人才引进, 高层次人才 or 博士后",
        (_P + "title", _P + "categories"),
    ),
    FeatureSpec(
        "group_policy_fit",
        "0/1",
        "traineeship for graduate, public-welfare post for assistance, talent post for talent",
        (_P + "title", _S + "group"),
    ),
    FeatureSpec("seeker_is_graduate", "0/1", "seeker group is 高校毕业生", (_S + "group",)),
    FeatureSpec("seeker_is_talent", "0/1", "seeker group is 高层次人才", (_S + "group",)),
    FeatureSpec("seeker_is_assistance", "0/1", "seeker group is 就业援助对象", (_S + "group",)),
    FeatureSpec(
        "seeker_max_commute_min",
        "minutes",
        "the seeker's one-way commute limit",
        (_S + "max_commute_min",),
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(spec.name for spec in FEATURES)

PRECISION_RANK: dict[str, int] = {
    "city": 0,
    "district": 1,
    "zone": 2,
    "business_area": 3,
    "building": 4,
    "poi": 5,
    "exact": 6,
}

# Group-policy post rules: words searched in the title and the categories.
TRAINEESHIP_WORDS = ("见习", "实习")
PUBLIC_WELFARE_WORDS = ("公益性岗位", "公益岗")
TALENT_WORDS = ("人才引进", "高层次人才", "博士后")
# BOSS internships state a schedule instead of experience, e.g. "4天/周3个月".
_INTERNSHIP_SCHEDULE = re.compile(r"\d+天/周")

_SEEKER_COLUMNS = (
    "seeker_id",
    "group",
    "education",
    "experience_years",
    "occupation_wish_code",
    "occupation_wish_name",
    "keywords",
    "salary_wish_min",
    "salary_wish_max",
    "max_commute_min",
    "modes",
)


def build_features(
    seeker_rows: pd.DataFrame,
    candidates: pd.DataFrame,
    *,
    as_of: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Compute `FEATURE_NAMES` for (seeker, posting) pairs.

    Parameters
    ----------
    seeker_rows
        Seekers (see `matching.seeker_simulation`), one row each, with the columns
        of ``_SEEKER_COLUMNS``.
    candidates
        One row per pair: posting columns (see `matching.postings`) with
        ``distance_m`` (metres, NaN for city level) and optionally
        ``estimated_commute_min``, ``uncertainty_m``, the context columns of
        `matching.posting_context.attach_posting_context` and ``query_time``. A
        ``seeker_id`` column links each pair to ``seeker_rows``; it may be absent
        when ``seeker_rows`` has one row.
    as_of
        Date the posting age is measured at. When None, ``candidates["query_time"]``
        is used if present, else today's date.

    Returns
    -------
    pandas.DataFrame
        One float32 column per name in `FEATURE_NAMES`, in that order, index aligned
        with ``candidates``. Absent optional columns give NaN features.

    Raises
    ------
    ValueError
        When a pair's seeker is missing from ``seeker_rows`` or a seeker column is
        missing.
    """
    pairs = _seeker_columns_per_pair(seeker_rows, candidates)
    values: dict[str, FloatArray] = {}
    values.update(_commute_features(pairs, candidates))
    values.update(_occupation_features(pairs, candidates))
    values.update(_text_features(pairs, candidates))
    values.update(_requirement_features(pairs, candidates))
    values.update(_salary_features(pairs, candidates))
    values.update(_posting_features(candidates, as_of))
    values.update(_group_features(pairs, candidates))

    frame = pd.DataFrame({name: values[name] for name in FEATURE_NAMES}, index=candidates.index)
    return frame.astype(np.float32)


def _seeker_columns_per_pair(seeker_rows: pd.DataFrame, candidates: pd.DataFrame) -> pd.DataFrame:
    """Return the seeker columns repeated for each candidate pair, index as ``candidates``."""
    missing = [column for column in _SEEKER_COLUMNS if column not in seeker_rows.columns]
    if missing:
        raise ValueError(f"seeker_rows lacks columns {missing}; expected {list(_SEEKER_COLUMNS)}")
    seekers = seeker_rows.loc[:, list(_SEEKER_COLUMNS)].drop_duplicates("seeker_id")
    seekers = seekers.set_index("seeker_id", drop=False)

    if "seeker_id" in candidates.columns:
        ids = candidates["seeker_id"].astype(str)
    elif len(seekers) == 1:
        ids = pd.Series(str(seekers.index[0]), index=candidates.index)
    else:
        raise ValueError(
            "candidates has no seeker_id column and seeker_rows has "
            f"{len(seekers)} seekers; add seeker_id to link each pair"
        )
    unknown = set(ids.unique()) - set(seekers.index.astype(str))
    if unknown:
        raise ValueError(f"{len(unknown)} seeker_id values of candidates are not in seeker_rows")

    positions = seekers.index.astype(str).get_indexer(pd.Index(ids))
    pairs = seekers.iloc[positions].reset_index(drop=True)
    pairs.index = candidates.index
    return pairs


def _column(frame: pd.DataFrame, name: str) -> FloatArray:
    """Return a column as float64, NaN everywhere when it is absent."""
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)


def _flag(mask: npt.NDArray[np.bool_]) -> FloatArray:
    return mask.astype(np.float64)


def _commute_features(pairs: pd.DataFrame, candidates: pd.DataFrame) -> dict[str, FloatArray]:
    distance = _column(candidates, "distance_m")
    estimator = StraightLineCommute()
    allowed_by_seeker = {
        modes: set(parse_modes(modes or "transit")) for modes in pairs["modes"].astype(str).unique()
    }
    modes = pairs["modes"].astype(str)

    per_mode: dict[str, FloatArray] = {}
    for mode in ("walk", "bike", "transit", "drive"):
        allowed = modes.map(lambda value, m=mode: m in allowed_by_seeker[value]).to_numpy(
            dtype=bool
        )
        per_mode[mode] = np.where(allowed, estimator.minutes(distance, mode), np.nan)

    if "estimated_commute_min" in candidates.columns:
        commute = _column(candidates, "estimated_commute_min")
    else:
        stacked = np.vstack([per_mode[mode] for mode in MODE_SPEEDS_KMH if mode in per_mode])
        commute = np.full(len(distance), np.nan)
        finite = np.isfinite(stacked).any(axis=0)
        commute[finite] = np.nanmin(stacked[:, finite], axis=0)

    limit = pairs["max_commute_min"].to_numpy(dtype=np.float64)
    precision = candidates["precision"].astype(str).map(PRECISION_RANK)
    return {
        "commute_fastest_min": commute,
        "commute_walk_min": per_mode["walk"],
        "commute_bike_min": per_mode["bike"],
        "commute_transit_min": per_mode["transit"],
        "commute_drive_min": per_mode["drive"],
        "commute_share_of_limit": np.divide(
            commute, limit, out=np.full(len(commute), np.nan), where=limit > 0
        ),
        "straight_line_m": distance,
        "location_precision_rank": precision.to_numpy(dtype=np.float64),
        "location_uncertainty_m": _column(candidates, "uncertainty_m"),
    }


def _occupation_features(pairs: pd.DataFrame, candidates: pd.DataFrame) -> dict[str, FloatArray]:
    """Match the CSCO 2022 code parts ``D-DD-DD-DD`` level by level; ``00`` ends a code."""
    wish = pairs["occupation_wish_code"].fillna("").astype(str).str.strip()
    posting = candidates["occupation_code"].fillna("").astype(str).str.strip()
    known = (posting.str.len() == 10) & (wish.str.len() == 10)

    same = known.to_numpy(dtype=bool)
    result: dict[str, FloatArray] = {}
    for name, start, stop in (
        ("occupation_same_major", 0, 1),
        ("occupation_same_middle", 2, 4),
        ("occupation_same_minor", 5, 7),
        ("occupation_same_unit", 8, 10),
    ):
        wish_part = wish.str.slice(start, stop).to_numpy(dtype=object)
        posting_part = posting.str.slice(start, stop).to_numpy(dtype=object)
        same = same & (wish_part == posting_part) & (posting_part != "00")
        result[name] = np.where(known, _flag(same), np.nan)
    result["occupation_confidence"] = _column(candidates, "occupation_score")
    return result


def _text_features(pairs: pd.DataFrame, candidates: pd.DataFrame) -> dict[str, FloatArray]:
    seekers = pairs.drop_duplicates("seeker_id").set_index("seeker_id")
    keywords_by_seeker = {
        str(seeker_id): tuple(seeker_keywords(row)) for seeker_id, row in seekers.iterrows()
    }
    keyword_lists = pairs["seeker_id"].astype(str).map(keywords_by_seeker)
    dice, containment = keyword_title_similarity(keyword_lists, candidates["title"])
    return {"title_similarity": dice, "keyword_containment": containment}


def _requirement_features(pairs: pd.DataFrame, candidates: pd.DataFrame) -> dict[str, FloatArray]:
    required = _column(candidates, "education")
    level = pairs["education"].to_numpy(dtype=np.float64)
    unknown = np.isnan(required) | (required < 0)
    shortfall = np.where(unknown, np.nan, np.clip(required - level, 0.0, None))
    surplus = np.where(unknown | (required == 0), np.nan, np.clip(level - required, 0.0, None))

    years = pairs["experience_years"].to_numpy(dtype=np.float64)
    min_years = _column(candidates, "experience_min_years")
    max_years = _column(candidates, "experience_max_years")
    graduate_ok = (
        candidates["graduate_ok"].fillna(False).to_numpy(dtype=bool)
        if "graduate_ok" in candidates
        else np.zeros(len(candidates), bool)
    )
    return {
        "education_shortfall_levels": shortfall,
        "education_surplus_levels": surplus,
        "experience_shortfall_years": np.clip(min_years - years, 0.0, None),
        "experience_surplus_years": np.clip(years - max_years, 0.0, None),
        "graduate_ok": _flag(graduate_ok),
    }


def _salary_features(pairs: pd.DataFrame, candidates: pd.DataFrame) -> dict[str, FloatArray]:
    """Pay in yuan/month; a posting with one bound uses it for both ends."""
    low = _column(candidates, "salary_min_month")
    high = _column(candidates, "salary_max_month")
    low, high = np.where(np.isnan(low), high, low), np.where(np.isnan(high), low, high)
    wish_low = pairs["salary_wish_min"].to_numpy(dtype=np.float64)
    wish_high = pairs["salary_wish_max"].to_numpy(dtype=np.float64)
    wish_low, wish_high = (
        np.where(np.isnan(wish_low), wish_high, wish_low),
        np.where(np.isnan(wish_high), wish_low, wish_high),
    )

    width = np.maximum(wish_high - wish_low, SALARY_WIDTH_FLOOR)
    fit = np.clip((high - wish_low) / width, 0.0, 1.0)
    ratio = np.divide(high, wish_low, out=np.full(len(high), np.nan), where=wish_low > 0)
    return {
        "salary_fit": fit,
        "salary_ratio_top": ratio,
        "salary_mid_month": (low + high) / 2.0,
    }


def _posting_features(
    candidates: pd.DataFrame, as_of: pd.Timestamp | None
) -> dict[str, FloatArray]:
    published = pd.to_datetime(candidates["published_on"], errors="coerce", format="%Y-%m-%d")
    if as_of is not None:
        reference = pd.Series(pd.Timestamp(as_of).normalize(), index=candidates.index)
    elif "query_time" in candidates.columns:
        reference = pd.to_datetime(candidates["query_time"]).dt.normalize()
    else:
        reference = pd.Series(pd.Timestamp.now().normalize(), index=candidates.index)
    age: FloatArray = np.asarray((reference - published).dt.days, dtype=np.float64)

    result: dict[str, FloatArray] = {name: _column(candidates, name) for name in CONTEXT_COLUMNS}
    result["posting_age_days"] = age
    return result


def policy_post_flags(
    candidates: pd.DataFrame,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Return the traineeship, public-welfare and talent-introduction flags of postings.

    The word rules are `TRAINEESHIP_WORDS` (or an internship schedule such as
    ``4天/周``), `PUBLIC_WELFARE_WORDS` and `TALENT_WORDS`, matched in the title and
    the categories.
    """
    text = candidates["title"].fillna("").astype(str)
    if "categories" in candidates.columns:
        text = text + " " + candidates["categories"].fillna("").astype(str)
    experience_text = (
        candidates["experience_text"].fillna("").astype(str)
        if "experience_text" in candidates
        else pd.Series("", index=candidates.index)
    )

    traineeship = _mentions(text, TRAINEESHIP_WORDS) | experience_text.str.contains(
        _INTERNSHIP_SCHEDULE
    ).to_numpy(dtype=bool)
    welfare = _mentions(text, PUBLIC_WELFARE_WORDS)
    talent_post = _mentions(text, TALENT_WORDS)
    return traineeship, welfare, talent_post


def _group_features(pairs: pd.DataFrame, candidates: pd.DataFrame) -> dict[str, FloatArray]:
    traineeship, welfare, talent_post = policy_post_flags(candidates)
    group = pairs["group"].astype(str).to_numpy()
    is_graduate, is_talent, is_assistance = (
        group == "graduate",
        group == "talent",
        group == "assistance",
    )
    fit = (traineeship & is_graduate) | (welfare & is_assistance) | (talent_post & is_talent)
    return {
        "traineeship_post": _flag(traineeship),
        "public_welfare_post": _flag(welfare),
        "talent_post": _flag(talent_post),
        "group_policy_fit": _flag(fit),
        "seeker_is_graduate": _flag(is_graduate),
        "seeker_is_talent": _flag(is_talent),
        "seeker_is_assistance": _flag(is_assistance),
        "seeker_max_commute_min": pairs["max_commute_min"].to_numpy(dtype=np.float64),
    }


def _mentions(text: pd.Series, words: tuple[str, ...]) -> npt.NDArray[np.bool_]:
    pattern = "|".join(re.escape(word) for word in words)
    return text.str.contains(pattern, regex=True).to_numpy(dtype=bool)
