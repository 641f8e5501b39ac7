"""Two-stage ranking of one seeker's candidates with a gradient-boosted tree model.

Predicting costs rows times trees, and a seeker with a long commute limit can reach
most of the city's postings. The first stage scores every candidate with the first
`RankingCascade.first_stage_trees` trees of the model and keeps the
`RankingCascade.shortlist` best. The second stage scores the shortlist with the whole
model, so every score shown is the full model's score.

The cascade can miss a posting that the full model would put in the top 20 but that
the first trees rank below the shortlist. ``bench/nearby_jobs.py`` measures how
often (overlap@20 and NDCG@20 against the full model on the same seekers), and
``docs/benchmarks.md`` records the numbers behind the default sizes.
"""

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Chosen by fidelity: a mean overlap@20 with the whole model's top 20 of at least 0.98,
# and at least 0.9 for every seeker, in two measurements with 200,000 synthetic postings
# and a 200-tree model. 40 trees with 2,000 rows fell short (minimum 0.75 and 0.80), so
# the shortlist is 4,000; the benchmark's table is in docs/benchmarks.md.
# NOTE: fidelity depends on the model; measure a newly trained model before relying on it.
FIRST_STAGE_TREES = 40
SHORTLIST = 4_000


@dataclass(frozen=True)
class RankingCascade:
    """Sizes of the two ranking stages."""

    first_stage_trees: int = FIRST_STAGE_TREES
    """Trees, from the first, that score every candidate in the first stage."""
    shortlist: int = SHORTLIST
    """Candidates the first stage passes to the whole model."""

    def __post_init__(self) -> None:
        if self.first_stage_trees < 1:
            raise ValueError(
                f"first_stage_trees {self.first_stage_trees!r} is invalid; expected >= 1"
            )
        if self.shortlist < 1:
            raise ValueError(f"shortlist {self.shortlist!r} is invalid; expected >= 1")


@runtime_checkable
class ArrayScorer(Protocol):
    """A tree model that scores a float32 feature matrix, optionally with its first trees."""

    @property
    def tree_count(self) -> int:
        """Trees that a full prediction uses."""
        ...

    def predict_array(
        self, features: npt.NDArray[np.float32], trees: int | None = None
    ) -> FloatArray:
        """Return one score per row of ``features``, from the first ``trees`` trees or all."""
        ...


@dataclass(frozen=True)
class CascadeScores:
    """Rows that reached the second stage and their full-model scores."""

    rows: npt.NDArray[np.intp]
    """Row numbers in the feature matrix, ascending."""
    scores: FloatArray
    """Full-model score of each of ``rows``."""
    first_stage_rows: int
    """Rows the first stage scored; 0 when every row went to the second stage."""


def cascade_scores(
    scorer: ArrayScorer, features: npt.NDArray[np.float32], cascade: RankingCascade | None
) -> CascadeScores:
    """Score ``features`` in two stages, or all rows with the whole model when ``cascade`` is None.

    The first stage is skipped when the shortlist would contain every row or the model has no
    more trees than the first stage would use.
    """
    n_rows = len(features)
    everything = np.arange(n_rows, dtype=np.intp)
    if (
        cascade is None
        or n_rows <= cascade.shortlist
        or scorer.tree_count <= cascade.first_stage_trees
    ):
        return CascadeScores(everything, scorer.predict_array(features), 0)

    first = scorer.predict_array(features, cascade.first_stage_trees)
    shortlisted = np.sort(np.argpartition(-first, cascade.shortlist - 1)[: cascade.shortlist])
    return CascadeScores(shortlisted, scorer.predict_array(features[shortlisted]), n_rows)


def top_rows(scores: FloatArray, count: int) -> npt.NDArray[np.intp]:
    """Return the positions, ascending, of every score at or above the ``count``-th highest.

    Ties at the boundary are all kept, so a later tie-break can choose among them.
    """
    if len(scores) <= count:
        return np.arange(len(scores), dtype=np.intp)
    threshold = np.partition(scores, len(scores) - count)[len(scores) - count]
    return np.flatnonzero(scores >= threshold)
