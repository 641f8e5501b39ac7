"""Simulated job seekers homed at real Xi'an residential compounds and campuses.

No real seeker data exists yet, so evaluation and the behaviour simulation use
seekers drawn here. Every row is labelled ``simulated = True``. The homes are real
places: Baidu residential compounds and dormitories (2017-2019), Amap residential
POIs of the 高新区 (2026) and the 63 Baidu university campuses, all converted from
GCJ-02 to WGS84 with `geo.crs.to_wgs84_arrays`. Everything else (group, education,
wishes, commute limits) is drawn from `SimulationParameters`, where each
distribution is marked with its source or labelled an assumption. The simulated
personal fields and home communities come from `matching.seeker_personal`.
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo.crs import XIAN_BOUNDS_WGS84, CoordSys, to_wgs84_arrays
from geo.errors import DataSourceError
from geo.regions import Regions, load_regions
from matching.education import EducationLevel
from matching.occupation import load_occupations
from matching.seeker_personal import draw_personal

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str], None]
KeyT = TypeVar("KeyT", str, int)

RESIDENTIAL_FILE = "xian_poi_baidu_richiebao/realestate_residential_offices.csv"
GAOXIN_FILE = "xian_gaoxin_realestate_zhubo240/gaoxin_amap_pois_gcj02.csv"
UNIVERSITY_FILE = "xian_universities/xian_universities_baidu_poi.csv"

# Baidu tags of the home anchors, with the home kind each one gives.
RESIDENTIAL_TAGS: dict[str, str] = {"房地产;住宅区": "residential", "房地产;宿舍": "dormitory"}

GROUPS = ("graduate", "talent", "assistance", "general")

_E = EducationLevel


@dataclass(frozen=True)
class SimulationParameters:
    """Every distribution of the seeker simulation, each with its source or "assumption".

    Shares are probabilities that sum to 1 within each mapping. Prefixes are CSCO
    2022 code prefixes (``"2-02-10"`` is a 小类); a seeker's wish is drawn uniformly
    among the level-4 occupations under the drawn prefix.
    """

    # Assumption: no city-wide count of registered seekers by group was at hand.
    group_shares: Mapping[str, float] = field(
        default_factory=lambda: {
            "graduate": 0.25,
            "talent": 0.05,
            "assistance": 0.15,
            "general": 0.55,
        }
    )

    # Assumption. Talent means master or doctor; assistance targets are mostly at or
    # below senior high school.
    education_by_group: Mapping[str, Mapping[int, float]] = field(
        default_factory=lambda: {
            "graduate": {_E.COLLEGE: 0.35, _E.BACHELOR: 0.50, _E.MASTER: 0.13, _E.DOCTOR: 0.02},
            "talent": {_E.MASTER: 0.60, _E.DOCTOR: 0.40},
            "assistance": {_E.JUNIOR_HIGH: 0.45, _E.SENIOR_HIGH: 0.40, _E.COLLEGE: 0.15},
            "general": {
                _E.JUNIOR_HIGH: 0.10,
                _E.SENIOR_HIGH: 0.30,
                _E.COLLEGE: 0.30,
                _E.BACHELOR: 0.27,
                _E.MASTER: 0.03,
            },
        }
    )

    # Assumption: years of experience, uniform between the two bounds.
    experience_years_by_group: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "graduate": (0.0, 1.0),
            "talent": (2.0, 20.0),
            "assistance": (0.0, 25.0),
            "general": (0.0, 20.0),
        }
    )

    # Assumption: graduates' majors, drawn uniformly, each with the occupation
    # prefixes a graduate of that major looks for.
    majors: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "计算机科学与技术": ("2-02-10", "2-02-38", "4-04-05"),
            "软件工程": ("2-02-10", "4-04-05"),
            "电子信息工程": ("2-02-09", "2-02-10"),
            "机械设计制造及其自动化": ("2-02-07",),
            "电气工程及其自动化": ("2-02-11", "2-02-12"),
            "航空航天工程": ("2-02-08",),
            "土木工程": ("2-02-18", "6-29"),
            "环境工程": ("2-02-27",),
            "会计学": ("2-06-03",),
            "市场营销": ("2-06-07", "4-01-02"),
            "人力资源管理": ("2-06-08", "4-07-03"),
            "临床医学": ("2-05-01",),
            "护理学": ("2-05-08",),
            "汉语言文学": ("2-10-02", "2-08-02"),
            "数学与应用数学": ("2-08-02", "2-06-01"),
            "视觉传达设计": ("2-09-06",),
        }
    )

    # Assumption: occupation prefixes wished for by the groups without a major.
    occupation_prefixes_by_group: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: {
            "talent": {"2-01": 0.20, "2-02": 0.45, "2-05": 0.10, "2-06": 0.10, "2-08-01": 0.15},
            "assistance": {
                "4-03": 0.20,
                "4-10": 0.20,
                "4-02": 0.15,
                "4-07-05": 0.10,
                "4-01-02": 0.15,
                "4-09": 0.10,
                "6-29": 0.10,
            },
            "general": {
                "4-01": 0.20,
                "4-02": 0.10,
                "4-03": 0.10,
                "4-04": 0.10,
                "2-02": 0.15,
                "2-06": 0.10,
                "3-01": 0.10,
                "6": 0.15,
            },
        }
    )

    # Source: the 51job Xi'an postings of September 2018 in the data folder have a
    # median minimum of 4,500 and a median maximum of 6,000 yuan/month.
    salary_median_min: float = 4500.0
    salary_median_max: float = 6000.0
    # Assumption: multiplier of the medians by education, and log-normal spread of a
    # seeker's wish around it (one factor per seeker, applied to min and max).
    salary_factor_by_education: Mapping[int, float] = field(
        default_factory=lambda: {
            _E.ANY: 0.8,
            _E.JUNIOR_HIGH: 0.8,
            _E.SENIOR_HIGH: 0.9,
            _E.COLLEGE: 1.0,
            _E.BACHELOR: 1.2,
            _E.MASTER: 1.6,
            _E.DOCTOR: 2.0,
        }
    )
    salary_sigma: float = 0.2
    salary_rounding_yuan: float = 100.0

    # Assumption: one-way commute limits in minutes. Assistance targets prefer short
    # commutes, so their limit never exceeds 30 minutes.
    commute_limits_by_group: Mapping[str, Mapping[int, float]] = field(
        default_factory=lambda: {
            "graduate": {30: 0.30, 45: 0.40, 60: 0.30},
            "talent": {30: 0.30, 45: 0.40, 60: 0.30},
            "assistance": {15: 0.40, 20: 0.30, 30: 0.30},
            "general": {30: 0.25, 45: 0.40, 60: 0.35},
        }
    )

    # Assumption: allowed travel modes (names of `matching.candidates.MODE_SPEEDS_KMH`).
    modes_by_group: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: {
            "graduate": {"walk;transit": 0.70, "walk;bike;transit": 0.30},
            "talent": {"walk;transit;drive": 0.60, "walk;transit": 0.40},
            "assistance": {"walk": 0.30, "walk;bike": 0.30, "walk;transit": 0.40},
            "general": {
                "walk;transit": 0.50,
                "walk;bike;transit": 0.20,
                "walk;transit;drive": 0.30,
            },
        }
    )

    # Assumption: share of graduates homed at their campus; the rest live in a
    # compound or dormitory like everyone else.
    graduate_campus_share: float = 0.6
    # Wish keywords taken from the occupation's alias list, besides its own name.
    alias_keywords: int = 2


def generate_seekers(
    data_dir: Path,
    n: int,
    seed: int,
    *,
    occupations: pd.DataFrame | None = None,
    regions: Regions | None = None,
    progress: ProgressCallback | None = None,
    parameters: SimulationParameters | None = None,
) -> pd.DataFrame:
    """Draw ``n`` simulated seekers homed at real Xi'an compounds and campuses.

    Parameters
    ----------
    data_dir
        The data folder (residential POIs, 高新区 POIs, universities, csco22.csv).
    n
        Number of seekers, >= 0.
    seed
        Seed of the ``numpy.random.Generator``; the same seed gives the same frame.
    occupations
        The CSCO 2022 frame of `matching.occupation.load_occupations`; loaded when None.
    regions
        Districts for ``home_district_code``; `geo.regions.load_regions` when None.
    progress
        Called with the name of each step as it starts.
    parameters
        Distributions; `SimulationParameters` defaults when None.

    Returns
    -------
    pandas.DataFrame
        One row per seeker, with these columns:

        - identity: ``seeker_id`` ("sim-000001" ...), ``simulated`` (always True);
        - profile: ``group``, ``education`` (int EducationLevel),
          ``experience_years``, ``major`` (graduates only, else "");
        - wishes: ``occupation_wish_code``/``occupation_wish_name`` (level 4),
          ``keywords`` (``;``-joined), ``salary_wish_min``/``salary_wish_max``
          (yuan/month), ``max_commute_min`` (int minutes), ``modes`` (``;``-joined);
        - home: ``home_lon``/``home_lat`` (WGS84 degrees), ``home_label``,
          ``home_kind`` ("residential", "dormitory", "university"),
          ``home_district_code`` (6-digit code or None) and ``university`` (campus
          name for graduates homed there, else "");
        - simulated personal information and home area, from
          `matching.seeker_personal.draw_personal`: ``name``, ``mobile``,
          ``id_number``, ``sex``, ``birth_date``, ``age``, ``hardship_category``,
          ``home_street_code``, ``home_community_code``, ``home_area_lon``/``home_area_lat``.
    """
    if n < 0:
        raise ValueError(f"n {n!r} is invalid; expected a number of seekers >= 0")
    params = parameters or SimulationParameters()
    rng = np.random.default_rng(seed)
    report = progress or (lambda _step: None)

    report("load homes")
    homes = load_home_anchors(data_dir)
    csco = occupations if occupations is not None else load_occupations(data_dir)
    level4 = csco.loc[csco["level"].astype(int) == 4].sort_values("code").reset_index(drop=True)

    report("draw profiles")
    seekers = _draw_profiles(rng, n, params)

    report("draw occupation wishes")
    seekers = _draw_wishes(rng, seekers, level4, params)

    report("draw homes")
    seekers = _draw_homes(rng, seekers, homes, params)

    report("locate districts")
    lookup = regions if regions is not None else load_regions(data_dir)
    located = lookup.districts_at(seekers["home_lon"].to_numpy(), seekers["home_lat"].to_numpy())
    seekers["home_district_code"] = pd.Series(located, index=seekers.index, dtype=object)

    report("draw personal information")
    seekers = draw_personal(seekers, seed, lookup)
    logger.info("generated %d simulated seekers (seed %d)", n, seed)
    return seekers


def load_home_anchors(data_dir: Path) -> pd.DataFrame:
    """Read the real home anchors: compounds, dormitories and university campuses.

    Returns
    -------
    pandas.DataFrame
        Columns ``label``, ``kind`` ("residential", "dormitory", "university"),
        ``lon``, ``lat`` (WGS84 degrees, converted from GCJ-02). Rows outside
        ``geo.crs.XIAN_BOUNDS_WGS84`` or without coordinates are dropped.

    Raises
    ------
    DataSourceError
        When a file is missing or lacks a column.
    """
    baidu = _read_source(data_dir / RESIDENTIAL_FILE, ("name", "tag", "lng_gcj02", "lat_gcj02"))
    baidu = baidu.loc[baidu["tag"].isin(list(RESIDENTIAL_TAGS))]
    gaoxin = _read_source(data_dir / GAOXIN_FILE, ("name", "category", "lng_gcj02", "lat_gcj02"))
    gaoxin = gaoxin.loc[gaoxin["category"] == "residential"]
    campuses = _read_source(data_dir / UNIVERSITY_FILE, ("name", "lng_gcj02", "lat_gcj02"))

    frames = [
        baidu.assign(kind=baidu["tag"].map(RESIDENTIAL_TAGS)),
        gaoxin.assign(kind="residential"),
        campuses.assign(kind="university"),
    ]
    homes = pd.concat(
        [frame[["name", "kind", "lng_gcj02", "lat_gcj02"]] for frame in frames], ignore_index=True
    )
    lons, lats = to_wgs84_arrays(
        homes["lng_gcj02"].to_numpy(dtype=np.float64),
        homes["lat_gcj02"].to_numpy(dtype=np.float64),
        CoordSys.GCJ02,
    )
    homes = pd.DataFrame({"label": homes["name"], "kind": homes["kind"], "lon": lons, "lat": lats})

    min_lon, min_lat, max_lon, max_lat = XIAN_BOUNDS_WGS84
    inside = homes["lon"].between(min_lon, max_lon) & homes["lat"].between(min_lat, max_lat)
    if (~inside).any():
        logger.warning("dropped %d home anchors outside the Xi'an bounds", int((~inside).sum()))
    return homes.loc[inside].reset_index(drop=True)


def _read_source(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise DataSourceError(f"home anchor file {path} not found")
    frame = pd.read_csv(path, dtype={"name": str})
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataSourceError(f"{path} lacks columns {missing}; expected {list(columns)}")
    return frame


def _choose(
    rng: np.random.Generator, shares: Mapping[KeyT, float], size: int
) -> npt.NDArray[np.object_]:
    keys = list(shares)
    weights = np.asarray([shares[key] for key in keys], dtype=np.float64)
    picks = rng.choice(len(keys), size=size, p=weights / weights.sum())
    return np.asarray(keys, dtype=object)[picks]


def _draw_profiles(rng: np.random.Generator, n: int, params: SimulationParameters) -> pd.DataFrame:
    groups = _choose(rng, params.group_shares, n)
    education = np.zeros(n, dtype=np.int64)
    experience = np.zeros(n, dtype=np.float64)
    commute = np.zeros(n, dtype=np.int64)
    modes = np.empty(n, dtype=object)
    for group in GROUPS:
        mask = groups == group
        count = int(mask.sum())
        education[mask] = _choose(rng, params.education_by_group[group], count).astype(np.int64)
        low, high = params.experience_years_by_group[group]
        experience[mask] = np.round(rng.uniform(low, high, count), 1)
        commute[mask] = _choose(rng, params.commute_limits_by_group[group], count).astype(np.int64)
        modes[mask] = _choose(rng, params.modes_by_group[group], count)

    factor = np.asarray([params.salary_factor_by_education[int(level)] for level in education])
    spread = rng.lognormal(0.0, params.salary_sigma, n)
    step = params.salary_rounding_yuan
    wish_min = np.round(params.salary_median_min * factor * spread / step) * step
    wish_max = np.round(params.salary_median_max * factor * spread / step) * step

    return pd.DataFrame(
        {
            "seeker_id": [f"sim-{i:06d}" for i in range(1, n + 1)],
            "simulated": np.ones(n, dtype=bool),
            "group": groups.astype(str),
            "education": education,
            "experience_years": experience,
            "salary_wish_min": wish_min,
            "salary_wish_max": wish_max,
            "max_commute_min": commute,
            "modes": modes.astype(str),
        }
    )


def _draw_wishes(
    rng: np.random.Generator,
    seekers: pd.DataFrame,
    level4: pd.DataFrame,
    params: SimulationParameters,
) -> pd.DataFrame:
    n = len(seekers)
    groups = seekers["group"].to_numpy()
    majors = np.full(n, "", dtype=object)
    prefixes = np.full(n, "", dtype=object)

    graduates = groups == "graduate"
    major_names = sorted(params.majors)
    majors[graduates] = rng.choice(np.asarray(major_names, dtype=object), int(graduates.sum()))
    for position in np.flatnonzero(graduates):
        options = params.majors[str(majors[position])]
        prefixes[position] = options[int(rng.integers(len(options)))]
    for group, shares in params.occupation_prefixes_by_group.items():
        mask = groups == group
        prefixes[mask] = _choose(rng, shares, int(mask.sum()))

    codes = level4["code"].to_numpy(dtype=str)
    positions = np.zeros(n, dtype=np.int64)
    for prefix in sorted(set(prefixes.tolist())):
        under = np.flatnonzero(np.char.startswith(codes, f"{prefix}-"))
        if under.size == 0:
            raise DataSourceError(f"no level-4 occupation under prefix {prefix!r} in csco22.csv")
        mask = prefixes == prefix
        positions[mask] = rng.choice(under, int(mask.sum()))

    chosen = level4.iloc[positions].reset_index(drop=True)
    seekers = seekers.copy()
    seekers["major"] = majors.astype(str)
    seekers["occupation_wish_code"] = chosen["code"].to_numpy(dtype=str)
    seekers["occupation_wish_name"] = [_strip_marker(name) for name in chosen["name"]]
    seekers["keywords"] = [
        _wish_keywords(rng, name, str(alias), params.alias_keywords)
        for name, alias in zip(seekers["occupation_wish_name"], chosen["alias"], strict=True)
    ]
    return seekers


def _strip_marker(name: str) -> str:
    """Drop the 2022 edition's trailing green (L) or digital (S) occupation marker."""
    return name[:-1] if name.endswith(("L", "S")) else name


