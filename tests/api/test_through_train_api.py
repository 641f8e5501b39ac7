"""GET /v1/through-train: employers reachable from a community, grouped by route."""

import pytest
from fastapi.testclient import TestClient

from geo.transit import TransitNetwork
from matching.through_train import employer_sites

# Hu Yi community (胡一社区), placed at the 胡家庙街道 office POI.
HUYI = "610102009012"
XIAOZHAI = "108.9472,34.2230"


def test_community_reach_by_mode(real_client: TestClient, transit_network: TransitNetwork) -> None:
    params: dict[str, str | int] = {"community": HUYI, "minutes": 30, "modes": "walk;transit"}

    response = real_client.get("/v1/through-train", params=params)

    assert response.status_code == 200
    body = response.json()
    assert body["place"]["placed_by"] == "street_office"
    assert body["place"]["community_name"] == "胡一社区居民委员会"
    assert [mode["mode"] for mode in body["modes"]] == ["walk", "transit"]

    recommender = real_client.app.state.recommender  # type: ignore[attr-defined]
    sites = employer_sites(recommender.postings)
    place = (body["place"]["lon"], body["place"]["lat"])
    for mode in body["modes"]:
        minutes = transit_network.matrix(
            [place[0]], [place[1]], sites["lon"], sites["lat"], mode["mode"]
        )[0]
        assert mode["n_employers"] == int((minutes <= 30).sum())
        listed = [item for group in mode["groups"] for item in group["employers"]]
        assert len(listed) == min(100, mode["n_employers"])
        for item in listed:
            assert item["minutes"] <= 30.05
            assert item["text"]
            assert item["n_postings"] >= 1
    transit = body["modes"][1]
    assert transit["n_employers"] > 0
    keys = {group["key"] for group in transit["groups"]}
    assert any(key.startswith(("metro:", "bus:")) for key in keys)


def test_point_reach_in_english(real_client: TestClient) -> None:
    params: dict[str, str | int] = {
        "point": XIAOZHAI,
        "minutes": 20,
        "modes": "transit",
        "lang": "en",
        "limit": 5,
    }

    body = real_client.get("/v1/through-train", params=params).json()

    assert body["place"]["placed_by"] == "point"
    assert body["place"]["community_code"] is None
    (transit,) = body["modes"]
    listed = [item for group in transit["groups"] for item in group["employers"]]
    assert len(listed) <= 5
    assert transit["truncated"] == (transit["n_employers"] > 5)
    for group in transit["groups"]:
        assert group["label"].startswith(("Metro", "Bus", "On foot"))


@pytest.mark.parametrize(
    ("params", "field", "type_"),
    [
        ({}, "community", "QueryLimitError"),
        ({"community": HUYI, "point": XIAOZHAI}, "community", "QueryLimitError"),
        ({"community": "61010200901x"}, "community", "QueryLimitError"),
        ({"point": "abc"}, "point", "QueryLimitError"),
        ({"point": "0,0"}, "point", "InvalidCoordinateError"),
        ({"community": HUYI, "minutes": 4}, "minutes", "greater_than_equal"),
        ({"community": HUYI, "minutes": 121}, "minutes", "less_than_equal"),
        ({"community": HUYI, "limit": 501}, "limit", "less_than_equal"),
        ({"community": HUYI, "modes": "plane"}, "modes", "InvalidTravelModeError"),
    ],
)
def test_through_train_rejects_invalid_input(
    real_client: TestClient, params: dict[str, str], field: str, type_: str
) -> None:
    response = real_client.get("/v1/through-train", params=params)

    assert response.status_code == 422
    (detail,) = [item for item in response.json()["detail"] if item["loc"][-1] == field]
    assert detail["type"] == type_
    assert "abc" not in detail["msg"]


def test_unknown_community_is_not_found(real_client: TestClient) -> None:
    response = real_client.get("/v1/through-train", params={"community": "610102999999"})

    assert response.status_code == 404
