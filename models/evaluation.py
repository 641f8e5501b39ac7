"""Evaluation of a ranker and three baselines on the held-out test period.

Every scorer ranks the same impressions, so the numbers are comparable within one
run. The baselines are:

- ``distance``: straight-line distance only, ``score = -distance_m``. City-level
  postings (no distance) rank last.
- ``gauss_text``: an Elasticsearch ``function_score`` in the style of a ``gauss``
  decay on distance multiplied by text relevance,
  ``exp(-ln2 * (max(0, d - GAUSS_OFFSET_M) / GAUSS_SCALE_M)^2) * text_relevance``.
  The decay is 1 up to 1 km and 0.5 at 1 km + 5 km = 6 km, which the candidate step
  (15 km/h door to door by transit, detour factor 1.4) estimates as a 34-minute
  transit trip. City-level postings get the decay :data:`UNKNOWN_DISTANCE_DECAY`.
- ``baseline``: the hand-set formula of ``matching.scoring.score_jobs``.

Metrics are computed on :data:`EVALUATION_LABEL`, the funnel stage each seeker would
have reached had they looked at every position of the page. The logged ``label``
is 0 for postings the seeker never looked at, and the simulated seeker looks at
position ``k`` with chance ``(1/k)**eta``, so logged labels credit whatever the
logging policy put on top. That policy orders mostly by the baseline formula, so
logged labels would favour the ``baseline`` scorer for free. Every scorer ranks the
same shown postings against the same labels. A page contains 20 postings, so Recall@20
is 1.0 there for every scorer; the pool report (:func:`with_unshown`) ranks the
page with the session's unshown live candidates, where it is not. Metrics are computed overall, per
seeker group and per commute band by ``commute_min``. The goal is NDCG@10 of at
least :data:`GOAL_RATIO` times the best baseline, overall and in every group. The
labels come from the behaviour simulation, so every number here measures agreement
with simulated behaviour, not with real seekers.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from models.metrics import RankingMetrics, ranking_metrics

MODEL = "model"
BASELINES = ("distance", "gauss_text", "baseline")
GROUPS = ("graduate", "talent", "assistance", "general")

GAUSS_OFFSET_M = 1_000.0
GAUSS_SCALE_M = 5_000.0
# A posting known only as "somewhere in Xi'an" counts like one 9 km away
# (exp(-ln2 * (8/5)^2) is about 0.17), close to the 0.2 the baseline formula gives an
# unknown distance.
UNKNOWN_DISTANCE_DECAY = 0.17

# Commute bands in minutes, lower bound inclusive.
COMMUTE_BANDS = ((0.0, 15.0, "0-15"), (15.0, 30.0, "15-30"), (30.0, 45.0, "30-45"))
COMMUTE_BAND_OPEN = "45+"
COMMUTE_BAND_UNKNOWN = "unknown"

GOAL_RATIO = 1.10

# Label column the metrics read: the simulated funnel stage with examination removed.
EVALUATION_LABEL = "label_if_examined"


@dataclass(frozen=True)
class SegmentResult:
    """The metrics of every scorer on one segment (overall, a group or a commute band)."""

    segment: str
    metrics: dict[str, RankingMetrics]

    @property
    def best_baseline(self) -> str:
        """Name of the baseline with the highest NDCG@10 here (NaN counts as lowest)."""
        return max(BASELINES, key=lambda name: _or_minus_inf(self.metrics[name].ndcg_at_10))

    @property
    def ndcg_ratio(self) -> float:
        """Model NDCG@10 divided by the best baseline's; NaN when either is missing or 0."""
        best = self.metrics[self.best_baseline].ndcg_at_10
        model = self.metrics[MODEL].ndcg_at_10
        if math.isnan(best) or math.isnan(model) or best == 0:
            return float("nan")
        return model / best

    @property
    def goal_met(self) -> bool:
        """Whether the model's NDCG@10 reaches :data:`GOAL_RATIO` times the best baseline."""
        return not math.isnan(self.ndcg_ratio) and self.ndcg_ratio >= GOAL_RATIO

    def to_dict(self) -> dict[str, Any]:
        """Return the segment as a JSON-serialisable dict."""
        ratio = self.ndcg_ratio
        return {
            "segment": self.segment,
            "metrics": {name: metrics.to_dict() for name, metrics in self.metrics.items()},
            "best_baseline": self.best_baseline,
            "ndcg_ratio": None if math.isnan(ratio) else ratio,
            "goal_met": self.goal_met,
        }


