"""Operation-log records of the staff write routes, on both stores.

Every write leaves exactly one record, denied, rejected and failed calls
included, with the request id that the response returns.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.security.audit import REQUEST_ID_HEADER
from store.audit import StoredAudit
from store.sqlite import SqliteStore
from tests.api.test_curation_api import (
    BEILIN,
    STAFF_IDS,
    YANTA,
    YANTA_POINT,
    _patch,
    client,
    identity_path,
)
from tests.store.conftest import make_database, pg_pool, pg_store, pg_url

# The client fixture and the PostgreSQL fixtures it uses come from other modules.
__all__ = ["client", "identity_path", "make_database", "pg_pool", "pg_store", "pg_url"]


def _records_after(client: TestClient, seq: int) -> list[StoredAudit]:
    store = client.app.state.store  # type: ignore[attr-defined]
    return [record for record in store.audit_records() if record.seq > seq]


def _head(client: TestClient) -> int:
    seq: int = client.app.state.store.audit_head()[0]  # type: ignore[attr-defined]
    return seq


def _only_new(client: TestClient, before: int) -> StoredAudit:
    records = _records_after(client, before)
    assert len(records) == 1, records
    return records[0]


def _chain_ok(client: TestClient) -> bool:
    state: Any = client.app.state  # type: ignore[attr-defined]
    return bool(state.audit_chain.verify(state.store.audit_records(), state.store.audit_head()).ok)


def test_patch_recorded_once(client: TestClient) -> None:
    before = _head(client)
    body = {"expected_version": 1, "reason": "现场核实", "changes": {"address": "科技路 1 号"}}
    response = client.patch(
        "/v1/staff/anchors/anc-a", json=body, headers={**YANTA, REQUEST_ID_HEADER: "req-42"}
    )

    assert response.status_code == 200, response.text
    assert response.headers[REQUEST_ID_HEADER] == "req-42"
    entry = _only_new(client, before).entry
    assert entry.action == "anchor.update"
    assert entry.actor == STAFF_IDS["yanta"]
    assert entry.org == "雁塔区就业服务中心"
    assert entry.role == "station_staff"
    assert entry.object_id == "anchor:anc-a"
    assert (entry.result, entry.status_code) == ("ok", 200)
    assert entry.request_id == "req-42"
    assert entry.source == "testclient"
    assert _chain_ok(client)


def test_missing_token_recorded_as_denied(client: TestClient) -> None:
    before = _head(client)
    response = _patch(client, "anc-a", 1, headers={}, address="科技路 1 号")

    assert response.status_code == 401
    entry = _only_new(client, before).entry
    assert (entry.actor, entry.result, entry.status_code) == ("anonymous", "denied", 401)
    assert entry.object_id == "anchor:anc-a"


def test_other_organisation_recorded_as_denied(client: TestClient) -> None:
    before = _head(client)
    response = _patch(client, "anc-a", 1, headers=BEILIN, address="碑林区某路")

    assert response.status_code == 404
    entry = _only_new(client, before).entry
    assert (entry.actor, entry.result, entry.status_code) == (STAFF_IDS["beilin"], "denied", 404)


def test_missing_anchor_recorded_as_rejected(client: TestClient) -> None:
    before = _head(client)
    response = _patch(client, "anc-none", 1, address="科技路 1 号")

    assert response.status_code == 404
    entry = _only_new(client, before).entry
    assert (entry.result, entry.status_code) == ("rejected", 404)


def test_stale_edit_recorded_as_conflict(client: TestClient) -> None:
    before = _head(client)
    first = _patch(client, "anc-a", 1, address="科技路 1 号")
    second = _patch(client, "anc-a", 1, address="科技路 2 号")

    assert (first.status_code, second.status_code) == (200, 409)
    results = [(r.entry.result, r.entry.status_code) for r in _records_after(client, before)]
    assert results == [("ok", 200), ("conflict", 409)]
    assert _chain_ok(client)


def test_invalid_body_recorded_as_rejected(client: TestClient) -> None:
    before = _head(client)
    response = client.patch("/v1/staff/anchors/anc-a", json={"reason": "x"}, headers=YANTA)

    assert response.status_code == 422
    entry = _only_new(client, before).entry
    assert (entry.actor, entry.result, entry.status_code) == (STAFF_IDS["yanta"], "rejected", 422)


def test_create_recorded_with_201(client: TestClient) -> None:
    before = _head(client)
    body = {
        "name": "雁塔审计科技有限公司",
        "lon": YANTA_POINT[0],
        "lat": YANTA_POINT[1],
        "reason": "新增",
    }
    response = client.post("/v1/staff/anchors", json=body, headers=YANTA)

    assert response.status_code == 201, response.text
    entry = _only_new(client, before).entry
    assert entry.action == "anchor.create"
    assert entry.object_id == f"anchor:{response.json()['anchor']['anchor_id']}"
    assert (entry.result, entry.status_code) == ("ok", 201)


def test_reads_not_recorded(client: TestClient) -> None:
    before = _head(client)
    assert client.get("/v1/staff/anchors/anc-a", headers=YANTA).status_code == 200
    assert client.get("/v1/staff/anchors", headers=YANTA).status_code == 200
    assert _records_after(client, before) == []


def test_request_id_generated(client: TestClient) -> None:
    malformed = client.get("/v1/staff/me", headers={**YANTA, REQUEST_ID_HEADER: "bad id;"})
    absent = client.get("/v1/staff/me", headers=YANTA)

    for response in (malformed, absent):
        generated = response.headers[REQUEST_ID_HEADER]
        assert len(generated) == 32
        assert int(generated, 16) >= 0
    assert malformed.headers[REQUEST_ID_HEADER] != absent.headers[REQUEST_ID_HEADER]


@contextmanager
def _failing_audit_inserts(client: TestClient, request: pytest.FixtureRequest) -> Iterator[None]:
    """Make every insert into audit_log fail in the client's store, then undo it."""
    store = client.app.state.store  # type: ignore[attr-defined]
    if isinstance(store, SqliteStore):
        statements = (
            "CREATE TRIGGER audit_log_fail BEFORE INSERT ON audit_log"
            " BEGIN SELECT RAISE(ABORT, 'audit storage failed'); END",
            "DROP TRIGGER audit_log_fail",
        )
        with closing(sqlite3.connect(store.path, isolation_level=None)) as connection:
            connection.execute(statements[0])
            try:
                yield
            finally:
                connection.execute(statements[1])
        return

    url = request.getfixturevalue("pg_url")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "ALTER TABLE audit_log ADD CONSTRAINT audit_fail CHECK (false) NOT VALID"
        )
        try:
            yield
        finally:
            connection.execute("ALTER TABLE audit_log DROP CONSTRAINT audit_fail")


def test_failed_audit_refuses_write(client: TestClient, request: pytest.FixtureRequest) -> None:
    before = _head(client)
    with _failing_audit_inserts(client, request):
        response = _patch(client, "anc-a", 1, address="科技路 9 号")

    assert response.status_code == 503
    assert response.json()["detail"][0]["msg_zh"].startswith("操作日志暂不可用")
    assert _records_after(client, before) == []
    anchor = client.get("/v1/staff/anchors/anc-a", headers=YANTA).json()["anchor"]
    assert anchor["version"] == 1
    assert anchor["address"] != "科技路 9 号"
