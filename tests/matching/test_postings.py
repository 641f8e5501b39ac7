"""Reading the four real posting sets into one table."""

import math
import time
from pathlib import Path

import pandas as pd
import pytest

from matching.occupation import OccupationClassifier, load_occupations
from matching.postings import (
    POSTING_COLUMNS,
    RAW_COLUMNS,
    IngestReport,
    normalise_rows,
    read_postings,
)

# Measured on the real files: (rows read, rows kept, duplicates dropped).
EXPECTED_ROWS = {
    "51job_2018": (73_756, 73_688, 68),
    "51job_2023": (259, 253, 6),
    "boss": (270, 251, 19),
    "lagou": (51, 38, 13),
}

# Unknown (salary, education, experience) over kept rows. The 51job 2018 set
# has no education or experience column, so every kept row is unknown there.
EXPECTED_UNKNOWN = {
    "51job_2018": (0, 73_688, 73_688),
    "51job_2023": (0, 1, 0),
    "boss": (0, 0, 0),
    "lagou": (0, 0, 0),
}


@pytest.fixture(scope="module")
def postings(data_dir: Path) -> tuple[pd.DataFrame, IngestReport]:
    return read_postings(data_dir)


def test_columns_in_contract_order(postings: tuple[pd.DataFrame, IngestReport]) -> None:
    frame, _ = postings

    assert list(frame.columns) == list(POSTING_COLUMNS)


@pytest.mark.parametrize("source", sorted(EXPECTED_ROWS))
def test_rows_per_source(postings: tuple[pd.DataFrame, IngestReport], source: str) -> None:
    frame, report = postings
    stats = report.sources[source]
    read, kept, dropped = EXPECTED_ROWS[source]

    assert stats.rows_read == read
    assert stats.rows_kept == kept
    assert stats.duplicates_dropped == dropped
    assert stats.rows_read == stats.rows_kept + stats.duplicates_dropped
    assert int((frame["source"] == source).sum()) == kept


@pytest.mark.parametrize("source", sorted(EXPECTED_UNKNOWN))
def test_unknown_counts(postings: tuple[pd.DataFrame, IngestReport], source: str) -> None:
    _, report = postings
    stats = report.sources[source]

    assert (stats.unknown["salary"], stats.unknown["education"], stats.unknown["experience"]) == (
        EXPECTED_UNKNOWN[source]
    )
    assert stats.parser_errors == 0


def test_posting_ids_unique(postings: tuple[pd.DataFrame, IngestReport]) -> None:
    frame, _ = postings

    assert frame["posting_id"].is_unique
    assert frame["posting_id"].str.match(r"^(fz51-\d{5}|js51-\d{3}|boss-\d{4}|lagou-\d+)$").all()


def test_first_rows_of_each_source(postings: tuple[pd.DataFrame, IngestReport]) -> None:
    frame = postings[0].set_index("posting_id")

    old = frame.loc["fz51-00001"]
    assert (old["salary_min_month"], old["salary_max_month"]) == (3_000.0, 5_000.0)
    assert old["published_on"] == "2018-09-27"
    assert old["categories"] == "百货/零售"

    new = frame.loc["js51-001"]
    assert new["salary_months_per_year"] == 14.0
    assert new["education"] == 4
    assert (new["experience_min_years"], new["experience_max_years"]) == (3.0, 4.0)
    assert new["published_on"] == "2023-12-07"

    boss = frame.loc["boss-0001"]
    assert boss["location_text"] == "西安·雁塔区·高新软件园"
    assert (boss["experience_text"], boss["education_text"]) == ("1-3年", "本科")
    assert (boss["company_size"], boss["industry_text"]) == ("1000-9999人", "计算机软件")

    lagou = frame.loc["lagou-2574456"]
    assert lagou["business_zones"] == "锦园小区;高新路;劳动公园"
    assert lagou["categories"] == "产品/需求/项目类;数据分析"
    assert lagou["graduate_ok"]
    assert lagou["location_text"] == ""


def test_occupation_empty_without_classifier(postings: tuple[pd.DataFrame, IngestReport]) -> None:
    frame, _ = postings

    assert (frame["occupation_code"] == "").all()
    assert frame["occupation_score"].isna().all()


def test_report_text_lists_sources(postings: tuple[pd.DataFrame, IngestReport]) -> None:
    _, report = postings

    text = report.to_text()

    lines = {line.split()[0]: line.split() for line in text.splitlines()[1:]}
    assert lines["51job_2018"][:4] == ["51job_2018", "73756", "73688", "68"]
    assert lines["lagou"][:4] == ["lagou", "51", "38", "13"]
    assert lines["total"] == ["total", "74336", "74230"]
    assert report.rows_read == 74_336
    assert report.rows_kept == 74_230


def test_normalise_rows_keeps_garbage_rows() -> None:
    raw = pd.DataFrame(
        {
            "posting_id": ["x-1", "x-2", "x-3"],
            "source": ["test"] * 3,
            "title": ["会计", "", "司机"],
            "salary_text": ["工资很高", "8-5千/月", "3-5千/月"],
            "education_text": ["看能力", "本科", None],
            "experience_text": ["5-3年", "许多年", "1-3年"],
        }
    )

    frame, errors = normalise_rows(raw)

    assert len(frame) == 3
    assert list(frame["parse_issues"]) == [
        "salary;education;experience",
        "salary;experience",
        "education",
    ]
    assert math.isnan(float(frame["salary_min_month"].iloc[0]))
    assert frame.loc[0, "education"] == -1
    assert frame.loc[2, "salary_max_month"] == 5_000.0
    assert errors.sum() == 0


def test_normalise_rows_survives_raising_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(text: str | None) -> None:
        raise RuntimeError(f"parser failure on {text!r}")

    monkeypatch.setattr("matching.postings.parse_education", explode)
    raw = pd.DataFrame({c: ["本科"] for c in RAW_COLUMNS} | {"salary_text": ["3-5千/月"]})

    frame, errors = normalise_rows(raw)

    assert len(frame) == 1
    assert frame.loc[0, "education"] == -1
    assert "education" in str(frame["parse_issues"].iloc[0])
    assert frame.loc[0, "salary_min_month"] == 3_000.0
    assert int(errors.sum()) == 1


def test_read_postings_with_classifier(data_dir: Path) -> None:
    steps: list[tuple[str, int, int]] = []
    started = time.perf_counter()
    classifier = OccupationClassifier().fit(load_occupations(data_dir))

    frame, _ = read_postings(data_dir, classifier, progress=lambda *a: steps.append(a))
    elapsed = time.perf_counter() - started

    print(f"fit + read + classify {len(frame)} postings: {elapsed:.1f} s")
    assert steps[-1] == ("occupation", 5, 5)
    assert [s[0] for s in steps[:4]] == ["51job_2018", "51job_2023", "boss", "lagou"]
    boss = frame[frame["source"] == "boss"]
    software = (boss["occupation_code"] == "2-02-10-03").mean()
    assert software > 0.8
    # Titles made only of hiring words ("五险一金高薪", "招聘") match nothing.
    assert int((frame["occupation_code"] == "").sum()) == 3
    assert frame["occupation_score"].between(0.0, 1.0).all()
