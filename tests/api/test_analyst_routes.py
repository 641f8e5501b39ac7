"""The analyst dashboard's figure routes, on figures computed from the real data folder."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import AuthSettings, DataSettings, Settings
from geo.coverage.dashboard import dashboard_path, write_dashboard
from store.identity import Role
from store.sqlite import SqliteStore
from tests.api.fix_analyst import PAYLOAD_NAME, DashboardServer
from tests.api.staff_login import log_in_staff


def test_coverage_figures_by_district(dashboard_server: DashboardServer) -> None:
    client, analyst = dashboard_server.client, dashboard_server.analyst

    response = client.get("/v1/analyst/coverage", headers=analyst.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["simulated_seekers"] is True
    assert "gaps" not in body
    circle = body["circle"]
    assert len(circle["districts"]) == 11
    assert sum(row["places"] for row in circle["districts"]) == circle["places"] == 4_307
    assert circle["covered"] == int(dashboard_server.circle.places["covered"].sum())
    assert len(circle["streets"]) > 11
    shares = [row["share"] for row in circle["districts"]]
    assert shares == sorted(shares)


def test_access_and_scores_shape(dashboard_server: DashboardServer) -> None:
    body = dashboard_server.client.get(
        "/v1/analyst/coverage", headers=dashboard_server.analyst.headers
    ).json()

    access = body["access"]
    assert access["catchments_min"] == [30.0, 45.0]
    city = next(row for row in access["districts"] if row["code"] == "all")
    assert city["seekers"] == 500
    assert 0 < city["jobs_30"] <= city["jobs_45"] <= access["postings_used"]
    assert sorted(body["scores"]) == ["30", "45"]
    city_groups = {row["group"] for row in body["scores"]["45"] if row["district_code"] == "all"}
    assert city_groups >= {"general", "graduate"}


def test_gaps_are_geojson(dashboard_server: DashboardServer) -> None:
    response = dashboard_server.client.get(
        "/v1/analyst/coverage/gaps", headers=dashboard_server.analyst.headers
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    features = response.json()["features"]
    places = [item for item in features if item["properties"]["kind"] == "place"]
    stations = [item for item in features if item["properties"]["kind"] == "station"]
    assert len(places) == 4_307
    assert len(stations) == len(dashboard_server.circle.stations)
    gaps = [item for item in places if not item["properties"]["covered"]]
    # Minutes are rounded to 0.1, so a place just beyond the line shows 15.0.
    assert all(item["properties"]["minutes"] >= 15 for item in gaps)
    lon, lat = places[0]["geometry"]["coordinates"]
    assert 107.0 < lon < 110.0
    assert 33.5 < lat < 35.0
    assert places[0]["properties"]["name"] == PAYLOAD_NAME


@pytest.mark.parametrize("path", ["/v1/analyst/coverage", "/v1/analyst/coverage/gaps"])
def test_station_staff_forbidden(dashboard_server: DashboardServer, path: str) -> None:
    staff = log_in_staff(dashboard_server.client, org_id="district:610113")

    assert dashboard_server.client.get(path, headers=staff.headers).status_code == 403
    assert dashboard_server.client.get(path).status_code == 401


def test_figures_missing_is_503(xss_store: SqliteStore, tmp_path: Path) -> None:
    settings = Settings(
        data=DataSettings(store_path=xss_store.path),
        auth=AuthSettings(identity_path=tmp_path / "identity.sqlite"),
    )
    assert not dashboard_path(xss_store.path).exists()
    with TestClient(create_app(settings, store=xss_store)) as client:
        analyst = log_in_staff(client, org_id="city", role=Role.ANALYST)
        response = client.get("/v1/analyst/coverage", headers=analyst.headers)

    assert response.status_code == 503
    detail = response.json()["detail"][0]
    assert "doorstep coverage dashboard" in detail["msg"]
    assert "doorstep coverage dashboard" in detail["msg_zh"]


def test_figures_reloaded_when_file_changes(dashboard_server: DashboardServer) -> None:
    client, analyst = dashboard_server.client, dashboard_server.analyst
    path = dashboard_path(client.app.state.settings.data.store_path)  # type: ignore[attr-defined]
    original = path.read_text(encoding="utf-8")
    figures = json.loads(original)
    figures["generated_at"] = "2026-01-02T03:04:05+00:00"
    try:
        write_dashboard(figures, path)
        body = client.get("/v1/analyst/coverage", headers=analyst.headers).json()
        assert body["generated_at"] == "2026-01-02T03:04:05+00:00"
    finally:
        path.write_text(original, encoding="utf-8")


def test_outdated_schema_is_503(dashboard_server: DashboardServer) -> None:
    client, analyst = dashboard_server.client, dashboard_server.analyst
    path = dashboard_path(client.app.state.settings.data.store_path)  # type: ignore[attr-defined]
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text('{"schema_version": 0}', encoding="utf-8")
        response = client.get("/v1/analyst/coverage", headers=analyst.headers)
        assert response.status_code == 503
        assert "schema version" in response.json()["detail"][0]["msg"]
    finally:
        path.write_text(original, encoding="utf-8")
