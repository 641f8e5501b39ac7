"""Assistance officers over HTTP on both stores: scope, match lists, the 131 ledger, Excel."""

import io
import secrets
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook
from pydantic import SecretStr

from api.app import create_app
from api.settings import AuthSettings, CacheSettings, DataSettings, Settings
from matching.assistance import service_day
from store.identity import CITY_ORG_ID, Role
from store.postgres import Pool, PostgresStore
from store.sqlite import SqliteStore, write_store
from tests.api.assistance_fixtures import (
    BEILIN,
    YANTA,
    plaintext_seekers,
    store_inputs,
    yanta_targets,
)
from tests.api.staff_login import StaffLogin, log_in_staff
from tests.store.conftest import make_database, pg_pool, pg_url

# The PostgreSQL fixtures come from tests/store/conftest.py.
__all__ = ["make_database", "pg_pool", "pg_url"]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TABLES = ("assistance_visits", "service_131_recommendations", "assistance_targets")


class Officers:
    """The logged-in accounts of one app: two Yanta officers, a station clerk, an analyst."""

    def __init__(self, client: TestClient) -> None:
        self.first = log_in_staff(client, f"district:{YANTA}", role=Role.ASSISTANCE_OFFICER)
        self.second = log_in_staff(client, f"district:{YANTA}", role=Role.ASSISTANCE_OFFICER)
        self.beilin = log_in_staff(client, f"district:{BEILIN}", role=Role.ASSISTANCE_OFFICER)
        self.clerk = log_in_staff(client, f"district:{YANTA}", role=Role.STATION_STAFF)
        self.analyst = log_in_staff(client, CITY_ORG_ID, role=Role.ANALYST)


@pytest.fixture(scope="module")
def seekers(data_dir: Path) -> pd.DataFrame:
    return plaintext_seekers(data_dir)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def app_client(
    request: pytest.FixtureRequest,
    data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    seekers: pd.DataFrame,
) -> Iterator[tuple[TestClient, Officers]]:
    """One client per store kind with the assistance fixture store, and its accounts."""
    tmp = tmp_path_factory.mktemp(f"officer-{request.param}")
    inputs = store_inputs(seekers)
    if request.param == "sqlite":
        write_store(tmp / "store.sqlite", **inputs)
        store: Any = SqliteStore(tmp / "store.sqlite")
    else:
        pool: Pool = request.getfixturevalue("pg_pool")
        with pool.connection() as connection:
            connection.execute("DELETE FROM anchor_history")
            connection.execute("DELETE FROM anchors")
        store = PostgresStore(pool)
        store.replace_all(**inputs)
    settings = Settings(
        data=DataSettings(data_dir=data_dir, store_path=tmp / "unused.sqlite", transit_model=False),
        cache=CacheSettings(rate_limit_per_minute=0),
        auth=AuthSettings(
            staff_token_secret=SecretStr(secrets.token_hex(32)),
            identity_path=tmp / "identity.sqlite",
        ),
    )
    with TestClient(create_app(settings, store=store)) as client:
        yield client, Officers(client)


@pytest.fixture
def client(app_client: tuple[TestClient, Officers]) -> TestClient:
    """The module's client with empty assistance tables."""
    test_client = app_client[0]
    store = test_client.app.state.store  # type: ignore[attr-defined]
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as connection:
            for table in TABLES:
                connection.execute(f"DELETE FROM {table}")  # constant names
    else:
        with store.pool.connection() as connection:
            for table in TABLES:
                connection.execute(f"DELETE FROM {table}")  # type: ignore[arg-type]
    return test_client


@pytest.fixture
def officers(app_client: tuple[TestClient, Officers]) -> Officers:
    return app_client[1]


@pytest.fixture
def targets(seekers: pd.DataFrame) -> list[str]:
    return [str(seeker_id) for seeker_id in yanta_targets(seekers)["seeker_id"]]


def _assign(client: TestClient, by: StaffLogin, seeker_id: str, officer: StaffLogin) -> Any:
    return client.post(
        "/v1/assistance/targets",
        json={"seeker_id": seeker_id, "officer_id": officer.account_id},
        headers=by.headers,
    )


