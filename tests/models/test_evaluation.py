"""Evaluation against the three baselines, overall, per group and per commute band."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from models.evaluation import (
    BASELINES,
    GROUPS,
    UNKNOWN_DISTANCE_DECAY,
    commute_band,
    evaluate,
    gauss_decay,
    report_rows,
    score_baselines,
    with_unshown,
)
from models.ranker import split_chronologically
from tests.models.synthetic import SyntheticTrainingData


@pytest.fixture(scope="module")
def test_period(training_data: SyntheticTrainingData) -> pd.DataFrame:
    return split_chronologically(training_data.frame).test


@pytest.mark.parametrize(
    ("distance_m", "expected"),
    [(0.0, 1.0), (1_000.0, 1.0), (6_000.0, 0.5), (11_000.0, 0.0625), (np.nan, 0.17)],
)
def test_gauss_decay_values(distance_m: float, expected: float) -> None:
    assert gauss_decay(np.array([distance_m]))[0] == pytest.approx(expected)


def test_unknown_distance_decay_matches_9_km() -> None:
    assert gauss_decay(np.array([9_000.0]))[0] == pytest.approx(UNKNOWN_DISTANCE_DECAY, abs=0.005)


def test_commute_bands_bounds() -> None:
    minutes = pd.Series([0.0, 14.9, 15.0, 29.9, 30.0, 45.0, 120.0, np.nan])
    assert list(commute_band(minutes)) == [
        "0-15",
        "0-15",
        "15-30",
        "15-30",
        "30-45",
        "45+",
        "45+",
        "unknown",
    ]


def test_distance_baseline_ranks_nearest_first() -> None:
    frame = pd.DataFrame(
        {
            "distance_m": [5_000.0, np.nan, 100.0],
            "text_relevance": [0.5, 1.0, 0.5],
            "baseline_score": [0.1, 0.2, 0.3],
        }
    )
    scored = score_baselines(frame)

    assert list(scored["distance"].rank(ascending=False, na_option="bottom")) == [2.0, 3.0, 1.0]
    assert scored["gauss_text"].iloc[2] == pytest.approx(0.5)
    assert scored["gauss_text"].iloc[1] == pytest.approx(UNKNOWN_DISTANCE_DECAY)


def test_perfect_model_meets_goal(test_period: pd.DataFrame) -> None:
    report = evaluate(test_period, test_period["label_if_examined"].to_numpy(dtype=np.float64))

    assert report.overall.metrics["model"].ndcg_at_10 == pytest.approx(1.0)
    assert report.overall.ndcg_ratio > 1.10
    assert report.goal_met


def test_baseline_as_model_misses_goal(test_period: pd.DataFrame) -> None:
    report = evaluate(test_period, test_period["baseline_score"].to_numpy())

    assert report.overall.ndcg_ratio <= 1.0 + 1e-12
    assert not report.goal_met


def test_metrics_read_label_if_examined(test_period: pd.DataFrame) -> None:
    # Scoring by the logged label is perfect only where the seeker looked, so it must
    # fall short of 1.0 against the examination-free label.
    report = evaluate(test_period, test_period["label"].to_numpy(dtype=np.float64))

    assert report.to_dict()["label_column"] == "label_if_examined"
    assert report.overall.metrics["model"].ndcg_at_10 < 0.9


def test_report_segments_complete(test_period: pd.DataFrame) -> None:
    report = evaluate(test_period, np.zeros(len(test_period)))

    assert [group.segment for group in report.groups] == list(GROUPS)
    assert [band.segment for band in report.commute_bands][:4] == ["0-15", "15-30", "30-45", "45+"]
    assert set(report.overall.metrics) == {"model", *BASELINES}
    group_queries = sum(group.metrics["model"].n_queries for group in report.groups)
    assert group_queries == report.overall.metrics["model"].n_queries


def test_report_json_without_nan(test_period: pd.DataFrame) -> None:
    only_talent = test_period[test_period["group"] == "talent"]
    report = evaluate(only_talent, only_talent["label_if_examined"].to_numpy(dtype=np.float64))
    text = json.dumps(report.to_dict(), allow_nan=False)
    body = json.loads(text)

    assert body["simulated"] is True
    assert "simulated" in body["labels"]
    graduate = next(group for group in body["groups"] if group["segment"] == "graduate")
    assert graduate["ndcg_ratio"] is None
    assert graduate["goal_met"] is False
    # A group with no queries does not count against the goal.
    assert body["goal_met"] is True


def test_report_rows_one_per_scorer(test_period: pd.DataFrame) -> None:
    report = evaluate(test_period, np.zeros(len(test_period)))
    rows = report_rows(report)
    segments = 1 + len(report.groups) + len(report.commute_bands)

    assert len(rows) == segments * (1 + len(BASELINES))
    assert not math.isnan(rows[0]["ndcg_at_10"])


def _pool_rows(test_period: pd.DataFrame) -> pd.DataFrame:
    """Five unshown rows per test query: copies of its last rows with position 0 and new ids."""
    tail = test_period.groupby("query_id", sort=False).tail(5).copy()
    tail["position"] = np.int16(0)
    tail["label"] = np.int8(0)
    tail["posting_id"] = tail["posting_id"] + "-unshown"
    return tail.iloc[::-1]  # scrambled order: with_unshown must regroup them


def test_with_unshown_appends_pool_after_page(test_period: pd.DataFrame) -> None:
    unshown = _pool_rows(test_period)
    other_period = unshown.assign(query_id="someone@2000-01-01")
    pool = with_unshown(test_period, pd.concat([unshown, other_period]))

    assert len(pool) == len(test_period) + len(unshown)
    assert list(pd.unique(pool["query_id"])) == list(pd.unique(test_period["query_id"]))
    for _, rows in pool.groupby("query_id", sort=False):
        shown = rows["position"].to_numpy() > 0
        assert shown.sum() == 20
        assert (~shown).sum() == 5
        assert shown[:20].all()  # the page first, in its order
    assert with_unshown(test_period, None).equals(test_period.reset_index(drop=True))


def test_pool_recall_counts_unshown_hits(test_period: pd.DataFrame) -> None:
    unshown = _pool_rows(test_period)
    unshown["label_if_examined"] = np.int8(4)  # every unshown row would have been a hire
    pool = with_unshown(test_period, unshown)
    relevant_first = pool["label_if_examined"].to_numpy(dtype=np.float64)
    shown_first = (pool["position"].to_numpy() > 0).astype(np.float64)

    good = evaluate(pool, relevant_first).overall.metrics["model"].recall_at_20
    page_bound = evaluate(pool, shown_first).overall.metrics["model"].recall_at_20

    assert good == pytest.approx(1.0)
    assert page_bound < 1.0
