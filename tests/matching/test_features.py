"""Tests of the ranking features on hand-made seekers and postings, value and unit each."""

import math

import numpy as np
import pandas as pd
import pytest

from matching.features import FEATURE_NAMES, FEATURES, build_features
from matching.posting_context import (
    attach_posting_context,
    company_headcount,
    company_size_classes,
    competition_counts,
)
from matching.text_similarity import keyword_title_similarity

SEEKER = {
    "seeker_id": "sim-000001",
    "group": "graduate",
    "education": 4,
    "experience_years": 1.0,
    "occupation_wish_code": "2-02-10-03",
    "occupation_wish_name": "计算机软件工程技术人员",
    "keywords": "Java开发",
    "salary_wish_min": 6000.0,
    "salary_wish_max": 8000.0,
    "max_commute_min": 40,
    "modes": "walk;transit",
}

POSTING = {
    "posting_id": "p1",
    "title": "Java开发",
    "categories": "计算机软件",
    "experience_text": "1-3年",
    "precision": "district",
    "uncertainty_m": 1800.0,
    "distance_m": 5000.0,
    "occupation_code": "2-02-10-03",
    "occupation_score": 0.8,
    "education": 3,
    "experience_min_years": 3.0,
    "experience_max_years": 5.0,
    "graduate_ok": False,
    "salary_min_month": 7000.0,
    "salary_max_month": 9000.0,
    "published_on": "2018-09-20",
    "employer_size_class": 3.0,
    "key_enterprise": 0.0,
    "employer_active_postings": 12.0,
    "competition_seekers": 340.0,
}

AS_OF = pd.Timestamp("2018-09-27")


def _features(seeker: dict[str, object] | None = None, **posting: object) -> pd.Series:
    seekers = pd.DataFrame([SEEKER | (seeker or {})])
    candidates = pd.DataFrame([POSTING | posting])
    return build_features(seekers, candidates, as_of=AS_OF).iloc[0]


def test_feature_names_match_specs() -> None:
    assert tuple(spec.name for spec in FEATURES) == FEATURE_NAMES
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert all(spec.unit and spec.meaning and spec.sources for spec in FEATURES)


def test_frame_contract() -> None:
    frame = build_features(pd.DataFrame([SEEKER]), pd.DataFrame([POSTING, POSTING]), as_of=AS_OF)
    assert tuple(frame.columns) == FEATURE_NAMES
    assert set(frame.dtypes) == {np.dtype(np.float32)}
    assert len(frame) == 2