def _guide(client: TestClient, officer: StaffLogin, seeker_id: str) -> None:
    response = client.post(
        f"/v1/assistance/targets/{seeker_id}/guidance",
        json={"topic": "career_plan"},
        headers=officer.headers,
    )
    assert response.status_code == 200, response.text


def _sign(client: TestClient, officer: StaffLogin, seeker_id: str, postings: list[str]) -> Any:
    return client.post(
        f"/v1/assistance/targets/{seeker_id}/recommendations",
        json={"posting_ids": postings},
        headers=officer.headers,
    )


def _audit_actions(client: TestClient) -> list[tuple[str, str, str]]:
    store = client.app.state.store  # type: ignore[attr-defined]
    return [(r.entry.action, r.entry.result, r.entry.object_id) for r in store.audit_records()]


def _proposals(client: TestClient, officer: StaffLogin) -> dict[str, list[str]]:
    response = client.get("/v1/assistance/match-list", headers=officer.headers)
    assert response.status_code == 200, response.text
    return {
        item["seeker_id"]: [m["posting_id"] for m in item["matches"] if m["proposed"]]
        for item in response.json()["targets"]
    }


def test_assign_and_list(client: TestClient, officers: Officers, targets: list[str]) -> None:
    for seeker_id in targets:
        assert _assign(client, officers.first, seeker_id, officers.first).status_code == 201

    response = client.get("/v1/assistance/targets", headers=officers.first.headers)

    assert response.status_code == 200
    body = response.json()
    assert [item["seeker_id"] for item in body] == sorted(targets)
    assert all("*" in item["name"] for item in body)
    assert all(item["category_label"] for item in body)
    assert all(item["simulated"] for item in body)
    assert ("assistance.assign", "ok", f"seeker:{targets[0]}") in _audit_actions(client)


def test_other_officer_sees_404(client: TestClient, officers: Officers, targets: list[str]) -> None:
    _assign(client, officers.first, targets[0], officers.first)
    headers = officers.second.headers

    missing = client.get("/v1/assistance/targets/sim-999999", headers=headers)
    other = client.get(f"/v1/assistance/targets/{targets[0]}", headers=headers)
    write = client.post(
        f"/v1/assistance/targets/{targets[0]}/guidance", json={"topic": "policy"}, headers=headers
    )

    assert other.status_code == 404
    assert write.status_code == 404
    assert other.json()["detail"][0]["msg"] == missing.json()["detail"][0]["msg"].replace(
        "sim-999999", targets[0]
    )
    assert client.get("/v1/assistance/targets", headers=headers).json() == []
    assert ("assistance.guidance", "denied", f"seeker:{targets[0]}") in _audit_actions(client)


def test_other_officers_target_not_taken(
    client: TestClient, officers: Officers, targets: list[str]
) -> None:
    assert _assign(client, officers.first, targets[0], officers.first).status_code == 201

    taken = _assign(client, officers.second, targets[0], officers.second)

    assert taken.status_code == 409
    assert [t["seeker_id"] for t in client.get(
        "/v1/assistance/targets", headers=officers.first.headers
    ).json()].count(targets[0]) == 1  # fmt: skip
    assert client.get("/v1/assistance/targets", headers=officers.second.headers).json() == []


def test_rule_errors_name_body_field(
    client: TestClient, officers: Officers, targets: list[str]
) -> None:
    _assign(client, officers.first, targets[0], officers.first)
    topic = client.post(
        f"/v1/assistance/targets/{targets[0]}/guidance",
        json={"topic": "张三 13800138000"},
        headers=officers.first.headers,
    )
    _guide(client, officers.first, targets[0])
    posting = str(client.app.state.recommender.postings["posting_id"].iloc[0])  # type: ignore[attr-defined]

    repeated = _sign(client, officers.first, targets[0], [posting, posting])

    assert topic.status_code == 422
    assert topic.json()["detail"][0]["loc"] == ["body", "topic"]
    assert "13800138000" not in topic.text
    assert repeated.status_code == 422
    assert repeated.json()["detail"][0]["loc"] == ["body", "posting_ids"]


