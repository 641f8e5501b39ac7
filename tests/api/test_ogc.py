"""Tests of the OGC API - Features endpoints (/ogc) on the store built from the real data.

Every response is checked against the members and link relations that OGC API -
Features Part 1: Core (OGC 17-069r4) requires. No OGC schema is fetched, so the
checks are written out here, one checker per kind of resource.
"""

import re
import shutil
import sqlite3
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import shapely
from fastapi.testclient import TestClient

from api.app import create_app
from api.ogc_documents import CONFORMANCE_CLASSES, CRS84, DEFAULT_LIMIT, MAX_LIMIT
from api.settings import DataSettings, Settings
from geo.layer_catalog import CITY_OWNER_ORG_ID, LAYER_INFOS, LAYERS_WITHOUT_DATA
from geo.regions import load_regions
from store.anchor_map import MAX_MAP_FEATURES
from store.identity import CITY_ORG_ID, organisations_from_regions
from store.sqlite import SqliteStore

GEOJSON = "application/geo+json"
CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
GEOJSON_CLASS = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"
QUERYABLES_CLASS = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
LAYER_NAMES = sorted(LAYER_INFOS)
ALL_COLLECTIONS = [*LAYER_NAMES, "anchors", "key_enterprises"]
# Part of the old town inside the city wall: a few dozen anchors, below the cluster limit.
OLD_TOWN_BBOX = "108.93,34.255,108.96,34.27"


def _links_by_rel(body: dict[str, Any]) -> dict[str, dict[str, str]]:
    links = body["links"]
    assert isinstance(links, list)
    for item in links:
        # OGC link objects require href and rel.
        assert isinstance(item["href"], str) and item["href"].startswith("http")
        assert isinstance(item["rel"], str)
    return {item["rel"]: item for item in links}


def check_landing_page(body: dict[str, Any]) -> None:
    """Check a landing page: links to the API definition, conformance and data."""
    rels = _links_by_rel(body)
    assert "service-desc" in rels or "service-doc" in rels
    assert "conformance" in rels
    assert "data" in rels
    assert "self" in rels


def check_conformance(body: dict[str, Any]) -> None:
    """Check a conformance declaration: conformsTo lists the class URIs."""
    assert isinstance(body["conformsTo"], list)
    assert all(isinstance(uri, str) for uri in body["conformsTo"])
    assert CORE in body["conformsTo"]
    assert GEOJSON_CLASS in body["conformsTo"]
    assert QUERYABLES_CLASS in body["conformsTo"]


def check_collection(body: dict[str, Any]) -> None:
    """Check a collection: id, title, links with items, itemType and an extent in CRS84."""
    assert isinstance(body["id"], str) and body["id"]
    assert isinstance(body["title"], str) and body["title"]
    rels = _links_by_rel(body)
    assert "items" in rels
    assert rels["items"]["href"].endswith(f"/collections/{body['id']}/items")
    assert rels[QUERYABLES_REL]["href"].endswith(f"/collections/{body['id']}/queryables")
    assert rels[QUERYABLES_REL]["type"] == "application/schema+json"
    assert body["itemType"] == "feature"
    spatial = body["extent"]["spatial"]
    assert spatial["crs"] == CRS84
    for box in spatial["bbox"]:
        assert len(box) in (4, 6)
        assert box[0] <= box[2]
        assert box[1] <= box[3]
        assert -180 <= box[0] <= 180
        assert -90 <= box[1] <= 90


def check_collections(body: dict[str, Any]) -> None:
    """Check a collection list: a self link and a list of collections."""
    assert "self" in _links_by_rel(body)
    assert isinstance(body["collections"], list)
    for item in body["collections"]:
        check_collection(item)


def check_feature(feature: dict[str, Any]) -> None:
    """Check a GeoJSON Feature with a valid geometry and properties."""
    assert feature["type"] == "Feature"
    assert feature["geometry"]["type"] in {"Point", "LineString", "MultiPolygon", "Polygon"}
    assert isinstance(feature["properties"], dict)
    shapely.geometry.shape(feature["geometry"])


