"""The cluster grid and the Python builders of the map's GeoJSON text."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from store.anchor_map import MAX_MAP_FEATURES, ClusterGrid, anchors_collection, clusters_collection
from tests.store.test_contract import _LABELS

# Whole Xi'an, a street-sized box, a sliver one metre wide, and a flat strip.
_BOXES = [
    (107.6, 33.6, 109.9, 34.8),
    (108.94, 34.25, 108.96, 34.26),
    (108.9, 34.2, 108.90001, 34.3),
    (108.0, 34.0, 110.0, 34.00001),
]


@pytest.mark.parametrize("bbox", _BOXES)
@pytest.mark.parametrize("max_cells", [1, 3, 4, 500, MAX_MAP_FEATURES])
def test_grid_never_exceeds_the_cell_limit(
    bbox: tuple[float, float, float, float], max_cells: int
) -> None:
    grid = ClusterGrid.for_bbox(bbox, max_cells)
    assert 1 <= grid.cols * grid.rows <= max_cells
    assert grid.min_lon + grid.cols * grid.cell_lon == pytest.approx(bbox[2])
    assert grid.min_lat + grid.rows * grid.cell_lat == pytest.approx(bbox[3])


def test_grid_cells_are_about_square_on_the_ground() -> None:
    grid = ClusterGrid.for_bbox(_BOXES[0], MAX_MAP_FEATURES)
    width_m = grid.cell_lon * 111_320 * math.cos(math.radians(34.2))
    height_m = grid.cell_lat * 111_320
    assert width_m / height_m == pytest.approx(1.0, abs=0.1)
    # Rounding, not flooring, uses most of the allowance.
    assert grid.cols * grid.rows >= 0.9 * MAX_MAP_FEATURES


def test_grid_puts_edge_points_in_the_last_cell() -> None:
    grid = ClusterGrid(min_lon=0.0, min_lat=0.0, cell_lon=1.0, cell_lat=1.0, cols=2, rows=2)
    cols, rows = grid.cells(np.array([0.0, 1.0, 2.0, -0.5]), np.array([0.0, 1.5, 2.0, 3.0]))
    assert cols.tolist() == [0, 1, 1, 0]
    assert rows.tolist() == [0, 1, 1, 1]


@pytest.mark.parametrize(
    ("bbox", "max_cells", "message"),
    [
        ((109.0, 34.0, 108.0, 35.0), 10, "min < max"),
        ((108.0, 34.0, 108.0, 35.0), 10, "min < max"),
        ((108.0, 34.0, 109.0, 35.0), 0, "max_cells"),
    ],
)
def test_grid_rejects_bad_input(
    bbox: tuple[float, float, float, float], max_cells: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ClusterGrid.for_bbox(bbox, max_cells)


def test_clusters_sum_to_the_points() -> None:
    rng = np.random.default_rng(7)
    lons = rng.uniform(108.8, 109.1, 5_000)
    lats = rng.uniform(34.1, 34.4, 5_000)
    postings = rng.integers(0, 30, 5_000)
    grid = ClusterGrid.for_bbox((108.8, 34.1, 109.1, 34.4), 100)

    body = json.loads(clusters_collection(lons, lats, postings, grid))

    counts = [f["properties"]["count"] for f in body["features"]]
    assert body["clustered"] is True
    assert body["total"] == 5_000
    assert sum(counts) == 5_000
    assert sum(f["properties"]["n_postings"] for f in body["features"]) == int(postings.sum())
    assert len(body["features"]) <= 100
    assert counts == sorted(counts, reverse=True)
    for feature in body["features"]:
        lon, lat = feature["geometry"]["coordinates"]
        x0, y0, x1, y1 = feature["properties"]["bbox"]
        assert x0 <= lon <= x1
        assert y0 <= lat <= y1


def test_anchor_text_has_no_nan() -> None:
    anchors = pd.DataFrame(
        {
            "anchor_id": ["a"],
            "name": ["甲"],
            "lon": [108.9],
            "lat": [34.2],
            "precision": ["poi"],
            "state": ["verified"],
            "n_postings": [3],
            "location_label": ["甲"],
            "district_code": [np.nan],
            "key_enterprise": [0],
            "above_scale_industrial": [1],
        }
    )
    body = json.loads(anchors_collection(anchors, _LABELS))
    assert body["features"][0]["properties"]["district_code"] is None
    assert body["features"][0]["properties"]["district_name"] is None
    # SQLite stores the flags as 0 and 1; the body carries JSON booleans.
    assert body["features"][0]["properties"]["key_enterprise"] is False
    assert body["features"][0]["properties"]["above_scale_industrial"] is True


def test_anchor_text_mixes_known_and_missing_districts() -> None:
    anchors = pd.DataFrame(
        {
            "anchor_id": ["a", "b"],
            "name": ["甲", "乙"],
            "lon": [108.9, 108.94],
            "lat": [34.2, 34.26],
            "precision": ["poi", "city"],
            "state": ["verified", "draft"],
            "n_postings": [3, 1],
            "location_label": ["甲", "西安"],
            "district_code": ["610113", None],
            "key_enterprise": [True, False],
            "above_scale_industrial": [False, False],
        }
    )
    body = json.loads(anchors_collection(anchors, _LABELS))
    first, second = (feature["properties"] for feature in body["features"])
    assert first["district_code"] == "610113"
    assert first["district_name"] == "雁塔区"
    assert first["key_enterprise"] is True
    assert second["district_code"] is None
    assert second["district_name"] is None


def test_clusters_count_flagged_points() -> None:
    rng = np.random.default_rng(11)
    lons = rng.uniform(108.8, 109.1, 2_000)
    lats = rng.uniform(34.1, 34.4, 2_000)
    key = rng.random(2_000) < 0.1
    above_scale = rng.random(2_000) < 0.2
    grid = ClusterGrid.for_bbox((108.8, 34.1, 109.1, 34.4), 50)

    body = json.loads(
        clusters_collection(
            lons,
            lats,
            np.zeros(2_000, np.int64),
            grid,
            key_enterprise=key,
            above_scale_industrial=above_scale,
        )
    )

    found_key = [f["properties"]["n_key_enterprise"] for f in body["features"]]
    found_above = [f["properties"]["n_above_scale_industrial"] for f in body["features"]]
    assert sum(found_key) == int(key.sum())
    assert sum(found_above) == int(above_scale.sum())
    assert all(isinstance(n, int) for n in found_key + found_above)
    for feature in body["features"]:
        props = feature["properties"]
        assert props["n_key_enterprise"] <= props["count"]
        assert props["n_above_scale_industrial"] <= props["count"]


def test_clusters_without_flags_count_zero() -> None:
    lons = np.array([108.9, 108.91])
    lats = np.array([34.2, 34.21])
    grid = ClusterGrid.for_bbox((108.8, 34.1, 109.1, 34.4), 1)

    body = json.loads(clusters_collection(lons, lats, np.array([1, 2]), grid))

    (feature,) = body["features"]
    assert feature["properties"]["n_key_enterprise"] == 0
    assert feature["properties"]["n_above_scale_industrial"] == 0
