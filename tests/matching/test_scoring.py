"""Tests of the baseline score and of the reasons shown with each posting."""

import math

import numpy as np
import pandas as pd
import pytest

from matching.explain import explain, explain_frame, format_distance
from matching.scoring import UNKNOWN_OCCUPATION_SCORE, WEIGHTS, score_jobs

SEEKER = {
    "group": "graduate",
    "education": 4,
    "occupation_wish_code": "2-02-10-03",
    "occupation_wish_name": "计算机软件工程技术人员",
    "keywords": "计算机软件工程技术人员;Java开发",
    "salary_wish_min": 6000.0,
    "salary_wish_max": 8000.0,
    "modes": "walk;transit",
}

PERFECT = {
    "posting_id": "perfect",
    "title": "Java开发工程师",
    "precision": "exact",
    "distance_m": 800.0,
    "estimated_commute_min": 5.0,
    "occupation_code": "2-02-10-03",
    "education": 4,
    "salary_min_month": 7000.0,
    "salary_max_month": 9000.0,
    "graduate_ok": True,
}

# One component changed at a time; each must lower the score.
WORSE: dict[str, dict[str, object]] = {
    "score_distance": {"distance_m": 9000.0, "estimated_commute_min": 45.0},
    "score_occupation": {"occupation_code": "4-03-02-05"},
    "score_keyword": {"title": "餐厅服务员"},
    "score_education": {"education": 6},
    "score_salary": {"salary_min_month": 2000.0, "salary_max_month": 3000.0},
    "score_precision": {"precision": "district"},
}


def _frame(*rows: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def test_weights_sum_to_one() -> None:
    assert math.isclose(sum(WEIGHTS.values()), 1.0)


@pytest.mark.parametrize("component", sorted(WORSE))
def test_perfect_beats_mismatch(component: str) -> None:
    worse = PERFECT | WORSE[component] | {"posting_id": "worse"}
    scored = score_jobs(SEEKER, _frame(worse, PERFECT)).set_index("posting_id")
    best = scored.loc["perfect"].to_dict()
    other = scored.loc["worse"].to_dict()

    assert best["score"] > other["score"]
    assert best[component] > other[component]
    for column in [column for column in WEIGHTS if column != component]:
        assert best[column] == other[column], column


def test_score_sorted_and_bounded() -> None:
    rows = [PERFECT | values | {"posting_id": name} for name, values in WORSE.items()]
    scored = score_jobs(SEEKER, _frame(PERFECT, *rows))

    assert scored["score"].between(0.0, 1.0).all()
    assert scored["score"].is_monotonic_decreasing
    assert scored["posting_id"].iloc[0] == "perfect"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("2-02-10-03", 1.0),
        ("2-02-10-01", 0.7),
        ("2-02-07-01", 0.4),
        ("2-06-03-00", 0.05),
        ("4-03-02-05", 0.0),
        ("", 0.2),
    ],
)
def test_occupation_levels(code: str, expected: float) -> None:
    scored = score_jobs(SEEKER, _frame(PERFECT | {"occupation_code": code}))

    assert scored["score_occupation"].iloc[0] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("required", "expected"), [(-1, 0.7), (0, 1.0), (3, 1.0), (4, 1.0), (5, 0.3), (6, 0.0)]
)
def test_education_fit(required: int, expected: float) -> None:
    scored = score_jobs(SEEKER, _frame(PERFECT | {"education": required}))

    assert scored["score_education"].iloc[0] == pytest.approx(expected)


def test_salary_unknown_is_neutral() -> None:
    row = PERFECT | {"salary_min_month": np.nan, "salary_max_month": np.nan}
    scored = score_jobs(SEEKER, _frame(row))

    assert scored["score_salary"].iloc[0] == pytest.approx(0.5)


def test_city_level_distance_is_neutral() -> None:
    row = PERFECT | {"precision": "city", "distance_m": np.nan, "estimated_commute_min": np.nan}
    scored = score_jobs(SEEKER, _frame(row))

    assert scored["score_distance"].iloc[0] == pytest.approx(0.2)
    assert scored["score_precision"].iloc[0] == pytest.approx(0.3)


def test_unknown_precision_rejected() -> None:
    with pytest.raises(ValueError, match="'street'"):
        score_jobs(SEEKER, _frame(PERFECT | {"precision": "street"}))


def test_score_1000_candidates_sorted() -> None:
    rng = np.random.default_rng(3)
    titles = ["Java开发工程师", "餐厅服务员", "销售代表", "会计", "软件测试工程师"]
    frame = pd.DataFrame(
        {
            "posting_id": [f"p{i}" for i in range(1000)],
            "title": [f"{titles[i % 5]}{i}" for i in range(1000)],
            "precision": rng.choice(["exact", "district", "city", "zone"], 1000),
            "distance_m": rng.uniform(0, 20_000, 1000),
            "occupation_code": rng.choice(["2-02-10-03", "4-03-02-05", ""], 1000),
            "education": rng.integers(-1, 7, 1000),
            "salary_min_month": rng.uniform(2000, 9000, 1000),
            "salary_max_month": rng.uniform(9000, 15000, 1000),
        }
    )
    scored = score_jobs(SEEKER, frame)

    assert len(scored) == 1000
    assert scored["score"].between(0.0, 1.0).all()
    assert scored["score"].is_monotonic_decreasing


