"""Chronological split and LambdaRank training on the synthetic frame."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from models.metrics import ndcg_at_k
from models.ranker import (
    ChronologicalSplit,
    RankerParams,
    SplitError,
    TrainedRanker,
    group_sizes,
    position_debiased_dataset,
    split_chronologically,
    train_ranker,
)
from tests.models.synthetic import SyntheticTrainingData

FAST = RankerParams(n_estimators=120, early_stopping_rounds=15, log_every=10)


@pytest.fixture(scope="module")
def trained(training_data: SyntheticTrainingData) -> TrainedRanker:
    split = split_chronologically(training_data.frame)
    return train_ranker(split, training_data.feature_names, FAST, n_jobs=1)


def test_split_periods_in_time_order(training_data: SyntheticTrainingData) -> None:
    split = split_chronologically(training_data.frame)

    assert split.train["query_time"].max() < split.validation_start
    assert split.validation["query_time"].min() >= split.validation_start
    assert split.validation["query_time"].max() < split.test_start
    assert split.test["query_time"].min() >= split.test_start


def test_split_keeps_every_row_once(training_data: SyntheticTrainingData) -> None:
    split = split_chronologically(training_data.frame)
    parts = [split.train, split.validation, split.test]

    assert sum(len(part) for part in parts) == len(training_data.frame)
    query_sets = [set(part["query_id"]) for part in parts]
    assert not query_sets[0] & query_sets[1]
    assert not query_sets[1] & query_sets[2]
    assert not query_sets[0] & query_sets[2]


def test_split_shares_near_targets(training_data: SyntheticTrainingData) -> None:
    split = split_chronologically(training_data.frame)
    total = training_data.frame["query_id"].nunique()
    described = split.describe()

    # Whole days move, so a share can miss its target by about one day of queries (1/60).
    assert described["train"]["queries"] / total == pytest.approx(0.70, abs=0.04)
    assert described["validation"]["queries"] / total == pytest.approx(0.15, abs=0.04)
    assert described["test"]["queries"] / total == pytest.approx(0.15, abs=0.04)


def test_split_three_days_gives_one_each() -> None:
    frame = pd.DataFrame(
        {
            "query_id": ["a", "b", "c"],
            "query_time": pd.to_datetime(["2018-01-01", "2018-01-02", "2018-01-03"]),
        }
    )
    split = split_chronologically(frame)

    assert list(split.train["query_id"]) == ["a"]
    assert list(split.validation["query_id"]) == ["b"]
    assert list(split.test["query_id"]) == ["c"]


def test_split_two_days_raises() -> None:
    frame = pd.DataFrame(
        {"query_id": ["a", "b"], "query_time": pd.to_datetime(["2018-01-01", "2018-01-02"])}
    )
    with pytest.raises(SplitError, match="span 2 session days"):
        split_chronologically(frame)


def test_split_bad_fractions_raise(training_data: SyntheticTrainingData) -> None:
    with pytest.raises(ValueError, match="split fractions"):
        split_chronologically(training_data.frame, (0.5, 0.5, 0.5))


def test_group_sizes_counts_runs() -> None:
    frame = pd.DataFrame({"query_id": ["a", "a", "b", "c", "c", "c"]})
    assert list(group_sizes(frame)) == [2, 1, 3]


def test_group_sizes_rejects_split_query() -> None:
    frame = pd.DataFrame({"query_id": ["a", "b", "a"]})
    with pytest.raises(ValueError, match="not contiguous"):
        group_sizes(frame)


def test_training_stops_early(trained: TrainedRanker) -> None:
    assert 1 <= trained.best_iteration < FAST.n_estimators
    assert 0.0 < trained.validation_ndcg_at_10 <= 1.0


def test_training_is_deterministic(
    training_data: SyntheticTrainingData, trained: TrainedRanker
) -> None:
    split = split_chronologically(training_data.frame)
    again = train_ranker(split, training_data.feature_names, FAST, n_jobs=1)

    assert again.best_iteration == trained.best_iteration
    assert again.booster.model_to_string() == trained.booster.model_to_string()


def test_model_beats_baseline_on_test(
    training_data: SyntheticTrainingData, trained: TrainedRanker
) -> None:
    test = split_chronologically(training_data.frame).test
    scored = test.assign(model=trained.predict(test), label=test["label_if_examined"])

    model = ndcg_at_k(scored, "model", 10)
    baseline = ndcg_at_k(scored, "baseline_score", 10)
    assert model > baseline


def test_progress_reports_rounds(training_data: SyntheticTrainingData) -> None:
    calls: list[tuple[str, int, int]] = []
    split = split_chronologically(training_data.frame)
    train_ranker(
        split,
        training_data.feature_names,
        RankerParams(n_estimators=20, early_stopping_rounds=20, log_every=5),
        n_jobs=1,
        progress=lambda stage, done, total: calls.append((stage, done, total)),
    )

    assert calls[0] == ("rounds", 5, 20)
    assert calls[-1] == ("rounds", 20, 20)


def test_predict_uses_feature_order(
    training_data: SyntheticTrainingData, trained: TrainedRanker
) -> None:
    rows = training_data.frame.head(50)
    shuffled = rows[list(reversed(rows.columns))]
    np.testing.assert_allclose(trained.predict(shuffled), trained.predict(rows))


def test_dataset_carries_positions(training_data: SyntheticTrainingData) -> None:
    frame = training_data.frame.head(200)
    dataset = position_debiased_dataset(frame, list(training_data.feature_names)).construct()

    np.testing.assert_array_equal(dataset.get_position(), frame["position"].to_numpy() - 1)
    np.testing.assert_array_equal(dataset.get_label(), frame["label"].to_numpy())


def test_dataset_rejects_position_zero(training_data: SyntheticTrainingData) -> None:
    frame = training_data.frame.head(40).assign(position=0)
    with pytest.raises(ValueError, match="1-based position"):
        position_debiased_dataset(frame, list(training_data.feature_names))


def test_validation_ignores_logged_label(
    training_data: SyntheticTrainingData, trained: TrainedRanker
) -> None:
    split = split_chronologically(training_data.frame)
    # If validation read "label", these reversed labels would stop training at once.
    reversed_labels = 4 - split.validation["label_if_examined"]
    changed = replace(split, validation=split.validation.assign(label=reversed_labels))
    again = train_ranker(changed, training_data.feature_names, FAST, n_jobs=1)

    assert trained.best_iteration > 5
    assert again.booster.model_to_string() == trained.booster.model_to_string()


def _decoy_split(n_queries: int = 600, page: int = 20, seed: int = 7) -> ChronologicalSplit:
    """Queries whose logged order follows ``decoy`` while relevance follows only ``signal``."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n_queries, page))
    decoy = rng.normal(size=(n_queries, page))
    position = np.argsort(np.argsort(-decoy, axis=1), axis=1) + 1
    relevant = (signal + rng.normal(0.0, 0.5, size=signal.shape) > 1.0).astype(np.int8)
    examined = rng.random(signal.shape) < 1.0 / position

    day = np.datetime64("2018-09-01") + (np.arange(n_queries) * 30 // n_queries).astype(
        "timedelta64[D]"
    )
    frame = pd.DataFrame(
        {
            "query_id": np.repeat([f"q{i:04d}" for i in range(n_queries)], page),
            "query_time": np.repeat(day, page).astype("datetime64[ns]"),
            "position": position.ravel(),
            "label": (relevant * examined).ravel(),
            "label_if_examined": relevant.ravel(),
            "signal": signal.ravel(),
            "decoy": decoy.ravel(),
        }
    )
    return split_chronologically(frame)


def test_positions_debias_training() -> None:
    split = _decoy_split()
    params = RankerParams(n_estimators=100, early_stopping_rounds=20)
    # One position for every row gives LightGBM no position to blame, as if none were passed.
    flat = replace(split, train=split.train.assign(position=1))

    debiased = train_ranker(split, ("signal", "decoy"), params, n_jobs=1)
    biased = train_ranker(flat, ("signal", "decoy"), params, n_jobs=1)

    test = split.test
    debiased_decoy = spearmanr(debiased.predict(test), test["decoy"]).statistic
    biased_decoy = spearmanr(biased.predict(test), test["decoy"]).statistic
    # The decoy only sets the logged position, so a debiased model leans on it less.
    assert biased_decoy > 0.15
    assert debiased_decoy < biased_decoy - 0.1
    assert spearmanr(debiased.predict(test), test["signal"]).statistic > 0.8
