"""JSON routes against the store built from the real data folder."""

import json
import math

import pytest
from fastapi.testclient import TestClient

from api import presenters
from api.app import create_app
from api.settings import DataSettings, Settings
from geo.crs import CoordSys, from_wgs84
from store.sqlite import SqliteStore
from tests.api.staff_login import city_officer

# The Bell Tower (钟楼), WGS84.
BELL_TOWER = (108.9402, 34.2600)


def _nearby(client: TestClient, **params: object) -> dict:
    query = {"lon": BELL_TOWER[0], "lat": BELL_TOWER[1], **params}
    response = client.get("/v1/jobs/nearby", params=query)
    assert response.status_code == 200, response.text
    return response.json()


def _error(client: TestClient, path: str, **params: object) -> dict:
    response = client.get(path, params=params)
    assert response.status_code == 422, response.text
    (detail,) = response.json()["detail"]
    return detail


def test_health_reports_counts(real_client: TestClient) -> None:
    body = real_client.get("/health").json()
    assert body["status"] == "ok"
    assert body["postings"] > 70_000
    assert body["seekers"] == 500
    assert body["versions"]["geos"]


def test_nearby_sorted_within_radius(real_client: TestClient) -> None:
    body = _nearby(real_client, radius_m=3000, page_size=50)
    distances = [item["distance_m"] for item in body["items"]]
    assert body["total"] > 0
    assert distances == sorted(distances)
    assert all(d <= 3000 for d in distances)
    assert all(item["reasons"][0].startswith("距您约") for item in body["items"])


def test_nearby_never_returns_city_level(real_client: TestClient) -> None:
    body = _nearby(real_client, radius_m=50_000, page_size=100)
    assert all(item["precision"] != "city" for item in body["items"])


def test_nearby_paging_is_disjoint(real_client: TestClient) -> None:
    first = _nearby(real_client, radius_m=5000, page=1, page_size=10)
    second = _nearby(real_client, radius_m=5000, page=2, page_size=10)
    first_ids = {item["posting_id"] for item in first["items"]}
    second_ids = {item["posting_id"] for item in second["items"]}
    assert first["total"] == second["total"]
    assert len(first_ids) == 10
    assert not first_ids & second_ids


def test_nearby_gcj02_input_and_output(real_client: TestClient) -> None:
    wgs = _nearby(real_client, radius_m=2000, page_size=20)
    gcj_lon, gcj_lat = from_wgs84(*BELL_TOWER, "gcj02")
    query = {"lon": gcj_lon, "lat": gcj_lat, "coord_sys": "gcj02", "radius_m": 2000}
    gcj = real_client.get("/v1/jobs/nearby", params={**query, "page_size": 20}).json()
    assert [i["posting_id"] for i in gcj["items"]] == [i["posting_id"] for i in wgs["items"]]
    first_wgs, first_gcj = wgs["items"][0], gcj["items"][0]
    expected = from_wgs84(first_wgs["lon"], first_wgs["lat"], "gcj02")
    assert math.isclose(first_gcj["lon"], expected[0], abs_tol=1e-9)
    assert math.isclose(first_gcj["lat"], expected[1], abs_tol=1e-9)


@pytest.mark.parametrize(
    ("lon", "lat", "field", "words"),
    [
        ("nan", "34.26", "lon", "NaN"),
        ("108.94", "inf", "lat", "infinite"),
        ("34.26", "108.94", None, "swapped"),
        ("0", "0", None, "(0, 0)"),
        ("116.40", "39.90", None, "outside"),
        ("108.94", "95", "lat", "-90..90"),
        ("190", "34.26", "lon", "-180..180"),
    ],
)
def test_nearby_bad_coordinates(
    real_client: TestClient, lon: str, lat: str, field: str | None, words: str
) -> None:
    detail = _error(real_client, "/v1/jobs/nearby", lon=lon, lat=lat)
    assert words in detail["msg"]
    assert detail["msg_zh"]
    if field:
        assert detail["loc"][-1] == field


def test_nearby_unknown_coord_sys(real_client: TestClient) -> None:
    detail = _error(real_client, "/v1/jobs/nearby", lon=108.94, lat=34.26, coord_sys="utm")
    assert detail["loc"][-1] == "coord_sys"
    assert "wgs84" in detail["msg"]