@pytest.mark.parametrize(
    ("distance", "text"),
    [
        (2300.0, "距您约2.3公里"),
        (640.0, "距您约650米"),
        (990.0, "距您约1.0公里"),
        (0.0, "距您约0米"),
    ],
)
def test_format_distance(distance: float, text: str) -> None:
    assert format_distance(distance) == text


def test_explain_perfect_row_zh() -> None:
    reasons = explain(PERFECT | {"distance_m": 2300.0, "estimated_commute_min": 25.0}, SEEKER)

    assert reasons == [
        "距您约2.3公里",
        "预计通勤约25分钟",
        "职业与您的求职意向相符",
        "职位名称与您的关键词相近",
        "学历要求相符",
        "薪资在您期望范围内",
        "招聘应届毕业生",
    ]


def test_explain_english() -> None:
    reasons = explain(PERFECT | {"distance_m": 640.0, "estimated_commute_min": 25.0}, SEEKER, "en")

    assert reasons[0] == "About 650 m from you"
    assert "Salary within your expected range" in reasons
    assert "Open to new graduates" in reasons


def test_explain_district_precision() -> None:
    reasons = explain(PERFECT | {"precision": "district"}, SEEKER)

    assert "位置为区县级估计" in reasons
    assert reasons[0] == "距您约1公里"
    assert not any(reason.startswith("预计通勤") for reason in reasons)


def test_approximate_distance_whole_km() -> None:
    assert format_distance(640.0, approximate=True) == "距您约1公里"
    assert format_distance(2_600.0, approximate=True) == "距您约3公里"
    assert format_distance(2_600.0) == "距您约2.6公里"


def test_explain_city_level_has_no_distance() -> None:
    row = PERFECT | {"precision": "city", "distance_m": 5000.0, "estimated_commute_min": 20.0}
    reasons = explain(row, SEEKER)

    assert "位置仅知在西安" in reasons
    assert not any(reason.startswith("距您") for reason in reasons)
    assert not any(reason.startswith("预计通勤") for reason in reasons)


@pytest.mark.parametrize(
    ("pay", "text"),
    [
        ((np.nan, np.nan), "薪资面议"),
        ((2000.0, 3000.0), "薪资低于您的期望"),
        ((9000.0, 12000.0), "薪资高于您的期望"),
        ((np.nan, 7000.0), "薪资在您期望范围内"),
    ],
)
def test_explain_salary(pay: tuple[float, float], text: str) -> None:
    row = PERFECT | {"salary_min_month": pay[0], "salary_max_month": pay[1]}

    assert text in explain(row, SEEKER)


def test_explain_education_above_and_broad_occupation() -> None:
    reasons = explain(PERFECT | {"education": 5, "occupation_code": "2-06-03-00"}, SEEKER)

    assert "学历要求高于您的学历" in reasons
    assert "职业大类相同" not in reasons


def test_explain_sub_major_occupation() -> None:
    reasons = explain(PERFECT | {"occupation_code": "2-02-99-00"}, SEEKER)

    assert "职业中类相同" in reasons


def test_unconfident_occupation_is_unknown() -> None:
    confident = PERFECT | {"occupation_score": 0.9}
    unsure = PERFECT | {"occupation_score": 0.3}
    candidates = pd.DataFrame([confident, unsure])

    scored = score_jobs(SEEKER, candidates).sort_values("occupation_score")

    assert scored["score_occupation"].tolist() == [UNKNOWN_OCCUPATION_SCORE, 1.0]
    assert "职业与您的求职意向相符" in explain(confident, SEEKER)
    assert "职业与您的求职意向相符" not in explain(unsure, SEEKER)


def test_explain_graduate_only_for_graduates() -> None:
    reasons = explain(PERFECT, SEEKER | {"group": "general"})

    assert "招聘应届毕业生" not in reasons


def test_explain_frame_adds_reasons_column() -> None:
    frame = _frame(PERFECT, PERFECT | {"posting_id": "b", "precision": "city"})
    explained = explain_frame(frame, SEEKER)

    assert list(explained["posting_id"]) == ["perfect", "b"]
    assert explained["reasons"].iloc[0][0] == "距您约800米"
    assert "位置仅知在西安" in explained["reasons"].iloc[1]


def test_explain_rejects_unknown_language() -> None:
    with pytest.raises(ValueError, match="'fr'"):
        explain(PERFECT, SEEKER, "fr")
