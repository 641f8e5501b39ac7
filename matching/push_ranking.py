"""Learned-ranker scores of one posting for the seekers a push fan-out reaches.

The fan-out scores with the model the service loads for recommendations (the newest
valid registry model, `api.ranking.load_ranker`). The features of every (seeker,
posting) pair in reach are built in one batch by `matching.seeker_features`. They go
through the same `matching.cascade` stages as recommendations: the model's first
trees narrow a large candidate set, and the whole model scores the rows kept.

A LambdaRank score is a raw tree sum with no fixed range, so its threshold is on the
model's own scale: `matching.push_rules.PushRules.min_model_score` when set, and
otherwise the score calibrated against the baseline's threshold. The better-than-shown
rule compares shown jobs re-scored by the same model.
"""

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo.crs import EARTH_RADIUS_M
from geo.uncertainty import posting_uncertainty_m
from matching.candidates import MODE_SPEEDS_KMH, StraightLineCommute, parse_modes
from matching.cascade import ArrayScorer, RankingCascade, cascade_scores
from matching.features import FEATURE_NAMES, PRECISION_RANK
from matching.seeker_features import SeekerFeatureTable, posting_values

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

LoadedValues = Callable[[str], npt.NDArray[np.float32] | None]
"""Returns a loaded posting's posting-only feature row, or None for a posting not loaded."""

EXACT_ROWS = 15_000
"""Seekers per posting up to which the fan-out scores every one with the whole model.

A push goes to the best seekers above a threshold, so a seeker the cascade drops is a
seeker who loses a push. Of the whole model's 500 best among about 32,800 seekers,
the cascade kept 90.5 % on average (docs/benchmarks.md, "Cascade fidelity"). In the
store of 20,000 simulated seekers, 200 sampled placed postings reached at most 9,882
seekers each, so there the whole model scores every seeker."""

_PRECISION_COLUMN = FEATURE_NAMES.index("location_precision_rank")
_UNCERTAINTY_COLUMN = FEATURE_NAMES.index("location_uncertainty_m")


