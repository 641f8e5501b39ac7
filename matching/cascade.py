"""Staged ranking of one seeker's candidates with a gradient-boosted tree model.

Predicting costs rows times trees, and a seeker with a long commute limit can reach
most of the city's postings. Each stage of a `RankingCascade` scores the rows that the
previous stage kept with the model's first `CascadeStage.trees` trees and keeps the
`CascadeStage.keep` best. The default has two such stages: the first 15 trees score
every candidate and keep 15,000, then the first 60 trees keep 4,000. The whole model
then scores the last rows kept, so every score shown is the whole model's score.

A tree ensemble's raw score is the sum of its trees' outputs. So each stage keeps the
sums of the rows it passes on, and the next stage adds only the trees after them. The
result equals the whole model's score up to the rounding of the changed summation order.

The cascade can miss a posting that the full model would put in the top 20 but that
some stage ranks below its cut. ``bench/nearby_jobs.py`` measures how often
(overlap@20 and NDCG@20 against the full model on the same seekers), and
``docs/benchmarks.md`` records the numbers behind the default sizes.
"""

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CascadeStage:
    """One stage of a cascade: how many of the first trees score, and how many rows stay."""

    trees: int
    """Trees, from the first, that score the rows reaching this stage."""
    keep: int
    """Rows with the highest scores that go on to the next stage."""

    def __post_init__(self) -> None:
        if self.trees < 1:
            raise ValueError(f"stage trees {self.trees!r} is invalid; expected >= 1")
        if self.keep < 1:
            raise ValueError(f"stage keep {self.keep!r} is invalid; expected >= 1")

    @property
    def label(self) -> str:
        """Return the stage as ``"<trees> trees, <keep>"``, as the benchmark records it."""
        return f"{self.trees} trees, {self.keep}"


# Chosen by fidelity: a mean overlap@20 with the whole model's top 20 of at least 0.98,
# and at least 0.9 for every seeker, with 200,000 synthetic postings and a 200-tree
# model. 40 trees with 2,000 rows fell short (minimum 0.75 and 0.80), so that stage
# keeps 4,000. On a second check (a model trained with another seed, 40 other seekers)
# 40 trees keeping 4,000 fell short too (minimum 0.65) while 60 trees passed (mean
# 0.997, minimum 0.90), so the stage uses 60 trees. The cheaper stage in front was
# chosen the same way, fewest trees first:
# every screen of 5 or 10 trees keeping up to 20,000 rows fell short (minimum at most
# 0.85), and 15 trees keeping 15,000 matched the whole model's top 20 for all 20
# seekers. The table is in docs/benchmarks.md.
# NOTE: fidelity depends on the model, so measure a newly trained one with the
# nearby-jobs benchmark before relying on these sizes.
DEFAULT_STAGES = (CascadeStage(trees=15, keep=15_000), CascadeStage(trees=60, keep=4_000))


@dataclass(frozen=True)
class RankingCascade:
    """Stages that narrow the candidates before the whole model scores them."""

    stages: tuple[CascadeStage, ...] = DEFAULT_STAGES
    """Stages in the order they run, with more trees and fewer rows kept each time."""

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("stages is empty; expected at least one stage")
        for earlier, later in zip(self.stages, self.stages[1:], strict=False):
            if later.trees <= earlier.trees:
                raise ValueError(
                    f"stage trees {later.trees!r} is invalid; expected more than the"
                    f" previous stage's {earlier.trees!r}"
                )
            if later.keep >= earlier.keep:
                raise ValueError(
                    f"stage keep {later.keep!r} is invalid; expected fewer than the"
                    f" previous stage's {earlier.keep!r}"
                )

    @classmethod
    def of(cls, *sizes: tuple[int, int]) -> "RankingCascade":
        """Build a cascade from ``(trees, keep)`` pairs in the order the stages run."""
        return cls(tuple(CascadeStage(trees, keep) for trees, keep in sizes))

    @property
    def label(self) -> str:
        """Return the stages as ``"15 trees, 15000 > 60 trees, 4000"``."""
        return " > ".join(stage.label for stage in self.stages)


@runtime_checkable
class ArrayScorer(Protocol):
    """A tree model that scores a float32 feature matrix with all its trees or a range of them."""

    @property
    def tree_count(self) -> int:
        """Trees that a full prediction uses."""
        ...

    def predict_array(
        self, features: npt.NDArray[np.float32], trees: int | None = None, *, start: int = 0
    ) -> FloatArray:
        """Return one raw score per row of ``features``, summed over trees ``start`` to ``trees``.

        ``trees`` is the end of the range, exclusive, and None ends it at `tree_count`.
        """
        ...


@dataclass(frozen=True)
class CascadeScores:
    """Rows that reached the whole model and their full-model scores."""

    rows: npt.NDArray[np.intp]
    """Row numbers in the feature matrix, ascending."""
    scores: FloatArray
    """Full-model score of each of ``rows``."""
    stage_rows: tuple[int, ...]
    """Number of rows each stage scored, in order, for the stages that ran. Empty when none ran."""


def cascade_scores(
    scorer: ArrayScorer, features: npt.NDArray[np.float32], cascade: RankingCascade | None
) -> CascadeScores:
    """Score ``features`` through the cascade's stages, then the kept rows with the whole model.

    A stage is skipped when no more rows reach it than it keeps, or when the model has no
    more trees than the stage would use. With ``cascade`` None every row goes to the whole
    model. Each stage and the whole model add only the trees after those already summed.
    """
    rows = np.arange(len(features), dtype=np.intp)
    sums = np.zeros(len(features), dtype=np.float64)
    summed_trees = 0
    stage_rows: list[int] = []
    for stage in cascade.stages if cascade is not None else ():
        if len(rows) <= stage.keep or scorer.tree_count <= stage.trees:
            continue
        # The first stage to run scores the matrix itself, which saves copying every row.
        reaching = features if len(rows) == len(features) else features.take(rows, axis=0)
        scores = sums + scorer.predict_array(reaching, stage.trees, start=summed_trees)
        stage_rows.append(len(rows))
        kept = np.sort(np.argpartition(-scores, stage.keep - 1)[: stage.keep])
        rows, sums, summed_trees = rows[kept], scores[kept], stage.trees

    reaching = features if len(rows) == len(features) else features.take(rows, axis=0)
    scores = sums + scorer.predict_array(reaching, start=summed_trees)
    return CascadeScores(rows, scores, tuple(stage_rows))


def top_rows(scores: FloatArray, count: int) -> npt.NDArray[np.intp]:
    """Return the positions, ascending, of every score at or above the ``count``-th highest.

    Ties at the boundary are all kept, so a later tie-break can choose among them.
    """
    if len(scores) <= count:
        return np.arange(len(scores), dtype=np.intp)
    threshold = np.partition(scores, len(scores) - count)[len(scores) - count]
    return np.flatnonzero(scores >= threshold)
