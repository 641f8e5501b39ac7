"""Gazetteer: posting location text and employer names to a point with an honest precision.

Postings say where a job is in several shapes: ``西安-雁塔区`` (51job 2018),
``雁塔区西安软件园科技二路`` (51job 2023), ``西安·雁塔区·高新软件园`` (BOSS,
城市·区·商圈) and lagou's ``businessZones`` list. :meth:`Gazetteer.locate` tries
the evidence from most to least exact and stops at the first that holds:

1. the employer's own POI (exact normalised name, one place) → ``poi``;
2. an office building or industrial park named in free text → ``building``;
3. a business area (商圈) that real data places → ``business_area``;
4. a development zone → ``zone``;
5. a district → ``district``;
6. otherwise the city point → ``city``.

A point that contradicts the district named in the text is not used: a POI must
lie in that district, a building or business area within
:data:`DISTRICT_TOLERANCE_M` of it (商圈 straddle district borders).
"""

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import shapely

from geo.business_areas import AMAP_FILE, BusinessArea, BusinessAreaPlacer, load_business_areas
from geo.company_index import (
    BAIDU_POI_DIR,
    CompanyIndex,
    PointOfInterest,
    load_company_index,
    normalise_company_name,
    pois_from_frame,
    read_poi_csv,
)
from geo.crs import METRIC_CRS, to_metric
from geo.errors import DataSourceError
from geo.location import Location, Precision
from geo.regions import District, Regions
from geo.zones import DevelopmentZone, match_zone

logger = logging.getLogger(__name__)

CITY_LABEL = "西安"

# The city point is the 钟楼 (Bell Tower) metro station, about 150 m from the
# Bell Tower at the centre of the old town.
CITY_STATION = "钟楼"

# A building or 商圈 may lie this far outside the district the text names.
DISTRICT_TOLERANCE_M = 2_000.0

# Building names shorter than this are too generic to find inside free text.
MIN_BUILDING_NAME_CHARS = 4

# POIs of one building name must all lie within this distance to count as one place.
BUILDING_MAX_SPREAD_M = 300.0

_PART_SEPARATORS = re.compile(r"[·\-－—]")
_CITY_PREFIXES = ("陕西省", "陕西", "西安市", "西安")
_DISTRICT_ENDINGS = ("区", "县")
_MAX_DISTRICT_NAME_CHARS = 5


@dataclass(frozen=True, slots=True)
class ParsedLocation:
    """Location text split into the named district, the named 商圈 and the rest.

    ``area`` is the third part of a BOSS ``城市·区·商圈`` text; ``rest`` is free
    text left after removing the city and district names (e.g. ``西安软件园科技二路``).
    """

    district: District | None
    area: str
    rest: str


def parse_location_text(text: str | None, regions: Regions) -> ParsedLocation:
    """Split posting location text into district, business area and the remainder.

    Parameters
    ----------
    text : str or None
        ``西安``, ``西安-雁塔区``, ``西安·雁塔区·高新软件园``, ``雁塔区高新四路`` …;
        ``None``, NaN-like ``"nan"`` and blank text give an empty result.
    regions : Regions
        Used to recognise district names (雁塔, 雁塔区, 户县 …).

    Returns
    -------
    ParsedLocation
    """
    cleaned = unicodedata.normalize("NFKC", text or "").strip()
    if cleaned.lower() == "nan":
        cleaned = ""
    parts = [part.strip() for part in _PART_SEPARATORS.split(cleaned) if part.strip()]
    while parts and _strip_city(parts[0]) == "":
        parts.pop(0)
    if not parts:
        return ParsedLocation(None, "", "")

    if len(parts) >= 2:
        district = regions.district_by_name(parts[0])
        if district is not None:
            return ParsedLocation(district, "·".join(parts[1:]), "")
        return ParsedLocation(None, "", "".join(parts))

    return _split_district_prefix(_strip_city(parts[0]), regions)


def _strip_city(text: str) -> str:
    for prefix in _CITY_PREFIXES:
        text = text.removeprefix(prefix)
    return text.strip()


def _split_district_prefix(text: str, regions: Regions) -> ParsedLocation:
    for end, char in enumerate(text[:_MAX_DISTRICT_NAME_CHARS]):
        if char in _DISTRICT_ENDINGS:
            district = regions.district_by_name(text[: end + 1])
            if district is not None:
                return ParsedLocation(district, "", _strip_city(text[end + 1 :]))
    return ParsedLocation(regions.district_by_name(text), "", text)