@dataclass
class FanoutRanker:
    """The service's learned ranker, applied to one posting and many seekers.

    Parameters
    ----------
    scorer
        A model that scores float32 matrices in `FEATURE_NAMES` order, such as
        `models.serving.ModelScorer`.
    model_id
        Registry id of the model; the push decision log and ``/health`` name it.
    context
        The `models.serving.ServingContext` of the loaded postings, or None. A
        posting outside it (a posting that was inactive when the service started)
        gets NaN context features.
    cascade
        Stages that narrow large candidate sets before the whole model scores them.
    """

    scorer: ArrayScorer
    model_id: str
    context: Any = None
    cascade: RankingCascade | None = field(default_factory=RankingCascade)
    threshold: float | None = None
    """Score calibrated by `matching.push_fanout.calibrate_model_threshold`; None until then."""
    loaded_values: LoadedValues | None = None
    """Posting-only feature rows of the postings the recommender loaded, by posting id.
    Building one for a posting costs tens of milliseconds, so loaded rows are reused."""
    exact_rows: int = EXACT_ROWS
    """Maximum seekers per posting that the whole model scores without the cascade."""

    def __post_init__(self) -> None:
        names = tuple(getattr(self.scorer, "feature_names", FEATURE_NAMES))
        if names != FEATURE_NAMES:
            raise ValueError(
                f"model {self.model_id!r} has feature columns {list(names)[:3]}...;"
                " expected matching.features.FEATURE_NAMES"
            )

    def scores(
        self,
        table: SeekerFeatureTable,
        posting: Mapping[str, Any],
        positions: npt.NDArray[np.intp],
        point_distances: FloatArray,
        minutes: FloatArray,
        *,
        every_row: bool = False,
    ) -> tuple[npt.NDArray[np.intp], FloatArray]:
        """Score the seekers at ``positions`` for one posting.

        ``every_row`` scores all rows with the whole model, without the cascade, as
        happens anyway for at most `exact_rows` seekers.

        Returns
        -------
        tuple of numpy.ndarray
            The indices into ``positions`` that the cascade kept, ascending, and the
            whole model's score of each. Rows a cascade stage dropped get no score,
            because no threshold or cap would reach them before the kept rows.
        """
        if len(positions) == 0:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float64)
        distances = np.hypot(point_distances, _uncertainty_m(posting))
        features = table.features(
            self.posting_values(posting), posting, positions, distances, minutes
        )
        exact = every_row or len(positions) <= self.exact_rows
        scored = cascade_scores(self.scorer, features, None if exact else self.cascade)
        return scored.rows, scored.scores

    def shown_scores(
        self,
        table: SeekerFeatureTable,
        seeker_positions: Mapping[str, int],
        seekers: pd.DataFrame,
        postings: Mapping[str, Mapping[str, Any]],
        pairs: Sequence[tuple[str, str]],
    ) -> dict[tuple[str, str], float]:
        """Re-score (seeker id, posting id) pairs that were pushed before, on this model's scale.

        Pairs whose seeker or posting is not loaded are left out. Commutes come from the
        straight-line model here, not from the transit network.
        """
        by_posting: dict[str, list[str]] = {}
        for seeker_id, posting_id in pairs:
            if seeker_id in seeker_positions and posting_id in postings:
                by_posting.setdefault(posting_id, []).append(seeker_id)

        found: dict[tuple[str, str], float] = {}
        for posting_id, seeker_ids in by_posting.items():
            posting = postings[posting_id]
            positions = np.asarray([seeker_positions[s] for s in seeker_ids], dtype=np.intp)
            chosen = seekers.iloc[positions]
            distances = _haversine_m(
                chosen["home_lon"].to_numpy(dtype=np.float64),
                chosen["home_lat"].to_numpy(dtype=np.float64),
                float(posting["lon"]),
                float(posting["lat"]),
            )
            minutes = _straight_line_minutes(chosen["modes"], distances)
            distances = np.hypot(distances, _uncertainty_m(posting))
            features = table.features(
                self.posting_values(posting), posting, positions, distances, minutes
            )
            values = self.scorer.predict_array(features)
            found.update(
                ((seeker_id, posting_id), float(value))
                for seeker_id, value in zip(seeker_ids, values, strict=True)
            )
        return found

    def posting_values(self, posting: Mapping[str, Any]) -> npt.NDArray[np.float32]:
        """Return the posting-only feature columns of ``posting``, at its current location.

        A loaded posting's row is copied, and other postings get a row built from
        ``posting`` itself. The two location columns are set from ``posting`` in both
        cases, because a verified anchor moves the posting and may change its precision,
        and a posting read from the store has no ``uncertainty_m`` column.
        """
        loaded = None
        if self.loaded_values is not None:
            loaded = self.loaded_values(str(posting["posting_id"]))
        values = posting_values(posting, self.context) if loaded is None else loaded.copy()
        rank = PRECISION_RANK.get(str(posting.get("precision")))
        values[_PRECISION_COLUMN] = np.nan if rank is None else rank
        values[_UNCERTAINTY_COLUMN] = _posting_uncertainty(posting)
        return values


def _posting_uncertainty(posting: Mapping[str, Any]) -> float:
    """Return the posting's uncertainty in metres as `build_features` reads it, NaN if unknown."""
    value = posting.get("uncertainty_m")
    if value is not None and not pd.isna(value):
        return float(value)
    frame = pd.DataFrame(
        [{"precision": posting.get("precision"), "district_code": posting.get("district_code")}]
    )
    return float(posting_uncertainty_m(frame, {}).iloc[0])


def _uncertainty_m(posting: Mapping[str, Any]) -> float:
    """Return the posting's location uncertainty in metres, 0 when it has none."""
    value = posting.get("uncertainty_m")
    if value is None or pd.isna(value):
        frame = pd.DataFrame(
            [{"precision": posting.get("precision"), "district_code": posting.get("district_code")}]
        )
        value = posting_uncertainty_m(frame, {}).iloc[0]
    return 0.0 if pd.isna(value) else float(value)


def _haversine_m(lon: FloatArray, lat: FloatArray, to_lon: float, to_lat: float) -> FloatArray:
    """Return great-circle metres from WGS84 points to one WGS84 point."""
    lon1, lat1 = np.radians(lon), np.radians(lat)
    lon2, lat2 = np.radians(to_lon), np.radians(to_lat)
    half = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    metres: FloatArray = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(half))
    return metres


def _straight_line_minutes(modes: pd.Series, distances: FloatArray) -> FloatArray:
    """Return the straight-line minutes by each seeker's fastest allowed mode (walk always)."""
    estimator = StraightLineCommute()
    codes, distinct = pd.factorize(modes.fillna("walk").astype(str))
    best = np.full(len(distances), np.inf)
    for mode in MODE_SPEEDS_KMH:
        allowed = np.asarray(
            [mode == "walk" or mode in parse_modes(value or "walk") for value in distinct],
            dtype=bool,
        )[codes]
        best = np.where(allowed, np.minimum(best, estimator.minutes(distances, mode)), best)
    return best
