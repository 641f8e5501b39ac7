"""Two service processes on one store: a posting or anchor change through one reaches the other.

Each case starts two applications on the same store (a SQLite file, or the PostgreSQL
test database), as two uvicorn workers would run. Staff write through the first; the
second applies the store's job-index change log (:class:`api.index_sync.IndexSync`).
"""

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from starlette.datastructures import State

import api.app as app_module
import api.routes as api_routes
from api.app import create_app
from api.index_sync import MAX_RELOAD_DELAY_S, IndexSync, LoadedIndex
from api.settings import (
    AuthSettings,
    CacheSettings,
    DataSettings,
    PushSettings,
    ServerSettings,
    Settings,
)
from geo.uncertainty import posting_uncertainty_m
from matching import recommend
from matching.candidates import JobIndex
from matching.recommend import Recommender
from store.cache import build_identity
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


def test_background_sync_reloads_rebuilt_store(
    data_dir: Path, tmp_path: Path, identity_path: Path
) -> None:
    path = tmp_path / "store.sqlite"
    write_store(path, **_store_inputs())
    assert SqliteStore(path).set_posting_active("p1", False)
    settings = _settings(data_dir, tmp_path, identity_path, interval_s=0.05)
    with TestClient(create_app(settings, store=SqliteStore(path))) as reader:
        assert "p1" not in _loaded(reader)
        old_build_id = _build_id(reader)

        write_store(path, **_store_inputs())

        reloaded = threading.Event()
        for _ in range(200):  # up to 10 s on a loaded machine; the interval is 0.05 s
            if _sync(reader).reloads:
                reloaded.set()
                break
            reloaded.wait(0.05)
        assert reloaded.is_set()
        assert "p1" in _loaded(reader)
        assert _build_id(reader) != old_build_id
        assert reader.get("/health").status_code == 200


class _FlakyStore:
    """A change log of two posting changes whose second posting read fails once."""

    def __init__(self) -> None:
        self.changes = [IndexChange(1, "posting", "p1"), IndexChange(2, "posting", "p2")]
        self.failures_left = 1

    def meta(self) -> dict[str, Any]:
        return {"postings": 2}

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

    def set_postings_active(self, updates: list[tuple[str, bool, Any]]) -> int:
        self.removed.extend(posting_id for posting_id, _, _ in updates)
        return len(updates)


def test_failed_sync_keeps_applied_build_id() -> None:
    state = State()
    state.store = _FlakyStore()
    state.recommender = _Recommender()
    base = build_identity(state.store.meta())
    sync = IndexSync(state, base, start_after=0, interval_s=0)
    state.build_id = sync.build_id

    with pytest.raises(sqlite3.OperationalError):
        sync.catch_up()

    # p1 left the index, so responses cached before its change must not be served.
    assert state.recommender.removed == ["p1"]
    assert state.build_id == f"{base}-c1"
    assert sync.catch_up() == 1
    assert state.build_id == f"{base}-c2"


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


def _store(client: TestClient) -> Any:
    return client.app.state.store  # type: ignore[attr-defined]


def _sync(client: TestClient) -> IndexSync:
    sync: IndexSync = client.app.state.index_sync  # type: ignore[attr-defined]
    return sync


def _one_at_a_time(
    recommender: Recommender, updates: list[tuple[str, bool, dict[str, Any] | None]]
) -> pd.DataFrame:
    """Return the postings that setting each posting in turn leaves, as the sync once did."""
    postings = recommender.postings
    for posting_id, active, row in updates:
        loaded = postings["posting_id"].astype(str) == posting_id
        if not active and loaded.any():
            postings = postings.loc[~loaded].reset_index(drop=True)
        elif active and row is not None and not loaded.any():
            added = pd.DataFrame([{name: row.get(name) for name in postings.columns}])
            added["uncertainty_m"] = posting_uncertainty_m(added, recommender.district_uncertainty)
            postings = pd.concat([postings, added], ignore_index=True)
    return postings


class _CountedJobIndex(JobIndex):
    built = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _CountedJobIndex.built += 1
        super().__init__(*args, **kwargs)