def test_assign_other_org_seeker_404(
    client: TestClient, officers: Officers, targets: list[str]
) -> None:
    response = _assign(client, officers.beilin, targets[0], officers.beilin)

    assert response.status_code == 404
    assert "not found" in response.json()["detail"][0]["msg"]


def test_assign_to_clerk_rejected(
    client: TestClient, officers: Officers, targets: list[str]
) -> None:
    response = _assign(client, officers.first, targets[0], officers.clerk)

    assert response.status_code == 422
    assert "assistance_officer role" in response.json()["detail"][0]["msg"]


def test_assign_to_other_district_officer_404(
    client: TestClient, officers: Officers, targets: list[str]
) -> None:
    response = _assign(client, officers.first, targets[0], officers.beilin)

    assert response.status_code == 404


def test_analyst_cannot_use_ledger(client: TestClient, officers: Officers) -> None:
    assert client.get("/v1/assistance/targets", headers=officers.analyst.headers).status_code == 403


def test_match_list_respects_headcount(
    client: TestClient, officers: Officers, targets: list[str]
) -> None:
    for seeker_id in targets:
        _assign(client, officers.first, seeker_id, officers.first)

    proposals = _proposals(client, officers.first)

    # Six postings of one vacancy each for three targets wanting three each.
    chosen = [posting for postings in proposals.values() for posting in postings]
    assert len(chosen) == 6
    assert len(set(chosen)) == 6
    assert all(len(postings) <= 3 for postings in proposals.values())


def test_match_list_counts_other_officers(
    client: TestClient, officers: Officers, targets: list[str]
) -> None:
    _assign(client, officers.first, targets[0], officers.first)
    _assign(client, officers.first, targets[1], officers.first)
    _assign(client, officers.first, targets[2], officers.second)
    _guide(client, officers.second, targets[2])
    assert (
        _sign(client, officers.second, targets[2], ["job-0", "job-1", "job-2"]).status_code == 200
    )

    proposals = _proposals(client, officers.first)

    chosen = [posting for postings in proposals.values() for posting in postings]
    assert sorted(chosen) == ["job-3", "job-4", "job-5"]


def test_sign_off_full_posting_409(
    client: TestClient, officers: Officers, targets: list[str]
) -> None:
    _assign(client, officers.first, targets[0], officers.first)
    _assign(client, officers.first, targets[1], officers.second)
    _guide(client, officers.first, targets[0])
    _guide(client, officers.second, targets[1])
    assert _sign(client, officers.second, targets[1], ["job-0"]).status_code == 200

    response = _sign(client, officers.first, targets[0], ["job-3", "job-0"])

    assert response.status_code == 409
    assert "no vacancy left" in response.json()["detail"][0]["msg"]
    assert response.json()["detail"][0]["msg_zh"] == "该岗位名额已满，请选择其他岗位"
    detail = client.get(f"/v1/assistance/targets/{targets[0]}", headers=officers.first.headers)
    assert detail.json()["recommendations"] == []
    actions = _audit_actions(client)
    assert any(a == "assistance.sign_off" and r == "conflict" for a, r, _ in actions)


def test_sign_off_unknown_posting_422(
    client: TestClient, officers: Officers, targets: list[str]
) -> None:
    _assign(client, officers.first, targets[0], officers.first)
    _guide(client, officers.first, targets[0])

    response = _sign(client, officers.first, targets[0], ["job-404"])

    assert response.status_code == 422
    assert "job-404" in response.json()["detail"][0]["msg"]


