"""Fairness audit: flip group and hardship flags on simulated seekers and compare what they get.

Two parts, both on **simulated** seekers only:

Exposure by group × district
    Every sampled seeker is ranked once per seeker group (graduate, talent, assistance,
    general), with everything else unchanged. As an assistance target the seeker also
    gets a hardship category. Each shown job gets the position weight
    ``1 / log2(rank + 1)``. Per group and home district the audit reports the total
    weight (exposure), the weighted share of jobs at small employers, the weighted
    commute and the weighted share of jobs in the home district.

    A small employer has size class micro or small (`matching.posting_context`, fewer
    than 300 persons). Most postings state no size, so the audit also reports how much
    exposure went to jobs of known size, and a proxy known for every posting: the
    employer's active postings, at most `FEW_POSTINGS`.

No score drops from a hardship flag
    Each checked seeker is first made unflagged: an assistance target becomes a general
    seeker. The same candidate jobs are then scored again with a hardship category set
    and the group unchanged. General seekers are also scored registered as assistance
    targets; graduates and talent are not, because a seeker has one group. Every job's
    score must be at least its score without the flag. Rows that are public-welfare
    posts are the explicit positive-assistance channel, and may only go up. The audit
    also scores with the rule of `matching.hardship_blind` switched off, to show what
    it prevents.
"""

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from matching.features import policy_post_flags
from matching.recommend import Recommender
from matching.seeker_personal import HARDSHIP_CATEGORIES
from matching.seeker_simulation import GROUPS

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]

SMALL_SIZE_CLASSES = (1.0, 2.0)
"""Employer size classes counted as small: 1 micro, 2 small."""
FEW_POSTINGS = 3
"""Most active postings of an employer counted as small by the proxy."""
DROP_TOLERANCE = 1e-9
"""Score differences at or below this are rounding, not drops."""


@dataclass(frozen=True)
class AuditOptions:
    """Sizes of one audit run."""

    seekers: int = 200
    """Simulated seekers sampled for the exposure part."""
    check_seekers: int = 100
    """Of those, seekers whose scores are checked for drops."""
    page_size: int = 20
    """Jobs per page, as the seeker page shows."""
    max_candidates: int = 300
    """Nearest candidate jobs scored per seeker in the drop check."""
    seed: int = 20261205


