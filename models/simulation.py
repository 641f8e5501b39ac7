"""Behaviour simulation: simulated impressions, clicks, applications, interviews and hires.

No interaction log of the bureau exists yet, so every label this module produces is
simulated, and every report built on it must say so. Real inputs: the postings
(with their real publication dates, places, pay and requirements) and the simulated
seekers of `matching.seeker_simulation` homed at real compounds and campuses.

How a session is simulated
--------------------------
1. Time. Each seeker searches for a few weeks. The first session falls on a day drawn
   from the postings' real publication dates, later ones follow at
   ``sessions_per_week``. A posting is shown only from its publication day to
   ``posting_lifetime_days`` later, never before it was published.
2. Retrieval. The logged system's candidates: postings within the seeker's commute
   limit by the straight-line estimate (half of them from the wished 中类 where
   available), plus some city-level postings.
3. Logging policy. The 20 postings shown are the top of a mix of the baseline score
   with noise, recency and employer popularity, with Gumbel noise, so the shown
   lists are neither the baseline order nor random.
4. Behaviour (`models.behaviour`). A position-based click model: the seeker looks at
   position ``k`` with chance ``(1/k)**eta`` and clicks with chance
   ``sigmoid(utility)``. Clicks lead to applications, employers choose whom to
   interview, and interviews end in hires, each stage drawn only for those who
   reached the one before. Each row also records the stage the seeker would have
   reached had they looked at every position, which the evaluation uses.
5. Unshown candidates (``include_unshown``). The pool's other postings live that day,
   which the page did not show, get position 0, logged label 0 and the stage the
   seeker would have reached had they been shown and looked at. The evaluation ranks
   them with the shown rows, so Recall@20 counts relevant jobs the page missed. Their
   draws come from a second generator, so the logged sessions do not change.

How the labels differ from the baseline score
---------------------------------------------
The evaluation would be circular if the labels were the baseline formula
(`matching.scoring`) plus noise. The utility is written independently of it:

- Commute: a linear disutility per minute of the *true* trip, which is the
  straight-line estimate times a per-pair log-normal detour factor, with a steeper
  slope per group and a per-seeker multiplier, and an extra penalty per minute over
  the seeker's limit. The baseline uses ``exp(-t/20)`` of the estimate itself.
- Occupation: interest by shared level from the classifier's code however unsure it
  is, plus a per-seeker taste for each 大类; the baseline drops unsure codes.
- Pay: ``sensitivity[group] * log(pay_mid / wish_mid)``, so higher pay keeps helping;
  the baseline saturates at the wish maximum.
- Qualifications: under-qualification costs per level, over-qualification costs a
  little too, and missing experience costs per year; the baseline ignores
  experience and over-qualification.
- Group policy: graduates value traineeships, assistance targets public-welfare posts
  and short trips, talent pay, talent posts and key enterprises. The baseline has no
  group terms.
- Latent tastes the features never see: seeker activity, posting quality, employer
  selectivity, seeker-by-大类 tastes. No feature set explains the labels fully.
- Employers decide interviews from qualifications, their selectivity and the number
  of competing seekers nearby. Location precision and title keywords, which are
  baseline terms, do not enter the utility at all.
"""

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.neighbors import BallTree
from tqdm.auto import tqdm

from geo.crs import EARTH_RADIUS_M, haversine_m
from geo.location import Precision
from matching.candidates import JobIndex, NetworkCommuteEstimator, StraightLineCommute, parse_modes
from matching.scoring import score_jobs
from models.behaviour import (
    LABEL_SHOWN,
    PostingTraits,
    SeekerTaste,
    draw_labels,
    draw_taste,
    posting_traits,
    utility,
)

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# ``position`` of a live pool posting that the logged page did not show.
UNSHOWN_POSITION = 0

IMPRESSION_COLUMNS = (
    "query_id",
    "seeker_id",
    "posting_id",
    "group",
    "query_time",
    "position",
    "label",
    "label_if_examined",
    "baseline_score",
    "distance_m",
    "commute_min",
)


