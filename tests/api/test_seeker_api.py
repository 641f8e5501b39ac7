"""Seekers' personal information over HTTP, on both stores: masks, scope, audit, erasure."""

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.security.seeker_pi import seeker_codec
from api.settings import AuthSettings, CacheSettings, DataSettings, Settings
from matching.seeker_simulation import generate_seekers
from store.audit import AuditWriteError
from store.identity import Role
from store.sqlite import SqliteStore, write_store
from tests.api.staff_login import log_in_staff, reuse_staff_login
from tests.store.conftest import make_database, pg_pool, pg_store, pg_url
from tests.store.test_contract import _inputs

# The PostgreSQL fixtures come from tests/store/conftest.py.
__all__ = ["make_database", "pg_pool", "pg_store", "pg_url"]

SECRET = secrets.token_hex(32)
YANTA = "610113"
BEILIN = "610103"

# Officers' sessions by store kind, reused across the tests of the module.
_officers: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module")
def plaintext_seekers(data_dir: Path) -> pd.DataFrame:
    """200 simulated seekers with their plaintext personal fields."""
    return generate_seekers(data_dir, 200, seed=3)


@pytest.fixture(scope="module")
def identity_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("identity") / "identity.sqlite"


@pytest.fixture(params=["sqlite", "postgres"])
def client(
    request: pytest.FixtureRequest,
    data_dir: Path,
    tmp_path: Path,
    identity_path: Path,
    plaintext_seekers: pd.DataFrame,
) -> Iterator[TestClient]:
    """A client on each store in turn, holding the contract inputs and 200 seekers."""
    inputs = _inputs()
    # Recommendations need the columns that the contract's postings leave out.
    postings = inputs["postings"]
    inputs["postings"] = postings.assign(
        occupation_code="",
        occupation_name="",
        occupation_score=0.0,
        salary_max_month=postings["salary_min_month"] + 1000,
    )
    inputs["seekers"] = seeker_codec(Settings()).protect(plaintext_seekers)
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite"
        write_store(path, **inputs)
        store: Any = SqliteStore(path)
    else:
        store = request.getfixturevalue("pg_store")
        store.replace_all(**inputs)
    settings = Settings(
        data=DataSettings(data_dir=data_dir, store_path=tmp_path / "unused.sqlite"),
        cache=CacheSettings(rate_limit_per_minute=0),
        auth=AuthSettings(staff_token_secret=SecretStr(SECRET), identity_path=identity_path),
    )
    with TestClient(create_app(settings, store=store)) as test_client:
        yield test_client


def _staff(client: TestClient, district: str) -> dict[str, str]:
    return reuse_staff_login(client, f"district:{district}", f"staff-{district}").headers


def _officer(client: TestClient) -> dict[str, str]:
    key = client.app.state.store.describe()  # type: ignore[attr-defined]
    if key not in _officers:
        login = log_in_staff(client, f"district:{YANTA}", role=Role.ASSISTANCE_OFFICER)
        _officers[key] = login.headers
    return _officers[key]


def _seeker_in(seekers: pd.DataFrame, district: str, position: int = 0) -> pd.Series:
    return seekers.loc[seekers["home_district_code"] == district].iloc[position]


def _audit_after(client: TestClient, seq: int) -> list[Any]:
    store = client.app.state.store  # type: ignore[attr-defined]
    return [record for record in store.audit_records() if record.seq > seq]


def _head(client: TestClient) -> int:
    seq: int = client.app.state.store.audit_head()[0]  # type: ignore[attr-defined]
    return seq


def _plaintexts(seeker: pd.Series) -> list[str]:
    return [
        str(seeker["name"]),
        str(seeker["mobile"]),
        str(seeker["id_number"]),
        str(seeker["home_label"]),
    ]


def test_masked_read_formats(client: TestClient, plaintext_seekers: pd.DataFrame) -> None:
    seeker = _seeker_in(plaintext_seekers, YANTA)
    response = client.get(f"/v1/staff/seekers/{seeker['seeker_id']}", headers=_staff(client, YANTA))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["masked"] is True
    assert body["id_number"] == f"{seeker['id_number'][:6]}********{seeker['id_number'][-4:]}"
    assert body["mobile"] == f"{seeker['mobile'][:3]}****{seeker['mobile'][-4:]}"
    assert body["name"] == seeker["name"][0] + "*" * (len(seeker["name"]) - 1)
    assert body["home"]["lon"] is None
    assert body["home"]["place"] is None
    assert body["home"]["community_code"] == seeker["home_community_code"]
    assert body["home"]["label"].startswith("雁塔区")
    assert body["hardship_category"] is None


def test_masked_read_leaks_nothing(client: TestClient, plaintext_seekers: pd.DataFrame) -> None:
    seeker = _seeker_in(plaintext_seekers, YANTA, 1)
    response = client.get(f"/v1/staff/seekers/{seeker['seeker_id']}", headers=_staff(client, YANTA))

    assert response.status_code == 200
    for value in _plaintexts(seeker):
        assert value not in response.text


