"""Development zones (开发区) of Xi'an: names, aliases, representative points, host districts.

The eight zones are management areas that overlap the administrative
districts rather than polygons of their own, and no public boundary data for
them is in the data folder. Each zone therefore has:

- a representative point in WGS84 degrees. It is the Baidu POI of the zone's
  management committee (管委会) or another office of the zone's own
  administration where one exists. Otherwise it is a metro station named after
  the zone, and finally the government seat of its main host district.
  ``DevelopmentZone.source`` records which was used;
- host districts: the district containing the point, followed by the other
  districts the zone is generally reported to overlap or border. These extra
  hosts were not checked against zone polygons, which are not available.

西咸新区 lies mostly in Xianyang, outside the 13 Xi'an districts, so its point
(the 西咸大厦 metro station in 沣东新城) may lie in no district. Its hosts are
the Xi'an districts it borders.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from geo.crs import CoordSys, to_wgs84
from geo.errors import DataSourceError
from geo.regions import Regions

logger = logging.getLogger(__name__)

GOVERNMENT_POI_FILE = "xian_poi_baidu_richiebao/government_agencies.csv"
METRO_STATIONS_FILE = "xian_metro_openmetro/stations.csv"

_CITY_PREFIXES = ("陕西省", "陕西", "西安市", "西安")


@dataclass(frozen=True, slots=True)
class DevelopmentZone:
    """A development zone with its WGS84 representative point and host district codes.

    ``source`` is ``baidu_poi:government_agencies.csv:<POI name>``,
    ``metro_station:stations.csv:<station name>`` or ``district_seat:<code>``.
    """

    key: str
    name: str
    aliases: tuple[str, ...]
    lon: float
    lat: float
    host_district_codes: tuple[str, ...]
    source: str


@dataclass(frozen=True, slots=True)
class _ZoneSpec:
    key: str
    name: str
    aliases: tuple[str, ...]
    poi_name: str | None
    station_name: str | None
    host_district_codes: tuple[str, ...]


# Host codes: 610111 灞桥, 610112 未央, 610113 雁塔, 610114 阎良, 610116 长安,
# 610117 高陵, 610118 鄠邑. The first one is the fallback seat when no POI or
# station is found.
ZONE_SPECS: tuple[_ZoneSpec, ...] = (
    _ZoneSpec(
        "高新",
        "西安高新技术产业开发区",
        ("高新区", "高新技术产业开发区", "高新", "西安高新区"),
        "西安市高新区管委会",
        None,
        ("610113", "610116", "610118"),
    ),
    _ZoneSpec(
        "经开",
        "西安经济技术开发区",
        ("经济技术开发区", "经开区", "经开", "西安经开区"),
        "西安经济技术开发区政务服务中心",
        "行政中心",
        ("610112", "610117"),
    ),
    _ZoneSpec(
        "曲江",
        "曲江新区",
        ("曲江文化新区", "曲江", "西安曲江新区"),
        "西安曲江新区管委会",
        None,
        ("610113", "610116"),
    ),
    _ZoneSpec(
        "浐灞",
        "浐灞生态区",
        ("浐灞", "西安浐灞生态区"),
        "西安浐灞生态生态区管理委员会",
        None,
        ("610111", "610112"),
    ),
    _ZoneSpec(
        "航天",
        "西安国家民用航天产业基地",
        ("国家民用航天产业基地", "航天基地", "航天城"),
        "西安国家民用航天产业基地土地储备中心",
        "航天城",
        ("610116", "610113"),
    ),
    _ZoneSpec(
        "航空",
        "西安阎良国家航空高技术产业基地",
        ("西安阎良航空基地", "阎良航空基地", "航空基地"),
        None,
        None,
        ("610114",),
    ),
    _ZoneSpec(
        "港务区",
        "西安国际港务区",
        ("国际港务区", "港务区"),
        "西安国际港务区管理委员会",
        None,
        ("610111",),
    ),
    _ZoneSpec(
        "西咸",
        "西咸新区",
        ("西咸", "西咸新区"),
        None,
        "西咸大厦",
        ("610112", "610116", "610118"),
    ),
)


def _normalise_zone_text(text: str) -> str:
    """Strip spaces and a leading province or city name (陕西省, 陕西, 西安市, 西安)."""
    name = "".join(text.split())
    for prefix in _CITY_PREFIXES:
        name = name.removeprefix(prefix)
    return name


def _read_points(
    path: Path, name_column: str, lon_column: str, lat_column: str
) -> dict[str, tuple[float, float]]:
    """Read named GCJ-02 points as {name: (lon, lat)}, keeping the first row of a repeated name."""
    try:
        frame = pd.read_csv(path, usecols=[name_column, lon_column, lat_column])
    except (OSError, ValueError) as err:
        raise DataSourceError(f"cannot read {path}: {err}") from err
    frame = frame.dropna().drop_duplicates(name_column)
    rows = frame[[name_column, lon_column, lat_column]].to_numpy().tolist()
    return {str(name): (float(lon), float(lat)) for name, lon, lat in rows}


def _locate(
    spec: _ZoneSpec,
    pois: dict[str, tuple[float, float]],
    stations: dict[str, tuple[float, float]],
    regions: Regions,
) -> tuple[float, float, str]:
    """Pick the zone's representative point: POI, then metro station, then district seat."""
    if spec.poi_name is not None and spec.poi_name in pois:
        lon, lat = to_wgs84(*pois[spec.poi_name], CoordSys.GCJ02)
        return lon, lat, f"baidu_poi:government_agencies.csv:{spec.poi_name}"
    if spec.poi_name is not None:
        logger.warning("zone %r: POI %r not found, falling back", spec.key, spec.poi_name)

    if spec.station_name is not None and spec.station_name in stations:
        lon, lat = to_wgs84(*stations[spec.station_name], CoordSys.GCJ02)
        return lon, lat, f"metro_station:stations.csv:{spec.station_name}"

    seat = regions.district(spec.host_district_codes[0])
    if seat is None:
        raise DataSourceError(
            f"zone {spec.key!r}: host district {spec.host_district_codes[0]!r} not loaded"
        )
    return seat.lon, seat.lat, f"district_seat:{seat.code}"


