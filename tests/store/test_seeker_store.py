"""Stored seeker rows in both stores: lookup, deletion, and resumable key rotation."""

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest

from api.security.encryption import FieldContext, SoftwareKeyProvider
from api.security.pi_rotation import reindex_seekers, rotate_seekers
from api.security.seeker_pi import SeekerPiCodec
from matching.seeker_simulation import generate_seekers
from store.audit import AuditChain, AuditEntry, AuditWrite
from store.migrations import apply_migrations
from store.seeker_records import ENVELOPE_COLUMNS, EnvelopeUpdate, SeekerStore
from tests.store.test_contract import StoreCase, _inputs, case
from tests.store.test_curation_store import _migrated, _roll_back

__all__ = ["case"]

INDEX_KEY = b"i" * 32
OLD = SoftwareKeyProvider({"k1": b"1" * 16}, "k1", INDEX_KEY)
BOTH = SoftwareKeyProvider({"k1": b"1" * 16, "k2": b"2" * 16}, "k2", INDEX_KEY)
CHAIN = AuditChain(b"a" * 32)


@pytest.fixture(scope="module")
def plaintext(data_dir: Path) -> pd.DataFrame:
    return generate_seekers(data_dir, 120, seed=13)


@pytest.fixture
def store(case: StoreCase, plaintext: pd.DataFrame) -> Any:
    inputs = _inputs()
    inputs["seekers"] = SeekerPiCodec(OLD).protect(plaintext)
    written = case.write(**inputs)
    assert isinstance(written, SeekerStore)
    return written


class FailingCodec(SeekerPiCodec):
    """A codec whose re-encryption fails on the ``fail_at``-th row, as a crash would."""

    def __init__(self, provider: SoftwareKeyProvider, fail_at: int) -> None:
        super().__init__(provider)
        self.calls = 0
        self.fail_at = fail_at

    def reencrypt(self, seeker_id: str, envelopes: tuple[str, ...]) -> tuple[str, ...]:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("simulated crash during rotation")
        return super().reencrypt(seeker_id, envelopes)


def _audit(action: str) -> AuditWrite:
    entry = AuditEntry(
        at=datetime(2026, 12, 5, 8, 0, tzinfo=UTC), actor="staff-1", role="assistance_officer",
        org="district:610113", action=action, object_id="seeker:x", result="ok",
        status_code=200, source="127.0.0.1", request_id="r1",
    )  # fmt: skip
    return AuditWrite(entry, CHAIN)


def _plaintexts(store: Any, codec: SeekerPiCodec) -> dict[str, tuple[str, ...]]:
    frame = store.seekers_frame()
    result = {}
    for row in frame.to_dict("records"):
        seeker_id = str(row["seeker_id"])
        result[seeker_id] = tuple(
            codec.cipher.decrypt(str(row[c]), FieldContext("seekers", c, seeker_id))
            for c in ENVELOPE_COLUMNS
        )
    return result


def test_record_has_envelopes_only(store: Any, plaintext: pd.DataFrame) -> None:
    row = store.seeker_record("sim-000001")

    assert row is not None
    assert str(row["name_enc"]).startswith("pi1.k1.")
    assert plaintext["name"].iloc[0] not in str(row.values())
    assert store.seeker_record("sim-999999") is None


def test_lookup_by_index(store: Any, plaintext: pd.DataFrame) -> None:
    codec = SeekerPiCodec(OLD)
    digest = codec.index.id_number(plaintext["id_number"].iloc[5])

    assert store.seeker_id_by_index("id_number_index", digest) == "sim-000006"
    assert store.seeker_id_by_index("mobile_index", "0" * 64) is None
    with pytest.raises(ValueError, match="not a blind index"):
        store.seeker_id_by_index("name_enc", digest)