@dataclass(frozen=True)
class BehaviourParameters:
    """Every number of the behaviour simulation, each with its source or "assumption".

    Utility terms are on the logit scale of the click model. Literature cited here
    supports the form of a term; the values are assumptions unless a line says
    otherwise.
    """

    # --- time ---
    # Assumption: an active seeker opens the service 1.5 times a week for 3 weeks.
    sessions_per_week: float = 1.5
    search_weeks: float = 3.0
    # Assumption: a posting stays listed for 30 days after its (last) publication date.
    posting_lifetime_days: int = 30
    # Assumption: the 2018 postings are a scrape of late September, so sessions go on
    # for a week after the last publication day, while those postings are still listed.
    days_after_last_publication: int = 7

    # --- retrieval and logging policy ---
    # Assumption: the logged system's candidate pool per seeker.
    pool_located: int = 240
    pool_city: int = 40
    # Share of the located pool drawn from the wished 中类 when there are enough.
    pool_same_middle_share: float = 0.5
    # Assumption: a page shows 20 results, positions 1..20.
    page_size: int = 20
    # Assumption: the logging policy mixes the baseline (with noise), recency and
    # employer popularity; Gumbel noise makes it stochastic.
    logging_baseline_weight: float = 1.0
    logging_baseline_noise_sd: float = 0.15
    logging_recency_weight: float = 0.3
    logging_recency_days: float = 7.0
    logging_popularity_weight: float = 0.2
    logging_gumbel_scale: float = 0.05

    # --- click model ---
    # Position-based examination ``(1/k)**eta``: a position-bias model of the kind
    # compared by Craswell et al., "An experimental comparison of click position-bias
    # models", WSDM 2008. eta = 1 is an assumption.
    position_bias_eta: float = 1.0
    # Assumption: chosen so that about one impression in twenty is clicked.
    click_intercept: float = -0.8

    # --- utility ---
    # Assumption: utility lost per minute of one-way commute, by group. Assistance
    # targets dislike long trips most. That groups value commutes differently is
    # documented, e.g. unemployed women in France value commute about 20 % more than
    # men (Le Barbanchon, Rathelot and Roulet, QJE 136(1), 2021); these values are not
    # taken from that study.
    commute_decay_per_min: Mapping[str, float] = field(
        default_factory=lambda: {
            "graduate": 0.040,
            "talent": 0.030,
            "assistance": 0.080,
            "general": 0.050,
        }
    )
    # Assumption: extra utility lost per minute beyond the seeker's own limit.
    over_limit_penalty_per_min: float = 0.08
    # Assumption: sd of the log of the true trip over the straight-line estimate.
    true_commute_log_sd: float = 0.3
    # Assumption: a city-level posting ("somewhere in Xi'an") is read as a trip of this
    # share of the seeker's limit, with an extra penalty for not knowing where.
    city_commute_share: float = 0.8
    unknown_location_penalty: float = 0.3
    # Assumption: utility per unit of log(pay / wished pay), by group; talent weighs
    # pay most, assistance targets least.
    pay_sensitivity: Mapping[str, float] = field(
        default_factory=lambda: {
            "graduate": 1.5,
            "talent": 3.0,
            "assistance": 1.0,
            "general": 2.0,
        }
    )
    # Yuan/month; keeps parse outliers (a 5,000,000 yuan "salary") from dominating.
    pay_floor_yuan: float = 1000.0
    pay_ceiling_yuan: float = 60000.0
    # Assumption: penalty for pay not stated (面议).
    unknown_pay_penalty: float = 0.3
    # Assumption: interest by the deepest occupation level shared with the wish
    # (大类, 中类, 小类, 细类).
    occupation_interest: tuple[float, float, float, float] = (0.3, 1.0, 1.6, 2.2)
    # Assumption: mismatch penalties per education level and per missing year.
    underqualified_per_level: float = 0.8
    overqualified_per_level: float = 0.25
    experience_shortfall_per_year: float = 0.3
    # Assumption: group-policy preferences.
    graduate_traineeship_bonus: float = 1.0
    assistance_welfare_bonus: float = 1.5
    talent_post_bonus: float = 1.0
    talent_key_enterprise_bonus: float = 0.6
    # Assumption: utility per employer size class above "small".
    size_preference_per_class: float = 0.1

    # --- unobserved random effects (standard deviations) ---
    # Assumption, all five: large enough that no feature set can explain the labels.
    seeker_activity_sd: float = 0.5
    commute_multiplier_sd: float = 0.3
    major_group_taste_sd: float = 0.5
    posting_quality_sd: float = 0.6
    employer_selectivity_sd: float = 0.5

    # --- funnel after the click ---
    # Assumption: at zero utility the intercepts give about 25 % of clicks applying,
    # 30 % of applications interviewed (at 4,000 competing seekers) and 27 % of
    # interviews hired.
    apply_intercept: float = -1.1
    apply_slope: float = 0.6
    apply_underqualified_per_level: float = 0.7
    interview_intercept: float = -0.2
    employer_education_per_level: float = 1.0
    employer_experience_per_year: float = 0.4
    # Interview odds fall with log(1 + competing seekers nearby).
    competition_per_log_seeker: float = 0.08
    hire_intercept: float = -1.0
    hire_slope: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as JSON-serialisable values."""
        values = asdict(self)
        return {
            key: dict(value)
            if isinstance(value, Mapping)
            else list(value)
            if isinstance(value, tuple)
            else value
            for key, value in values.items()
        }


def simulate_interactions(
    postings: pd.DataFrame,
    seekers: pd.DataFrame,
    *,
    seed: int,
    params: BehaviourParameters | None = None,
    progress: bool = False,
    network: NetworkCommuteEstimator | None = None,
    include_unshown: bool = False,
) -> pd.DataFrame:
    """Simulate sessions of ``seekers`` on ``postings`` and return one row per impression.

    Parameters
    ----------
    postings
        Active postings with the columns of `matching.postings`, WGS84 ``lon``/``lat``,
        ``precision``, ``uncertainty_m`` and the columns of
        `matching.posting_context.attach_posting_context`. Postings without a
        publication date, and those outside the most common publication year, are
        never shown.
    seekers
        Seekers (see `matching.seeker_simulation`).
    seed
        Seed of the random generator; the same inputs and seed give the same frame.
    params
        Simulation parameters; `BehaviourParameters` defaults when None.
    progress
        Show a tqdm bar over seekers when stderr is a terminal.
    network
        Transit network that commute minutes come from, as `matching.candidates.JobIndex`
        uses it on the request path; the straight-line model when None. Seekers
        experience these minutes in the simulation, and the ranker's commute feature
        uses the same minutes in training and in the service.
    include_unshown
        Also return each session's live pool postings that its page did not show, with
        ``position`` :data:`UNSHOWN_POSITION`, ``label`` 0 and a simulated
        ``label_if_examined``. The impression rows are the same either way.

    Returns
    -------
    pandas.DataFrame
        Columns `IMPRESSION_COLUMNS`: ``label`` int8 (0 shown, 1 clicked, 2 applied,
        3 interviewed, 4 hired; simulated) as a log records it, ``label_if_examined``
        int8 the stage reached had the seeker looked at every position (see
        `models.behaviour.FunnelLabels`), ``position`` 1-based, ``query_time`` the
        session day, ``baseline_score`` from `matching.scoring.score_jobs`,
        ``distance_m`` and ``commute_min`` (NaN for city-level postings).
    """
    params = params or BehaviourParameters()
    rng = np.random.default_rng(seed)
    unshown_rng = np.random.default_rng([seed, 2]) if include_unshown else None
    shown_postings = _showable(postings)
    traits = posting_traits(shown_postings, rng, params)
    world = _World.build(shown_postings, traits, params, network)

    frames = []
    rows = tqdm(
        seekers.itertuples(index=False),
        total=len(seekers),
        desc="simulate seekers",
        # None lets tqdm turn the bar off when stderr is not a terminal (CI logs).
        disable=None if progress else True,
        mininterval=1.0,
    )
    for record in rows:
        seeker = pd.Series(record._asdict())
        frame = _simulate_seeker(seeker, world, rng, params, unshown_rng)
        if frame is not None:
            frames.append(frame)

    if not frames:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in IMPRESSION_COLUMNS})
    impressions = pd.concat(frames, ignore_index=True)
    logger.info(
        "simulated %d impressions for %d seekers (seed %d)", len(impressions), len(seekers), seed
    )
    return impressions


def _showable(postings: pd.DataFrame) -> pd.DataFrame:
    """Keep postings with a publication date in the most common publication year."""
    published = pd.to_datetime(postings["published_on"], errors="coerce", format="%Y-%m-%d")
    dated = published.notna()
    if not dated.any():
        raise ValueError("no posting has a published_on date; the simulation needs dates")
    year = int(published[dated].dt.year.mode().iloc[0])
    keep = dated & (published.dt.year == year)
    logger.info(
        "simulation shows %d of %d postings (published in %d)", int(keep.sum()), len(postings), year
    )
    kept = postings.loc[keep].reset_index(drop=True)
    kept["published_day"] = published[keep].dt.normalize().to_numpy()
    return kept


@dataclass
class _World:
    """Postings, their tree and the calendar, shared by every simulated seeker."""

    postings: pd.DataFrame
    traits: PostingTraits
    located: IntArray
    city: IntArray
    tree: BallTree | None
    published: npt.NDArray[np.datetime64]
    publication_days: npt.NDArray[np.datetime64]
    last_day: np.datetime64
    middle_codes: npt.NDArray[np.object_]
    popularity: FloatArray
    index: JobIndex | None = None
    """Job index over the network, when commute minutes come from a transit network."""
    row_of: dict[str, int] | None = None
    """Row of each ``posting_id`` in ``postings``, to map the index's results back."""

    @classmethod
    def build(
        cls,
        postings: pd.DataFrame,
        traits: PostingTraits,
        params: BehaviourParameters,
        network: NetworkCommuteEstimator | None = None,
    ) -> "_World":
        is_city = postings["precision"].astype(str).to_numpy() == Precision.CITY.value
        located = np.flatnonzero(~is_city & np.isfinite(postings["lat"].to_numpy(dtype=np.float64)))
        tree = None
        if located.size:
            points = postings.iloc[located][["lat", "lon"]].to_numpy(dtype=np.float64)
            tree = BallTree(np.radians(points), metric="haversine")
        published = postings["published_day"].to_numpy(dtype="datetime64[D]")
        active = postings["employer_active_postings"].fillna(1.0).to_numpy(dtype=np.float64)
        return cls(
            postings=postings,
            traits=traits,
            located=located,
            city=np.flatnonzero(is_city),
            tree=tree,
            published=published,
            publication_days=np.sort(published),
            last_day=published.max(),
            middle_codes=postings["occupation_code"]
            .fillna("")
            .astype(str)
            .str.slice(0, 4)
            .to_numpy(dtype=object),
            popularity=np.log1p(active) / max(np.log1p(active.max()), 1.0),
            index=None if network is None else JobIndex(postings, network=network),
            row_of=None
            if network is None
            else {pid: row for row, pid in enumerate(postings["posting_id"].astype(str))},
        )


