"""Parsing of posting education and experience requirements.

Covers the 51job (``degree`` 本科, 中技/中专; ``workYear`` 3-4年, 无需经验,
在校生/应届生), lagou (``education`` 不限; ``workYear`` 应届毕业生) and BOSS直聘
forms. BOSS writes experience and education as one string with no separator
(``1-3年本科``, ``经验不限学历不限``, ``4天/周3个月本科`` for internships), which
:func:`split_boss_requirement` cuts at the education suffix.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from matching.education import EducationLevel

logger = logging.getLogger(__name__)

# Exact education texts, after removing a trailing 及以上/以上.
_EDUCATION_TEXTS: dict[str, EducationLevel] = {
    "不限": EducationLevel.ANY,
    "学历不限": EducationLevel.ANY,
    "无学历要求": EducationLevel.ANY,
    "初中": EducationLevel.JUNIOR_HIGH,
    "初中及以下": EducationLevel.JUNIOR_HIGH,
    "小学": EducationLevel.JUNIOR_HIGH,
    "高中": EducationLevel.SENIOR_HIGH,
    "中专": EducationLevel.SENIOR_HIGH,
    "中技": EducationLevel.SENIOR_HIGH,
    "职高": EducationLevel.SENIOR_HIGH,
    "技校": EducationLevel.SENIOR_HIGH,
    "中专/中技": EducationLevel.SENIOR_HIGH,
    "中技/中专": EducationLevel.SENIOR_HIGH,
    "高中/中专": EducationLevel.SENIOR_HIGH,
    "大专": EducationLevel.COLLEGE,
    "专科": EducationLevel.COLLEGE,
    "本科": EducationLevel.BACHELOR,
    "学士": EducationLevel.BACHELOR,
    "硕士": EducationLevel.MASTER,
    "研究生": EducationLevel.MASTER,
    "博士": EducationLevel.DOCTOR,
    "博士后": EducationLevel.DOCTOR,
}

# Education suffixes of the BOSS requirement string, longest first so that
# "初中及以下" wins over a shorter token.
_BOSS_EDUCATION_SUFFIX = re.compile(
    r"(学历不限|初中及以下|中专/中技|中技/中专|高中|中专|中技|大专|本科|硕士|博士)$"
)

_GRADUATE_TEXTS = frozenset(
    {"应届", "应届生", "应届毕业生", "在校生", "在校/应届", "在校生/应届生", "应届/在校"}
)
_NO_EXPERIENCE_TEXTS = frozenset({"不限", "经验不限", "无需经验", "无经验", "无工作经验"})

_YEARS = r"(\d+(?:\.\d+)?)"
_RANGE = re.compile(rf"^{_YEARS}[-~至到]{_YEARS}年$")
_AT_LEAST = re.compile(rf"^{_YEARS}年(?:及以上|以上)$")
_AT_MOST = re.compile(rf"^{_YEARS}年(?:以内|以下|及以下)$")
_EXACT = re.compile(rf"^{_YEARS}年(?:经验)?$")
# BOSS internships: days per week and months, e.g. "4天/周3个月".
_INTERNSHIP = re.compile(r"^\d+天/周\d+个月$")


@dataclass(frozen=True)
class Experience:
    """A work-experience requirement in years.

    Attributes
    ----------
    min_years, max_years
        Bounds in years; ``max_years`` is ``None`` when open-ended (``10年以上``,
        ``经验不限``).
    graduate_ok
        Whether a fresh graduate or student qualifies: true for 应届/在校,
        no-experience texts and internships.
    internship
        Whether the text describes an internship schedule rather than experience.
    raw
        The text as given.
    """

    min_years: float | None
    max_years: float | None
    graduate_ok: bool
    raw: str
    internship: bool = False


def parse_education(text: str | None) -> EducationLevel | None:
    """Parse a posting's education requirement.

    Parameters
    ----------
    text
        E.g. ``"本科"``, ``"本科及以上"``, ``"中技/中专"``, ``"学历不限"``.

    Returns
    -------
    EducationLevel or None
        The minimum level asked for (``ANY`` for no requirement), or ``None``
        when the text is empty or names no known level.
    """
    cleaned = _clean(text)
    if not cleaned:
        return None
    for suffix in ("及以上", "以上"):
        if cleaned.endswith(suffix) and cleaned != suffix:
            cleaned = cleaned.removesuffix(suffix)
    level = _EDUCATION_TEXTS.get(cleaned)
    if level is None:
        logger.debug("education %r is not a known level", text)
    return level


def parse_experience(text: str | None) -> Experience | None:
    """Parse a posting's work-experience requirement.

    Parameters
    ----------
    text
        E.g. ``"1-3年"``, ``"10年以上"``, ``"1年以内"``, ``"经验不限"``,
        ``"应届毕业生"``, ``"在校生/应届生"`` or a 51job bucket such as ``"2年"``.

    Returns
    -------
    Experience or None
        ``None`` when the text is empty or matches no known form. A bare
        ``"N年"`` is 51job's bucket for exactly N years, so both bounds are N.
    """
    raw = "" if text is None else str(text)
    cleaned = _clean(raw)
    if not cleaned:
        return None
    if cleaned in _NO_EXPERIENCE_TEXTS:
        return Experience(0.0, None, graduate_ok=True, raw=raw)
    if cleaned in _GRADUATE_TEXTS:
        return Experience(0.0, 0.0, graduate_ok=True, raw=raw)
    if _INTERNSHIP.match(cleaned):
        return Experience(0.0, 0.0, graduate_ok=True, raw=raw, internship=True)
    return _parse_years(cleaned, raw)


def split_boss_requirement_text(text: str | None) -> tuple[str, str]:
    """Split a BOSS ``学历经验要求`` string into its experience and education parts.

    ``"1-3年本科"`` gives ``("1-3年", "本科")``. When no education suffix is
    found the whole text is returned as experience and education is ``""``.
    """
    cleaned = _clean(text)
    match = _BOSS_EDUCATION_SUFFIX.search(cleaned)
    if match is None:
        return cleaned, ""
    return cleaned[: match.start()], match.group(1)


def split_boss_requirement(
    text: str | None,
) -> tuple[Experience | None, EducationLevel | None]:
    """Parse a BOSS requirement string such as ``"经验不限大专"`` or ``"5-10年硕士"``.

    Parameters
    ----------
    text
        Experience and education concatenated with no separator.

    Returns
    -------
    tuple of (Experience or None, EducationLevel or None)
        Each part is ``None`` when it is missing or unknown.
    """
    experience_text, education_text = split_boss_requirement_text(text)
    return parse_experience(experience_text), parse_education(education_text)


def _parse_years(cleaned: str, raw: str) -> Experience | None:
    """Parse the numeric forms: ranges, at least, at most and 51job's exact buckets."""
    if match := _RANGE.match(cleaned):
        low, high = float(match.group(1)), float(match.group(2))
        if low > high:
            logger.debug("experience %r has minimum above maximum", raw)
            return None
        return Experience(low, high, graduate_ok=low == 0, raw=raw)
    if match := _AT_LEAST.match(cleaned):
        return Experience(float(match.group(1)), None, graduate_ok=False, raw=raw)
    if match := _AT_MOST.match(cleaned):
        return Experience(0.0, float(match.group(1)), graduate_ok=True, raw=raw)
    if match := _EXACT.match(cleaned):
        years = float(match.group(1))
        return Experience(years, years, graduate_ok=years == 0, raw=raw)
    logger.debug("experience %r matches no known form", raw)
    return None


def _clean(text: str | None) -> str:
    """Strip spaces and unify full-width slashes and dashes."""
    if text is None:
        return ""
    cleaned = str(text).strip().replace(" ", "").replace("\u3000", "")
    return cleaned.replace("／", "/").replace("—", "-").replace("－", "-")