@pytest.mark.parametrize("radius", ["0", "-5", "50001", "nan"])
def test_nearby_radius_limits(real_client: TestClient, radius: str) -> None:
    detail = _error(real_client, "/v1/jobs/nearby", lon=108.94, lat=34.26, radius_m=radius)
    assert detail["loc"][-1] == "radius_m"
    assert "50000" in detail["msg"]


def test_nearby_page_size_limit(real_client: TestClient) -> None:
    detail = _error(real_client, "/v1/jobs/nearby", lon=108.94, lat=34.26, page_size=101)
    assert detail["loc"][-1] == "page_size"
    assert "100" in detail["msg"]


def test_seekers_are_simulated(real_client: TestClient) -> None:
    body = real_client.get("/v1/dev/seekers", params={"limit": 20}).json()
    assert body["total"] == 500
    assert len(body["items"]) == 20
    assert all(item["simulated"] for item in body["items"])


def test_recommendations_ranked_with_reasons(real_client: TestClient) -> None:
    seeker_id = real_client.get("/v1/dev/seekers").json()["items"][0]["seeker_id"]
    response = real_client.get(
        f"/v1/seekers/{seeker_id}/recommendations",
        params={"limit": 15},
        headers=city_officer(real_client),
    )
    body = response.json()
    scores = [item["score"] for item in body["items"]]
    assert response.status_code == 200
    assert body["simulated"] is True
    assert len(body["items"]) == 15
    assert scores == sorted(scores, reverse=True)
    assert all(item["reasons"] for item in body["items"])


def test_recommendations_english(real_client: TestClient) -> None:
    seeker_id = real_client.get("/v1/dev/seekers").json()["items"][0]["seeker_id"]
    body = real_client.get(
        f"/v1/seekers/{seeker_id}/recommendations",
        params={"lang": "en"},
        headers=city_officer(real_client),
    ).json()
    assert body["seeker"]["group_label"].isascii()
    assert all(reason.isascii() for item in body["items"] for reason in item["reasons"])


def test_job_detail_matches_nearby(real_client: TestClient) -> None:
    nearby = _nearby(real_client, radius_m=1000, page_size=1)["items"][0]

    response = real_client.get(f"/v1/jobs/{nearby['posting_id']}", params={"coord_sys": "gcj02"})
    body = response.json()

    assert response.status_code == 200, response.text
    assert body["posting_id"] == nearby["posting_id"]
    assert body["title"] == nearby["title"]
    assert body["company"] == nearby["company"]
    assert body["distance_m"] is None
    assert body["reasons"] == []
    lon, lat = from_wgs84(nearby["lon"], nearby["lat"], CoordSys.GCJ02)
    assert body["lon"] == pytest.approx(lon)
    assert body["lat"] == pytest.approx(lat)


def test_job_detail_unknown_is_404(real_client: TestClient) -> None:
    response = real_client.get("/v1/jobs/no-such-posting")

    assert response.status_code == 404
    assert "no-such-posting" in response.json()["detail"][0]["msg"]


def test_job_detail_long_id_is_422(real_client: TestClient) -> None:
    detail = _error(real_client, "/v1/jobs/" + "x" * 65)

    assert detail["loc"] == ["path", "posting_id"]
    assert "x" * 65 not in json.dumps(detail)


def test_recommendations_unknown_seeker(real_client: TestClient) -> None:
    response = real_client.get(
        "/v1/seekers/sim-999999/recommendations", headers=city_officer(real_client)
    )
    assert response.status_code == 404
    assert "sim-999999" in response.json()["detail"][0]["msg"]


def test_anchors_inside_bbox(real_client: TestClient) -> None:
    bbox = (108.86, 34.18, 108.90, 34.22)
    response = real_client.get("/v1/anchors", params={"bbox": ",".join(map(str, bbox))})
    features = response.json()["features"]
    assert response.status_code == 200
    assert response.json()["clustered"] is False
    assert features
    for feature in features:
        lon, lat = feature["geometry"]["coordinates"]
        assert bbox[0] <= lon <= bbox[2]
        assert bbox[1] <= lat <= bbox[3]
        assert feature["properties"]["precision_label"]


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "109,34,108,35", "108,34,nan,35"])
def test_anchors_bad_bbox(real_client: TestClient, bbox: str) -> None:
    detail = _error(real_client, "/v1/anchors", bbox=bbox)
    assert detail["loc"][-1] == "bbox"