class BuildingIndex:
    """Office buildings and industrial parks, found by a name contained in free text.

    Parameters
    ----------
    pois : sequence of PointOfInterest
        Buildings in WGS84; names shorter than :data:`MIN_BUILDING_NAME_CHARS` are skipped.
    """

    def __init__(self, pois: Sequence[PointOfInterest]) -> None:
        by_name: dict[str, list[PointOfInterest]] = {}
        for poi in pois:
            if len(poi.name) >= MIN_BUILDING_NAME_CHARS:
                by_name.setdefault(poi.name, []).append(poi)
        self._names = sorted(by_name, key=len, reverse=True)
        self._by_name = by_name

    def find_in(self, text: str) -> PointOfInterest | None:
        """Return the building whose name is the longest one contained in ``text``.

        Names shared by POIs more than :data:`BUILDING_MAX_SPREAD_M` apart are
        skipped, since they name several places.
        """
        for name in self._names:
            if name in text:
                group = self._by_name[name]
                x, y = to_metric([poi.lon for poi in group], [poi.lat for poi in group])
                if (x.max() - x.min()) ** 2 + (y.max() - y.min()) ** 2 <= BUILDING_MAX_SPREAD_M**2:
                    return group[0]
        return None


def load_buildings(data_dir: Path) -> BuildingIndex:
    """Load office buildings and industrial parks (Amap 高新区 scan, Baidu 写字楼), WGS84."""
    amap = read_poi_csv(data_dir / AMAP_FILE, ["name", "category", "lng_gcj02", "lat_gcj02"])
    amap = amap[amap["category"].isin(["office_building", "industrial_park"])]
    offices_file = "realestate_residential_offices.csv"
    baidu = read_poi_csv(data_dir / BAIDU_POI_DIR / offices_file, ["name", "tag"])
    baidu = baidu[baidu["tag"].fillna("").str.contains("写字楼")]

    return BuildingIndex(
        [
            *pois_from_frame(
                amap, source="amap_poi:gaoxin_amap_pois_gcj02.csv", category=amap["category"]
            ),
            *pois_from_frame(baidu, source=f"baidu_poi:{offices_file}", category="office_building"),
        ]
    )


