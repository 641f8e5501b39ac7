"""SQLite-only cases: the file write and the errors of a missing or foreign file.

Round trips, bbox queries and failed writes are in the store contract suite.
"""

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from store.sqlite import SqliteStore, StoreNotFoundError, write_store


def test_write_leaves_no_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    seekers = pd.DataFrame({"seeker_id": ["sim-1"], "simulated": [True]})
    anchors = pd.DataFrame(columns=["anchor_id", "name", "lon", "lat", "precision", "source"])
    write_store(
        path,
        postings=pd.DataFrame({"posting_id": ["p1"], "anchor_id": ["a1"]}),
        anchors=anchors,
        seekers=seekers,
        layers={},
        meta={"postings": 1},
    )
    assert SqliteStore(path).meta()["postings"] == 1
    # The store is in WAL mode, so readers may leave SQLite's -wal and -shm files beside it.
    names = {p.name for p in tmp_path.iterdir()} - {"s.sqlite-wal", "s.sqlite-shm"}
    assert names == {"s.sqlite"}


def test_missing_store_names_build_command(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="doorstep build"):
        SqliteStore(tmp_path / "none.sqlite")


def test_foreign_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    sqlite3.connect(path).close()
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreNotFoundError, match="not a Doorstep store"):
        SqliteStore(path)


def test_locked_store_is_not_foreign(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    write_store(
        path,
        postings=pd.DataFrame({"posting_id": ["p1"], "anchor_id": ["a1"]}),
        anchors=pd.DataFrame(columns=["anchor_id", "name", "lon", "lat", "precision", "source"]),
        seekers=pd.DataFrame({"seeker_id": ["sim-1"], "simulated": [True]}),
        layers={},
        meta={"postings": 1},
    )
    store = SqliteStore(path, busy_timeout_s=0.1)
    holder = sqlite3.connect(path)
    try:
        # An exclusive lock keeps even WAL readers out, as a checkpoint or recovery can.
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            store.meta()
    finally:
        holder.close()
    assert store.meta()["postings"] == 1
