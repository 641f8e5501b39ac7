"""Tests of the simulated personal fields and home communities of simulated seekers."""

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from api.security.validation import normalise_mobile, parse_id_number
from geo.regions import Regions, load_regions
from matching.seeker_personal import (
    HARDSHIP_CATEGORIES,
    PersonalParameters,
    _next_id_number,
    _unique,
    _with_check,
)
from matching.seeker_simulation import generate_seekers

N = 2000


@pytest.fixture(scope="module")
def regions(data_dir: Path) -> Regions:
    return load_regions(data_dir)


@pytest.fixture(scope="module")
def seekers(data_dir: Path, regions: Regions) -> pd.DataFrame:
    return generate_seekers(data_dir, N, seed=21, regions=regions)


def test_id_numbers_pass_gb11643(seekers: pd.DataFrame) -> None:
    parsed = [parse_id_number(value) for value in seekers["id_number"]]

    assert all(
        number.value == value for number, value in zip(parsed, seekers["id_number"], strict=True)
    )
    assert all(number.region_code.startswith("6101") for number in parsed)


def test_id_region_is_home_district(seekers: pd.DataFrame) -> None:
    known = seekers.loc[seekers["home_district_code"].notna()]

    assert (known["id_number"].str[:6] == known["home_district_code"]).all()


def test_birth_date_matches_id_and_age(seekers: pd.DataFrame) -> None:
    reference = PersonalParameters().reference_date
    for value, birth_text, age in seekers[["id_number", "birth_date", "age"]].itertuples(
        index=False
    ):
        birth = date.fromisoformat(birth_text)
        assert parse_id_number(value).birth_date == birth
        years = (
            reference.year
            - birth.year
            - ((reference.month, reference.day) < (birth.month, birth.day))
        )
        assert years == age


@pytest.mark.parametrize("group", ["graduate", "talent", "assistance", "general"])
def test_ages_within_group_range(seekers: pd.DataFrame, group: str) -> None:
    low, high = PersonalParameters().age_by_group[group]
    ages = seekers.loc[seekers["group"] == group, "age"]

    assert ages.min() >= low - 1
    assert ages.max() <= high


def test_sex_digit_parity(seekers: pd.DataFrame) -> None:
    odd = seekers["id_number"].str[16].astype(int) % 2 == 1

    assert (odd == (seekers["sex"] == "M")).all()


def test_numbers_unique_and_valid(seekers: pd.DataFrame) -> None:
    assert seekers["id_number"].is_unique
    assert seekers["mobile"].is_unique
    assert all(normalise_mobile(value) == value for value in seekers["mobile"])


def test_names_are_chinese(seekers: pd.DataFrame) -> None:
    lengths = seekers["name"].str.len()

    assert lengths.between(2, 3).all()
    assert seekers["name"].str[0].isin(list(PersonalParameters().surnames)).all()


def test_hardship_only_for_assistance(seekers: pd.DataFrame) -> None:
    assistance = seekers["group"] == "assistance"

    assert seekers.loc[assistance, "hardship_category"].isin(list(HARDSHIP_CATEGORIES)).all()
    assert (seekers.loc[~assistance, "hardship_category"] == "").all()


def test_community_in_street_in_district(seekers: pd.DataFrame, regions: Regions) -> None:
    for street_code, community_code, district in seekers[
        ["home_street_code", "home_community_code", "home_district_code"]
    ].itertuples(index=False):
        community = regions.community_by_code(community_code)
        assert community is not None
        assert community.street_code == street_code
        if isinstance(district, str):
            assert community.district_code == district


def test_area_point_is_street_office(seekers: pd.DataFrame, regions: Regions) -> None:
    row = seekers.iloc[0]
    street = regions.street_by_code(row["home_street_code"])

    assert street is not None
    assert street.district_code == row["home_district_code"]
    assert row["home_area_lon"] == pytest.approx(street.lon)
    assert row["home_area_lat"] == pytest.approx(street.lat)


def test_same_seed_same_personal(data_dir: Path, regions: Regions) -> None:
    first = generate_seekers(data_dir, 200, seed=4, regions=regions)
    second = generate_seekers(data_dir, 200, seed=4, regions=regions)
    other = generate_seekers(data_dir, 200, seed=8, regions=regions)

    assert first["id_number"].tolist() == second["id_number"].tolist()
    assert first["name"].tolist() == second["name"].tolist()
    assert first["id_number"].tolist() != other["id_number"].tolist()


def test_unique_resolves_collisions() -> None:
    first = _with_check("61010319900101123")
    resolved = _unique([first, first, first], _next_id_number)

    assert len(set(resolved)) == 3
    assert all(parse_id_number(value).value == value for value in resolved)
    assert all(int(value[16]) % 2 == int(first[16]) % 2 for value in resolved)
