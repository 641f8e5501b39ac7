"""The recommendation service: candidates, baseline score and reasons for a seeker or a point."""

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd

from geo.errors import DoorstepError
from geo.location import APPROXIMATE_PRECISIONS, Precision
from geo.transit.itinerary import Route
from geo.uncertainty import district_uncertainty_m, posting_uncertainty_m
from matching.batch_matching import BatchMatcher
from matching.candidates import JobIndex, NetworkCommuteEstimator
from matching.cascade import ArrayScorer, RankingCascade, cascade_scores, top_rows
from matching.explain import explain_frame
from matching.features import FEATURE_NAMES, build_features
from matching.hardship_blind import blind_matrix, has_hardship_flag, score_with_channel
from matching.model_reasons import model_reasons
from matching.posting_features import PostingFeatureTable
from matching.scoring import score_jobs

logger = logging.getLogger(__name__)

# A page of recommendations is topped up with city-level postings ("somewhere in
# Xi'an") only when fewer located postings are within the seeker's commute.
MIN_RESULTS = 20

# Columns that describe the posting, not the seeker; the anonymous nearby search
# explains only these (distance, precision and whether pay is stated).
_POINT_REASON_COLUMNS = ["distance_m", "precision", "salary_min_month", "salary_max_month"]

# An itinerary to an area's stand-in point would look exact, so only these get one.
_ROUTED_PRECISIONS = frozenset(
    precision.value
    for precision in Precision
    if precision not in APPROXIMATE_PRECISIONS and precision is not Precision.CITY
)


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

    def features(self, seeker: pd.Series, candidates: pd.DataFrame) -> pd.DataFrame: ...

    def predict(self, features: pd.DataFrame) -> npt.NDArray[np.float64]: ...

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame: ...


