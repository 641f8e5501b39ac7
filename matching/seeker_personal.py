"""Simulated personal information of simulated seekers, and their home community.

Every value here is invented and labelled simulated. Names come from common surnames
and given-name characters, and mobiles from real carrier prefixes with random digits.
Resident ID numbers pass GB 11643-1999, with a Xi'an region code, the birth date of
the seeker's age and a valid check character, but are drawn at random. The draws use
their own random generator, seeded from the simulation seed, so adding them left the
other seeker columns of a seed unchanged.

The data folder has community codes but no community boundaries, so a home's
community is simulated too: the nearest street office in the home's district gives
the street, and one of that street's communities is drawn.
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyproj
from scipy.spatial import cKDTree
from stdnum.cn import ric

from geo.crs import METRIC_CRS
from geo.regions import Regions

logger = logging.getLogger(__name__)

# Stream id mixed into the simulation seed for the personal draws.
PERSONAL_STREAM = 5

HARDSHIP_CATEGORIES: dict[str, tuple[str, str]] = {
    "disability": ("残疾人", "person with a disability"),
    "zero_employment_family": ("零就业家庭成员", "member of a zero-employment family"),
    "long_term_unemployed": ("长期失业人员", "long-term unemployed"),
    "low_income_family": ("城乡低保家庭成员", "member of a minimum-living-allowance family"),
    "older_unemployed": ("大龄失业人员", "older unemployed worker (40/50)"),
}
"""Assistance-target categories by code, with their zh-CN and English labels."""

# Fallback region code when a home lies in no district: 西安市 新城区.
FALLBACK_REGION_CODE = "610102"


@dataclass(frozen=True)
class PersonalParameters:
    """Distributions of the simulated personal fields; every one is an assumption."""

    # Common mainland surnames, drawn uniformly.
    surnames: str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
    # Given-name characters; a given name has one or two of them.
    given_characters: str = (
        "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国文博宇浩然欣怡"
    )
    two_character_given_share: float = 0.7
    # Mobile prefixes of the three carriers; the other 8 digits are uniform.
    mobile_prefixes: tuple[str, ...] = (
        "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151",
        "152", "153", "155", "156", "157", "158", "159", "166", "173", "177", "180",
        "181", "182", "183", "185", "186", "187", "188", "189", "198", "199",
    )  # fmt: skip
    # Age range in whole years by group, uniform.
    age_by_group: Mapping[str, tuple[int, int]] = field(
        default_factory=lambda: {
            "graduate": (21, 26),
            "talent": (28, 55),
            "assistance": (30, 59),
            "general": (18, 59),
        }
    )
    # Shares of the assistance targets' categories (codes of HARDSHIP_CATEGORIES).
    hardship_shares: Mapping[str, float] = field(
        default_factory=lambda: {
            "disability": 0.20,
            "zero_employment_family": 0.15,
            "long_term_unemployed": 0.30,
            "low_income_family": 0.15,
            "older_unemployed": 0.20,
        }
    )
    # Date at which the ages hold, fixed so a seed gives the same birth dates every day.
    reference_date: date = date(2026, 12, 1)


def draw_personal(
    seekers: pd.DataFrame,
    seed: int,
    regions: Regions,
    parameters: PersonalParameters | None = None,
) -> pd.DataFrame:
    """Add simulated personal fields and the home street and community to ``seekers``.

    Parameters
    ----------
    seekers
        Frame of :func:`matching.seeker_simulation.generate_seekers` before this step,
        with ``group``, ``home_lon``/``home_lat`` (WGS84 degrees) and
        ``home_district_code``.
    seed
        The simulation seed; the personal draws use their own stream of it.
    regions
        Districts, streets (with office points) and communities.
    parameters
        Distributions; `PersonalParameters` defaults when None.

    Returns
    -------
    pandas.DataFrame
        A copy with ``name``, ``mobile`` (11 digits), ``id_number`` (18 characters,
        unique), ``sex`` ("F" or "M"), ``birth_date`` (ISO text), ``age`` (whole years
        at ``reference_date``), ``hardship_category`` (a code of
        :data:`HARDSHIP_CATEGORIES` for assistance targets, else ""),
        ``home_street_code`` (9 digits), ``home_community_code`` (12 digits) and
        ``home_area_lon``/``home_area_lat``: the street office point (the district
        seat when the street has none), WGS84 degrees.
    """
    params = parameters or PersonalParameters()
    rng = np.random.default_rng([seed, PERSONAL_STREAM])
    n = len(seekers)
    groups = seekers["group"].to_numpy(dtype=str)
    out = seekers.copy()

    out["name"] = _draw_names(rng, n, params)
    out["mobile"] = _unique(_draw_mobiles(rng, n, params), _next_mobile)
    ages = np.zeros(n, dtype=np.int64)
    for group, (low, high) in params.age_by_group.items():
        mask = groups == group
        ages[mask] = rng.integers(low, high + 1, int(mask.sum()))
    sexes = np.where(rng.random(n) < 0.5, "F", "M")
    births = [
        params.reference_date - timedelta(days=int(365.25 * age) + int(day))
        for age, day in zip(ages, rng.integers(0, 365, n), strict=True)
    ]
    regions_codes = [
        code if isinstance(code, str) and code.startswith("6101") else FALLBACK_REGION_CODE
        for code in seekers["home_district_code"]
    ]
    sequences = rng.integers(0, 500, n) * 2 + (sexes == "M")
    numbers = [
        _id_number(region, birth, int(sequence))
        for region, birth, sequence in zip(regions_codes, births, sequences, strict=True)
    ]
    out["id_number"] = _unique(numbers, _next_id_number)
    out["sex"] = sexes
    out["birth_date"] = [birth.isoformat() for birth in births]
    out["age"] = [_age(birth, params.reference_date) for birth in births]
    out["hardship_category"] = _draw_hardship(rng, groups, params)

    streets, communities, area_lons, area_lats = _home_areas(rng, seekers, regions)
    out["home_street_code"] = streets
    out["home_community_code"] = communities
    out["home_area_lon"] = area_lons
    out["home_area_lat"] = area_lats
    logger.info("drew simulated personal fields for %d seekers (seed %d)", n, seed)
    return out


def _draw_names(rng: np.random.Generator, n: int, params: PersonalParameters) -> list[str]:
    surnames = rng.choice(list(params.surnames), n)
    characters = list(params.given_characters)
    firsts = rng.choice(characters, n)
    seconds = rng.choice(characters, n)
    two = rng.random(n) < params.two_character_given_share
    return [
        f"{surname}{first}{second if both else ''}"
        for surname, first, second, both in zip(surnames, firsts, seconds, two, strict=True)
    ]


def _draw_mobiles(rng: np.random.Generator, n: int, params: PersonalParameters) -> list[str]:
    prefixes = rng.choice(list(params.mobile_prefixes), n)
    digits = rng.integers(0, 10**8, n)
    return [f"{prefix}{int(rest):08d}" for prefix, rest in zip(prefixes, digits, strict=True)]


def _id_number(region: str, birth: date, sequence: int) -> str:
    return _with_check(f"{region}{birth:%Y%m%d}{sequence:03d}")


def _with_check(first_17: str) -> str:
    """Append the ISO 7064 MOD 11-2 check character to 17 digits."""
    # python-stdnum ignores the last character it is given, which is the check's place.
    return first_17 + str(ric.calc_check_digit(first_17 + "0"))


def _next_id_number(number: str) -> str:
    """Return the number with the next sequence of the same sex (wrapping) and its check."""
    sequence = (int(number[14:17]) + 2) % 1000
    return _with_check(f"{number[:14]}{sequence:03d}")


def _next_mobile(number: str) -> str:
    return f"{number[:3]}{(int(number[3:]) + 1) % 10**8:08d}"


def _unique(values: list[str], successor: Callable[[str], str]) -> list[str]:
    """Replace repeated values by their successor until every value is new, in row order."""
    seen: set[str] = set()
    result = []
    for value in values:
        while value in seen:
            value = successor(value)
        seen.add(value)
        result.append(value)
    return result


def _age(birth: date, at: date) -> int:
    return at.year - birth.year - ((at.month, at.day) < (birth.month, birth.day))


def _draw_hardship(
    rng: np.random.Generator, groups: npt.NDArray[np.str_], params: PersonalParameters
) -> list[str]:
    codes = list(params.hardship_shares)
    weights = np.asarray([params.hardship_shares[code] for code in codes], dtype=np.float64)
    drawn = rng.choice(codes, len(groups), p=weights / weights.sum())
    return [
        str(code) if group == "assistance" else ""
        for code, group in zip(drawn, groups, strict=True)
    ]


def _home_areas(
    rng: np.random.Generator, seekers: pd.DataFrame, regions: Regions
) -> tuple[list[str], list[str], list[float], list[float]]:
    """Return each home's street, a drawn community of it and the home area's point.

    The street is the nearest street office in the home's district, measured in
    EPSG:4545 metres, and the point is that office. In a district without any
    office point the street is drawn among its streets and the point is the
    district seat. A home outside every district takes the nearest office of all.
    """
    offices = regions.streets.dropna(subset=["lon", "lat"]).reset_index(drop=True)
    to_metric = pyproj.Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    office_xy = np.column_stack(to_metric.transform(offices["lon"], offices["lat"]))
    home_xy = np.column_stack(to_metric.transform(seekers["home_lon"], seekers["home_lat"]))
    office_district = offices["district_code"].astype(str).to_numpy()
    home_district = seekers["home_district_code"].astype(str).to_numpy()

    n = len(seekers)
    streets = np.empty(n, dtype=object)
    lons = np.zeros(n, dtype=np.float64)
    lats = np.zeros(n, dtype=np.float64)
    for district in np.unique(home_district):
        homes = np.flatnonzero(home_district == district)
        candidates = np.flatnonzero(office_district == district)
        seat = regions.district(district)
        if candidates.size == 0 and seat is not None:
            options = sorted(
                regions.streets.loc[regions.streets["district_code"] == district, "code"]
            )
            streets[homes] = rng.choice(np.asarray(options, dtype=object), homes.size)
            lons[homes], lats[homes] = seat.lon, seat.lat
            continue
        if candidates.size == 0:
            candidates = np.arange(len(offices))
        _, nearest = cKDTree(office_xy[candidates]).query(home_xy[homes])
        chosen = candidates[nearest]
        streets[homes] = offices["code"].astype(str).to_numpy()[chosen]
        lons[homes] = offices["lon"].to_numpy(dtype=np.float64)[chosen]
        lats[homes] = offices["lat"].to_numpy(dtype=np.float64)[chosen]

    communities_by_street = regions.communities.groupby("street_code")["code"].apply(sorted)
    picks = rng.random(n)
    community_codes = []
    for street, pick in zip(streets, picks, strict=True):
        options = communities_by_street.get(street, [])
        community_codes.append(str(options[int(pick * len(options))]) if options else "")
    return [str(street) for street in streets], community_codes, lons.tolist(), lats.tolist()
