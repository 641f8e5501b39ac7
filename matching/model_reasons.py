"""Reasons from a learned ranker's own feature contributions, in Chinese (default) or English.

The ranker's score of a (seeker, posting) pair is a bias plus one contribution per
feature (exact TreeSHAP values, as LightGBM returns them with ``pred_contrib=True``).
Several features describe one fact, such as the five commute-minute columns and the
straight-line distance, and TreeSHAP splits the credit between correlated features.
So each reason sums the contributions of its group of features (`REASON_FEATURES`).
The reasons of a posting are the groups with the largest positive sums, at most
`MAX_REASONS`. A group whose sum is zero or negative is never stated, and neither is a
group whose values give nothing true to say (a traineeship shown to a seeker who is
not a graduate, a salary below the wish).

Features that describe only the seeker (group flags, commute limit) are the same for
every posting of one request, so they explain no choice between postings and belong
to no reason.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from geo.location import APPROXIMATE_PRECISIONS, Precision
from matching.education import EDUCATION_LABELS_ZH, EducationLevel
from matching.explain import format_distance

MAX_REASONS = 3

# A posting published at most this many days before the service's reference date
# reads as recent.
RECENT_POSTING_DAYS = 30

REASON_FEATURES: dict[str, tuple[str, ...]] = {
    "commute": (
        "commute_fastest_min",
        "commute_walk_min",
        "commute_bike_min",
        "commute_transit_min",
        "commute_drive_min",
        "commute_share_of_limit",
        "straight_line_m",
    ),
    "location": ("location_precision_rank", "location_uncertainty_m"),
    "occupation": (
        "occupation_same_major",
        "occupation_same_middle",
        "occupation_same_minor",
        "occupation_same_unit",
        "occupation_confidence",
    ),
    "keyword": ("title_similarity", "keyword_containment"),
    "education": ("education_shortfall_levels", "education_surplus_levels"),
    "experience": ("experience_shortfall_years", "experience_surplus_years", "graduate_ok"),
    "salary": ("salary_fit", "salary_ratio_top", "salary_mid_month"),
    "employer": ("employer_size_class", "key_enterprise", "employer_active_postings"),
    "recent": ("posting_age_days",),
    "competition": ("competition_seekers",),
    "group_policy": ("traineeship_post", "public_welfare_post", "talent_post", "group_policy_fit"),
}
"""Reason key to the model features whose contributions it sums."""

SEEKER_ONLY_FEATURES: tuple[str, ...] = (
    "seeker_is_graduate",
    "seeker_is_talent",
    "seeker_is_assistance",
    "seeker_max_commute_min",
)
"""Features that are constant within one request and so belong to no reason."""

_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "commute_metro": "地铁约{minutes}分钟可达",
        "commute_bus": "公交约{minutes}分钟可达",
        "commute_transit": "公共交通约{minutes}分钟可达",
        "commute_walk": "步行约{minutes}分钟可达",
        "commute_bike": "骑行约{minutes}分钟可达",
        "commute_drive": "驾车约{minutes}分钟可达",
        "commute_area": "{distance}，通勤较近",
        "location": "工作地点已精确定位",
        "occupation_major": "岗位与您的专业（{major}）相符",
        "occupation_4": "岗位与您的求职意向（{wish}）相符",
        "occupation_3": "岗位与您的求职意向（{wish}）同属一个职业小类",
        "occupation_2": "岗位与您的求职意向（{wish}）同属一个职业中类",
        "keyword": "职位名称与您的求职关键词相近",
        "education_none": "学历不限",
        "education_met": "学历要求（{level}）您已满足",
        "experience_graduate": "招聘应届毕业生",
        "experience_met": "工作经验要求您已满足",
        "salary_in": "薪资在您期望范围内",
        "salary_above": "薪资高于您的期望",
        "employer_key": "重点企业",
        "employer_large": "大型企业",
        "employer_postings": "该单位正在招聘{count}个岗位",
        "recent": "近{days}天内发布",
        "competition": "附近符合条件的求职者较少",
        "policy_graduate": "适合高校毕业生见习",
        "policy_assistance": "公益性岗位，面向就业援助对象",
        "policy_talent": "高层次人才引进岗位",
    },
    "en": {
        "commute_metro": "About {minutes} min by metro",
        "commute_bus": "About {minutes} min by bus",
        "commute_transit": "About {minutes} min by public transport",
        "commute_walk": "About {minutes} min on foot",
        "commute_bike": "About {minutes} min by bike",
        "commute_drive": "About {minutes} min by car",
        "commute_area": "{distance}, a short commute",
        "location": "Workplace location is exact",
        "occupation_major": "Job matches your major ({major})",
        "occupation_4": "Job matches your job wish ({wish})",
        "occupation_3": "Same occupation minor group as your job wish ({wish})",
        "occupation_2": "Same occupation sub-major group as your job wish ({wish})",
        "keyword": "Job title is close to your keywords",
        "education_none": "No education requirement",
        "education_met": "You meet the education requirement ({level})",
        "experience_graduate": "Open to new graduates",
        "experience_met": "You meet the experience requirement",
        "salary_in": "Salary within your expected range",
        "salary_above": "Salary above your expectation",
        "employer_key": "Key enterprise",
        "employer_large": "Large employer",
        "employer_postings": "This employer is hiring for {count} jobs",
        "recent": "Published within {days} days",
        "competition": "Few qualified seekers nearby",
        "policy_graduate": "Traineeship suited to graduates",
        "policy_assistance": "Public-welfare post for assistance targets",
        "policy_talent": "Talent-introduction post",
    },
}

_EDUCATION_LABELS_EN = {
    EducationLevel.ANY: "any",
    EducationLevel.JUNIOR_HIGH: "junior high",
    EducationLevel.SENIOR_HIGH: "senior high",
    EducationLevel.COLLEGE: "college",
    EducationLevel.BACHELOR: "bachelor",
    EducationLevel.MASTER: "master",
    EducationLevel.DOCTOR: "doctorate",
}

# Columns of the ranked rows and of the features that the reason texts read. A text
# function that reads another column finds it missing.
_ROW_COLUMNS = (
    "precision",
    "distance_m",
    "estimated_commute_min",
    "commute_mode",
    "itinerary_kinds",
    "education",
    "salary_min_month",
)
_FEATURE_COLUMNS = (
    "occupation_same_middle",
    "occupation_same_minor",
    "occupation_same_unit",
    "keyword_containment",
    "education_shortfall_levels",
    "graduate_ok",
    "experience_shortfall_years",
    "salary_fit",
    "key_enterprise",
    "employer_size_class",
    "employer_active_postings",
    "posting_age_days",
    "competition_seekers",
    "group_policy_fit",
)

_MODE_TEXT = {"walk": "commute_walk", "bike": "commute_bike", "drive": "commute_drive"}
_LARGE_EMPLOYER_CLASS = 4
_APPROXIMATE = frozenset(precision.value for precision in APPROXIMATE_PRECISIONS)
_EXACT_ENOUGH = frozenset({Precision.EXACT.value, Precision.POI.value, Precision.BUILDING.value})


@dataclass(frozen=True)
class ModelReason:
    """One stated reason: its key in `REASON_FEATURES`, its text and its summed contribution."""

    key: str
    text: str
    contribution: float


def reason_contributions(contributions: pd.DataFrame) -> pd.DataFrame:
    """Sum feature contributions into one column per key of `REASON_FEATURES`.

    Parameters
    ----------
    contributions
        One row per posting and one column per model feature, in score units.
        Missing feature columns count as 0.

    Returns
    -------
    pandas.DataFrame
        Columns in `REASON_FEATURES` order, index as ``contributions``.
    """
    values = np.nan_to_num(contributions.to_numpy(dtype=np.float64), nan=0.0)
    column = {name: j for j, name in enumerate(contributions.columns)}
    sums = np.zeros((len(contributions), len(REASON_FEATURES)), dtype=np.float64)
    # Adding the columns one by one, in group order, is the order pandas' row sum uses.
    for k, features in enumerate(REASON_FEATURES.values()):
        for name in features:
            if name in column:
                sums[:, k] += values[:, column[name]]
    return pd.DataFrame(sums, index=contributions.index, columns=list(REASON_FEATURES))


def model_reasons(
    rows: pd.DataFrame,
    features: pd.DataFrame,
    contributions: pd.DataFrame,
    seeker: Mapping[str, Any] | pd.Series,
    lang: str = "zh",
    *,
    max_reasons: int = MAX_REASONS,
) -> list[list[ModelReason]]:
    """Pick each posting's reasons from its largest positive reason contributions.

    Parameters
    ----------
    rows
        The ranked postings (see `matching.candidates.JobIndex.for_commute`), with
        ``precision``, ``distance_m``, ``estimated_commute_min``, ``commute_mode`` and
        optionally ``itinerary_kinds`` (leg kinds of the trip, e.g. ``("walk",
        "metro", "walk")``).
    features
        The model's features of the same rows (`matching.features.build_features`).
    contributions
        The model's contribution of each feature to each row's score.
    seeker
        The seeker row; ``group``, ``major`` and ``occupation_wish_name`` are read.
    lang
        ``"zh"`` or ``"en"``.
    max_reasons
        Largest number of reasons per posting.

    Returns
    -------
    list of list of ModelReason
        One list per row, largest contribution first.

    Raises
    ------
    ValueError
        When the three frames differ in length or ``lang`` is unsupported.
    """
    if lang not in _TEXT:
        raise ValueError(f"language {lang!r} is not supported; expected 'zh' or 'en'")
    if not len(rows) == len(features) == len(contributions):
        raise ValueError(
            f"rows ({len(rows)}), features ({len(features)}) and contributions "
            f"({len(contributions)}) must have one entry per posting"
        )
    sums = reason_contributions(contributions).to_numpy(dtype=np.float64)
    keys = list(REASON_FEATURES)
    row_records = _records(rows, _ROW_COLUMNS)
    feature_records = _records(features, _FEATURE_COLUMNS)

    result: list[list[ModelReason]] = []
    for position, (row, values) in enumerate(zip(row_records, feature_records, strict=True)):
        chosen: list[ModelReason] = []
        for column in np.argsort(-sums[position], kind="stable"):
            contribution = float(sums[position, column])
            if contribution <= 0 or len(chosen) == max_reasons:
                break
            key = keys[column]
            text = _REASON_TEXT[key](row, values, seeker, _TEXT[lang], lang)
            if text is not None:
                chosen.append(ModelReason(key, text, contribution))
        result.append(chosen)
    return result


def _records(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Return the rows of ``frame`` as dicts of those ``columns`` that it has."""
    present = [column for column in columns if column in frame.columns]
    records: list[dict[str, Any]] = frame.loc[:, present].to_dict("records")  # type: ignore[assignment]
    return records


