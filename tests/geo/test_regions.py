"""Tests for districts, streets and communities loaded from the real data folder."""

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.crs import CoordSys, transform_geometry
from geo.regions import Regions, normalise_adcode


def test_counts_and_code_widths(regions: Regions) -> None:
    assert len(regions.districts) == 13
    assert len(regions.streets) == 172
    assert len(regions.communities) == 3223
    assert regions.districts["code"].str.len().eq(6).all()
    assert regions.streets["code"].str.len().eq(9).all()
    assert regions.communities["code"].str.len().eq(12).all()
    assert regions.districts.crs.to_epsg() == 4326


def test_street_points_where_matched(regions: Regions) -> None:
    assert regions.streets["lon"].notna().sum() == 74
    street = regions.street_by_code("610102001")
    assert street is not None
    assert street.name == "西一路街道"
    assert regions.district_at(street.lon, street.lat) is not None


def test_lookup_unknown_codes(regions: Regions) -> None:
    assert regions.street_by_code("610102999") is None
    assert regions.community_by_code("000000000000") is None
    community = regions.community_by_code("610102001001")
    assert community is not None
    assert community.street_code == "610102001"
    assert community.district_code == "610102"


def test_representative_points_map_back(regions: Regions) -> None:
    points = regions.districts.geometry.representative_point()
    codes = regions.districts_at(points.x.to_numpy(), points.y.to_numpy())
    assert list(codes) == list(regions.districts["code"])


def test_government_seats_inside_own_district(regions: Regions) -> None:
    codes = regions.districts_at(regions.districts["lon"], regions.districts["lat"])
    assert list(codes) == list(regions.districts["code"])


def test_shared_boundary_gets_lowest_code(regions: Regions) -> None:
    by_code = regions.districts.set_index("code").geometry
    shared = by_code["610102"].boundary.intersection(by_code["610103"].boundary)
    assert not shared.is_empty
    vertex = shapely.get_coordinates(shared)[0]

    covering = [code for code, geom in by_code.items() if geom.covers(shapely.Point(vertex))]
    district = regions.district_at(float(vertex[0]), float(vertex[1]))
    assert "610102" in covering
    assert len(covering) >= 2
    assert district is not None
    assert district.code == min(covering)


@pytest.mark.parametrize(
    ("place", "lon", "lat"),
    [("Beijing", 116.40, 39.90), ("Xianyang centre", 108.70, 34.33), ("null", 0.0, 0.0)],
)
def test_points_outside_all_districts(regions: Regions, place: str, lon: float, lat: float) -> None:
    assert regions.district_at(lon, lat) is None, place


def test_districts_at_handles_nan_and_empty(regions: Regions) -> None:
    codes = regions.districts_at(np.array([108.94, np.nan]), np.array([34.25, np.nan]))
    assert codes[0] == "610103"
    assert codes[1] is None
    assert regions.districts_at(np.array([]), np.array([])).shape == (0,)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("雁塔区", "610113"),
        ("雁塔", "610113"),
        ("西安市雁塔区", "610113"),
        ("户县", "610118"),
        ("鄠县", "610118"),
        ("鄠邑", "610118"),
        ("长安县", "610116"),
        ("周至", "610124"),
        ("蓝田县", "610122"),
    ],
)
def test_district_by_name(regions: Regions, text: str, code: str) -> None:
    district = regions.district_by_name(text)
    assert district is not None
    assert district.code == code


def test_district_by_name_unknown(regions: Regions) -> None:
    assert regions.district_by_name("秦都区") is None
    assert regions.district_by_name("") is None


def test_cnmaps_matches_fastgeocn(regions: Regions, data_dir: Path) -> None:
    reference = gpd.read_file(
        data_dir / "xian_admin_districts_fastgeocn" / "xian_districts_cgcs2000.geojson"
    )
    ours = regions.districts.set_index("code").geometry
    raw_gcj = {
        code: transform_geometry(geom, CoordSys.WGS84, CoordSys.GCJ02)
        for code, geom in ours.items()
    }

    for row in reference.itertuples():
        code = normalise_adcode(row.adcode)
        assert code is not None
        converted = ours[code]
        iou = converted.intersection(row.geometry).area / converted.union(row.geometry).area
        iou_unconverted = (
            raw_gcj[code].intersection(row.geometry).area / raw_gcj[code].union(row.geometry).area
        )
        assert iou > 0.85, code
        assert iou > iou_unconverted, code


def test_city_outline_covers_districts(regions: Regions) -> None:
    union = regions.districts.geometry.union_all()
    assert regions.city_outline.buffer(1e-3).covers(union)


def test_districts_geojson(regions: Regions) -> None:
    collection = regions.districts_geojson()
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == 13
    assert collection["features"][0]["properties"] == {"code": "610102", "name": "新城区"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(610118, "610118"), (610118.0, "610118"), ("610118.0", "610118"), (None, None), ("", None)],
)
def test_normalise_adcode(value: object, expected: str | None) -> None:
    assert normalise_adcode(value) == expected


def test_normalise_adcode_rejects_bad_value() -> None:
    with pytest.raises(ValueError, match="district code '6101' is not a 6-digit adcode"):
        normalise_adcode("6101")
