"""Two service processes on one store: a posting or anchor change through one reaches the other.

Each case starts two applications on the same store (a SQLite file, or the PostgreSQL
test database), as two uvicorn workers would run. Staff write through the first; the
second applies the store's job-index change log (:class:`api.index_sync.IndexSync`).
"""

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from starlette.datastructures import State

from api.app import create_app
from api.index_sync import IndexSync
from api.settings import (
    AuthSettings,
    CacheSettings,
    DataSettings,
    PushSettings,
    ServerSettings,
    Settings,
)
from store.index_changes import IndexChange
from store.postgres import PostgresStore
from store.sqlite import SqliteStore, write_store
from tests.api.staff_login import reuse_staff_login
from tests.api.test_curation_api import SECRET, YANTA_POINT, _store_inputs
from tests.store.conftest import make_database, pg_pool, pg_store, pg_url

__all__ = ["make_database", "pg_pool", "pg_store", "pg_url"]

ANC_A = {"lon": 108.90, "lat": 34.20, "radius_m": 300}  # the pin of anc-a, which has p1


class Pair:
    """The writing and the reading application, and the writer's staff headers (雁塔区)."""

    def __init__(self, writer: TestClient, reader: TestClient, headers: dict[str, str]) -> None:
        self.writer = writer
        self.reader = reader
        self.headers = headers

    def set_active(self, posting_id: str, active: bool) -> None:
        response = self.writer.patch(
            f"/v1/staff/postings/{posting_id}", headers=self.headers, json={"active": active}
        )
        assert response.status_code == 200, response.text
        assert response.json()["changed"] is True

    def sync_reader(self) -> int:
        applied: int = self.reader.app.state.index_sync.catch_up()  # type: ignore[attr-defined]
        return applied


def _nearby(client: TestClient, query: dict[str, Any]) -> list[str]:
    response = client.get("/v1/jobs/nearby", params={**query, "page_size": 100})
    assert response.status_code == 200, response.text
    return [item["posting_id"] for item in response.json()["items"]]


def _loaded(client: TestClient) -> set[str]:
    postings = client.app.state.recommender.postings  # type: ignore[attr-defined]
    return set(postings["posting_id"].astype(str))


def _build_id(client: TestClient) -> str:
    build_id: str = client.app.state.build_id  # type: ignore[attr-defined]
    return build_id


