"""Education and experience parsing against the real requirement strings."""

from pathlib import Path

import pandas as pd
import pytest

from matching.education import EducationLevel
from matching.requirements import (
    parse_education,
    parse_experience,
    split_boss_requirement,
    split_boss_requirement_text,
)

E = EducationLevel


def _read(data_dir: Path, folder: str, name: str) -> pd.DataFrame:
    return pd.read_csv(data_dir / folder / name, dtype=str, keep_default_na=False)


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("本科", E.BACHELOR),
        ("本科及以上", E.BACHELOR),
        ("大专", E.COLLEGE),
        ("硕士", E.MASTER),
        ("研究生", E.MASTER),
        ("博士", E.DOCTOR),
        ("高中", E.SENIOR_HIGH),
        ("中技/中专", E.SENIOR_HIGH),
        ("中专", E.SENIOR_HIGH),
        ("初中及以下", E.JUNIOR_HIGH),
        ("不限", E.ANY),
        ("学历不限", E.ANY),
        ("", None),
        (None, None),
        ("小学毕业优先", None),
    ],
)
def test_parse_education(text: str | None, level: EducationLevel | None) -> None:
    assert parse_education(text) == level


@pytest.mark.parametrize(
    ("text", "low", "high", "graduate_ok"),
    [
        ("经验不限", 0, None, True),
        ("不限", 0, None, True),
        ("无需经验", 0, None, True),
        ("1-3年", 1, 3, False),
        ("3-5年", 3, 5, False),
        ("5-10年", 5, 10, False),
        ("3-4年", 3, 4, False),
        ("10年以上", 10, None, False),
        ("1年及以上", 1, None, False),
        ("1年以内", 0, 1, True),
        ("1年以下", 0, 1, True),
        ("1年", 1, 1, False),
        ("2年", 2, 2, False),
        ("应届毕业生", 0, 0, True),
        ("在校生/应届生", 0, 0, True),
        ("在校/应届", 0, 0, True),
        ("应届", 0, 0, True),
    ],
)
def test_parse_experience(text: str, low: float, high: float | None, graduate_ok: bool) -> None:
    experience = parse_experience(text)

    assert experience is not None
    assert experience.min_years == low
    assert experience.max_years == high
    assert experience.graduate_ok is graduate_ok
    assert experience.raw == text


@pytest.mark.parametrize("text", ["", None, "5-3年", "若干年", "两年"])
def test_parse_experience_unknown(text: str | None) -> None:
    assert parse_experience(text) is None


@pytest.mark.parametrize(
    ("text", "experience_text", "low", "high", "level"),
    [
        ("1-3年本科", "1-3年", 1, 3, E.BACHELOR),
        ("经验不限大专", "经验不限", 0, None, E.COLLEGE),
        ("经验不限学历不限", "经验不限", 0, None, E.ANY),
        ("在校/应届本科", "在校/应届", 0, 0, E.BACHELOR),
        ("在校/应届硕士", "在校/应届", 0, 0, E.MASTER),
        ("5-10年硕士", "5-10年", 5, 10, E.MASTER),
        ("1年以内大专", "1年以内", 0, 1, E.COLLEGE),
        ("3-5年学历不限", "3-5年", 3, 5, E.ANY),
    ],
)
def test_split_boss_requirement(
    text: str, experience_text: str, low: float, high: float | None, level: EducationLevel
) -> None:
    experience, education = split_boss_requirement(text)

    assert experience is not None
    assert experience.raw == experience_text
    assert (experience.min_years, experience.max_years) == (low, high)
    assert education == level


def test_boss_internship_schedule() -> None:
    experience, education = split_boss_requirement("4天/周3个月本科")

    assert experience is not None
    assert experience.internship
    assert experience.graduate_ok
    assert education == E.BACHELOR


def test_split_boss_text_without_education() -> None:
    assert split_boss_requirement_text("1-3年") == ("1-3年", "")
    assert split_boss_requirement("") == (None, None)


def test_boss_every_value_parses(data_dir: Path) -> None:
    frame = _read(data_dir, "xian_jobs_boss_sadxdh", "xian_boss_python_jobs.csv")
    values = frame["学历经验要求"].unique()

    parsed = [split_boss_requirement(v) for v in values]

    assert len(values) == 18
    assert sum(experience is None for experience, _ in parsed) == 0
    assert sum(education is None for _, education in parsed) == 0


def test_51job_2023_every_value_parses(data_dir: Path) -> None:
    frame = _read(data_dir, "xian_jobs_51job2023_jobspider", "xian_51job_it_postings_2023.csv")

    unknown_experience = [v for v in frame["workYear"] if parse_experience(v) is None]
    unknown_education = [v for v in frame["degree"] if parse_education(v) is None]

    assert unknown_experience == []
    assert unknown_education == [""]  # one row has no degree


def test_lagou_every_value_parses(data_dir: Path) -> None:
    frame = _read(data_dir, "xian_jobs_lagou2016", "xian_lagou_dataanalyst_2016.csv")

    assert all(parse_experience(v) is not None for v in frame["workYear"])
    assert all(parse_education(v) is not None for v in frame["education"])
    graduates = [v for v in frame["workYear"] if (e := parse_experience(v)) and e.max_years == 0]
    assert graduates == ["应届毕业生", "应届毕业生"]