@dataclass(frozen=True)
class EvaluationReport:
    """Results on the test period: overall, per group and per commute band.

    ``pool`` contains the same metrics when every scorer ranks each test session's whole
    live pool (shown and unshown rows, see :func:`with_unshown`) instead of its page.
    The goal is judged on the pages; the pool is where Recall@20 means something.
    """

    overall: SegmentResult
    groups: list[SegmentResult]
    commute_bands: list[SegmentResult]
    simulated: bool = True
    pool: "EvaluationReport | None" = None

    @property
    def goal_met(self) -> bool:
        """Whether the goal is met overall and in every group that has graded queries."""
        scored = [group for group in self.groups if not math.isnan(group.ndcg_ratio)]
        return self.overall.goal_met and all(group.goal_met for group in scored)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-serialisable dict."""
        return {
            "simulated": self.simulated,
            "labels": "simulated by models.simulation; no real interaction logs",
            "label_column": EVALUATION_LABEL,
            "goal": f"model NDCG@10 >= {GOAL_RATIO:.2f} x best baseline, overall and per group",
            "goal_met": self.goal_met,
            "overall": self.overall.to_dict(),
            "groups": [group.to_dict() for group in self.groups],
            "commute_bands": [band.to_dict() for band in self.commute_bands],
            "pool": None if self.pool is None else self.pool.to_dict(),
        }


def evaluate(test: pd.DataFrame, model_scores: npt.ArrayLike) -> EvaluationReport:
    """Evaluate model scores and the three baselines on the test-period impressions.

    Parameters
    ----------
    test : pandas.DataFrame
        Test-period rows with ``query_id``, ``posting_id``, ``group``,
        :data:`EVALUATION_LABEL`, ``baseline_score``, ``distance_m`` (metres, NaN for
        city level), ``commute_min`` and ``text_relevance`` (0..1).
    model_scores : array-like
        One model score per row of ``test``, higher ranks first.
    """
    scored = score_baselines(test).assign(**{MODEL: np.asarray(model_scores, dtype=np.float64)})
    # models.metrics reads the "label" column.
    scored["label"] = scored[EVALUATION_LABEL].to_numpy()
    band = commute_band(scored["commute_min"])

    overall = _segment("overall", scored)
    groups = [_segment(name, scored[scored["group"] == name]) for name in GROUPS]
    bands = [
        _segment(name, scored[band == name])
        for name in [*(label for _, _, label in COMMUTE_BANDS), COMMUTE_BAND_OPEN]
    ]
    if (band == COMMUTE_BAND_UNKNOWN).any():
        bands.append(_segment(COMMUTE_BAND_UNKNOWN, scored[band == COMMUTE_BAND_UNKNOWN]))
    return EvaluationReport(overall, groups, bands)


def with_unshown(test: pd.DataFrame, unshown: pd.DataFrame | None) -> pd.DataFrame:
    """Return the test rows with the unshown pool rows of the same queries after each query's.

    ``unshown`` may contain rows of any period (``models.dataset.TrainingData.unshown``);
    only those whose ``query_id`` is in ``test`` are kept. Shown rows keep their order
    and come first in each query, so ties rank the page's postings ahead of the rest.
    """
    if unshown is None or unshown.empty:
        return test.reset_index(drop=True)
    extra = unshown[unshown["query_id"].isin(test["query_id"].unique())]
    order = {query: rank for rank, query in enumerate(pd.unique(test["query_id"]))}
    both = pd.concat([test, extra[test.columns]], ignore_index=True)
    query_rank = both["query_id"].map(order).to_numpy()
    unshown_last = (both["position"].to_numpy() == 0).astype(np.int8)
    keys = np.lexsort((np.arange(len(both)), unshown_last, query_rank))
    return both.iloc[keys].reset_index(drop=True)


def score_baselines(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` with one score column per baseline in :data:`BASELINES`."""
    distance = frame["distance_m"].to_numpy(dtype=np.float64)
    return frame.assign(
        distance=-distance,
        gauss_text=gauss_decay(distance) * frame["text_relevance"].to_numpy(dtype=np.float64),
        baseline=frame["baseline_score"].to_numpy(dtype=np.float64),
    )


def gauss_decay(distance_m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return the Gaussian distance decay in 0..1 of straight-line distances in metres.

    ``exp(-ln2 * (max(0, d - GAUSS_OFFSET_M) / GAUSS_SCALE_M)^2)``: 1 within the offset,
    0.5 at offset + scale. NaN distances get :data:`UNKNOWN_DISTANCE_DECAY`.
    """
    beyond = np.maximum(0.0, distance_m - GAUSS_OFFSET_M) / GAUSS_SCALE_M
    decay = np.exp(-math.log(2.0) * beyond**2)
    return np.where(np.isnan(distance_m), UNKNOWN_DISTANCE_DECAY, decay)


def commute_band(commute_min: pd.Series) -> pd.Series:
    """Label each commute in minutes with its band: 0-15, 15-30, 30-45, 45+ or unknown."""
    minutes = commute_min.to_numpy(dtype=np.float64)
    labels = np.full(len(minutes), COMMUTE_BAND_OPEN, dtype=object)
    for low, high, label in COMMUTE_BANDS:
        labels[(minutes >= low) & (minutes < high)] = label
    labels[np.isnan(minutes)] = COMMUTE_BAND_UNKNOWN
    return pd.Series(labels, index=commute_min.index, name="commute_band")


def report_rows(report: EvaluationReport) -> list[dict[str, Any]]:
    """Flatten a report to one row per segment and scorer, for tables and charts."""
    rows = []
    kinds: Mapping[str, list[SegmentResult]] = {
        "overall": [report.overall],
        "group": report.groups,
        "commute_band": report.commute_bands,
    }
    for kind, segments in kinds.items():
        for segment in segments:
            for scorer, metrics in segment.metrics.items():
                rows.append(
                    {
                        "kind": kind,
                        "segment": segment.segment,
                        "scorer": scorer,
                        **metrics.to_dict(),
                    }
                )
    return rows


def _segment(name: str, frame: pd.DataFrame) -> SegmentResult:
    scorers = (MODEL, *BASELINES)
    return SegmentResult(name, {scorer: ranking_metrics(frame, scorer) for scorer in scorers})


def _or_minus_inf(value: float) -> float:
    return -math.inf if math.isnan(value) else value
