"""Training of the LightGBM LambdaRank ranker on a chronological split of the impressions.

The split is by session day. Days are sorted and cut so that about 70 % of the
queries fall in the training period, the next 15 % in the validation period and the
last 15 % in the test period. A whole day goes to one period, so no query straddles
a boundary and no day is seen in two periods. The validation period drives early
stopping and the test period is only for :mod:`models.evaluation`.

The model is LightGBM's ``lambdarank`` objective: one query group per seeker session,
graded labels 0..4 with gains ``2^label - 1`` (LightGBM's default ``label_gain``).
Logged labels depend on the position a posting was shown at, because seekers look at
lower positions less often. Training therefore passes each row's logged position to
``lightgbm.Dataset(position=...)``, and LightGBM (4.1 and later) fits the score as
``f(features) + g(position)`` with one factor ``g`` per position, saving only the
trees ``f``. So the model scores a posting the same whatever position it would be
shown at, and the request path needs no position. Early stopping uses validation
NDCG@10 on the labels without position bias (:data:`EVALUATION_LABEL`), the same
labels the test evaluation uses. Seeds are fixed and ``deterministic=True`` with
row-wise histograms, so the same data, parameters and thread count give the same model.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import lightgbm
import numpy as np
import numpy.typing as npt
import pandas as pd

from models.evaluation import EVALUATION_LABEL

logger = logging.getLogger(__name__)

# Shares of the queries in the training, validation and test periods.
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)

# Logged label and 1-based logged position that training reads.
TRAINING_LABEL = "label"
POSITION = "position"

# Report callback: stage name, units done, units in total.
Progress = Callable[[str, int, int], None]


class TrainingSet(Protocol):
    """The fields of ``models.dataset.TrainingData`` that training reads."""

    @property
    def frame(self) -> pd.DataFrame: ...

    @property
    def feature_names(self) -> tuple[str, ...]: ...

    @property
    def params(self) -> dict[str, Any]: ...

    @property
    def simulated(self) -> bool: ...

    @property
    def unshown(self) -> pd.DataFrame | None: ...


class SplitError(ValueError):
    """The impressions cannot be split into three non-empty periods."""


@dataclass(frozen=True)
class ChronologicalSplit:
    """Training, validation and test rows, and the first day of the later two periods."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    validation_start: pd.Timestamp
    test_start: pd.Timestamp

    def describe(self) -> dict[str, Any]:
        """Return the periods' first and last days and their query and row counts."""
        parts = {"train": self.train, "validation": self.validation, "test": self.test}
        return {
            name: {
                "first_day": str(part["query_time"].min().date()),
                "last_day": str(part["query_time"].max().date()),
                "queries": int(part["query_id"].nunique()),
                "rows": len(part),
            }
            for name, part in parts.items()
        }


@dataclass(frozen=True)
class RankerParams:
    """Hyperparameters of the LambdaRank model, chosen on validation NDCG@10 only.

    Names are LightGBM's scikit-learn aliases of its native parameters.
    """

    n_estimators: int = 600
    learning_rate: float = 0.05
    num_leaves: int = 7
    min_child_samples: int = 50
    subsample: float = 0.8
    subsample_freq: int = 1
    colsample_bytree: float = 0.8
    reg_lambda: float = 10.0
    early_stopping_rounds: int = 50
    log_every: int = 25
    seed: int = 20261204

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as a JSON-serialisable dict."""
        return asdict(self)

    def lightgbm_params(self, n_jobs: int | None) -> dict[str, Any]:
        """Return the native ``lightgbm.train`` parameters, without the round settings."""
        return {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [10],
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "subsample": self.subsample,
            "subsample_freq": self.subsample_freq,
            "colsample_bytree": self.colsample_bytree,
            "reg_lambda": self.reg_lambda,
            "seed": self.seed,
            # LightGBM reads 0 as OpenMP's default thread count.
            "num_threads": 0 if n_jobs is None else n_jobs,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }


@dataclass
class TrainedRanker:
    """A fitted booster with its feature order and the validation score it stopped at."""

    booster: lightgbm.Booster
    feature_names: tuple[str, ...]
    best_iteration: int
    validation_ndcg_at_10: float
    params: RankerParams = field(default_factory=RankerParams)

    def predict(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Score rows that carry the model's feature columns; higher ranks first."""
        return predict_scores(self.booster, frame, self.feature_names)


def predict_scores(
    booster: lightgbm.Booster,
    frame: pd.DataFrame,
    feature_names: Sequence[str],
    *,
    n_jobs: int = 1,
) -> npt.NDArray[np.float64]:
    """Score ``frame[feature_names]`` with ``booster`` at its best iteration.

    One thread is the default because the request path scores a few thousand rows at
    a time, where starting more threads costs more than it saves.
    """
    features = frame.loc[:, list(feature_names)].astype(np.float32)
    iteration = booster.best_iteration if booster.best_iteration > 0 else None
    scores = booster.predict(features, num_iteration=iteration, num_threads=n_jobs)
    return np.asarray(scores, dtype=np.float64)


