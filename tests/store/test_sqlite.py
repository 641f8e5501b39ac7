"""The embedded SQLite store: round trip, bbox index, atomic writes, clear errors."""

import sqlite3
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geo.anchors import build_anchors
from geo.layers import LayerInfo
from store.sqlite import LayerNotFoundError, SqliteStore, StoreNotFoundError, write_store


def _inputs() -> dict[str, Any]:
    located = pd.DataFrame(
        {
            "posting_id": ["p1", "p2", "p3"],
            "title": ["会计", "导购", "司机"],
            "company": ["甲公司", "乙公司", "丙公司"],
            "lon": [108.90, 108.95, 109.20],
            "lat": [34.20, 34.26, 34.40],
            "precision": ["poi", "district", "city"],
            "location_source": "test",
            "location_label": ["甲", "雁塔区", "西安"],
            "district_code": ["610113", "610113", None],
        }
    )
    anchors, ids = build_anchors(located)
    postings = located[["posting_id", "title", "company"]].assign(anchor_id=ids.to_numpy())
    districts = gpd.GeoDataFrame(
        {"code": ["610113"], "name": ["雁塔区"], "note": [None]},
        geometry=[shapely.box(108.8, 34.1, 109.0, 34.3)],
        crs="EPSG:4326",
    )
    info = LayerInfo(
        name="districts",
        title_zh="区县",
        title_en="Districts",
        source="test",
        updated="2026-12-04",
        geometry_type="Polygon",
    )
    seekers = pd.DataFrame({"seeker_id": ["sim-1"], "simulated": [True]})
    return {
        "postings": postings,
        "anchors": anchors,
        "seekers": seekers,
        "layers": {"districts": (info, districts)},
        "meta": {"postings": 3},
    }


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    write_store(path, **_inputs())
    store = SqliteStore(path)

    postings = store.postings_frame()
    assert sorted(postings["posting_id"]) == ["p1", "p2", "p3"]
    assert set(postings["precision"]) == {"poi", "district", "city"}
    assert store.seekers_frame()["simulated"].tolist() == [True]
    assert store.meta()["postings"] == 3


def test_layer_round_trip_keeps_nulls(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    write_store(path, **_inputs())
    layer = SqliteStore(path).layer_frame("districts")
    assert layer.crs.to_epsg() == 4326
    assert layer["name"].tolist() == ["雁塔区"]
    assert layer["note"].isna().all()
    assert layer.geometry.iloc[0].equals(shapely.box(108.8, 34.1, 109.0, 34.3))


def test_bbox_query_uses_bounds(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    write_store(path, **_inputs())
    found = SqliteStore(path).anchors_in_bbox((108.85, 34.15, 109.0, 34.3), limit=10)
    assert sorted(found["precision"]) == ["district", "poi"]


def test_bbox_query_respects_limit(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    write_store(path, **_inputs())
    found = SqliteStore(path).anchors_in_bbox((108.0, 34.0, 110.0, 35.0), limit=2)
    assert len(found) == 2


def test_failed_write_keeps_old_store(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    write_store(path, **_inputs())
    broken = _inputs()
    broken["seekers"] = pd.DataFrame({"seeker_id": ["a", "a"], "simulated": [True, True]})

    with pytest.raises(sqlite3.IntegrityError):
        write_store(path, **broken)

    assert SqliteStore(path).meta()["postings"] == 3


def test_missing_store_names_build_command(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="doorstep build"):
        SqliteStore(tmp_path / "none.sqlite")


def test_foreign_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    sqlite3.connect(path).close()
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreNotFoundError, match="not a Doorstep store"):
        SqliteStore(path)


def test_unknown_layer(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    write_store(path, **_inputs())
    with pytest.raises(LayerNotFoundError, match="'metro'"):
        SqliteStore(path).layer_frame("metro")
