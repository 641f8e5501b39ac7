"""Tests of the simulated seekers drawn over the real Xi'an homes."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geo.crs import XIAN_BOUNDS_WGS84
from geo.regions import Regions, load_regions
from matching.education import EducationLevel
from matching.occupation import load_occupations
from matching.seeker_simulation import (
    GROUPS,
    SimulationParameters,
    generate_seekers,
    load_home_anchors,
)

N = 3000


@pytest.fixture(scope="module")
def regions(data_dir: Path) -> Regions:
    return load_regions(data_dir)


@pytest.fixture(scope="module")
def occupations(data_dir: Path) -> pd.DataFrame:
    return load_occupations(data_dir)


@pytest.fixture(scope="module")
def seekers(data_dir: Path, regions: Regions, occupations: pd.DataFrame) -> pd.DataFrame:
    return generate_seekers(data_dir, N, seed=11, occupations=occupations, regions=regions)


def test_rows_and_unique_ids(seekers: pd.DataFrame) -> None:
    assert len(seekers) == N
    assert seekers["seeker_id"].is_unique
    assert seekers["seeker_id"].iloc[0] == "sim-000001"
    assert seekers["seeker_id"].iloc[-1] == f"sim-{N:06d}"


def test_all_rows_simulated(seekers: pd.DataFrame) -> None:
    assert seekers["simulated"].dtype == bool
    assert seekers["simulated"].all()


def test_same_seed_same_frame(data_dir: Path, regions: Regions, occupations: pd.DataFrame) -> None:
    first = generate_seekers(data_dir, 300, seed=5, occupations=occupations, regions=regions)
    second = generate_seekers(data_dir, 300, seed=5, occupations=occupations, regions=regions)
    other = generate_seekers(data_dir, 300, seed=6, occupations=occupations, regions=regions)

    pd.testing.assert_frame_equal(first, second)
    assert not first["home_label"].equals(other["home_label"])


def test_group_shares_match_parameters(seekers: pd.DataFrame) -> None:
    shares = seekers["group"].value_counts(normalize=True)
    expected = SimulationParameters().group_shares

    assert set(shares.index) == set(GROUPS)
    for group in GROUPS:
        tolerance = 4 * np.sqrt(expected[group] * (1 - expected[group]) / N)
        assert abs(shares[group] - expected[group]) < tolerance, group


def test_homes_inside_xian(seekers: pd.DataFrame) -> None:
    min_lon, min_lat, max_lon, max_lat = XIAN_BOUNDS_WGS84

    assert seekers["home_lon"].between(min_lon, max_lon).all()
    assert seekers["home_lat"].between(min_lat, max_lat).all()


def test_homes_in_a_district(seekers: pd.DataFrame) -> None:
    located = seekers["home_district_code"].notna().mean()

    assert located >= 0.95, f"only {located:.1%} of homes fall in a district"
    assert seekers["home_district_code"].dropna().str.fullmatch(r"6101\d\d").all()


def test_home_anchors_are_real(data_dir: Path) -> None:
    homes = load_home_anchors(data_dir)
    kinds = homes["kind"].value_counts()

    assert kinds["university"] == 63
    assert kinds["dormitory"] >= 300
    assert kinds["residential"] >= 2500 + 1500


def test_group_rules(seekers: pd.DataFrame) -> None:
    talent = seekers.loc[seekers["group"] == "talent"]
    assistance = seekers.loc[seekers["group"] == "assistance"]
    graduates = seekers.loc[seekers["group"] == "graduate"]
    others = seekers.loc[seekers["group"] != "graduate"]

    assert (talent["education"] >= EducationLevel.MASTER).all()
    assert (assistance["education"] <= EducationLevel.COLLEGE).all()
    assert (assistance["max_commute_min"] <= 30).all()
    assert (graduates["major"] != "").all()
    assert (others["major"] == "").all()
    assert (others["university"] == "").all()


def test_university_only_for_campus_homes(seekers: pd.DataFrame) -> None:
    at_campus = seekers["home_kind"] == "university"

    assert (seekers.loc[at_campus, "group"] == "graduate").all()
    assert (seekers.loc[at_campus, "university"] == seekers.loc[at_campus, "home_label"]).all()
    assert (seekers.loc[~at_campus, "university"] == "").all()


def test_wishes_are_level4_occupations(seekers: pd.DataFrame, occupations: pd.DataFrame) -> None:
    level4 = set(occupations.loc[occupations["level"] == 4, "code"])

    assert seekers["occupation_wish_code"].isin(level4).all()
    assert (seekers["keywords"].str.split(";").str[0] == seekers["occupation_wish_name"]).all()
    assert not seekers["occupation_wish_name"].str.endswith(("L", "S")).any()


def test_salary_wish_around_51job_medians(seekers: pd.DataFrame) -> None:
    assert (seekers["salary_wish_min"] <= seekers["salary_wish_max"]).all()
    assert 3500 <= seekers["salary_wish_min"].median() <= 6000
    assert (seekers["salary_wish_min"] % 100 == 0).all()


def test_modes_and_commute(seekers: pd.DataFrame) -> None:
    modes = set(";".join(seekers["modes"]).split(";"))

    assert modes <= {"walk", "bike", "transit", "drive"}
    assert seekers["max_commute_min"].between(15, 60).all()


def test_zero_and_negative_n(data_dir: Path, regions: Regions, occupations: pd.DataFrame) -> None:
    empty = generate_seekers(data_dir, 0, seed=1, occupations=occupations, regions=regions)

    assert empty.empty
    assert "home_district_code" in empty.columns
    with pytest.raises(ValueError, match="-3"):
        generate_seekers(data_dir, -3, seed=1, occupations=occupations, regions=regions)
