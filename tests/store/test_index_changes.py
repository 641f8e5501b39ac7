"""The job-index change log on both stores: which writes append a change, and the migrations."""

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest

from store.audit import AuditWriteError
from store.index_changes import IndexChange
from store.migrations import apply_migrations
from store.sqlite import SqliteStore, write_store
from tests.store.test_contract import _inputs
from tests.store.test_curation_store import _merge_plan, _migrated, _roll_back


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Each store in turn, holding the contract inputs; PostgreSQL skips when unreachable."""
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite"
        write_store(path, **_inputs())
        return SqliteStore(path)
    pg_store = request.getfixturevalue("pg_store")
    pg_store.replace_all(**_inputs())
    return pg_store


class _FailingAudit:
    """An audit write whose append fails, as when the operation log is not writable."""

    def __getattr__(self, name: str) -> object:
        raise AuditWriteError("operation log is not writable")


def test_posting_change_logged_once(store: Any) -> None:
    before = store.latest_index_change()

    assert store.set_posting_active("p1", False)
    assert not store.set_posting_active("p1", False)  # unchanged, so nothing to apply

    changes = store.index_changes_since(before)
    assert [(change.kind, change.object_id) for change in changes] == [("posting", "p1")]
    assert store.latest_index_change() == changes[0].change_id


def test_failed_write_logs_no_change(store: Any) -> None:
    before = store.latest_index_change()
    with pytest.raises(AuditWriteError):
        store.set_posting_active("p1", False, audit=_FailingAudit())
    assert store.latest_index_change() == before


def test_merge_logs_merged_anchors(store: Any) -> None:
    before = store.latest_index_change()
    plan = _merge_plan(store, "anc-B", ["anc-c", "anc-a"])

    store.apply_merge(plan, expected_versions={"anc-c": 1, "anc-a": 1})

    [change] = store.index_changes_since(before)
    assert change == IndexChange(change.change_id, "anchor", "anc-B", ("anc-c", "anc-a"))


def test_changes_read_in_batches(store: Any) -> None:
    before = store.latest_index_change()
    for active in (False, True, False):
        assert store.set_posting_active("p2", active)
    first = store.index_changes_since(before, limit=2)
    rest = store.index_changes_since(first[-1].change_id, limit=2)
    assert len(first) == 2
    assert len(rest) == 1
    assert first[0].change_id < first[1].change_id < rest[0].change_id


def test_sqlite_store_adds_change_log(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    write_store(path, **_inputs())
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("DROP TABLE IF EXISTS job_index_changes")
        connection.commit()

    store = SqliteStore(path)

    assert store.latest_index_change() == 0
    assert store.set_posting_active("p1", False)
    assert store.latest_index_change() == 1


def test_postgres_new_migrations_roll_back(make_database: Callable[[], str]) -> None:
    url = _migrated(make_database)
    _roll_back(url, "0017_job_index_changes")
    _roll_back(url, "0016_push_digest_items")

    with psycopg.connect(url) as connection:
        changes = connection.execute("SELECT to_regclass('job_index_changes')").fetchone()
        items = connection.execute("SELECT to_regclass('push_digest_items')").fetchone()
    assert changes == (None,)
    assert items == (None,)
    assert apply_migrations(url) == ["0016_push_digest_items", "0017_job_index_changes"]