@dataclass(frozen=True)
class _SeekerPool:
    """One seeker's candidate pool and the per-row values that its sessions draw labels from."""

    seeker: pd.Series
    taste: SeekerTaste
    rows: IntArray
    """Posting rows of the pool in the world's postings."""
    value: FloatArray
    competition: FloatArray
    baseline: FloatArray
    distance: FloatArray
    commute: FloatArray


def _simulate_seeker(
    seeker: pd.Series,
    world: _World,
    rng: np.random.Generator,
    params: BehaviourParameters,
    unshown_rng: np.random.Generator | None = None,
) -> pd.DataFrame | None:
    days = _session_days(world, rng, params)
    pool, distance, commute = _candidate_pool(seeker, world, rng, params)
    if pool.size == 0 or days.size == 0:
        return None

    baseline = _baseline_scores(seeker, world, pool, distance, commute)
    taste = draw_taste(rng, params)
    detour = rng.lognormal(0.0, params.true_commute_log_sd, pool.size)
    value = utility(seeker, taste, world.traits, pool, commute * detour, params)
    competition = world.postings["competition_seekers"].to_numpy(dtype=np.float64)[pool]
    drawn = _SeekerPool(seeker, taste, pool, value, competition, baseline, distance, commute)

    sessions = []
    for day in days:
        shown, unshown = _logged_page(day, pool, baseline, world, rng, params)
        if shown.size == 0:
            continue
        positions = np.arange(1, shown.size + 1, dtype=np.int64)
        sessions.append(
            _session_rows(drawn, day, world, params, rng, shown, positions, logged=True)
        )
        if unshown_rng is not None and unshown.size:
            # They come from their own generator, so the logged sessions stay the same.
            after_page = np.arange(shown.size + 1, shown.size + unshown.size + 1, dtype=np.int64)
            sessions.append(
                _session_rows(
                    drawn, day, world, params, unshown_rng, unshown, after_page, logged=False
                )
            )
    return pd.concat(sessions, ignore_index=True) if sessions else None


