"""Simulated seeker and employer behaviour on shown postings: utility and the hiring funnel.

The labels these functions produce are simulated: no real interaction log exists yet.
The utility is written on purpose without `matching.scoring` and with other inputs
and forms than the baseline score; see `models.simulation` for the comparison. All
numbers come from `models.simulation.BehaviourParameters`.
"""

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from matching.features import PUBLIC_WELFARE_WORDS, TALENT_WORDS, TRAINEESHIP_WORDS

# models.simulation imports this module, so its parameters are imported for annotations only.
if TYPE_CHECKING:
    from models.simulation import BehaviourParameters

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

LABEL_SHOWN, LABEL_CLICKED, LABEL_APPLIED, LABEL_INTERVIEWED, LABEL_HIRED = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class PostingTraits:
    """Posting attributes the simulated people react to, one array entry per posting.

    ``quality`` is the unobserved per-posting random effect and ``selectivity`` the
    employer's unobserved strictness; neither is a feature.
    """

    occupation_prefixes: npt.NDArray[np.object_]  # (n, 4): 大类 .. 细类 prefix, "" past the code
    pay_mid: FloatArray
    education: FloatArray
    min_years: FloatArray
    graduate_ok: npt.NDArray[np.bool_]
    traineeship: npt.NDArray[np.bool_]
    public_welfare: npt.NDArray[np.bool_]
    talent_post: npt.NDArray[np.bool_]
    key_enterprise: npt.NDArray[np.bool_]
    size_class: FloatArray
    quality: FloatArray
    selectivity: FloatArray


def posting_traits(
    postings: pd.DataFrame, rng: np.random.Generator, params: "BehaviourParameters"
) -> PostingTraits:
    """Read the traits of every posting and draw its latent quality and selectivity."""
    low = postings["salary_min_month"].to_numpy(dtype=np.float64)
    high = postings["salary_max_month"].to_numpy(dtype=np.float64)
    # A posting with one bound ("以上" or "以下") uses it for both.
    low, high = np.where(np.isnan(low), high, low), np.where(np.isnan(high), low, high)
    pay_mid = (low + high) / 2.0
    text = (
        postings["title"].fillna("").astype(str)
        + " "
        + postings["categories"].fillna("").astype(str)
    )
    education = postings["education"].to_numpy(dtype=np.float64)
    return PostingTraits(
        occupation_prefixes=occupation_prefixes(postings["occupation_code"]),
        pay_mid=pay_mid,
        education=np.where(education < 0, np.nan, education),
        min_years=postings["experience_min_years"].to_numpy(dtype=np.float64),
        graduate_ok=postings["graduate_ok"].fillna(False).to_numpy(dtype=bool),
        traineeship=_mentions(text, TRAINEESHIP_WORDS),
        public_welfare=_mentions(text, PUBLIC_WELFARE_WORDS),
        talent_post=_mentions(text, TALENT_WORDS),
        key_enterprise=postings["key_enterprise"].fillna(0.0).to_numpy(dtype=np.float64) > 0.5,
        size_class=postings["employer_size_class"].to_numpy(dtype=np.float64),
        quality=rng.normal(0.0, params.posting_quality_sd, len(postings)),
        selectivity=rng.normal(0.0, params.employer_selectivity_sd, len(postings)),
    )


@dataclass(frozen=True)
class SeekerTaste:
    """Unobserved per-seeker random effects, drawn once per seeker."""

    activity: float
    commute_multiplier: float
    major_group_taste: FloatArray  # one value per CSCO 大类 digit 0..9


def draw_taste(rng: np.random.Generator, params: "BehaviourParameters") -> SeekerTaste:
    """Draw one seeker's latent click propensity, commute dislike and occupation-group tastes."""
    return SeekerTaste(
        activity=float(rng.normal(0.0, params.seeker_activity_sd)),
        commute_multiplier=float(rng.lognormal(0.0, params.commute_multiplier_sd)),
        major_group_taste=rng.normal(0.0, params.major_group_taste_sd, 10),
    )


