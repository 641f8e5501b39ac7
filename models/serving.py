"""Scoring of one seeker's candidate postings with a loaded ranker, for the request path."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from models.registry import LoadedModel

# Builds the model's feature columns from seeker rows and candidate rows; the signature
# of matching.features.build_features.
FeatureBuilder = Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class ModelScorer:
    """Scores candidates with a registry model; ``Recommender`` orders by these scores."""

    model: LoadedModel
    build_features: FeatureBuilder

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
        # One seeker row: build_features pairs it with every candidate when the
        # candidates carry no seeker_id column.
        seeker_rows = pd.DataFrame([seeker.to_dict()])
        features = self.build_features(seeker_rows, candidates.reset_index(drop=True))
        return self.model.predict(features)
