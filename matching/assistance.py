"""Assistance targets and the 131 service: categories, match rules and the ledger's states.

The 131 service gives every assistance target (就业援助对象) one career guidance, three
job recommendations and one training offer. This module contains the rules that need no
store: which postings suit a target's category, the states a recommendation moves
through, when a target's 131 service is complete, and which return visits are due.
The ledger tables live in :mod:`store.assistance_store`.
"""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from geo.errors import DoorstepError
from matching.features import PUBLIC_WELFARE_WORDS
from matching.seeker_personal import HARDSHIP_CATEGORIES

logger = logging.getLogger(__name__)

ASSISTANCE_CATEGORIES: dict[str, tuple[str, str]] = {
    **HARDSHIP_CATEGORIES,
    "poverty_alleviated": ("脱贫劳动力", "worker from a household lifted out of poverty"),
}
"""Assistance categories (就业困难人员 subcategories) by code, with zh-CN and English labels.

``older_unemployed`` is the 4050 group: women over 40 and men over 50 out of work.
"""

RECOMMENDATIONS_PER_TARGET = 3
"""The "3" of 131: job recommendations each target receives."""

RETURN_VISIT_DAYS = 14
"""Days after a recommendation is delivered until the follow-up visit is due."""

GUIDANCE_TOPICS: dict[str, tuple[str, str]] = {
    "career_plan": ("职业规划", "career planning"),
    "job_search": ("求职技巧", "job-search skills"),
    "policy": ("就业政策", "employment policy"),
    "skills": ("技能提升", "skills development"),
}
"""Career guidance topics; the ledger stores the code, never free text."""

RecommendationState = Literal[
    "signed_off", "delivered", "interested", "declined", "interviewed", "hired", "not_hired"
]

TRANSITIONS: dict[str, frozenset[str]] = {
    "signed_off": frozenset({"delivered"}),
    "delivered": frozenset({"interested", "declined"}),
    "interested": frozenset({"interviewed", "declined"}),
    "interviewed": frozenset({"hired", "not_hired"}),
    "declined": frozenset(),
    "hired": frozenset(),
    "not_hired": frozenset(),
}
"""Allowed moves of a recommendation's state; ``declined``, ``hired`` and ``not_hired`` end it."""

HOLDING_STATES = frozenset({"signed_off", "delivered", "interested", "interviewed", "hired"})
"""States in which a recommendation occupies one of the posting's vacancies."""

DELIVERED_STATES = frozenset(TRANSITIONS) - {"signed_off"}
"""States reached only after the recommendation was delivered to the target."""

TRAINING_RESPONSES = ("accepted", "declined")


