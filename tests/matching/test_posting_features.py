"""The request path's feature table against `build_features`, which training uses.

Every column is compared on thousands of (seeker, posting) pairs of the real store,
including seekers with awkward profiles, so a column that drifts fails by name.
"""

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from matching.features import FEATURE_NAMES, build_features
from matching.posting_context import CONTEXT_COLUMNS
from matching.posting_features import PostingFeatureTable
from matching.recommend import Recommender
from models.serving import ServingContext, serving_context
from store.sqlite import SqliteStore

PAIRS_PER_SEEKER = 300

Pairs = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]


@pytest.fixture(scope="module")
def recommender(full_store: SqliteStore) -> Recommender:
    return Recommender.from_store(full_store)


@pytest.fixture(scope="module")
def context(recommender: Recommender) -> ServingContext:
    return serving_context(recommender.postings, recommender.seekers, None)


def _awkward(seekers: pd.DataFrame) -> list[pd.Series]:
    """Return copies of real seekers with the profiles that take other branches."""
    base = seekers.iloc[0]
    changes: list[dict[str, object]] = [
        {"keywords": "", "occupation_wish_name": ""},
        {"keywords": None, "occupation_wish_code": None},
        {"occupation_wish_code": "2-02-10-00"},
        {"salary_wish_min": np.nan, "salary_wish_max": np.nan},
        {"salary_wish_min": np.nan, "salary_wish_max": 6000.0},
        {"salary_wish_min": 0.0, "salary_wish_max": 0.0},
        {"group": "graduate"},
        {"group": "assistance"},
        {"group": "talent"},
        {"modes": "drive;bike"},
        {"modes": "walk", "max_commute_min": 45.0},
        {"education": 0, "experience_years": 0.0},
        {"experience_years": 30.0},
    ]
    rows = []
    for number, change in enumerate(changes):
        row = base.copy()
        for column, value in change.items():
            row[column] = value
        row["seeker_id"] = f"awkward-{number}"
        rows.append(row)
    return rows


def _pairs(
    recommender: Recommender, table: PostingFeatureTable, context: ServingContext | None
) -> Pairs:
    """Return the table's and `build_features`' values for sampled pairs, row for row."""
    rng = np.random.default_rng(21)
    picked = rng.choice(len(recommender.seekers), 40, replace=False)
    seekers = [recommender.seekers.iloc[i] for i in picked] + _awkward(recommender.seekers)
    located = recommender.index.located
    fast, reference = [], []
    for seeker in seekers:
        reach = recommender.index.reachable(
            float(seeker["home_lon"]),
            float(seeker["home_lat"]),
            float(seeker["max_commute_min"]),
            str(seeker["modes"]),
        )
        count = min(PAIRS_PER_SEEKER, len(reach.positions))
        sample = reach.subset(np.sort(rng.choice(len(reach.positions), count, replace=False)))
        fast.append(table.features(seeker, sample.positions, sample.distances, sample.minutes))

        rows = located.iloc[sample.positions].reset_index(drop=True)
        rows = rows.assign(distance_m=sample.distances, estimated_commute_min=sample.minutes)
        if context is None:
            built = build_features(pd.DataFrame([seeker.to_dict()]), rows)
        else:
            known = context.posting_context.reindex(rows["posting_id"]).reset_index(drop=True)
            rows = pd.concat(
                [rows.drop(columns=list(CONTEXT_COLUMNS), errors="ignore"), known], axis=1
            )
            built = build_features(pd.DataFrame([seeker.to_dict()]), rows, as_of=context.as_of)
        reference.append(built.to_numpy(dtype=np.float32))
    return np.vstack(fast), np.vstack(reference)


@pytest.fixture(scope="module")
def pairs(recommender: Recommender, context: ServingContext) -> Pairs:
    table = PostingFeatureTable(recommender.index.located, context.posting_context, context.as_of)
    return _pairs(recommender, table, context)


@pytest.fixture(scope="module")
def pairs_without_context(recommender: Recommender) -> Pairs:
    return _pairs(recommender, PostingFeatureTable(recommender.index.located), None)


def test_table_covers_many_pairs(pairs: Pairs) -> None:
    fast, reference = pairs

    assert fast.shape == reference.shape
    assert fast.shape[0] > 5_000
    assert fast.shape[1] == len(FEATURE_NAMES)
    assert fast.dtype == np.float32


@pytest.mark.parametrize("name", FEATURE_NAMES)
def test_table_column_matches_build_features(pairs: Pairs, name: str) -> None:
    fast, reference = pairs
    column = FEATURE_NAMES.index(name)

    # Equal NaN patterns first, so a value that turned unknown names its column.
    assert np.array_equal(np.isnan(fast[:, column]), np.isnan(reference[:, column])), name
    np.testing.assert_allclose(
        fast[:, column], reference[:, column], rtol=0, atol=1e-6, equal_nan=True, err_msg=name
    )


@pytest.mark.parametrize("name", FEATURE_NAMES)
def test_table_column_without_context(pairs_without_context: Pairs, name: str) -> None:
    fast, reference = pairs_without_context
    column = FEATURE_NAMES.index(name)

    np.testing.assert_allclose(
        fast[:, column], reference[:, column], rtol=0, atol=1e-6, equal_nan=True, err_msg=name
    )


def test_compared_columns_have_values(pairs: Pairs) -> None:
    fast, _ = pairs

    # A column that is NaN on every pair would match without testing anything.
    empty = [name for j, name in enumerate(FEATURE_NAMES) if not np.isfinite(fast[:, j]).any()]
    assert empty == []


def test_table_rejects_seeker_without_columns(recommender: Recommender) -> None:
    table = PostingFeatureTable(recommender.index.located)
    seeker = recommender.seekers.iloc[0].drop(labels=["modes"])
    positions = np.arange(3, dtype=np.intp)

    with pytest.raises(ValueError, match="modes"):
        table.features(seeker, positions, np.zeros(3), np.zeros(3))
