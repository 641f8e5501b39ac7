"""Parsing of posting salary strings into a monthly range in yuan.

The sources write pay in several shapes: 51job (``4.5-6千/月``, ``0.8-1万/月``,
``10-15万/年``, ``150元/天``, ``3千以下/月``, ``1-1.5万·14薪``, ``6千-1.2万``,
``3万及以下/年``), BOSS直聘 (``15-30K·16薪``, ``130-180元/天``) and lagou
(``4k-8k``, ``12k以上``). Every shape becomes a :class:`Salary` whose bounds are
yuan per month; the period it was written in is kept beside them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum

logger = logging.getLogger(__name__)

MONTHS_PER_YEAR = 12

# Average working days per month (250 statutory working days / 12), set by the
# Ministry of Labour and Social Security notice 劳社部发〔2008〕3号.
WORKING_DAYS_PER_MONTH = 21.75

# Statutory working day of 8 hours (State Council regulation on working hours, 1995).
WORKING_HOURS_PER_DAY = 8

# Monthly pay outside this range (yuan per month) is most likely a typo or a
# unit mistake in the posting. The 51job 2018 set has a 5,000,000 yuan/month row.
PLAUSIBLE_MONTHLY_MIN = 500.0
PLAUSIBLE_MONTHLY_MAX = 200_000.0

NEGOTIABLE_TEXTS = frozenset({"", "面议", "薪资面议", "薪酬面议", "待遇面议", "none", "nan"})

_UNIT_FACTORS = {"": 1.0, "元": 1.0, "k": 1_000.0, "千": 1_000.0, "万": 10_000.0}

_NUMBER = r"(\d+(?:\.\d+)?)"
_UNIT = r"(元|k|千|万)?"
_SALARY_PATTERN = re.compile(
    rf"^{_NUMBER}{_UNIT}"
    rf"(?:[-~至到]{_NUMBER}{_UNIT})?"
    r"(及以下|以下|及以上|以上)?"
    r"(?:·(\d+)薪)?"
    r"(?:/(月|年|天|日|小时|时))?"
    r"(?:·(\d+)薪)?$"
)


class SalaryPeriod(StrEnum):
    """The period a salary was written in; bounds are always converted to months."""

    MONTH = "month"
    YEAR = "year"
    DAY = "day"
    HOUR = "hour"
    NEGOTIABLE = "negotiable"
    UNKNOWN = "unknown"


# Yuan per period multiplied by this factor gives yuan per month.
_TO_MONTHLY = {
    SalaryPeriod.MONTH: 1.0,
    SalaryPeriod.YEAR: 1.0 / MONTHS_PER_YEAR,
    SalaryPeriod.DAY: WORKING_DAYS_PER_MONTH,
    SalaryPeriod.HOUR: WORKING_HOURS_PER_DAY * WORKING_DAYS_PER_MONTH,
}

_PERIOD_SUFFIXES = {
    "": SalaryPeriod.MONTH,
    "月": SalaryPeriod.MONTH,
    "年": SalaryPeriod.YEAR,
    "天": SalaryPeriod.DAY,
    "日": SalaryPeriod.DAY,
    "小时": SalaryPeriod.HOUR,
    "时": SalaryPeriod.HOUR,
}


@dataclass(frozen=True)
class Salary:
    """A salary range in yuan per month, with the period it was written in.

    Attributes
    ----------
    min_month, max_month
        Bounds in yuan per month; ``None`` when the text gives no such bound
        (``以上`` gives only ``min_month``, ``以下`` only ``max_month``).
    period
        The period of the original text. Daily and hourly pay are converted
        with 21.75 working days per month and 8 hours per day.
    months_per_year
        The ``·N薪`` part (N monthly payments a year), ``None`` when absent.
    raw
        The text as given, ``""`` for ``None``.
    """

    min_month: float | None
    max_month: float | None
    period: SalaryPeriod
    months_per_year: int | None
    raw: str

    @property
    def is_known(self) -> bool:
        """Whether the text gave at least one bound."""
        return self.min_month is not None or self.max_month is not None

    @property
    def is_plausible(self) -> bool:
        """Whether every known bound lies within 500..200,000 yuan per month.

        ``False`` when no bound is known, so it can filter rows before pay statistics.
        """
        bounds = [b for b in (self.min_month, self.max_month) if b is not None]
        if not bounds:
            return False
        return all(PLAUSIBLE_MONTHLY_MIN <= b <= PLAUSIBLE_MONTHLY_MAX for b in bounds)

    def annual_max(self) -> float | None:
        """Return the maximum yearly pay in yuan, counting ``·N薪`` months (12 if absent)."""
        if self.max_month is None:
            return None
        return self.max_month * (self.months_per_year or MONTHS_PER_YEAR)


def parse_salary(text: str | None) -> Salary:
    """Parse a posting salary string into a monthly range in yuan.

    Parameters
    ----------
    text
        The salary as written in the posting, e.g. ``"4.5-6千/月"``,
        ``"15-30K·16薪"``, ``"150元/天"`` or ``"1万以上/月"``. ``None``, an
        empty string and ``面议`` mean the employer did not publish pay, because
        the 51job 2018 set stores 面议 as an empty salary.

    Returns
    -------
    Salary
        Bounds in yuan per month. Period ``negotiable`` for 面议 or empty text,
        ``unknown`` with both bounds ``None`` for any text that does not parse or
        whose minimum exceeds its maximum. No bound is clipped: use
        :attr:`Salary.is_plausible` to flag outliers.
    """
    raw = "" if text is None else str(text)
    normalised = _normalise(raw)
    if normalised in NEGOTIABLE_TEXTS:
        return Salary(None, None, SalaryPeriod.NEGOTIABLE, None, raw)

    match = _SALARY_PATTERN.match(normalised)
    if match is None:
        logger.debug("salary %r matches no known form", raw)
        return _unknown(raw)

    low, low_unit, high, high_unit, bound_word, months_a, period_word, months_b = match.groups()
    period = _PERIOD_SUFFIXES[period_word or ""]
    months_text = months_a or months_b
    months = int(months_text) if months_text else None

    bounds = _bounds_in_yuan(low, low_unit, high, high_unit)
    if bounds is None:
        return _unknown(raw)
    min_yuan, max_yuan = _apply_bound_word(bounds, bound_word)
    if min_yuan is not None and max_yuan is not None and min_yuan > max_yuan:
        logger.debug("salary %r has minimum above maximum", raw)
        return _unknown(raw)

    factor = _TO_MONTHLY[period]
    return Salary(
        min_month=None if min_yuan is None else min_yuan * factor,
        max_month=None if max_yuan is None else max_yuan * factor,
        period=period,
        months_per_year=months,
        raw=raw,
    )


def _normalise(text: str) -> str:
    """Lower-case, drop spaces and unify dashes and the ``·`` separator."""
    cleaned = text.strip().lower().replace(" ", "").replace("\u3000", "")
    for dash in ("—", "–", "－", "〜", "～"):
        cleaned = cleaned.replace(dash, "-")
    return cleaned.replace("•", "·").replace("・", "·").replace("／", "/")


def _bounds_in_yuan(
    low: str, low_unit: str | None, high: str | None, high_unit: str | None
) -> tuple[float, float | None] | None:
    """Convert the one or two numbers to yuan; ``None`` if a unit is missing."""
    if high is None:
        return float(low) * _UNIT_FACTORS[low_unit or ""], None

    # "3-5千" writes the unit once, after the second number, but "6千-1.2万" writes both.
    unit_low = low_unit if low_unit is not None else high_unit
    if unit_low is None and high_unit is None:
        return float(low), float(high)
    if high_unit is None:
        return None
    low_yuan = float(low) * _UNIT_FACTORS[unit_low or ""]
    return low_yuan, float(high) * _UNIT_FACTORS[high_unit]


def _apply_bound_word(
    bounds: tuple[float, float | None], bound_word: str | None
) -> tuple[float | None, float | None]:
    """Turn ``以下`` into a maximum only and ``以上`` into a minimum only."""
    low, high = bounds
    if bound_word in ("以下", "及以下"):
        return None, high if high is not None else low
    if bound_word in ("以上", "及以上"):
        return low, None
    return low, high if high is not None else low


def _unknown(raw: str) -> Salary:
    return Salary(None, None, SalaryPeriod.UNKNOWN, None, raw)