Row = Mapping[str, Any]
TextFunction = Callable[[Row, Row, Mapping[str, Any] | pd.Series, dict[str, str], str], str | None]


def _minutes(value: object) -> int | None:
    number = _number(value)
    return None if number is None else max(1, round(number))


def _number(value: object) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _commute(row: Row, values: Row, seeker: Any, text: dict[str, str], lang: str) -> str | None:
    precision = str(row.get("precision", ""))
    if precision == Precision.CITY.value:
        return None
    if precision in _APPROXIMATE:
        # An area's stand-in point gives no honest minutes, only a rough distance.
        distance = _number(row.get("distance_m"))
        if distance is None:
            return None
        return text["commute_area"].format(
            distance=format_distance(distance, lang, approximate=True)
        )
    minutes = _minutes(row.get("estimated_commute_min"))
    if minutes is None:
        return None
    mode = str(row.get("commute_mode") or "")
    if mode == "transit":
        kinds = tuple(row.get("itinerary_kinds") or ())
        template = (
            "commute_metro"
            if "metro" in kinds
            else "commute_bus"
            if "bus" in kinds
            else "commute_transit"
        )
    else:
        template = _MODE_TEXT.get(mode, "commute_transit")
    return text[template].format(minutes=minutes)


def _location(row: Row, values: Row, seeker: Any, text: dict[str, str], lang: str) -> str | None:
    return text["location"] if str(row.get("precision", "")) in _EXACT_ENOUGH else None


