"""Business areas (商圈) named in postings, placed with points from real data.

BOSS直聘 writes a posting's place as ``城市·区·商圈`` and lagou lists nearby
``businessZones``. Each name is placed from the first source that has it:

1. a metro station of the same name (``站`` stripped), from openmetro;
2. Amap POIs of the 高新区 scan whose name equals or contains the name, office
   buildings and industrial parks first, then any category;
3. Baidu POIs whose name equals the name (residential and office file, then
   companies). Baidu names are only matched exactly, because a contained name
   there is often a namesake elsewhere (``火车站二小区`` is in 临潼).

When several POIs match, the area takes the POI at the centre of the densest
group if that group contains more than half of the matches within
:data:`AREA_RADIUS_M`. Otherwise Amap matches that all lie within
:data:`AREA_MAX_SPREAD_M` of each other give their centroid; scattered
matches leave the name unresolved. A road
(``唐延路``, ``未央路沿线``) is a line rather than a point, so road names are
placed only by a metro station of exactly that name (``科技二路``, ``北大街``)
and otherwise stay unresolved. Names that no source places are never guessed.
"""

import ast
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Transformer

from geo.company_index import BAIDU_POI_DIR, PointOfInterest, pois_from_frame, read_poi_csv
from geo.crs import METRIC_CRS, to_metric
from geo.regions import Regions

logger = logging.getLogger(__name__)

# Matches of one name must mostly lie within this many metres of one POI.
AREA_RADIUS_M = 1_500.0

# Matches with no majority group still place the area at their centroid when no
# two are further apart than this: one park with two campuses (西安软件园 on
# 锦业一路 and on 科技二路, 3.9 km apart) is still one 商圈.
AREA_MAX_SPREAD_M = 5_000.0

# Names BOSS uses for a place whose data sources spell it differently.
BUSINESS_AREA_ALIASES: dict[str, str] = {
    # The 高新区 software park is the "西安软件园" in Amap (A-E座 on 锦业一路 and
    # the older campus on 科技二路).
    "高新软件园": "西安软件园",
    # BOSS's 新城区 "火车站" is the main railway station, whose metro stop is 西安站.
    "火车站": "西安站",
}

ROAD_NAME = re.compile(r"(路|街|大道)([东西南北中]?段|[东西南北]口)?$|沿线$")

METRO_FILE = Path("xian_metro_openmetro") / "stations.csv"
AMAP_FILE = Path("xian_gaoxin_realestate_zhubo240") / "gaoxin_amap_pois_gcj02.csv"
BOSS_FILE = Path("xian_jobs_boss_sadxdh") / "xian_boss_python_jobs.csv"
LAGOU_FILE = Path("xian_jobs_lagou2016") / "xian_lagou_dataanalyst_2016.csv"

PREFERRED_AMAP_CATEGORIES = ("office_building", "industrial_park")


@dataclass(frozen=True, slots=True)
class BusinessArea:
    """A business area (商圈) placed at a WGS84 point (EPSG:4326, degrees).

    ``source`` names the dataset, file and matched POI, e.g.
    ``openmetro:stations.csv:小寨``. ``district_code`` is the district containing
    the point, ``None`` when no regions were given or the point is outside them.
    """

    name: str
    lon: float
    lat: float
    source: str
    district_code: str | None = None


def seen_business_area_names(data_dir: Path) -> list[str]:
    """List the business-area names used by the BOSS and lagou postings.

    Parameters
    ----------
    data_dir : pathlib.Path
        The data folder with ``xian_jobs_boss_sadxdh/`` and ``xian_jobs_lagou2016/``.

    Returns
    -------
    list of str
        Distinct names, sorted: the third part of BOSS ``职位地址`` and every
        entry of the lagou ``businessZones`` lists.
    """
    boss = read_poi_csv(data_dir / BOSS_FILE, ["职位地址"])
    names = {parts[2] for parts in boss["职位地址"].str.split("·") if len(parts) == 3 and parts[2]}

    lagou = read_poi_csv(data_dir / LAGOU_FILE, ["businessZones"])
    for value in lagou["businessZones"].dropna():
        names.update(parse_business_zones(str(value)))
    return sorted(names)