def split_chronologically(
    frame: pd.DataFrame, fractions: tuple[float, float, float] = SPLIT_FRACTIONS
) -> ChronologicalSplit:
    """Split impressions into training, validation and test periods by whole session days.

    Parameters
    ----------
    frame : pandas.DataFrame
        Impressions with ``query_id`` and ``query_time`` (datetime64, the session day).
    fractions : tuple of float
        Target shares of the queries in each period; they must sum to 1.

    Raises
    ------
    SplitError
        When the frame has fewer than three session days, or a period would be empty.
    """
    if not np.isclose(sum(fractions), 1.0) or min(fractions) <= 0:
        raise ValueError(f"split fractions {fractions} are invalid; expected 3 shares summing to 1")

    day = frame["query_time"].dt.normalize()
    queries_per_day = frame.assign(day=day).groupby("day")["query_id"].nunique().sort_index()
    if len(queries_per_day) < 3:
        raise SplitError(
            f"impressions span {len(queries_per_day)} session days; a chronological split "
            "into training, validation and test periods needs at least 3"
        )

    # Each day goes to the period in which its cumulative share of queries ends.
    share_done = queries_per_day.cumsum() / queries_per_day.sum()
    period = np.searchsorted(np.cumsum(fractions)[:2], share_done.to_numpy(), side="left")
    period = np.minimum(period, 2)
    days = queries_per_day.index
    if len(set(period)) < 3:
        # Too few days to honour the shares: give the last two days to the later periods.
        period = np.concatenate([np.zeros(len(days) - 2, dtype=np.int64), [1, 2]])

    validation_start = pd.Timestamp(days[int(np.argmax(period >= 1))])
    test_start = pd.Timestamp(days[int(np.argmax(period >= 2))])
    split = ChronologicalSplit(
        train=frame[day < validation_start].reset_index(drop=True),
        validation=frame[(day >= validation_start) & (day < test_start)].reset_index(drop=True),
        test=frame[day >= test_start].reset_index(drop=True),
        validation_start=validation_start,
        test_start=test_start,
    )
    logger.info("chronological split: %s", split.describe())
    return split


def train_ranker(
    split: ChronologicalSplit,
    feature_names: Sequence[str],
    params: RankerParams | None = None,
    *,
    n_jobs: int | None = None,
    progress: Progress | None = None,
) -> TrainedRanker:
    """Fit LambdaRank on the training period with early stopping on validation NDCG@10.

    The training period contributes its logged labels and positions (see
    :func:`position_debiased_dataset`). Validation NDCG@10 is computed on
    :data:`EVALUATION_LABEL`, which has no position bias.

    Parameters
    ----------
    split : ChronologicalSplit
        The periods from :func:`split_chronologically`, with the columns ``label``,
        ``position`` and :data:`EVALUATION_LABEL`.
    feature_names : sequence of str
        Feature columns, in the order the model will expect them.
    params : RankerParams, optional
        Hyperparameters; the defaults when omitted.
    n_jobs : int, optional
        LightGBM threads; ``None`` lets OpenMP decide.
    progress : callable, optional
        Called as ``progress("rounds", done, total)`` every ``params.log_every`` rounds.
    """
    params = params or RankerParams()
    names = list(feature_names)
    training = position_debiased_dataset(split.train, names)
    validation = lightgbm.Dataset(
        split.validation[names].astype(np.float32),
        split.validation[EVALUATION_LABEL].to_numpy(),
        group=group_sizes(split.validation),
        reference=training,
    )
    booster = lightgbm.train(
        params.lightgbm_params(n_jobs),
        training,
        num_boost_round=params.n_estimators,
        valid_sets=[validation],
        valid_names=["validation"],
        callbacks=[
            lightgbm.early_stopping(params.early_stopping_rounds, verbose=False),
            _report_rounds(params, progress),
        ],
    )

    best = int(booster.best_iteration or params.n_estimators)
    score = float(booster.best_score["validation"]["ndcg@10"])
    logger.info("ranker trained: best round %d, validation NDCG@10 %.4f", best, score)
    if progress is not None:
        progress("rounds", params.n_estimators, params.n_estimators)
    return TrainedRanker(booster, tuple(names), best, score, params)


def position_debiased_dataset(frame: pd.DataFrame, feature_names: list[str]) -> lightgbm.Dataset:
    """Wrap training rows with their logged labels, query groups and logged positions.

    With ``position`` set, LightGBM's lambdarank objective learns a bias factor per
    position alongside the trees, so clicks that only reflect a high position are not
    credited to the features.

    Raises
    ------
    ValueError
        When a position is missing or below 1.
    """
    positions = frame[POSITION].to_numpy()
    if len(positions) and (pd.isna(positions).any() or positions.min() < 1):
        raise ValueError(
            f"column {POSITION!r} has a missing or non-positive value; expected the 1-based "
            "position each posting was shown at"
        )
    return lightgbm.Dataset(
        frame[feature_names].astype(np.float32),
        frame[TRAINING_LABEL].to_numpy(),
        group=group_sizes(frame),
        position=positions.astype(np.int32) - 1,
    )


def group_sizes(frame: pd.DataFrame) -> npt.NDArray[np.int64]:
    """Return the row count of each query, in row order; the rows of a query must be contiguous.

    Raises
    ------
    ValueError
        When the rows of some query are not next to each other.
    """
    query = frame["query_id"].to_numpy()
    if len(query) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], query[1:] != query[:-1])))
    if len(starts) != frame["query_id"].nunique():
        raise ValueError(
            "rows of one query_id are not contiguous; sort the impressions by "
            "query_time, then query_id"
        )
    return np.diff(np.append(starts, len(query))).astype(np.int64)


def _report_rounds(params: RankerParams, progress: Progress | None) -> Callable[[Any], None]:
    """A LightGBM callback that logs the validation NDCG@10 every ``log_every`` rounds."""

    def callback(env: Any) -> None:
        done = env.iteration + 1
        if done % params.log_every != 0:
            return
        scores = {name: value for _, name, value, _ in env.evaluation_result_list}
        logger.info("round %d: validation NDCG@10 %.4f", done, scores.get("ndcg@10", np.nan))
        if progress is not None:
            progress("rounds", done, params.n_estimators)

    return callback