def _occupation(
    row: Row, values: Row, seeker: Mapping[str, Any] | pd.Series, text: dict[str, str], lang: str
) -> str | None:
    major = str(seeker.get("major") or "")
    wish = str(seeker.get("occupation_wish_name") or "")
    if values.get("occupation_same_middle") == 1 and major and seeker.get("group") == "graduate":
        return text["occupation_major"].format(major=major)
    for level, column in (
        (4, "occupation_same_unit"),
        (3, "occupation_same_minor"),
        (2, "occupation_same_middle"),
    ):
        if values.get(column) == 1:
            return text[f"occupation_{level}"].format(wish=wish)
    # Sharing only the major group, or a confident but different code, is no reason.
    return None


def _keyword(row: Row, values: Row, seeker: Any, text: dict[str, str], lang: str) -> str | None:
    containment = _number(values.get("keyword_containment")) or 0.0
    return text["keyword"] if containment >= 0.5 else None


def _education(row: Row, values: Row, seeker: Any, text: dict[str, str], lang: str) -> str | None:
    required = _number(row.get("education"))
    if required is None or required < 0:
        return None
    if required == EducationLevel.ANY:
        return text["education_none"]
    if (_number(values.get("education_shortfall_levels")) or 0.0) > 0:
        return None
    level = EducationLevel(int(required))
    label = EDUCATION_LABELS_ZH[level] if lang == "zh" else _EDUCATION_LABELS_EN[level]
    return text["education_met"].format(level=label)