def test_read_is_audited_without_values(
    client: TestClient, plaintext_seekers: pd.DataFrame
) -> None:
    seeker = _seeker_in(plaintext_seekers, YANTA)
    headers = _staff(client, YANTA)
    before = _head(client)

    client.get(f"/v1/staff/seekers/{seeker['seeker_id']}", headers=headers)

    records = _audit_after(client, before)
    assert [(r.entry.action, r.entry.result) for r in records] == [("seeker.read", "ok")]
    assert records[0].entry.object_id == f"seeker:{seeker['seeker_id']}"
    text = json.dumps(records[0].entry.canonical_fields(), ensure_ascii=False)
    for value in _plaintexts(seeker):
        assert value not in text


def test_other_organisation_is_404(client: TestClient, plaintext_seekers: pd.DataFrame) -> None:
    seeker_id = str(_seeker_in(plaintext_seekers, BEILIN)["seeker_id"])
    headers = _staff(client, YANTA)
    before = _head(client)

    other = client.get(f"/v1/staff/seekers/{seeker_id}", headers=headers)
    missing = client.get("/v1/staff/seekers/sim-999999", headers=headers)

    assert other.status_code == 404
    assert other.text.replace(seeker_id, "ID") == missing.text.replace("sim-999999", "ID")
    results = [(r.entry.action, r.entry.result) for r in _audit_after(client, before)]
    assert results == [("seeker.read", "denied"), ("seeker.read", "rejected")]


def test_unmask_needs_permission(client: TestClient, plaintext_seekers: pd.DataFrame) -> None:
    seeker_id = str(_seeker_in(plaintext_seekers, YANTA)["seeker_id"])

    response = client.get(f"/v1/staff/seekers/{seeker_id}/unmasked", headers=_staff(client, YANTA))

    assert response.status_code == 403


def test_unmask_returns_plaintext(client: TestClient, plaintext_seekers: pd.DataFrame) -> None:
    seeker = _seeker_in(plaintext_seekers, YANTA)
    headers = _officer(client)
    before = _head(client)

    response = client.get(f"/v1/staff/seekers/{seeker['seeker_id']}/unmasked", headers=headers)

    body = response.json()
    assert response.status_code == 200, response.text
    assert body["masked"] is False
    assert body["name"] == seeker["name"]
    assert body["mobile"] == seeker["mobile"]
    assert body["id_number"] == seeker["id_number"]
    assert body["home"]["lon"] == pytest.approx(seeker["home_lon"])
    assert body["home"]["place"] == seeker["home_label"]
    assert (body["hardship_category"] or "") == seeker["hardship_category"]
    records = _audit_after(client, before)
    assert [(r.entry.action, r.entry.result) for r in records] == [("seeker.unmask", "ok")]


@pytest.mark.parametrize("field", ["id_number", "mobile"])
def test_lookup_by_blind_index(
    client: TestClient, plaintext_seekers: pd.DataFrame, field: str
) -> None:
    seeker = _seeker_in(plaintext_seekers, YANTA, 2)
    headers = _staff(client, YANTA)
    before = _head(client)

    response = client.post("/v1/staff/seekers/lookup", json={field: seeker[field]}, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["seeker_id"] == seeker["seeker_id"]
    assert seeker[field] not in response.text
    records = _audit_after(client, before)
    assert [(r.entry.action, r.entry.result) for r in records] == [("seeker.lookup", "ok")]
    assert f"{field}_index:" in records[0].entry.object_id
    assert seeker[field] not in records[0].entry.object_id


def test_lookup_other_organisation_404(client: TestClient, plaintext_seekers: pd.DataFrame) -> None:
    seeker = _seeker_in(plaintext_seekers, BEILIN)

    response = client.post(
        "/v1/staff/seekers/lookup",
        json={"mobile": seeker["mobile"]},
        headers=_staff(client, YANTA),
    )

    assert response.status_code == 404
    assert seeker["mobile"] not in response.text


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"id_number": "610103198605142310"}, ["body", "id_number"]),  # wrong check character
        ({"id_number": "61010319860514231"}, ["body", "id_number"]),  # 17 characters
        ({"mobile": "1380013800"}, ["body", "mobile"]),  # 10 digits
        ({"mobile": "13800138000", "id_number": "610103198605142314"}, ["body"]),  # both
        ({"mobile": "138001380001380013800138001380013800"}, ["body", "mobile"]),  # too long
        ({"phone": "13800138000"}, ["body", "phone"]),  # unknown field
    ],
)
def test_lookup_errors_never_echo(client: TestClient, body: dict[str, str], loc: list[str]) -> None:
    response = client.post("/v1/staff/seekers/lookup", json=body, headers=_staff(client, YANTA))

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc
    for value in body.values():
        assert value not in response.text