@pytest.fixture
def counted_builds(monkeypatch: pytest.MonkeyPatch) -> type[_CountedJobIndex]:
    """Count the job indexes the recommender builds."""
    _CountedJobIndex.built = 0
    monkeypatch.setattr(recommend, "JobIndex", _CountedJobIndex)
    return _CountedJobIndex


def test_posting_batch_matches_one_at_a_time(
    pair: Pair, counted_builds: type[_CountedJobIndex]
) -> None:
    store = _store(pair.writer)
    for posting_id in ("p2", "p6", "p7"):
        assert store.set_posting_active(posting_id, False)
    batched = Recommender.from_store(store)
    single = Recommender.from_store(store)
    reference = Recommender.from_store(store)
    for posting_id in ("p2", "p6", "p7"):
        assert store.set_posting_active(posting_id, True)
    rows = {
        posting_id: store.posting_for_push(posting_id) for posting_id in ("p1", "p2", "p6", "p7")
    }
    updates = [
        ("p6", True, rows["p6"]),  # not loaded: added
        ("p1", False, None),  # loaded: removed
        ("p2", True, rows["p2"]),  # no pay stated: NaN beside the loaded pay
        ("p6", False, None),  # added in this batch, removed again
        ("p1", True, rows["p1"]),  # removed in this batch: added at the end
        ("p6", True, rows["p6"]),
        ("p3", True, None),  # loaded, and no row: unchanged
        ("p9", False, None),  # never loaded: unchanged
        ("p7", True, None),  # an activation without its row changes nothing
        ("p2", True, rows["p2"]),  # added already: unchanged
        ("p4", False, None),
    ]
    counted_builds.built = 0

    assert batched.set_postings_active(updates) == 7
    assert counted_builds.built == 1

    expected = _one_at_a_time(reference, updates)
    assert batched.postings["posting_id"].tolist() == ["p3", "p5", "p2", "p1", "p6"]
    pd.testing.assert_frame_equal(batched.postings, expected)
    assert sum(single.set_posting_active(*update) for update in updates) == 7
    pd.testing.assert_frame_equal(batched.postings, single.postings)
    pd.testing.assert_frame_equal(batched.index.located, single.index.located)
    found = batched.nearby(108.93, 34.23, 20_000)
    pd.testing.assert_frame_equal(found, single.nearby(108.93, 34.23, 20_000))


def test_sync_rebuilds_once_per_posting_run(
    pair: Pair, counted_builds: type[_CountedJobIndex]
) -> None:
    """Posting changes on both sides of an anchor move: one rebuild per run and per move.

    Each change reads the posting as stored now, so p2 and p5, active again by then, stay.
    """
    store = _store(pair.writer)
    for posting_id, active in (("p1", False), ("p2", False), ("p3", False), ("p5", False)):
        assert store.set_posting_active(posting_id, active)
    assert store.set_posting_active("p2", True)
    body = {
        "expected_version": 1,
        "reason": "现场核实",
        "changes": {"lon": YANTA_POINT[0], "lat": YANTA_POINT[1]},
    }
    response = pair.writer.patch("/v1/staff/anchors/anc-c", headers=pair.headers, json=body)
    assert response.status_code == 200, response.text
    assert store.set_posting_active("p5", True)  # on the moved anchor: at its new point
    assert store.set_posting_active("p4", False)
    counted_builds.built = 0

    assert pair.sync_reader() == 8

    assert counted_builds.built == 3
    reader = pair.reader.app.state.recommender  # type: ignore[attr-defined]
    fresh = Recommender.from_store(store)
    columns = ["posting_id", "anchor_id", "lon", "lat", "precision", "district_code"]
    assert reader.postings["posting_id"].tolist() == ["p2", "p5", "p6", "p7"]
    pd.testing.assert_frame_equal(
        reader.postings[columns].sort_values("posting_id").reset_index(drop=True),
        fresh.postings[columns].sort_values("posting_id").reset_index(drop=True),
    )
    moved_to = {"lon": YANTA_POINT[0], "lat": YANTA_POINT[1], "radius_m": 300}
    assert _nearby(pair.reader, moved_to) == ["p5"]
    assert _build_id(pair.reader).endswith(f"-c{store.latest_index_change()}")


