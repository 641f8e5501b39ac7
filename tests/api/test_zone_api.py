"""Group zone and fairness routes over HTTP: permissions, scope, masking, audit, report."""

import json
import re
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli_app
from api.settings import AuthSettings, CacheSettings, DataSettings, ModelSettings, Settings
from matching.recommend import Recommender
from matching.seeker_simulation import generate_seekers
from matching.zones_graduates import graduate_universities, load_campuses
from store.identity import CITY_ORG_ID, Role
from store.sqlite import SqliteStore
from tests.api.staff_login import log_in_staff

YANTA = "610113"


@pytest.fixture(scope="module")
def store_copy(full_store: SqliteStore, tmp_path_factory: pytest.TempPathFactory) -> SqliteStore:
    """A private copy of the built test store, because these tests curate anchors."""
    path = tmp_path_factory.mktemp("zones") / "doorstep.sqlite"
    with sqlite3.connect(full_store.path) as source, sqlite3.connect(path) as target:
        source.backup(target)
    return SqliteStore(path)


@pytest.fixture(scope="module")
def client(
    store_copy: SqliteStore, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("zone-app")
    settings = Settings(
        data=DataSettings(data_dir=data_dir, store_path=store_copy.path, transit_model=False),
        cache=CacheSettings(rate_limit_per_minute=0),
        auth=AuthSettings(
            staff_token_secret=SecretStr(secrets.token_hex(32)),
            identity_path=folder / "identity.sqlite",
        ),
        model=ModelSettings(fairness_report_path=folder / "fairness.json"),
    )
    with TestClient(create_app(settings, store=store_copy)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def staff(client: TestClient) -> dict[str, str]:
    return log_in_staff(client, f"district:{YANTA}").headers


@pytest.fixture(scope="module")
def analyst(client: TestClient) -> dict[str, str]:
    return log_in_staff(client, CITY_ORG_ID, role=Role.ANALYST).headers


@pytest.fixture(scope="module")
def key_anchor(client: TestClient, staff: dict[str, str]) -> str:
    """An anchor in 雁塔区 with postings, curated by staff as a key enterprise."""
    recommender: Recommender = client.app.state.recommender  # type: ignore[attr-defined]
    counts = recommender.postings.loc[recommender.postings["district_code"] == YANTA]
    anchor_id = str(counts["anchor_id"].value_counts().index[0])
    detail = client.get(f"/v1/staff/anchors/{anchor_id}", headers=staff).json()
    body = {
        "expected_version": detail["anchor"]["version"],
        "reason": "区人社局重点企业名单",
        "changes": {"key_enterprise": True, "state": "pending_review"},
    }
    response = client.patch(f"/v1/staff/anchors/{anchor_id}", json=body, headers=staff)
    assert response.status_code == 200, response.text
    return anchor_id


def _recommender(client: TestClient) -> Recommender:
    recommender: Recommender = client.app.state.recommender  # type: ignore[attr-defined]
    return recommender


@pytest.fixture(scope="module")
def officer(client: TestClient) -> dict[str, str]:
    """A city-level assistance officer: holds pi.unmask for every seeker."""
    return log_in_staff(client, CITY_ORG_ID, role=Role.ASSISTANCE_OFFICER).headers


def _first(client: TestClient, group: str) -> str:
    seekers = _recommender(client).seekers
    return str(seekers.loc[seekers["group"] == group, "seeker_id"].iloc[0])


# --- graduate and talent zones -----------------------------------------------------------


def test_graduate_zone_lists_fitting_jobs(client: TestClient, officer: dict[str, str]) -> None:
    seeker_id = _first(client, "graduate")

    response = client.get(
        f"/v1/zones/graduates/{seeker_id}/jobs", params={"limit": 15}, headers=officer
    )

    body = response.json()
    assert response.status_code == 200, body
    assert body["simulated"] is True
    assert body["near"] == "home"
    assert 0 < len(body["items"]) <= 15
    for item in body["items"]:
        assert item["traineeship"] or item["major_fit"] or item["graduate_ok"]


@pytest.mark.parametrize(
    ("zone", "group", "action"),
    [("graduates", "graduate", "zone.graduate"), ("talent", "talent", "zone.talent")],
)
def test_seeker_zone_read_audited(
    client: TestClient, officer: dict[str, str], zone: str, group: str, action: str
) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    seeker_id = _first(client, group)
    head = store.audit_head()[0]

    found = client.get(f"/v1/zones/{zone}/{seeker_id}/jobs", headers=officer)
    missing = client.get(f"/v1/zones/{zone}/sim-999999/jobs", headers=officer)
    over_limit = client.get(
        f"/v1/zones/{zone}/{seeker_id}/jobs", params={"limit": 10_000}, headers=officer
    )

    assert found.status_code == 200, found.text
    assert missing.status_code == 404
    # The limit is checked before the seeker is read, so that request leaves no record.
    assert over_limit.status_code == 422
    records = [r for r in store.audit_records() if r.seq > head]
    outcomes = [(r.entry.action, r.entry.object_id, r.entry.result) for r in records]
    assert outcomes == [
        (action, f"seeker:{seeker_id}", "ok"),
        (action, "seeker:sim-999999", "rejected"),
    ]


def test_graduate_zone_near_campus(
    client: TestClient, officer: dict[str, str], data_dir: Path
) -> None:
    seekers = _recommender(client).seekers
    named = graduate_universities(seekers, load_campuses(data_dir))
    at_campus = seekers.loc[named != ""].iloc[0]
    off_campus = seekers.loc[(named == "") & (seekers["group"] == "graduate")].iloc[0]

    found = client.get(
        f"/v1/zones/graduates/{at_campus['seeker_id']}/jobs",
        params={"near": "campus"},
        headers=officer,
    )
    missing = client.get(
        f"/v1/zones/graduates/{off_campus['seeker_id']}/jobs",
        params={"near": "campus"},
        headers=officer,
    )

    assert found.status_code == 200
    assert found.json()["university"] == named[at_campus.name]
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"][-1] == "near"


def test_graduate_zone_rejects_other_groups(client: TestClient, officer: dict[str, str]) -> None:
    other = client.get(f"/v1/zones/graduates/{_first(client, 'general')}/jobs", headers=officer)
    unknown = client.get("/v1/zones/graduates/sim-999999/jobs", headers=officer)
    too_many = client.get(
        f"/v1/zones/graduates/{_first(client, 'graduate')}/jobs?limit=1000", headers=officer
    )

    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"][-1] == "seeker_id"
    assert unknown.status_code == 404
    assert too_many.status_code == 422


def test_talent_zone_qualifies_talent(client: TestClient, officer: dict[str, str]) -> None:
    talent = client.get(f"/v1/zones/talent/{_first(client, 'talent')}/jobs", headers=officer).json()
    seekers = _recommender(client).seekers
    low = seekers.loc[(seekers["group"] == "assistance") & (seekers["education"] <= 3)]
    other = client.get(f"/v1/zones/talent/{low['seeker_id'].iloc[0]}/jobs", headers=officer).json()

    assert talent["qualifies"] is True
    assert talent["items"]
    assert all(0.0 <= item["talent_score"] <= 1.0 for item in talent["items"])
    assert other["qualifies"] is False
    assert other["items"] == []


def test_seeker_zones_need_unmask_and_scope(client: TestClient, staff: dict[str, str]) -> None:
    seekers = _recommender(client).seekers
    graduate = seekers.loc[seekers["group"] == "graduate"]
    outside = str(graduate.loc[graduate["home_district_code"] != YANTA, "seeker_id"].iloc[0])
    yanta_officer = log_in_staff(client, f"district:{YANTA}", role=Role.ASSISTANCE_OFFICER)

    anonymous = client.get(f"/v1/zones/graduates/{outside}/jobs")
    station_staff = client.get(f"/v1/zones/graduates/{outside}/jobs", headers=staff)
    other_district = client.get(
        f"/v1/zones/graduates/{outside}/jobs", headers=yanta_officer.headers
    )

    assert anonymous.status_code == 401
    assert station_staff.status_code == 403
    assert other_district.status_code == 404


# --- university counts -------------------------------------------------------------------


def test_university_counts_for_analysts(client: TestClient, analyst: dict[str, str]) -> None:
    response = client.get("/v1/zones/graduates/universities", headers=analyst)

    body = response.json()
    assert response.status_code == 200
    assert body["simulated"] is True
    assert len(body["universities"]) == 63
    graduates = int((_recommender(client).seekers["group"] == "graduate").sum())
    total = sum(item["graduates"] for item in body["universities"])
    assert total + body["graduates_without_university"] == graduates
    districts = [d for item in body["universities"] for d in item["districts"]]
    assert districts
    assert all(d["district_name"] for d in districts)


def test_university_counts_need_analytics(client: TestClient, staff: dict[str, str]) -> None:
    assert client.get("/v1/zones/graduates/universities", headers=staff).status_code == 403
    assert client.get("/v1/zones/graduates/universities").status_code == 401


# --- key-enterprise zone -----------------------------------------------------------------


def test_enterprise_zone_lists_key_vacancies_first(
    client: TestClient, staff: dict[str, str], key_anchor: str
) -> None:
    response = client.get("/v1/zones/enterprises", params={"limit": 30}, headers=staff)

    body = response.json()
    assert response.status_code == 200
    assert [item["anchor_id"] for item in body["enterprises"]] == [key_anchor]
    assert body["enterprises"][0]["key_enterprise"] is True
    vacancies = body["enterprises"][0]["active_postings"]
    flags = [item["key_enterprise"] for item in body["items"]]
    assert flags == [True] * min(vacancies, 30) + [False] * (len(flags) - min(vacancies, 30))
    assert all(item["anchor_id"] == key_anchor for item in body["items"][: min(vacancies, 30)])


def test_enterprise_zone_out_of_district(client: TestClient, key_anchor: str) -> None:
    beilin = log_in_staff(client, "district:610103").headers

    listed = client.get("/v1/zones/enterprises", headers=beilin).json()
    seekers = client.get(f"/v1/zones/enterprises/{key_anchor}/seekers", headers=beilin)

    assert listed["enterprises"] == []
    assert seekers.status_code == 404


def test_enterprise_seekers_masked_scoped_audited(
    client: TestClient, staff: dict[str, str], key_anchor: str, data_dir: Path
) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    head = store.audit_head()[0]

    response = client.get(
        f"/v1/zones/enterprises/{key_anchor}/seekers", params={"limit": 20}, headers=staff
    )

    body = response.json()
    assert response.status_code == 200, body
    assert body["vacancies"] > 0
    assert body["items"], "no seeker of 雁塔区 suits the enterprise's posts"
    plaintext = generate_seekers(data_dir, 500, seed=7).set_index("seeker_id")
    for item in body["items"]:
        assert item["home_label"].startswith("雁塔区")
        assert re.fullmatch(r"1\d\d\*{4}\d{4}", item["mobile"])
        assert re.fullmatch(r".\*+", item["name"])
        truth = plaintext.loc[item["seeker_id"]]
        assert truth["mobile"] not in response.text
        assert truth["name"] not in response.text
    records = [r for r in store.audit_records() if r.seq > head]
    assert [r.entry.action for r in records] == ["zone.enterprise.seekers"]
    ids = ",".join(item["seeker_id"] for item in body["items"])
    assert records[0].entry.object_id == f"anchor:{key_anchor} seekers:{ids}"
    assert records[0].entry.result == "ok"


def test_enterprise_seekers_need_seeker_read(
    client: TestClient, analyst: dict[str, str], key_anchor: str
) -> None:
    denied = client.get(f"/v1/zones/enterprises/{key_anchor}/seekers", headers=analyst)

    assert denied.status_code == 403


def test_enterprise_seekers_unknown_anchor(client: TestClient, staff: dict[str, str]) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    head = store.audit_head()[0]

    response = client.get("/v1/zones/enterprises/anc-missing/seekers", headers=staff)

    assert response.status_code == 404
    records = [r for r in store.audit_records() if r.seq > head]
    outcomes = [(r.entry.action, r.entry.result) for r in records]
    assert outcomes == [("zone.enterprise.seekers", "rejected")]


# --- fairness report ---------------------------------------------------------------------


def test_fairness_report_route(
    client: TestClient, analyst: dict[str, str], staff: dict[str, str], store_copy: SqliteStore
) -> None:
    path: Path = client.app.state.settings.model.fairness_report_path  # type: ignore[attr-defined]
    before = client.get("/v1/analytics/fairness", headers=analyst)

    env = {
        "DOORSTEP_STORE_PATH": str(store_copy.path),
        "DOORSTEP_TRANSIT_MODEL": "false",
        "DOORSTEP_FAIRNESS_REPORT_PATH": str(path),
    }
    args = ["fairness", "--seekers", "4", "--check-seekers", "2", "--page-size", "5"]
    result = CliRunner().invoke(cli_app, args, env=env)
    after = client.get("/v1/analytics/fairness", headers=analyst)
    denied = client.get("/v1/analytics/fairness", headers=staff)

    assert before.status_code == 404
    assert "doorstep fairness" in before.json()["detail"][0]["msg"]
    assert result.exit_code == 0, result.output
    assert "no-drop check passed" in result.output
    body: dict[str, Any] = after.json()
    assert after.status_code == 200
    assert body == json.loads(path.read_text(encoding="utf-8"))
    assert body["simulated"] is True
    assert body["no_drop"]["passed"] is True
    assert body["options"]["seekers"] == 4
    assert body["run"]["machine"]["cpus"] >= 1
    assert len(pd.DataFrame(body["by_group"])) == 4
    assert denied.status_code == 403
