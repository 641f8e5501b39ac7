"""Scoring of one seeker's candidate postings with a loaded ranker, for the request path.

The features must be computed as in training (`models.dataset`). Two inputs are not
in a posting row and are prepared once when the service starts (`serving_context`):

- the posting context of `matching.posting_context` (employer size, key-enterprise
  flag, postings per employer, competition), joined to candidates by ``posting_id``;
- the date posting age is measured at. The postings are historical (mostly 2018), so
  measuring age at today's date would put every posting years outside the ages the
  model saw in training. The service uses the 95th percentile of publication dates,
  which is near the end of the data and ignores the few much newer postings. With a
  live posting feed this becomes today's date.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from matching.posting_context import CONTEXT_COLUMNS, attach_posting_context
from models.registry import LoadedModel

AGE_REFERENCE_QUANTILE = 0.95
"""Quantile of publication dates that serves as "today" for posting age on the request path."""

# Builds the model's feature columns from seeker rows and candidate rows; the signature
# of matching.features.build_features.
FeatureBuilder = Callable[..., pd.DataFrame]


@dataclass(frozen=True)
class ServingContext:
    """Inputs of the features that a posting row lacks, prepared once per process."""

    posting_context: pd.DataFrame
    """`CONTEXT_COLUMNS` indexed by ``posting_id``."""
    as_of: pd.Timestamp
    """Date that posting age is measured at."""


def serving_context(
    postings: pd.DataFrame, seekers: pd.DataFrame, curated: pd.DataFrame | None
) -> ServingContext:
    """Compute the posting context and the posting-age date for the request path.

    Raises
    ------
    ValueError
        No posting has a readable ``published_on`` date.
    """
    context = attach_posting_context(postings, seekers, curated)
    published = pd.to_datetime(postings["published_on"], errors="coerce").dropna()
    if published.empty:
        raise ValueError("no posting has a valid published_on date; expected YYYY-MM-DD")
    days = published.to_numpy(dtype="datetime64[D]").astype(np.int64)
    reference = int(np.quantile(days, AGE_REFERENCE_QUANTILE, method="lower"))
    as_of = pd.Timestamp(np.datetime64(reference, "D"))
    return ServingContext(context.set_index("posting_id")[list(CONTEXT_COLUMNS)], as_of)


@dataclass(frozen=True)
class ModelScorer:
    """Scores candidates with a registry model; ``Recommender`` orders by these scores."""

    model: LoadedModel
    build_features: FeatureBuilder
    context: ServingContext | None = None
    """Posting context and age date; without it those features are NaN or aged to today."""

    @property
    def model_id(self) -> str:
        """Id of the model in the registry."""
        return self.model.model_id

    def score(self, seeker: pd.Series, candidates: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Return one model score per candidate row, in row order; higher ranks first.

        Parameters
        ----------
        seeker : pandas.Series
            The seeker row, as from ``Recommender.seeker``.
        candidates : pandas.DataFrame
            Candidate postings with commute columns, as from ``JobIndex.for_commute``.
        """
        if candidates.empty:
            return np.zeros(0, dtype=np.float64)
        return self.model.predict(self.features(seeker, candidates))

    def features(self, seeker: pd.Series, candidates: pd.DataFrame) -> pd.DataFrame:
        """Build the model's features of one seeker's candidates, as in training.

        Returns
        -------
        pandas.DataFrame
            One float32 column per model feature and one row per candidate, in row
            order, with a fresh ``RangeIndex``.
        """
        # One seeker row: build_features pairs it with every candidate when the
        # candidates carry no seeker_id column.
        seeker_rows = pd.DataFrame([seeker.to_dict()])
        rows = candidates.reset_index(drop=True)
        if self.context is None:
            return self.build_features(seeker_rows, rows)
        known = self.context.posting_context.reindex(rows["posting_id"])
        rows = rows.drop(columns=list(CONTEXT_COLUMNS), errors="ignore")
        rows = pd.concat([rows, known.reset_index(drop=True)], axis=1)
        return self.build_features(seeker_rows, rows, as_of=self.context.as_of)

    def predict(self, features: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Return the model score of rows of `features`; higher ranks first."""
        if features.empty:
            return np.zeros(0, dtype=np.float64)
        return self.model.predict(features)

    @property
    def tree_count(self) -> int:
        """Trees a full prediction uses: the best iteration's, else all."""
        booster = self.model.booster
        return int(booster.best_iteration if booster.best_iteration > 0 else booster.num_trees())

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The model's feature columns, in the order `predict_array` expects them."""
        return tuple(self.model.feature_names)

    def predict_array(
        self, features: npt.NDArray[np.float32], trees: int | None = None, *, start: int = 0
    ) -> npt.NDArray[np.float64]:
        """Return the raw score of each row of a float32 matrix in `feature_names` order.

        The score sums trees ``start`` up to ``trees`` (exclusive), as a cascade's stages
        do; None ends at `tree_count`. With the defaults it equals `predict` for a
        LambdaRank model, whose score is the raw score. A range that the model has a
        compiled library for (`models.compiled`) runs that library, others LightGBM.

        Raises
        ------
        ValueError
            When the range is empty or ends past `tree_count`.
        """
        stop = self.tree_count if trees is None else trees
        if not 0 <= start < stop <= self.tree_count:
            raise ValueError(
                f"tree range {start}..{stop} is invalid; expected 0 <= start < end <= "
                f"{self.tree_count}"
            )
        if len(features) == 0:
            return np.zeros(0, dtype=np.float64)
        compiled = self.model.compiled
        if compiled is not None:
            # Same trees summed in the same order as LightGBM, so the same float64 sums.
            summed = compiled.predict(features, start, stop)
            if summed is not None:
                return summed
        scores = self.model.booster.predict(
            features,
            start_iteration=start,
            num_iteration=stop - start,
            raw_score=True,
            num_threads=1,
        )
        return np.asarray(scores, dtype=np.float64)

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        """Return each feature's contribution to each row's score (exact TreeSHAP).

        LightGBM computes the values itself (``pred_contrib=True``) at the model's
        best iteration. A row's contributions plus the model's bias (``bias`` column)
        add up to its score. The cost grows with rows times trees, so the request path
        calls this on the shown page only.

        Returns
        -------
        pandas.DataFrame
            One column per model feature in model order, then ``bias``; index as
            ``features``.
        """
        names = list(self.model.feature_names)
        if features.empty:
            return pd.DataFrame(columns=[*names, "bias"], dtype=np.float64)
        booster = self.model.booster
        iteration = booster.best_iteration if booster.best_iteration > 0 else None
        values = booster.predict(
            features.loc[:, names].astype(np.float32),
            num_iteration=iteration,
            pred_contrib=True,
            num_threads=1,
        )
        return pd.DataFrame(
            np.asarray(values, dtype=np.float64), columns=[*names, "bias"], index=features.index
        )
