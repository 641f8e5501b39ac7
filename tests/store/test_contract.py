"""The store contract: the same tests run against the SQLite and the PostgreSQL store."""

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely

from geo.layers import LayerInfo
from store.anchor_map import MapLabels
from store.base import ReadStore
from store.sqlite import LayerNotFoundError, SqliteStore, write_store

# A district-sized box with a hole (a park cut out) and a two-part MultiPolygon.
_BOX_WITH_HOLE = shapely.Polygon(
    [(108.8, 34.1), (109.0, 34.1), (109.0, 34.3), (108.8, 34.3)],
    holes=[[(108.9, 34.2), (108.95, 34.2), (108.95, 34.25), (108.9, 34.25)]],
)
_TWO_PARTS = shapely.MultiPolygon(
    [shapely.box(108.6, 34.0, 108.7, 34.1), shapely.box(108.75, 34.0, 108.78, 34.05)]
)


@dataclass
class StoreCase:
    """One store implementation: how to write inputs to it, and what a failed write raises."""

    name: str
    write: Callable[..., ReadStore]
    write_error: type[Exception]


@pytest.fixture(params=["sqlite", "postgres"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> StoreCase:
    """Each store in turn; the PostgreSQL one skips when the server is unreachable."""
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite"

        def write_sqlite(**inputs: Any) -> ReadStore:
            write_store(path, **inputs)
            return SqliteStore(path)

        return StoreCase("sqlite", write_sqlite, sqlite3.IntegrityError)

    store = request.getfixturevalue("pg_store")

    def write_postgres(**inputs: Any) -> ReadStore:
        store.replace_all(**inputs)
        return store  # type: ignore[no-any-return]

    return StoreCase("postgres", write_postgres, psycopg.errors.UniqueViolation)


def _anchors() -> pd.DataFrame:
    # anc-B sorts before anc-a in byte order; anc-edge sits on the query box's corner.
    return pd.DataFrame(
        {
            "anchor_id": ["anc-a", "anc-B", "anc-c", "anc-city", "anc-edge"],
            "name": ["甲公司", "乙公司", "丙公司", "西安某公司", "边界公司"],
            "lon": [108.90, 108.95, 108.93, 108.9402, 109.0],
            "lat": [34.20, 34.26, 34.22, 34.2600, 34.3],
            "precision": ["poi", "district", "building", "city", "exact"],
            "source": "test",
            "location_label": ["甲", "雁塔区", "丙大厦", "西安", "边界"],
            "district_code": ["610113", "610113", "610113", None, "610113"],
            "state": "draft",
            "n_postings": [1, 2, 2, 1, 1],
        }
    )


def _postings() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "posting_id": ["p1", "p2", "p3", "p4", "p5", "p6", "p7"],
            "title": ["会计", "导购", "导购主管", "司机", "保洁", "普工", "文员"],
            "company": ["甲公司", "乙公司", "乙公司", "丙公司", "丙公司", "西安某公司", "边界公司"],
            "salary_min_month": [3000.0, np.nan, 4000.0, 5000.0, np.nan, 3500.0, 2800.0],
            "education": [4, 0, 3, 2, 0, -1, 3],
            "graduate_ok": [True, False, True, False, False, True, False],
            "parse_issues": ["", "salary", "", "", "salary;education", "", ""],
            "anchor_id": ["anc-a", "anc-B", "anc-B", "anc-c", "anc-c", "anc-city", "anc-edge"],
        }
    )


def _seekers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "seeker_id": ["sim-000001", "sim-000002"],
            "simulated": [True, True],
            "group": ["graduate", "general"],
            "education": [4, 2],
            "experience_years": [0.0, np.nan],
            "max_commute_min": [30, 45],
            "home_kind": ["residential", "高新区 & <公寓>"],
            "home_district_code": ["610102", None],
            "wish_note": ["想找会计", None],
        }
    )


def _layers() -> dict[str, tuple[LayerInfo, gpd.GeoDataFrame]]:
    districts = gpd.GeoDataFrame(
        {"code": ["610113", "610124"], "name": ["雁塔区", "鄠邑区"], "note": [None, "两块"]},
        geometry=[_BOX_WITH_HOLE, _TWO_PARTS],
        crs="EPSG:4326",
    )
    stations = gpd.GeoDataFrame(
        {"name": ["钟楼"], "lines": ["2;6"], "is_interchange": [True], "n_exits": [4]},
        geometry=[shapely.Point(108.9402, 34.2600)],
        crs="EPSG:4326",
    )
    infos = [
        LayerInfo("districts", "区县", "Districts", "test", "2026-12-04", "Polygon"),
        LayerInfo("metro_stations", "地铁站", "Metro stations", "test", "2026-09", "Point"),
    ]
    return {"districts": (infos[0], districts), "metro_stations": (infos[1], stations)}