def utility(
    seeker: pd.Series,
    taste: SeekerTaste,
    traits: PostingTraits,
    rows: IntArray,
    true_commute_min: FloatArray,
    params: "BehaviourParameters",
) -> FloatArray:
    """Return the seeker's latent utility (logit scale) of the postings at ``rows``.

    ``true_commute_min`` is the trip the seeker would really make (NaN for a posting
    located only as "Xi'an"); it differs from the straight-line estimate the features
    see.
    """
    group = str(seeker["group"])
    limit = float(seeker["max_commute_min"])
    commute = np.where(
        np.isnan(true_commute_min), params.city_commute_share * limit, true_commute_min
    )
    decay = params.commute_decay_per_min[group] * taste.commute_multiplier
    value = -decay * commute - params.over_limit_penalty_per_min * np.clip(
        commute - limit, 0.0, None
    )
    value -= np.where(np.isnan(true_commute_min), params.unknown_location_penalty, 0.0)

    prefixes = traits.occupation_prefixes[rows]
    value += _occupation_interest(str(seeker["occupation_wish_code"]), prefixes, params)
    majors = np.asarray([int(code) if code else 0 for code in prefixes[:, 0]], dtype=np.int64)
    value += taste.major_group_taste[majors] + traits.quality[rows]
    value += _pay_term(seeker, traits.pay_mid[rows], params.pay_sensitivity[group], params)
    value += _qualification_term(seeker, traits, rows, params)
    value += _group_policy_term(group, traits, rows, params)
    size = traits.size_class[rows]
    value += params.size_preference_per_class * np.where(np.isnan(size), 0.0, size - 2.0)
    return value


def examination_probability(positions: IntArray, params: "BehaviourParameters") -> FloatArray:
    """Return the chance a seeker looks at a result at 1-based ``positions``: ``(1/k)**eta``."""
    return np.power(1.0 / positions.astype(np.float64), params.position_bias_eta)


@dataclass(frozen=True)
class FunnelLabels:
    """Funnel stages (0 shown .. 4 hired) of shown postings, as logged and as if examined.

    ``logged`` is what an interaction log records: 0 for a posting the seeker never
    looked at. ``if_examined`` is the stage the same seeker, with the same random draws,
    would have reached had they looked at every position. It carries no position bias,
    and only a simulation can know it.
    """

    logged: npt.NDArray[np.int8]
    if_examined: npt.NDArray[np.int8]


def draw_labels(
    rng: np.random.Generator,
    seeker: pd.Series,
    taste: SeekerTaste,
    traits: PostingTraits,
    rows: IntArray,
    positions: IntArray,
    value: FloatArray,
    competition: FloatArray,
    params: "BehaviourParameters",
) -> FunnelLabels:
    """Draw the funnel stage each shown posting reached: 0 shown .. 4 hired.

    Every stage is drawn only for postings that reached the stage before, so
    hires <= interviews <= applications <= clicks <= impressions by construction.
    Each stage uses one uniform draw per row whether or not the row was examined, so
    ``logged`` equals ``if_examined`` on examined rows and is 0 elsewhere.
    """
    examined = rng.random(len(rows)) < examination_probability(positions, params)
    clicked = rng.random(len(rows)) < _sigmoid(params.click_intercept + taste.activity + value)

    shortfall = _education_shortfall(seeker, traits, rows)
    applied = clicked & (
        rng.random(len(rows))
        < _sigmoid(
            params.apply_intercept
            + params.apply_slope * value
            - params.apply_underqualified_per_level * shortfall
        )
    )
    employer_view = (
        params.interview_intercept
        - traits.selectivity[rows]
        - params.employer_education_per_level * shortfall
        - params.employer_experience_per_year * _experience_shortfall(seeker, traits, rows)
        - params.competition_per_log_seeker * np.log1p(np.nan_to_num(competition, nan=0.0))
    )
    interviewed = applied & (rng.random(len(rows)) < _sigmoid(employer_view))
    hired = interviewed & (
        rng.random(len(rows)) < _sigmoid(params.hire_intercept + params.hire_slope * value)
    )

    if_examined = np.full(len(rows), LABEL_SHOWN, dtype=np.int8)
    for stage, label in (
        (clicked, LABEL_CLICKED),
        (applied, LABEL_APPLIED),
        (interviewed, LABEL_INTERVIEWED),
        (hired, LABEL_HIRED),
    ):
        if_examined[stage] = label
    logged = np.where(examined, if_examined, LABEL_SHOWN).astype(np.int8)
    return FunnelLabels(logged=logged, if_examined=if_examined)


