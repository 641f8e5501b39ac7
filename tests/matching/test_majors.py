"""The major-to-occupation mapping of the graduate zone."""

from pathlib import Path

import pandas as pd
import pytest

from matching.majors import (
    MAJOR_CLASSES,
    MAJOR_CODES,
    UnknownMajorError,
    major_class,
    major_fits,
    occupation_prefixes,
)
from matching.occupation import load_occupations
from matching.seeker_simulation import SimulationParameters


def test_every_prefix_has_occupations(data_dir: Path) -> None:
    codes = load_occupations(data_dir)
    level4 = codes.loc[codes["level"].astype(int) == 4, "code"].astype(str)
    for major in MAJOR_CLASSES.values():
        for prefix in major.occupation_prefixes:
            under = level4.str.startswith(f"{prefix}-")
            assert under.any(), f"{major.code} {major.name}: no occupation under {prefix}"


def test_every_named_major_has_a_class() -> None:
    for name, code in MAJOR_CODES.items():
        assert major_class(name).code == code[:4], name


def test_simulated_wishes_fall_under_the_major() -> None:
    for major, prefixes in SimulationParameters().majors.items():
        mapped = occupation_prefixes(major)
        for prefix in prefixes:
            assert any(prefix == p or prefix.startswith(f"{p}-") for p in mapped), (major, prefix)


@pytest.mark.parametrize(
    ("major", "expected"),
    [("软件工程", "0809"), ("080902", "0809"), ("0809", "0809"), ("120203K", "1202")],
)
def test_major_class_by_name_or_code(major: str, expected: str) -> None:
    found = major_class(major)

    assert found.code == expected
    assert found.discipline in {"工学", "管理学"}


def test_unknown_major_names_value() -> None:
    with pytest.raises(UnknownMajorError, match="'考古魔法学'"):
        major_class("考古魔法学")


def test_unknown_major_fits_nothing(caplog: pytest.LogCaptureFixture) -> None:
    codes = pd.Series(["2-02-10-03"])

    assert not major_fits("考古魔法学", codes).any()
    assert "not mapped" in caplog.text
    assert not major_fits("", codes).any()


def test_major_fits_by_prefix() -> None:
    codes = pd.Series(["2-02-10-03", "2-05-01-01", "", None, "2-02-100-0"])

    assert major_fits("软件工程", codes).tolist() == [True, False, False, False, False]
    assert major_fits("临床医学", codes).tolist() == [False, True, False, False, False]