def check_items(body: dict[str, Any], limit: int) -> None:
    """Check a page of features: GeoJSON, self link, counts, limit and time stamp."""
    assert body["type"] == "FeatureCollection"
    assert isinstance(body["features"], list)
    for feature in body["features"]:
        check_feature(feature)
    rels = _links_by_rel(body)
    assert rels["self"]["type"] == GEOJSON
    assert body["numberReturned"] == len(body["features"])
    assert body["numberReturned"] <= limit
    assert body["numberMatched"] >= body["numberReturned"]
    assert datetime.fromisoformat(body["timeStamp"]).tzinfo is not None
    if "next" in rels:
        assert rels["next"]["type"] == GEOJSON


def _get(client: TestClient, path: str, **params: str) -> httpx.Response:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response


def test_landing_page_links(real_client: TestClient) -> None:
    response = _get(real_client, "/ogc")
    assert response.headers["content-type"].startswith("application/json")
    check_landing_page(response.json())


def test_landing_page_links_resolve(real_client: TestClient) -> None:
    rels = _links_by_rel(real_client.get("/ogc").json())
    for rel in ("self", "conformance", "data", "service-desc"):
        path = httpx.URL(rels[rel]["href"]).path
        assert real_client.get(path).status_code == 200, rel


def test_conformance_classes(real_client: TestClient) -> None:
    body = _get(real_client, "/ogc/conformance").json()
    check_conformance(body)
    assert body["conformsTo"] == list(CONFORMANCE_CLASSES)


def test_collections_list_every_layer(real_client: TestClient) -> None:
    body = _get(real_client, "/ogc/collections").json()
    check_collections(body)
    assert sorted(item["id"] for item in body["collections"]) == sorted(ALL_COLLECTIONS)


def test_collections_never_list_layers_without_data(real_client: TestClient) -> None:
    body = _get(real_client, "/ogc/collections").json()
    ids = {item["id"] for item in body["collections"]}
    assert not ids & set(LAYERS_WITHOUT_DATA)


@pytest.mark.parametrize("name", ALL_COLLECTIONS)
def test_collection_metadata(real_client: TestClient, name: str) -> None:
    body = _get(real_client, f"/ogc/collections/{name}").json()
    check_collection(body)
    assert body["id"] == name
    assert "self" in _links_by_rel(body)
    assert body["ownerOrganisation"] == CITY_OWNER_ORG_ID
    assert body["updated"]
    assert body["sources"]
    for source in body["sources"]:
        assert source["folder"]
        assert source["file"]
        assert source["licence"]


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_collection_sources_exist(real_client: TestClient, name: str, data_dir: Path) -> None:
    body = _get(real_client, f"/ogc/collections/{name}").json()
    for source in body["sources"]:
        assert (data_dir / source["folder"] / source["file"]).is_file()
        assert (data_dir / source["folder"] / "SOURCE.md").is_file()


def test_owner_is_city_bureau_in_tree(data_dir: Path) -> None:
    regions = load_regions(data_dir)
    tree = {organisation.org_id for organisation in organisations_from_regions(regions)}
    assert CITY_OWNER_ORG_ID == CITY_ORG_ID
    assert CITY_OWNER_ORG_ID in tree


def test_layer_extent_covers_features(real_client: TestClient, full_store: SqliteStore) -> None:
    body = _get(real_client, "/ogc/collections/metro_stations").json()
    box = body["extent"]["spatial"]["bbox"][0]
    bounds = full_store.layer_frame("metro_stations").total_bounds
    assert box == pytest.approx(list(bounds))


@pytest.mark.parametrize("name", ALL_COLLECTIONS)
def test_items_first_page(real_client: TestClient, name: str) -> None:
    response = _get(real_client, f"/ogc/collections/{name}/items", limit="10")
    assert response.headers["content-type"].startswith(GEOJSON)
    check_items(response.json(), limit=10)


def test_items_default_limit(real_client: TestClient) -> None:
    body = _get(real_client, "/ogc/collections/training/items").json()
    check_items(body, limit=DEFAULT_LIMIT)
    assert body["numberReturned"] == DEFAULT_LIMIT
    assert body["numberMatched"] == 1523


def test_items_limit_over_maximum_is_capped(real_client: TestClient) -> None:
    body = _get(real_client, "/ogc/collections/training/items", limit="100000").json()
    assert body["numberReturned"] == min(MAX_LIMIT, 1523)