@runtime_checkable
class ItineraryPlanner(Protocol):
    """Plans door-to-door trips from one origin, such as `geo.transit.TransitNetwork`."""

    def routes(
        self,
        origin: tuple[float, float],
        dest_lon: npt.ArrayLike,
        dest_lat: npt.ArrayLike,
        modes: str | Iterable[str],
    ) -> list[Route]: ...


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
        (column ``model_score``) and their reasons come from its feature
        contributions (`matching.model_reasons`); ``score`` stays the baseline
        score. When ``None``, the baseline score orders them and
        `matching.explain` gives the reasons.
    transit : NetworkCommuteEstimator, optional
        The transit network (`geo.transit.TransitNetwork`) that commute estimates
        come from; without it they come from the straight-line model.
    planner : ItineraryPlanner, optional
        Gives each recommended posting with a point location its itinerary
        (columns ``itinerary`` and ``itinerary_kinds``); `from_store` uses
        ``transit`` when it can plan routes.
    cascade : RankingCascade, optional
        Stages that narrow the candidates before the whole model scores them
        (`matching.cascade`); None scores every candidate with the whole model.
        Used when ``scorer`` can score a feature matrix
        (`matching.cascade.ArrayScorer`) with `build_features`' columns.
    """

    postings: pd.DataFrame
    seekers: pd.DataFrame
    district_names: dict[str, str]
    district_uncertainty: dict[str, float] = field(default_factory=dict)
    scorer: CandidateScorer | None = None
    transit: NetworkCommuteEstimator | None = None
    planner: ItineraryPlanner | None = None
    cascade: RankingCascade | None = field(default_factory=RankingCascade)

    def __post_init__(self) -> None:
        self.index = JobIndex(self.postings, network=self.transit)
        # The feature table with the index and scorer it was built for. They are swapped
        # as one tuple, so a reader never pairs one index with another index's table.
        self._feature_table: tuple[JobIndex, CandidateScorer, PostingFeatureTable] | None = None
        # Row of each located posting id in the feature table it was built for.
        self._table_rows: tuple[PostingFeatureTable, dict[str, int]] | None = None
        # The batch matcher and the index it was prepared for, swapped as one tuple.
        self._batch: tuple[JobIndex, BatchMatcher] | None = None

    @classmethod
    def from_store(
        cls,
        store: "SupportsFrames",
        transit: NetworkCommuteEstimator | None = None,
        exact_homes: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ) -> "Recommender":
        """Load postings, seekers and district names from a store; see the class for ``transit``.

        ``exact_homes`` decrypts the stored seekers' exact homes in memory
        (``api.security.seeker_pi.SeekerPiCodec.with_exact_homes``). Without it the
        stored street office points stand in for the homes.
        """
        districts = store.layer_frame("districts")
        names = dict(zip(districts["code"].astype(str), districts["name"].astype(str), strict=True))
        stored = store.seekers_frame()
        if exact_homes is not None:
            stored = exact_homes(stored)
        seekers = stored.set_index("seeker_id", drop=False)
        postings = store.postings_frame()
        uncertainty = district_uncertainty_m(districts)
        postings["uncertainty_m"] = posting_uncertainty_m(postings, uncertainty)
        planner = transit if isinstance(transit, ItineraryPlanner) else None
        return cls(postings, seekers, names, uncertainty, transit=transit, planner=planner)

    def forget_seeker(self, seeker_id: str) -> None:
        """Drop a seeker from memory; a seeker that is not loaded is ignored."""
        if seeker_id in self.seekers.index:
            self.seekers = self.seekers.drop(index=seeker_id)

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

    def batch_matcher(self) -> BatchMatcher:
        """Return the baseline matcher of many seekers over the current index, built once."""
        index, cached = self._batch or (None, None)
        if cached is None or index is not self.index:
            index = self.index
            cached = BatchMatcher(index)
            self._batch = (index, cached)
        return cached

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
        # The feature table belongs to one index. Rebuilding it here (about a second per
        # 100,000 postings) puts the cost on this write, not on the next seeker's request.
        self.prepare_ranking()
        moved = int(on_anchor.sum())
        logger.info("refreshed %d postings of anchor %r in the job index", moved, anchor_id)
        return moved

    def set_posting_active(
        self, posting_id: str, active: bool, row: Mapping[str, Any] | None = None
    ) -> bool:
        """Remove a deactivated posting from the job index, or add an activated one.

        ``row`` is the posting joined with its anchor, as ``posting_for_push`` returns
        it; an activation without it changes nothing. Returns whether the index changed.
        """
        changed = self.set_postings_active([(posting_id, active, row)])
        if changed:
            logger.info(
                "posting %r %s the job index", posting_id, "added to" if active else "removed from"
            )
        return bool(changed)

    def set_postings_active(
        self, updates: Iterable[tuple[str, bool, Mapping[str, Any] | None]]
    ) -> int:
        """Apply many :meth:`set_posting_active` calls in order, rebuilding the index once.

        ``updates`` holds ``(posting_id, active, row)`` triples. The resulting frame is
        the one the calls one by one would leave: removed postings leave their place,
        and added ones go to the end in the order they were last added. Returns how many
        of the updates changed the index.
        """
        loaded = self.postings["posting_id"].astype(str)
        present = set(loaded)
        removed: set[str] = set()
        # Added postings by id; a dict keeps the order of the last addition.
        added: dict[str, Mapping[str, Any]] = {}
        changed = 0
        for posting_id, active, row in updates:
            indexed = posting_id in added or (posting_id in present and posting_id not in removed)
            if active == indexed or (active and row is None):
                continue
            if active and row is not None:
                added[posting_id] = row
            elif posting_id in added:
                del added[posting_id]
            else:
                removed.add(posting_id)
            changed += 1
        if not changed:
            return 0

        postings = self._postings_with(loaded, removed, list(added.values()))
        # Readers keep using the old frame and index until both are swapped here.
        index = JobIndex(postings, network=self.transit)
        self.postings, self.index = postings, index
        # The feature table belongs to one index; see refresh_anchor for its cost.
        self.prepare_ranking()
        return changed

    def _postings_with(
        self, loaded: pd.Series, removed: Collection[str], added: list[Mapping[str, Any]]
    ) -> pd.DataFrame:
        """Return the postings frame without ``removed`` and with ``added`` rows at the end."""
        postings = self.postings
        if removed:
            postings = postings.loc[~loaded.isin(list(removed)).to_numpy()]
            postings = postings.reset_index(drop=True)
        if not added:
            return postings
        columns = self.postings.columns
        # One frame per row, as when rows are added one at a time, so that pandas picks
        # each column's type by the same rules; the sync tests compare both frames.
        rows = [pd.DataFrame([{name: row.get(name) for name in columns}]) for row in added]
        for frame in rows:
            frame["uncertainty_m"] = posting_uncertainty_m(frame, self.district_uncertainty)
        return pd.concat([postings, *rows], ignore_index=True)

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
        return seeker, self.rank(seeker, limit, lang)

    def rank(self, seeker: pd.Series, limit: int, lang: str = "zh") -> pd.DataFrame:
        """Rank postings within a seeker row's commute limit, best first, with reasons.

        The row need not be loaded; the fairness audit ranks seekers with flipped flags.
        """
        if self.scorer is not None:
            fast = self._rank_from_table(self.scorer, seeker, limit, lang)
            if fast is not None:
                return fast

        candidates = self.index.for_commute(
            float(seeker["home_lon"]),
            float(seeker["home_lat"]),
            float(seeker["max_commute_min"]),
            _modes(seeker["modes"]),
            min_results=max(limit, MIN_RESULTS),
        )
        scored = score_jobs(seeker, candidates).reset_index(drop=True)
        if self.scorer is None:
            ranked = self._with_itineraries(seeker, scored.head(limit), lang)
            return explain_frame(ranked, seeker, lang).assign(reason_source="baseline")
        return self._rank_by_model(self.scorer, seeker, scored, limit, lang)

    def candidate_scores(
        self, seeker: pd.Series, candidates: pd.DataFrame, *, hardship_blind: bool = True
    ) -> npt.NDArray[np.float64]:
        """Return the score that orders each candidate row for a seeker row, in row order.

        The model's score when a model is loaded, else the baseline score. With
        ``hardship_blind`` False the model reads the hardship flag as trained. Only the
        fairness audit turns it off, to measure what the rule of
        `matching.hardship_blind` prevents.
        """
        rows = candidates.reset_index(drop=True)
        if self.scorer is None:
            scored = score_jobs(seeker, rows.assign(_row=np.arange(len(rows))))
            return scored.sort_values("_row")["score"].to_numpy(dtype=np.float64)
        features = self.scorer.features(seeker, rows)
        if hardship_blind and has_hardship_flag(seeker):
            scores, _ = score_with_channel(self.scorer.predict, features)
            return scores
        return self.scorer.predict(features)

    def _rank_by_model(
        self,
        scorer: CandidateScorer,
        seeker: pd.Series,
        scored: pd.DataFrame,
        limit: int,
        lang: str,
    ) -> pd.DataFrame:
        """Order by the model's score and explain the page by its feature contributions."""
        features = scorer.features(seeker, scored)
        if has_hardship_flag(seeker):
            scored["model_score"], features = score_with_channel(scorer.predict, features)
        else:
            scored["model_score"] = scorer.predict(features)
        ranked = scored.sort_values("model_score", ascending=False, kind="stable").head(limit)

        page_features = features.loc[ranked.index].reset_index(drop=True)
        return self._explain_page(
            scorer, seeker, ranked.reset_index(drop=True), page_features, lang
        )

    def _rank_from_table(
        self, scorer: CandidateScorer, seeker: pd.Series, limit: int, lang: str
    ) -> pd.DataFrame | None:
        """Rank with the posting feature table and the cascade, or return None to use frames.

        The page equals that of `_rank_by_model` over the rows the cascade keeps: rows
        are built only for the postings that can reach the page. None when the scorer
        cannot score a feature matrix, or when too few located postings are in reach
        and city-level postings fill the page.
        """
        index = self.index
        table = self._table_for(index, scorer)
        if table is None or not isinstance(scorer, ArrayScorer):
            return None
        reach = index.reachable(
            float(seeker["home_lon"]),
            float(seeker["home_lat"]),
            float(seeker["max_commute_min"]),
            _modes(seeker["modes"]),
        )
        if len(reach.positions) < max(limit, MIN_RESULTS):
            return None

        features = table.features(seeker, reach.positions, reach.distances, reach.minutes)
        if has_hardship_flag(seeker):
            features, channel = blind_matrix(features)
            if channel.any():
                # Public-welfare posts in reach need the channel's second score, which
                # the cascade's tree ranges do not compute; the frame path does.
                return None
        stages = cascade_scores(scorer, features, self.cascade)
        # Only postings scoring at least the page's lowest score can be on the page. The
        # baseline score and then the commute order break ties, as in `_rank_by_model`.
        best = top_rows(stages.scores, limit)
        rows = stages.rows[best]
        frame = index.rows(reach.subset(rows), model_score=stages.scores[best], feature_row=rows)
        scored = score_jobs(seeker, frame).reset_index(drop=True)
        scored["model_score"] = scored.pop("model_score")
        ranked = scored.sort_values("model_score", ascending=False, kind="stable").head(limit)
        page_rows = ranked.pop("feature_row").to_numpy(dtype=np.intp)
        page_features = pd.DataFrame(features[page_rows], columns=list(FEATURE_NAMES))
        return self._explain_page(
            scorer, seeker, ranked.reset_index(drop=True), page_features, lang
        )

    def _table_for(self, index: JobIndex, scorer: CandidateScorer) -> PostingFeatureTable | None:
        """Return the feature table of ``index`` for ``scorer``, built on first use and kept.

        None when the scorer builds features otherwise than `build_features` or orders
        its columns otherwise than `FEATURE_NAMES`, because the table copies both.
        """
        if (
            getattr(scorer, "build_features", None) is not build_features
            or tuple(getattr(scorer, "feature_names", ())) != FEATURE_NAMES
        ):
            return None
        cached = self._feature_table
        if cached is not None and cached[0] is index and cached[1] is scorer:
            return cached[2]
        context = getattr(scorer, "context", None)
        table = PostingFeatureTable(
            index.located,
            None if context is None else context.posting_context,
            None if context is None else context.as_of,
        )
        self._feature_table = (index, scorer, table)
        return table

    def posting_feature_values(self, posting_id: str) -> npt.NDArray[np.float32] | None:
        """Return a loaded located posting's row of the feature table (posting-only columns).

        None when no model is loaded, the scorer builds no table, or the posting is not in
        the job index.
        """
        if self.scorer is None:
            return None
        index = self.index
        table = self._table_for(index, self.scorer)
        if table is None:
            return None
        rows = self._table_rows
        if rows is None or rows[0] is not table:
            ids = index.located["posting_id"].astype(str)
            rows = (table, dict(zip(ids, range(len(ids)), strict=True)))
            self._table_rows = rows
        row = rows[1].get(posting_id)
        return None if row is None else table.matrix[row]

    def prepare_ranking(self) -> None:
        """Build the posting feature table now, so that the first request does not pay for it."""
        if self.scorer is not None:
            self._table_for(self.index, self.scorer)

    def _explain_page(
        self,
        scorer: CandidateScorer,
        seeker: pd.Series,
        ranked: pd.DataFrame,
        page_features: pd.DataFrame,
        lang: str,
    ) -> pd.DataFrame:
        """Add itineraries and the reasons from the model's feature contributions to a page."""
        # Contributions cost rows times trees, so only the page gets them.
        contributions = scorer.contributions(page_features)
        ranked = self._with_itineraries(seeker, ranked, lang)
        reasons = model_reasons(ranked, page_features, contributions, seeker, lang)
        texts = pd.Series([[reason.text for reason in row] for row in reasons], dtype=object)
        keys = pd.Series([[reason.key for reason in row] for row in reasons], dtype=object)
        return ranked.assign(reasons=texts, reason_keys=keys, reason_source="model")

    def _with_itineraries(self, seeker: pd.Series, ranked: pd.DataFrame, lang: str) -> pd.DataFrame:
        """Add ``itinerary`` (one-line text) and ``itinerary_kinds`` (leg kinds) to point postings.

        Rows without a planner, or located only as an area, get None.
        """
        ranked = ranked.assign(itinerary=None, itinerary_kinds=None)
        if self.planner is None or ranked.empty:
            return ranked
        routed = np.flatnonzero(ranked["precision"].astype(str).isin(_ROUTED_PRECISIONS))
        if len(routed) == 0:
            return ranked
        home = (float(seeker["home_lon"]), float(seeker["home_lat"]))
        rows = ranked.iloc[routed]
        trips = self.planner.routes(
            home,
            rows["lon"].to_numpy(dtype=np.float64),
            rows["lat"].to_numpy(dtype=np.float64),
            list(_modes(seeker["modes"])),
        )
        texts = np.full(len(ranked), None, dtype=object)
        kinds = np.full(len(ranked), None, dtype=object)
        for position, trip in zip(routed, trips, strict=True):
            texts[position] = trip.text(lang)
            kinds[position] = tuple(leg.kind.value for leg in trip.legs)
        return ranked.assign(itinerary=texts, itinerary_kinds=kinds)

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
