"""Reasons shown beside each recommended posting, in Chinese (default) or English.

Straight-line distances are always given as 约 ("about"): they are great-circle
metres, not route lengths. A city-level posting gets no distance reason at all,
because its point only stands for "somewhere in Xi'an". Postings located by a
business area, development zone or district get a reason saying that the
location is an estimate.
"""

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from geo.location import APPROXIMATE_PRECISIONS, Precision
from matching.education import EducationLevel
from matching.scoring import (
    character_bigrams,
    confident_occupation_codes,
    seeker_keywords,
    shared_occupation_levels,
)

logger = logging.getLogger(__name__)

# A title sharing at least this share of one keyword's bigrams gets a keyword reason.
KEYWORD_REASON_THRESHOLD = 0.5

_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "distance_m": "距您约{value}米",
        "distance_km": "距您约{value}公里",
        "commute": "预计通勤约{value}分钟",
        "business_area": "位置为商圈级估计",
        "zone": "位置为开发区级估计",
        "district": "位置为区县级估计",
        "city": "位置仅知在西安",
        "occupation_4": "职业与您的求职意向相符",
        "occupation_3": "职业小类相同",
        "occupation_2": "职业中类相同",
        "occupation_1": "职业大类相同",
        "keyword": "职位名称与您的关键词相近",
        "education_met": "学历要求相符",
        "education_none": "学历不限",
        "education_above": "学历要求高于您的学历",
        "salary_in": "薪资在您期望范围内",
        "salary_below": "薪资低于您的期望",
        "salary_above": "薪资高于您的期望",
        "salary_unknown": "薪资面议",
        "graduate": "招聘应届毕业生",
    },
    "en": {
        "distance_m": "About {value} m from you",
        "distance_km": "About {value} km from you",
        "commute": "Estimated commute about {value} min",
        "business_area": "Location estimated at business-area level",
        "zone": "Location estimated at development-zone level",
        "district": "Location estimated at district level",
        "city": "Location known only as Xi'an",
        "occupation_4": "Occupation matches your job wish",
        "occupation_3": "Same occupation minor group",
        "occupation_2": "Same occupation sub-major group",
        "occupation_1": "Same occupation major group",
        "keyword": "Job title is close to your keywords",
        "education_met": "Education requirement met",
        "education_none": "No education requirement",
        "education_above": "Education requirement above yours",
        "salary_in": "Salary within your expected range",
        "salary_below": "Salary below your expectation",
        "salary_above": "Salary above your expectation",
        "salary_unknown": "Salary negotiable",
        "graduate": "Open to new graduates",
    },
}


def format_distance(distance_m: float, lang: str = "zh", *, approximate: bool = False) -> str:
    """Format a straight-line distance in metres as a reason, always with 约.

    Below 1 km the distance is rounded to the nearest 50 m, so 640 m gives 约650米.
    From 1 km on it is given in km with one decimal, so 2,300 m gives 约2.3公里.
    An ``approximate`` location (an area, not a point) is given in whole km, at
    least 1, so its distance does not look exact.
    """
    text = _texts(lang)
    if approximate:
        return text["distance_km"].format(value=max(1, round(distance_m / 1000.0)))
    rounded_m = int(round(distance_m / 50.0) * 50)
    if rounded_m < 1000:
        return text["distance_m"].format(value=rounded_m)
    return text["distance_km"].format(value=f"{distance_m / 1000.0:.1f}")


def explain(
    row: Mapping[str, Any] | pd.Series, seeker: Mapping[str, Any] | pd.Series, lang: str = "zh"
) -> list[str]:
    """Return the reasons for one posting row, for one seeker.

    Parameters
    ----------
    row
        A posting row as returned by `matching.candidates.JobIndex.for_commute`:
        ``precision``, ``distance_m`` (metres, NaN when unknown), optionally
        ``estimated_commute_min``, ``occupation_code``, ``title``, ``education``,
        ``salary_min_month``/``salary_max_month`` (yuan/month) and ``graduate_ok``.
    seeker
        A seeker row (see `matching.seeker_simulation`).
    lang
        ``"zh"`` (default) or ``"en"``.
    """
    frame = pd.DataFrame([dict(row)])
    return list(explain_frame(frame, seeker, lang)["reasons"].iloc[0])


def explain_frame(
    df: pd.DataFrame, seeker: Mapping[str, Any] | pd.Series, lang: str = "zh"
) -> pd.DataFrame:
    """Return a copy of ``df`` with a ``reasons`` column (list of str per posting).

    The reason order is location, commute, occupation, keyword, education, salary,
    graduate. See `explain` for the columns read.
    """
    text = _texts(lang)
    parts = [
        _distance_reasons(df, text, lang),
        _precision_reasons(df, text),
        _commute_reasons(df, text),
        _occupation_reasons(df, seeker, text),
        _keyword_reasons(df, seeker, text),
        _education_reasons(df, seeker, text),
        _salary_reasons(df, seeker, text),
        _graduate_reasons(df, seeker, text),
    ]
    explained = df.copy()
    explained["reasons"] = [
        [reason for reason in reasons if reason] for reasons in zip(*parts, strict=True)
    ]
    return explained


def _texts(lang: str) -> dict[str, str]:
    if lang not in _TEXT:
        raise ValueError(f"language {lang!r} is not supported; expected 'zh' or 'en'")
    return _TEXT[lang]