def test_full_131_and_completion(
    client: TestClient, officers: Officers, targets: list[str]
) -> None:
    seeker_id = targets[0]
    headers = officers.first.headers
    _assign(client, officers.first, seeker_id, officers.first)
    _assign(client, officers.first, targets[1], officers.first)
    _guide(client, officers.first, seeker_id)
    proposed = _proposals(client, officers.first)[seeker_id]
    assert _sign(client, officers.first, seeker_id, proposed).status_code == 200
    for posting_id in proposed:
        path = f"/v1/assistance/targets/{seeker_id}/recommendations/{posting_id}/state"
        assert client.post(path, json={"state": "delivered"}, headers=headers).status_code == 200
    bad = client.post(path, json={"state": "hired"}, headers=headers)
    institutions = client.get(f"/v1/assistance/targets/{seeker_id}/institutions", headers=headers)
    offer = client.post(
        f"/v1/assistance/targets/{seeker_id}/training",
        json={"institution_id": institutions.json()[0]["institution_id"]},
        headers=headers,
    )

    assert bad.status_code == 422
    assert "cannot move to 'hired'" in bad.json()["detail"][0]["msg"]
    assert institutions.json()[0]["institution_id"] == "uidnear01"
    assert offer.status_code == 200
    assert offer.json()["complete"] is True
    report = client.get("/v1/analytics/assistance/completion", headers=officers.analyst.headers)
    assert report.status_code == 200
    by_officer = report.json()["by_officer"]
    assert by_officer == [
        {"key": officers.first.account_id, "targets": 2, "completed": 1, "rate": 0.5}
    ]
    assert report.json()["by_district"][0]["key"] == YANTA
    assert client.get("/v1/analytics/assistance/completion", headers=headers).status_code == 403


def test_due_visits(client: TestClient, officers: Officers, targets: list[str]) -> None:
    seeker_id = targets[0]
    headers = officers.first.headers
    _assign(client, officers.first, seeker_id, officers.first)
    _guide(client, officers.first, seeker_id)
    _sign(client, officers.first, seeker_id, ["job-0"])
    path = f"/v1/assistance/targets/{seeker_id}/recommendations/job-0/state"
    client.post(path, json={"state": "delivered"}, headers=headers)
    today = service_day(datetime.now(UTC)).isoformat()

    scheduled = client.post(
        f"/v1/assistance/targets/{seeker_id}/visits", json={"due_on": today}, headers=headers
    )
    due = client.get("/v1/assistance/visits/due", headers=headers).json()
    past = client.post(
        f"/v1/assistance/targets/{seeker_id}/visits", json={"due_on": "2020-01-01"}, headers=headers
    )

    assert scheduled.status_code == 201
    assert [visit["visit_id"] for visit in due] == [scheduled.json()["visit_id"]]
    assert past.status_code == 422
    detail = client.get(f"/v1/assistance/targets/{seeker_id}", headers=headers).json()
    assert {visit["reason"] for visit in detail["visits"]} == {"delivery", "scheduled"}
    done = client.post(
        f"/v1/assistance/targets/{seeker_id}/visits/{scheduled.json()['visit_id']}/done",
        headers=headers,
    )
    assert done.status_code == 200
    assert client.get("/v1/assistance/visits/due", headers=headers).json() == []


def _sheet_rows(data: bytes, title: str) -> list[list[Any]]:
    sheet = load_workbook(io.BytesIO(data))[title]
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


def test_export_unmasked_and_masked(
    client: TestClient, officers: Officers, targets: list[str], seekers: pd.DataFrame
) -> None:
    seeker = seekers.set_index("seeker_id").loc[targets[0]]
    _assign(client, officers.first, targets[0], officers.first)

    plain = client.get("/v1/assistance/export.xlsx", headers=officers.first.headers)
    masked = client.get("/v1/assistance/export.xlsx?masked=true", headers=officers.first.headers)

    assert plain.status_code == 200
    assert plain.headers["content-type"] == XLSX
    ledger = _sheet_rows(plain.content, "131台账")
    assert ledger[0][:5] == ["求职者编号", "模拟数据", "姓名", "手机号", "援助类别"]
    assert ledger[1][2] == seeker["name"]
    assert ledger[1][3] == seeker["mobile"]
    masked_ledger = _sheet_rows(masked.content, "131台账")
    assert masked_ledger[1][2] != seeker["name"]
    assert masked_ledger[1][3] == f"{seeker['mobile'][:3]}****{seeker['mobile'][-4:]}"
    assert masked_ledger[1][4] == "已隐藏"
    assert seeker["name"].encode() not in masked.content
    matches = _sheet_rows(plain.content, "匹配清单")
    assert matches[0][:3] == ["求职者编号", "模拟数据", "姓名"]
    assert {row[1] for row in matches[1:]} == {"是"}
    assert len(matches) == 1 + 6  # three proposals and three alternatives of one target
    actions = [action for action, _, _ in _audit_actions(client)]
    assert "assistance.export.unmasked" in actions
    assert "assistance.export" in actions


