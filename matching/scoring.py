r"""Transparent baseline score of candidate postings for one seeker.

The score is a weighted sum of six components, each in 0..1:

.. math::

    s = w_d S_d + w_o S_o + w_k S_k + w_e S_e + w_s S_s + w_p S_p,
    \qquad \sum w = 1

with the weights `WEIGHT_DISTANCE` (0.30), `WEIGHT_OCCUPATION` (0.25),
`WEIGHT_KEYWORD` (0.10), `WEIGHT_EDUCATION` (0.15), `WEIGHT_SALARY` (0.12) and
`WEIGHT_PRECISION` (0.08). The components are:

- ``S_d = exp(-t / TAU_MIN)``, where ``t`` is the estimated one-way commute in minutes
  and ``TAU_MIN`` = 20. A posting without a distance (city level) gets
  `UNKNOWN_DISTANCE_SCORE`.
- ``S_o``: 1.0 for the same level-4 occupation code as the seeker's wish, 0.7 for the
  same 小类 (level 3), 0.4 for the same 中类, 0.05 for the same 大类, 0 otherwise and
  0.2 when the posting's occupation is unknown or its classifier score is below
  `MIN_OCCUPATION_CONFIDENCE`.
- ``S_k``: the best share of one wish keyword's character bigrams found in the posting
  title (containment, 0..1).
- ``S_e``: 1 when the seeker's education meets the requirement or there is none, 0.3
  one level below, 0 two or more below, 0.7 when the requirement is unknown.
- ``S_s``: ``clip((pay_max - wish_min) / max(wish_max - wish_min, SALARY_WIDTH_FLOOR),
  0, 1)``, i.e. how far the posting's top pay reaches into the wish range, 0.5 when
  either side is unknown (面议).
- ``S_p``: location precision, 1.0 exact/poi/building, 0.85 business area, 0.7 zone,
  0.6 district, 0.3 city.

All weights and levels are hand-set for this baseline, not fitted; the learned
ranker replaces them.
"""

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from matching.candidates import StraightLineCommute, parse_modes
from matching.occupation import hierarchy

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

WEIGHT_DISTANCE = 0.30
WEIGHT_OCCUPATION = 0.25
WEIGHT_KEYWORD = 0.10
WEIGHT_EDUCATION = 0.15
WEIGHT_SALARY = 0.12
WEIGHT_PRECISION = 0.08

WEIGHTS: dict[str, float] = {
    "score_distance": WEIGHT_DISTANCE,
    "score_occupation": WEIGHT_OCCUPATION,
    "score_keyword": WEIGHT_KEYWORD,
    "score_education": WEIGHT_EDUCATION,
    "score_salary": WEIGHT_SALARY,
    "score_precision": WEIGHT_PRECISION,
}

TAU_MIN = 20.0
# exp(-32/20) is about 0.2: a posting "somewhere in Xi'an" counts like a 30-minute trip.
UNKNOWN_DISTANCE_SCORE = 0.2

# Score by the number of leading occupation levels shared (0 = none .. 4 = same code).
# Sharing only the major group (大类, 8 in all) is weak evidence, so it scores near a mismatch.
OCCUPATION_SCORE_BY_SHARED_LEVELS = (0.0, 0.05, 0.4, 0.7, 1.0)

# A posting's occupation code counts only when the title classifier's score reaches
# this; below it the occupation is treated as unknown. On the 5,891 labelled titles of
# the occupation test set, codes scoring >= 0.5 cover 66 % of titles and are right to
# the 中类 for 68 % (59 % over all titles).
MIN_OCCUPATION_CONFIDENCE = 0.5
UNKNOWN_OCCUPATION_SCORE = 0.2

EDUCATION_ONE_BELOW_SCORE = 0.3
UNKNOWN_EDUCATION_SCORE = 0.7

UNKNOWN_SALARY_SCORE = 0.5
# Yuan/month; keeps a one-point wish (min == max) from turning the score into a step.
SALARY_WIDTH_FLOOR = 1000.0

PRECISION_SCORES: dict[str, float] = {
    "exact": 1.0,
    "poi": 1.0,
    "building": 1.0,
    "business_area": 0.85,
    "zone": 0.7,
    "district": 0.6,
    "city": 0.3,
}


