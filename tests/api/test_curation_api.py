"""The staff curation API on both stores: scope, optimistic locking, validation, merges, imports.

Each case runs against a small SQLite store written in the test and against the
PostgreSQL test database, both holding the store contract's anchors and postings
(four anchors in 雁塔区 610113). Rules use the real district polygons, zones and
GB/T 4754 codes from the data folder.
"""

import io
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from pydantic import SecretStr
from stdnum.cn import uscc

from api.app import create_app
from api.settings import AuthSettings, CacheSettings, DataSettings, Settings
from geo.crs import CoordSys, from_wgs84, to_wgs84
from store.sqlite import SqliteStore, write_store
from tests.api.staff_login import reuse_staff_login
from tests.store.conftest import make_database, pg_pool, pg_store, pg_url
from tests.store.test_contract import _inputs

# The PostgreSQL fixtures live in tests/store/conftest.py; importing them here lends
# them to this module as well.
__all__ = ["make_database", "pg_pool", "pg_store", "pg_url"]

SECRET = secrets.token_hex(32)
YANTA_POINT = (108.9480, 34.2230)  # inside 雁塔区 610113, about 1.7 km east of anc-c
ANC_A_ENTRANCE = (108.9005, 34.2003)  # WGS84, about 60 m north-east of anc-a's pin
ANC_A_STOP = (108.9020, 34.2010)  # WGS84, about 220 m north-east of anc-a's pin
BELL_TOWER = (108.9402, 34.2600)  # inside 碑林区 610103


def _credit_code(first17: str) -> str:
    return first17 + uscc.calc_check_digit(first17)


# The client fixture fills these with the headers and account ids of real staff sessions
# on its app (雁塔区 and 碑林区), because every client has a new identity store.
YANTA: dict[str, str] = {}
BEILIN: dict[str, str] = {}
STAFF_IDS: dict[str, str] = {}


def _store_inputs() -> dict[str, Any]:
    """The store contract's inputs, with the pay columns that /v1/jobs/nearby explains."""
    inputs = _inputs()
    postings = inputs["postings"]
    inputs["postings"] = postings.assign(salary_max_month=postings["salary_min_month"] + 1000)
    return inputs