@pytest.fixture(scope="module")
def identity_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite identity file for the module, so its staff sessions are reused."""
    return tmp_path_factory.mktemp("identity") / "identity.sqlite"


def _stores(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, Any]:
    """Two store objects on one store holding the contract inputs."""
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite"
        write_store(path, **_store_inputs())
        return SqliteStore(path), SqliteStore(path)
    store: PostgresStore = request.getfixturevalue("pg_store")
    store.replace_all(**_store_inputs())
    return store, PostgresStore(store.pool)


def _settings(data_dir: Path, tmp_path: Path, identity_path: Path, interval_s: float) -> Settings:
    return Settings(
        data=DataSettings(data_dir=data_dir, store_path=tmp_path / "unused.sqlite"),
        server=ServerSettings(index_sync_interval_s=interval_s),
        cache=CacheSettings(rate_limit_per_minute=0),
        auth=AuthSettings(staff_token_secret=SecretStr(SECRET), identity_path=identity_path),
        # The contract's seekers have no homes, so an activation could not fan out pushes.
        push=PushSettings(enabled=False),
    )


@pytest.fixture(params=["sqlite", "postgres"])
def pair(
    request: pytest.FixtureRequest, data_dir: Path, tmp_path: Path, identity_path: Path
) -> Iterator[Pair]:
    """Two applications on each store in turn; the background sync is off, tests sync."""
    first, second = _stores(request, tmp_path)
    settings = _settings(data_dir, tmp_path, identity_path, interval_s=0)
    with (
        TestClient(create_app(settings, store=first)) as writer,
        TestClient(create_app(settings, store=second)) as reader,
    ):
        staff = reuse_staff_login(writer, "district:610113", "yanta")
        yield Pair(writer, reader, staff.headers)


def test_deactivation_reaches_other_app(pair: Pair) -> None:
    assert "p1" in _nearby(pair.reader, ANC_A)  # also fills the reader's response cache

    pair.set_active("p1", False)

    assert "p1" not in _nearby(pair.writer, ANC_A)
    assert "p1" in _loaded(pair.reader)  # the reader has not synced yet
    assert pair.sync_reader() == 1
    assert "p1" not in _loaded(pair.reader)
    assert "p1" not in _nearby(pair.reader, ANC_A)
    # Both processes applied the same changes, so they share response-cache keys.
    assert _build_id(pair.reader) == _build_id(pair.writer)
    assert pair.sync_reader() == 0


def test_activation_reaches_other_app(pair: Pair) -> None:
    pair.set_active("p1", False)
    assert pair.sync_reader() == 1
    assert "p1" not in _nearby(pair.reader, ANC_A)

    pair.set_active("p1", True)

    assert "p1" in _nearby(pair.writer, ANC_A)
    assert pair.sync_reader() == 1
    assert "p1" in _loaded(pair.reader)
    assert "p1" in _nearby(pair.reader, ANC_A)
    assert _build_id(pair.reader) == _build_id(pair.writer)


def test_anchor_move_reaches_other_app(pair: Pair) -> None:
    moved_to = {"lon": YANTA_POINT[0], "lat": YANTA_POINT[1], "radius_m": 300}
    assert _nearby(pair.reader, moved_to) == []

    body = {
        "expected_version": 1,
        "reason": "现场核实",
        "changes": {"lon": YANTA_POINT[0], "lat": YANTA_POINT[1]},
    }
    response = pair.writer.patch("/v1/staff/anchors/anc-c", headers=pair.headers, json=body)
    assert response.status_code == 200, response.text

    assert sorted(_nearby(pair.writer, moved_to)) == ["p4", "p5"]
    assert pair.sync_reader() == 1
    assert sorted(_nearby(pair.reader, moved_to)) == ["p4", "p5"]
    assert _build_id(pair.reader) == _build_id(pair.writer)


def test_merge_reaches_other_app(pair: Pair) -> None:
    before = set(_nearby(pair.reader, ANC_A))
    body = {
        "survivor_id": "anc-a",
        "merged_ids": ["anc-c"],
        "expected_versions": {"anc-c": 1},
        "reason": "同一单位",
    }
    response = pair.writer.post("/v1/staff/anchors/merge", json=body, headers=pair.headers)
    assert response.status_code == 200, response.text

    merged = set(_nearby(pair.writer, ANC_A))
    assert merged == before | {"p4", "p5"}
    assert pair.sync_reader() == 1
    assert set(_nearby(pair.reader, ANC_A)) == merged
    assert _build_id(pair.reader) == _build_id(pair.writer)


def test_unmoved_anchor_edit_logs_nothing(pair: Pair) -> None:
    body = {"expected_version": 1, "reason": "现场核实", "changes": {"name": "丙公司（新址）"}}
    response = pair.writer.patch("/v1/staff/anchors/anc-c", headers=pair.headers, json=body)
    assert response.status_code == 200, response.text
    assert pair.sync_reader() == 0


def test_app_starts_after_stored_changes(
    data_dir: Path, tmp_path: Path, identity_path: Path
) -> None:
    path = tmp_path / "store.sqlite"
    write_store(path, **_store_inputs())
    assert SqliteStore(path).set_posting_active("p1", False)
    settings = _settings(data_dir, tmp_path, identity_path, interval_s=0)
    with TestClient(create_app(settings, store=SqliteStore(path))) as started:
        assert "p1" not in _loaded(started)
        assert started.app.state.index_sync.applied == 1  # type: ignore[attr-defined]
        assert _build_id(started).endswith("-c1")
        assert started.app.state.index_sync.catch_up() == 0  # type: ignore[attr-defined]


def test_background_sync_applies_change(
    data_dir: Path, tmp_path: Path, identity_path: Path
) -> None:
    path = tmp_path / "store.sqlite"
    write_store(path, **_store_inputs())
    settings = _settings(data_dir, tmp_path, identity_path, interval_s=0.05)
    with TestClient(create_app(settings, store=SqliteStore(path))) as reader:
        assert "p1" in _loaded(reader)
        assert SqliteStore(path).set_posting_active("p1", False)
        removed = threading.Event()
        for _ in range(200):  # up to 10 s on a loaded machine; the interval is 0.05 s
            if "p1" not in _loaded(reader):
                removed.set()
                break
            removed.wait(0.05)
        assert removed.is_set()
        assert _build_id(reader).endswith("-c1")


class _FlakyStore:
    """A change log of two posting changes whose second posting read fails once."""

    def __init__(self) -> None:
        self.changes = [IndexChange(1, "posting", "p1"), IndexChange(2, "posting", "p2")]
        self.failures_left = 1

    def index_changes_since(self, after: int, limit: int = 500) -> list[IndexChange]:
        return [change for change in self.changes if change.change_id > after][:limit]

    def latest_index_change(self) -> int:
        return self.changes[-1].change_id

    def posting_for_push(self, posting_id: str) -> dict[str, Any] | None:
        if posting_id == "p2" and self.failures_left:
            self.failures_left -= 1
            raise sqlite3.OperationalError("database is locked")
        return {"posting_id": posting_id, "active": False}

    def get_anchor(self, anchor_id: str) -> None:
        return None


class _Recommender:
    def __init__(self) -> None:
        self.removed: list[str] = []

    def set_posting_active(self, posting_id: str, active: bool, row: Any) -> bool:
        self.removed.append(posting_id)
        return True


def test_failed_sync_keeps_applied_build_id() -> None:
    state = State()
    state.store = _FlakyStore()
    state.recommender = _Recommender()
    sync = IndexSync(state, "base", start_after=0, interval_s=0)
    state.build_id = sync.build_id

    with pytest.raises(sqlite3.OperationalError):
        sync.catch_up()

    # p1 left the index, so responses cached before its change must not be served.
    assert state.recommender.removed == ["p1"]
    assert state.build_id == "base-c1"
    assert sync.catch_up() == 1
    assert state.build_id == "base-c2"


def test_later_write_of_other_process_wins(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process activates the posting between this one's commit and its refresh."""
    store = pair.writer.app.state.store  # type: ignore[attr-defined]
    write = store.set_posting_active

    def write_then_reactivate(posting_id: str, active: bool, **kwargs: Any) -> bool:
        changed: bool = write(posting_id, active, **kwargs)
        write(posting_id, not active)  # the other process's write, committed right after
        return changed

    monkeypatch.setattr(store, "set_posting_active", write_then_reactivate)
    pair.set_active("p1", False)

    assert store.posting_for_push("p1")["active"] in (1, True)
    assert "p1" in _loaded(pair.writer)
    assert "p1" in _nearby(pair.writer, ANC_A)


