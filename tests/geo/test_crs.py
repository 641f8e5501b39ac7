"""Tests for coordinate conversions, point validation and distances."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from geo.crs import (
    EARTH_RADIUS_M,
    XIAN_BOUNDS_WGS84,
    CoordSys,
    axes_look_swapped,
    from_metric,
    from_wgs84,
    from_wgs84_arrays,
    geodesic_distance_m,
    haversine_m,
    in_mainland_china,
    parse_coord_sys,
    to_metric,
    to_wgs84,
    to_wgs84_arrays,
    transform_geometry,
    validate_and_convert,
    validate_point,
)
from geo.errors import InvalidCoordinateError, UnknownCoordSysError

XIAN_GRID_LONS, XIAN_GRID_LATS = (
    grid.ravel() for grid in np.meshgrid(np.linspace(107.6, 109.9, 50), np.linspace(33.6, 34.8, 50))
)


def test_parse_coord_sys_accepts_names() -> None:
    assert parse_coord_sys("GCJ02") is CoordSys.GCJ02
    assert parse_coord_sys(" bd09 ") is CoordSys.BD09
    assert parse_coord_sys(CoordSys.WGS84) is CoordSys.WGS84


def test_parse_coord_sys_rejects_unknown() -> None:
    with pytest.raises(
        UnknownCoordSysError, match="coord_sys 'xyz' is not one of wgs84, gcj02, bd09"
    ):
        parse_coord_sys("xyz")


def test_unknown_coord_sys_echo_clipped() -> None:
    with pytest.raises(UnknownCoordSysError) as info:
        parse_coord_sys("A" * 5000)

    assert len(str(info.value)) < 120
    assert len(str(info.value.rule_params["value"])) == 40
    assert str(info.value.rule_params["value"]).endswith("…")


def test_huge_longitude_in_e_notation() -> None:
    with pytest.raises(InvalidCoordinateError, match=r"longitude 1e\+308 is outside") as info:
        validate_point(1e308, 34.26, field="home")

    assert info.value.rule_params == {"lon": "1e+308"}


@pytest.mark.parametrize("coord_sys", [CoordSys.GCJ02, CoordSys.BD09])
def test_round_trip_over_xian_grid(coord_sys: CoordSys) -> None:
    shifted_lons, shifted_lats = from_wgs84_arrays(XIAN_GRID_LONS, XIAN_GRID_LATS, coord_sys)
    back_lons, back_lats = to_wgs84_arrays(shifted_lons, shifted_lats, coord_sys)

    shift_m = geodesic_distance_m(XIAN_GRID_LONS, XIAN_GRID_LATS, shifted_lons, shifted_lats)
    error_m = geodesic_distance_m(XIAN_GRID_LONS, XIAN_GRID_LATS, back_lons, back_lats)
    assert shift_m.min() > 100.0
    assert error_m.max() < 0.5


def test_bd09_offset_at_xian_centre() -> None:
    lon, lat = to_wgs84(108.95, 34.27, "bd09")
    assert lon - 108.95 == pytest.approx(-0.0111, abs=0.0005)
    assert lat - 34.27 == pytest.approx(-0.0044, abs=0.0005)


def test_gcj02_offset_at_xian_centre() -> None:
    lon, lat = from_wgs84(108.95, 34.27, "gcj02")
    assert 0.0040 < lon - 108.95 < 0.0055
    assert -0.0022 < lat - 34.27 < -0.0010


def test_baidu_poi_bd09_and_gcj02_columns_agree(data_dir: Path) -> None:
    # The POI file carries each Baidu record both as BD-09 and as its GCJ-02 conversion.
    rows = pd.read_csv(data_dir / "xian_poi_baidu_richiebao" / "government_agencies.csv")
    rows = rows.dropna(subset=["lng_bd09", "lat_bd09"]).head(500)
    from_bd = to_wgs84_arrays(rows["lng_bd09"], rows["lat_bd09"], CoordSys.BD09)
    from_gcj = to_wgs84_arrays(rows["lng_gcj02"], rows["lat_gcj02"], CoordSys.GCJ02)

    distance_m = geodesic_distance_m(*from_bd, *from_gcj)
    assert len(rows) == 500
    assert np.median(distance_m) < 1.0
    assert distance_m.max() < 5.0


@pytest.mark.parametrize(
    ("place", "lon", "lat"),
    [("Tokyo", 139.69, 35.69), ("Seoul", 126.98, 37.57), ("Taipei", 121.56, 25.04), ("null", 0, 0)],
)
def test_points_outside_china_unchanged(place: str, lon: float, lat: float) -> None:
    for coord_sys in (CoordSys.GCJ02, CoordSys.BD09):
        assert to_wgs84(lon, lat, coord_sys) == (lon, lat), place
        assert from_wgs84(lon, lat, coord_sys) == (lon, lat), place


def test_mainland_rule_keeps_chinese_cities() -> None:
    # Beijing, Dandong, Harbin, Shanghai, Kashgar, Sanya.
    lons = [116.40, 124.35, 126.63, 121.47, 75.99, 109.51]
    lats = [39.90, 40.00, 45.75, 31.23, 39.47, 18.25]
    assert in_mainland_china(lons, lats).all()


def test_nan_passes_through_arrays() -> None:
    lons, lats = to_wgs84_arrays([108.95, np.nan], [34.27, np.nan], "gcj02")
    assert math.isfinite(lons[0])
    assert np.isnan(lons[1])
    assert np.isnan(lats[1])


def test_transform_geometry_matches_points() -> None:
    square = shapely.box(108.9, 34.2, 109.0, 34.3)
    converted = transform_geometry(square, CoordSys.WGS84, CoordSys.GCJ02)
    corner = from_wgs84(108.9, 34.2, CoordSys.GCJ02)

    nearest = min(
        shapely.Point(corner).distance(shapely.Point(xy)) for xy in converted.exterior.coords
    )
    assert converted.geom_type == "Polygon"
    assert nearest < 1e-9


def test_xian_bounds_contain_city_outline(data_dir: Path) -> None:
    outline = shapely.from_geojson(
        (data_dir / "xian_admin_districts_cnmaps" / "xian_city_outline_gcj02.geojson").read_text()
    )
    wgs_outline = transform_geometry(
        shapely.get_geometry(outline, 0), CoordSys.GCJ02, CoordSys.WGS84
    )
    assert shapely.box(*XIAN_BOUNDS_WGS84).contains(wgs_outline)


def test_all_metro_stations_validate(data_dir: Path) -> None:
    stations = pd.read_csv(data_dir / "xian_metro_openmetro" / "stations.csv")
    assert len(stations) == 248
    rows = stations[["station_id", "lon_gcj02", "lat_gcj02"]].to_numpy().tolist()
    for station_id, lon, lat in rows:
        validate_and_convert(float(lon), float(lat), "gcj02", field=str(station_id))


@pytest.mark.parametrize(
    ("lon", "lat", "message", "field"),
    [
        (math.nan, 34.26, "lon is NaN", "lon"),
        (108.94, math.nan, "lat is NaN", "lat"),
        (math.inf, 34.26, "lon is infinite", "lon"),
        (34.26, 108.94, "longitude 34.26 and latitude 108.94 look swapped", "home"),
        (200.0, 34.26, "longitude 200 is outside -180..180", "lon"),
        (
            10.0,
            108.9,
            "latitude 108.9 is outside -90..90; were longitude and latitude swapped?",
            "lat",
        ),
        (0.0, 0.0, r"\(0, 0\) is the null island placeholder", "home"),
        (
            116.40,
            39.90,
            r"point \(116.40, 39.90\) is outside the Xi'an area 107.45–110.02 E",
            "home",
        ),
    ],
)
def test_validate_point_messages(lon: float, lat: float, message: str, field: str) -> None:
    with pytest.raises(InvalidCoordinateError, match=message) as info:
        validate_point(lon, lat, field="home")
    assert info.value.field == field


def test_validate_point_accepts_bell_tower() -> None:
    validate_point(108.9423, 34.2596)


def test_validate_and_convert_returns_wgs84() -> None:
    lon, lat = validate_and_convert(108.947068, 34.261023, "gcj02")
    assert lon == pytest.approx(108.947068 - 0.0047, abs=0.0005)
    assert lat == pytest.approx(34.261023 + 0.0016, abs=0.0005)


def test_validate_and_convert_checks_raw_swap() -> None:
    with pytest.raises(InvalidCoordinateError, match="look swapped"):
        validate_and_convert(34.27, 108.95, "bd09")


@pytest.mark.parametrize(
    ("lon", "lat", "swapped"),
    [
        (34.2596, 108.9423, True),
        (108.9423, 34.2596, False),
        (39.90, 116.40, False),
        (34.2596, 34.2596, False),
    ],
)
def test_axes_look_swapped(lon: float, lat: float, swapped: bool) -> None:
    assert axes_look_swapped(lon, lat) is swapped


def test_validate_and_convert_rejects_unknown_system() -> None:
    with pytest.raises(UnknownCoordSysError):
        validate_and_convert(108.95, 34.27, "epsg3857")


def test_bell_tower_to_big_wild_goose_pagoda(data_dir: Path) -> None:
    stations = pd.read_csv(data_dir / "xian_metro_openmetro" / "stations.csv").set_index("name_zh")
    lons, lats = to_wgs84_arrays(
        stations.loc[["钟楼", "大雁塔"], "lon_gcj02"],
        stations.loc[["钟楼", "大雁塔"], "lat_gcj02"],
        "gcj02",
    )

    geodesic = float(geodesic_distance_m(lons[0], lats[0], lons[1], lats[1]))
    haversine = float(haversine_m(lons[0], lats[0], lons[1], lats[1]))
    x, y = to_metric(lons, lats)
    planar = math.hypot(x[1] - x[0], y[1] - y[0])

    assert 4_000 < geodesic < 4_600
    assert haversine == pytest.approx(geodesic, rel=0.005)
    assert planar == pytest.approx(geodesic, rel=0.005)


def test_haversine_quarter_meridian() -> None:
    assert float(haversine_m(0, 0, 0, 90)) == pytest.approx(math.pi / 2 * EARTH_RADIUS_M)


def test_to_metric_false_easting() -> None:
    x, _ = to_metric(108.0, 34.0)
    # EPSG:4545 puts the 108E central meridian at a false easting of 500 km.
    assert float(x) == pytest.approx(500_000.0, abs=0.01)


def test_from_metric_inverts_to_metric() -> None:
    x, y = to_metric(XIAN_GRID_LONS, XIAN_GRID_LATS)

    lons, lats = from_metric(x, y)

    np.testing.assert_allclose(lons, XIAN_GRID_LONS, atol=1e-9)
    np.testing.assert_allclose(lats, XIAN_GRID_LATS, atol=1e-9)