def _rebuild(store: Any) -> None:
    """Write the store again from the same inputs, as `doorstep build --force` does."""
    if isinstance(store, SqliteStore):
        write_store(store.path, **_store_inputs())
    else:
        store.replace_all(**_store_inputs())


def test_rebuilt_store_reloads_index(pair: Pair) -> None:
    """A rebuild sets every posting active; the SQLite file numbers its changes from 1 again."""
    store = _store(pair.writer)
    for posting_id in ("p1", "p2", "p3"):
        assert store.set_posting_active(posting_id, False)
    assert pair.sync_reader() == 3
    assert "p1" not in _nearby(pair.reader, ANC_A)  # cached under the old build id
    old_build_id = _build_id(pair.reader)

    _rebuild(store)
    assert store.set_posting_active("p4", False)

    assert pair.sync_reader() == 0
    assert _sync(pair.reader).reloads == 1
    assert _loaded(pair.reader) == {"p1", "p2", "p3", "p5", "p6", "p7"}
    assert _build_id(pair.reader) != old_build_id
    assert _build_id(pair.reader).endswith(f"-c{store.latest_index_change()}")
    assert "p1" in _nearby(pair.reader, ANC_A)
    assert pair.sync_reader() == 0
    assert _sync(pair.reader).reloads == 1
    assert store.set_posting_active("p4", True)
    assert pair.sync_reader() == 1
    assert "p4" in _loaded(pair.reader)


def _restart_change_log(store: Any) -> None:
    """Empty the change log and number its changes from 1 again, without a rebuild."""
    if isinstance(store, SqliteStore):
        with closing(sqlite3.connect(store.path)) as connection, connection:
            connection.execute("DELETE FROM job_index_changes")
            connection.execute("DELETE FROM sqlite_sequence WHERE name = 'job_index_changes'")
        return
    with store.pool.connection() as connection:
        connection.execute("TRUNCATE job_index_changes RESTART IDENTITY")


def test_lower_change_ids_reload_index(pair: Pair) -> None:
    store = _store(pair.writer)
    for posting_id in ("p1", "p2"):
        assert store.set_posting_active(posting_id, False)
    assert pair.sync_reader() == 2
    old_base = _sync(pair.reader).base_build_id
    old_applied = _sync(pair.reader).applied

    _restart_change_log(store)
    assert store.set_posting_active("p3", False)
    assert store.latest_index_change() == 1

    assert pair.sync_reader() == 0
    assert _sync(pair.reader).reloads == 1
    assert _loaded(pair.reader) == {"p4", "p5", "p6", "p7"}
    # Same build, lower ids: keys differ from those cached at change 1 before the restart.
    assert _build_id(pair.reader) == f"{old_base}-r{old_applied}-c1"


