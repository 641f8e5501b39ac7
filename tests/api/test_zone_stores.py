"""The key-enterprise zone on both stores: curation flag, scope, masking and audit."""

import secrets
from collections.abc import Iterator
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
from store.sqlite import SqliteStore, write_store
from tests.api.staff_login import log_in_staff
from tests.store.conftest import make_database, pg_pool, pg_store, pg_url
from tests.store.test_contract import _inputs

# The PostgreSQL fixtures come from tests/store/conftest.py.
__all__ = ["make_database", "pg_pool", "pg_store", "pg_url"]

YANTA = "610113"
ANCHOR = "anc-c"


@pytest.fixture(scope="module")
def plaintext_seekers(data_dir: Path) -> pd.DataFrame:
    """200 simulated seekers with their plaintext personal fields."""
    return generate_seekers(data_dir, 200, seed=3)


@pytest.fixture(scope="module")
def target(plaintext_seekers: pd.DataFrame) -> pd.Series:
    """A 雁塔区 seeker whose home the key enterprise moves to, with a posting of their wish."""
    row: pd.Series = plaintext_seekers.loc[plaintext_seekers["home_district_code"] == YANTA].iloc[0]
    return row


@pytest.fixture(params=["sqlite", "postgres"])
def client(
    request: pytest.FixtureRequest,
    data_dir: Path,
    tmp_path: Path,
    plaintext_seekers: pd.DataFrame,
    target: pd.Series,
) -> Iterator[TestClient]:
    """A client on each store in turn: the contract inputs, 200 seekers, anc-c at a home."""
    inputs = _inputs()
    postings = inputs["postings"]
    inputs["postings"] = postings.assign(
        occupation_code=[
            target["occupation_wish_code"] if a == ANCHOR else "" for a in postings["anchor_id"]
        ],
        occupation_name="",
        occupation_score=0.9,
        salary_max_month=postings["salary_min_month"] + 1000,
    )
    anchors = inputs["anchors"]
    at_home = anchors["anchor_id"] == ANCHOR
    anchors.loc[at_home, "lon"] = float(target["home_lon"])
    anchors.loc[at_home, "lat"] = float(target["home_lat"])
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
        auth=AuthSettings(
            staff_token_secret=SecretStr(secrets.token_hex(32)),
            identity_path=tmp_path / "identity.sqlite",
        ),
    )
    with TestClient(create_app(settings, store=store)) as test_client:
        yield test_client


def _curate(client: TestClient, headers: dict[str, str]) -> None:
    detail = client.get(f"/v1/staff/anchors/{ANCHOR}", headers=headers).json()
    body = {
        "expected_version": detail["anchor"]["version"],
        "reason": "规上工业企业名录",
        "changes": {"above_scale_industrial": True, "state": "pending_review"},
    }
    response = client.patch(f"/v1/staff/anchors/{ANCHOR}", json=body, headers=headers)
    assert response.status_code == 200, response.text


def test_zone_empty_before_curation(client: TestClient) -> None:
    staff = log_in_staff(client, f"district:{YANTA}").headers

    listed = client.get("/v1/zones/enterprises", headers=staff).json()
    seekers = client.get(f"/v1/zones/enterprises/{ANCHOR}/seekers", headers=staff)

    assert listed["enterprises"] == []
    assert seekers.status_code == 404


def test_curated_enterprise_lists_seekers(client: TestClient, target: pd.Series) -> None:
    staff = log_in_staff(client, f"district:{YANTA}").headers
    _curate(client, staff)
    store = client.app.state.store  # type: ignore[attr-defined]
    head = store.audit_head()[0]

    listed = client.get("/v1/zones/enterprises", headers=staff).json()
    response = client.get(f"/v1/zones/enterprises/{ANCHOR}/seekers", headers=staff)

    assert [item["anchor_id"] for item in listed["enterprises"]] == [ANCHOR]
    assert listed["enterprises"][0]["above_scale_industrial"] is True
    assert [item["anchor_id"] for item in listed["items"][:2]] == [ANCHOR, ANCHOR]
    body = response.json()
    assert response.status_code == 200, body
    found = {item["seeker_id"]: item for item in body["items"]}
    assert target["seeker_id"] in found
    item = found[target["seeker_id"]]
    assert item["shared_levels"] == 4
    assert item["distance_km"] == 0.0
    assert item["name"] == target["name"][0] + "*" * (len(target["name"]) - 1)
    assert target["name"] not in response.text
    assert target["mobile"] not in response.text
    records = [r for r in store.audit_records() if r.seq > head]
    assert [r.entry.action for r in records] == ["zone.enterprise.seekers"]
    assert target["seeker_id"] in records[0].entry.object_id


def test_other_district_sees_nothing(client: TestClient) -> None:
    _curate(client, log_in_staff(client, f"district:{YANTA}").headers)
    other = log_in_staff(client, "district:610103").headers

    listed = client.get("/v1/zones/enterprises", headers=other).json()
    seekers = client.get(f"/v1/zones/enterprises/{ANCHOR}/seekers", headers=other)

    assert listed["enterprises"] == []
    assert seekers.status_code == 404