def _experience(
    row: Row, values: Row, seeker: Mapping[str, Any] | pd.Series, text: dict[str, str], lang: str
) -> str | None:
    if values.get("graduate_ok") == 1 and seeker.get("group") == "graduate":
        return text["experience_graduate"]
    shortfall = _number(values.get("experience_shortfall_years"))
    return text["experience_met"] if shortfall == 0 else None


def _salary(row: Row, values: Row, seeker: Any, text: dict[str, str], lang: str) -> str | None:
    fit = _number(values.get("salary_fit"))
    if fit is None or fit <= 0:
        return None
    wish_high = _number(seeker.get("salary_wish_max"))
    low = _number(row.get("salary_min_month"))
    if wish_high is not None and low is not None and low > wish_high:
        return text["salary_above"]
    return text["salary_in"]


def _employer(row: Row, values: Row, seeker: Any, text: dict[str, str], lang: str) -> str | None:
    if values.get("key_enterprise") == 1:
        return text["employer_key"]
    if values.get("employer_size_class") == _LARGE_EMPLOYER_CLASS:
        return text["employer_large"]
    count = _number(values.get("employer_active_postings"))
    if count is not None and count >= 2:
        return text["employer_postings"].format(count=int(count))
    return None


def _recent(row: Row, values: Row, seeker: Any, text: dict[str, str], lang: str) -> str | None:
    age = _number(values.get("posting_age_days"))
    if age is None or not 0 <= age <= RECENT_POSTING_DAYS:
        return None
    return text["recent"].format(days=RECENT_POSTING_DAYS)


def _competition(row: Row, values: Row, seeker: Any, text: dict[str, str], lang: str) -> str | None:
    return text["competition"] if _number(values.get("competition_seekers")) is not None else None


def _group_policy(
    row: Row, values: Row, seeker: Mapping[str, Any] | pd.Series, text: dict[str, str], lang: str
) -> str | None:
    if values.get("group_policy_fit") != 1:
        return None
    group = str(seeker.get("group") or "")
    return text.get(f"policy_{group}")


_REASON_TEXT: dict[str, TextFunction] = {
    "commute": _commute,
    "location": _location,
    "occupation": _occupation,
    "keyword": _keyword,
    "education": _education,
    "experience": _experience,
    "salary": _salary,
    "employer": _employer,
    "recent": _recent,
    "competition": _competition,
    "group_policy": _group_policy,
}
