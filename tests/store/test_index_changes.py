"""The job-index change log on both stores: which writes append a change, and the migrations."""

import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest

from store.audit import AuditWriteError
from store.index_changes import IndexChange, record_index_change
from store.migrations import apply_migrations
from store.push_outbox import PushBatch
from store.push_sql import SqlTx
from store.push_store import PushStore
from store.sqlite import SqliteStore, write_store
from tests.store.test_contract import _inputs
from tests.store.test_curation_store import _merge_plan, _migrated, _roll_back
from tests.store.test_push_store import DAY, RULES, _candidate, _clear_push_tables, _consent


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


def _wait_for_lock_wait(connection: psycopg.Connection[Any], pid_to_skip: int) -> None:
    """Return once another backend of this database waits for a lock (polls pg_stat_activity)."""
    for _ in range(1000):
        found = connection.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> %s AND wait_event_type = 'Lock'",
            (pid_to_skip,),
        ).fetchone()
        if found:
            return
        threading.Event().wait(0.01)
    raise AssertionError("the activation never waited for the concurrent push_shown row")


def test_activation_beside_anchor_push_no_deadlock(pg_store: Any, pg_url: str) -> None:
    """An activation and an anchor verification pushing the same job both commit.

    The verification's transaction (here ``other``) writes the seeker's ``push_shown``
    row first and logs its job-index change last. The activation then waits for that
    row, and must not hold the change log's lock meanwhile, or the two deadlock.
    """
    pg_store.replace_all(**_inputs())
    pushes = PushStore.postgres(pg_store.pool)
    _clear_push_tables(pg_store.pool)
    _consent(pushes, "sim-000001")
    assert pg_store.set_posting_active("p1", False)
    batch = PushBatch("posting.active:p1", [_candidate("sim-000001", "p1", 0.9)], RULES, DAY)
    outcome: dict[str, object] = {}

    def activate() -> None:
        try:
            outcome["changed"] = pg_store.set_posting_active("p1", True, pushes=batch)
        except psycopg.Error as err:
            outcome["error"] = err

    with psycopg.connect(pg_url) as other, psycopg.connect(pg_url, autocommit=True) as watcher:
        other.execute(
            "INSERT INTO push_shown (seeker_id, posting_id, push_id, score, shown_at)"
            " VALUES ('sim-000001', 'p1', 'anchor-push', 0.5, now())"
        )
        thread = threading.Thread(target=activate)
        thread.start()
        _wait_for_lock_wait(watcher, other.info.backend_pid)
        other.execute("SET LOCAL lock_timeout = '20s'")
        record_index_change(SqlTx(other), "anchor", "anc-a")
        other.commit()
        thread.join(timeout=60)

    assert outcome == {"changed": True}
    assert pushes.outbox_rows() == []  # the job was pushed by the verification already


def test_posting_row_matches_loaded_posting(store: Any) -> None:
    """A posting read for an activation carries every column of the loaded postings.

    Another process adds the row to its job index as read here, so a missing column
    (the anchor's location label, a PostgreSQL ``extra`` column) would differ from
    what a restarted process loads.
    """
    loaded = store.postings_frame().set_index("posting_id", drop=False)
    for posting_id in ("p1", "p5"):
        row = store.posting_for_push(posting_id)
        expected = loaded.loc[posting_id]
        for column in loaded.columns:
            assert column in row, column
            if pd.isna(expected[column]):
                assert row[column] is None or pd.isna(row[column]), column
            else:
                assert row[column] == expected[column], column