def _session_rows(
    drawn: _SeekerPool,
    day: np.datetime64,
    world: _World,
    params: BehaviourParameters,
    rng: np.random.Generator,
    rows: IntArray,
    positions: IntArray,
    *,
    logged: bool,
) -> pd.DataFrame:
    """Draw the labels of the pool entries ``rows`` at ``positions`` and frame one session.

    Logged rows keep their positions and logged labels. Unlogged rows were never seen,
    so only the examination-free label exists: they are stored at `UNSHOWN_POSITION`
    with label `LABEL_SHOWN`.
    """
    labels = draw_labels(
        rng,
        drawn.seeker,
        drawn.taste,
        world.traits,
        drawn.rows[rows],
        positions,
        drawn.value[rows],
        drawn.competition[rows],
        params,
    )
    if logged:
        stored_positions, stored_labels = positions, labels.logged
    else:
        stored_positions = np.full(rows.size, UNSHOWN_POSITION, dtype=np.int64)
        stored_labels = np.full(rows.size, LABEL_SHOWN, dtype=np.int8)
    return _session_frame(
        drawn.seeker,
        day,
        world,
        drawn.rows[rows],
        stored_positions,
        stored_labels,
        labels.if_examined,
        drawn.baseline[rows],
        drawn.distance[rows],
        drawn.commute[rows],
    )