def test_items_paging_walks_every_feature(real_client: TestClient) -> None:
    seen: list[int] = []
    path = "/ogc/collections/universities/items?limit=25"
    pages = 0
    while path:
        body = real_client.get(path).json()
        check_items(body, limit=25)
        seen.extend(feature["id"] for feature in body["features"])
        rels = _links_by_rel(body)
        if pages > 0:
            assert "prev" in rels
        next_link = rels.get("next")
        path = str(httpx.URL(next_link["href"]).raw_path, "ascii") if next_link else ""
        pages += 1
    assert pages == 3
    assert seen == list(range(1, 64))


def test_items_bbox_filters(real_client: TestClient, full_store: SqliteStore) -> None:
    bbox = "108.90,34.20,108.98,34.28"
    body = _get(real_client, "/ogc/collections/metro_stations/items", bbox=bbox).json()
    check_items(body, limit=DEFAULT_LIMIT)
    box = shapely.box(*map(float, bbox.split(",")))
    stations = full_store.layer_frame("metro_stations")
    expected = int(stations.geometry.intersects(box).sum())
    assert 0 < body["numberMatched"] == expected < len(stations)
    for feature in body["features"]:
        assert box.intersects(shapely.geometry.shape(feature["geometry"]))


def test_items_bbox_with_heights(real_client: TestClient) -> None:
    flat = _get(real_client, "/ogc/collections/metro_stations/items", bbox="108.9,34.2,109,34.3")
    tall = _get(
        real_client, "/ogc/collections/metro_stations/items", bbox="108.9,34.2,0,109,34.3,100"
    )
    assert flat.json()["numberMatched"] == tall.json()["numberMatched"]


def test_feature_by_id(real_client: TestClient) -> None:
    page = _get(real_client, "/ogc/collections/metro_stations/items", limit="3").json()
    first = page["features"][2]
    response = _get(real_client, f"/ogc/collections/metro_stations/items/{first['id']}")
    assert response.headers["content-type"].startswith(GEOJSON)
    feature = response.json()
    check_feature(feature)
    assert feature["id"] == first["id"] == 3
    assert feature["properties"] == first["properties"]
    rels = _links_by_rel(feature)
    assert {"self", "collection"} <= set(rels)


def test_anchor_feature_by_id(real_client: TestClient) -> None:
    page = _get(real_client, "/ogc/collections/anchors/items", bbox=OLD_TOWN_BBOX).json()
    first = page["features"][0]
    feature = _get(real_client, f"/ogc/collections/anchors/items/{first['id']}").json()
    check_feature(feature)
    assert feature["id"] == first["properties"]["anchor_id"]
    assert feature["geometry"]["coordinates"] == pytest.approx(first["geometry"]["coordinates"])
    assert feature["properties"]["n_postings"] == first["properties"]["n_postings"]
    for flag in ("key_enterprise", "above_scale_industrial"):
        assert feature["properties"][flag] is first["properties"][flag] is False


