"""Fan-out of a new or newly verified job: the seekers a push about it may go to.

A seeker is a candidate when the job's point is within their commute limit by one
of their travel modes, they meet the job's hard requirements, and the job's score
for them reaches the threshold. The score is the learned ranker's
(:class:`matching.push_ranking.FanoutRanker`, threshold
:attr:`PushRules.min_model_score`) when the service loaded a model, and otherwise the
baseline score (:func:`matching.scoring.score_jobs`, threshold
:attr:`PushRules.min_score`). The store then applies the rules that depend on stored
state (consent, never the same job twice, better than what was shown, seekers per
opening) in the transaction that writes the triggering change.

Commute minutes come from the transit network (:class:`geo.transit.TransitNetwork`,
walk, bike, bus and metro, drive) when the process has one, and from the
straight-line model otherwise. Coordinates are WGS84 degrees; distances are metres.
"""

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.spatial import cKDTree

from geo.crs import EARTH_RADIUS_M
from geo.transit.itinerary import LegKind, Route
from matching.candidates import MODE_SPEEDS_KMH, JobIndex, StraightLineCommute, parse_modes
from matching.push_ranking import FanoutRanker
from matching.push_rules import LANGS, Lang, PushMessage, PushRules, commute_label, render_message
from matching.scoring import (
    WEIGHTS,
    confident_occupation_codes,
    distance_scores,
    education_scores,
    keyword_scores,
    occupation_scores,
    precision_scores,
    salary_scores,
    score_jobs,
    seeker_keywords,
)
from matching.seeker_features import SeekerFeatureTable

logger = logging.getLogger(__name__)

PUSH_PRECISIONS = frozenset({"exact", "poi", "building", "business_area", "zone"})
"""Location precisions a push is made for; district- and city-level points are not places."""

CALIBRATION_POSTINGS = 40
"""Postings drawn to set the ranker threshold from the baseline threshold; each brings
every seeker in its reach, so a few dozen give thousands of pairs."""

NETWORK_REACH_FACTOR = 1.5
"""Margin on the straight-line reach when the transit network gives the minutes, because
the metro can beat the straight-line model's transit speed."""


class CommuteNetwork(Protocol):
    """The part of :class:`geo.transit.TransitNetwork` the fan-out uses."""

    def mode_matrices(
        self,
        origins_lon: npt.ArrayLike,
        origins_lat: npt.ArrayLike,
        dest_lon: npt.ArrayLike,
        dest_lat: npt.ArrayLike,
        modes: str | list[str],
    ) -> dict[str, npt.NDArray[np.float32]]: ...

    def route(
        self, origin: tuple[float, float], destination: tuple[float, float], modes: str
    ) -> Route: ...


@dataclass(frozen=True, slots=True)
class PushCandidate:
    """One seeker a job may be pushed to, with the message they would receive."""

    seeker_id: str
    posting_id: str
    score: float
    commute_min: float
    commute_mode: str
    messages: dict[Lang, PushMessage]
    """The one-job message in each language; the seeker's consent picks one."""
    digest_lines: dict[Lang, str]
    """The job's line in a preference-change digest, in each language."""
    headcount: int = 1
    """Vacancies of the posting; the per-posting cap is :meth:`PushRules.posting_cap` of it."""


