"""Rotation of the audit chain key: epochs, tamper detection across them, missing keys."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app as cli
from store.audit import AuditChain, AuditWrite
from store.audit_checkpoints import read_checkpoints
from store.audit_keys import (
    KEY_ROTATION_ACTION,
    AuditKeyring,
    MissingAuditKeyError,
    rotations,
    verify_epochs,
)
from tests.store.test_audit_log import AuditedStore, _entry, _sqlite_store

OLD = "audit-old-key-" + "o" * 19
NEW = "audit-new-key-" + "n" * 19
THIRD = "audit-third-key-" + "t" * 17
runner = CliRunner()


@pytest.fixture
def audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AuditedStore:
    """A SQLite store whose first 4 records are tagged under the old key ``audit1``."""
    store = _sqlite_store(tmp_path)
    monkeypatch.setenv("DOORSTEP_STORE_PATH", str(store.store.path))
    monkeypatch.delenv("DOORSTEP_DATABASE_URL", raising=False)
    _use_keys(monkeypatch, "audit1", OLD)
    old = AuditChain(OLD.encode())
    for n in range(1, 5):
        store.store.append_audit(AuditWrite(_entry(n), old))
    return store


def _use_keys(monkeypatch: pytest.MonkeyPatch, key_id: str, key: str, retired: str = "") -> None:
    monkeypatch.setenv("DOORSTEP_AUDIT_KEY_ID", key_id)
    monkeypatch.setenv("DOORSTEP_AUDIT_KEY", key)
    if retired:
        monkeypatch.setenv("DOORSTEP_AUDIT_RETIRED_KEYS", retired)
    else:
        monkeypatch.delenv("DOORSTEP_AUDIT_RETIRED_KEYS", raising=False)


def _rotate(monkeypatch: pytest.MonkeyPatch, checkpoints: Path) -> str:
    _use_keys(monkeypatch, "audit2", NEW, f"audit1:{OLD}")
    result = runner.invoke(cli, ["audit", "rotate-key", "--checkpoints", str(checkpoints)])
    assert result.exit_code == 0, result.output
    return result.output


def _append_new(audited: AuditedStore, first: int, last: int) -> None:
    for n in range(first, last + 1):
        audited.store.append_audit(AuditWrite(_entry(n), AuditChain(NEW.encode())))


def _verify(*extra: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["audit", "verify", *extra])
    return result.exit_code, result.output


def test_verify_across_epochs(
    audited: AuditedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoints = tmp_path / "checkpoints.jsonl"

    output = _rotate(monkeypatch, checkpoints)
    _append_new(audited, 6, 8)
    code, verified = _verify("--checkpoints", str(checkpoints))

    assert "rotated from 'audit1' to 'audit2' at record 5" in output
    assert code == 0, verified
    assert "verified: 8 records under 2 keys, consistent with 2 checkpoints" in verified
    (rotation,) = rotations(audited.store.audit_records())
    assert (rotation.seq, rotation.old_id, rotation.new_id) == (5, "audit1", "audit2")
    assert [c.key_id for c in read_checkpoints(checkpoints)] == ["audit1", "audit2"]
    assert {c.seq for c in read_checkpoints(checkpoints)} == {5}


@pytest.mark.parametrize(
    ("statement", "seq", "kind"),
    [
        ("UPDATE audit_log SET actor = 'x' WHERE seq = 3", 3, "changed"),  # old epoch
        ("UPDATE audit_log SET actor = 'x' WHERE seq = 4", 4, "changed"),  # last old record
        ("UPDATE audit_log SET actor = 'x' WHERE seq = 6", 6, "changed"),  # first new record
        ("UPDATE audit_log SET object_id = replace(object_id, 'audit2', 'audit9')"
         " WHERE seq = 5", 5, "changed"),  # the rotation record itself
        ("DELETE FROM audit_log WHERE seq = 5", 5, "deleted"),
    ],
)  # fmt: skip
def test_tamper_found_across_epochs(
    audited: AuditedStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    statement: str,
    seq: int,
    kind: str,
) -> None:
    _rotate(monkeypatch, tmp_path / "checkpoints.jsonl")
    _append_new(audited, 6, 7)

    audited.execute(statement)
    code, output = _verify()

    assert code == 1, output
    assert f"broken at record {seq} ({kind})" in output


def test_forged_rotation_found(audited: AuditedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the old key a forger cannot tag a rotation record that hands the chain to
    # a key of their own: the record fails under the key in effect.
    forged = _entry(5, action=KEY_ROTATION_ACTION, object_id="audit-key:audit1>evil:" + "0" * 32)
    audited.store.append_audit(AuditWrite(forged, AuditChain(b"e" * 32)))
    _use_keys(monkeypatch, "evil", "e" * 32, f"audit1:{OLD}")

    code, output = _verify()

    assert code == 1, output
    assert "broken at record 5 (changed)" in output


def test_missing_old_key_refused(
    audited: AuditedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rotate(monkeypatch, tmp_path / "checkpoints.jsonl")
    _use_keys(monkeypatch, "audit2", NEW)

    code, output = _verify()

    assert code == 2, output
    assert "audit key 'audit1' (records 1..5) is not configured" in output
    assert "DOORSTEP_AUDIT_RETIRED_KEYS" in output
    assert "Traceback" not in output


def test_missing_new_key_refused(
    audited: AuditedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rotate(monkeypatch, tmp_path / "checkpoints.jsonl")
    _use_keys(monkeypatch, "audit3", THIRD, f"audit1:{OLD}")

    code, output = _verify()

    assert code == 2, output
    assert "audit key 'audit2' (records after the rotation at record 5)" in output


def test_wrong_new_key_refused(
    audited: AuditedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rotate(monkeypatch, tmp_path / "checkpoints.jsonl")
    _use_keys(monkeypatch, "audit2", THIRD, f"audit1:{OLD}")

    code, output = _verify()

    assert code == 2, output
    assert "audit key 'audit2' does not match the fingerprint" in output


def test_second_rotation_chains_on(
    audited: AuditedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoints = tmp_path / "checkpoints.jsonl"
    _rotate(monkeypatch, checkpoints)
    _append_new(audited, 6, 6)
    _use_keys(monkeypatch, "audit3", THIRD, f"audit1:{OLD},audit2:{NEW}")

    rotated = runner.invoke(cli, ["audit", "rotate-key", "--checkpoints", str(checkpoints)])
    code, output = _verify("--checkpoints", str(checkpoints))

    assert rotated.exit_code == 0, rotated.output
    assert "from 'audit2' to 'audit3' at record 7" in rotated.output
    assert code == 0, output
    assert "verified: 7 records under 3 keys, consistent with 4 checkpoints" in output


def test_rotate_refused_when_chain_broken(
    audited: AuditedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    audited.execute("UPDATE audit_log SET actor = 'x' WHERE seq = 2")
    _use_keys(monkeypatch, "audit2", NEW, f"audit1:{OLD}")

    result = runner.invoke(cli, ["audit", "rotate-key", "--checkpoints", str(tmp_path / "c.jsonl")])

    assert result.exit_code == 1
    assert "key not rotated" in result.output
    assert "record 2 (changed)" in result.output
    assert len(list(audited.store.audit_records())) == 4


def test_rotate_same_key_refused(audited: AuditedStore, tmp_path: Path) -> None:
    result = runner.invoke(
        cli,
        ["audit", "rotate-key", "--from-key-id", "audit1", "--checkpoints", str(tmp_path / "c")],
    )

    assert result.exit_code == 2
    assert "key 'audit1' already tags the chain" in result.output


def test_forged_checkpoint_after_rotation(
    audited: AuditedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoints = tmp_path / "checkpoints.jsonl"
    _rotate(monkeypatch, checkpoints)
    lines = checkpoints.read_text().splitlines()
    checkpoints.write_text(lines[0] + "\n" + lines[1].replace('"seq":5', '"seq":4') + "\n")

    code, output = _verify("--checkpoints", str(checkpoints))

    assert code == 1, output
    assert "checkpoint file was changed" in output


def test_keyring_names_missing_key() -> None:
    keyring = AuditKeyring("audit2", {"audit2": NEW.encode()})

    with pytest.raises(MissingAuditKeyError, match=r"'audit1' \(records 1\.\.the head\)"):
        verify_epochs(keyring, [], (0, bytes(32)), [], first_id="audit1")