def test_layers_listed_with_sources(real_client: TestClient) -> None:
    items = real_client.get("/v1/layers").json()["items"]
    names = {item["name"] for item in items}
    assert {"districts", "metro_lines", "metro_stations", "hr_offices", "training"} <= names
    assert all(item["source"] for item in items)


def test_layers_listed_with_owner_and_files(real_client: TestClient) -> None:
    items = real_client.get("/v1/layers").json()["items"]
    for item in items:
        assert item["owner_org_id"] == "city", item["name"]
        assert item["sources"], item["name"]
        assert all(source["licence"] for source in item["sources"]), item["name"]
    by_name = {item["name"]: item for item in items}
    assert by_name["metro_stations"]["updated"] == "2026-09-26"
    assert by_name["metro_stations"]["sources"][0]["folder"] == "xian_metro_openmetro"


def test_layer_geojson_in_gcj02(real_client: TestClient) -> None:
    wgs = real_client.get("/v1/layers/metro_stations").json()
    gcj = real_client.get("/v1/layers/metro_stations", params={"coord_sys": "gcj02"}).json()
    assert len(wgs["features"]) == 248
    lon, lat = wgs["features"][0]["geometry"]["coordinates"]
    expected = from_wgs84(lon, lat, "gcj02")
    assert gcj["features"][0]["geometry"]["coordinates"] == pytest.approx(list(expected))


def test_layer_unknown_is_404(real_client: TestClient) -> None:
    assert real_client.get("/v1/layers/nope").status_code == 404


def test_stats_counts_by_precision(real_client: TestClient) -> None:
    body = real_client.get("/v1/stats").json()
    assert sum(body["anchors_by_precision"].values()) == body["anchors"]
    assert sum(body["postings_by_precision"].values()) == body["postings"]
    assert body["simulated_seekers"] is True


def test_openapi_lists_routes(real_client: TestClient) -> None:
    paths = real_client.get("/openapi.json").json()["paths"]
    assert "/v1/jobs/nearby" in paths
    assert "/v1/seekers/{seeker_id}/recommendations" in paths


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= char <= "\u9fff" for char in text)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lon": "abc", "lat": "34.26"}, "lon"),
        ({"lat": "34.26"}, "lon"),
        ({"lon": "108.94", "lat": "34.26", "page": "0"}, "page"),
        ({"lon": "108.94", "lat": "34.26", "lang": "fr"}, "lang"),
    ],
)
def test_request_validation_in_chinese(
    real_client: TestClient, params: dict[str, str], field: str
) -> None:
    detail = _error(real_client, "/v1/jobs/nearby", **params)
    assert detail["loc"][-1] == field
    assert _has_chinese(detail["msg_zh"])
    assert "abc" not in detail["msg_zh"]


def test_coordinate_error_in_chinese(real_client: TestClient) -> None:
    detail = _error(real_client, "/v1/jobs/nearby", lon="34.26", lat="108.94")
    assert detail["msg_zh"] == "经纬度疑似颠倒，请交换后重试"


def test_anchors_leave_out_city_level(real_client: TestClient, full_store: SqliteStore) -> None:
    # The Bell Tower, where every city-level anchor sits, and its surroundings.
    centre = {"bbox": "108.93,34.25,108.95,34.27"}
    default = real_client.get("/v1/anchors", params=centre).json()
    with_city = real_client.get("/v1/anchors", params={**centre, "include_city": "true"}).json()
    anchors = full_store.anchors_frame()

    assert default["clustered"] is False
    assert "city" not in {f["properties"]["precision"] for f in default["features"]}
    # Thousands of city-level anchors on one point are clustered.
    assert with_city["clustered"] is True
    n_city = int((anchors["precision"] == "city").sum())
    assert with_city["total"] == default["total"] + n_city


