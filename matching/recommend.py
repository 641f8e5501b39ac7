"""The recommendation service: candidates, baseline score and reasons for a seeker or a point."""

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd

from geo.errors import DoorstepError
from geo.uncertainty import district_uncertainty_m, posting_uncertainty_m
from matching.candidates import JobIndex, NetworkCommuteEstimator
from matching.explain import explain_frame
from matching.scoring import score_jobs

logger = logging.getLogger(__name__)

# A page of recommendations is topped up with city-level postings ("somewhere in
# Xi'an") only when fewer located postings are within the seeker's commute.
MIN_RESULTS = 20

# Columns that describe the posting, not the seeker; the anonymous nearby search
# explains only these (distance, precision and whether pay is stated).
_POINT_REASON_COLUMNS = ["distance_m", "precision", "salary_min_month", "salary_max_month"]


class SeekerNotFoundError(DoorstepError, LookupError):
    """No seeker has the requested id."""


class SupportsFrames(Protocol):
    """A store that can hand over postings, seekers and map layers as frames."""

    def postings_frame(self) -> pd.DataFrame: ...

    def seekers_frame(self) -> pd.DataFrame: ...

    def layer_frame(self, name: str) -> gpd.GeoDataFrame: ...


class CandidateScorer(Protocol):
    """A learned ranker that scores one seeker's candidates; higher ranks first."""

    @property
    def model_id(self) -> str: ...

    def score(self, seeker: pd.Series, candidates: pd.DataFrame) -> npt.NDArray[np.float64]: ...