def _upload(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["求职者编号", "援助员账号", "援助类别"])
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _import(client: TestClient, officer: StaffLogin, data: bytes, commit: bool) -> Any:
    return client.post(
        f"/v1/assistance/imports?commit={str(commit).lower()}",
        content=data,
        headers={**officer.headers, "Content-Type": XLSX},
    )


def test_import_dry_run_reports_rows(
    client: TestClient, officers: Officers, targets: list[str], seekers: pd.DataFrame
) -> None:
    beilin = seekers[seekers["home_district_code"] == BEILIN]["seeker_id"].iloc[0]
    in_yanta = seekers[seekers["home_district_code"] == YANTA]["seeker_id"]
    other = in_yanta[~in_yanta.isin(targets)].iloc[0]
    data = _upload(
        [
            [targets[0], officers.first.account_id, "残疾人"],
            [targets[1], None, None],
            [targets[2], officers.first.account_id, "秘密类别X"],
            [beilin, officers.first.account_id, None],
            [targets[0], officers.first.account_id, None],
            [other, officers.clerk.account_id, "残疾人"],
        ]
    )

    dry = _import(client, officers.first, data, commit=False)
    committed = _import(client, officers.first, data, commit=True)

    assert dry.status_code == 200
    issues = [(i["row"], i["column"]) for i in dry.json()["issues"]]
    assert issues == [
        (3, "援助员账号"),
        (4, "援助类别"),
        (5, "求职者编号"),
        (6, "求职者编号"),
        (7, "援助员账号"),
    ]
    assert "秘密类别X" not in dry.text
    assert str(beilin) not in dry.text
    assert dry.json()["committed"] is False
    assert committed.status_code == 422
    assert client.get("/v1/assistance/targets", headers=officers.first.headers).json() == []


def test_import_commit_writes(client: TestClient, officers: Officers, targets: list[str]) -> None:
    data = _upload([[seeker_id, officers.first.account_id, None] for seeker_id in targets])

    dry = _import(client, officers.first, data, commit=False)
    committed = _import(client, officers.first, data, commit=True)

    assert dry.json() == {"rows": 3, "valid_rows": 3, "committed": False, "issues": []}
    assert committed.status_code == 200
    assert committed.json()["committed"] is True
    listed = client.get("/v1/assistance/targets", headers=officers.first.headers).json()
    assert [item["seeker_id"] for item in listed] == sorted(targets)
    assert ("assistance.import", "ok", "import:3 targets") in _audit_actions(client)


def test_import_not_xlsx(client: TestClient, officers: Officers) -> None:
    response = _import(client, officers.first, b"not a workbook", commit=False)

    assert response.status_code == 422
    assert "not a readable .xlsx" in response.json()["detail"][0]["msg"]
    assert ("assistance.import", "rejected", "import") in _audit_actions(client)


def test_seeker_erasure_removes_target(
    client: TestClient, officers: Officers, targets: list[str]
) -> None:
    _assign(client, officers.first, targets[0], officers.first)
    _guide(client, officers.first, targets[0])
    store = client.app.state.assistance_store  # type: ignore[attr-defined]

    erased = client.delete(f"/v1/seekers/{targets[0]}", headers=officers.first.headers)

    assert erased.status_code == 200, erased.text
    assert "assistance" in [item["name"] for item in erased.json()["erasers"]]
    assert store.target(targets[0]) is None
