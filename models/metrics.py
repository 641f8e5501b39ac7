"""Ranking metrics over a frame of scored impressions, computed per query in numpy.

Every function takes a frame with a ``query_id`` column, an integer ``label`` column
(graded relevance: 0 shown only, 1 clicked, 2 applied, 3 interviewed, 4 hired) and a
score column, and ranks the rows of each query by descending score. Rows whose score
is NaN rank after every scored row. Ties keep the order of the input rows, so give
tied rows a deterministic order before scoring if that matters.

Definitions, with ``rel_i`` the label at rank ``i`` (1-based) and ``k`` the cut-off:

- NDCG@k: ``DCG@k / IDCG@k`` with ``DCG@k = sum_{i<=k} (2^rel_i - 1) / log2(i + 1)``
  and IDCG@k the DCG@k of the rows sorted by label. Queries where every label is 0
  have IDCG = 0 and are left out.
- MAP@k: the mean over queries of ``AP@k = sum_{i<=k} P@i * [rel_i >= 2] / min(R, k)``,
  where ``R`` is the number of relevant rows of the query. A row counts as relevant
  from label 2 (applied) up: a click alone is weak evidence of fit, while an application
  means the seeker judged the job worth acting on. Dividing by ``min(R, k)`` gives a
  perfect ranking 1.0 even when a query has more than ``k`` relevant rows.
- Recall@k: relevant rows in the top ``k`` divided by ``R``.
  Queries without a relevant row (``R = 0``) are left out of MAP and Recall.
- Coverage@k: the share of distinct postings in the frame that appear in the top ``k``
  of at least one query.
"""

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Label from which a row counts as relevant for MAP and Recall: 2 = applied.
RELEVANT_LABEL = 2


@dataclass(frozen=True)
class RankingMetrics:
    """The metrics of one scorer on one set of queries.

    ``n_queries`` counts every query, ``n_queries_graded`` those with a label above 0
    (the NDCG denominator) and ``n_queries_relevant`` those with a label of at least
    :data:`RELEVANT_LABEL` (the MAP and Recall denominator). A metric is NaN when its
    denominator is 0.
    """

    ndcg_at_10: float
    map_at_10: float
    recall_at_20: float
    coverage_at_10: float
    n_queries: int
    n_queries_graded: int
    n_queries_relevant: int
    n_rows: int

    def to_dict(self) -> dict[str, Any]:
        """Return the metrics as a JSON-serialisable dict (NaN becomes ``None``)."""
        return {
            name: None if isinstance(value, float) and np.isnan(value) else value
            for name, value in asdict(self).items()
        }


@dataclass(frozen=True)
class _Ranked:
    """Rows sorted by query, then by descending score, with per-row rank and query code."""

    query: IntArray
    rank: IntArray
    label: IntArray
    n_queries: int
    order: IntArray


def ranking_metrics(frame: pd.DataFrame, score_column: str) -> RankingMetrics:
    """Compute NDCG@10, MAP@10, Recall@20 and coverage@10 of one score column.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``query_id``, ``label``, ``posting_id`` and ``score_column``.
    score_column : str
        The column to rank by, higher is better.

    Returns
    -------
    RankingMetrics
        The means over the queries each metric is defined for, with their counts.
    """
    graded = per_query_ndcg(frame, score_column, k=10)
    average_precision = per_query_average_precision(frame, score_column, k=10)
    recall = per_query_recall(frame, score_column, k=20)
    return RankingMetrics(
        ndcg_at_10=_nan_mean(graded),
        map_at_10=_nan_mean(average_precision),
        recall_at_20=_nan_mean(recall),
        coverage_at_10=coverage(frame, score_column, k=10),
        n_queries=len(graded),
        n_queries_graded=int(np.count_nonzero(~np.isnan(graded))),
        n_queries_relevant=int(np.count_nonzero(~np.isnan(recall))),
        n_rows=len(frame),
    )


def ndcg_at_k(frame: pd.DataFrame, score_column: str, k: int = 10) -> float:
    """Return the mean NDCG@k over queries with at least one label above 0 (NaN if none)."""
    return _nan_mean(per_query_ndcg(frame, score_column, k))


def map_at_k(frame: pd.DataFrame, score_column: str, k: int = 10) -> float:
    """Return the mean AP@k over queries with a relevant row (NaN if none)."""
    return _nan_mean(per_query_average_precision(frame, score_column, k))


