"""Reading the four posting sets into one normalised table, with an ingest report.

Sources, each a folder of the data directory:

- ``51job_2018``: ``xian_jobs_51job2018_feilyzhang/xian_51job_postings_2018.csv``
- ``51job_2023``: ``xian_jobs_51job2023_jobspider/xian_51job_it_postings_2023.csv``
- ``boss``: ``xian_jobs_boss_sadxdh/xian_boss_python_jobs.csv``
- ``lagou``: ``xian_jobs_lagou2016/xian_lagou_dataanalyst_2016.csv``

Each reader maps its source's columns to the raw text columns of
:data:`RAW_COLUMNS`; :func:`normalise_rows` parses them, and
:func:`read_postings` de-duplicates and reports. A row is never dropped because
a field fails to parse: the field becomes unknown and is named in ``parse_issues``.
"""

from __future__ import annotations

import ast
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from geo.errors import DataSourceError
from matching.occupation import OccupationClassifier
from matching.requirements import (
    Experience,
    parse_education,
    parse_experience,
    split_boss_requirement_text,
)
from matching.salary import Salary, SalaryPeriod, parse_salary

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]

SOURCE_FILES: dict[str, tuple[str, str]] = {
    "51job_2018": ("xian_jobs_51job2018_feilyzhang", "xian_51job_postings_2018.csv"),
    "51job_2023": ("xian_jobs_51job2023_jobspider", "xian_51job_it_postings_2023.csv"),
    "boss": ("xian_jobs_boss_sadxdh", "xian_boss_python_jobs.csv"),
    "lagou": ("xian_jobs_lagou2016", "xian_lagou_dataanalyst_2016.csv"),
}

# Text columns every reader produces before parsing.
RAW_COLUMNS = (
    "posting_id",
    "source",
    "title",
    "company",
    "location_text",
    "business_zones",
    "salary_text",
    "education_text",
    "experience_text",
    "published_on",
    "categories",
    "company_size",
    "industry_text",
)

# Columns of the table returned by read_postings, in order. The store relies on them.
POSTING_COLUMNS = (
    *RAW_COLUMNS[:7],
    "salary_min_month",
    "salary_max_month",
    "salary_period",
    "salary_months_per_year",
    "education",
    "education_text",
    "experience_min_years",
    "experience_max_years",
    "graduate_ok",
    "experience_text",
    "published_on",
    "categories",
    "company_size",
    "industry_text",
    "occupation_code",
    "occupation_name",
    "occupation_score",
    "parse_issues",
)

UNKNOWN_EDUCATION = -1
PARSED_FIELDS = ("salary", "education", "experience")
_DEDUP_KEY = ("title", "company", "location_text", "salary_text")
_BOSS_COMPANY_SIZE = re.compile(r"(\d+-\d+人|\d+人以上|\d+人以下)$")
_BOSS_FUNDING_STAGE = re.compile(r"(不需要融资|未融资|天使轮|[A-D]轮及以上|[A-D]轮|已上市)$")


@dataclass
class SourceStats:
    """Counts for one source: rows read, kept, dropped as duplicates, and unknown fields."""

    rows_read: int = 0
    rows_kept: int = 0
    duplicates_dropped: int = 0
    unknown: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PARSED_FIELDS, 0))
    parser_errors: int = 0


@dataclass
class IngestReport:
    """Per-source counts of one :func:`read_postings` run.

    ``unknown`` counts are over kept rows. ``parser_errors`` counts fields whose
    parser raised. Such rows are kept with the field unknown.
    """

    sources: dict[str, SourceStats] = field(default_factory=dict)

    @property
    def rows_read(self) -> int:
        """Rows read over all sources."""
        return sum(s.rows_read for s in self.sources.values())

    @property
    def rows_kept(self) -> int:
        """Rows kept over all sources."""
        return sum(s.rows_kept for s in self.sources.values())

    def to_text(self) -> str:
        """Return a plain-text table of the counts, one line per source, for logs."""
        lines = ["source      read    kept  dups  unknown salary/education/experience  errors"]
        for name, s in self.sources.items():
            unknown = "/".join(str(s.unknown[f]) for f in PARSED_FIELDS)
            lines.append(
                f"{name:<10} {s.rows_read:>6} {s.rows_kept:>7} {s.duplicates_dropped:>5}"
                f"  {unknown:<34} {s.parser_errors:>6}"
            )
        lines.append(f"total      {self.rows_read:>6} {self.rows_kept:>7}")
        return "\n".join(lines)