def load_zones(data_dir: Path, regions: Regions) -> list[DevelopmentZone]:
    """Build the eight development zones with points from the real POI and metro data.

    Parameters
    ----------
    data_dir
        The data folder containing ``xian_poi_baidu_richiebao`` and ``xian_metro_openmetro``.
    regions
        Loaded regions, used for host districts and the district-seat fallback.

    Returns
    -------
    list of DevelopmentZone
        In the order of ``ZONE_SPECS``; points in WGS84 degrees.
    """
    pois = _read_points(data_dir / GOVERNMENT_POI_FILE, "name", "lng_gcj02", "lat_gcj02")
    stations = _read_points(data_dir / METRO_STATIONS_FILE, "name_zh", "lon_gcj02", "lat_gcj02")

    zones = []
    for spec in ZONE_SPECS:
        lon, lat, source = _locate(spec, pois, stations, regions)
        containing = regions.district_at(lon, lat)
        hosts = spec.host_district_codes
        if containing is not None:
            hosts = (containing.code, *(code for code in hosts if code != containing.code))
        zones.append(DevelopmentZone(spec.key, spec.name, spec.aliases, lon, lat, hosts, source))
    return zones


def match_zone(text: str, zones: list[DevelopmentZone]) -> DevelopmentZone | None:
    """Match location text to a development zone by exact name or alias.

    Parameters
    ----------
    text
        Zone text as written, e.g. ``西安阎良航空基地`` or ``高新技术产业开发区``.
        Spaces and a leading ``陕西省``/``陕西``/``西安市``/``西安`` are ignored on both sides.
    zones
        Zones from :func:`load_zones`.

    Returns
    -------
    DevelopmentZone or None
        None when the text is not exactly a zone's key, name or alias.
    """
    target = _normalise_zone_text(text)
    if not target:
        return None
    for zone in zones:
        names = (zone.key, zone.name, *zone.aliases)
        if any(_normalise_zone_text(name) == target for name in names):
            return zone
    return None
