"""GET /v1/route and the itineraries that recommendations carry."""

import pytest
from fastapi.testclient import TestClient

from geo.crs import CoordSys, from_wgs84
from geo.transit import TransitNetwork
from tests.api.staff_login import city_officer

XIAOZHAI = "108.9472,34.2230"
BEIDAJIE = "108.9466,34.2785"


def test_route_minutes_and_legs(real_client: TestClient, transit_network: TransitNetwork) -> None:
    response = real_client.get("/v1/route", params={"from": XIAOZHAI, "to": BEIDAJIE})

    assert response.status_code == 200
    body = response.json()
    trip = transit_network.route((108.9472, 34.2230), (108.9466, 34.2785), "walk;transit")
    assert body["minutes"] == pytest.approx(trip.minutes, abs=0.05)
    assert body["mode"] == trip.mode
    assert body["text"] == trip.text("zh")
    assert [leg["kind"] for leg in body["legs"]] == [leg.kind.value for leg in trip.legs]
    assert sum(leg["minutes"] for leg in body["legs"]) == pytest.approx(body["minutes"], abs=0.3)
    assert body["modes"] == ["walk", "transit"]


def test_route_in_english_by_bike(real_client: TestClient) -> None:
    params = {"from": XIAOZHAI, "to": BEIDAJIE, "modes": "bike", "lang": "en"}

    body = real_client.get("/v1/route", params=params).json()

    assert body["mode"] in {"walk", "bike"}
    assert body["text"].startswith(("Cycle", "Walk"))
    assert body["modes"] == ["walk", "bike"]


def test_route_in_gcj02(real_client: TestClient) -> None:
    wgs = real_client.get("/v1/route", params={"from": XIAOZHAI, "to": BEIDAJIE}).json()
    # GCJ-02 is a few hundred metres off WGS84 in Xi'an; these are the same two points.
    start = from_wgs84(108.9472, 34.2230, CoordSys.GCJ02)
    end = from_wgs84(108.9466, 34.2785, CoordSys.GCJ02)
    params = {
        "from": f"{start[0]},{start[1]}",
        "to": f"{end[0]},{end[1]}",
        "coord_sys": "gcj02",
    }

    gcj = real_client.get("/v1/route", params=params).json()

    assert gcj["minutes"] == pytest.approx(wgs["minutes"], abs=0.1)


@pytest.mark.parametrize(
    ("params", "field", "type_"),
    [
        ({"to": BEIDAJIE}, "from", "missing"),
        ({"from": "abc", "to": BEIDAJIE}, "from", "QueryLimitError"),
        ({"from": XIAOZHAI, "to": "108.9"}, "to", "QueryLimitError"),
        ({"from": XIAOZHAI, "to": "nan,34.2"}, "to", "QueryLimitError"),
        ({"from": "34.2230,108.9472", "to": BEIDAJIE}, "from", "InvalidCoordinateError"),
        ({"from": "0,0", "to": BEIDAJIE}, "from", "InvalidCoordinateError"),
        ({"from": "116.39,39.9", "to": BEIDAJIE}, "from", "InvalidCoordinateError"),
        ({"from": "200,34.2", "to": BEIDAJIE}, "from", "InvalidCoordinateError"),
        ({"from": XIAOZHAI, "to": "108.9,95"}, "to", "InvalidCoordinateError"),
        ({"from": XIAOZHAI, "to": BEIDAJIE, "modes": "plane"}, "modes", "InvalidTravelModeError"),
        ({"from": XIAOZHAI, "to": BEIDAJIE, "modes": ";"}, "modes", "InvalidTravelModeError"),
        (
            {"from": XIAOZHAI, "to": BEIDAJIE, "coord_sys": "utm"},
            "coord_sys",
            "UnknownCoordSysError",
        ),
        ({"from": XIAOZHAI, "to": BEIDAJIE, "lang": "fr"}, "lang", "string_pattern_mismatch"),
    ],
)
def test_route_rejects_invalid_input(
    real_client: TestClient, params: dict[str, str], field: str, type_: str
) -> None:
    response = real_client.get("/v1/route", params=params)

    assert response.status_code == 422
    (detail,) = [item for item in response.json()["detail"] if item["loc"][-1] == field]
    assert detail["type"] == type_
    assert detail["msg_zh"]
    assert "abc" not in detail["msg_zh"]


def test_recommendations_carry_itineraries(
    real_client: TestClient, transit_network: TransitNetwork
) -> None:
    recommender = real_client.app.state.recommender  # type: ignore[attr-defined]
    seeker = recommender.seeker("sim-000002")
    home = (float(seeker["home_lon"]), float(seeker["home_lat"]))

    body = real_client.get(
        "/v1/seekers/sim-000002/recommendations",
        params={"limit": 20},
        headers=city_officer(real_client),
    ).json()

    routed = [item for item in body["items"] if item["itinerary"]]
    assert routed
    for item in body["items"]:
        if item["approximate"] or item["precision"] == "city":
            assert item["itinerary"] is None
    for item in routed:
        trip = transit_network.route(home, (item["lon"], item["lat"]), seeker["modes"])
        assert item["itinerary"] == trip.text("zh")
        assert item["commute_mode"] == trip.mode
        assert item["estimated_commute_min"] == pytest.approx(trip.minutes, abs=1e-3)