class Gazetteer:
    """Locates postings from their location text, employer name and business zones.

    Build it with :func:`build_gazetteer`. :attr:`stats` counts, per distinct
    input, the evidence that was found but rejected (``poi_other_district``,
    ``building_other_district``, ``area_other_district``, ``area_unresolved``).
    """

    def __init__(
        self,
        regions: Regions,
        zones: list[DevelopmentZone],
        companies: CompanyIndex,
        buildings: BuildingIndex,
        areas: BusinessAreaPlacer,
        known_areas: dict[str, BusinessArea],
        city_point: tuple[float, float, str],
    ) -> None:
        self.regions = regions
        self.zones = zones
        self.companies = companies
        self.buildings = buildings
        self.areas = areas
        self.stats: Counter[str] = Counter()
        self._known_area_names = sorted(known_areas, key=len, reverse=True)
        self._zone_aliases = sorted(
            ((alias, zone) for zone in zones for alias in (zone.name, *zone.aliases)),
            key=lambda pair: len(pair[0]),
            reverse=True,
        )
        metric = regions.districts.set_index("code").geometry.to_crs(METRIC_CRS)
        self._district_shapes: dict[str, shapely.Geometry] = metric.to_dict()
        lon, lat, source = city_point
        self._city = Location(lon, lat, Precision.CITY, source, CITY_LABEL, None)
        self._cache: dict[tuple[str, str, tuple[str, ...]], Location] = {}

    def locate(
        self, text: str | None, *, company: str | None = None, business_zones: Sequence[str] = ()
    ) -> Location:
        """Return the most precise location the evidence supports (never ``None``).

        Parameters
        ----------
        text : str or None
            Posting location text in any of the shapes in the module notes.
        company : str, optional
            Employer name as listed; an exact normalised match to one POI gives ``poi``.
        business_zones : sequence of str
            lagou ``businessZones`` entries, tried in order as business areas.

        Returns
        -------
        Location
            WGS84 point with its precision, source, label and district code. The
            district code is that of the point for ``poi``, ``building`` and
            ``business_area``, the first host district for ``zone``, the named
            district for ``district`` and ``None`` for ``city``.
        """
        key = (
            (text or "").strip(),
            normalise_company_name(company) if company else "",
            tuple(zone.strip() for zone in business_zones if zone and zone.strip()),
        )
        if key not in self._cache:
            self._cache[key] = self._locate(key[0], company or "", key[2])
        return self._cache[key]

    def _locate(self, text: str, company: str, business_zones: tuple[str, ...]) -> Location:
        parsed = parse_location_text(text, self.regions)
        district = parsed.district

        found = self._company_location(company, district)
        if found is None and parsed.rest:
            found = self._building_location(parsed.rest, district)
        if found is None:
            found = self._area_location(parsed, business_zones, district)
        if found is None:
            found = self._zone_location(parsed)
        if found is None and district is not None:
            found = Location(
                district.lon,
                district.lat,
                Precision.DISTRICT,
                "regions:district_seat",
                district.name,
                district.code,
            )
        return found or self._city

    def _company_location(self, company: str, district: District | None) -> Location | None:
        poi = self.companies.unambiguous_poi(company) if company else None
        if poi is None:
            return None
        code = self._district_code_at(poi.lon, poi.lat)
        if district is not None and code != district.code:
            self.stats["poi_other_district"] += 1
            return None
        return Location(poi.lon, poi.lat, Precision.POI, poi.source, poi.name, code)

    def _building_location(self, rest: str, district: District | None) -> Location | None:
        poi = self.buildings.find_in(rest)
        if poi is None:
            return None
        if not self._near_district(poi.lon, poi.lat, district):
            self.stats["building_other_district"] += 1
            return None
        code = self._district_code_at(poi.lon, poi.lat)
        return Location(poi.lon, poi.lat, Precision.BUILDING, poi.source, poi.name, code)

    def _area_location(
        self, parsed: ParsedLocation, business_zones: tuple[str, ...], district: District | None
    ) -> Location | None:
        names = [parsed.area] if parsed.area else []
        names += business_zones
        if parsed.rest:
            names.append(parsed.rest)
        names += [name for name in self._known_area_names if parsed.rest and name in parsed.rest]

        for name in names:
            # A zone name (国际港务区, 航天城) is a zone even where a metro station shares it.
            if match_zone(name, self.zones) is not None:
                continue
            area = self.areas.place(name)
            if area is None:
                self.stats["area_unresolved"] += 1
                continue
            if not self._near_district(area.lon, area.lat, district):
                self.stats["area_other_district"] += 1
                continue
            return Location(
                area.lon, area.lat, Precision.BUSINESS_AREA, area.source, name, area.district_code
            )
        return None

    def _zone_location(self, parsed: ParsedLocation) -> Location | None:
        zone = match_zone(parsed.area, self.zones) if parsed.area else None
        if zone is None:
            zone = self._zone_named_in(parsed.rest)
        if zone is None:
            return None
        code = zone.host_district_codes[0] if zone.host_district_codes else None
        return Location(zone.lon, zone.lat, Precision.ZONE, zone.source, zone.name, code)

    def _zone_named_in(self, text: str) -> DevelopmentZone | None:
        return next((zone for alias, zone in self._zone_aliases if alias in text), None)

    def _district_code_at(self, lon: float, lat: float) -> str | None:
        district = self.regions.district_at(lon, lat)
        return district.code if district is not None else None

    def _near_district(self, lon: float, lat: float, district: District | None) -> bool:
        if district is None:
            return True
        x, y = to_metric([lon], [lat])
        point = shapely.Point(float(x[0]), float(y[0]))
        return bool(self._district_shapes[district.code].distance(point) <= DISTRICT_TOLERANCE_M)


def build_gazetteer(data_dir: Path, regions: Regions, zones: list[DevelopmentZone]) -> Gazetteer:
    """Build a :class:`Gazetteer` from the real POI, metro and posting files.

    Parameters
    ----------
    data_dir : pathlib.Path
        The data folder.
    regions : Regions
        Districts for names, point-in-district codes and consistency checks.
    zones : list of DevelopmentZone
        Development zones from :func:`geo.zones.load_zones`.

    Returns
    -------
    Gazetteer

    Raises
    ------
    DataSourceError
        If the metro file has no 钟楼 station for the city point.
    """
    placer = BusinessAreaPlacer.load(data_dir, regions)
    city = placer.place(CITY_STATION)
    if city is None:
        raise DataSourceError(f"metro station {CITY_STATION!r} not found; it is the city point")

    return Gazetteer(
        regions=regions,
        zones=zones,
        companies=load_company_index(data_dir),
        buildings=load_buildings(data_dir),
        areas=placer,
        known_areas=load_business_areas(data_dir, regions),
        city_point=(city.lon, city.lat, city.source),
    )
