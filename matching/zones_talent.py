"""High-level talent zone (高层次人才专区): degree and title, talent posts, key enterprises.

Who belongs
-----------
A seeker is high-level talent when they hold a doctorate, or a master's degree with a
senior professional title (副高级 or 正高级 职称), or when the bureau registered them in
the ``talent`` group. Simulated seekers carry no title, so for them the degree and the
group decide. A ``professional_title`` column, when present, holds one of
`TITLE_LEVELS`.

Ranking
-------
The zone lists the jobs within the seeker's commute limit. Talent-introduction posts
(人才引进, 高层次人才, 博士后) come first, then jobs at key enterprises, then the
zone score. The zone score is the baseline score of `matching.scoring` with the
distance weight cut from `matching.scoring.WEIGHT_DISTANCE` (0.30) to
`TALENT_WEIGHT_DISTANCE` (0.10); the other five weights are scaled up in proportion
so that the weights still sum to 1. The reason: talent-introduction policy moves people
for a post, and employers of talent often pay for housing or commuting, so a
talent seeker trades distance for fit more readily than a seeker looking for a
doorstep job. The 0.10 is an assumption, not fitted to behaviour.
"""

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matching.candidates import JobIndex
from matching.education import EducationLevel
from matching.features import policy_post_flags
from matching.scoring import WEIGHT_DISTANCE, WEIGHTS, score_jobs

logger = logging.getLogger(__name__)

TALENT_WEIGHT_DISTANCE = 0.10
"""Weight of the commute component in the talent zone score (baseline: 0.30)."""

TITLE_LEVELS: dict[str, int] = {"": 0, "初级": 1, "中级": 2, "副高级": 3, "正高级": 4}
"""Professional title (职称) grades, from none to 正高级."""

SENIOR_TITLE_LEVEL = 3


def talent_weights() -> dict[str, float]:
    """Return the baseline component weights with the distance weight cut for talent.

    The five other weights keep their ratios and are scaled so that all six sum to 1.
    """
    others = {name: weight for name, weight in WEIGHTS.items() if name != "score_distance"}
    scale = (1.0 - TALENT_WEIGHT_DISTANCE) / (1.0 - WEIGHT_DISTANCE)
    weights = {name: weight * scale for name, weight in others.items()}
    weights["score_distance"] = TALENT_WEIGHT_DISTANCE
    return weights


@dataclass(frozen=True, slots=True)
class TalentStanding:
    """A seeker's degree, title and whether they belong to the talent zone."""

    education: int
    title: str
    qualifies: bool


def talent_standing(seeker: pd.Series) -> TalentStanding:
    """Return whether a seeker counts as high-level talent, by degree, title and group.

    Raises
    ------
    ValueError
        When ``professional_title`` is not one of `TITLE_LEVELS`.
    """
    education = int(seeker.get("education", 0))
    title = str(seeker.get("professional_title") or "")
    if title not in TITLE_LEVELS:
        raise ValueError(
            f"professional_title {title!r} is invalid; expected one of {sorted(TITLE_LEVELS)}"
        )
    doctor = education >= EducationLevel.DOCTOR
    senior_master = education >= EducationLevel.MASTER and TITLE_LEVELS[title] >= SENIOR_TITLE_LEVEL
    registered = str(seeker.get("group")) == "talent"
    return TalentStanding(education, title, doctor or senior_master or registered)


def talent_zone_jobs(
    index: JobIndex,
    seeker: pd.Series,
    limit: int,
    key_anchor_ids: frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """List the zone's jobs for one talent seeker: talent posts, key enterprises, zone score.

    Parameters
    ----------
    index
        The job index of the service.
    seeker
        The seeker row; see `matching.scoring.score_jobs` for the columns read.
    limit
        Most jobs returned.
    key_anchor_ids
        Anchors of key or above-scale enterprises (`matching.zones_enterprise`).

    Returns
    -------
    pandas.DataFrame
        Candidate rows with ``score`` (baseline), ``talent_score`` (distance weighted
        `TALENT_WEIGHT_DISTANCE`), ``talent_post`` and ``key_enterprise`` flags, at most
        ``limit``, in zone order.
    """
    candidates = index.for_commute(
        float(seeker["home_lon"]),
        float(seeker["home_lat"]),
        float(seeker["max_commute_min"]),
        str(seeker.get("modes") or "transit"),
    )
    if candidates.empty:
        return candidates.assign(score=pd.Series(dtype=np.float64))
    scored = score_jobs(seeker, candidates)
    _, _, talent_post = policy_post_flags(scored)
    total = np.zeros(len(scored), dtype=np.float64)
    for column, weight in talent_weights().items():
        total += weight * scored[column].to_numpy(dtype=np.float64)
    zone = scored.assign(
        talent_score=np.clip(total, 0.0, 1.0),
        talent_post=talent_post,
        key_enterprise=scored["anchor_id"].astype(str).isin(key_anchor_ids).to_numpy(),
    )
    zone = zone.sort_values(
        ["talent_post", "key_enterprise", "talent_score"], ascending=False, kind="stable"
    )
    return zone.head(limit).reset_index(drop=True)