def _wish_keywords(rng: np.random.Generator, name: str, alias: str, count: int) -> str:
    aliases = sorted({_strip_marker(item.strip()) for item in alias.split(",") if item.strip()})
    aliases = [item for item in aliases if item != name]
    picked = rng.choice(np.asarray(aliases, dtype=object), min(count, len(aliases)), replace=False)
    return ";".join([name, *[str(item) for item in picked]])


def _draw_homes(
    rng: np.random.Generator,
    seekers: pd.DataFrame,
    homes: pd.DataFrame,
    params: SimulationParameters,
) -> pd.DataFrame:
    n = len(seekers)
    campus_rows = np.flatnonzero(homes["kind"].to_numpy() == "university")
    dwelling_rows = np.flatnonzero(homes["kind"].to_numpy() != "university")

    at_campus = (seekers["group"].to_numpy() == "graduate") & (
        rng.random(n) < params.graduate_campus_share
    )
    rows = rng.choice(dwelling_rows, n)
    rows[at_campus] = rng.choice(campus_rows, int(at_campus.sum()))

    picked = homes.iloc[rows].reset_index(drop=True)
    seekers = seekers.copy()
    seekers["home_lon"] = picked["lon"].to_numpy()
    seekers["home_lat"] = picked["lat"].to_numpy()
    seekers["home_label"] = picked["label"].astype(str).to_numpy()
    seekers["home_kind"] = picked["kind"].astype(str).to_numpy()
    seekers["university"] = np.where(at_campus, seekers["home_label"], "")
    return seekers