def parse_business_zones(value: str | None) -> list[str]:
    """Parse a lagou ``businessZones`` value such as ``"['唐延路', '沣惠南路']"``.

    Returns an empty list for ``None``, an empty string, ``nan`` or text that is
    not a Python list of strings.
    """
    if not value or value == "nan":
        return []
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        logger.warning("businessZones value %r is not a Python list; ignored", value)
        return []
    if not isinstance(parsed, list | tuple):
        return []
    return [str(item).strip() for item in parsed if str(item).strip()]


def is_road_name(name: str) -> bool:
    """True when ``name`` names a road or a stretch of one (唐延路, 未央路沿线, 科技路西口)."""
    return ROAD_NAME.search(name) is not None


def load_business_areas(data_dir: Path, regions: Regions | None = None) -> dict[str, BusinessArea]:
    """Place every business area seen in the postings (:func:`seen_business_area_names`).

    Parameters
    ----------
    data_dir : pathlib.Path
        The data folder.
    regions : Regions, optional
        When given, each area gets the code of the district containing its point.

    Returns
    -------
    dict of str to BusinessArea
        Placed areas by the name used in postings; unresolved names are absent
        and logged at INFO.
    """
    names = seen_business_area_names(data_dir)
    areas = place_business_areas(names, data_dir, regions)
    unresolved = [name for name in names if name not in areas]
    logger.info(
        "business areas: %d of %d placed; unresolved: %s", len(areas), len(names), unresolved
    )
    return areas


def place_business_areas(
    names: Iterable[str], data_dir: Path, regions: Regions | None = None
) -> dict[str, BusinessArea]:
    """Place the given business-area names from the real POI sources (see module notes).

    Parameters
    ----------
    names : iterable of str
        Names as used in postings; aliases in :data:`BUSINESS_AREA_ALIASES` apply.
    data_dir : pathlib.Path
        The data folder with the metro, Amap and Baidu POI files.
    regions : Regions, optional
        When given, fills :attr:`BusinessArea.district_code`.

    Returns
    -------
    dict of str to BusinessArea
        Only the names that could be placed.
    """
    placer = BusinessAreaPlacer.load(data_dir, regions)
    placed = {name: placer.place(name) for name in names}
    return {name: area for name, area in placed.items() if area is not None}