def test_anchor_move_keeps_later_move(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """The background sync applies this move, then another process's move, before the route."""
    store = pair.writer.app.state.store  # type: ignore[attr-defined]
    sync = pair.writer.app.state.index_sync  # type: ignore[attr-defined]
    save = store.save_anchor_change
    later = {"lon": 108.9300, "lat": 34.2100}  # in 雁塔区, away from both other points

    def save_then_moved_again(*args: Any, **kwargs: Any) -> None:
        save(*args, **kwargs)
        assert sync.catch_up() == 1
        body = {"expected_version": 2, "reason": "再次核实", "changes": later}
        moved = pair.reader.patch("/v1/staff/anchors/anc-c", headers=pair.headers, json=body)
        assert moved.status_code == 200, moved.text
        assert sync.catch_up() == 1

    monkeypatch.setattr(store, "save_anchor_change", save_then_moved_again)
    body = {
        "expected_version": 1,
        "reason": "现场核实",
        "changes": {"lon": YANTA_POINT[0], "lat": YANTA_POINT[1]},
    }
    response = pair.writer.patch("/v1/staff/anchors/anc-c", headers=pair.headers, json=body)
    assert response.status_code == 200, response.text

    assert sorted(_nearby(pair.writer, {**later, "radius_m": 300})) == ["p4", "p5"]


@pytest.mark.parametrize("value", ["inf", "1e10", "3601"])
def test_sync_interval_must_be_finite(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Event.wait raises OverflowError above about 9e9 s, which would end the sync thread."""
    monkeypatch.setenv("DOORSTEP_INDEX_SYNC_INTERVAL_S", value)
    with pytest.raises(ValidationError, match="index_sync_interval_s"):
        ServerSettings()