def _column(df: pd.DataFrame, name: str, default: object) -> pd.Series:
    if name in df.columns:
        return df[name]
    return pd.Series([default] * len(df), index=df.index, dtype=object)


def _distance_reasons(df: pd.DataFrame, text: dict[str, str], lang: str) -> list[str | None]:
    distances = _column(df, "distance_m", math.nan).to_numpy(dtype=np.float64)
    precisions = _column(df, "precision", "").astype(str).to_numpy()
    approximate = np.isin(precisions, [p.value for p in APPROXIMATE_PRECISIONS])
    is_city = precisions == Precision.CITY.value
    return [
        None
        if city or math.isnan(distance)
        else format_distance(distance, lang, approximate=bool(rough))
        for distance, city, rough in zip(distances, is_city, approximate, strict=True)
    ]


def _precision_reasons(df: pd.DataFrame, text: dict[str, str]) -> list[str | None]:
    precisions = _column(df, "precision", "").astype(str)
    return [text.get(precision) for precision in precisions]


def _commute_reasons(df: pd.DataFrame, text: dict[str, str]) -> list[str | None]:
    # Minutes to an area's stand-in point would look exact, so only points get them.
    minutes = _column(df, "estimated_commute_min", math.nan).to_numpy(dtype=np.float64)
    precisions = _column(df, "precision", "").astype(str)
    is_area = precisions.isin([p.value for p in APPROXIMATE_PRECISIONS]).to_numpy()
    return [
        None if area or math.isnan(value) else text["commute"].format(value=max(1, round(value)))
        for value, area in zip(minutes, is_area, strict=True)
    ]


def _occupation_reasons(
    df: pd.DataFrame, seeker: Mapping[str, Any] | pd.Series, text: dict[str, str]
) -> list[str | None]:
    wish = str(seeker.get("occupation_wish_code") or "")
    if "occupation_code" not in df.columns:
        return [None] * len(df)
    codes = confident_occupation_codes(df)
    by_code: dict[str, str | None] = {}
    for code in codes.unique():
        levels = shared_occupation_levels(wish, code)
        # Sharing only the major group is too weak to state as a reason.
        by_code[code] = text[f"occupation_{levels}"] if levels >= 2 else None
    return [by_code[code] for code in codes]


def _keyword_reasons(
    df: pd.DataFrame, seeker: Mapping[str, Any] | pd.Series, text: dict[str, str]
) -> list[str | None]:
    keyword_grams = [grams for grams in map(character_bigrams, seeker_keywords(seeker)) if grams]
    titles = _column(df, "title", "").fillna("").astype(str)
    reasons: list[str | None] = []
    for title in titles:
        title_grams = character_bigrams(title)
        best = max((len(grams & title_grams) / len(grams) for grams in keyword_grams), default=0.0)
        reasons.append(text["keyword"] if best >= KEYWORD_REASON_THRESHOLD else None)
    return reasons


def _education_reasons(
    df: pd.DataFrame, seeker: Mapping[str, Any] | pd.Series, text: dict[str, str]
) -> list[str | None]:
    seeker_level = int(seeker.get("education", EducationLevel.ANY))
    required = _column(df, "education", -1).fillna(-1).to_numpy(dtype=np.int64)
    return [_education_reason(int(level), seeker_level, text) for level in required]


def _education_reason(required: int, seeker_level: int, text: dict[str, str]) -> str | None:
    if required < 0:
        return None
    if required == EducationLevel.ANY:
        return text["education_none"]
    return text["education_met"] if required <= seeker_level else text["education_above"]


def _salary_reasons(
    df: pd.DataFrame, seeker: Mapping[str, Any] | pd.Series, text: dict[str, str]
) -> list[str | None]:
    low = _column(df, "salary_min_month", math.nan).to_numpy(dtype=np.float64)
    high = _column(df, "salary_max_month", math.nan).to_numpy(dtype=np.float64)
    low, high = np.where(np.isnan(low), high, low), np.where(np.isnan(high), low, high)
    wish_low = _seeker_float(seeker, "salary_wish_min")
    wish_high = _seeker_float(seeker, "salary_wish_max")

    unknown = np.isnan(high)
    if math.isnan(wish_low) or math.isnan(wish_high):
        return [text["salary_unknown"] if flag else None for flag in unknown]
    reasons: list[str | None] = []
    for pay_low, pay_high in zip(low, high, strict=True):
        if math.isnan(pay_high):
            reasons.append(text["salary_unknown"])
        elif pay_high < wish_low:
            reasons.append(text["salary_below"])
        elif pay_low > wish_high:
            reasons.append(text["salary_above"])
        else:
            reasons.append(text["salary_in"])
    return reasons


def _graduate_reasons(
    df: pd.DataFrame, seeker: Mapping[str, Any] | pd.Series, text: dict[str, str]
) -> list[str | None]:
    if seeker.get("group") != "graduate":
        return [None] * len(df)
    graduate_ok = _column(df, "graduate_ok", False).fillna(False).astype(bool)
    return [text["graduate"] if flag else None for flag in graduate_ok]


def _seeker_float(seeker: Mapping[str, Any] | pd.Series, key: str) -> float:
    value = seeker.get(key)
    return math.nan if value is None else float(value)
