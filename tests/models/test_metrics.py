"""Ranking metrics: perfect ranking gives 1.0, no hits give 0.0, and hand-computed values."""

import math

import numpy as np
import pandas as pd
import pytest

from models.metrics import (
    coverage,
    map_at_k,
    ndcg_at_k,
    per_query_ndcg,
    ranking_metrics,
    recall_at_k,
)


def _frame(queries: dict[str, list[tuple[str, int, float]]]) -> pd.DataFrame:
    """Build a frame from ``{query_id: [(posting_id, label, score), ...]}``."""
    rows = [
        {"query_id": query, "posting_id": posting, "label": label, "score": score}
        for query, items in queries.items()
        for posting, label, score in items
    ]
    return pd.DataFrame(rows)


# One query, ranked by score as labels 3, 0, 2, 1.
HAND = _frame({"q1": [("a", 3, 4.0), ("b", 0, 3.0), ("c", 2, 2.0), ("d", 1, 1.0)]})


def test_perfect_ranking_scores_one() -> None:
    frame = _frame(
        {
            "q1": [("a", 4, 0.9), ("b", 2, 0.5), ("c", 0, 0.1)],
            "q2": [("d", 3, 5.0), ("e", 2, 4.0), ("f", 1, 3.0), ("g", 0, 2.0)],
        }
    )
    assert ndcg_at_k(frame, "score", 10) == pytest.approx(1.0)
    assert map_at_k(frame, "score", 10) == pytest.approx(1.0)
    assert recall_at_k(frame, "score", 20) == pytest.approx(1.0)


def test_no_hits_scores_zero() -> None:
    # Every relevant row ranks below the cut-off k = 2.
    frame = _frame({"q1": [("a", 0, 0.9), ("b", 0, 0.8), ("c", 3, 0.1), ("d", 2, 0.0)]})
    assert ndcg_at_k(frame, "score", 2) == 0.0
    assert map_at_k(frame, "score", 2) == 0.0
    assert recall_at_k(frame, "score", 2) == 0.0


def test_ndcg_hand_computed() -> None:
    dcg = 7 / math.log2(2) + 0 + 3 / math.log2(4) + 1 / math.log2(5)  # 8.930677
    idcg = 7 / math.log2(2) + 3 / math.log2(3) + 1 / math.log2(4)  # 9.392789
    assert dcg / idcg == pytest.approx(0.950801, abs=1e-6)
    assert ndcg_at_k(HAND, "score", 10) == pytest.approx(0.950801, abs=1e-6)


def test_map_hand_computed() -> None:
    # Relevant (label >= 2) at ranks 1 and 3: (1/1 + 2/3) / 2.
    assert map_at_k(HAND, "score", 10) == pytest.approx(5 / 6)


def test_map_divides_by_min_relevant_and_k() -> None:
    # Three relevant rows, k = 2, both top rows relevant: AP@2 = (1 + 1) / min(3, 2).
    frame = _frame({"q1": [("a", 2, 3.0), ("b", 2, 2.0), ("c", 2, 1.0)]})
    assert map_at_k(frame, "score", 2) == pytest.approx(1.0)


def test_recall_hand_computed() -> None:
    assert recall_at_k(HAND, "score", 2) == pytest.approx(0.5)
    assert recall_at_k(HAND, "score", 3) == pytest.approx(1.0)


def test_coverage_hand_computed() -> None:
    # Top 1 of q1 is "a", of q2 is "b": 2 of the 4 distinct postings.
    frame = _frame(
        {
            "q1": [("a", 1, 0.9), ("b", 0, 0.1), ("c", 0, 0.0)],
            "q2": [("b", 0, 0.7), ("d", 0, 0.2), ("a", 0, 0.1)],
        }
    )
    assert coverage(frame, "score", 1) == pytest.approx(0.5)
    assert coverage(frame, "score", 3) == pytest.approx(1.0)


def test_nan_scores_rank_last() -> None:
    frame = _frame({"q1": [("a", 0, np.nan), ("b", 3, 0.1)]})
    assert ndcg_at_k(frame, "score", 1) == pytest.approx(1.0)


def test_ties_keep_input_order() -> None:
    frame = _frame({"q1": [("a", 0, 1.0), ("b", 3, 1.0)]})
    assert ndcg_at_k(frame, "score", 1) == 0.0


def test_query_without_relevant_rows_excluded() -> None:
    frame = _frame(
        {
            "q1": [("a", 3, 1.0), ("b", 0, 0.0)],
            "q2": [("c", 0, 1.0), ("d", 0, 0.0)],
            "q3": [("e", 1, 0.0), ("f", 0, 1.0)],
        }
    )
    per_query = per_query_ndcg(frame, "score", 10)
    assert np.isnan(per_query[1])
    metrics = ranking_metrics(frame, "score")

    assert metrics.n_queries == 3
    assert metrics.n_queries_graded == 2
    assert metrics.n_queries_relevant == 1
    assert metrics.map_at_10 == pytest.approx(1.0)
    assert metrics.ndcg_at_10 == pytest.approx((1.0 + 1 / math.log2(3)) / 2)


def test_queries_interleaved_by_row() -> None:
    # Rows of one query need not be contiguous.
    frame = _frame({"q1": [("a", 2, 0.1)], "q2": [("b", 2, 0.9)]})
    frame = pd.concat([frame, _frame({"q1": [("c", 0, 0.5)], "q2": [("d", 0, 0.1)]})])
    assert map_at_k(frame, "score", 1) == pytest.approx(0.5)


def test_empty_denominator_gives_nan_and_none() -> None:
    frame = _frame({"q1": [("a", 0, 1.0)]})
    metrics = ranking_metrics(frame, "score")
    assert math.isnan(metrics.ndcg_at_10)
    assert metrics.to_dict()["ndcg_at_10"] is None


def test_invalid_cutoff_raises() -> None:
    with pytest.raises(ValueError, match="cut-off k 0 is invalid"):
        ndcg_at_k(HAND, "score", 0)
