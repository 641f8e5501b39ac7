"""The operation log in both stores: the hash chain, tamper detection, append-only tables.

Each PostgreSQL case gets its own freshly migrated database, because tampering
needs the append-only triggers disabled and would break the chain for others.
"""

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from api.cli import app as cli
from geo.anchor_states import StaffScope
from geo.curation import new_anchor
from geo.industry import load_industry_catalogue
from geo.regions import load_regions
from geo.zones import load_zones
from store.audit import AuditChain, AuditEntry, AuditLog, AuditWrite, AuditWriteError
from store.audit_checkpoints import (
    AuditCheckpoint,
    CheckpointFileError,
    append_checkpoint,
    check_checkpoints,
    make_checkpoint,
    read_checkpoints,
)
from store.migrations import apply_migrations
from store.postgres import PoolOptions, PostgresStore, open_pool
from store.sqlite import SqliteStore, write_store
from tests.store.test_contract import _inputs

KEY = b"audit-test-key-" + b"k" * 17
CHAIN = AuditChain(KEY)
NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
YANTA = StaffScope(frozenset({"610113"}))
YANTA_POINT = (108.9480, 34.2230)  # inside 雁塔区 610113


@dataclass
class AuditedStore:
    """A store under test and a way to run raw SQL on it as its owner would."""

    store: Any
    execute: Callable[[str], None]
    kind: str


def _entry(n: int, **changes: Any) -> AuditEntry:
    fields: dict[str, Any] = {
        "at": NOW + timedelta(seconds=n),
        "actor": "staff-yanta-01",
        "role": "station_staff",
        "org": "雁塔区就业服务中心",
        "action": "anchor.update",
        "object_id": f"anchor:anc-{n}",
        "result": "ok",
        "status_code": 200,
        "source": "127.0.0.1",
        "request_id": f"req-{n}",
    }
    fields.update(changes)
    return AuditEntry(**fields)


def _sqlite_store(tmp_path: Path) -> AuditedStore:
    path = tmp_path / "store.sqlite"
    write_store(path, **_inputs())

    def execute(statement: str) -> None:
        with closing(sqlite3.connect(path)) as connection:
            # The triggers stop the application; anyone with the file can drop them.
            connection.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
            connection.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
            connection.executescript(statement)
            connection.commit()

    return AuditedStore(SqliteStore(path), execute, "sqlite")


@pytest.fixture(params=["sqlite", "postgres"])
def audited(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditedStore]:
    """Each store in turn with the contract inputs and an empty operation log."""
    if request.param == "sqlite":
        yield _sqlite_store(tmp_path)
        return

    url = request.getfixturevalue("make_database")()
    apply_migrations(url)
    pool = open_pool(url, PoolOptions(min_size=1, max_size=2, name="audit-test"))
    store = PostgresStore(pool)
    store.replace_all(**_inputs())

    def execute(statement: str) -> None:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
            connection.execute(statement)  # type: ignore[arg-type]
            connection.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")

    yield AuditedStore(store, execute, "postgres")
    pool.close()


def _append(store: AuditLog, n: int) -> None:
    for i in range(1, n + 1):
        assert store.append_audit(AuditWrite(_entry(i), CHAIN)) == i


def _verify(store: AuditLog) -> Any:
    return CHAIN.verify(store.audit_records(), store.audit_head())


def test_chain_verifies(audited: AuditedStore) -> None:
    _append(audited.store, 5)
    report = _verify(audited.store)
    assert report.ok, report.problem
    assert report.checked == 5


def test_records_read_back_unchanged(audited: AuditedStore) -> None:
    _append(audited.store, 2)
    records = list(audited.store.audit_records())
    assert [record.seq for record in records] == [1, 2]
    assert records[1].entry == _entry(2)


def test_empty_chain_verifies(audited: AuditedStore) -> None:
    report = _verify(audited.store)
    assert report.ok
    assert report.checked == 0


def test_changed_record_found(audited: AuditedStore) -> None:
    _append(audited.store, 5)
    audited.execute("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3")
    report = _verify(audited.store)
    assert report.problem is not None
    assert (report.problem.seq, report.problem.kind) == (3, "changed")
    assert report.checked == 2