def test_delete_appends_audit(store: Any) -> None:
    before = store.audit_head()[0]

    assert store.delete_seeker("sim-000002", audit=_audit("seeker.delete")) is True
    assert store.delete_seeker("sim-000002", audit=_audit("seeker.delete")) is False

    assert store.seeker_record("sim-000002") is None
    assert store.count_seekers() == 119
    assert store.audit_head()[0] == before + 2


def test_rotation_resumes_after_crash(store: Any) -> None:
    before = _plaintexts(store, SeekerPiCodec(BOTH))

    with pytest.raises(RuntimeError, match="simulated crash"):
        rotate_seekers(store, FailingCodec(BOTH, fail_at=75), batch_size=25)
    assert store.count_to_rotate("k2") == 120 - 50
    report = rotate_seekers(store, SeekerPiCodec(BOTH), batch_size=25)

    assert report.pending_at_start == 70
    assert report.rotated == 70
    assert store.count_to_rotate("k2") == 0
    assert store.count_seekers() == 120
    frame = store.seekers_frame()
    for column in ENVELOPE_COLUMNS:
        assert frame[column].str.startswith("pi1.k2.").all()
    only_new = SoftwareKeyProvider({"k2": b"2" * 16}, "k2", INDEX_KEY)
    assert _plaintexts(store, SeekerPiCodec(only_new)) == before


def test_rotation_skips_changed_rows(store: Any) -> None:
    rows = store.envelopes_to_rotate("k2", 2)
    stale = EnvelopeUpdate(rows[0][0], ("x",) * 5, rows[0][1])
    fresh = EnvelopeUpdate(rows[1][0], rows[1][1], SeekerPiCodec(BOTH).reencrypt(*rows[1]))

    assert store.replace_envelopes([stale, fresh]) == 1
    assert store.count_to_rotate("k2") == 119


def test_rotation_progress_counts(store: Any) -> None:
    seen: list[tuple[int, int]] = []

    rotate_seekers(store, SeekerPiCodec(BOTH), batch_size=50, progress=lambda *a: seen.append(a))

    assert seen == [(50, 120), (100, 120), (120, 120)]


class FailingIndexStore:
    """Delegate to a store, failing the ``fail_at``-th index write as a crash would."""

    def __init__(self, store: Any, fail_at: int) -> None:
        self.store = store
        self.calls = 0
        self.fail_at = fail_at

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def replace_indexes(self, indexes: Any) -> int:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("simulated crash during reindex")
        written: int = self.store.replace_indexes(indexes)
        return written


def test_reindex_resumes_after_crash(store: Any, plaintext: pd.DataFrame) -> None:
    new_index = SoftwareKeyProvider({"k1": b"1" * 16}, "k1", b"n" * 32)
    codec = SeekerPiCodec(new_index)

    with pytest.raises(RuntimeError, match="simulated crash"):
        reindex_seekers(FailingIndexStore(store, fail_at=3), codec, batch_size=40)
    first = codec.index.mobile(plaintext["mobile"].iloc[0])
    last = codec.index.mobile(plaintext["mobile"].iloc[-1])
    assert store.seeker_id_by_index("mobile_index", first) == "sim-000001"
    assert store.seeker_id_by_index("mobile_index", last) is None
    written = reindex_seekers(store, codec, batch_size=40)

    assert written == 120
    assert store.count_seekers() == 120
    for row in plaintext.itertuples(index=False):
        by_id = codec.index.id_number(str(row.id_number))
        by_mobile = codec.index.mobile(str(row.mobile))
        assert store.seeker_id_by_index("id_number_index", by_id) == row.seeker_id
        assert store.seeker_id_by_index("mobile_index", by_mobile) == row.seeker_id


def test_seeker_migration_rolls_back(make_database: Callable[[], str]) -> None:
    url = _migrated(make_database)
    _roll_back(url, "0009_seeker_pi")

    with psycopg.connect(url) as connection:
        columns = {
            row[0]
            for row in connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'seekers'"
            )
        }
    assert "home_label" in columns
    assert "name_enc" not in columns
    assert apply_migrations(url) == ["0009_seeker_pi"]