# (feature, expected value) on the default seeker and posting; units in FEATURES.
EXPECTED = {
    # 5,000 m x 1.4 detour at 15 km/h (250 m/min) = 28 minutes.
    "commute_fastest_min": 28.0,
    "commute_walk_min": 5000 * 1.4 / 80.0,  # 4.8 km/h = 80 m/min
    "commute_transit_min": 28.0,
    "commute_share_of_limit": 28.0 / 40.0,
    "straight_line_m": 5000.0,
    "location_precision_rank": 1.0,
    "location_uncertainty_m": 1800.0,
    "occupation_same_major": 1.0,
    "occupation_same_middle": 1.0,
    "occupation_same_minor": 1.0,
    "occupation_same_unit": 1.0,
    "occupation_confidence": 0.8,
    "keyword_containment": 1.0,
    "education_shortfall_levels": 0.0,
    "education_surplus_levels": 1.0,
    "experience_shortfall_years": 2.0,
    "experience_surplus_years": 0.0,
    "graduate_ok": 0.0,
    "salary_fit": 1.0,
    "salary_ratio_top": 9000.0 / 6000.0,
    "salary_mid_month": 8000.0,
    "employer_size_class": 3.0,
    "key_enterprise": 0.0,
    "employer_active_postings": 12.0,
    "posting_age_days": 7.0,
    "competition_seekers": 340.0,
    "traineeship_post": 0.0,
    "public_welfare_post": 0.0,
    "talent_post": 0.0,
    "group_policy_fit": 0.0,
    "seeker_is_graduate": 1.0,
    "seeker_is_talent": 0.0,
    "seeker_is_assistance": 0.0,
    "seeker_max_commute_min": 40.0,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_feature_value(name: str) -> None:
    assert _features()[name] == pytest.approx(EXPECTED[name], rel=1e-5)


def test_modes_not_allowed_are_nan() -> None:
    row = _features()
    assert math.isnan(row["commute_bike_min"])
    assert math.isnan(row["commute_drive_min"])


def test_commute_from_distance_when_absent() -> None:
    seekers = pd.DataFrame([SEEKER | {"modes": "walk;bike"}])
    candidates = pd.DataFrame([POSTING]).drop(columns=["uncertainty_m"])
    row = build_features(seekers, candidates, as_of=AS_OF).iloc[0]
    assert row["commute_fastest_min"] == pytest.approx(5000 * 1.4 / 200.0)  # 12 km/h
    assert math.isnan(row["location_uncertainty_m"])


def test_title_similarity_dice() -> None:
    # Keywords: "Java开发" and the wish name; title "Java工程师".
    # Java开发 grams: j,a,v,a,开,发 -> {j,a,v,开,发} + {ja,av,va,a开,开发} = 10
    # Java工程师 grams: {j,a,v,工,程,师} + {ja,av,va,a工,工程,程师} = 12
    # Shared: {j,a,v,ja,av,va} = 6
    row = _features(title="Java工程师")
    assert row["title_similarity"] == pytest.approx(2 * 6 / (10 + 12))
    assert row["keyword_containment"] == pytest.approx(3 / 5)


def test_title_similarity_best_keyword() -> None:
    dice, containment = keyword_title_similarity(
        pd.Series([("会计", "出纳"), ()], dtype=object), pd.Series(["出纳", "出纳"])
    )
    assert dice.tolist() == [1.0, 0.0]
    assert containment.tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("code", "levels"),
    [
        ("2-02-10-04", (1, 1, 1, 0)),
        ("2-02-13-01", (1, 1, 0, 0)),
        ("2-05-01-01", (1, 0, 0, 0)),
        ("4-03-02-05", (0, 0, 0, 0)),
        ("2-02-10-00", (1, 1, 1, 0)),
    ],
)
def test_occupation_levels(code: str, levels: tuple[int, int, int, int]) -> None:
    row = _features(occupation_code=code)
    names = ("major", "middle", "minor", "unit")
    assert tuple(int(row[f"occupation_same_{name}"]) for name in names) == levels


def test_occupation_unknown_is_nan() -> None:
    assert math.isnan(_features(occupation_code="")["occupation_same_major"])


def test_education_unknown_and_any() -> None:
    unknown = _features(education=-1)
    assert math.isnan(unknown["education_shortfall_levels"])
    any_level = _features(education=0)
    assert any_level["education_shortfall_levels"] == 0.0
    assert math.isnan(any_level["education_surplus_levels"])
    short = _features(education=6)
    assert short["education_shortfall_levels"] == 2.0


def test_open_ended_experience() -> None:
    row = _features(experience_max_years=float("nan"), experience_min_years=0.0)
    assert math.isnan(row["experience_surplus_years"])
    assert row["experience_shortfall_years"] == 0.0


def test_salary_unknown_is_nan() -> None:
    row = _features(salary_min_month=float("nan"), salary_max_month=float("nan"))
    assert math.isnan(row["salary_fit"])
    assert math.isnan(row["salary_mid_month"])


def test_salary_one_bound() -> None:
    row = _features(salary_min_month=float("nan"), salary_max_month=6500.0)
    assert row["salary_fit"] == pytest.approx(500 / 2000)
    assert row["salary_mid_month"] == 6500.0


@pytest.mark.parametrize(
    ("group", "posting", "flag"),
    [
        ("graduate", {"title": "行政见习生"}, "traineeship_post"),
        ("graduate", {"experience_text": "4天/周3个月"}, "traineeship_post"),
        ("assistance", {"title": "社区公益性岗位保洁员"}, "public_welfare_post"),
        ("talent", {"categories": "高层次人才引进"}, "talent_post"),
    ],
)
def test_group_policy_fit(group: str, posting: dict[str, object], flag: str) -> None:
    row = _features({"group": group}, **posting)
    assert row[flag] == 1.0
    assert row["group_policy_fit"] == 1.0
    other = _features({"group": "general"}, **posting)
    assert other["group_policy_fit"] == 0.0