def test_deleted_record_found(audited: AuditedStore) -> None:
    _append(audited.store, 5)
    audited.execute("DELETE FROM audit_log WHERE seq = 3")
    report = _verify(audited.store)
    assert report.problem is not None
    assert (report.problem.seq, report.problem.kind) == (3, "deleted")


def test_deleted_last_record_found(audited: AuditedStore) -> None:
    _append(audited.store, 5)
    audited.execute("DELETE FROM audit_log WHERE seq = 5")
    report = _verify(audited.store)
    assert report.problem is not None
    assert (report.problem.seq, report.problem.kind) == (5, "deleted")
    assert report.checked == 4


def test_inserted_record_found(audited: AuditedStore) -> None:
    _append(audited.store, 5)
    forged_tag = "00" * 32
    blob = f"X'{forged_tag}'" if audited.kind == "sqlite" else f"'\\x{forged_tag}'::bytea"
    audited.execute(
        "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3;"
        " UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1000;"
        " INSERT INTO audit_log (seq, at, actor, role, org, action, object_id, result,"
        " status_code, source, request_id, tag) VALUES (3, '2026-12-04T09:30:03+00:00',"
        f" 'forger', '', '', 'anchor.update', '', 'ok', 200, '127.0.0.1', 'x', {blob})"
    )
    report = _verify(audited.store)
    assert report.problem is not None
    assert (report.problem.seq, report.problem.kind) == (3, "inserted")


def test_appended_forgery_found(audited: AuditedStore) -> None:
    _append(audited.store, 3)
    forged = CHAIN.tag(b"\x00" * 32, 4, _entry(4)).hex()
    blob = f"X'{forged}'" if audited.kind == "sqlite" else f"'\\x{forged}'::bytea"
    audited.execute(
        "INSERT INTO audit_log (seq, at, actor, role, org, action, object_id, result,"
        " status_code, source, request_id, tag) VALUES (4, '2026-12-04T09:30:04+00:00',"
        f" 'forger', '', '', 'anchor.update', '', 'ok', 200, '127.0.0.1', 'x', {blob})"
    )
    report = _verify(audited.store)
    assert report.problem is not None
    assert report.problem.seq == 4
    assert report.checked == 3


def test_wrong_key_fails_first_record(audited: AuditedStore) -> None:
    _append(audited.store, 2)
    report = AuditChain(b"z" * 32).verify(audited.store.audit_records(), audited.store.audit_head())
    assert report.problem is not None
    assert report.problem.seq == 1


def _new_record(data_dir: Path) -> tuple[Any, Any]:
    regions = load_regions(data_dir)
    return new_anchor(
        "雁塔审计测试有限公司",
        *YANTA_POINT,
        actor="staff-yanta-01",
        reason="新增",
        regions=regions,
        zones=load_zones(data_dir, regions),
        industries=load_industry_catalogue(data_dir),
        now=NOW,
        scope=YANTA,
    )


def test_write_and_record_commit_together(audited: AuditedStore, data_dir: Path) -> None:
    record, entry = _new_record(data_dir)
    audited.store.insert_anchor(record, entry, audit=AuditWrite(_entry(1), CHAIN))
    assert audited.store.get_anchor(record.anchor_id) is not None
    assert [stored.seq for stored in audited.store.audit_records()] == [1]
    assert _verify(audited.store).ok


def test_failed_record_rolls_back_write(audited: AuditedStore, data_dir: Path) -> None:
    if audited.kind == "sqlite":
        audited.execute(
            "CREATE TRIGGER audit_log_fail BEFORE INSERT ON audit_log"
            " BEGIN SELECT RAISE(ABORT, 'audit storage failed'); END;"
        )
    else:
        audited.execute("ALTER TABLE audit_log ADD CONSTRAINT audit_fail CHECK (false) NOT VALID")
    record, entry = _new_record(data_dir)
    with pytest.raises(AuditWriteError):
        audited.store.insert_anchor(record, entry, audit=AuditWrite(_entry(1), CHAIN))
    assert audited.store.get_anchor(record.anchor_id) is None
    assert list(audited.store.audit_records()) == []