@dataclass
class NoDropCheck:
    """Counts of the score comparison with and without a hardship flag."""

    seekers: int = 0
    pairs: int = 0
    dropped_pairs: int = 0
    dropped_seekers: int = 0
    max_drop: float = 0.0
    channel_pairs: int = 0
    raised_channel_pairs: int = 0
    unblinded_dropped_pairs: int = 0
    unblinded_dropped_seekers: int = 0
    unblinded_max_drop: float = 0.0
    comparisons: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether no score dropped with the rule of `matching.hardship_blind` in force."""
        return self.dropped_pairs == 0


@dataclass(frozen=True)
class FairnessReport:
    """The audit's numbers; `to_dict` gives the JSON of the analyst route."""

    ranker: str
    options: AuditOptions
    exposure: pd.DataFrame
    by_group: pd.DataFrame
    no_drop: NoDropCheck

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON types, labelled simulated."""
        return {
            "simulated": True,
            "ranker": self.ranker,
            "options": self.options.__dict__,
            "by_group": _records(self.by_group),
            "exposure": _records(self.exposure),
            "no_drop": {**self.no_drop.__dict__, "passed": self.no_drop.passed},
        }


def run_audit(
    recommender: Recommender,
    posting_context: pd.DataFrame,
    options: AuditOptions | None = None,
    progress: ProgressCallback | None = None,
) -> FairnessReport:
    """Run the fairness audit on the recommender's simulated seekers.

    Parameters
    ----------
    recommender
        The service's recommender, with its ranker (model or baseline).
    posting_context
        ``employer_size_class`` and ``employer_active_postings`` indexed by
        ``posting_id`` (`matching.posting_context.attach_posting_context`).
    options
        Sizes; `AuditOptions` defaults when None.
    progress
        Called with (stage, done, total) as the audit goes.
    """
    chosen = options or AuditOptions()
    report = progress or (lambda _stage, _done, _total: None)
    sample = _sample(recommender.seekers, chosen)

    pages = _flipped_pages(recommender, sample, chosen, report)
    weighted = _weight_pages(pages, posting_context)
    exposure = _exposure_table(weighted, ["group", "home_district_code"])
    by_group = _exposure_table(weighted, ["group"])

    check = _no_drop_check(recommender, sample.head(chosen.check_seekers), chosen, report)
    logger.info(
        "fairness audit: %d seekers, %d pairs checked, %d dropped (%d without the rule)",
        len(sample),
        check.pairs,
        check.dropped_pairs,
        check.unblinded_dropped_pairs,
    )
    return FairnessReport(recommender.ranker_id, chosen, exposure, by_group, check)


def _sample(seekers: pd.DataFrame, options: AuditOptions) -> pd.DataFrame:
    simulated = seekers.loc[seekers["simulated"].astype(bool)]
    count = min(options.seekers, len(simulated))
    return simulated.sample(n=count, random_state=options.seed).reset_index(drop=True)


def _with_flags(seeker: pd.Series, group: str, category: str) -> pd.Series:
    flipped = seeker.copy()
    flipped["group"] = group
    flipped["hardship_category"] = category
    return flipped


def _flipped_pages(
    recommender: Recommender,
    sample: pd.DataFrame,
    options: AuditOptions,
    report: ProgressCallback,
) -> pd.DataFrame:
    """Rank every sampled seeker once per group; return one row per shown job."""
    categories = sorted(HARDSHIP_CATEGORIES)
    total = len(sample) * len(GROUPS)
    pages = []
    for position, (_, seeker) in enumerate(sample.iterrows()):
        for step, group in enumerate(GROUPS):
            category = categories[position % len(categories)] if group == "assistance" else ""
            ranked = recommender.rank(_with_flags(seeker, group, category), options.page_size)
            pages.append(
                pd.DataFrame(
                    {
                        "seeker_id": seeker["seeker_id"],
                        "group": group,
                        "home_district_code": str(seeker.get("home_district_code") or ""),
                        "rank": np.arange(1, len(ranked) + 1),
                        "posting_id": ranked["posting_id"].to_numpy(),
                        "district_code": ranked["district_code"].to_numpy(),
                        "commute_min": ranked["estimated_commute_min"].to_numpy(np.float64),
                    }
                )
            )
            report("exposure", position * len(GROUPS) + step + 1, total)
    return pd.concat(pages, ignore_index=True)


def _weight_pages(pages: pd.DataFrame, context: pd.DataFrame) -> pd.DataFrame:
    known = context.reindex(pages["posting_id"]).reset_index(drop=True)
    size = known["employer_size_class"].to_numpy(np.float64)
    postings = known["employer_active_postings"].to_numpy(np.float64)
    weight = 1.0 / np.log2(pages["rank"].to_numpy(np.float64) + 1.0)
    return pages.assign(
        weight=weight,
        size_known=~np.isnan(size),
        small=np.isin(size, SMALL_SIZE_CLASSES),
        few_postings=postings <= FEW_POSTINGS,
        in_home_district=pages["district_code"].astype(str) == pages["home_district_code"],
    )


def _exposure_table(weighted: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    rows = []
    for key, part in weighted.groupby(keys, sort=True):
        values = key if isinstance(key, tuple) else (key,)
        weight = part["weight"].to_numpy()
        seekers = part["seeker_id"].nunique()
        known = part["size_known"].to_numpy()
        commute = part["commute_min"].to_numpy()
        has_commute = ~np.isnan(commute)
        rows.append(
            {
                **dict(zip(keys, values, strict=True)),
                "seekers": int(seekers),
                "exposure_per_seeker": float(weight.sum() / seekers),
                "size_known_share": _share(weight, known),
                "small_employer_share": _share(weight[known], part["small"].to_numpy()[known]),
                "few_postings_employer_share": _share(weight, part["few_postings"].to_numpy()),
                "home_district_share": _share(weight, part["in_home_district"].to_numpy()),
                "mean_commute_min": (
                    float(np.average(commute[has_commute], weights=weight[has_commute]))
                    if has_commute.any()
                    else math.nan
                ),
            }
        )
    return pd.DataFrame(rows)


def _share(weight: npt.NDArray[np.float64], mask: npt.NDArray[np.bool_]) -> float:
    total = float(weight.sum())
    return float(weight[mask].sum() / total) if total > 0 else math.nan


def _no_drop_check(
    recommender: Recommender,
    sample: pd.DataFrame,
    options: AuditOptions,
    report: ProgressCallback,
) -> NoDropCheck:
    check = NoDropCheck()
    for position, (_, seeker) in enumerate(sample.iterrows()):
        base_group = "general" if seeker["group"] == "assistance" else str(seeker["group"])
        base = _with_flags(seeker, base_group, "")
        candidates = recommender.index.for_commute(
            float(base["home_lon"]),
            float(base["home_lat"]),
            float(base["max_commute_min"]),
            str(base["modes"]),
        ).head(options.max_candidates)
        if candidates.empty:
            report("no-drop check", position + 1, len(sample))
            continue
        _, welfare, _ = policy_post_flags(candidates)
        # The base seeker has no flag, so the rule does not change its scores.
        before = recommender.candidate_scores(base, candidates)
        dropped = unblinded = False
        for name, variant in _variants(base):
            after = recommender.candidate_scores(variant, candidates)
            plain = recommender.candidate_scores(variant, candidates, hardship_blind=False)
            dropped |= _count(check, before, after, welfare)
            unblinded |= _count_unblinded(check, before, plain)
            check.comparisons[name] = check.comparisons.get(name, 0) + 1
        check.seekers += 1
        check.dropped_seekers += int(dropped)
        check.unblinded_dropped_seekers += int(unblinded)
        report("no-drop check", position + 1, len(sample))
    return check


def _variants(base: pd.Series) -> list[tuple[str, pd.Series]]:
    """Return the flagged versions of an unflagged seeker, named by what was set."""
    variants = []
    for category in sorted(HARDSHIP_CATEGORIES):
        variants.append((f"category:{category}", _with_flags(base, str(base["group"]), category)))
        if base["group"] == "general":
            variants.append((f"registered:{category}", _with_flags(base, "assistance", category)))
    return variants


def _count(
    check: NoDropCheck,
    before: npt.NDArray[np.float64],
    after: npt.NDArray[np.float64],
    welfare: npt.NDArray[np.bool_],
) -> bool:
    change = after - before
    drops = change < -DROP_TOLERANCE
    check.pairs += len(change)
    check.dropped_pairs += int(drops.sum())
    check.channel_pairs += int(welfare.sum())
    check.raised_channel_pairs += int((welfare & (change > DROP_TOLERANCE)).sum())
    if drops.any():
        check.max_drop = max(check.max_drop, float(-change.min()))
    return bool(drops.any())


def _count_unblinded(
    check: NoDropCheck, before: npt.NDArray[np.float64], after: npt.NDArray[np.float64]
) -> bool:
    change = after - before
    drops = change < -DROP_TOLERANCE
    check.unblinded_dropped_pairs += int(drops.sum())
    if drops.any():
        check.unblinded_max_drop = max(check.unblinded_max_drop, float(-change.min()))
    return bool(drops.any())


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Return rows as dicts with NaN as None, so the JSON has null rather than NaN."""
    cleaned = frame.astype(object).where(frame.notna(), None)
    return [{str(key): value for key, value in row.items()} for row in cleaned.to_dict("records")]