def _inputs() -> dict[str, Any]:
    return {
        "postings": _postings(),
        "anchors": _anchors(),
        "seekers": _seekers(),
        "layers": _layers(),
        "meta": {
            "postings": 7,
            "anchors_by_precision": {"exact": 1, "poi": 1, "building": 1, "district": 1},
            "note": "模拟数据",
            "build_seconds": 1.5,
        },
    }


def test_postings_round_trip(case: StoreCase) -> None:
    postings = case.write(**_inputs()).postings_frame().set_index("posting_id")

    assert sorted(postings.index) == ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]
    assert postings.loc["p1", "title"] == "会计"
    assert postings.loc["p5", "parse_issues"] == "salary;education"
    assert postings.loc["p3", "salary_min_month"] == 4000.0
    assert postings["salary_min_month"].isna().loc["p2"]
    assert postings.loc["p6", "education"] == -1
    assert bool(postings.loc["p1", "graduate_ok"]) is True
    assert bool(postings.loc["p2", "graduate_ok"]) is False


def test_postings_carry_anchor_location(case: StoreCase) -> None:
    postings = case.write(**_inputs()).postings_frame().set_index("posting_id")

    assert postings.loc["p2", "lon"] == pytest.approx(108.95)
    assert postings.loc["p2", "lat"] == pytest.approx(34.26)
    assert postings.loc["p2", "precision"] == "district"
    assert postings.loc["p2", "location_label"] == "雁塔区"
    assert postings.loc["p2", "location_source"] == "test"
    assert postings["district_code"].isna().loc["p6"]


def test_postings_keep_column_order(case: StoreCase) -> None:
    written = _postings()
    postings = case.write(**_inputs()).postings_frame()

    assert list(postings.columns[: len(written.columns)]) == list(written.columns)
    assert postings["posting_id"].tolist() == written["posting_id"].tolist()


def test_seekers_round_trip(case: StoreCase) -> None:
    seekers = case.write(**_inputs()).seekers_frame()

    assert list(seekers.columns) == list(_seekers().columns)
    assert seekers["simulated"].dtype == bool
    assert seekers["simulated"].tolist() == [True, True]
    assert seekers["max_commute_min"].tolist() == [30, 45]
    assert seekers["experience_years"].iloc[0] == 0.0
    assert np.isnan(seekers["experience_years"].iloc[1])
    assert seekers["home_kind"].tolist() == ["residential", "高新区 & <公寓>"]
    assert pd.isna(seekers["home_district_code"].iloc[1])
    assert seekers["wish_note"].iloc[0] == "想找会计"
    assert pd.isna(seekers["wish_note"].iloc[1])


def test_anchors_round_trip(case: StoreCase) -> None:
    written = _anchors()
    anchors = case.write(**_inputs()).anchors_frame()

    assert anchors["anchor_id"].tolist() == written["anchor_id"].tolist()
    pd.testing.assert_frame_equal(
        anchors[written.columns].drop(columns="district_code"),
        written.drop(columns="district_code"),
        check_dtype=False,
    )
    assert anchors["district_code"].isna().tolist() == [False, False, False, True, False]


def test_bbox_query_uses_bounds(case: StoreCase) -> None:
    store = case.write(**_inputs())
    found = store.anchors_in_bbox((108.85, 34.15, 108.94, 34.25), limit=10)
    assert sorted(found["anchor_id"]) == ["anc-a", "anc-c"]


def test_bbox_query_includes_edge(case: StoreCase) -> None:
    store = case.write(**_inputs())
    found = store.anchors_in_bbox((108.96, 34.25, 109.0, 34.3), limit=10)
    assert found["anchor_id"].tolist() == ["anc-edge"]


def test_bbox_query_orders_and_limits(case: StoreCase) -> None:
    store = case.write(**_inputs())
    everything = store.anchors_in_bbox((108.0, 34.0, 110.0, 35.0), limit=100)
    first_two = store.anchors_in_bbox((108.0, 34.0, 110.0, 35.0), limit=2)

    # n_postings descending, then anchor_id in byte order ("B" < "a" < "c").
    expected = ["anc-B", "anc-c", "anc-a", "anc-city", "anc-edge"]
    assert everything["anchor_id"].tolist() == expected
    assert first_two["anchor_id"].tolist() == expected[:2]


def test_bbox_query_empty_area(case: StoreCase) -> None:
    store = case.write(**_inputs())
    found = store.anchors_in_bbox((100.0, 30.0, 100.1, 30.1), limit=10)
    assert len(found) == 0
    assert "anchor_id" in found.columns