class BusinessAreaPlacer:
    """Places business-area names on demand from the metro, Amap and Baidu POIs.

    Build it with :meth:`load`; :meth:`place` caches its results, so names that
    no posting file listed ahead of time (a lagou ``['小寨']``) cost one search.
    """

    def __init__(
        self,
        stations: dict[str, PointOfInterest],
        amap: pd.DataFrame,
        baidu_by_name: dict[str, list[PointOfInterest]],
        regions: Regions | None = None,
    ) -> None:
        self._stations = stations
        self._amap = amap
        self._amap_pois = pois_from_frame(
            amap, source="amap_poi:gaoxin_amap_pois_gcj02.csv", category=amap["category"]
        )
        self._amap_preferred = amap["category"].isin(PREFERRED_AMAP_CATEGORIES).to_numpy()
        self._baidu_by_name = baidu_by_name
        self._regions = regions
        self._cache: dict[str, BusinessArea | None] = {}

    @classmethod
    def load(cls, data_dir: Path, regions: Regions | None = None) -> "BusinessAreaPlacer":
        """Read the metro stations, the Amap scan and the Baidu POIs from ``data_dir``."""
        table = read_poi_csv(data_dir / METRO_FILE, ["name_zh", "lon_gcj02", "lat_gcj02"])
        stations: dict[str, PointOfInterest] = {}
        for poi in pois_from_frame(
            table,
            source="openmetro:stations.csv",
            category="metro_station",
            name_column="name_zh",
            lon_column="lon_gcj02",
            lat_column="lat_gcj02",
        ):
            # Both 西安站 and 小寨 are findable: by the full name and without 站.
            stations.setdefault(poi.name, poi)
            stations.setdefault(poi.name.removesuffix("站"), poi)

        amap = read_poi_csv(data_dir / AMAP_FILE, ["name", "category", "lng_gcj02", "lat_gcj02"])
        amap = amap.dropna(subset=["name", "lng_gcj02", "lat_gcj02"]).reset_index(drop=True)

        baidu: dict[str, list[PointOfInterest]] = {}
        for file_name in ("realestate_residential_offices.csv", "companies.csv"):
            rows = read_poi_csv(data_dir / BAIDU_POI_DIR / file_name, ["name"])
            for poi in pois_from_frame(rows, source=f"baidu_poi:{file_name}", category="baidu"):
                baidu.setdefault(poi.name, []).append(poi)

        return cls(stations, amap, baidu, regions)

    def place(self, name: str) -> BusinessArea | None:
        """Return the business area called ``name``, or ``None`` when no source places it."""
        name = name.strip()
        if name not in self._cache:
            self._cache[name] = self._place_uncached(name)
        return self._cache[name]

    def _place_uncached(self, name: str) -> BusinessArea | None:
        point = self._find_point(BUSINESS_AREA_ALIASES.get(name, name))
        if point is None:
            return None

        lon, lat, source = point
        code = None
        if self._regions is not None:
            district = self._regions.district_at(lon, lat)
            code = district.code if district is not None else None
        return BusinessArea(name, lon, lat, source, code)

    def _find_point(self, name: str) -> tuple[float, float, str] | None:
        if not name:
            return None
        if name in self._stations:
            station = self._stations[name]
            return station.lon, station.lat, f"{station.source}:{station.name}"
        if is_road_name(name):
            return None

        contains = self._amap["name"].str.contains(name, regex=False).to_numpy()
        for mask in (contains & self._amap_preferred, contains):
            matches = [self._amap_pois[i] for i in np.flatnonzero(mask)]
            found = densest_poi(matches)
            if found is not None:
                return found.lon, found.lat, f"{found.source}:{found.name}"
            centre = compact_centroid(matches)
            if centre is not None:
                source = f"amap_poi:gaoxin_amap_pois_gcj02.csv:centroid of {len(matches)} POIs"
                return centre[0], centre[1], source

        found = densest_poi(self._baidu_by_name.get(name, []))
        if found is not None:
            return found.lon, found.lat, f"{found.source}:{found.name}"
        return None


def densest_poi(
    pois: list[PointOfInterest], radius_m: float = AREA_RADIUS_M
) -> PointOfInterest | None:
    """Return the POI at the centre of the densest group, if that group is a majority.

    Parameters
    ----------
    pois : list of PointOfInterest
        Candidate points in WGS84.
    radius_m : float
        Neighbourhood radius in metres (distances in EPSG:4545).

    Returns
    -------
    PointOfInterest or None
        The member of the largest ``radius_m`` neighbourhood with the smallest
        summed distance to that neighbourhood; ``None`` when there are no
        candidates or the largest neighbourhood contains half of them or fewer.
    """
    if not pois:
        return None

    x, y = to_metric([poi.lon for poi in pois], [poi.lat for poi in pois])
    distances = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    within = distances <= radius_m
    counts = within.sum(axis=1)
    centre = int(counts.argmax())
    if counts[centre] * 2 <= len(pois):
        return None

    members = np.flatnonzero(within[centre])
    medoid = members[int(distances[np.ix_(members, members)].sum(axis=1).argmin())]
    return pois[int(medoid)]


def compact_centroid(
    pois: list[PointOfInterest], max_spread_m: float = AREA_MAX_SPREAD_M
) -> tuple[float, float] | None:
    """Return the WGS84 centroid (lon, lat) of ``pois`` if they lie close together.

    The centroid is the mean in EPSG:4545, converted back to WGS84 degrees.
    Returns ``None`` for no POIs or when two of them are more than
    ``max_spread_m`` metres apart.
    """
    if not pois:
        return None

    x, y = to_metric([poi.lon for poi in pois], [poi.lat for poi in pois])
    if np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]).max() > max_spread_m:
        return None
    lon, lat = _from_metric_transformer().transform(float(x.mean()), float(y.mean()))
    return float(lon), float(lat)


@lru_cache(maxsize=1)
def _from_metric_transformer() -> Transformer:
    return Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)