class SeekerHomes:
    """Seekers with a k-d tree over their homes, built once per process.

    Parameters
    ----------
    seekers : pandas.DataFrame
        Seekers with ``seeker_id``, ``home_lon``/``home_lat`` (WGS84), ``max_commute_min``,
        ``modes`` and the columns :func:`matching.scoring.score_jobs` reads.
    """

    def __init__(self, seekers: pd.DataFrame) -> None:
        located = seekers.dropna(subset=["home_lon", "home_lat"])
        self.seekers = located.reset_index(drop=True)
        self._points = _unit_vectors(
            self.seekers["home_lon"].to_numpy(dtype=np.float64),
            self.seekers["home_lat"].to_numpy(dtype=np.float64),
        )
        # A k-d tree over points on the unit sphere finds a great-circle radius as a
        # chord length. It took 1.3 ms instead of 7.9 ms for 2 km among 2,000,000 homes.
        self._tree = cKDTree(self._points)
        limits = self.seekers["max_commute_min"].astype(float)
        self._max_commute_min = float(limits.max()) if len(limits) else 0.0
        self._feature_table: SeekerFeatureTable | None = None
        self._positions: dict[str, int] | None = None
        self._feature_lock = threading.Lock()

    @property
    def feature_table(self) -> SeekerFeatureTable:
        """The seekers' ranking-feature inputs, built on first use by a ranker."""
        with self._feature_lock:
            if self._feature_table is None:
                self._feature_table = SeekerFeatureTable(self.seekers)
            return self._feature_table

    @property
    def positions(self) -> dict[str, int]:
        """Row position of each seeker id in :attr:`seekers`, built on first use."""
        with self._feature_lock:
            if self._positions is None:
                ids = self.seekers["seeker_id"].astype(str)
                self._positions = dict(zip(ids, range(len(ids)), strict=True))
            return self._positions

    def within(self, lon: float, lat: float, radius_m: float) -> tuple[npt.NDArray[np.intp], Any]:
        """Return the positions of seekers whose home is within ``radius_m`` and their distances.

        Distances are great-circle metres on a sphere of `EARTH_RADIUS_M`. The positions
        come in no particular order.
        """
        centre = _unit_vectors(np.asarray([lon]), np.asarray([lat]))[0]
        angle = min(radius_m / EARTH_RADIUS_M, np.pi)
        found = self._tree.query_ball_point(centre, 2.0 * np.sin(angle / 2.0), return_sorted=False)
        positions = np.asarray(found, dtype=np.intp)
        chords = np.linalg.norm(self._points[positions] - centre, axis=1)
        distances = 2.0 * EARTH_RADIUS_M * np.arcsin(np.clip(chords / 2.0, 0.0, 1.0))
        return positions, distances

    @property
    def max_commute_min(self) -> float:
        """The largest commute limit of any seeker, minutes."""
        return self._max_commute_min