def test_layer_infos_in_name_order(case: StoreCase) -> None:
    infos = case.write(**_inputs()).layer_infos()
    assert [info["name"] for info in infos] == ["districts", "metro_stations"]
    assert infos[0] == {
        "name": "districts",
        "title_zh": "区县",
        "title_en": "Districts",
        "source": "test",
        "updated": "2026-12-04",
        "geometry_type": "Polygon",
    }


def test_layer_round_trip_keeps_nulls(case: StoreCase) -> None:
    layer = case.write(**_inputs()).layer_frame("districts")

    assert layer.crs.to_epsg() == 4326
    assert list(layer.columns) == ["code", "name", "note", "geometry"]
    assert layer["name"].tolist() == ["雁塔区", "鄠邑区"]
    assert pd.isna(layer["note"].iloc[0])
    assert layer["note"].iloc[1] == "两块"
    assert layer.geometry.iloc[0].equals(_BOX_WITH_HOLE)
    assert layer.geometry.iloc[1].equals(_TWO_PARTS)


def test_layer_round_trip_points(case: StoreCase) -> None:
    layer = case.write(**_inputs()).layer_frame("metro_stations")

    assert layer.geometry.iloc[0].equals(shapely.Point(108.9402, 34.2600))
    assert bool(layer["is_interchange"].iloc[0]) is True
    assert layer["n_exits"].iloc[0] == 4
    assert layer["lines"].iloc[0] == "2;6"


def test_unknown_layer(case: StoreCase) -> None:
    store = case.write(**_inputs())
    with pytest.raises(LayerNotFoundError, match="'metro'"):
        store.layer_frame("metro")


def test_meta_round_trip(case: StoreCase) -> None:
    meta = case.write(**_inputs()).meta()

    assert meta["postings"] == 7
    assert meta["note"] == "模拟数据"
    assert meta["build_seconds"] == 1.5
    assert list(meta["anchors_by_precision"]) == ["exact", "poi", "building", "district"]


def test_describe_names_store(case: StoreCase) -> None:
    description = case.write(**_inputs()).describe()
    assert description.lower().startswith(case.name)


def test_second_write_replaces_first(case: StoreCase) -> None:
    case.write(**_inputs())
    smaller = _inputs()
    smaller["postings"] = _postings().iloc[:2]
    smaller["seekers"] = _seekers().iloc[:1]
    smaller["meta"] = {"postings": 2}

    store = case.write(**smaller)

    assert sorted(store.postings_frame()["posting_id"]) == ["p1", "p2"]
    assert store.seekers_frame()["seeker_id"].tolist() == ["sim-000001"]
    assert store.meta()["postings"] == 2
    assert "note" not in store.meta()


def test_failed_write_keeps_old_data(case: StoreCase) -> None:
    store = case.write(**_inputs())
    broken = _inputs()
    broken["seekers"] = pd.DataFrame({"seeker_id": ["a", "a"], "simulated": [True, True]})
    broken["meta"] = {"postings": 99}

    with pytest.raises(case.write_error):
        case.write(**broken)

    assert store.meta()["postings"] == 7
    assert store.seekers_frame()["seeker_id"].tolist() == ["sim-000001", "sim-000002"]
    assert len(store.postings_frame()) == 7


def test_bbox_query_excludes_precisions(case: StoreCase) -> None:
    store = case.write(**_inputs())
    everything = store.anchors_in_bbox((108.0, 34.0, 110.0, 35.0), limit=100)
    without_city = store.anchors_in_bbox(
        (108.0, 34.0, 110.0, 35.0), limit=100, exclude_precisions={"city"}
    )
    assert "city" in set(everything["precision"])
    assert "city" not in set(without_city["precision"])
    assert len(without_city) == (everything["precision"] != "city").sum()


def test_anchor_reads_keep_build_columns(case: StoreCase) -> None:
    # The curation columns (version, credit_code, ...) stay out of the anchor frames.
    store = case.write(**_inputs())
    expected = ["anchor_row", *_anchors().columns]

    assert list(store.anchors_frame().columns) == expected
    assert list(store.anchors_in_bbox((108.0, 34.0, 110.0, 35.0), limit=10).columns) == expected


_LABELS = MapLabels(
    precision_labels={"poi": "地点级", "building": "楼宇级", "district": "区县级", "city": "市级"},
    approximate={"poi": False, "building": False, "district": True, "city": True},
    district_names={"610113": "雁塔区"},
)