def _unexpected_row_for(store: Any, posting_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the store return a row without ``active`` for one posting."""
    read = store.posting_for_push

    def posting_for_push(requested_id: str) -> dict[str, Any] | None:
        row: dict[str, Any] | None = read(requested_id)
        if requested_id == posting_id and row is not None:
            row = {key: value for key, value in row.items() if key != "active"}
        return row

    monkeypatch.setattr(store, "posting_for_push", posting_for_push)


def test_failed_change_reloads_index(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(pair.writer)
    assert store.set_posting_active("p1", False)
    assert store.set_posting_active("p2", False)
    failing = store.latest_index_change()
    _unexpected_row_for(_store(pair.reader), "p2", monkeypatch)

    with caplog.at_level(logging.ERROR, logger="api.index_sync"):
        assert pair.sync_reader() == 0

    assert f"applying job-index change {failing} failed" in caplog.text
    assert _sync(pair.reader).reloads == 1
    assert _sync(pair.reader).applied == failing
    assert _loaded(pair.reader) == {"p3", "p4", "p5", "p6", "p7"}
    assert _build_id(pair.reader).endswith(f"-c{failing}")
    assert store.set_posting_active("p1", True)
    assert pair.sync_reader() == 1
    assert "p1" in _loaded(pair.reader)


def test_route_survives_failed_change(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process's change fails to apply here; this process's own write still returns 200."""
    store = _store(pair.writer)
    assert store.set_posting_active("p2", False)  # not applied by the writer's app yet
    _unexpected_row_for(store, "p2", monkeypatch)

    pair.set_active("p1", False)

    assert _sync(pair.writer).reloads == 1
    assert "p1" not in _loaded(pair.writer)
    assert "p2" not in _loaded(pair.writer)
    assert "p1" not in _nearby(pair.writer, ANC_A)


def test_failed_reload_reports_stale(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(pair.writer)
    load = app_module.load_job_index
    failures = [RuntimeError("bug in loading")]

    def load_or_fail(state: State) -> tuple[Recommender, LoadedIndex]:
        if failures:
            raise failures.pop()
        return load(state)

    monkeypatch.setattr(app_module, "load_job_index", load_or_fail)
    assert store.set_posting_active("p1", False)
    _rebuild(store)

    assert pair.sync_reader() == 0
    health = pair.reader.get("/health")
    assert health.status_code == 503
    assert health.json()["status"] == "stale_index"
    assert "the store was rebuilt" in health.json()["stale_index"]
    assert "p1" in _loaded(pair.reader)  # the old index, still in service

    threading.Event().wait(1.1)  # a failed reload is tried again after at least a second
    assert pair.sync_reader() == 0
    assert _sync(pair.reader).reloads == 1
    health = pair.reader.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["stale_index"] is None


def test_erasure_during_reload_stays_erased(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """An erasure that runs while a reload reads the store is not undone by the swap."""
    state = pair.reader.app.state  # type: ignore[attr-defined]
    seeker_id = str(state.recommender.seekers.index[0])
    load = app_module.load_job_index
    erasure = threading.Thread(target=state.erasers.erase, args=(seeker_id,))

    def load_then_erase(loading: State) -> tuple[Recommender, LoadedIndex]:
        loaded = load(loading)  # read the seeker before the erasure
        erasure.start()
        erasure.join(timeout=0.5)  # finishes here unless it waits for the reload
        return loaded

    monkeypatch.setattr(app_module, "load_job_index", load_then_erase)
    _rebuild(_store(pair.writer))

    assert pair.sync_reader() == 0
    erasure.join(timeout=10)
    assert not erasure.is_alive()
    assert _sync(pair.reader).reloads == 1
    assert seeker_id not in state.recommender.seekers.index


def test_reload_during_request_caches_nothing_stale(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request that took the old recommender never caches its body under the new build id."""
    store = _store(pair.writer)
    assert store.set_posting_active("p1", False)
    assert pair.sync_reader() == 1
    _rebuild(store)  # every posting is active again
    check = api_routes._check_radius
    reloads: list[int] = []

    def reload_then_check(radius_m: float, limit: float) -> None:
        if not reloads:  # the reload lands after the route took the recommender
            reloads.append(pair.sync_reader())
        check(radius_m, limit)

    monkeypatch.setattr(api_routes, "_check_radius", reload_then_check)
    assert "p1" not in _nearby(pair.reader, ANC_A)  # computed with the old recommender
    monkeypatch.setattr(api_routes, "_check_radius", check)

    assert _sync(pair.reader).reloads == 1
    assert "p1" in _loaded(pair.reader)
    assert "p1" in _nearby(pair.reader, ANC_A)


def test_reload_delay_stays_bounded() -> None:
    """After a thousand failed reloads in a row, the next one still waits the maximum delay."""
    state = State()
    state.store = _FlakyStore()
    state.recommender = _Recommender()

    def fail() -> LoadedIndex:
        raise RuntimeError("bug in loading")

    sync = IndexSync(state, "an older build", start_after=0, interval_s=1.0, reload=fail)
    sync._reload_failures = 1100  # a process failing for days; 2**1101 is no float

    assert sync.catch_up() == 0
    assert sync.stale_reason is not None
    assert sync._next_reload_at - time.monotonic() == pytest.approx(MAX_RELOAD_DELAY_S, abs=5)