def test_anchors_cluster_above_the_limit(real_client: TestClient, full_store: SqliteStore) -> None:
    body = real_client.get("/v1/anchors").json()
    anchors = full_store.anchors_frame()
    located = anchors["precision"] != "city"

    assert located.sum() > 2_000
    assert body["clustered"] is True
    assert body["total"] == located.sum()
    assert 0 < len(body["features"]) <= 2_000
    assert sum(f["properties"]["count"] for f in body["features"]) == located.sum()
    postings = sum(f["properties"]["n_postings"] for f in body["features"])
    assert postings == anchors.loc[located, "n_postings"].sum()


def test_anchors_in_gcj02(real_client: TestClient) -> None:
    corners = (
        *from_wgs84(108.86, 34.18, CoordSys.GCJ02),
        *from_wgs84(108.90, 34.22, CoordSys.GCJ02),
    )
    params = {"bbox": ",".join(map(str, corners)), "coord_sys": "gcj02"}
    gcj = real_client.get("/v1/anchors", params=params).json()
    wgs = real_client.get("/v1/anchors", params={"bbox": "108.86,34.18,108.90,34.22"}).json()
    assert wgs["clustered"] is False
    by_id = {f["properties"]["anchor_id"]: f for f in wgs["features"]}

    assert gcj["features"]
    for feature in gcj["features"]:
        original = by_id.get(feature["properties"]["anchor_id"])
        if original is not None:
            expected = from_wgs84(*original["geometry"]["coordinates"], CoordSys.GCJ02)
            assert feature["geometry"]["coordinates"] == pytest.approx(list(expected), abs=1e-9)


def test_anchor_map_converts_cluster_bboxes() -> None:
    text = json.dumps(
        {
            "type": "FeatureCollection",
            "clustered": True,
            "total": 3,
            "features": [
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [108.95, 34.25]},
                    "properties": {"cluster": True, "count": 3, "bbox": [108.9, 34.2, 109.0, 34.3]},
                }
            ],
        }
    )
    body = presenters.anchor_map_in(text, CoordSys.BD09)
    (feature,) = body["features"]
    assert feature["geometry"]["coordinates"] == pytest.approx(
        list(from_wgs84(108.95, 34.25, CoordSys.BD09))
    )
    assert feature["properties"]["bbox"] == pytest.approx(
        [*from_wgs84(108.9, 34.2, CoordSys.BD09), *from_wgs84(109.0, 34.3, CoordSys.BD09)]
    )
    assert body["total"] == 3


def test_anchors_bbox_swapped(real_client: TestClient) -> None:
    detail = _error(real_client, "/v1/anchors", bbox="34.25,108.93,34.27,108.96")
    assert "swapped" in detail["msg"]
    assert detail["loc"][-1] == "bbox"


def test_seekers_filtered_by_group(real_client: TestClient) -> None:
    headers = city_officer(real_client)
    body = real_client.get(
        "/v1/seekers", params={"group": "graduate", "limit": 100}, headers=headers
    ).json()
    everyone = real_client.get("/v1/seekers", headers=headers).json()
    assert body["items"]
    assert {item["group"] for item in body["items"]} == {"graduate"}
    assert body["total"] < everyone["total"]


def test_negotiable_salary_shown(real_client: TestClient) -> None:
    texts: set[str] = set()
    for page in range(1, 11):
        body = _nearby(real_client, radius_m=3_000, page=page, page_size=100)
        texts |= {item["salary_text"] for item in body["items"]}
    assert "" not in texts
    assert "面议" in texts


def test_docs_served_locally(real_client: TestClient) -> None:
    page = real_client.get("/docs")
    assert page.status_code == 200
    assert "/assets/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "https://" not in page.text
    assert "http://" not in page.text
    assert real_client.get("/assets/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert real_client.get("/redoc").status_code == 404


def test_service_uses_transit_model(real_client: TestClient) -> None:
    recommender = real_client.app.state.recommender

    assert recommender.transit is not None
    assert recommender.index.network is recommender.transit


def test_transit_model_can_be_off(full_store: SqliteStore) -> None:
    settings = Settings(data=DataSettings(store_path=full_store.path, transit_model=False))

    with TestClient(create_app(settings, store=full_store)) as client:
        recommender = client.app.state.recommender
        response = client.get(
            "/v1/seekers/sim-000001/recommendations", headers=city_officer(client)
        )

    assert recommender.transit is None
    assert recommender.index.network is None
    assert response.status_code == 200, response.text