def test_anchor_map_lists_anchors_with_labels(case: StoreCase) -> None:
    store = case.write(**_inputs())
    body = json.loads(store.anchor_map((108.85, 34.15, 108.94, 34.25), 10, _LABELS))

    assert body["clustered"] is False
    assert body["total"] == 2
    # anc-c has more postings than anc-a, so it comes first.
    assert body["features"] == [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [108.93, 34.22]},
            "properties": {
                "anchor_id": "anc-c",
                "name": "丙公司",
                "precision": "building",
                "state": "draft",
                "n_postings": 2,
                "location_label": "丙大厦",
                "district_code": "610113",
                "key_enterprise": False,
                "above_scale_industrial": False,
                "approximate": False,
                "precision_label": "楼宇级",
                "district_name": "雁塔区",
            },
        },
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [108.9, 34.2]},
            "properties": {
                "anchor_id": "anc-a",
                "name": "甲公司",
                "precision": "poi",
                "state": "draft",
                "n_postings": 1,
                "location_label": "甲",
                "district_code": "610113",
                "key_enterprise": False,
                "above_scale_industrial": False,
                "approximate": False,
                "precision_label": "地点级",
                "district_name": "雁塔区",
            },
        },
    ]


def test_anchor_map_escaping_and_unknown_labels(case: StoreCase) -> None:
    inputs = _inputs()
    anchors = inputs["anchors"]
    anchors.loc[0, "name"] = '甲"公司\\一\n部'
    anchors.loc[0, "district_code"] = "610199"
    store = case.write(**inputs)

    body = json.loads(store.anchor_map((108.85, 34.15, 108.92, 34.21), 10, _LABELS))
    (feature,) = body["features"]
    assert feature["properties"]["name"] == '甲"公司\\一\n部'
    assert feature["properties"]["district_name"] is None
    # "exact" has no label in _LABELS: the property is null, not an error.
    edge = json.loads(store.anchor_map((108.99, 34.29, 109.0, 34.3), 10, _LABELS))
    assert edge["features"][0]["properties"]["precision_label"] is None


def test_anchor_map_clusters_above_the_limit(case: StoreCase) -> None:
    store = case.write(**_inputs())
    bbox = (108.85, 34.15, 109.05, 34.35)
    body = json.loads(store.anchor_map(bbox, 4, _LABELS))

    # A 2 x 2 grid of 0.1° cells; five anchors in view exceed the limit of four.
    assert body["clustered"] is True
    assert body["total"] == 5
    counts = [f["properties"]["count"] for f in body["features"]]
    postings = [f["properties"]["n_postings"] for f in body["features"]]
    assert counts == [2, 2, 1]
    assert postings == [3, 3, 1]
    # Built anchors carry no enterprise flags.
    assert [f["properties"]["n_key_enterprise"] for f in body["features"]] == [0, 0, 0]
    assert [f["properties"]["n_above_scale_industrial"] for f in body["features"]] == [0, 0, 0]
    first, second, third = body["features"]
    # anc-a and anc-c, then anc-B and anc-edge, then anc-city.
    assert first["geometry"]["coordinates"] == pytest.approx([108.915, 34.21])
    assert first["properties"]["bbox"] == pytest.approx([108.9, 34.2, 108.93, 34.22])
    assert second["properties"]["bbox"] == pytest.approx([108.95, 34.26, 109.0, 34.3])
    assert third["properties"]["bbox"] == pytest.approx([108.9402, 34.26, 108.9402, 34.26])
    assert all(f["properties"]["cluster"] is True for f in body["features"])


def test_anchor_map_excludes_precisions_before_counting(case: StoreCase) -> None:
    store = case.write(**_inputs())
    bbox = (108.85, 34.15, 109.05, 34.35)
    body = json.loads(store.anchor_map(bbox, 4, _LABELS, exclude_precisions=["city"]))
    assert body["clustered"] is False
    # Most postings first; the order within a tie is not part of the contract.
    order = [
        (f["properties"]["n_postings"], f["properties"]["anchor_id"]) for f in body["features"]
    ]
    assert [n for n, _ in order] == [2, 2, 1, 1]
    assert sorted(order, key=lambda item: (-item[0], item[1])) == [
        (2, "anc-B"),
        (2, "anc-c"),
        (1, "anc-a"),
        (1, "anc-edge"),
    ]


def test_anchor_map_empty_view(case: StoreCase) -> None:
    store = case.write(**_inputs())
    body = store.anchor_map((100.0, 30.0, 100.1, 30.1), 10, _LABELS)
    # The body is the response's UTF-8 bytes, so the route sends it without re-encoding.
    assert isinstance(body, bytes)
    assert json.loads(body) == {
        "type": "FeatureCollection",
        "clustered": False,
        "total": 0,
        "features": [],
    }
