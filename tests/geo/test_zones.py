"""Tests for development zones built from the real POI and metro data."""

import pytest

from geo.crs import XIAN_BOUNDS_WGS84
from geo.regions import Regions
from geo.zones import DevelopmentZone, match_zone


# The zone strings of the 51job 2018 postings' location field.
@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("高新技术产业开发区", "高新"),
        ("经济技术开发区", "经开"),
        ("曲江文化新区", "曲江"),
        ("浐灞生态区", "浐灞"),
        ("国家民用航天产业基地", "航天"),
        ("西安国际港务区", "港务区"),
        ("西安阎良航空基地", "航空"),
        ("西咸新区", "西咸"),
        ("西安市 高新区", "高新"),
        ("陕西西咸新区", "西咸"),
    ],
)
def test_match_zone_strings(zones: list[DevelopmentZone], text: str, key: str) -> None:
    zone = match_zone(text, zones)
    assert zone is not None
    assert zone.key == key


@pytest.mark.parametrize("text", ["", "西安", "雁塔区", "高新一路", "高新区管委会"])
def test_match_zone_rejects_other_text(zones: list[DevelopmentZone], text: str) -> None:
    assert match_zone(text, zones) is None


def test_eight_zones_inside_xian(zones: list[DevelopmentZone]) -> None:
    min_lon, min_lat, max_lon, max_lat = XIAN_BOUNDS_WGS84
    assert len(zones) == 8
    for zone in zones:
        assert min_lon <= zone.lon <= max_lon, zone.key
        assert min_lat <= zone.lat <= max_lat, zone.key


def test_zone_points_from_real_pois(zones: list[DevelopmentZone]) -> None:
    sources = {zone.key: zone.source for zone in zones}
    from_pois = [key for key, source in sources.items() if source.startswith("baidu_poi:")]
    assert len(from_pois) == 6
    assert sources["西咸"] == "metro_station:stations.csv:西咸大厦"
    assert sources["航空"] == "district_seat:610114"


def test_zone_point_in_first_host(zones: list[DevelopmentZone], regions: Regions) -> None:
    for zone in zones:
        district = regions.district_at(zone.lon, zone.lat)
        if zone.key == "西咸":
            # The 西咸大厦 station lies in Xianyang, outside the 13 districts.
            assert district is None
        else:
            assert district is not None, zone.key
            assert zone.host_district_codes[0] == district.code, zone.key


def test_gaoxin_hosts(zones: list[DevelopmentZone]) -> None:
    gaoxin = next(zone for zone in zones if zone.key == "高新")
    assert set(gaoxin.host_district_codes) == {"610113", "610116", "610118"}
    assert gaoxin.name == "西安高新技术产业开发区"