def score_jobs(seeker: Mapping[str, Any] | pd.Series, candidates: pd.DataFrame) -> pd.DataFrame:
    """Score candidate postings for one seeker with the baseline formula.

    Parameters
    ----------
    seeker
        A seeker row (see `matching.seeker_simulation`): ``education`` (int
        EducationLevel), ``occupation_wish_code``, ``occupation_wish_name``,
        ``keywords`` (``;``-joined), ``salary_wish_min``/``salary_wish_max``
        (yuan/month) and ``modes`` (used only when ``estimated_commute_min`` is absent).
    candidates
        Postings frame with ``distance_m`` (metres, NaN when unknown) or
        ``estimated_commute_min``, plus ``occupation_code``, ``title``, ``education``,
        ``salary_min_month``, ``salary_max_month`` and ``precision``.

    Returns
    -------
    pandas.DataFrame
        A copy of ``candidates`` with ``score`` (0..1) and the six ``score_*``
        component columns, sorted by ``score`` descending.
    """
    scored = candidates.copy()
    scored["score_distance"] = distance_scores(_commute_minutes(seeker, candidates))
    scored["score_occupation"] = occupation_scores(
        str(seeker.get("occupation_wish_code") or ""), confident_occupation_codes(candidates)
    )
    scored["score_keyword"] = keyword_scores(seeker_keywords(seeker), candidates["title"])
    scored["score_education"] = education_scores(
        int(seeker.get("education", 0)), candidates["education"]
    )
    scored["score_salary"] = salary_scores(
        _as_float(seeker.get("salary_wish_min")),
        _as_float(seeker.get("salary_wish_max")),
        candidates["salary_min_month"],
        candidates["salary_max_month"],
    )
    scored["score_precision"] = precision_scores(candidates["precision"])

    total = np.zeros(len(scored), dtype=np.float64)
    for column, weight in WEIGHTS.items():
        total += weight * scored[column].to_numpy(dtype=np.float64)
    scored["score"] = np.clip(total, 0.0, 1.0)
    return scored.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def distance_scores(commute_min: FloatArray) -> FloatArray:
    """Return ``exp(-commute_min / TAU_MIN)``, `UNKNOWN_DISTANCE_SCORE` where NaN."""
    minutes = np.asarray(commute_min, dtype=np.float64)
    decay = np.exp(-np.clip(minutes, 0.0, None) / TAU_MIN)
    return np.where(np.isnan(minutes), UNKNOWN_DISTANCE_SCORE, decay)


def shared_occupation_levels(wish_code: str, posting_code: str) -> int:
    """Count the leading levels (0..4) two CSCO 2022 codes share, e.g. 3 for one 小类.

    A code above level 4 (``2-02-10-00``) shares at most its own depth.
    """
    if not wish_code or not posting_code:
        return 0
    shared = 0
    for wish_level, posting_level in zip(
        hierarchy(wish_code), hierarchy(posting_code), strict=False
    ):
        if wish_level != posting_level:
            break
        shared += 1
    return shared


def confident_occupation_codes(postings: pd.DataFrame) -> pd.Series:
    """Return each posting's occupation code, or "" where the classifier was not confident.

    Postings without an ``occupation_score`` column keep their codes.
    """
    codes = postings["occupation_code"].fillna("").astype(str)
    if "occupation_score" not in postings.columns:
        return codes
    confident = postings["occupation_score"].fillna(0.0) >= MIN_OCCUPATION_CONFIDENCE
    return codes.where(confident, "")


def occupation_scores(wish_code: str, posting_codes: pd.Series) -> FloatArray:
    """Score occupation codes against the seeker's wish code (see the module formula)."""
    codes = posting_codes.fillna("").astype(str)
    by_code: dict[str, float] = {}
    for code in codes.unique():
        if not code or not wish_code:
            by_code[code] = UNKNOWN_OCCUPATION_SCORE
        else:
            levels = shared_occupation_levels(wish_code, code)
            by_code[code] = OCCUPATION_SCORE_BY_SHARED_LEVELS[levels]
    return np.asarray(codes.map(by_code), dtype=np.float64)