def test_application_json_when_only_json_accepted(real_client: TestClient) -> None:
    response = real_client.get(
        "/ogc/collections/districts/items", headers={"Accept": "application/json"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["type"] == "FeatureCollection"


def test_anchors_cluster_above_limit(real_client: TestClient) -> None:
    body = _get(real_client, "/ogc/collections/anchors/items", limit=str(MAX_LIMIT)).json()
    check_items(body, limit=MAX_LIMIT)
    assert body["clustered"] is True
    assert body["anchorsMatched"] > MAX_MAP_FEATURES
    assert 0 < body["numberMatched"] <= MAX_MAP_FEATURES
    assert all(feature["properties"]["cluster"] for feature in body["features"])
    counted = sum(feature["properties"]["count"] for feature in body["features"])
    assert counted == body["anchorsMatched"]


def test_anchors_same_clusters_as_map(real_client: TestClient) -> None:
    ogc = _get(real_client, "/ogc/collections/anchors/items", limit=str(MAX_LIMIT)).json()
    bbox = "107.45,33.49,110.02,34.95"
    city_map = _get(real_client, "/v1/anchors", bbox=bbox).json()
    assert ogc["anchorsMatched"] == city_map["total"]
    assert ogc["features"] == city_map["features"][:MAX_LIMIT]


def test_anchors_single_below_limit(real_client: TestClient) -> None:
    body = _get(real_client, "/ogc/collections/anchors/items", bbox=OLD_TOWN_BBOX).json()
    check_items(body, limit=DEFAULT_LIMIT)
    assert body["clustered"] is False
    assert body["numberMatched"] == body["anchorsMatched"] <= MAX_MAP_FEATURES
    ranks = [(-f["properties"]["n_postings"], f["id"]) for f in body["features"]]
    assert ranks == sorted(ranks)
    assert {"state", "precision"} <= set(body["features"][0]["properties"])


@pytest.mark.parametrize(
    ("bbox", "rule"),
    [
        ("1,2,3", "4 or 6"),
        ("a,b,c,d", "4 or 6"),
        ("108.9,34.2,nan,34.3", "finite"),
        ("34.2,108.9,34.3,109.0", "latitude"),
        ("108.9,34.3,109.0,34.2", "minimum"),
        ("190,34.2,191,34.3", "longitude"),
    ],
)
def test_items_bad_bbox_is_400(real_client: TestClient, bbox: str, rule: str) -> None:
    response = real_client.get("/ogc/collections/training/items", params={"bbox": bbox})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "InvalidParameterValue"
    assert "bbox" in body["description"]
    assert rule in body["description"]
    assert body["detail"][0]["loc"] == ["query", "bbox"]
    assert body["detail"][0]["msg_zh"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"f": "html"}, "f"),
        ({"filter": "x"}, "filter"),
        ({"include_city": "true"}, "include_city"),
        ({"key_enterprise": "true"}, "key_enterprise"),
    ],
)
def test_items_bad_parameter_is_400(
    real_client: TestClient, params: dict[str, str], field: str
) -> None:
    response = real_client.get("/ogc/collections/training/items", params=params)
    assert response.status_code == 400
    body = response.json()
    assert re.search(rf"\b{field}\b", body["description"])
    assert body["detail"][0]["loc"] == ["query", field]


def test_anchors_bad_include_city_is_400(real_client: TestClient) -> None:
    response = real_client.get("/ogc/collections/anchors/items", params={"include_city": "yes"})
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["query", "include_city"]


@pytest.mark.parametrize(
    "path",
    [
        "/ogc/collections/nope",
        "/ogc/collections/nope/items",
        "/ogc/collections/nope/queryables",
        "/ogc/collections/training/items/0",
        "/ogc/collections/training/items/1524",
        "/ogc/collections/training/items/abc",
        "/ogc/collections/anchors/items/no-such-anchor",
    ],
)
def test_unknown_collection_or_feature_is_404(real_client: TestClient, path: str) -> None:
    response = real_client.get(path)
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "NotFound"
    assert body["description"]


def test_anchor_items_carry_enterprise_flags(
    full_store: SqliteStore, real_client: TestClient, tmp_path: Path
) -> None:
    page = _get(real_client, "/ogc/collections/anchors/items", bbox=OLD_TOWN_BBOX).json()
    flagged = page["features"][1]["id"]
    copy = tmp_path / "store.sqlite"
    shutil.copy(full_store.path, copy)
    with closing(sqlite3.connect(copy)) as connection, connection:
        connection.execute(
            "UPDATE anchors SET key_enterprise = 1, above_scale_industrial = 1 WHERE anchor_id = ?",
            (flagged,),
        )
    settings = Settings(data=DataSettings(store_path=copy))

    with TestClient(create_app(settings, store=SqliteStore(copy))) as client:
        body = _get(client, "/ogc/collections/anchors/items", bbox=OLD_TOWN_BBOX).json()

    flags = {
        feature["id"]: (
            feature["properties"]["key_enterprise"],
            feature["properties"]["above_scale_industrial"],
        )
        for feature in body["features"]
    }
    assert flags[flagged] == (True, True)
    assert sum(key for key, _ in flags.values()) == 1