def recall_at_k(frame: pd.DataFrame, score_column: str, k: int = 20) -> float:
    """Return the mean Recall@k over queries with a relevant row (NaN if none)."""
    return _nan_mean(per_query_recall(frame, score_column, k))


def per_query_ndcg(frame: pd.DataFrame, score_column: str, k: int = 10) -> FloatArray:
    """Return NDCG@k for each query in order of first appearance; NaN where IDCG is 0."""
    _check_k(k)
    ranked = _rank(frame, frame[score_column].to_numpy(dtype=np.float64))
    ideal = _rank(frame, frame["label"].to_numpy(dtype=np.float64))
    dcg = _dcg(ranked, k)
    idcg = _dcg(ideal, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(idcg > 0, dcg / idcg, np.nan)


def per_query_average_precision(frame: pd.DataFrame, score_column: str, k: int = 10) -> FloatArray:
    """Return AP@k for each query in order of first appearance; NaN without a relevant row."""
    _check_k(k)
    ranked = _rank(frame, frame[score_column].to_numpy(dtype=np.float64))
    relevant = (ranked.label >= RELEVANT_LABEL).astype(np.float64)
    in_top = ranked.rank <= k

    # Hits so far at each rank, counted within the query: cumulative sum minus the
    # total of the queries before it.
    running = np.cumsum(relevant)
    before = np.concatenate(([0.0], np.bincount(ranked.query, weights=relevant).cumsum()[:-1]))
    hits_so_far = running - before[ranked.query]
    precision_at_hit = np.where(in_top, relevant * hits_so_far / ranked.rank, 0.0)

    total_relevant = np.bincount(ranked.query, weights=relevant, minlength=ranked.n_queries)
    summed = np.bincount(ranked.query, weights=precision_at_hit, minlength=ranked.n_queries)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total_relevant > 0, summed / np.minimum(total_relevant, k), np.nan)


def per_query_recall(frame: pd.DataFrame, score_column: str, k: int = 20) -> FloatArray:
    """Return Recall@k for each query in order of first appearance; NaN without a relevant row."""
    _check_k(k)
    ranked = _rank(frame, frame[score_column].to_numpy(dtype=np.float64))
    relevant = (ranked.label >= RELEVANT_LABEL).astype(np.float64)
    found = np.bincount(
        ranked.query, weights=relevant * (ranked.rank <= k), minlength=ranked.n_queries
    )
    total = np.bincount(ranked.query, weights=relevant, minlength=ranked.n_queries)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, found / total, np.nan)


def coverage(frame: pd.DataFrame, score_column: str, k: int = 10) -> float:
    """Return the share of distinct ``posting_id`` values that reach some query's top ``k``."""
    _check_k(k)
    if frame.empty:
        return float("nan")
    ranked = _rank(frame, frame[score_column].to_numpy(dtype=np.float64))
    postings = frame["posting_id"].to_numpy()[ranked.order]
    shown = pd.unique(postings[ranked.rank <= k])
    return len(shown) / frame["posting_id"].nunique()


def _rank(frame: pd.DataFrame, scores: FloatArray) -> _Ranked:
    """Sort rows by query (first appearance) and descending score, NaN scores last."""
    query, uniques = pd.factorize(frame["query_id"], sort=False)
    keys = np.where(np.isnan(scores), -np.inf, scores)
    # lexsort sorts by the last key first and is stable, so ties keep input order.
    order = np.lexsort((-keys, query))
    sorted_query = query[order].astype(np.int64)
    first = np.searchsorted(sorted_query, sorted_query, side="left")
    rank = np.arange(len(order), dtype=np.int64) - first + 1
    labels = frame["label"].to_numpy(dtype=np.int64)[order]
    return _Ranked(sorted_query, rank, labels, len(uniques), order.astype(np.int64))


def _dcg(ranked: _Ranked, k: int) -> FloatArray:
    gains = np.power(2.0, ranked.label) - 1.0
    discounted = np.where(ranked.rank <= k, gains / np.log2(ranked.rank + 1.0), 0.0)
    return np.bincount(ranked.query, weights=discounted, minlength=ranked.n_queries).astype(
        np.float64
    )


def _nan_mean(values: FloatArray) -> float:
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else float("nan")


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"cut-off k {k} is invalid; expected an integer of at least 1")
