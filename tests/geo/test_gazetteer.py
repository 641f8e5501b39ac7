"""Tests of the gazetteer against the real posting, POI and metro files."""

import ast
from pathlib import Path

import pandas as pd
import pytest

from geo.business_areas import load_business_areas, seen_business_area_names
from geo.crs import XIAN_BOUNDS_WGS84, CoordSys, geodesic_distance_m, to_wgs84
from geo.gazetteer import Gazetteer, build_gazetteer, parse_location_text
from geo.location import Location, Precision
from geo.regions import Regions
from geo.zones import DevelopmentZone

JOBS_2018 = Path("xian_jobs_51job2018_feilyzhang") / "xian_51job_postings_2018.csv"
BOSS = Path("xian_jobs_boss_sadxdh") / "xian_boss_python_jobs.csv"
METRO = Path("xian_metro_openmetro") / "stations.csv"
AMAP = Path("xian_gaoxin_realestate_zhubo240") / "gaoxin_amap_pois_gcj02.csv"


@pytest.fixture(scope="module")
def gazetteer(data_dir: Path, regions: Regions, zones: list[DevelopmentZone]) -> Gazetteer:
    return build_gazetteer(data_dir, regions, zones)


def _inside_bounds(location: Location) -> bool:
    min_lon, min_lat, max_lon, max_lat = XIAN_BOUNDS_WGS84
    return min_lon <= location.lon <= max_lon and min_lat <= location.lat <= max_lat


@pytest.mark.parametrize(
    ("text", "precision", "label_part", "district_code"),
    [
        ("西安", Precision.CITY, "西安", None),
        ("西安-雁塔区", Precision.DISTRICT, "雁塔区", "610113"),
        ("西安-鄠邑区", Precision.DISTRICT, "鄠邑区", "610118"),
        ("西安-高新技术产业开发区", Precision.ZONE, "高新", "610113"),
        ("高新技术产业开发区", Precision.ZONE, "高新", "610113"),
        ("西安-浐灞生态区", Precision.ZONE, "浐灞", None),
        ("西安-曲江文化新区", Precision.ZONE, "曲江", None),
        ("西安·雁塔区·曲江新区", Precision.ZONE, "曲江", None),
        ("灞桥区国际港务区", Precision.ZONE, "港务区", "610111"),
        ("航天城", Precision.ZONE, "航天", None),
        ("西安·雁塔区·丈八", Precision.DISTRICT, "雁塔区", "610113"),
        ("西安·新城区·钟楼", Precision.BUSINESS_AREA, "钟楼", None),
        ("", Precision.CITY, "西安", None),
        (None, Precision.CITY, "西安", None),
    ],
)
def test_locate_real_strings(
    gazetteer: Gazetteer,
    text: str | None,
    precision: Precision,
    label_part: str,
    district_code: str | None,
) -> None:
    location = gazetteer.locate(text)
    assert location.precision is precision
    assert label_part in location.label
    if district_code is not None or precision is Precision.CITY:
        assert location.district_code == district_code


def test_software_park_area(gazetteer: Gazetteer, data_dir: Path) -> None:
    location = gazetteer.locate("西安·雁塔区·高新软件园")
    amap = pd.read_csv(data_dir / AMAP)
    park = amap[(amap["name"] == "西安软件园A座")].iloc[0]
    park_lon, park_lat = to_wgs84(park["lng_gcj02"], park["lat_gcj02"], CoordSys.GCJ02)

    assert location.precision in {Precision.BUSINESS_AREA, Precision.BUILDING}
    assert location.district_code == "610113"
    assert geodesic_distance_m(location.lon, location.lat, park_lon, park_lat) < 3_000


def test_street_text_beats_city(gazetteer: Gazetteer) -> None:
    location = gazetteer.locate("雁塔区西安软件园科技二路")
    assert location.precision.rank <= Precision.DISTRICT.rank
    assert location.district_code == "610113"


def test_lagou_zone_at_metro_station(gazetteer: Gazetteer, data_dir: Path) -> None:
    stations = pd.read_csv(data_dir / METRO)
    station = stations[stations["name_zh"] == "小寨"].iloc[0]
    lon, lat = to_wgs84(station["lon_gcj02"], station["lat_gcj02"], CoordSys.GCJ02)

    location = gazetteer.locate(None, business_zones=ast.literal_eval("['小寨']"))
    assert location.precision is Precision.BUSINESS_AREA
    assert location.label == "小寨"
    assert geodesic_distance_m(location.lon, location.lat, lon, lat) < 1.0


def test_unplaced_area_falls_back_to_district(gazetteer: Gazetteer) -> None:
    location = gazetteer.locate("西安·未央区·未央路沿线")
    assert location.precision is Precision.DISTRICT
    assert location.district_code == "610112"


def test_parse_boss_text(regions: Regions) -> None:
    parsed = parse_location_text("西安·雁塔区·高新软件园", regions)
    assert parsed.district is not None
    assert parsed.district.code == "610113"
    assert parsed.area == "高新软件园"
    assert parsed.rest == ""


def test_parse_free_text(regions: Regions) -> None:
    parsed = parse_location_text("雁塔区西安软件园科技二路", regions)
    assert parsed.district is not None
    assert parsed.district.name == "雁塔区"
    assert parsed.rest == "软件园科技二路"


def test_city_rows_stay_city(gazetteer: Gazetteer, data_dir: Path) -> None:
    jobs = pd.read_csv(data_dir / JOBS_2018).sample(2_000, random_state=7)
    city_rows = jobs[jobs["location"] == "西安"]
    without_poi = city_rows[
        city_rows["company"].map(lambda name: gazetteer.companies.unambiguous_poi(name) is None)
    ]
    assert len(without_poi) > 300

    precisions = {gazetteer.locate("西安", company=name).precision for name in without_poi.company}
    assert precisions == {Precision.CITY}


def test_points_inside_xian(gazetteer: Gazetteer, data_dir: Path) -> None:
    jobs = pd.read_csv(data_dir / JOBS_2018).sample(5_000, random_state=11)
    located = [
        gazetteer.locate(text, company=name)
        for text, name in zip(jobs.location, jobs.company, strict=True)
    ]
    outside = [location for location in located if not _inside_bounds(location)]
    assert outside == []


def test_boss_areas_coverage(data_dir: Path, regions: Regions) -> None:
    names = seen_business_area_names(data_dir)
    areas = load_business_areas(data_dir, regions)
    boss = pd.read_csv(data_dir / BOSS)
    parts = [str(address).split("·") for address in boss["职位地址"]]
    area_rows = pd.Series([part[2] for part in parts if len(part) == 3])

    assert len(names) == 43
    assert len(areas) == 17
    assert "唐延路" not in areas
    assert area_rows.isin(list(areas)).sum() == 226
