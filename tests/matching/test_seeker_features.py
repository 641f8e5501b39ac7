"""The fan-out's seeker feature table against `build_features`, which training uses.

Every column is compared for real postings against all 500 simulated seekers of the
test store plus seekers with awkward profiles, so a column that drifts fails by name.
"""

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from matching.features import FEATURE_NAMES, build_features
from matching.posting_context import CONTEXT_COLUMNS
from matching.posting_features import PostingFeatureTable
from matching.recommend import Recommender
from matching.seeker_features import SeekerFeatureTable, posting_values
from models.serving import ServingContext, serving_context
from store.sqlite import SqliteStore
from tests.matching.test_posting_features import _awkward

POSTINGS = 25

Pairs = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]


@pytest.fixture(scope="module")
def recommender(full_store: SqliteStore) -> Recommender:
    return Recommender.from_store(full_store)


@pytest.fixture(scope="module")
def seekers(recommender: Recommender) -> pd.DataFrame:
    stored = recommender.seekers.reset_index(drop=True)
    return pd.concat([stored, pd.DataFrame(_awkward(stored))], ignore_index=True)


def _pairs(
    recommender: Recommender, seekers: pd.DataFrame, context: ServingContext | None
) -> Pairs:
    """Return the table's and `build_features`' values for every seeker and sampled postings."""
    rng = np.random.default_rng(5)
    located = recommender.index.located
    table = SeekerFeatureTable(seekers)
    positions = np.arange(len(seekers), dtype=np.intp)
    fast, reference = [], []
    for number in rng.choice(len(located), POSTINGS, replace=False):
        posting = located.iloc[int(number)].to_dict()
        distances = rng.uniform(0, 30_000, len(seekers))
        minutes = rng.uniform(1, 90, len(seekers))
        fast.append(
            table.features(posting_values(posting, context), posting, positions, distances, minutes)
        )

        rows = pd.DataFrame([posting] * len(seekers)).assign(
            seeker_id=seekers["seeker_id"].to_numpy(),
            distance_m=distances,
            estimated_commute_min=minutes,
        )
        if context is None:
            built = build_features(seekers, rows)
        else:
            known = context.posting_context.reindex(rows["posting_id"]).reset_index(drop=True)
            rows = pd.concat(
                [rows.drop(columns=list(CONTEXT_COLUMNS), errors="ignore"), known], axis=1
            )
            built = build_features(seekers, rows, as_of=context.as_of)
        reference.append(built.to_numpy(dtype=np.float32))
    return np.vstack(fast), np.vstack(reference)


@pytest.fixture(scope="module")
def pairs(recommender: Recommender, seekers: pd.DataFrame) -> Pairs:
    context = serving_context(recommender.postings, recommender.seekers, None)
    return _pairs(recommender, seekers, context)


@pytest.mark.parametrize("name", FEATURE_NAMES)
def test_seeker_table_column_matches(pairs: Pairs, name: str) -> None:
    fast, reference = pairs
    column = FEATURE_NAMES.index(name)
    np.testing.assert_allclose(
        fast[:, column], reference[:, column], rtol=1e-6, atol=1e-6, equal_nan=True
    )


def test_seeker_table_without_context(recommender: Recommender, seekers: pd.DataFrame) -> None:
    fast, reference = _pairs(recommender, seekers, None)
    np.testing.assert_allclose(fast, reference, rtol=1e-6, atol=1e-6, equal_nan=True)


def test_seeker_table_varies_by_seeker(pairs: Pairs) -> None:
    fast, _ = pairs
    for name in ("title_similarity", "salary_fit", "seeker_max_commute_min"):
        assert len(np.unique(fast[:, FEATURE_NAMES.index(name)])) > 1, name


def test_seeker_table_needs_columns() -> None:
    with pytest.raises(ValueError, match="seekers lacks columns"):
        SeekerFeatureTable(pd.DataFrame({"seeker_id": ["s1"]}))


def test_seeker_table_empty_positions(recommender: Recommender, seekers: pd.DataFrame) -> None:
    posting = recommender.index.located.iloc[0].to_dict()
    empty = np.zeros(0, dtype=np.intp)
    values = SeekerFeatureTable(seekers).features(
        posting_values(posting), posting, empty, np.zeros(0), np.zeros(0)
    )
    assert values.shape == (0, len(FEATURE_NAMES))


def test_loaded_row_equals_fresh_row(recommender: Recommender) -> None:
    context = serving_context(recommender.postings, recommender.seekers, None)
    located = recommender.index.located
    table = PostingFeatureTable(located, context.posting_context, context.as_of)
    for row in np.random.default_rng(8).choice(len(located), 30, replace=False):
        fresh = posting_values(located.iloc[int(row)].to_dict(), context)
        np.testing.assert_array_equal(table.matrix[int(row)], fresh)
