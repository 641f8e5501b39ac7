"""Tests of the training-data frame built from the real store (labels simulated)."""

import numpy as np
import pandas as pd
import pytest

from matching.features import FEATURE_NAMES
from models.dataset import TrainingData, build_training_data
from models.ranker import split_chronologically
from store.sqlite import SqliteStore

LEADING = (
    "query_id",
    "seeker_id",
    "posting_id",
    "group",
    "query_time",
    "position",
    "label",
    "label_if_examined",
)
TRAILING = ("baseline_score", "distance_m", "commute_min", "text_relevance")


@pytest.fixture(scope="module")
def training(full_store: SqliteStore) -> TrainingData:
    return build_training_data(full_store, n_seekers=40, seed=5, progress=False)


def test_column_order(training: TrainingData) -> None:
    assert tuple(training.frame.columns) == LEADING + FEATURE_NAMES + TRAILING
    assert training.feature_names == FEATURE_NAMES


def test_column_dtypes(training: TrainingData) -> None:
    dtypes = training.frame.dtypes
    assert dtypes["label"] == np.int8
    assert dtypes["label_if_examined"] == np.int8
    assert dtypes["position"] == np.int16
    assert dtypes["query_time"] == np.dtype("datetime64[ns]")
    assert all(dtypes[name] == np.float32 for name in FEATURE_NAMES)
    assert all(dtypes[name] == np.float64 for name in TRAILING)
    assert all(pd.api.types.is_string_dtype(dtypes[name]) for name in LEADING[:4])


def test_labels_simulated(training: TrainingData) -> None:
    assert training.simulated is True
    assert set(training.frame["label"].unique()) <= {0, 1, 2, 3, 4}
    assert (training.frame["label"] >= 1).any()


def test_logged_label_needs_examination(training: TrainingData) -> None:
    frame = training.frame
    logged, if_examined = frame["label"], frame["label_if_examined"]

    # A logged stage is the examination-free stage of a posting the seeker looked at.
    assert ((logged == 0) | (logged == if_examined)).all()
    # Lower positions are looked at less, so the examination-free label has more hits.
    assert (if_examined > 0).sum() > 1.5 * (logged > 0).sum()


def test_queries_contiguous_and_sorted(training: TrainingData) -> None:
    frame = training.frame
    positions_in_order = frame.groupby("query_id", sort=False)["position"].apply(
        lambda positions: positions.tolist() == list(range(1, len(positions) + 1))
    )
    assert positions_in_order.all()
    starts = frame["query_id"].ne(frame["query_id"].shift())
    assert starts.sum() == frame["query_id"].nunique()
    queries = frame.loc[starts, ["query_time", "query_id"]]
    ordered = queries.sort_values(["query_time", "query_id"])
    assert queries.index.tolist() == ordered.index.tolist()


def test_text_relevance_is_feature(training: TrainingData) -> None:
    frame = training.frame
    np.testing.assert_allclose(frame["text_relevance"], frame["title_similarity"], rtol=1e-6)
    np.testing.assert_allclose(
        frame["commute_min"], frame["commute_fastest_min"], rtol=1e-6, equal_nan=True
    )


def test_shown_after_publication(training: TrainingData, full_store: SqliteStore) -> None:
    published = full_store.postings_frame().set_index("posting_id")["published_on"]
    days = pd.to_datetime(training.frame["posting_id"].map(published))
    assert (training.frame["query_time"] >= days).all()


def test_params_json(training: TrainingData) -> None:
    import json

    text = json.dumps(training.params)
    assert "commute_decay_per_min" in text
    assert training.params["seed"] == 5


def test_same_seed_same_data(training: TrainingData, full_store: SqliteStore) -> None:
    again = build_training_data(full_store, n_seekers=40, seed=5, progress=False)
    pd.testing.assert_frame_equal(training.frame, again.frame)


def test_invalid_seeker_count(full_store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="n_seekers"):
        build_training_data(full_store, n_seekers=0, seed=5, progress=False)


def test_unshown_rows_test_period_only(training: TrainingData) -> None:
    unshown = training.unshown
    assert unshown is not None and len(unshown) > 0
    assert tuple(unshown.columns) == tuple(training.frame.columns)
    assert (unshown["position"] == 0).all()
    assert (unshown["label"] == 0).all()
    test = split_chronologically(training.frame).test
    assert unshown["query_time"].min() >= test["query_time"].min()
    assert set(unshown["query_id"]) <= set(test["query_id"])
    pairs = pd.concat([test, unshown])[["query_id", "posting_id"]]
    assert not pairs.duplicated().any()
