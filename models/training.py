"""One training run: split the impressions, fit the ranker, evaluate it and save it.

The command ``doorstep train`` and the evaluation notebook both call these
functions, so they report the same numbers for the same data and parameters.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from models.evaluation import EVALUATION_LABEL, EvaluationReport, evaluate, with_unshown
from models.ranker import (
    ChronologicalSplit,
    Progress,
    RankerParams,
    TrainedRanker,
    TrainingSet,
    split_chronologically,
    train_ranker,
)
from models.registry import LoadedModel, ModelRegistry, frame_sha256

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingRun:
    """A fitted ranker with its split, test-period report and training-data hash."""

    ranker: TrainedRanker
    split: ChronologicalSplit
    report: EvaluationReport
    training_data_sha256: str


def fit_and_evaluate(
    data: TrainingSet,
    params: RankerParams | None = None,
    *,
    n_jobs: int | None = 1,
    progress: Progress | None = None,
) -> TrainingRun:
    """Split ``data`` by time, fit on the training period and evaluate on the test period.

    ``progress`` is called as ``progress(stage, done, total)`` for the stages
    ``split``, ``rounds`` (boosting rounds) and ``evaluate``.
    """
    if not data.simulated:
        logger.warning("training data is not marked simulated; check its source")
    _report(progress, "split", 0)
    split = split_chronologically(data.frame)
    _report(progress, "split", 1)

    ranker = train_ranker(split, data.feature_names, params, n_jobs=n_jobs, progress=progress)

    _report(progress, "evaluate", 0)
    report = _evaluate_with_pool(split.test, data.unshown, ranker.predict)
    _report(progress, "evaluate", 1)
    return TrainingRun(ranker, split, report, frame_sha256(data.frame))


def save_run(
    registry: ModelRegistry, run: TrainingRun, data: TrainingSet, command: dict[str, Any]
) -> Path:
    """Save the run's model with its test metrics, split, debiasing and simulation parameters."""
    return registry.save(
        run.ranker,
        training_data_sha256=run.training_data_sha256,
        metrics=run.report.to_dict(),
        details={
            "split": run.split.describe(),
            "position_debiasing": "lightgbm.Dataset(position=...) on the logged positions",
            "evaluation_label": EVALUATION_LABEL,
            "simulation_params": data.params,
            "training_command": command,
        },
    )


def evaluate_saved(model: LoadedModel, data: TrainingSet) -> tuple[EvaluationReport, bool]:
    """Evaluate a saved model on the test period of ``data``.

    Returns
    -------
    tuple
        The report, and whether ``data`` hashes to the model's training data. When it
        does not, the split may differ from the one the model was trained on, so its
        test period may hold rows the model was fitted on.
    """
    split = split_chronologically(data.frame)
    same_data = frame_sha256(data.frame) == model.manifest.get("training_data_sha256")
    if not same_data:
        logger.warning(
            "evaluating model %r on data other than its training data; the test period "
            "may overlap the rows it was fitted on",
            model.model_id,
        )
    return _evaluate_with_pool(split.test, data.unshown, model.predict), same_data


def _evaluate_with_pool(
    test: pd.DataFrame,
    unshown: pd.DataFrame | None,
    predict: Callable[[pd.DataFrame], npt.NDArray[np.float64]],
) -> EvaluationReport:
    """Evaluate on the test pages, and on the whole live pools when unshown rows exist."""
    report = evaluate(test, predict(test))
    if unshown is None or unshown.empty:
        return report
    pool = with_unshown(test, unshown)
    return replace(report, pool=evaluate(pool, predict(pool)))


def _report(progress: Progress | None, stage: str, done: int) -> None:
    if progress is not None:
        progress(stage, done, 1)
