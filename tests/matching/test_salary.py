"""Salary parsing against real strings of the four posting sets."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from matching.salary import (
    WORKING_DAYS_PER_MONTH,
    WORKING_HOURS_PER_DAY,
    SalaryPeriod,
    parse_salary,
)

DAY = WORKING_DAYS_PER_MONTH
HOUR = WORKING_HOURS_PER_DAY * WORKING_DAYS_PER_MONTH

# (text, min_month, max_month, period, months_per_year), every text copied from the files.
REAL_CASES = [
    # 51job 2018
    ("3-5千/月", 3_000, 5_000, "month", None),
    ("4.5-6千/月", 4_500, 6_000, "month", None),
    ("0.8-1万/月", 8_000, 10_000, "month", None),
    ("10-15万/年", 100_000 / 12, 150_000 / 12, "year", None),
    ("150元/天", 150 * DAY, 150 * DAY, "day", None),
    ("100元/天", 100 * DAY, 100 * DAY, "day", None),
    ("30元/小时", 30 * HOUR, 30 * HOUR, "hour", None),
    ("1.5千以下/月", None, 1_500, "month", None),
    ("2万以下/年", None, 20_000 / 12, "year", None),
    ("10万以上/月", 100_000, None, "month", None),
    ("100万以上/年", 1_000_000 / 12, None, "year", None),
    ("500-800万/月", 5_000_000, 8_000_000, "month", None),
    # 51job 2023
    ("1-1.5万·14薪", 10_000, 15_000, "month", 14),
    ("1.3-2.5万·15薪", 13_000, 25_000, "month", 15),
    ("6千-1.2万", 6_000, 12_000, "month", None),
    ("8千-1.2万·13薪", 8_000, 12_000, "month", 13),
    ("1.6-3.2万", 16_000, 32_000, "month", None),
    ("4-6千", 4_000, 6_000, "month", None),
    ("18-25万/年", 180_000 / 12, 250_000 / 12, "year", None),
    ("3万及以下/年", None, 30_000 / 12, "year", None),
    ("50元/天", 50 * DAY, 50 * DAY, "day", None),
    # BOSS
    ("15-30K", 15_000, 30_000, "month", None),
    ("15-30K·16薪", 15_000, 30_000, "month", 16),
    ("11-20K·13薪", 11_000, 20_000, "month", 13),
    ("130-180元/天", 130 * DAY, 180 * DAY, "day", None),
    # lagou
    ("4k-8k", 4_000, 8_000, "month", None),
    ("12k以上", 12_000, None, "month", None),
    ("10k-15k", 10_000, 15_000, "month", None),
]


def _read(data_dir: Path, folder: str, name: str) -> pd.DataFrame:
    return pd.read_csv(data_dir / folder / name, dtype=str, keep_default_na=False)


@pytest.mark.parametrize(("text", "low", "high", "period", "months"), REAL_CASES)
def test_parse_salary_real_strings(
    text: str, low: float | None, high: float | None, period: str, months: int | None
) -> None:
    salary = parse_salary(text)

    assert salary.period == period
    assert salary.min_month == (None if low is None else pytest.approx(low))
    assert salary.max_month == (None if high is None else pytest.approx(high))
    assert salary.months_per_year == months
    assert salary.raw == text


@pytest.mark.parametrize("text", [None, "", "  ", "面议"])
def test_parse_salary_negotiable(text: str | None) -> None:
    salary = parse_salary(text)

    assert salary.period == SalaryPeriod.NEGOTIABLE
    assert salary.min_month is None
    assert salary.max_month is None


@pytest.mark.parametrize("text", ["8-5千/月", "高薪", "5千-", "1-2万/周", "k-8k"])
def test_parse_salary_unknown(text: str) -> None:
    salary = parse_salary(text)

    assert salary.period == SalaryPeriod.UNKNOWN
    assert salary.min_month is None
    assert salary.max_month is None


def test_salary_plausibility_flags_typo() -> None:
    assert not parse_salary("500-800万/月").is_plausible
    assert parse_salary("3-5千/月").is_plausible
    assert not parse_salary("面议").is_plausible
    assert not parse_salary("3-5").is_plausible  # no unit: read as yuan, flagged


def test_salary_annual_max_counts_months() -> None:
    assert parse_salary("15-30K·16薪").annual_max() == pytest.approx(480_000)
    assert parse_salary("15-30K").annual_max() == pytest.approx(360_000)
    assert parse_salary("12k以上").annual_max() is None


def test_51job_2018_agrees_with_file_columns(data_dir: Path) -> None:
    frame = _read(data_dir, "xian_jobs_51job2018_feilyzhang", "xian_51job_postings_2018.csv")
    rows = frame[frame["salary_period"].isin(["month", "year"])]
    parsed = [parse_salary(text) for text in rows["salary"]]
    low = np.array([np.nan if s.min_month is None else s.min_month for s in parsed])
    high = np.array([np.nan if s.max_month is None else s.max_month for s in parsed])

    # The file rounds to whole yuan, so allow 1 yuan.
    expected_low = pd.to_numeric(rows["salary_min_month"]).to_numpy()
    expected_high = pd.to_numeric(rows["salary_max_month"]).to_numpy()
    same = np.isclose(low, expected_low, atol=1.0, rtol=0.0, equal_nan=True) & np.isclose(
        high, expected_high, atol=1.0, rtol=0.0, equal_nan=True
    )

    assert len(rows) == 71_948
    assert same.mean() >= 0.99
    assert int(same.sum()) == 71_948  # measured agreement: 100 %


SALARY_COLUMNS = [
    ("xian_jobs_51job2018_feilyzhang", "xian_51job_postings_2018.csv", "salary", 0),
    ("xian_jobs_51job2023_jobspider", "xian_51job_it_postings_2023.csv", "salary", 0),
    ("xian_jobs_boss_sadxdh", "xian_boss_python_jobs.csv", "薪资", 0),
    ("xian_jobs_lagou2016", "xian_lagou_dataanalyst_2016.csv", "salary", 0),
]


@pytest.mark.parametrize(("folder", "name", "column", "unknown"), SALARY_COLUMNS)
def test_every_row_parses_without_error(
    data_dir: Path, folder: str, name: str, column: str, unknown: int
) -> None:
    texts = _read(data_dir, folder, name)[column]

    periods = [parse_salary(text).period for text in texts]

    assert periods.count(SalaryPeriod.UNKNOWN) == unknown


def test_negotiable_count_in_51job_files(data_dir: Path) -> None:
    old = _read(data_dir, "xian_jobs_51job2018_feilyzhang", "xian_51job_postings_2018.csv")
    new = _read(data_dir, "xian_jobs_51job2023_jobspider", "xian_51job_it_postings_2023.csv")

    assert sum(parse_salary(t).period == "negotiable" for t in old["salary"]) == 1_036
    assert sum(parse_salary(t).period == "negotiable" for t in new["salary"]) == 11


def test_implausible_count_in_51job_2018(data_dir: Path) -> None:
    frame = _read(data_dir, "xian_jobs_51job2018_feilyzhang", "xian_51job_postings_2018.csv")

    flagged = [
        s.raw for s in map(parse_salary, frame["salary"]) if s.is_known and not s.is_plausible
    ]

    assert len(flagged) == 7
    assert "500-800万/月" in flagged