def test_key_enterprises_flagged_only(
    full_store: SqliteStore, real_client: TestClient, tmp_path: Path
) -> None:
    page = _get(real_client, "/ogc/collections/anchors/items", bbox=OLD_TOWN_BBOX).json()
    flagged, other = page["features"][1]["id"], page["features"][2]["id"]
    before = _get(real_client, "/ogc/collections/key_enterprises/items").json()
    copy = tmp_path / "store.sqlite"
    shutil.copy(full_store.path, copy)
    with closing(sqlite3.connect(copy)) as connection, connection:
        connection.execute("UPDATE anchors SET key_enterprise = 1 WHERE anchor_id = ?", (flagged,))
        connection.execute(
            "UPDATE anchors SET above_scale_industrial = 1 WHERE anchor_id = ?", (other,)
        )
    settings = Settings(data=DataSettings(store_path=copy))

    with TestClient(create_app(settings, store=SqliteStore(copy))) as client:
        body = _get(client, "/ogc/collections/key_enterprises/items").json()
        found = client.get(f"/ogc/collections/key_enterprises/items/{flagged}")
        missing = client.get(f"/ogc/collections/key_enterprises/items/{other}")

    assert before["numberMatched"] == 0
    check_items(body, limit=DEFAULT_LIMIT)
    assert [feature["id"] for feature in body["features"]] == [flagged]
    assert body["numberMatched"] == 1
    assert found.status_code == 200
    assert found.json()["properties"]["key_enterprise"] is True
    assert missing.status_code == 404


@pytest.mark.parametrize("name", ["anchors", "key_enterprises"])
def test_anchor_queryables_are_flags(real_client: TestClient, name: str) -> None:
    response = _get(real_client, f"/ogc/collections/{name}/queryables")
    body = response.json()

    assert response.headers["content-type"].startswith("application/schema+json")
    assert body["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert body["$id"].endswith(f"/ogc/collections/{name}/queryables")
    assert body["type"] == "object"
    assert body["additionalProperties"] is False
    assert set(body["properties"]) == {"key_enterprise", "above_scale_industrial"}
    assert {schema["type"] for schema in body["properties"].values()} == {"boolean"}


def test_layer_queryables_are_empty(real_client: TestClient) -> None:
    body = _get(real_client, f"/ogc/collections/{LAYER_NAMES[0]}/queryables").json()

    assert body["properties"] == {}
    assert body["additionalProperties"] is False


@pytest.mark.parametrize("value", ["yes", "1", "TRUE"])
def test_anchors_bad_queryable_is_400(real_client: TestClient, value: str) -> None:
    response = real_client.get(
        "/ogc/collections/anchors/items", params={"above_scale_industrial": value}
    )

    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["query", "above_scale_industrial"]


def test_anchor_items_filter_on_queryables(
    full_store: SqliteStore, real_client: TestClient, tmp_path: Path
) -> None:
    page = _get(real_client, "/ogc/collections/anchors/items", bbox=OLD_TOWN_BBOX).json()
    in_view = [feature["id"] for feature in page["features"]]
    key, industrial = in_view[1], in_view[2]
    copy = tmp_path / "store.sqlite"
    shutil.copy(full_store.path, copy)
    with closing(sqlite3.connect(copy)) as connection, connection:
        connection.execute("UPDATE anchors SET key_enterprise = 1 WHERE anchor_id = ?", (key,))
        connection.execute(
            "UPDATE anchors SET above_scale_industrial = 1 WHERE anchor_id = ?", (industrial,)
        )
    settings = Settings(data=DataSettings(store_path=copy))

    def ids(client: TestClient, collection: str, **params: str) -> list[str]:
        body = _get(client, f"/ogc/collections/{collection}/items", **params).json()
        check_items(body, limit=DEFAULT_LIMIT)
        assert body["numberMatched"] == len(body["features"])
        return [feature["id"] for feature in body["features"]]

    with TestClient(create_app(settings, store=SqliteStore(copy))) as client:
        keys = ids(client, "anchors", key_enterprise="true")
        industrials = ids(client, "anchors", above_scale_industrial="true")
        both = ids(client, "anchors", key_enterprise="true", above_scale_industrial="true")
        others = ids(client, "anchors", bbox=OLD_TOWN_BBOX, key_enterprise="false")
        contradiction = ids(client, "key_enterprises", key_enterprise="false")
        narrowed = ids(client, "key_enterprises", above_scale_industrial="false")

    assert keys == [key]
    assert industrials == [industrial]
    assert both == []
    assert sorted(others) == sorted(set(in_view) - {key})
    assert contradiction == []
    assert narrowed == [key]