def _session_days(
    world: _World, rng: np.random.Generator, params: BehaviourParameters
) -> npt.NDArray[np.datetime64]:
    """Draw a seeker's session days around a day drawn from the publication dates.

    The search spell lasts ``search_weeks`` and contains the drawn day; sessions in it
    follow a Poisson process at ``sessions_per_week``. Days before the first or after
    the last publication day plus ``days_after_last_publication`` are dropped.
    """
    spell_days = 7.0 * params.search_weeks
    anchor = world.publication_days[rng.integers(world.publication_days.size)]
    start = anchor - np.timedelta64(int(rng.uniform(0.0, spell_days)), "D")
    count = max(1, int(rng.poisson(params.sessions_per_week * params.search_weeks)))
    offsets = np.sort(rng.uniform(0.0, spell_days, count)).astype(np.int64)
    days = start + offsets.astype("timedelta64[D]")
    last = world.last_day + np.timedelta64(params.days_after_last_publication, "D")
    return np.unique(days[(days >= world.publication_days[0]) & (days <= last)])


def _candidate_pool(
    seeker: pd.Series, world: _World, rng: np.random.Generator, params: BehaviourParameters
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Return pool rows of ``world.postings``, their distances (m) and commute minutes."""
    modes = parse_modes(str(seeker["modes"] or "transit"))
    limit = float(seeker["max_commute_min"])
    if world.index is not None:
        located, distance, commute = _reachable_on_network(seeker, world, limit, modes)
    else:
        located, distance, commute = _reachable_straight_line(seeker, world, limit, modes)

    positions = _sample_located(seeker, world, located, rng, params)
    chosen = located[positions]
    city = (
        rng.choice(world.city, min(params.pool_city, world.city.size), replace=False)
        if world.city.size
        else np.empty(0, dtype=np.int64)
    )
    pool = np.concatenate([chosen, city]).astype(np.int64)
    nan = np.full(city.size, np.nan)
    return (
        pool,
        np.concatenate([distance[positions], nan]),
        np.concatenate([commute[positions], nan]),
    )


def _reachable_straight_line(
    seeker: pd.Series, world: _World, limit: float, modes: list[str]
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Return located rows within ``limit`` straight-line minutes, with metres and minutes."""
    estimator = StraightLineCommute()
    located = np.empty(0, dtype=np.int64)
    if world.tree is not None:
        radius = max(estimator.reach_m(limit, mode) for mode in modes)
        home = np.radians([[float(seeker["home_lat"]), float(seeker["home_lon"])]])
        (near,) = world.tree.query_radius(home, r=radius / EARTH_RADIUS_M)
        located = world.located[np.asarray(near, dtype=np.int64)]

    distance = _distances(seeker, world, located)
    commute = (
        np.min(np.vstack([estimator.minutes(distance, mode) for mode in modes]), axis=0)
        if located.size
        else np.empty(0)
    )
    reachable = commute <= limit
    return located[reachable], distance[reachable], commute[reachable]


def _reachable_on_network(
    seeker: pd.Series, world: _World, limit: float, modes: list[str]
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Return located rows within ``limit`` minutes on the network, as the service finds them."""
    assert world.index is not None and world.row_of is not None  # nosec B101 # type narrowing only
    found = world.index.for_commute(
        float(seeker["home_lon"]), float(seeker["home_lat"]), limit, modes
    )
    rows = np.array([world.row_of[pid] for pid in found["posting_id"].astype(str)], dtype=np.int64)
    return (
        rows,
        found["distance_m"].to_numpy(dtype=np.float64),
        found["estimated_commute_min"].to_numpy(dtype=np.float64),
    )


def _distances(seeker: pd.Series, world: _World, rows: IntArray) -> FloatArray:
    """Straight-line metres widened by the location uncertainty, as `JobIndex` computes them."""
    postings = world.postings
    point = haversine_m(
        float(seeker["home_lon"]),
        float(seeker["home_lat"]),
        postings["lon"].to_numpy(dtype=np.float64)[rows],
        postings["lat"].to_numpy(dtype=np.float64)[rows],
    )
    uncertainty = np.nan_to_num(postings["uncertainty_m"].to_numpy(dtype=np.float64)[rows], nan=0.0)
    return np.asarray(np.hypot(point, uncertainty), dtype=np.float64)


def _sample_located(
    seeker: pd.Series,
    world: _World,
    located: IntArray,
    rng: np.random.Generator,
    params: BehaviourParameters,
) -> IntArray:
    """Return positions in ``located`` of the pool: some from the wished 中类, the rest random."""
    wish_middle = str(seeker["occupation_wish_code"])[:4]
    same = np.flatnonzero(world.middle_codes[located] == wish_middle)
    n_same = min(same.size, int(params.pool_located * params.pool_same_middle_share))
    picked_same = rng.choice(same, n_same, replace=False) if n_same else np.empty(0, np.int64)
    rest = np.setdiff1d(np.arange(located.size), picked_same, assume_unique=True)
    n_rest = min(rest.size, params.pool_located - n_same)
    picked_rest = rng.choice(rest, n_rest, replace=False) if n_rest else np.empty(0, np.int64)
    return np.concatenate([picked_same, picked_rest]).astype(np.int64)


def _baseline_scores(
    seeker: pd.Series, world: _World, pool: IntArray, distance: FloatArray, commute: FloatArray
) -> FloatArray:
    """Score the pool with today's baseline, `matching.scoring.score_jobs`."""
    candidates = world.postings.iloc[pool].reset_index(drop=True)
    candidates["distance_m"] = distance
    candidates["estimated_commute_min"] = commute
    candidates["pool_position"] = np.arange(pool.size)
    scored = score_jobs(seeker, candidates)
    scores = np.empty(pool.size, dtype=np.float64)
    scores[scored["pool_position"].to_numpy(dtype=np.int64)] = scored["score"].to_numpy(
        dtype=np.float64
    )
    return scores


def _logged_page(
    day: np.datetime64,
    pool: IntArray,
    baseline: FloatArray,
    world: _World,
    rng: np.random.Generator,
    params: BehaviourParameters,
) -> tuple[IntArray, IntArray]:
    """Return positions in ``pool`` of the postings shown on ``day``, best first, and the rest.

    The rest are the pool's other postings live on ``day``, in the logging policy's order.
    """
    age = (day - world.published[pool]).astype(np.int64)
    live = np.flatnonzero((age >= 0) & (age <= params.posting_lifetime_days))
    if live.size == 0:
        return live, live
    score = (
        params.logging_baseline_weight
        * (baseline[live] + rng.normal(0.0, params.logging_baseline_noise_sd, live.size))
        + params.logging_recency_weight * np.exp(-age[live] / params.logging_recency_days)
        + params.logging_popularity_weight * world.popularity[pool[live]]
        + rng.gumbel(0.0, params.logging_gumbel_scale, live.size)
    )
    order = live[np.argsort(-score, kind="stable")]
    return order[: params.page_size], order[params.page_size :]


def _session_frame(
    seeker: pd.Series,
    day: np.datetime64,
    world: _World,
    rows: IntArray,
    positions: IntArray,
    labels: npt.NDArray[np.int8],
    labels_if_examined: npt.NDArray[np.int8],
    baseline: FloatArray,
    distance: FloatArray,
    commute: FloatArray,
) -> pd.DataFrame:
    seeker_id = str(seeker["seeker_id"])
    day_text = str(day.astype("datetime64[D]"))
    return pd.DataFrame(
        {
            "query_id": f"{seeker_id}@{day_text}",
            "seeker_id": seeker_id,
            "posting_id": world.postings["posting_id"].to_numpy()[rows].astype(str),
            "group": str(seeker["group"]),
            "query_time": pd.Timestamp(day_text),
            "position": positions,
            "label": labels,
            "label_if_examined": labels_if_examined,
            "baseline_score": baseline,
            "distance_m": distance,
            "commute_min": commute,
        }
    )