def test_failed_write_leaves_no_record(audited: AuditedStore, data_dir: Path) -> None:
    record, entry = _new_record(data_dir)
    audited.store.insert_anchor(record, entry)
    with pytest.raises(ValueError):
        # A second insert of the same id fails, and takes its audit record with it.
        audited.store.insert_anchor(record, entry, audit=AuditWrite(_entry(1), CHAIN))
    assert list(audited.store.audit_records()) == []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'x' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
        "TRUNCATE audit_log",
        "DELETE FROM audit_head",
        "UPDATE audit_head SET seq = 0",
        "UPDATE audit_head SET seq = seq + 1",
    ],
)
def test_postgres_audit_tables_append_only(
    statement: str, make_database: Callable[[], str]
) -> None:
    url = make_database()
    apply_migrations(url)
    pool = open_pool(url, PoolOptions(min_size=1, max_size=1, name="append-only"))
    try:
        store = PostgresStore(pool)
        _append(store, 2)
        # The test connects as a superuser, which the triggers stop as well.
        with (
            psycopg.connect(url, autocommit=True) as connection,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            connection.execute(statement)  # type: ignore[arg-type]
        assert _verify(store).ok
    finally:
        pool.close()


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET actor = 'x' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 1"],
)
def test_sqlite_audit_table_append_only(statement: str, tmp_path: Path) -> None:
    audited = _sqlite_store(tmp_path)
    _append(audited.store, 2)
    with (
        closing(sqlite3.connect(audited.store.path)) as connection,
        pytest.raises(sqlite3.IntegrityError, match="audit_log rows cannot be"),
    ):
        connection.execute(statement)


def test_sqlite_rebuild_keeps_log(tmp_path: Path) -> None:
    audited = _sqlite_store(tmp_path)
    _append(audited.store, 3)
    write_store(audited.store.path, **_inputs())
    rebuilt = SqliteStore(audited.store.path)
    report = _verify(rebuilt)
    assert report.ok, report.problem
    assert report.checked == 3