class LedgerError(DoorstepError, ValueError):
    """A 131 ledger write breaks a state rule; the message names the rule.

    ``message_zh`` is the rule in Chinese for the officer's page, when one is given.
    ``field`` names the request body field that broke it, when one did.
    """

    def __init__(
        self, message: str, message_zh: str | None = None, *, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.message_zh = message_zh
        self.field = field
        self.location = "body" if field else None


class CategoryError(LedgerError):
    """An assistance category is unknown or missing; the message never repeats the value."""


class LedgerConflictError(DoorstepError, RuntimeError):
    """A 131 ledger write conflicts with stored state (full headcount, a concurrent change)."""

    def __init__(self, message: str, message_zh: str | None = None) -> None:
        super().__init__(message)
        self.message_zh = message_zh


@dataclass(frozen=True, slots=True)
class AssistanceRules:
    """Group rules of assistance targets' match lists; every number is a policy setting.

    Parameters
    ----------
    max_commute_min : float
        Postings farther than this (minutes, or the target's own limit when lower) are left out.
    public_welfare_bonus : float
        Added to the score of a public-welfare post (公益性岗位).
    night_shift_penalty : float
        Subtracted from the score of a night or rotating-shift post for the categories
        in ``avoid_night_shifts``.
    barrier_free_bonus : float
        Added for a workplace known to be barrier-free, for persons with disabilities.
    """

    max_commute_min: float = 45.0
    public_welfare_bonus: float = 0.3
    night_shift_penalty: float = 0.2
    barrier_free_bonus: float = 0.2
    night_shift_words: tuple[str, ...] = ("夜班", "倒班", "三班倒", "两班倒", "通宵")
    avoid_night_shifts: frozenset[str] = field(
        default_factory=lambda: frozenset({"disability", "older_unemployed"})
    )


def category_label(code: str | None, lang: str) -> str | None:
    """Return the zh-CN or English label of a category code, or None for none or unknown."""
    labels = ASSISTANCE_CATEGORIES.get(code or "")
    return None if labels is None else labels[0 if lang == "zh" else 1]


def parse_category(text: str) -> str:
    """Return the category code of a code or its zh-CN label; raise LedgerError when unknown.

    The message never repeats ``text``, because a category is personal information.
    """
    value = text.strip()
    if value in ASSISTANCE_CATEGORIES:
        return value
    for code, (label_zh, _) in ASSISTANCE_CATEGORIES.items():
        if value == label_zh or (code == "older_unemployed" and value in ("4050人员", "4050")):
            return code
    raise CategoryError(
        "unknown assistance category; expected a code or zh-CN label of "
        f"{sorted(ASSISTANCE_CATEGORIES)}"
    )


def apply_group_rules(
    ranked: pd.DataFrame, category: str | None, max_commute_min: float, rules: AssistanceRules
) -> pd.DataFrame:
    """Filter and rescore a target's ranked postings by the assistance group rules.

    Parameters
    ----------
    ranked : pandas.DataFrame
        Ranked postings with ``posting_id``, ``title``, ``score`` and optionally
        ``model_score``, ``categories``, ``estimated_commute_min`` (minutes),
        ``barrier_free`` (True, False or missing when unknown) and
        ``accepted_categories`` (";"-separated codes, empty when the employer named none).
    category : str or None
        The target's assistance category code.
    max_commute_min : float
        The target's own commute limit in minutes.
    rules : AssistanceRules
        The group rules.

    Returns
    -------
    pandas.DataFrame
        The postings that pass the hard rules, with ``public_welfare``, ``night_shift``,
        ``barrier_free`` and ``match_score`` columns, best ``match_score`` first.
    """
    rows = ranked.reset_index(drop=True)
    base = _base_scores(rows)
    text = _texts(rows)
    welfare = np.array([any(word in t for word in PUBLIC_WELFARE_WORDS) for t in text], dtype=bool)
    night = np.array([any(word in t for word in rules.night_shift_words) for t in text], dtype=bool)
    barrier_free = _optional_flags(rows, "barrier_free")

    limit = min(float(max_commute_min), rules.max_commute_min)
    keep = _accepts(rows, category)
    if "estimated_commute_min" in rows.columns:
        # An unknown commute (NaN) is kept: the candidate step already bounded it.
        commute = pd.to_numeric(rows["estimated_commute_min"], errors="coerce")
        keep &= ~(commute.to_numpy(np.float64) > limit)
    if category == "disability":
        keep &= np.array([flag is not False for flag in barrier_free], dtype=bool)

    score = base + rules.public_welfare_bonus * welfare
    if category in rules.avoid_night_shifts:
        score = score - rules.night_shift_penalty * night
    if category == "disability":
        known_free = np.array([flag is True for flag in barrier_free], dtype=bool)
        score = score + rules.barrier_free_bonus * known_free

    result = rows.assign(
        public_welfare=welfare,
        night_shift=night,
        barrier_free=pd.Series(barrier_free, index=rows.index, dtype=object),
        match_score=score,
    )[keep]
    return result.sort_values("match_score", ascending=False, kind="stable").reset_index(drop=True)


def _base_scores(rows: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Return the ranker's scores as ranks scaled to 0..1, so bonuses weigh the same per model."""
    column = "model_score" if "model_score" in rows.columns else "score"
    scores = pd.to_numeric(rows[column], errors="coerce").fillna(0.0)
    if len(scores) <= 1:
        return np.ones(len(scores), dtype=np.float64)
    ranks = scores.rank(method="average", ascending=True).to_numpy(np.float64)
    return np.asarray((ranks - 1.0) / (len(scores) - 1.0), dtype=np.float64)


def _texts(rows: pd.DataFrame) -> list[str]:
    titles = rows["title"].fillna("").astype(str)
    categories = rows.get("categories", pd.Series("", index=rows.index)).fillna("").astype(str)
    return [f"{a} {b}" for a, b in zip(titles, categories, strict=True)]


def _optional_flags(rows: pd.DataFrame, column: str) -> list[bool | None]:
    if column not in rows.columns:
        return [None] * len(rows)
    return [None if pd.isna(value) else bool(value) for value in rows[column]]


def _accepts(rows: pd.DataFrame, category: str | None) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Return which postings accept the category; an employer that named none accepts all."""
    if "accepted_categories" not in rows.columns or not category:
        return np.ones(len(rows), dtype=bool)
    accepted = rows["accepted_categories"].fillna("").astype(str)
    return np.array([not text or category in text.split(";") for text in accepted], dtype=bool)


def check_transition(current: str, requested: str) -> None:
    """Raise LedgerError unless a recommendation may move from ``current`` to ``requested``."""
    if requested not in TRANSITIONS:
        raise LedgerError(
            f"state is unknown; expected one of {sorted(TRANSITIONS)}",
            "推荐状态无效",
            field="state",
        )
    if requested not in TRANSITIONS[current]:
        allowed = sorted(TRANSITIONS[current]) or "none, the recommendation is closed"
        raise LedgerError(
            f"a recommendation in state {current!r} cannot move to {requested!r};"
            f" allowed: {allowed}",
            "推荐状态不能这样变更，请按“已送达→有意向→已面试→录用结果”的顺序记录",
        )


def check_sign_off(posting_ids: list[str], signed: Iterable[str], guidance_recorded: bool) -> None:
    """Raise LedgerError unless ``posting_ids`` may be signed off for a target.

    The rules: career guidance comes first, the postings are distinct and new for the
    target, and the target receives at most three recommendations in total.
    """
    if not guidance_recorded:
        raise LedgerError(
            "record the career guidance before signing off recommendations",
            "请先记录职业指导，再签发推荐岗位",
        )
    if not posting_ids:
        raise LedgerError("posting_ids is empty; sign off 1 to 3 postings")
    if len(set(posting_ids)) != len(posting_ids):
        raise LedgerError(
            "posting_ids repeats a posting; each must be distinct", "同一岗位不能重复签发"
        )
    already = set(signed)
    repeated = sorted(already & set(posting_ids))
    if repeated:
        raise LedgerError(
            f"posting(s) {repeated} are already recommended to this target",
            "所选岗位已推荐给该援助对象",
        )
    if len(already) + len(posting_ids) > RECOMMENDATIONS_PER_TARGET:
        raise LedgerError(
            f"a target receives at most {RECOMMENDATIONS_PER_TARGET} recommendations;"
            f" {len(already)} are signed off, so at most"
            f" {RECOMMENDATIONS_PER_TARGET - len(already)} more",
            f"每名援助对象最多推荐 {RECOMMENDATIONS_PER_TARGET} 个岗位",
        )


def check_training_offer(guidance_recorded: bool, already_offered: bool) -> None:
    """Raise LedgerError unless a training offer may be recorded now."""
    if not guidance_recorded:
        raise LedgerError(
            "record the career guidance before the training offer", "请先记录职业指导，再推荐培训"
        )
    if already_offered:
        raise LedgerError(
            "the training offer of this target is already recorded", "该援助对象已有培训推荐"
        )


def check_training_response(offered: bool, response: str, current: str | None) -> None:
    """Raise LedgerError unless the target's response to the training offer may be stored."""
    if response not in TRAINING_RESPONSES:
        raise LedgerError(
            f"response is unknown; expected one of {list(TRAINING_RESPONSES)}",
            "培训反馈无效，可选值为 accepted 或 declined",
            field="response",
        )
    if not offered:
        raise LedgerError(
            "record the training offer before the target's response to it", "请先记录培训推荐"
        )
    if current is not None:
        raise LedgerError(f"the response to the training offer is already {current!r}")


def is_complete(target: Mapping[str, Any], states: Iterable[str]) -> bool:
    """Return whether a target's 131 service is complete.

    Complete means career guidance recorded, three recommendations delivered (whatever
    the target's response) and a training offer recorded.
    """
    delivered = sum(1 for state in states if state in DELIVERED_STATES)
    return (
        target.get("guidance_at") is not None
        and delivered >= RECOMMENDATIONS_PER_TARGET
        and target.get("training_offered_at") is not None
    )


def completion_rates(targets: pd.DataFrame, by: str) -> pd.DataFrame:
    """Return targets, completed targets and the completion rate per value of ``by``.

    Parameters
    ----------
    targets : pandas.DataFrame
        One row per target with a boolean ``complete`` column and the column ``by``
        (``officer_id``, ``org_id`` or ``district_code``).
    by : str
        The grouping column.

    Returns
    -------
    pandas.DataFrame
        Columns ``by``, ``targets``, ``completed`` and ``rate`` (0..1), ordered by ``by``.
    """
    if targets.empty:
        return pd.DataFrame({by: [], "targets": [], "completed": [], "rate": []})
    grouped = targets.groupby(by, sort=True)["complete"].agg(["size", "sum"]).reset_index()
    grouped.columns = [by, "targets", "completed"]
    grouped["completed"] = grouped["completed"].astype(int)
    grouped["rate"] = grouped["completed"] / grouped["targets"]
    return grouped


SERVICE_TIME_ZONE = ZoneInfo("Asia/Shanghai")
"""Zone of the officers' calendar days: a visit due "today" means today in Xi'an."""


def service_day(at: datetime) -> date:
    """Return the Xi'an calendar day of an aware time."""
    return at.astimezone(SERVICE_TIME_ZONE).date()


def visit_due_on(delivered_on: date) -> date:
    """Return the day the follow-up visit after a delivery is due."""
    return delivered_on + timedelta(days=RETURN_VISIT_DAYS)


def check_visit_day(due_on: date, today: date) -> None:
    """Raise LedgerError when a return visit is scheduled in the past."""
    if due_on < today:
        raise LedgerError(
            f"due_on {due_on.isoformat()} is before today {today.isoformat()};"
            " schedule the visit today or later",
            "回访日期不能早于今天",
        )