@dataclass
class Recommender:
    """Ranks active postings for seekers and points; built once per process.

    Parameters
    ----------
    postings : pandas.DataFrame
        Active postings joined with their anchor (WGS84 ``lon``/``lat``, ``precision``).
    seekers : pandas.DataFrame
        Seekers indexed by ``seeker_id``.
    district_names : dict
        6-digit district code to Chinese name.
    district_uncertainty : dict
        6-digit district code to the uncertainty in metres of a district-level
        location, as from :func:`geo.uncertainty.district_uncertainty_m`.
    scorer : CandidateScorer, optional
        The learned ranker. When set, recommendations are ordered by its score
        (column ``model_score``); ``score`` stays the baseline score the reasons
        explain. When ``None``, the baseline score orders them.
    transit : NetworkCommuteEstimator, optional
        The transit network (`geo.transit.TransitNetwork`) that commute estimates
        come from; without it they come from the straight-line model.
    """

    postings: pd.DataFrame
    seekers: pd.DataFrame
    district_names: dict[str, str]
    district_uncertainty: dict[str, float] = field(default_factory=dict)
    scorer: CandidateScorer | None = None
    transit: NetworkCommuteEstimator | None = None

    def __post_init__(self) -> None:
        self.index = JobIndex(self.postings, network=self.transit)

    @classmethod
    def from_store(
        cls, store: "SupportsFrames", transit: NetworkCommuteEstimator | None = None
    ) -> "Recommender":
        """Load postings, seekers and district names from a store; see the class for ``transit``."""
        districts = store.layer_frame("districts")
        names = dict(zip(districts["code"].astype(str), districts["name"].astype(str), strict=True))
        seekers = store.seekers_frame().set_index("seeker_id", drop=False)
        postings = store.postings_frame()
        uncertainty = district_uncertainty_m(districts)
        postings["uncertainty_m"] = posting_uncertainty_m(postings, uncertainty)
        return cls(postings, seekers, names, uncertainty, transit=transit)

    @property
    def n_postings(self) -> int:
        """Number of active postings in the index."""
        return len(self.index)

    @property
    def ranker_id(self) -> str:
        """Id of the learned model that orders recommendations, or ``"baseline"``."""
        return "baseline" if self.scorer is None else self.scorer.model_id

    @property
    def n_seekers(self) -> int:
        """Number of seekers loaded."""
        return len(self.seekers)

    def district_name(self, code: object) -> str | None:
        """Return the Chinese name of a 6-digit district code, ``None`` when unknown."""
        if code is None or (isinstance(code, float) and code != code):
            return None
        return self.district_names.get(str(code))

    def refresh_anchor(
        self,
        anchor_id: str,
        *,
        lon: float,
        lat: float,
        precision: str,
        district_code: str | None,
        merged_ids: Collection[str] = (),
    ) -> int:
        """Move one anchor's postings in memory to its new place and rebuild the job index.

        Parameters
        ----------
        anchor_id
            The anchor whose pin moved, or the survivor of a merge.
        lon, lat
            The anchor's point, WGS84 degrees.
        precision
            A :class:`geo.location.Precision` value.
        district_code
            6-digit code of the district containing the point.
        merged_ids
            Anchors merged into ``anchor_id``; their postings move to it first.

        Returns
        -------
        int
            Number of active postings now on ``anchor_id``.
        """
        postings = self.postings.copy()
        if merged_ids:
            postings.loc[postings["anchor_id"].isin(list(merged_ids)), "anchor_id"] = anchor_id

        on_anchor = postings["anchor_id"] == anchor_id
        postings.loc[on_anchor, "lon"] = lon
        postings.loc[on_anchor, "lat"] = lat
        postings.loc[on_anchor, "precision"] = precision
        postings.loc[on_anchor, "district_code"] = district_code
        postings.loc[on_anchor, "uncertainty_m"] = posting_uncertainty_m(
            postings.loc[on_anchor], self.district_uncertainty
        )

        # Readers keep using the old frame and index until both are swapped here.
        index = JobIndex(postings, network=self.transit)
        self.postings, self.index = postings, index
        moved = int(on_anchor.sum())
        logger.info("refreshed %d postings of anchor %r in the job index", moved, anchor_id)
        return moved

    def nearby(self, lon: float, lat: float, radius_m: float, lang: str = "zh") -> pd.DataFrame:
        """Return postings within ``radius_m`` metres of a WGS84 point, nearest first, with reasons.

        City-level postings are never returned here: their point is not a place.
        """
        found = self.index.within(lon, lat, radius_m)
        explained = explain_frame(found[_POINT_REASON_COLUMNS], {}, lang)
        return found.assign(reasons=explained["reasons"].to_numpy())

    def recommend(
        self, seeker_id: str, limit: int, lang: str = "zh"
    ) -> tuple[pd.Series, pd.DataFrame]:
        """Rank postings within the seeker's commute limit, best first, with reasons.

        Raises
        ------
        SeekerNotFoundError
            When ``seeker_id`` is unknown.
        """
        seeker = self.seeker(seeker_id)

        candidates = self.index.for_commute(
            float(seeker["home_lon"]),
            float(seeker["home_lat"]),
            float(seeker["max_commute_min"]),
            _modes(seeker["modes"]),
            min_results=max(limit, MIN_RESULTS),
        )
        scored = score_jobs(seeker, candidates)
        if self.scorer is not None:
            scored["model_score"] = self.scorer.score(seeker, scored)
            scored = scored.sort_values("model_score", ascending=False, kind="stable")
        ranked = scored.head(limit)
        return seeker, explain_frame(ranked, seeker, lang)

    def seeker(self, seeker_id: str) -> pd.Series:
        """Return one seeker row."""
        if seeker_id not in self.seekers.index:
            raise SeekerNotFoundError(f"seeker {seeker_id!r} not found")
        row: pd.Series = self.seekers.loc[[seeker_id]].iloc[0]
        return row

    def seeker_page(
        self, limit: int, offset: int, group: str | None = None
    ) -> tuple[pd.DataFrame, int]:
        """Return ``limit`` seekers from ``offset`` and the total count, of one group if given."""
        chosen = self.seekers if group is None else self.seekers[self.seekers["group"] == group]
        return chosen.iloc[offset : offset + limit], len(chosen)


def _modes(value: object) -> Iterable[str]:
    return str(value or "transit").split(";")