def test_city_level_posting() -> None:
    row = _features(precision="city", distance_m=float("nan"), uncertainty_m=float("nan"))
    assert row["location_precision_rank"] == 0.0
    assert math.isnan(row["commute_fastest_min"])
    assert math.isnan(row["straight_line_m"])


def test_missing_context_columns_give_nan() -> None:
    candidates = pd.DataFrame([POSTING]).drop(columns=["competition_seekers", "key_enterprise"])
    row = build_features(pd.DataFrame([SEEKER]), candidates, as_of=AS_OF).iloc[0]
    assert math.isnan(row["competition_seekers"])
    assert math.isnan(row["key_enterprise"])


def test_pairs_link_seekers() -> None:
    other = SEEKER | {"seeker_id": "sim-000002", "group": "talent", "max_commute_min": 60}
    candidates = pd.DataFrame(
        [POSTING | {"seeker_id": "sim-000002"}, POSTING | {"seeker_id": "sim-000001"}]
    )
    frame = build_features(pd.DataFrame([SEEKER, other]), candidates, as_of=AS_OF)
    assert frame["seeker_max_commute_min"].tolist() == [60.0, 40.0]
    assert frame["seeker_is_talent"].tolist() == [1.0, 0.0]


def test_unknown_seeker_raises() -> None:
    candidates = pd.DataFrame([POSTING | {"seeker_id": "sim-999999"}])
    with pytest.raises(ValueError, match="not in seeker_rows"):
        build_features(pd.DataFrame([SEEKER]), candidates, as_of=AS_OF)


def test_missing_seeker_column_raises() -> None:
    with pytest.raises(ValueError, match="modes"):
        build_features(pd.DataFrame([SEEKER]).drop(columns=["modes"]), pd.DataFrame([POSTING]))


@pytest.mark.parametrize(
    ("text", "headcount", "size_class"),
    [
        ("150-500人", 325.0, 3.0),
        ("10000人以上", 10000.0, 4.0),
        ("少于50人", 49.0, 2.0),
        ("0-20人", 10.0, 1.0),
        ("", float("nan"), float("nan")),
    ],
)
def test_company_size(text: str, headcount: float, size_class: float) -> None:
    assert company_headcount(text) == pytest.approx(headcount, nan_ok=True)
    classes = company_size_classes(pd.Series([text]))
    assert classes.iloc[0] == pytest.approx(size_class, nan_ok=True)


def _context_postings() -> pd.DataFrame:
    base = {
        "company_size": "",
        "education": 4,
        "experience_min_years": 0.0,
        "graduate_ok": True,
        "lon": 108.95,
        "lat": 34.25,
        "precision": "poi",
    }
    return pd.DataFrame(
        [
            base | {"posting_id": "a", "anchor_id": "x", "company_size": "10000人以上"},
            base | {"posting_id": "b", "anchor_id": "x", "education": 6},
            base | {"posting_id": "c", "anchor_id": "y", "precision": "city"},
        ]
    )


def _context_seekers() -> pd.DataFrame:
    # Two at the posting, one about 11 km north (0.1 degree of latitude), out of reach.
    return pd.DataFrame(
        {
            "home_lon": [108.95, 108.951, 108.95],
            "home_lat": [34.25, 34.25, 34.35],
            "education": [4, 6, 6],
            "experience_years": [0.0, 3.0, 3.0],
        }
    )


def test_competition_counts() -> None:
    counts = competition_counts(_context_postings(), _context_seekers())
    assert counts[0] == 2.0  # both nearby seekers meet 本科
    assert counts[1] == 1.0  # only the doctor meets 博士
    assert math.isnan(counts[2])  # city level


def test_attach_context() -> None:
    curated = pd.DataFrame(
        [
            {
                "anchor_id": "y",
                "state": "verified",
                "size": "small",
                "key_enterprise": True,
                "above_scale_industrial": False,
            }
        ]
    )
    context = attach_posting_context(_context_postings(), _context_seekers(), curated)
    assert context["employer_size_class"].tolist()[0] == 4.0  # from text
    assert math.isnan(context["employer_size_class"].tolist()[1])
    assert context["employer_size_class"].tolist()[2] == 2.0  # curated
    assert context["key_enterprise"].tolist()[0] == 1.0  # large-size proxy
    assert context["key_enterprise"].tolist()[2] == 1.0  # curated flag
    assert context["employer_active_postings"].tolist() == [2.0, 2.0, 1.0]
