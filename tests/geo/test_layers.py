"""Tests for the HR map layers built from the real data folder."""

import json
import math
import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geo.crs import XIAN_BOUNDS_WGS84, CoordSys, from_wgs84, geodesic_distance_m
from geo.layer_catalog import (
    ANCHORS_LAYER_INFO,
    CITY_OWNER_ORG_ID,
    LAYER_INFOS,
    LAYERS_WITHOUT_DATA,
)
from geo.layers import DEFAULT_LINE_COLOR, LayerInfo, layer_geojson, load_layers
from geo.regions import Regions
from store.identity import CITY_ORG_ID

Layers = dict[str, tuple[LayerInfo, gpd.GeoDataFrame]]


@pytest.fixture(scope="module")
def layers(data_dir: Path, regions: Regions) -> Layers:
    return load_layers(data_dir, regions)


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("hr_offices", 78),
        ("street_offices", 74),
        ("training", 1523),
        ("universities", 63),
        ("metro_stations", 248),
        ("metro_lines", 13),
        ("districts", 13),
    ],
)
def test_layer_counts(layers: Layers, name: str, count: int) -> None:
    assert len(layers[name][1]) == count


def test_parks_deduplicated_by_name(layers: Layers) -> None:
    parks = layers["parks"][1]
    # 45 + 39 + 11 Baidu rows and 308 Amap rows before removing repeated names.
    assert len(parks) == 401
    assert parks["name"].is_unique
    assert set(parks["kind"]) == {"industrial_park", "incubator"}


def test_common_columns_and_crs(layers: Layers) -> None:
    for name, (info, frame) in layers.items():
        assert info.name == name
        assert frame.crs.to_epsg() == 4326, name
        assert {"name", "kind", "district_code", "geometry"} <= set(frame.columns), name
        assert set(frame.geom_type) == {info.geometry_type}, name


def test_geometries_inside_xian_bounds(layers: Layers) -> None:
    bounds = shapely.box(*XIAN_BOUNDS_WGS84)
    for name, (_, frame) in layers.items():
        assert frame.geometry.within(bounds).all(), name


def test_district_codes(layers: Layers) -> None:
    stations = layers["metro_stations"][1]
    # 24 stations lie in Xianyang, outside the 13 district polygons.
    assert stations["district_code"].isna().sum() == 24
    assert layers["hr_offices"][1]["district_code"].notna().all()
    assert layers["hr_offices"][1]["district_code"].str.fullmatch(r"6101\d\d").all()


def test_universities_keep_moe_code(layers: Layers) -> None:
    universities = layers["universities"][1]
    assert universities["moe_code"].notna().sum() == 59
    assert universities["moe_code"].dropna().str.fullmatch(r"\d{10}").all()


def test_metro_lines_follow_stations(layers: Layers) -> None:
    lines = layers["metro_lines"][1].set_index("line")
    ring = lines.loc["8"]
    assert ring["loop"]
    assert ring.geometry.is_ring
    assert len(ring.geometry.coords) == ring["n_stations"] + 1
    assert lines.loc["1", "color"] == "#01a2e2"
    assert lines.loc["西户线", "color"] == DEFAULT_LINE_COLOR
    assert not lines.loc["1", "geometry"].is_ring


def test_stations_have_interchange_flags(layers: Layers) -> None:
    stations = layers["metro_stations"][1].set_index("name")
    assert stations["is_interchange"].sum() == 43
    assert stations.loc["钟楼", "lines"] == "2;6"


def test_gcj02_output_restores_source_coordinates(layers: Layers, data_dir: Path) -> None:
    source = pd.read_csv(data_dir / "xian_metro_openmetro" / "stations.csv").set_index("station_id")
    collection = layer_geojson(layers["metro_stations"][1], CoordSys.GCJ02)

    assert len(collection["features"]) == 248
    for feature in collection["features"]:
        lon, lat = feature["geometry"]["coordinates"]
        original = source.loc[feature["properties"]["station_id"]]
        error_m = float(geodesic_distance_m(lon, lat, original["lon_gcj02"], original["lat_gcj02"]))
        assert error_m < 0.5, feature["properties"]["name"]


def test_geojson_bbox_filter(layers: Layers) -> None:
    stations = layers["metro_stations"][1]
    bbox = (108.93, 34.25, 108.96, 34.27)
    collection = layer_geojson(stations, bbox=bbox)
    names = {feature["properties"]["name"] for feature in collection["features"]}

    expected = stations.cx[bbox[0] : bbox[2], bbox[1] : bbox[3]]
    assert "钟楼" in names
    assert names == set(expected["name"])
    assert len(names) < 20


def test_geojson_is_strict_json(layers: Layers) -> None:
    collection = layer_geojson(layers["metro_stations"][1])
    text = json.dumps(collection, ensure_ascii=False, allow_nan=False)
    xianyang = [f for f in collection["features"] if f["properties"]["district_code"] is None]
    assert len(xianyang) == 24
    assert "NaN" not in text


def test_geojson_of_districts_in_gcj02(layers: Layers) -> None:
    collection = layer_geojson(layers["districts"][1], "gcj02")
    first = shapely.geometry.shape(collection["features"][0]["geometry"])
    original = layers["districts"][1].geometry.iloc[0]
    # The GCJ-02 offset in Xi'an is about +0.0047 degrees of longitude.
    assert math.isclose(first.centroid.x - original.centroid.x, 0.0047, abs_tol=0.0005)


def test_geojson_rejects_bad_input(layers: Layers) -> None:
    stations = layers["metro_stations"][1]
    with pytest.raises(ValueError, match="is not \\(min_lon, min_lat, max_lon, max_lat\\)"):
        layer_geojson(stations, bbox=(109.0, 34.0, 108.0, 35.0))
    with pytest.raises(ValueError, match="is not EPSG:4326"):
        layer_geojson(stations.to_crs("EPSG:4545"))


def test_point_properties_follow_coord_sys(layers: Layers) -> None:
    _, districts = layers["districts"]
    wgs = layer_geojson(districts)["features"][0]["properties"]
    gcj = layer_geojson(districts, CoordSys.GCJ02)["features"][0]["properties"]
    expected = from_wgs84(wgs["lon"], wgs["lat"], CoordSys.GCJ02)
    assert (gcj["lon"], gcj["lat"]) == pytest.approx(expected)
    assert gcj["lon"] != wgs["lon"]


def test_catalog_sources_exist(data_dir: Path) -> None:
    for name, info in LAYER_INFOS.items():
        assert info.sources, name
        for source in info.sources:
            assert (data_dir / source.folder / source.file).is_file(), (name, source.file)
            assert (data_dir / source.folder / "SOURCE.md").is_file(), (name, source.folder)
            assert source.licence, (name, source.file)


def test_catalog_dates_are_iso(layers: Layers) -> None:
    for name, (info, _) in layers.items():
        assert re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", info.updated), name


def test_catalog_owner_is_city_bureau() -> None:
    for info in [*LAYER_INFOS.values(), ANCHORS_LAYER_INFO]:
        assert info.owner_org_id == CITY_OWNER_ORG_ID == CITY_ORG_ID


def test_layers_without_data_are_not_loaded(layers: Layers) -> None:
    assert not set(LAYERS_WITHOUT_DATA) & set(layers)
    assert ANCHORS_LAYER_INFO.name not in layers