def test_cli_verify_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    audited = _sqlite_store(tmp_path)
    monkeypatch.setenv("DOORSTEP_STORE_PATH", str(audited.store.path))
    monkeypatch.setenv("DOORSTEP_AUDIT_KEY", KEY.decode())
    monkeypatch.delenv("DOORSTEP_DATABASE_URL", raising=False)
    _append(audited.store, 3)
    runner = CliRunner()

    intact = runner.invoke(cli, ["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    assert "verified: 3 records" in intact.output

    audited.execute("UPDATE audit_log SET result = 'denied' WHERE seq = 2")
    broken = runner.invoke(cli, ["audit", "verify"])
    assert broken.exit_code == 1
    assert "record 2 (changed)" in broken.output


def _truncate_and_rewind(audited: AuditedStore, keep: int) -> None:
    """Delete the records after ``keep`` and point the head at record ``keep``, as an
    administrator of the database could, triggers dropped or disabled."""
    tag = next(r.tag for r in audited.store.audit_records() if r.seq == keep).hex()
    blob = f"X'{tag}'" if audited.kind == "sqlite" else f"'\\x{tag}'::bytea"
    audited.execute(f"DELETE FROM audit_log WHERE seq > {keep}")
    if audited.kind == "sqlite":
        audited.execute(f"UPDATE audit_head SET seq = {keep}, tag = {blob} WHERE id = 1")
        return
    audited.execute("ALTER TABLE audit_head DISABLE TRIGGER USER")
    audited.execute(f"UPDATE audit_head SET seq = {keep}, tag = {blob} WHERE id = 1")
    audited.execute("ALTER TABLE audit_head ENABLE TRIGGER USER")


def _checkpoint(store: AuditLog) -> AuditCheckpoint:
    return make_checkpoint(CHAIN, store.audit_head(), NOW, "test store")


def test_rewound_head_passes_chain_walk(audited: AuditedStore) -> None:
    _append(audited.store, 5)
    _truncate_and_rewind(audited, 3)
    report = _verify(audited.store)
    assert report.ok  # the gap the checkpoints close
    assert report.checked == 3


def test_checkpoint_finds_truncated_tail(audited: AuditedStore) -> None:
    _append(audited.store, 5)
    checkpoint = _checkpoint(audited.store)
    _truncate_and_rewind(audited, 3)
    problem = check_checkpoints(CHAIN, audited.store.audit_records(), [checkpoint])
    assert problem is not None
    assert (problem.seq, problem.kind) == (4, "deleted")
    assert "4..5" in problem.message


def test_checkpoint_finds_rewritten_tail(audited: AuditedStore) -> None:
    _append(audited.store, 5)
    checkpoint = _checkpoint(audited.store)
    _truncate_and_rewind(audited, 3)
    # The service goes on appending, so records 4 and 5 exist again with other tags.
    for n in (4, 5):
        audited.store.append_audit(AuditWrite(_entry(n, actor="someone-else"), CHAIN))
    assert _verify(audited.store).ok
    problem = check_checkpoints(CHAIN, audited.store.audit_records(), [checkpoint])
    assert problem is not None
    assert (problem.seq, problem.kind) == (5, "changed")


def _append_more(store: AuditLog, first: int, last: int) -> None:
    for i in range(first, last + 1):
        assert store.append_audit(AuditWrite(_entry(i), CHAIN)) == i


def test_checkpoints_agree_with_intact_chain(audited: AuditedStore) -> None:
    _append(audited.store, 2)
    early = _checkpoint(audited.store)
    _append_more(audited.store, 3, 4)
    late = _checkpoint(audited.store)
    empty = make_checkpoint(CHAIN, (0, bytes(32)), NOW, "test store")
    checkpoints = [empty, early, late]
    assert check_checkpoints(CHAIN, audited.store.audit_records(), checkpoints) is None


def test_forged_checkpoint_reported() -> None:
    honest = make_checkpoint(CHAIN, (7, b"\x01" * 32), NOW, "test store")
    forged = AuditCheckpoint(3, honest.tag, honest.at, honest.store, honest.mac)
    problem = check_checkpoints(CHAIN, [], [forged])
    assert problem is not None
    assert problem.kind == "checkpoint"


def test_checkpoint_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "anchors" / "audit.jsonl"
    first = make_checkpoint(CHAIN, (2, b"\x02" * 32), NOW, "SQLite 存储")
    second = make_checkpoint(CHAIN, (5, b"\x05" * 32), NOW + timedelta(hours=1), "SQLite 存储")
    append_checkpoint(path, first)
    append_checkpoint(path, second)
    assert read_checkpoints(path) == [first, second]


def test_bad_checkpoint_line_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    append_checkpoint(path, make_checkpoint(CHAIN, (1, b"\x01" * 32), NOW, "s"))
    with path.open("a", encoding="utf-8") as out:
        out.write('{"seq": 2, "tag": "zz"}\n')
    with pytest.raises(CheckpointFileError, match="line 2 is invalid"):
        read_checkpoints(path)


def test_cli_checkpoint_then_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    audited = _sqlite_store(tmp_path)
    monkeypatch.setenv("DOORSTEP_STORE_PATH", str(audited.store.path))
    monkeypatch.setenv("DOORSTEP_AUDIT_KEY", KEY.decode())
    monkeypatch.delenv("DOORSTEP_DATABASE_URL", raising=False)
    _append(audited.store, 4)
    anchors = tmp_path / "checkpoints.jsonl"
    runner = CliRunner()

    written = runner.invoke(cli, ["audit", "checkpoint", "--file", str(anchors)])
    assert written.exit_code == 0, written.output
    assert "at record 4" in written.output

    intact = runner.invoke(cli, ["audit", "verify", "--checkpoints", str(anchors)])
    assert intact.exit_code == 0, intact.output
    assert "consistent with 1 checkpoints" in intact.output

    _truncate_and_rewind(audited, 2)
    assert runner.invoke(cli, ["audit", "verify"]).exit_code == 0
    caught = runner.invoke(cli, ["audit", "verify", "--checkpoints", str(anchors)])
    assert caught.exit_code == 1
    assert "record 3 (deleted)" in caught.output