def read_postings(
    data_dir: Path,
    classifier: OccupationClassifier | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[pd.DataFrame, IngestReport]:
    """Read, parse and de-duplicate the four posting sets.

    Parameters
    ----------
    data_dir
        The data folder holding the four source folders of :data:`SOURCE_FILES`.
    classifier
        A fitted occupation classifier; without it ``occupation_code`` and
        ``occupation_name`` are ``""`` and ``occupation_score`` is NaN.
    progress
        Called as ``progress(step, done, total)`` after each source is read and
        after classification, e.g. ``("boss", 3, 5)``.

    Returns
    -------
    tuple of (pandas.DataFrame, IngestReport)
        The table has the columns of :data:`POSTING_COLUMNS`: salary bounds in
        yuan per month (NaN when unknown), ``education`` as an
        ``EducationLevel`` value (-1 when unknown), experience bounds in years
        (NaN when unknown or open-ended) and ``parse_issues`` naming the
        unknown fields, ``;``-joined.

    Raises
    ------
    DataSourceError
        When a source file is missing or lacks a documented column.
    """
    report = IngestReport()
    total_steps = len(SOURCE_FILES) + (1 if classifier is not None else 0)
    frames = []
    for step, (source, reader) in enumerate(_READERS.items(), start=1):
        raw = reader(data_dir)
        report.sources[source] = SourceStats(rows_read=len(raw))
        frames.append(raw)
        if progress is not None:
            progress(source, step, total_steps)

    combined = _drop_duplicates(pd.concat(frames, ignore_index=True), report)
    postings, errors = normalise_rows(combined)
    _count_unknowns(postings, errors, report)

    if classifier is not None:
        _classify(postings, classifier)
        if progress is not None:
            progress("occupation", total_steps, total_steps)
    logger.info("postings read: %d rows kept of %d", report.rows_kept, report.rows_read)
    return postings, report


def normalise_rows(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Parse salary, education and experience for every row of a raw table.

    Parameters
    ----------
    raw
        Columns of :data:`RAW_COLUMNS`, text values (missing columns count as "").

    Returns
    -------
    tuple of (pandas.DataFrame, pandas.Series)
        The table with :data:`POSTING_COLUMNS` (occupation fields empty) and,
        per row, the number of fields whose parser raised. A raising parser
        never drops the row: the field is left unknown and logged.
    """
    frame = pd.DataFrame(index=raw.index)
    for name in RAW_COLUMNS:
        frame[name] = raw[name].map(_text) if name in raw.columns else ""
    parsed = [_parse_row(s, e, x) for s, e, x in _row_texts(frame)]

    frame["salary_min_month"] = [_float(p[0].min_month) for p in parsed]
    frame["salary_max_month"] = [_float(p[0].max_month) for p in parsed]
    frame["salary_period"] = [str(p[0].period) for p in parsed]
    frame["salary_months_per_year"] = [_float(p[0].months_per_year) for p in parsed]
    frame["education"] = [UNKNOWN_EDUCATION if p[1] is None else int(p[1]) for p in parsed]
    frame["experience_min_years"] = [_float(p[2].min_years if p[2] else None) for p in parsed]
    frame["experience_max_years"] = [_float(p[2].max_years if p[2] else None) for p in parsed]
    frame["graduate_ok"] = [bool(p[2] and p[2].graduate_ok) for p in parsed]
    frame["parse_issues"] = [p[3] for p in parsed]
    frame["occupation_code"] = ""
    frame["occupation_name"] = ""
    frame["occupation_score"] = math.nan

    errors = pd.Series([p[4] for p in parsed], index=frame.index, dtype=int)
    return frame[list(POSTING_COLUMNS)], errors


def _row_texts(frame: pd.DataFrame) -> zip[tuple[str, str, str]]:
    return zip(frame["salary_text"], frame["education_text"], frame["experience_text"], strict=True)


ParsedRow = tuple[Salary, int | None, Experience | None, str, int]


def _parse_row(salary_text: str, education_text: str, experience_text: str) -> ParsedRow:
    """Parse the three fields of one row, catching any parser error per field."""
    errors = 0
    try:
        salary = parse_salary(salary_text)
    except Exception:  # a bad row must not stop the load
        logger.warning("salary parser failed on %r", salary_text, exc_info=True)
        salary, errors = Salary(None, None, SalaryPeriod.UNKNOWN, None, salary_text), errors + 1
    try:
        education = parse_education(education_text)
    except Exception:
        logger.warning("education parser failed on %r", education_text, exc_info=True)
        education, errors = None, errors + 1
    try:
        experience = parse_experience(experience_text)
    except Exception:
        logger.warning("experience parser failed on %r", experience_text, exc_info=True)
        experience, errors = None, errors + 1

    issues = [
        name
        for name, unknown in (
            ("salary", salary.period == SalaryPeriod.UNKNOWN),
            ("education", education is None),
            ("experience", experience is None),
        )
        if unknown
    ]
    return salary, education, experience, ";".join(issues), errors


def _drop_duplicates(combined: pd.DataFrame, report: IngestReport) -> pd.DataFrame:
    """Drop repeated lagou ids, then repeats of the normalised (title, company, place, pay)."""
    repeated_id = combined["posting_id"].duplicated(keep="first")
    key = pd.DataFrame({c: combined[c].map(_normalise_key_text) for c in _DEDUP_KEY})
    repeated_text = key.duplicated(keep="first")
    dropped = repeated_id | repeated_text

    for source, count in combined.loc[dropped, "source"].value_counts().items():
        report.sources[str(source)].duplicates_dropped = int(count)
    kept = combined.loc[~dropped].reset_index(drop=True)
    for source, count in kept["source"].value_counts().items():
        report.sources[str(source)].rows_kept = int(count)
    return kept


def _normalise_key_text(text: str) -> str:
    """Lower-case and remove all white space, full-width included."""
    return re.sub(r"\s+", "", str(text)).lower()


def _count_unknowns(postings: pd.DataFrame, errors: pd.Series, report: IngestReport) -> None:
    for source, group in postings.groupby("source"):
        stats = report.sources[str(source)]
        issues = group["parse_issues"].str.split(";")
        for name in PARSED_FIELDS:
            stats.unknown[name] = int(issues.map(lambda parts, n=name: n in parts).sum())
        stats.parser_errors = int(errors.loc[group.index].sum())


def _classify(postings: pd.DataFrame, classifier: OccupationClassifier) -> None:
    matches = classifier.predict(postings["title"].tolist())
    postings["occupation_code"] = [m.code for m in matches]
    postings["occupation_name"] = [m.name for m in matches]
    postings["occupation_score"] = np.array([m.score for m in matches], dtype=float)


def _text(value: object) -> str:
    """Return a cell as text, "" for None and NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _float(value: float | int | None) -> float:
    return math.nan if value is None else float(value)


def _read_source(data_dir: Path, source: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read one source file as text, checking that the named columns exist."""
    folder, name = SOURCE_FILES[source]
    path = data_dir / folder / name
    if not path.is_file():
        raise DataSourceError(f"posting file {path} for source {source!r} not found")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataSourceError(f"{path} lacks columns {missing}; expected {list(columns)}")
    return frame


def read_51job_2018(data_dir: Path) -> pd.DataFrame:
    """Read the 51job 2018 set into :data:`RAW_COLUMNS` (salary from the raw string)."""
    columns = ("job_id", "title", "company", "location", "salary", "update_date", "categories_zh")
    src = _read_source(data_dir, "51job_2018", columns)
    return _raw_frame(
        src,
        "51job_2018",
        posting_id=src["job_id"],
        title=src["title"],
        company=src["company"],
        location_text=src["location"],
        salary_text=src["salary"],
        published_on=src["update_date"],
        categories=src["categories_zh"],
    )


def read_51job_2023(data_dir: Path) -> pd.DataFrame:
    """Read the 51job 2023 IT set into :data:`RAW_COLUMNS`."""
    columns = ("job_id", "title", "company", "location_text", "salary", "workYear", "degree")
    src = _read_source(data_dir, "51job_2023", (*columns, "companySize", "issue_date"))
    return _raw_frame(
        src,
        "51job_2023",
        posting_id=src["job_id"],
        title=src["title"],
        company=src["company"],
        location_text=src["location_text"],
        salary_text=src["salary"],
        education_text=src["degree"],
        experience_text=src["workYear"],
        published_on=src["issue_date"].str.slice(0, 10),
        company_size=src["companySize"],
    )


def read_boss(data_dir: Path) -> pd.DataFrame:
    """Read the BOSS直聘 set, splitting 学历经验要求 and 公司信息 into their parts."""
    columns = ("职位名称", "职位地址", "薪资", "学历经验要求", "公司名称", "公司信息")
    src = _read_source(data_dir, "boss", columns)
    requirement = src["学历经验要求"].map(split_boss_requirement_text)
    size = src["公司信息"].str.extract(_BOSS_COMPANY_SIZE, expand=False).fillna("")
    industry = src["公司信息"].str.replace(_BOSS_COMPANY_SIZE, "", regex=True)
    industry = industry.str.replace(_BOSS_FUNDING_STAGE, "", regex=True)
    return _raw_frame(
        src,
        "boss",
        posting_id=pd.Series([f"boss-{i:04d}" for i in range(1, len(src) + 1)], index=src.index),
        title=src["职位名称"],
        company=src["公司名称"],
        location_text=src["职位地址"],
        salary_text=src["薪资"],
        experience_text=requirement.map(lambda parts: parts[0]),
        education_text=requirement.map(lambda parts: parts[1]),
        company_size=size,
        industry_text=industry,
    )


def read_lagou(data_dir: Path) -> pd.DataFrame:
    """Read the lagou 2016 set; ``businessZones`` becomes a ``;``-joined string."""
    columns = ("positionId", "positionName", "companyFullName", "salary", "education")
    extra = ("workYear", "businessZones", "firstType", "secondType", "companySize")
    src = _read_source(data_dir, "lagou", (*columns, *extra, "industryField"))
    categories = src["firstType"].str.cat(src["secondType"], sep=";").str.strip(";")
    return _raw_frame(
        src,
        "lagou",
        posting_id="lagou-" + src["positionId"],
        title=src["positionName"],
        company=src["companyFullName"],
        business_zones=src["businessZones"].map(_join_python_list),
        salary_text=src["salary"],
        education_text=src["education"],
        experience_text=src["workYear"],
        categories=categories,
        company_size=src["companySize"],
        industry_text=src["industryField"],
    )


def _join_python_list(text: str) -> str:
    """Turn lagou's ``"['唐延路', '沣惠南路']"`` into ``"唐延路;沣惠南路"``."""
    if not text.strip():
        return ""
    try:
        values = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        logger.warning("lagou businessZones %r is not a Python list; kept as text", text)
        return text
    if not isinstance(values, list | tuple):
        return str(values)
    return ";".join(str(v) for v in values)


def _raw_frame(src: pd.DataFrame, source: str, **columns: pd.Series | str) -> pd.DataFrame:
    """Build a frame of :data:`RAW_COLUMNS`, "" for the columns a source lacks."""
    frame = pd.DataFrame(index=src.index)
    for name in RAW_COLUMNS:
        frame[name] = columns.get(name, "")
    frame["source"] = source
    return frame.fillna("").astype(str)


_READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "51job_2018": read_51job_2018,
    "51job_2023": read_51job_2023,
    "boss": read_boss,
    "lagou": read_lagou,
}