@pytest.fixture(scope="module")
def identity_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite identity file for the module, so its staff sessions are reused."""
    return tmp_path_factory.mktemp("identity") / "identity.sqlite"


@pytest.fixture(params=["sqlite", "postgres"])
def client(
    request: pytest.FixtureRequest, data_dir: Path, tmp_path: Path, identity_path: Path
) -> Iterator[TestClient]:
    """A client on each store in turn, holding the contract inputs."""
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite"
        write_store(path, **_store_inputs())
        store: Any = SqliteStore(path)
    else:
        store = request.getfixturevalue("pg_store")
        store.replace_all(**_store_inputs())

    settings = Settings(
        data=DataSettings(data_dir=data_dir, store_path=tmp_path / "unused.sqlite"),
        cache=CacheSettings(rate_limit_per_minute=0),
        auth=AuthSettings(staff_token_secret=SecretStr(SECRET), identity_path=identity_path),
    )
    with TestClient(create_app(settings, store=store)) as test_client:
        for name, headers, org_id in (
            ("yanta", YANTA, "district:610113"),
            ("beilin", BEILIN, "district:610103"),
        ):
            staff = reuse_staff_login(test_client, org_id, name)
            headers.clear()
            headers.update(staff.headers)
            STAFF_IDS[name] = staff.account_id
        yield test_client


def _anchor(client: TestClient, anchor_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/staff/anchors/{anchor_id}", headers=YANTA)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _patch(
    client: TestClient,
    anchor_id: str,
    version: int,
    headers: dict[str, str] = YANTA,
    **changes: Any,
) -> Any:
    body = {"expected_version": version, "reason": "现场核实", "changes": changes}
    return client.patch(f"/v1/staff/anchors/{anchor_id}", json=body, headers=headers)


# --- identity and reads ------------------------------------------------------------------


def test_me_names_districts(client: TestClient) -> None:
    response = client.get("/v1/staff/me", headers=YANTA)

    assert response.status_code == 200
    assert response.json() == {
        "staff_id": STAFF_IDS["yanta"],
        "org": "雁塔区就业服务中心",
        "filing_org": None,
        "districts": [{"code": "610113", "name": "雁塔区"}],
        "zones": [],
    }


def test_missing_token_is_401(client: TestClient) -> None:
    response = client.get("/v1/staff/anchors")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "令牌" in response.json()["detail"][0]["msg_zh"]


def test_list_anchors_in_scope(client: TestClient) -> None:
    response = client.get("/v1/staff/anchors", headers=YANTA)

    body = response.json()
    assert response.status_code == 200
    assert body["total"] == 4
    assert [item["anchor_id"] for item in body["items"]] == ["anc-B", "anc-a", "anc-c", "anc-edge"]
    first = body["items"][0]
    assert first["district_name"] == "雁塔区"
    assert first["state_label"] == "草稿"
    assert first["n_postings"] == 2


def test_list_filters_and_pages(client: TestClient) -> None:
    named = client.get("/v1/staff/anchors", params={"q": "丙"}, headers=YANTA).json()
    paged = client.get("/v1/staff/anchors", params={"limit": 1, "offset": 1}, headers=YANTA)
    verified = client.get("/v1/staff/anchors", params={"state": "verified"}, headers=YANTA)

    assert [item["anchor_id"] for item in named["items"]] == ["anc-c"]
    assert named["total"] == 1
    assert [item["anchor_id"] for item in paged.json()["items"]] == ["anc-a"]
    assert paged.json()["total"] == 4
    assert verified.json() == {"items": [], "total": 0}


def test_list_converts_to_gcj02(client: TestClient) -> None:
    wgs = client.get("/v1/staff/anchors", params={"q": "甲"}, headers=YANTA).json()
    gcj = client.get(
        "/v1/staff/anchors", params={"q": "甲", "coord_sys": "gcj02"}, headers=YANTA
    ).json()

    assert wgs["items"][0]["lon"] == pytest.approx(108.90)
    # GCJ-02 shifts Xi'an by a few hundred metres, mostly to the east.
    assert gcj["items"][0]["lon"] - wgs["items"][0]["lon"] > 0.003


def test_other_district_sees_404(client: TestClient) -> None:
    missing = client.get("/v1/staff/anchors/anc-none", headers=BEILIN)
    foreign = client.get("/v1/staff/anchors/anc-a", headers=BEILIN)
    patched = _patch(client, "anc-a", 1, headers=BEILIN, address="碑林区某路")

    assert foreign.status_code == 404
    assert patched.status_code == 404
    assert foreign.json()["detail"][0]["msg_zh"] == "未找到"
    assert missing.status_code == 404
    assert client.get("/v1/staff/anchors", headers=BEILIN).json()["total"] == 0


# --- edits -------------------------------------------------------------------------------


def test_patch_writes_history(client: TestClient) -> None:
    response = _patch(client, "anc-a", 1, address="雁塔区科技路 1 号", contact_role="人事部")

    body = response.json()
    assert response.status_code == 200, response.text
    assert body["anchor"]["version"] == 2
    assert body["anchor"]["address"] == "雁塔区科技路 1 号"
    assert body["version"]["actor"] == STAFF_IDS["yanta"]
    assert body["version"]["at"].endswith("+00:00")
    assert {item["field"] for item in body["version"]["changes"]} == {"address", "contact_role"}
    history = _anchor(client, "anc-a")["history"]
    assert [entry["version"] for entry in history] == [2]


def test_same_version_twice_is_409(client: TestClient) -> None:
    first = _patch(client, "anc-a", 1, address="雁塔区科技路 1 号")
    second = _patch(client, "anc-a", 1, address="雁塔区科技路 2 号")

    assert first.status_code == 200
    assert second.status_code == 409
    assert second.json()["detail"][0]["current_version"] == 2
    assert _anchor(client, "anc-a")["anchor"]["address"] == "雁塔区科技路 1 号"


@pytest.mark.parametrize("version", [True, 1.0, "1"], ids=["bool", "float", "string"])
def test_version_not_integer_is_422(client: TestClient, version: Any) -> None:
    body = {"expected_version": version, "reason": "现场核实", "changes": {"address": "x 路"}}
    response = client.patch("/v1/staff/anchors/anc-a", json=body, headers=YANTA)

    assert response.status_code == 422
    assert _anchor(client, "anc-a")["anchor"]["version"] == 1


def test_invalid_fields_listed_in_chinese(client: TestClient) -> None:
    response = _patch(
        client,
        "anc-a",
        1,
        credit_code="91610113MA6TXXXX01",
        contact_phone="13812345678",
        lon=BELL_TOWER[0],
        lat=BELL_TOWER[1],
        district_code="610113",
    )

    assert response.status_code == 422
    errors = {item["field"]: item for item in response.json()["detail"][0]["errors"]}
    assert set(errors) >= {"credit_code", "contact_phone"}
    assert errors["contact_phone"]["msg_zh"] == "联系电话须为单位电话，不能填写手机号码"
    assert "校验位" in errors["credit_code"]["msg_zh"]
    pin_errors = [
        item
        for item in response.json()["detail"][0]["errors"]
        if item["rule"] == "outside_district"
    ]
    assert len(pin_errors) == 1
    assert "雁塔区" in pin_errors[0]["msg_zh"]
    assert _anchor(client, "anc-a")["anchor"]["version"] == 1


def test_field_errors_mask_personal_numbers(client: TestClient) -> None:
    # Numbers typed into the wrong field: a mobile as a shift, an ID number as a credit
    # code and as the expected version.
    mobile, id_number = "13912345678", "610103199001011234"
    response = _patch(client, "anc-a", 1, shift_times=[mobile], credit_code=id_number)
    stale = _patch(client, "anc-a", int(id_number), address="雁塔区科技路 3 号")

    assert response.status_code == 422
    assert stale.status_code == 422
    rules = {item["field"]: item["rule"] for item in response.json()["detail"][0]["errors"]}
    assert rules["shift_times"] == "shift_format"
    for body in (response.text, stale.text):
        assert mobile not in body
        assert id_number not in body
    assert _anchor(client, "anc-a")["anchor"]["version"] == 1


def test_pin_move_out_of_scope_is_422(client: TestClient) -> None:
    response = _patch(
        client, "anc-a", 1, lon=BELL_TOWER[0], lat=BELL_TOWER[1], district_code="610103"
    )

    assert response.status_code == 422
    assert [item["rule"] for item in response.json()["detail"][0]["errors"]] == ["out_of_scope"]


def test_pin_move_refreshes_nearby(client: TestClient) -> None:
    query = {"lon": YANTA_POINT[0], "lat": YANTA_POINT[1], "radius_m": 300}
    before = client.get("/v1/jobs/nearby", params=query).json()

    response = _patch(client, "anc-c", 1, lon=YANTA_POINT[0], lat=YANTA_POINT[1])
    after = client.get("/v1/jobs/nearby", params=query).json()

    assert response.status_code == 200, response.text
    assert response.json()["anchor"]["precision"] == "exact"
    assert before["total"] == 0
    assert after["total"] == 2
    assert {item["title"] for item in after["items"]} == {"司机", "保洁"}


# Every contract anchor but the city-level one lies inside this WGS84 box.
_MAP_BBOX = "108.85,34.15,109.05,34.35"


def _map_flags(client: TestClient, **filters: str) -> dict[str, tuple[bool, bool]]:
    """Return (key_enterprise, above_scale_industrial) of each anchor on the city map."""
    response = client.get("/v1/anchors", params={"bbox": _MAP_BBOX, **filters})
    assert response.status_code == 200, response.text
    assert response.json()["clustered"] is False
    return {
        f["properties"]["anchor_id"]: (
            f["properties"]["key_enterprise"],
            f["properties"]["above_scale_industrial"],
        )
        for f in response.json()["features"]
    }


def test_flag_edit_shows_on_map(client: TestClient) -> None:
    before = _map_flags(client)

    response = _patch(client, "anc-c", 1, key_enterprise=True, above_scale_industrial=True)
    after = _map_flags(client)

    assert response.status_code == 200, response.text
    assert response.json()["anchor"]["version"] == 2
    assert before["anc-c"] == (False, False)
    assert after["anc-c"] == (True, True)
    assert after["anc-a"] == (False, False)
    history = _anchor(client, "anc-c")["history"]
    assert [entry["version"] for entry in history] == [2]
    assert {item["field"] for item in history[0]["changes"]} == {
        "key_enterprise",
        "above_scale_industrial",
    }


def test_map_filters_by_flag(client: TestClient) -> None:
    assert _patch(client, "anc-c", 1, key_enterprise=True).status_code == 200
    assert _patch(client, "anc-a", 1, above_scale_industrial=True).status_code == 200

    key = _map_flags(client, key_enterprise="true")
    others = _map_flags(client, key_enterprise="false")
    above_scale = _map_flags(client, above_scale_industrial="true")
    unflag = _patch(client, "anc-c", 2, key_enterprise=False)
    after_unflag = _map_flags(client, key_enterprise="true")

    assert key == {"anc-c": (True, False)}
    assert sorted(others) == ["anc-B", "anc-a", "anc-edge"]
    assert above_scale == {"anc-a": (False, True)}
    assert unflag.status_code == 200, unflag.text
    assert after_unflag == {}


def test_map_flag_filter_is_validated(client: TestClient) -> None:
    response = client.get("/v1/anchors", params={"bbox": _MAP_BBOX, "key_enterprise": "maybe"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "key_enterprise"


def test_map_clusters_count_flags(client: TestClient) -> None:
    assert _patch(client, "anc-c", 1, key_enterprise=True).status_code == 200
    assert _patch(client, "anc-edge", 1, above_scale_industrial=True).status_code == 200
    # Five anchors in view, the city-level one included, exceed a limit of four.
    params = {"bbox": _MAP_BBOX, "include_city": "true"}

    app_settings = client.app.state.settings  # type: ignore[attr-defined]
    limit = app_settings.query.max_bbox_features
    app_settings.query.max_bbox_features = 4
    try:
        body = client.get("/v1/anchors", params=params).json()
    finally:
        app_settings.query.max_bbox_features = limit

    assert body["clustered"] is True
    assert sum(f["properties"]["n_key_enterprise"] for f in body["features"]) == 1
    assert sum(f["properties"]["n_above_scale_industrial"] for f in body["features"]) == 1


def _set_entrance_and_stop(client: TestClient) -> Any:
    return _patch(
        client,
        "anc-a",
        1,
        entrance_lon=ANC_A_ENTRANCE[0],
        entrance_lat=ANC_A_ENTRANCE[1],
        shuttle_stop={"name": "科技路站", "lon": ANC_A_STOP[0], "lat": ANC_A_STOP[1]},
    )


def test_anchor_without_entrance_is_null(client: TestClient) -> None:
    anchor = _anchor(client, "anc-a")["anchor"]

    assert anchor["entrance"] is None
    assert anchor["shuttle_stop"] is None


def test_entrance_in_wgs84_responses(client: TestClient) -> None:
    response = _set_entrance_and_stop(client)
    got = _anchor(client, "anc-a")["anchor"]

    assert response.status_code == 200, response.text
    for anchor in (response.json()["anchor"], got):
        assert anchor["entrance"] == pytest.approx(
            {"lon": ANC_A_ENTRANCE[0], "lat": ANC_A_ENTRANCE[1]}, abs=1e-9
        )
        assert anchor["shuttle_stop"] == pytest.approx(
            {"name": "科技路站", "lon": ANC_A_STOP[0], "lat": ANC_A_STOP[1]}, abs=1e-9
        )


def test_entrance_in_gcj02_get(client: TestClient) -> None:
    assert _set_entrance_and_stop(client).status_code == 200

    response = client.get("/v1/staff/anchors/anc-a", params={"coord_sys": "gcj02"}, headers=YANTA)
    listed = client.get(
        "/v1/staff/anchors", params={"q": "甲", "coord_sys": "gcj02"}, headers=YANTA
    )

    entrance = from_wgs84(*ANC_A_ENTRANCE, CoordSys.GCJ02)
    stop = from_wgs84(*ANC_A_STOP, CoordSys.GCJ02)
    for anchor in (response.json()["anchor"], listed.json()["items"][0]):
        assert anchor["entrance"] == pytest.approx({"lon": entrance[0], "lat": entrance[1]})
        assert anchor["shuttle_stop"]["lon"] == pytest.approx(stop[0])
        assert anchor["shuttle_stop"]["lat"] == pytest.approx(stop[1])
        # The GCJ-02 offset in Xi'an is a few hundred metres, mostly to the east.
        assert anchor["entrance"]["lon"] - ANC_A_ENTRANCE[0] > 0.003


def test_entrance_in_gcj02_patch(client: TestClient) -> None:
    entrance_gcj = from_wgs84(*ANC_A_ENTRANCE, CoordSys.GCJ02)
    body = {
        "expected_version": 1,
        "reason": "现场核实",
        "changes": {
            "coord_sys": "gcj02",
            "entrance_lon": entrance_gcj[0],
            "entrance_lat": entrance_gcj[1],
        },
    }

    response = client.patch(
        "/v1/staff/anchors/anc-a", params={"coord_sys": "gcj02"}, json=body, headers=YANTA
    )
    wgs = _anchor(client, "anc-a")["anchor"]

    assert response.status_code == 200, response.text
    anchor = response.json()["anchor"]
    assert anchor["entrance"] == pytest.approx(
        {"lon": entrance_gcj[0], "lat": entrance_gcj[1]}, abs=1e-6
    )
    assert anchor["lon"] == pytest.approx(from_wgs84(108.90, 34.20, CoordSys.GCJ02)[0])
    stored = to_wgs84(*entrance_gcj, CoordSys.GCJ02)
    assert wgs["entrance"] == pytest.approx({"lon": stored[0], "lat": stored[1]}, abs=1e-6)
    # History values stay as stored, in WGS84.
    changes = {item["field"]: item["new"] for item in response.json()["version"]["changes"]}
    assert changes["entrance_lon"] == pytest.approx(stored[0])


def test_clear_removes_entrance_and_stop(client: TestClient) -> None:
    assert _set_entrance_and_stop(client).status_code == 200

    response = _patch(client, "anc-a", 2, clear=["entrance", "shuttle_stop"])

    assert response.status_code == 200, response.text
    assert response.json()["anchor"]["entrance"] is None
    assert response.json()["anchor"]["shuttle_stop"] is None
    anchor = _anchor(client, "anc-a")["anchor"]
    assert anchor["entrance"] is None
    assert anchor["shuttle_stop"] is None
    changes = {item["field"] for item in response.json()["version"]["changes"]}
    assert changes == {"entrance_lon", "entrance_lat", "shuttle_stop"}


def test_create_anchor_in_scope(client: TestClient) -> None:
    body = {
        "name": "雁塔某科技有限公司",
        "lon": YANTA_POINT[0],
        "lat": YANTA_POINT[1],
        "reason": "站点新增",
        "details": {"contact_role": "人事部", "industry_code": "6513"},
    }
    response = client.post("/v1/staff/anchors", json=body, headers=YANTA)

    created = response.json()["anchor"]
    assert response.status_code == 201, response.text
    assert created["state"] == "draft"
    assert created["district_code"] == "610113"
    assert created["industry_name"]
    assert created["n_postings"] == 0
    assert _anchor(client, created["anchor_id"])["anchor"]["version"] == 1


# --- street and station staff: the anchors filed under their organisation ------------------

XIAOZHAI = "street:610113001"  # 小寨路街道, 雁塔区
DAYANTA = "street:610113002"  # 大雁塔街道, 雁塔区
XIAOZHAI_STATION = "station:610113001001"  # 长安大学社区, under 小寨路街道
NANYUANMEN = "street:610103001"  # 南院门街道, 碑林区


def _headers_of(client: TestClient, org_id: str) -> dict[str, str]:
    return reuse_staff_login(client, org_id, org_id.replace(":", "-")).headers


def test_street_staff_see_only_filed_anchors(client: TestClient) -> None:
    street = _headers_of(client, XIAOZHAI)

    before = client.get("/v1/staff/anchors", headers=street).json()
    hidden = client.get("/v1/staff/anchors/anc-a", headers=street)
    filed = _patch(client, "anc-a", 1, filed_org=XIAOZHAI)
    after = client.get("/v1/staff/anchors", headers=street).json()
    edited = _patch(client, "anc-a", 2, headers=street, address="小寨东路 1 号")

    assert before == {"items": [], "total": 0}
    assert hidden.status_code == 404
    assert filed.status_code == 200, filed.text
    assert filed.json()["anchor"]["filed_org"] == XIAOZHAI
    assert [item["anchor_id"] for item in after["items"]] == ["anc-a"]
    assert edited.status_code == 200, edited.text
    summary = client.get("/v1/staff/summary", headers=street).json()["items"]
    assert sum(item["n"] for item in summary) == 1


def test_station_staff_do_not_see_their_streets_other_anchors(client: TestClient) -> None:
    _patch(client, "anc-a", 1, filed_org=XIAOZHAI)
    _patch(client, "anc-c", 1, filed_org=XIAOZHAI_STATION)
    station = _headers_of(client, XIAOZHAI_STATION)
    street = _headers_of(client, XIAOZHAI)
    neighbour = _headers_of(client, DAYANTA)

    station_ids = [
        i["anchor_id"] for i in client.get("/v1/staff/anchors", headers=station).json()["items"]
    ]
    street_ids = [
        i["anchor_id"] for i in client.get("/v1/staff/anchors", headers=street).json()["items"]
    ]

    assert station_ids == ["anc-c"]
    assert street_ids == ["anc-a", "anc-c"]
    assert client.get("/v1/staff/anchors/anc-a", headers=station).status_code == 404
    assert client.get("/v1/staff/anchors/anc-c", headers=neighbour).status_code == 404
    assert _patch(client, "anc-c", 2, headers=neighbour, address="x").status_code == 404


def test_street_staff_file_new_anchors_under_their_street(client: TestClient) -> None:
    street = _headers_of(client, XIAOZHAI)
    body = {
        "name": "小寨某商贸有限公司",
        "lon": YANTA_POINT[0],
        "lat": YANTA_POINT[1],
        "reason": "街道新增",
    }

    response = client.post("/v1/staff/anchors", json=body, headers=street)
    me = client.get("/v1/staff/me", headers=street).json()

    created = response.json()["anchor"]
    assert response.status_code == 201, response.text
    assert created["filed_org"] == XIAOZHAI
    assert me["filing_org"] == XIAOZHAI
    hidden = client.get(
        f"/v1/staff/anchors/{created['anchor_id']}", headers=_headers_of(client, DAYANTA)
    )
    assert hidden.status_code == 404
    assert client.get(f"/v1/staff/anchors/{created['anchor_id']}", headers=YANTA).status_code == 200


def test_street_staff_cannot_clear_or_move_the_filing_away(client: TestClient) -> None:
    _patch(client, "anc-a", 1, filed_org=XIAOZHAI)
    street = _headers_of(client, XIAOZHAI)

    cleared = _patch(client, "anc-a", 2, headers=street, clear=["filed_org"])
    moved = _patch(client, "anc-a", 2, headers=street, filed_org=DAYANTA)

    assert cleared.status_code == 422
    assert cleared.json()["detail"][0]["errors"][0]["rule"] == "filing_required"
    assert moved.status_code == 422
    assert moved.json()["detail"][0]["errors"][0]["rule"] == "unknown_filing_org"
    assert _anchor(client, "anc-a")["anchor"]["filed_org"] == XIAOZHAI


def test_filing_outside_subtree_or_district_is_422(client: TestClient) -> None:
    foreign = _patch(client, "anc-a", 1, filed_org=NANYUANMEN)
    district_level = _patch(client, "anc-a", 1, filed_org="district:610113")
    city = _headers_of(client, "city")
    elsewhere = _patch(client, "anc-a", 1, headers=city, filed_org=NANYUANMEN)

    for response, rule in (
        (foreign, "unknown_filing_org"),
        (district_level, "unknown_filing_org"),
        (elsewhere, "filing_outside_district"),
    ):
        assert response.status_code == 422, response.text
        error = response.json()["detail"][0]["errors"][0]
        assert (error["field"], error["rule"]) == ("filed_org", rule)
    assert "碑林区" in elsewhere.json()["detail"][0]["errors"][0]["msg_zh"]
    assert _anchor(client, "anc-a")["anchor"]["version"] == 1


def test_create_outside_scope_is_422(client: TestClient) -> None:
    body = {"name": "碑林某公司", "lon": BELL_TOWER[0], "lat": BELL_TOWER[1], "reason": "新增"}
    response = client.post("/v1/staff/anchors", json=body, headers=YANTA)

    assert response.status_code == 422
    assert (
        response.json()["detail"][0]["errors"][0]["msg_zh"] == "坐标不在您负责的区县或开发区范围内"
    )


def _new_body(name: str = "雁塔幂等科技有限公司") -> dict[str, Any]:
    return {"name": name, "lon": YANTA_POINT[0], "lat": YANTA_POINT[1], "reason": "站点新增"}


def _keyed(key: str, headers: dict[str, str] = YANTA) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def _count_named(client: TestClient, name: str) -> int:
    response = client.get("/v1/staff/anchors", params={"q": name}, headers=YANTA)
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def test_create_retry_replays_anchor(client: TestClient) -> None:
    first = client.post("/v1/staff/anchors", json=_new_body(), headers=_keyed("retry-1"))
    retry = client.post("/v1/staff/anchors", json=_new_body(), headers=_keyed("retry-1"))

    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert retry.status_code == 201, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["anchor"]["anchor_id"] == first.json()["anchor"]["anchor_id"]
    assert retry.json()["version"] == first.json()["version"]
    assert _count_named(client, "雁塔幂等科技有限公司") == 1


def test_create_key_other_body_is_422(client: TestClient) -> None:
    first = client.post("/v1/staff/anchors", json=_new_body(), headers=_keyed("retry-1"))
    other = client.post(
        "/v1/staff/anchors", json=_new_body("雁塔另一家有限公司"), headers=_keyed("retry-1")
    )

    detail = other.json()["detail"][0]
    assert first.status_code == 201, first.text
    assert other.status_code == 422
    assert detail["loc"] == ["header", "Idempotency-Key"]
    assert detail["msg"] == "Idempotency-Key was used with a different request body"
    assert detail["msg_zh"] == "同一个 Idempotency-Key 不能用于不同的请求内容"
    assert _count_named(client, "雁塔另一家有限公司") == 0


def test_create_key_is_per_staff(client: TestClient) -> None:
    other_staff = reuse_staff_login(client, "district:610113", "yanta-2").headers
    first = client.post("/v1/staff/anchors", json=_new_body(), headers=_keyed("retry-1"))
    second = client.post(
        "/v1/staff/anchors", json=_new_body(), headers=_keyed("retry-1", other_staff)
    )

    assert second.status_code == 201, second.text
    assert "Idempotent-Replayed" not in second.headers
    assert second.json()["anchor"]["anchor_id"] != first.json()["anchor"]["anchor_id"]


@pytest.mark.parametrize("key", [b"", b"k" * 129, "键-1".encode(), b"tab\tkey"])
def test_create_invalid_key_is_422(client: TestClient, key: bytes) -> None:
    response = client.post(
        "/v1/staff/anchors",
        json=_new_body(),
        headers={
            b"Authorization": YANTA["Authorization"].encode(),
            b"X-Device-ID": YANTA["X-Device-ID"].encode(),
            b"Idempotency-Key": key,
        },
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert _count_named(client, "雁塔幂等科技有限公司") == 0


def test_create_longest_key_accepted(client: TestClient) -> None:
    response = client.post("/v1/staff/anchors", json=_new_body(), headers=_keyed("k" * 128))

    assert response.status_code == 201, response.text


def test_create_without_key_twice(client: TestClient) -> None:
    first = client.post("/v1/staff/anchors", json=_new_body(), headers=YANTA)
    second = client.post("/v1/staff/anchors", json=_new_body(), headers=YANTA)

    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert "Idempotent-Replayed" not in second.headers
    assert _count_named(client, "雁塔幂等科技有限公司") == 2


# --- duplicates, merges and the summary --------------------------------------------------


def test_duplicates_find_similar_name(client: TestClient) -> None:
    body = {"name": "丙公司", "lon": 108.9305, "lat": 34.2202, "reason": "站点新增"}
    created = client.post("/v1/staff/anchors", json=body, headers=YANTA)
    assert created.status_code == 201, created.text

    items = client.get("/v1/staff/duplicates", headers=YANTA).json()["items"]

    assert len(items) == 1
    pair = items[0]
    assert {pair["anchor_id_a"], pair["anchor_id_b"]} == {
        "anc-c",
        created.json()["anchor"]["anchor_id"],
    }
    assert pair["reason"] == "similar_name_nearby"
    assert pair["name_a"] == pair["name_b"] == "丙公司"
    assert 40 < pair["distance_m"] < 80
    assert client.get("/v1/staff/duplicates", headers=BEILIN).json()["items"] == []


def test_merge_moves_postings(client: TestClient) -> None:
    body = {
        "survivor_id": "anc-a",
        "merged_ids": ["anc-c"],
        "expected_versions": {"anc-c": 1},
        "reason": "同一单位",
    }
    response = client.post("/v1/staff/anchors/merge", json=body, headers=YANTA)

    assert response.status_code == 200, response.text
    assert response.json()["moved_postings"] == 2
    assert response.json()["survivor"]["n_postings"] == 3
    assert _anchor(client, "anc-c")["anchor"]["state"] == "retired"


def test_merge_foreign_anchor_is_404(client: TestClient) -> None:
    body = {
        "survivor_id": "anc-a",
        "merged_ids": ["anc-c"],
        "expected_versions": {"anc-c": 1},
        "reason": "同一单位",
    }
    response = client.post("/v1/staff/anchors/merge", json=body, headers=BEILIN)

    assert response.status_code == 404
    assert _anchor(client, "anc-c")["anchor"]["state"] == "draft"


def test_summary_counts_scope(client: TestClient) -> None:
    items = client.get("/v1/staff/summary", headers=YANTA).json()["items"]

    assert sum(item["n"] for item in items) == 4
    assert {item["district_name"] for item in items} == {"雁塔区"}
    assert client.get("/v1/staff/summary", headers=BEILIN).json()["items"] == []


# --- imports -----------------------------------------------------------------------------

_GOOD_ROW = ["雁塔导入科技有限公司", _credit_code("91610113MA6TYYYY0"), "108.9480", "34.2230"]
_BAD_ROW = ["导入错误公司", "91610113MA6TXXXX01", "34.2230", "108.9480"]
_HEADER = ["单位名称", "统一社会信用代码", "经度", "纬度"]


def _csv(*rows: list[str]) -> bytes:
    lines = [",".join(_HEADER), *(",".join(row) for row in rows)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _xlsx(*rows: list[str]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(_HEADER)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _upload(client: TestClient, name: str, content: bytes, *, dry_run: bool) -> Any:
    return client.post(
        "/v1/staff/imports",
        params={"dry_run": str(dry_run).lower(), "coord_sys": "wgs84"},
        files={"file": (name, content)},
        headers=YANTA,
    )


@pytest.mark.parametrize("name", ["anchors.csv", "anchors.xlsx"])
def test_import_dry_run_reports_rows(client: TestClient, name: str) -> None:
    content = _csv(_GOOD_ROW, _BAD_ROW) if name.endswith("csv") else _xlsx(_GOOD_ROW, _BAD_ROW)

    report = _upload(client, name, content, dry_run=True).json()

    assert report["ok"] is False
    assert report["accepted"] == 1
    assert {item["row"] for item in report["rejected"]} == {3}
    rules = {item["rule"] for item in report["rejected"]}
    assert "swapped_axes" in rules
    assert "check_digit" in rules
    assert all(item["reason_zh"] for item in report["rejected"])
    assert client.get("/v1/staff/anchors", headers=YANTA).json()["total"] == 4


def test_import_with_bad_rows_writes_nothing(client: TestClient) -> None:
    response = _upload(client, "anchors.csv", _csv(_GOOD_ROW, _BAD_ROW), dry_run=False)

    assert response.status_code == 422
    assert response.json()["accepted"] == 1
    assert client.get("/v1/staff/anchors", headers=YANTA).json()["total"] == 4


def test_import_clean_file_creates_anchors(client: TestClient) -> None:
    response = _upload(client, "anchors.xlsx", _xlsx(_GOOD_ROW), dry_run=False)

    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "accepted": 1, "rejected": []}
    found = client.get("/v1/staff/anchors", params={"q": "导入"}, headers=YANTA).json()
    assert [item["name"] for item in found["items"]] == ["雁塔导入科技有限公司"]
    assert found["items"][0]["state"] == "draft"


def test_import_rejects_other_types(client: TestClient) -> None:
    response = _upload(client, "anchors.json", b"[]", dry_run=True)

    assert response.status_code == 422
    assert ".csv or .xlsx" in response.json()["detail"][0]["msg"]


def test_import_rejects_large_file(client: TestClient) -> None:
    content = _csv(_GOOD_ROW) + b"#" * (2 * 1024 * 1024)
    response = _upload(client, "anchors.csv", content, dry_run=True)

    assert response.status_code == 422
    assert "larger than" in response.json()["detail"][0]["msg"]


def test_stats_follow_curation(client: TestClient) -> None:
    before = client.get("/v1/stats").json()
    anchor = _anchor(client, "anc-c")["anchor"]

    response = _patch(client, "anc-c", 1, lon=YANTA_POINT[0], lat=YANTA_POINT[1])
    after = client.get("/v1/stats").json()

    assert response.status_code == 200, response.text
    assert anchor["precision"] != "exact"
    assert after["anchors_by_precision"]["exact"] == before["anchors_by_precision"]["exact"] + 1
    assert after["anchors"] == before["anchors"]
    assert sum(after["anchors_by_state"].values()) == after["anchors"]
    assert after["postings_by_precision"]["exact"] > before["postings_by_precision"]["exact"]


def test_district_stats_count_every_anchor(client: TestClient) -> None:
    items = client.get("/v1/stats/districts").json()["items"]
    stats = client.get("/v1/stats").json()

    assert sum(item["n"] for item in items) == stats["anchors"]
    yanta = [item for item in items if item["district_code"] == "610113"]
    assert yanta
    assert {item["district_name"] for item in yanta} == {"雁塔区"}
    assert all(item["state_label"] for item in items)
    english = client.get("/v1/stats/districts", params={"lang": "en"}).json()["items"]
    assert all(item["state_label"].isascii() for item in english)


def test_filing_orgs_lists_the_subtree(client: TestClient) -> None:
    district = client.get("/v1/staff/filing-orgs", headers=YANTA).json()["items"]
    street = client.get("/v1/staff/filing-orgs", headers=_headers_of(client, XIAOZHAI)).json()
    station = client.get(
        "/v1/staff/filing-orgs", headers=_headers_of(client, XIAOZHAI_STATION)
    ).json()

    assert [item["org_id"] for item in district] == [XIAOZHAI, DAYANTA, XIAOZHAI_STATION]
    assert district[2] == {
        "org_id": XIAOZHAI_STATION,
        "name": "某社区就业服务站",
        "level": "station",
        "parent_id": XIAOZHAI,
        "district_code": "610113",
    }
    assert [item["org_id"] for item in street["items"]] == [XIAOZHAI, XIAOZHAI_STATION]
    assert [item["org_id"] for item in station["items"]] == [XIAOZHAI_STATION]