def seeker_keywords(seeker: Mapping[str, Any] | pd.Series) -> list[str]:
    """Return the seeker's wish keywords plus the wish occupation name, de-duplicated."""
    raw = str(seeker.get("keywords") or "")
    words = [word.strip() for word in raw.split(";") if word.strip()]
    wish_name = str(seeker.get("occupation_wish_name") or "").strip()
    if wish_name:
        words.append(wish_name)
    return list(dict.fromkeys(words))


def character_bigrams(text: str) -> set[str]:
    """Return the set of adjacent character pairs of ``text`` (its character if only one)."""
    cleaned = "".join(text.lower().split())
    if len(cleaned) < 2:
        return {cleaned} if cleaned else set()
    return {cleaned[i : i + 2] for i in range(len(cleaned) - 1)}


def keyword_scores(keywords: list[str], titles: pd.Series) -> FloatArray:
    """Score titles by the best containment of one keyword's bigrams in the title."""
    keyword_grams = [grams for grams in map(character_bigrams, keywords) if grams]
    texts = titles.fillna("").astype(str)
    if not keyword_grams:
        return np.zeros(len(texts), dtype=np.float64)

    by_title: dict[str, float] = {}
    for title in texts.unique():
        title_grams = character_bigrams(title)
        by_title[title] = max(len(grams & title_grams) / len(grams) for grams in keyword_grams)
    return np.asarray(texts.map(by_title), dtype=np.float64)


def education_scores(seeker_level: int, required: pd.Series) -> FloatArray:
    """Score education requirements (int EducationLevel, -1 unknown) for one seeker."""
    levels = required.fillna(-1).to_numpy(dtype=np.int64)
    gap = levels - seeker_level
    scores = np.select(
        [levels < 0, (levels == 0) | (gap <= 0), gap == 1],
        [UNKNOWN_EDUCATION_SCORE, 1.0, EDUCATION_ONE_BELOW_SCORE],
        default=0.0,
    )
    return scores.astype(np.float64)


def salary_scores(
    wish_min: float, wish_max: float, pay_min: pd.Series, pay_max: pd.Series
) -> FloatArray:
    """Score monthly pay ranges (yuan) against a wish range (yuan/month).

    A posting with only a minimum ("以上") or only a maximum ("以下") uses that one
    value for both ends.
    """
    low = pay_min.to_numpy(dtype=np.float64)
    high = pay_max.to_numpy(dtype=np.float64)
    high = np.where(np.isnan(high), low, high)
    if math.isnan(wish_min) and math.isnan(wish_max):
        return np.full(len(high), UNKNOWN_SALARY_SCORE)
    wish_low = wish_max if math.isnan(wish_min) else wish_min
    wish_high = wish_min if math.isnan(wish_max) else wish_max

    width = max(wish_high - wish_low, SALARY_WIDTH_FLOOR)
    reach = np.clip((high - wish_low) / width, 0.0, 1.0)
    return np.where(np.isnan(high), UNKNOWN_SALARY_SCORE, reach)


def precision_scores(precisions: pd.Series) -> FloatArray:
    """Score location precision names; an unrecognised name raises ValueError."""
    names = precisions.astype(str)
    unknown = set(names.unique()) - PRECISION_SCORES.keys()
    if unknown:
        raise ValueError(
            f"unknown precision {sorted(unknown)!r}; expected one of {sorted(PRECISION_SCORES)}"
        )
    return np.asarray(names.map(PRECISION_SCORES), dtype=np.float64)


def _commute_minutes(seeker: Mapping[str, Any] | pd.Series, candidates: pd.DataFrame) -> FloatArray:
    if "estimated_commute_min" in candidates.columns:
        return np.asarray(candidates["estimated_commute_min"], dtype=np.float64)

    estimator = StraightLineCommute()
    distances = candidates["distance_m"].to_numpy(dtype=np.float64)
    modes = parse_modes(str(seeker.get("modes") or "transit"))
    per_mode = np.vstack([estimator.minutes(distances, mode) for mode in modes])
    return np.asarray(per_mode.min(axis=0), dtype=np.float64)


def _as_float(value: object) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        raise ValueError(f"salary wish {value!r} is not a number of yuan per month") from err
