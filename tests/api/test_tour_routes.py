"""The recruitment-bus tour route on the real data store, with real staff sessions."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import AuthSettings, DataSettings, Settings
from api.tour_routes import MAX_SEEKERS
from store.identity import Role
from store.sqlite import SqliteStore
from tests.api.staff_login import StaffLogin, log_in_staff

YANTA = "610113"
DEPOT = {"lon": 108.9423, "lat": 34.2610}


@pytest.fixture(scope="module")
def tour_client(
    full_store: SqliteStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("tour")
    settings = Settings(
        data=DataSettings(store_path=full_store.path),
        auth=AuthSettings(identity_path=folder / "identity.sqlite"),
    )
    with TestClient(create_app(settings, store=full_store)) as client:
        yield client


@pytest.fixture(scope="module")
def yanta_staff(tour_client: TestClient) -> StaffLogin:
    return log_in_staff(tour_client, org_id=f"district:{YANTA}")


def _anchors_in(client: TestClient, district: str, count: int) -> list[str]:
    """Return the anchors of ``district`` with the most active postings."""
    postings = client.app.state.recommender.postings  # type: ignore[attr-defined]
    located = postings.loc[postings["district_code"].astype(str) == district]
    return list(located["anchor_id"].value_counts().index[:count].astype(str))


def _plan(client: TestClient, staff: StaffLogin, **changes: Any) -> Any:
    body = {
        "anchor_ids": _anchors_in(client, YANTA, 5),
        "depot": DEPOT,
        "budget_min": 480,
        "dwell_min": 30,
        "max_seekers": 60,
        **changes,
    }
    return client.post("/v1/tours/plan", json=body, headers=staff.headers)


def test_plan_returns_both_tours(tour_client: TestClient, yanta_staff: StaffLogin) -> None:
    response = _plan(tour_client, yanta_staff)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["simulated_seekers"] is True
    assert body["seekers_scored"] == 60
    assert body["seekers_in_scope"] >= 60
    assert [tour["method"] for tour in body["tours"]] == ["ortools", "nearest_neighbour"]
    ortools, greedy = body["tours"]
    assert ortools["seekers"] >= greedy["seekers"] > 0
    for tour in body["tours"]:
        assert tour["minutes"] <= 480
        assert sum(stop["seekers"] for stop in tour["stops"]) == tour["seekers"]
        assert all(stop["community_code"].startswith(YANTA) for stop in tour["stops"])


def test_depot_outside_xian_names_field(tour_client: TestClient, yanta_staff: StaffLogin) -> None:
    response = _plan(tour_client, yanta_staff, depot={"lon": 116.4, "lat": 39.9})

    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "depot"]
    assert "outside the Xi'an area" in detail["msg"]


def test_budget_over_limit_is_422(tour_client: TestClient, yanta_staff: StaffLogin) -> None:
    response = _plan(tour_client, yanta_staff, budget_min=2000)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "budget_min"


def test_budget_below_one_visit_is_422(tour_client: TestClient, yanta_staff: StaffLogin) -> None:
    response = _plan(tour_client, yanta_staff, budget_min=60, dwell_min=120, max_seekers=20)

    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"][-1] == "budget_min"
    assert "too short: the nearest stop needs" in detail["msg"]
    assert "时间预算" in detail["msg_zh"]


def test_other_district_anchor_rejected(tour_client: TestClient, yanta_staff: StaffLogin) -> None:
    beilin = _anchors_in(tour_client, "610103", 1)

    response = _plan(tour_client, yanta_staff, anchor_ids=beilin)

    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"][-1] == "anchor_ids"
    assert "1 anchors without active postings in your organisation's districts" in detail["msg"]


@pytest.mark.parametrize("anchor_ids", [[], ["x" * 65], ["anc-1"] * 21])
def test_anchor_list_limits(
    tour_client: TestClient, yanta_staff: StaffLogin, anchor_ids: list[str]
) -> None:
    response = _plan(tour_client, yanta_staff, anchor_ids=anchor_ids)

    assert response.status_code == 422
    assert "anchor_ids" in response.json()["detail"][0]["loc"]


def test_assistance_officer_forbidden(tour_client: TestClient) -> None:
    officer = log_in_staff(tour_client, org_id=f"district:{YANTA}", role=Role.ASSISTANCE_OFFICER)

    response = _plan(tour_client, officer)

    assert response.status_code == 403


def test_city_analyst_scope_is_tree(tour_client: TestClient) -> None:
    analyst = log_in_staff(tour_client, org_id="city", role=Role.ANALYST)
    app_state = tour_client.app.state  # type: ignore[attr-defined]
    districts = app_state.identity.store.subtree_district_codes("city")
    seekers = app_state.recommender.seekers
    expected = int(seekers["home_district_code"].astype(str).isin(districts).sum())

    response = _plan(tour_client, analyst, max_seekers=30)

    assert response.status_code == 200, response.text
    assert len(districts) > 1
    assert response.json()["seekers_in_scope"] == expected


def test_defaults_score_every_seeker_in_scope(
    tour_client: TestClient, yanta_staff: StaffLogin
) -> None:
    body = {"anchor_ids": _anchors_in(tour_client, YANTA, 5), "depot": DEPOT}

    tour = tour_client.post("/v1/tours/plan", json=body, headers=yanta_staff.headers)
    shuttle = tour_client.get("/v1/shuttles/proposals", headers=yanta_staff.headers)

    assert tour.status_code == 200, tour.text
    assert shuttle.status_code == 200, shuttle.text
    assert tour.json()["seekers_in_scope"] > 0
    assert tour.json()["seekers_scored"] == tour.json()["seekers_in_scope"]
    assert shuttle.json()["seekers_scored"] == shuttle.json()["seekers_in_scope"]


def test_shuttle_proposals_scoped(tour_client: TestClient, yanta_staff: StaffLogin) -> None:
    response = tour_client.get(
        "/v1/shuttles/proposals",
        params={"max_seekers": 15, "min_riders": 1},
        headers=yanta_staff.headers,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["simulated_seekers"] is True
    assert body["seekers_scored"] == 15
    assert sum(line["riders"] for line in body["lines"]) <= body["qualifying_matches"]
    for line in body["lines"]:
        assert line["home_districts"] == [YANTA]
        assert line["transit_min"] > 45
        assert line["shuttle_min"] <= 40


def test_shuttle_max_seekers_limit(tour_client: TestClient, yanta_staff: StaffLogin) -> None:
    response = tour_client.get(
        "/v1/shuttles/proposals",
        params={"max_seekers": MAX_SEEKERS + 1},
        headers=yanta_staff.headers,
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "max_seekers"