def occupation_prefixes(codes: pd.Series) -> npt.NDArray[np.object_]:
    """Split ``D-DD-DD-DD`` codes into their four level prefixes; a ``00`` part ends the code."""
    text = codes.fillna("").astype(str).str.strip()
    valid = text.str.fullmatch(r"\d-\d\d-\d\d-\d\d").to_numpy(dtype=bool)
    prefixes = np.full((len(text), 4), "", dtype=object)
    reached = valid.copy()
    for depth, stop in enumerate((1, 4, 7, 10)):
        if depth > 0:
            reached &= text.str.slice(stop - 2, stop).to_numpy(dtype=object) != "00"
        prefixes[reached, depth] = text.str.slice(0, stop).to_numpy(dtype=object)[reached]
    return prefixes


def _occupation_interest(
    wish: str, prefixes: npt.NDArray[np.object_], params: "BehaviourParameters"
) -> FloatArray:
    """Interest by the deepest shared level; the classifier's code is used however unsure."""
    interest = np.zeros(len(prefixes), dtype=np.float64)
    for depth, stop in enumerate((1, 4, 7, 10)):
        shared = prefixes[:, depth] == wish[:stop]
        interest = np.where(
            shared & (prefixes[:, depth] != ""), params.occupation_interest[depth], interest
        )
    return interest


def _pay_term(
    seeker: pd.Series, pay_mid: FloatArray, sensitivity: float, params: "BehaviourParameters"
) -> FloatArray:
    """Log-pay utility against the middle of the wish; unknown pay (面议) is a fixed penalty."""
    wish_mid = np.nanmean([float(seeker["salary_wish_min"]), float(seeker["salary_wish_max"])])
    clipped = np.clip(pay_mid, params.pay_floor_yuan, params.pay_ceiling_yuan)
    term = sensitivity * np.log(clipped / wish_mid)
    return np.where(np.isnan(pay_mid), -params.unknown_pay_penalty, term)


def _education_shortfall(seeker: pd.Series, traits: PostingTraits, rows: IntArray) -> FloatArray:
    required = traits.education[rows]
    return np.nan_to_num(np.clip(required - float(seeker["education"]), 0.0, None), nan=0.0)


def _experience_shortfall(seeker: pd.Series, traits: PostingTraits, rows: IntArray) -> FloatArray:
    missing = np.clip(traits.min_years[rows] - float(seeker["experience_years"]), 0.0, None)
    excused = traits.graduate_ok[rows] & (str(seeker["group"]) == "graduate")
    return np.where(excused, 0.0, np.nan_to_num(missing, nan=0.0))


def _qualification_term(
    seeker: pd.Series, traits: PostingTraits, rows: IntArray, params: "BehaviourParameters"
) -> FloatArray:
    required = traits.education[rows]
    surplus = np.nan_to_num(np.clip(float(seeker["education"]) - required, 0.0, None), nan=0.0)
    surplus = np.where(required > 0, surplus, 0.0)
    return (
        -params.underqualified_per_level * _education_shortfall(seeker, traits, rows)
        - params.overqualified_per_level * surplus
        - params.experience_shortfall_per_year * _experience_shortfall(seeker, traits, rows)
    )


def _group_policy_term(
    group: str, traits: PostingTraits, rows: IntArray, params: "BehaviourParameters"
) -> FloatArray:
    value = np.zeros(len(rows), dtype=np.float64)
    if group == "graduate":
        value += params.graduate_traineeship_bonus * traits.traineeship[rows]
    if group == "assistance":
        value += params.assistance_welfare_bonus * traits.public_welfare[rows]
    if group == "talent":
        value += params.talent_post_bonus * traits.talent_post[rows]
        value += params.talent_key_enterprise_bonus * traits.key_enterprise[rows]
    return value


def _mentions(text: pd.Series, words: tuple[str, ...]) -> npt.NDArray[np.bool_]:
    return text.str.contains("|".join(words), regex=True).to_numpy(dtype=bool)


def _sigmoid(x: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-x))