def test_seeker_lists_have_no_personal_fields(
    client: TestClient, plaintext_seekers: pd.DataFrame
) -> None:
    staff = client.get("/v1/seekers", params={"limit": 100}, headers=_staff(client, YANTA))
    picker = client.get("/v1/dev/seekers", params={"limit": 100})

    assert staff.status_code == 200
    assert picker.status_code == 200
    for _, seeker in plaintext_seekers.head(100).iterrows():
        for value in _plaintexts(seeker):
            assert value not in staff.text
            assert value not in picker.text


def test_recommendations_show_home_area(
    client: TestClient, plaintext_seekers: pd.DataFrame
) -> None:
    seeker = _seeker_in(plaintext_seekers, YANTA)

    response = client.get(
        f"/v1/seekers/{seeker['seeker_id']}/recommendations", headers=_officer(client)
    )

    home = response.json()["seeker"]["home"]
    assert response.status_code == 200
    assert home["lon"] == pytest.approx(seeker["home_area_lon"])
    assert home["lat"] == pytest.approx(seeker["home_area_lat"])
    assert seeker["home_label"] not in response.text


def test_delete_erases_everywhere(client: TestClient, plaintext_seekers: pd.DataFrame) -> None:
    seeker_id = str(_seeker_in(plaintext_seekers, YANTA, 3)["seeker_id"])
    recommendations = f"/v1/seekers/{seeker_id}/recommendations"
    assert client.get(recommendations, headers=_officer(client)).status_code == 200
    cache = client.app.state.cache  # type: ignore[attr-defined]
    cached_before = len(cache)
    pushes = client.app.state.push_store  # type: ignore[attr-defined]
    pushes.set_consent(seeker_id, consent=True, at=datetime.now(UTC))
    headers = _officer(client)
    before = _head(client)

    response = client.delete(f"/v1/seekers/{seeker_id}", headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["deleted_from_store"] is True
    assert response.json()["complete"] is True
    assert client.app.state.store.seeker_record(seeker_id) is None  # type: ignore[attr-defined]
    assert len(cache) == cached_before - 1
    assert pushes.consent(seeker_id) is None
    assert client.get(recommendations, headers=headers).status_code == 404
    records = _audit_after(client, before)
    assert [(r.entry.action, r.entry.result) for r in records] == [
        ("seeker.delete", "ok"),
        ("seeker.recommendations", "rejected"),
    ]


def test_delete_is_idempotent(client: TestClient, plaintext_seekers: pd.DataFrame) -> None:
    seeker_id = str(_seeker_in(plaintext_seekers, YANTA, 4)["seeker_id"])

    first = client.delete(f"/v1/seekers/{seeker_id}", headers=_officer(client))
    second = client.delete(f"/v1/seekers/{seeker_id}", headers=_officer(client))

    assert first.json()["deleted_from_store"] is True
    assert second.status_code == 200
    assert second.json()["deleted_from_store"] is False
    assert second.json()["complete"] is True


def test_delete_other_organisation_404(client: TestClient, plaintext_seekers: pd.DataFrame) -> None:
    seeker_id = str(_seeker_in(plaintext_seekers, BEILIN)["seeker_id"])

    response = client.delete(f"/v1/seekers/{seeker_id}", headers=_officer(client))

    assert response.status_code == 404
    assert client.app.state.store.seeker_record(seeker_id) is not None  # type: ignore[attr-defined]


def test_failing_eraser_is_reported(client: TestClient, plaintext_seekers: pd.DataFrame) -> None:
    seeker_id = str(_seeker_in(plaintext_seekers, YANTA, 5)["seeker_id"])
    erased: list[str] = []

    def broken_queue(seeker: str) -> None:
        raise ConnectionError("queue down")

    registry = client.app.state.erasers  # type: ignore[attr-defined]
    registry.register("push_queue", broken_queue)
    registry.register("audit_probe", erased.append)
    headers = _officer(client)
    before = _head(client)

    response = client.delete(f"/v1/seekers/{seeker_id}", headers=headers)

    body = response.json()
    assert response.status_code == 500
    assert body["complete"] is False
    assert {e["name"]: e["ok"] for e in body["erasers"]}["push_queue"] is False
    assert erased == [seeker_id]
    actions = [(r.entry.action, r.entry.result) for r in _audit_after(client, before)]
    assert actions == [("seeker.delete", "ok"), ("seeker.erase", "failed")]


def test_audit_failure_hides_values(
    client: TestClient, plaintext_seekers: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeker = _seeker_in(plaintext_seekers, YANTA)
    headers = _officer(client)
    store = client.app.state.store  # type: ignore[attr-defined]

    def fail(write: Any) -> int:
        raise AuditWriteError("operation log unavailable")

    monkeypatch.setattr(store, "append_audit", fail)
    response = client.get(f"/v1/staff/seekers/{seeker['seeker_id']}/unmasked", headers=headers)

    assert response.status_code == 503
    for value in _plaintexts(seeker):
        assert value not in response.text