def _unit_vectors(
    lons: npt.NDArray[np.float64], lats: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Return WGS84 degrees as (n, 3) points on the unit sphere."""
    lon, lat = np.radians(lons), np.radians(lats)
    cos_lat = np.cos(lat)
    vectors: npt.NDArray[np.float64] = np.column_stack(
        [cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)]
    )
    return vectors


def push_candidates(
    posting: Mapping[str, Any],
    homes: SeekerHomes,
    rules: PushRules,
    network: CommuteNetwork | None = None,
    limit: int | None = None,
    ranker: FanoutRanker | None = None,
) -> list[PushCandidate]:
    """Return the seekers a job may be pushed to, best score first.

    Parameters
    ----------
    posting
        One posting joined with its anchor: ``posting_id``, ``title``, ``company``,
        ``lon``/``lat`` (WGS84), ``precision``, ``education``, ``experience_min_years``,
        ``graduate_ok`` and the other columns :func:`score_jobs` reads.
    homes
        The seekers, indexed by home.
    rules
        The score threshold is applied here; the stored-state rules are not.
    network
        The transit network; without it commutes come from the straight-line model.
    limit
        Most candidates returned, best scores first; None returns all.
    ranker
        The learned ranker; None scores with the baseline score.
    """
    if str(posting.get("precision")) not in PUSH_PRECISIONS:
        logger.info(
            "posting %r has precision %r; no push for an approximate location",
            posting.get("posting_id"),
            posting.get("precision"),
        )
        return []

    nearby = _reachable(posting, homes, network)
    nearby = nearby[_meets_hard_requirements(nearby, posting)]
    if nearby.empty:
        return []
    if ranker is None:
        scored = _scored(nearby, posting)
        scored = scored[scored["score"] >= rules.min_score]
    else:
        scored = _model_scored(nearby, posting, homes, ranker)
        scored = scored[scored["score"] >= ranker_threshold(rules, ranker)]
    if limit is not None:
        scored = scored.head(limit)
    return [_candidate(row, posting, rules, network) for row in scored.itertuples()]


def calibrate_model_threshold(
    postings: pd.DataFrame,
    homes: SeekerHomes,
    rules: PushRules,
    ranker: FanoutRanker,
    network: CommuteNetwork | None = None,
    seed: int = 0,
) -> float | None:
    """Return the ranker score that passes as many pairs as the baseline's threshold does.

    For :data:`CALIBRATION_POSTINGS` postings drawn from ``postings``, the (seeker,
    posting) pairs the fan-out would score (in reach and meeting the hard
    requirements) are scored by both the baseline and the whole model. The share of
    pairs whose baseline score reaches :attr:`PushRules.min_score` sets the quantile
    of the model scores that is returned. So the model pushes about as many pairs as
    the baseline did, and picks which ones by its own order. None when no pair is in
    reach or no baseline score passes.
    """
    placed = postings[postings["precision"].astype(str).isin(PUSH_PRECISIONS)]
    if placed.empty:
        return None
    rng = np.random.default_rng(seed)
    drawn = rng.choice(len(placed), min(CALIBRATION_POSTINGS, len(placed)), replace=False)
    baseline: list[npt.NDArray[np.float64]] = []
    model: list[npt.NDArray[np.float64]] = []
    for record in placed.iloc[np.sort(drawn)].to_dict("records"):
        posting = {str(key): value for key, value in record.items()}
        nearby = _reachable(posting, homes, network)
        nearby = nearby[_meets_hard_requirements(nearby, posting)]
        if nearby.empty:
            continue
        baseline.append(_scored(nearby, posting)["score"].to_numpy(dtype=np.float64))
        _, scores = ranker.scores(
            homes.feature_table,
            posting,
            nearby.index.to_numpy(dtype=np.intp),
            nearby["distance_m"].to_numpy(dtype=np.float64),
            nearby["commute_min"].to_numpy(dtype=np.float64),
            every_row=True,
        )
        model.append(scores)
    if not baseline:
        return None
    passing = float(np.mean(np.concatenate(baseline) >= rules.min_score))
    if passing == 0.0:
        return None
    threshold = float(np.quantile(np.concatenate(model), 1.0 - passing))
    logger.info(
        "ranker %r threshold %.4f passes %.2f %% of %d pairs, as baseline score %.2f does",
        ranker.model_id,
        threshold,
        100 * passing,
        sum(len(scores) for scores in model),
        rules.min_score,
    )
    return threshold


def digest_candidates(
    seeker: Mapping[str, Any],
    index: JobIndex,
    rules: PushRules,
    network: CommuteNetwork | None = None,
) -> list[PushCandidate]:
    """Return the jobs one seeker qualifies for, best score first, for a preference-change digest.

    The same rules as :func:`push_candidates` apply from the seeker's side: jobs at a
    place within the seeker's commute limit, whose hard requirements they meet, with a
    score of at least :attr:`PushRules.min_score`. At most four times
    :attr:`PushRules.digest_size` are returned, because the store drops jobs already shown.
    """
    found = index.for_commute(
        float(seeker["home_lon"]),
        float(seeker["home_lat"]),
        float(seeker["max_commute_min"]),
        parse_modes(str(seeker.get("modes") or "walk")),
    )
    found = found[found["precision"].astype(str).isin(PUSH_PRECISIONS)]
    found = found[_postings_passed(found, seeker)]
    if found.empty:
        return []
    scored = score_jobs(seeker, found)
    scored = scored[scored["score"] >= rules.min_score].head(rules.digest_size * 4)
    row_seeker = dict(seeker)
    candidates = []
    for record in scored.to_dict("records"):
        posting = {str(key): value for key, value in record.items()}
        row = pd.Series(
            {
                **row_seeker,
                "score": posting["score"],
                "commute_min": posting["estimated_commute_min"],
                "commute_mode": posting.get("commute_mode") or "transit",
            }
        )
        candidates.append(_candidate(_Row(row), posting, rules, network))
    return candidates


class _Row:
    """Attribute access to a Series, as ``itertuples`` rows give it to :func:`_candidate`."""

    def __init__(self, row: pd.Series) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return self._row[name]


def _postings_passed(postings: pd.DataFrame, seeker: Mapping[str, Any]) -> pd.Series:
    """Return which postings' education and experience requirements a seeker meets."""
    education = float(seeker.get("education") or 0)
    required = postings["education"].astype(float)
    education_ok = required.isna() | (required <= education)
    experience = float(seeker.get("experience_years") or 0.0)
    minimum = postings["experience_min_years"].astype(float)
    graduate_ok = postings["graduate_ok"].fillna(False).astype(bool)
    experience_ok = minimum.isna() | graduate_ok | (minimum <= experience)
    return education_ok & experience_ok


def _reachable(
    posting: Mapping[str, Any], homes: SeekerHomes, network: CommuteNetwork | None
) -> pd.DataFrame:
    """Return the seekers within their commute limit, with ``commute_min`` and ``commute_mode``."""
    lon, lat = float(posting["lon"]), float(posting["lat"])
    straight = StraightLineCommute()
    fastest = max(MODE_SPEEDS_KMH, key=lambda mode: MODE_SPEEDS_KMH[mode])
    radius = straight.reach_m(homes.max_commute_min, fastest)
    if network is not None:
        radius *= NETWORK_REACH_FACTOR
    positions, distances = homes.within(lon, lat, radius)
    # The frame keeps the positions in homes.seekers as its index.
    nearby = homes.seekers.iloc[positions].copy()
    nearby["distance_m"] = distances

    by_mode = _minutes_by_mode(nearby, lon, lat, network, straight)
    codes, distinct = pd.factorize(nearby["modes"].fillna("walk").astype(str))
    allowed = [{"walk", *parse_modes(value or "walk")} for value in distinct]
    best = np.full(len(nearby), np.inf)
    best_mode = np.full(len(nearby), "walk", dtype=object)
    for mode, minutes in by_mode.items():
        usable = np.asarray([mode in modes for modes in allowed], dtype=bool)[codes]
        better = usable & (minutes < best)
        best = np.where(better, minutes, best)
        best_mode = np.where(better, mode, best_mode)
    nearby["commute_min"] = best
    nearby["estimated_commute_min"] = best
    nearby["commute_mode"] = best_mode
    return nearby[nearby["commute_min"] <= nearby["max_commute_min"].astype(float)]


def _minutes_by_mode(
    nearby: pd.DataFrame,
    lon: float,
    lat: float,
    network: CommuteNetwork | None,
    straight: StraightLineCommute,
) -> dict[str, npt.NDArray[np.float64]]:
    modes = sorted(
        {"walk"} | {mode for value in nearby["modes"] for mode in parse_modes(str(value or "walk"))}
    )
    if nearby.empty:
        return {}
    if network is None:
        distance = nearby["distance_m"].to_numpy(dtype=np.float64)
        return {mode: straight.minutes(distance, mode) for mode in modes}
    matrices = network.mode_matrices(
        nearby["home_lon"].to_numpy(), nearby["home_lat"].to_numpy(), [lon], [lat], modes
    )
    return {mode: values[:, 0].astype(np.float64) for mode, values in matrices.items()}


def _meets_hard_requirements(seekers: pd.DataFrame, posting: Mapping[str, Any]) -> pd.Series:
    """Return which seekers meet the job's education and experience requirements.

    Education must reach the requirement; experience must reach the minimum unless
    the job takes fresh graduates. An unknown requirement excludes no seeker.
    """
    required = posting.get("education")
    education_ok = pd.Series(True, index=seekers.index)
    if required is not None and not pd.isna(required):
        education_ok = seekers["education"].astype(float) >= float(required)
    minimum = posting.get("experience_min_years")
    experience_ok = pd.Series(True, index=seekers.index)
    if minimum is not None and not pd.isna(minimum) and not bool(posting.get("graduate_ok")):
        experience_ok = seekers["experience_years"].astype(float).fillna(0.0) >= float(minimum)
    return education_ok & experience_ok


def _scored(seekers: pd.DataFrame, posting: Mapping[str, Any]) -> pd.DataFrame:
    """Return ``seekers`` with the baseline ``score`` of the one posting for each of them.

    The six components of :func:`matching.scoring.score_jobs` are computed with its own
    functions, once per distinct seeker value (wish code, keywords, education, salary
    wish), because calling ``score_jobs`` once per seeker costs tens of milliseconds each.
    """
    job = pd.DataFrame([dict(posting)])
    codes = confident_occupation_codes(job)
    titles = job["title"].fillna("").astype(str)
    components = {
        "score_distance": distance_scores(seekers["commute_min"].to_numpy(dtype=np.float64)),
        "score_occupation": _per_value(
            seekers["occupation_wish_code"].fillna("").astype(str),
            lambda code: occupation_scores(code, codes)[0],
        ),
        "score_keyword": _per_value(
            seekers["keywords"].fillna("").astype(str),
            lambda words: keyword_scores(seeker_keywords({"keywords": words}), titles)[0],
        ),
        "score_education": _per_value(
            seekers["education"].fillna(0).astype(int),
            lambda level: education_scores(level, job["education"])[0],
        ),
        "score_salary": _per_value(
            pd.Series(
                list(
                    zip(
                        seekers["salary_wish_min"].astype(float),
                        seekers["salary_wish_max"].astype(float),
                        strict=True,
                    )
                ),
                index=seekers.index,
            ),
            lambda wish: salary_scores(
                wish[0], wish[1], job["salary_min_month"], job["salary_max_month"]
            )[0],
        ),
        "score_precision": np.full(len(seekers), precision_scores(job["precision"])[0]),
    }
    total = np.zeros(len(seekers), dtype=np.float64)
    for column, weight in WEIGHTS.items():
        total += weight * components[column]
    scored = seekers.assign(score=np.clip(total, 0.0, 1.0))
    return scored.sort_values(["score", "seeker_id"], ascending=[False, True], kind="stable")


def ranker_threshold(rules: PushRules, ranker: FanoutRanker) -> float:
    """Return the ranker score a pushed job needs: the setting, else the calibrated value.

    Without either (no calibration ran yet, or it found no pair) nothing passes, so a
    model that was never compared with the baseline pushes nothing.
    """
    if rules.min_model_score is not None:
        return rules.min_model_score
    if ranker.threshold is not None:
        return ranker.threshold
    return float("inf")


def _model_scored(
    seekers: pd.DataFrame, posting: Mapping[str, Any], homes: SeekerHomes, ranker: FanoutRanker
) -> pd.DataFrame:
    """Return the seekers the ranker's cascade kept, with its ``score``, best first."""
    kept_rows, scores = ranker.scores(
        homes.feature_table,
        posting,
        seekers.index.to_numpy(dtype=np.intp),
        seekers["distance_m"].to_numpy(dtype=np.float64),
        seekers["commute_min"].to_numpy(dtype=np.float64),
    )
    scored = seekers.iloc[kept_rows].assign(score=scores)
    return scored.sort_values(["score", "seeker_id"], ascending=[False, True], kind="stable")


def _per_value(values: pd.Series, score: Any) -> npt.NDArray[np.float64]:
    """Return ``score(value)`` for each value, computing each distinct value once."""
    known = {value: float(score(value)) for value in values.unique()}
    return values.map(known).to_numpy(dtype=np.float64)


def _candidate(
    row: Any, posting: Mapping[str, Any], rules: PushRules, network: CommuteNetwork | None
) -> PushCandidate:
    metro = False
    if network is not None and row.commute_mode == "transit":
        home = (float(row.home_lon), float(row.home_lat))
        route = network.route(home, (float(posting["lon"]), float(posting["lat"])), "transit")
        metro = any(leg.kind == LegKind.METRO for leg in route.legs)
    title = str(posting.get("title") or "")
    company = str(posting.get("company") or "")
    messages: dict[Lang, PushMessage] = {}
    lines: dict[Lang, str] = {}
    for lang in LANGS:
        commute = commute_label(row.commute_min, row.commute_mode, lang, metro=metro)
        link = rules.job_link(str(posting["posting_id"]), lang)
        messages[lang] = render_message(title, company, commute, link, lang)
        lines[lang] = f"{title}（{commute}）" if lang == "zh" else f"{title} ({commute})"
    return PushCandidate(
        seeker_id=str(row.seeker_id),
        posting_id=str(posting["posting_id"]),
        score=float(row.score),
        commute_min=float(row.commute_min),
        commute_mode=str(row.commute_mode),
        messages=messages,
        digest_lines=lines,
        headcount=posting_headcount(posting),
    )


def posting_headcount(posting: Mapping[str, Any]) -> int:
    """Return the posting's vacancies from a ``headcount`` column, else 1.

    None of the posting sets in the data records a headcount (招聘人数), so today every
    posting counts as one vacancy.
    """
    value = posting.get("headcount")
    if value is None or pd.isna(value):
        return 1
    return max(1, int(value))
