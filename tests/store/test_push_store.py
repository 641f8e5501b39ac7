"""Push rules that need stored state, and trigger writes, on both stores (SQLite and PostgreSQL)."""

import dataclasses
import sqlite3
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from matching.push_fanout import PushCandidate
from matching.push_rules import PushRules, render_message
from store.audit import AuditWriteError
from store.base import PostingNotFoundError
from store.postgres import Pool, PostgresStore
from store.push_outbox import PushBatch, cancel_posting_pushes, claim_push
from store.push_sql import SqlTx
from store.push_store import PushStore
from store.sqlite import SqliteStore, write_store
from tests.store.test_contract import _inputs

# 11:00 in Xi'an (UTC+8), outside the quiet hours.
DAY = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
RULES = PushRules(daily_cap=3, max_seekers_per_opening=2)


def _candidate(seeker_id: str, posting_id: str, score: float, headcount: int = 1) -> PushCandidate:
    messages = {
        lang: render_message(
            "会计", "甲公司", "地铁约20分钟", f"http://t/seeker?job={posting_id}", lang
        )
        for lang in ("zh", "en")
    }
    return PushCandidate(
        seeker_id,
        posting_id,
        score,
        20.0,
        "transit",
        messages,  # type: ignore[arg-type]
        {"zh": "会计", "en": "Accountant"},
        headcount,
    )


def _clear_push_tables(pool: Pool) -> None:
    """Empty the push tables and make every stored posting active, as a new database has them."""
    with pool.connection() as connection:
        for table in ("push_inbox", "push_outbox", "push_shown", "push_consents"):
            connection.execute(f"DELETE FROM {table}")  # type: ignore[arg-type]
        # push_digest_items rows went with their outbox rows (ON DELETE CASCADE).
        # A test that deactivated a posting would otherwise drop the next test's pushes.
        connection.execute("UPDATE postings SET active = true WHERE NOT active")


@pytest.fixture(params=["sqlite", "postgres"])
def pushes(request: pytest.FixtureRequest, tmp_path: Path) -> PushStore:
    """The push store of each store in turn, empty."""
    if request.param == "sqlite":
        return PushStore.sqlite(tmp_path / "push.sqlite")
    pool: Pool = request.getfixturevalue("pg_pool")
    _clear_push_tables(pool)
    return PushStore.postgres(pool)


def _consent(pushes: PushStore, *seekers: str, at: datetime = DAY, channel: str = "inbox") -> None:
    for seeker_id in seekers:
        pushes.set_consent(seeker_id, consent=True, at=at - timedelta(days=1), channel=channel)


def test_consent_keeps_its_time(pushes: PushStore) -> None:
    row = pushes.set_consent("s1", consent=True, at=DAY)
    assert row["consented_at"] == DAY
    assert row["opted_out_at"] is None
    later = pushes.set_consent("s1", consent=False, at=DAY + timedelta(hours=1))
    assert later["consented_at"] == DAY
    assert later["opted_out_at"] == DAY + timedelta(hours=1)


def test_consent_without_lang_keeps_it(pushes: PushStore) -> None:
    assert pushes.set_consent("s1", consent=True, at=DAY)["lang"] == "zh"
    pushes.set_consent("s1", consent=True, at=DAY, lang="en")
    assert pushes.set_consent("s1", consent=False, at=DAY)["lang"] == "en"
    assert pushes.set_consent("s1", consent=True, at=DAY)["lang"] == "en"
    assert pushes.set_consent("s1", consent=True, at=DAY, lang="zh")["lang"] == "zh"


def test_crashed_claims_dead_letter(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    rules = dataclasses.replace(RULES, max_attempts=2)
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.9)], rules, DAY))
    push_id = pushes.outbox_rows("s1")[0]["push_id"]
    at = DAY
    for attempt in (1, 2):
        # The worker claims the push and dies before recording a result.
        claim = pushes.claim(push_id, at, rules, LEASE)
        assert claim.action == "send"
        assert claim.push is not None
        assert claim.push["attempts"] == attempt
        at += LEASE + timedelta(seconds=1)
    assert pushes.claim(push_id, at, rules, LEASE).action == "done"
    dead = pushes.dead_letters()
    assert [row["push_id"] for row in dead] == [push_id]
    assert dead[0]["attempts"] == 2
    assert dead[0]["last_error"].startswith("claimed 2 times without a recorded failure")


def test_push_needs_consent(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    pushes.set_consent("s3", consent=False, at=DAY)
    batch = PushBatch("t", [_candidate(s, "p1", 0.9) for s in ("s1", "s2", "s3")], RULES, DAY)
    written = pushes.write_pushes(batch)
    assert [row["seeker_id"] for row in pushes.outbox_rows()] == ["s1"]
    assert len(written) == 1


def test_same_job_never_twice(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    first = pushes.write_pushes(PushBatch("t1", [_candidate("s1", "p1", 0.7)], RULES, DAY))
    again = pushes.write_pushes(
        PushBatch("t2", [_candidate("s1", "p1", 0.9)], RULES, DAY + timedelta(days=30))
    )
    assert len(first) == 1
    assert again == []


def test_push_must_beat_shown_jobs(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    pushes.write_pushes(PushBatch("t1", [_candidate("s1", "p1", 0.8)], RULES, DAY))
    worse = pushes.write_pushes(PushBatch("t2", [_candidate("s1", "p2", 0.75)], RULES, DAY))
    better = pushes.write_pushes(PushBatch("t3", [_candidate("s1", "p3", 0.85)], RULES, DAY))
    after_window = pushes.write_pushes(
        PushBatch("t4", [_candidate("s1", "p4", 0.6)], RULES, DAY + timedelta(days=8))
    )
    assert worse == []
    assert len(better) == 1
    assert len(after_window) == 1


def test_seekers_per_opening_best_first(pushes: PushStore) -> None:
    _consent(pushes, "s1", "s2", "s3")
    scores = {"s1": 0.6, "s2": 0.9, "s3": 0.8}
    batch = PushBatch("t", [_candidate(s, "p1", v) for s, v in scores.items()], RULES, DAY)
    pushes.write_pushes(batch)
    assert sorted(row["seeker_id"] for row in pushes.outbox_rows()) == ["s2", "s3"]


def test_cap_scales_with_headcount(pushes: PushStore) -> None:
    first = [f"s{number}" for number in range(7)]
    second = [f"t{number}" for number in range(7)]
    _consent(pushes, *first, *second)
    rules = PushRules(max_seekers_per_opening=2, max_seekers_per_posting=5)
    two = [_candidate(s, "p1", 0.9 - i / 100, headcount=2) for i, s in enumerate(first)]
    three = [_candidate(s, "p2", 0.9 - i / 100, headcount=3) for i, s in enumerate(second)]
    pushes.write_pushes(PushBatch("t", two + three, rules, DAY))
    rows = pushes.outbox_rows()
    assert [row["seeker_id"] for row in rows if row["posting_id"] == "p1"] == first[:4]
    assert [row["seeker_id"] for row in rows if row["posting_id"] == "p2"] == second[:5]


def test_shown_jobs_rescored_on_batch_scale(pushes: PushStore) -> None:
    _consent(pushes, "s1", "s2")
    pushes.write_pushes(
        PushBatch("t1", [_candidate("s1", "p1", 0.9), _candidate("s2", "p1", 0.9)], RULES, DAY)
    )
    requested: list[tuple[str, str]] = []

    def rescore(pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], float]:
        requested.extend(pairs)
        return {("s1", "p1"): 0.2, ("s2", "p1"): 0.7}

    model_scale = [_candidate("s1", "p2", 0.5), _candidate("s2", "p2", 0.5)]
    written = pushes.write_pushes(
        PushBatch("t2", model_scale, RULES, DAY, ranker="m1", score_shown=rescore)
    )
    assert sorted(requested) == [("s1", "p1"), ("s2", "p1")]
    assert [row["seeker_id"] for row in pushes.outbox_rows() if row["posting_id"] == "p2"] == ["s1"]
    assert len(written) == 1


def test_stored_scores_without_rescoring(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    pushes.write_pushes(PushBatch("t1", [_candidate("s1", "p1", 0.9)], RULES, DAY))
    assert pushes.write_pushes(PushBatch("t2", [_candidate("s1", "p2", 0.5)], RULES, DAY)) == []


def test_quiet_hours_hold_until_eight(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    night = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)  # 23:30 in Xi'an
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.9)], RULES, night))
    row = pushes.outbox_rows()[0]
    assert row["not_before"] == datetime(2026, 12, 8, 0, 0, tzinfo=UTC)  # 08:00 in Xi'an
    assert pushes.due_for_relay(night + timedelta(hours=8), LEASE, 10) == []
    assert len(pushes.due_for_relay(row["not_before"], LEASE, 10)) == 1


def test_claim_in_quiet_hours_holds(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.9)], RULES, DAY))
    push_id = pushes.outbox_rows()[0]["push_id"]
    late = datetime(2026, 12, 7, 14, 5, tzinfo=UTC)  # 22:05 in Xi'an
    assert pushes.claim(push_id, late, RULES, LEASE).action == "done"
    row = pushes.outbox_rows()[0]
    assert row["status"] == "pending"
    assert row["not_before"] == datetime(2026, 12, 8, 0, 0, tzinfo=UTC)


def test_opt_out_stops_written_push(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.9)], RULES, DAY))
    pushes.set_consent("s1", consent=False, at=DAY + timedelta(minutes=1))
    push_id = pushes.outbox_rows()[0]["push_id"]
    assert pushes.claim(push_id, DAY + timedelta(minutes=2), RULES, LEASE).action == "done"
    row = pushes.outbox_rows()[0]
    assert row["status"] == "skipped"
    assert row["skip_reason"] == "opted_out"


def test_daily_cap_per_local_day(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    candidates = [_candidate("s1", f"p{i}", 0.5 + i / 10) for i in range(5)]
    for candidate in candidates:
        pushes.write_pushes(PushBatch("t", [candidate], RULES, DAY))
    actions = []
    for row in pushes.outbox_rows():
        claim = pushes.claim(row["push_id"], DAY, RULES, LEASE)
        actions.append(claim.action)
        if claim.push is not None:
            pushes.mark_delivered(claim.push, DAY)
    assert actions == ["send", "send", "send", "done", "done"]
    reasons = [row["skip_reason"] for row in pushes.outbox_rows()]
    assert reasons == [None, None, None, "daily_cap", "daily_cap"]


def test_delivered_marker_stops_resend(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.9)], RULES, DAY))
    push_id = pushes.outbox_rows()[0]["push_id"]
    claim = pushes.claim(push_id, DAY, RULES, LEASE)
    assert claim.push is not None
    assert pushes.mark_delivered(claim.push, DAY)
    assert pushes.claim(push_id, DAY + timedelta(hours=1), RULES, LEASE).action == "done"
    assert not pushes.mark_delivered(claim.push, DAY)


def test_live_claim_is_busy(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.9)], RULES, DAY))
    push_id = pushes.outbox_rows()[0]["push_id"]
    assert pushes.claim(push_id, DAY, RULES, LEASE).action == "send"
    assert pushes.claim(push_id, DAY + timedelta(seconds=5), RULES, LEASE).action == "busy"
    resent = pushes.claim(push_id, DAY + timedelta(seconds=31), RULES, LEASE)
    assert resent.action == "send"
    assert resent.push is not None
    assert resent.push["attempts"] == 2


def test_failures_end_in_dead_letters(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    rules = PushRules(max_attempts=2)
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.9)], rules, DAY))
    push_id = pushes.outbox_rows()[0]["push_id"]
    now = DAY
    states = []
    for _ in range(2):
        assert pushes.claim(push_id, now, rules, LEASE).action == "send"
        states.append(pushes.mark_failed(push_id, "HTTP 500", now, rules, timedelta(0)))
        now += timedelta(minutes=1)
    assert [state.value for state in states] == ["pending", "dead"]
    dead = pushes.dead_letters()
    assert [row["push_id"] for row in dead] == [push_id]
    assert dead[0]["last_error"] == "HTTP 500"
    assert "body" not in dead[0]


def test_inbox_read_state(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.9)], RULES, DAY))
    claim = pushes.claim(pushes.outbox_rows()[0]["push_id"], DAY, RULES, LEASE)
    assert claim.push is not None
    pushes.mark_delivered(claim.push, DAY)
    messages = pushes.inbox("s1", unread_only=True)
    assert [message["body"] for message in messages] == [
        "甲公司招聘会计，地铁约20分钟。详情：http://t/seeker?job=p1"
    ]
    assert pushes.mark_read("s1", messages[0]["push_id"], DAY)
    assert pushes.inbox("s1", unread_only=True) == []
    assert not pushes.mark_read("s2", messages[0]["push_id"], DAY)


def test_digest_is_one_message(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.9)], RULES, DAY))
    batch = PushBatch("d", [_candidate("s1", f"p{i}", 0.6) for i in range(1, 9)], RULES, DAY)
    pushes.write_digest("s1", batch)
    digests = [row for row in pushes.outbox_rows("s1") if row["kind"] == "digest"]
    assert len(digests) == 1
    assert digests[0]["title"] == "按新的求职意向，有5个岗位适合您"
    # p1 was pushed alone before, so the digest's best job is p2.
    assert digests[0]["link"] == "http://127.0.0.1:8000/seeker?job=p2"
    again = pushes.write_pushes(PushBatch("t", [_candidate("s1", "p2", 0.99)], RULES, DAY))
    assert again == []


def test_erase_seeker_rows(pushes: PushStore) -> None:
    _consent(pushes, "s1", "s2")
    batch = PushBatch("t", [_candidate("s1", "p1", 0.9), _candidate("s2", "p1", 0.8)], RULES, DAY)
    pushes.write_pushes(batch)
    claim = pushes.claim(pushes.outbox_rows("s1")[0]["push_id"], DAY, RULES, LEASE)
    assert claim.push is not None
    pushes.mark_delivered(claim.push, DAY)
    push_ids, counts = pushes.erase_seeker("s1")
    assert len(push_ids) == 1
    assert counts == {
        "push_digest_items": 0, "push_inbox": 1, "push_outbox": 1, "push_shown": 1,
        "push_consents": 1,
    }  # fmt: skip
    assert pushes.outbox_rows("s1") == []
    assert pushes.consent("s1") is None
    assert len(pushes.outbox_rows("s2")) == 1


# --- trigger writes ---------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def trigger_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[object, PushStore]:
    """A store with the contract data and its push store, for trigger writes."""
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite"
        write_store(path, **_inputs())
        return SqliteStore(path), PushStore.sqlite(path)
    store: PostgresStore = request.getfixturevalue("pg_store")
    store.replace_all(**_inputs())
    _clear_push_tables(store.pool)
    return store, PushStore.postgres(store.pool)


class _FailingAudit:
    """An audit write whose append fails, as when the operation log is not writable."""

    def __getattr__(self, name: str) -> object:
        raise AuditWriteError("operation log is not writable")


def test_posting_activation_writes_pushes(trigger_store: tuple[object, PushStore]) -> None:
    store, pushes = trigger_store
    _consent(pushes, "sim-000001")
    assert store.set_posting_active("p1", False)  # type: ignore[attr-defined]
    batch = PushBatch("posting.active:p1", [_candidate("sim-000001", "p1", 0.9)], RULES, DAY)
    assert store.set_posting_active("p1", True, pushes=batch)  # type: ignore[attr-defined]
    rows = pushes.outbox_rows()
    assert [(row["posting_id"], row["trigger"]) for row in rows] == [("p1", "posting.active:p1")]


def test_failed_trigger_writes_no_push(trigger_store: tuple[object, PushStore]) -> None:
    store, pushes = trigger_store
    _consent(pushes, "sim-000001")
    store.set_posting_active("p1", False)  # type: ignore[attr-defined]
    batch = PushBatch("posting.active:p1", [_candidate("sim-000001", "p1", 0.9)], RULES, DAY)
    with pytest.raises(AuditWriteError):
        store.set_posting_active("p1", True, audit=_FailingAudit(), pushes=batch)  # type: ignore[attr-defined]
    assert pushes.outbox_rows() == []
    assert store.posting_for_push("p1")["active"] in (0, False)  # type: ignore[attr-defined]


def test_unchanged_posting_writes_no_push(trigger_store: tuple[object, PushStore]) -> None:
    store, pushes = trigger_store
    _consent(pushes, "sim-000001")
    batch = PushBatch("posting.active:p1", [_candidate("sim-000001", "p1", 0.9)], RULES, DAY)
    assert not store.set_posting_active("p1", True, pushes=batch)  # type: ignore[attr-defined]
    assert pushes.outbox_rows() == []


def test_unknown_posting_is_rejected(trigger_store: tuple[object, PushStore]) -> None:
    store, _ = trigger_store
    with pytest.raises(PostingNotFoundError, match="p404"):
        store.set_posting_active("p404", True)  # type: ignore[attr-defined]


def _activate_with_push(store: object, pushes: PushStore, *seekers: str) -> None:
    _consent(pushes, *seekers)
    store.set_posting_active("p1", False)  # type: ignore[attr-defined]
    candidates = [_candidate(seeker, "p1", 0.9) for seeker in seekers]
    batch = PushBatch("posting.active:p1", candidates, RULES, DAY)
    assert store.set_posting_active("p1", True, pushes=batch)  # type: ignore[attr-defined]


def test_deactivation_skips_undelivered_pushes(trigger_store: tuple[object, PushStore]) -> None:
    store, pushes = trigger_store
    _activate_with_push(store, pushes, "sim-000001", "sim-000002")
    queued = pushes.due_for_relay(DAY, LEASE, 1)
    assert len(queued) == 1
    assert store.set_posting_active("p1", False)  # type: ignore[attr-defined]
    rows = pushes.outbox_rows()
    assert [row["status"] for row in rows] == ["skipped", "skipped"]
    assert [row["skip_reason"] for row in rows] == ["posting_inactive", "posting_inactive"]
    assert pushes.claim(queued[0]["push_id"], DAY, RULES, LEASE).action == "done"
    assert pushes.due_for_relay(DAY + timedelta(hours=1), LEASE, 10) == []


def test_claim_skips_push_of_inactive_posting(trigger_store: tuple[object, PushStore]) -> None:
    store, pushes = trigger_store
    _activate_with_push(store, pushes, "sim-000001")
    push_id = pushes.outbox_rows()[0]["push_id"]
    assert pushes.claim(push_id, DAY, RULES, LEASE).action == "send"
    store.set_posting_active("p1", False)  # type: ignore[attr-defined]
    assert pushes.outbox_rows()[0]["status"] == "sending"  # its worker may be at the gateway
    later = DAY + LEASE + timedelta(seconds=1)
    assert pushes.claim(push_id, later, RULES, LEASE).action == "done"
    row = pushes.outbox_rows()[0]
    assert (row["status"], row["skip_reason"]) == ("skipped", "posting_inactive")


def test_reactivated_posting_pushed_again(trigger_store: tuple[object, PushStore]) -> None:
    store, pushes = trigger_store
    _activate_with_push(store, pushes, "sim-000001", "sim-000002")
    push_ids = [row["push_id"] for row in pushes.outbox_rows()]
    assert pushes.claim(push_ids[0], DAY, RULES, LEASE).action == "send"
    assert store.set_posting_active("p1", False)  # type: ignore[attr-defined]
    later = DAY + LEASE + timedelta(seconds=1)
    assert pushes.claim(push_ids[0], later, RULES, LEASE).action == "done"
    # The first claim's worker may have sent the push before its claim ran out.
    assert _shown(pushes) == ["p1"]

    candidates = [_candidate(seeker, "p1", 0.9) for seeker in ("sim-000001", "sim-000002")]
    batch = PushBatch("posting.active:p1", candidates, RULES, later)
    assert store.set_posting_active("p1", True, pushes=batch)  # type: ignore[attr-defined]

    written = [row for row in pushes.outbox_rows() if row["push_id"] in batch.written]
    assert [row["seeker_id"] for row in written] == ["sim-000002"]


def test_inactive_posting_gets_no_push(trigger_store: tuple[object, PushStore]) -> None:
    store, pushes = trigger_store
    _consent(pushes, "sim-000001")
    store.set_posting_active("p1", False)  # type: ignore[attr-defined]
    batch = PushBatch("anchor.verified:a1", [_candidate("sim-000001", "p1", 0.9)], RULES, DAY)
    assert pushes.write_pushes(batch) == []
    assert pushes.outbox_rows() == []


def test_repeated_deactivation_still_skips(trigger_store: tuple[object, PushStore]) -> None:
    store, pushes = trigger_store
    _activate_with_push(store, pushes, "sim-000001")
    with pushes._transaction() as tx:  # a posting deactivated before pushes were skipped
        inactive = 0 if tx.is_sqlite else False
        tx.execute("UPDATE postings SET active = ? WHERE posting_id = 'p1'", (inactive,))
    assert not store.set_posting_active("p1", False)  # type: ignore[attr-defined]
    assert pushes.outbox_rows()[0]["skip_reason"] == "posting_inactive"


def test_has_due_without_push_tables(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    write_store(path, **_inputs())
    assert not PushStore.sqlite(path).has_due(DAY, LEASE)


def test_has_due_matches_relay(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    assert not pushes.has_due(DAY, LEASE)
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.9)], RULES, DAY))
    assert pushes.has_due(DAY, LEASE)
    assert len(pushes.due_for_relay(DAY, LEASE, 10)) == 1
    assert not pushes.has_due(DAY, LEASE)
    assert pushes.has_due(DAY + LEASE + timedelta(seconds=1), LEASE)


# --- digests of postings deactivated before delivery --------------------------------------


def _digest_candidate(seeker_id: str, posting_id: str, score: float) -> PushCandidate:
    candidate = _candidate(seeker_id, posting_id, score)
    lines = {"zh": f"会计{posting_id}（地铁约20分钟）", "en": f"Accountant {posting_id} (20 min)"}
    return dataclasses.replace(candidate, digest_lines=lines)  # type: ignore[arg-type]


def _write_digest(pushes: PushStore, postings: Sequence[str], lang: str = "zh") -> str:
    pushes.set_consent("sim-000001", consent=True, at=DAY - timedelta(days=1), lang=lang)  # type: ignore[arg-type]
    scores = [0.9 - 0.1 * number for number in range(len(postings))]
    candidates = [
        _digest_candidate("sim-000001", posting_id, score)
        for posting_id, score in zip(postings, scores, strict=True)
    ]
    push_id = pushes.write_digest("sim-000001", PushBatch("d", candidates, RULES, DAY))
    assert push_id is not None
    return push_id


def _shown(pushes: PushStore) -> list[str]:
    with pushes._transaction() as tx:
        rows = tx.rows("SELECT posting_id FROM push_shown ORDER BY posting_id")
    return [str(row["posting_id"]) for row in rows]


def test_digest_drops_inactive_posting(trigger_store: tuple[object, PushStore]) -> None:
    store, pushes = trigger_store
    push_id = _write_digest(pushes, ["p1", "p2", "p3"])
    assert store.set_posting_active("p2", False)  # type: ignore[attr-defined]
    claim = pushes.claim(push_id, DAY, RULES, LEASE)
    assert claim.action == "send"
    assert claim.push is not None
    assert claim.push["title"] == "按新的求职意向，有2个岗位适合您"
    assert (
        claim.push["body"]
        == "会计p1（地铁约20分钟）；会计p3（地铁约20分钟）。详情：http://127.0.0.1:8000/seeker?job=p1"
    )
    assert claim.push["link"] == "http://127.0.0.1:8000/seeker?job=p1"
    assert claim.push["score"] == pytest.approx(0.9)
    assert pushes.outbox_rows()[0]["body"] == claim.push["body"]
    assert _shown(pushes) == ["p1", "p3"]
    pushes.mark_delivered(claim.push, DAY)
    assert pushes.inbox("sim-000001")[0]["body"] == claim.push["body"]


def test_digest_in_english_drops_posting(trigger_store: tuple[object, PushStore]) -> None:
    store, pushes = trigger_store
    push_id = _write_digest(pushes, ["p1", "p2", "p3"], lang="en")
    assert store.set_posting_active("p1", False)  # type: ignore[attr-defined]
    claim = pushes.claim(push_id, DAY, RULES, LEASE)
    assert claim.push is not None
    assert claim.push["title"] == "2 jobs match your new preferences"
    assert claim.push["body"] == (
        "Accountant p2 (20 min); Accountant p3 (20 min)."
        " Details: http://127.0.0.1:8000/seeker?job=p2&lang=en"
    )
    # p1 was the first job, so the link moves to the first job left.
    assert claim.push["link"] == "http://127.0.0.1:8000/seeker?job=p2&lang=en"
    assert pushes.outbox_rows()[0]["link"] == claim.push["link"]
    assert claim.push["score"] == pytest.approx(0.8)


def test_digest_of_inactive_postings_skipped(trigger_store: tuple[object, PushStore]) -> None:
    store, pushes = trigger_store
    push_id = _write_digest(pushes, ["p1", "p2"])
    for posting_id in ("p1", "p2"):
        assert store.set_posting_active(posting_id, False)  # type: ignore[attr-defined]
    assert pushes.claim(push_id, DAY, RULES, LEASE).action == "done"
    row = pushes.outbox_rows()[0]
    assert (row["status"], row["skip_reason"]) == ("skipped", "posting_inactive")
    assert row["sent_day"] is None  # a skipped digest takes no place under the daily cap
    assert _shown(pushes) == []
    # The seeker never saw p1, so activating it again may push it to them.
    batch = PushBatch("posting.active:p1", [_candidate("sim-000001", "p1", 0.9)], RULES, DAY)
    assert store.set_posting_active("p1", True, pushes=batch)  # type: ignore[attr-defined]
    assert len(batch.written) == 1


def test_digest_with_active_postings_unchanged(trigger_store: tuple[object, PushStore]) -> None:
    _, pushes = trigger_store
    push_id = _write_digest(pushes, ["p1", "p2"])
    written = pushes.outbox_rows()[0]
    claim = pushes.claim(push_id, DAY, RULES, LEASE)
    assert claim.push is not None
    assert (claim.push["title"], claim.push["body"]) == (written["title"], written["body"])
    assert _shown(pushes) == ["p1", "p2"]


def test_digest_retry_drops_later_deactivation(trigger_store: tuple[object, PushStore]) -> None:
    store, pushes = trigger_store
    push_id = _write_digest(pushes, ["p1", "p2", "p3"])
    assert pushes.claim(push_id, DAY, RULES, LEASE).action == "send"
    pushes.mark_failed(push_id, "gateway down", DAY, RULES, timedelta(0))
    assert store.set_posting_active("p3", False)  # type: ignore[attr-defined]
    claim = pushes.claim(push_id, DAY, RULES, LEASE)
    assert claim.push is not None
    assert claim.push["title"] == "按新的求职意向，有2个岗位适合您"
    assert claim.push["attempts"] == 2
    assert pushes.mark_delivered(claim.push, DAY)
    assert not pushes.mark_delivered(claim.push, DAY)  # delivered once
    assert [row["status"] for row in pushes.outbox_rows()] == ["delivered"]


def test_digest_without_stored_jobs_sent(trigger_store: tuple[object, PushStore]) -> None:
    store, pushes = trigger_store
    push_id = _write_digest(pushes, ["p1"])
    with pushes._transaction() as tx:  # a digest written before its jobs were stored
        tx.execute("DELETE FROM push_digest_items")
    assert store.set_posting_active("p1", False)  # type: ignore[attr-defined]
    assert pushes.claim(push_id, DAY, RULES, LEASE).action == "send"


def test_digest_claimed_once_by_two_workers(trigger_store: tuple[object, PushStore]) -> None:
    store, pushes = trigger_store
    push_id = _write_digest(pushes, ["p1", "p2", "p3"])
    assert store.set_posting_active("p2", False)  # type: ignore[attr-defined]
    claims: list[str] = []
    errors: list[BaseException] = []

    def claim() -> None:
        try:
            claims.append(pushes.claim(push_id, DAY, RULES, LEASE).action)
        except BaseException as err:  # reported by the assert below
            errors.append(err)

    workers = [threading.Thread(target=claim) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert errors == []
    assert sorted(claims) == ["busy", "send"]
    row = pushes.outbox_rows()[0]
    assert row["title"] == "按新的求职意向，有2个岗位适合您"
    assert row["attempts"] == 1
    assert _shown(pushes) == ["p1", "p3"]


# --- pushes skipped before they were sent forget their shown jobs -------------------------


def _deliver_all(pushes: PushStore, at: datetime) -> list[str]:
    """Claim every push in write order at ``at``, mark the sent ones delivered; return actions."""
    actions = []
    for row in pushes.outbox_rows():
        claim = pushes.claim(row["push_id"], at, RULES, LEASE)
        actions.append(claim.action)
        if claim.push is not None:
            pushes.mark_delivered(claim.push, at)
    return actions


def _cap_one_push(pushes: PushStore) -> None:
    """Deliver p0..p2 (scores 0.5..0.7) and skip p3 (0.8) for the daily cap of 3."""
    _consent(pushes, "s1")
    for number in range(4):
        candidate = _candidate("s1", f"p{number}", 0.5 + number / 10)
        assert len(pushes.write_pushes(PushBatch("t", [candidate], RULES, DAY))) == 1
    assert _deliver_all(pushes, DAY) == ["send", "send", "send", "done"]
    assert pushes.outbox_rows()[3]["skip_reason"] == "daily_cap"


def test_cap_skip_forgets_shown_job(pushes: PushStore) -> None:
    _cap_one_push(pushes)
    assert _shown(pushes) == ["p0", "p1", "p2"]

    next_day = DAY + timedelta(days=1)
    again = pushes.write_pushes(PushBatch("t2", [_candidate("s1", "p3", 0.8)], RULES, next_day))
    assert len(again) == 1
    claim = pushes.claim(again[0], next_day, RULES, LEASE)
    assert claim.action == "send"


def test_cap_skip_not_compared_as_shown(pushes: PushStore) -> None:
    _cap_one_push(pushes)
    next_day = DAY + timedelta(days=1)
    # 0.75 beats the delivered 0.7; the skipped 0.8 never reached the seeker.
    written = pushes.write_pushes(PushBatch("t2", [_candidate("s1", "p4", 0.75)], RULES, next_day))
    assert len(written) == 1


def test_cap_skipped_job_in_next_digest(pushes: PushStore) -> None:
    _cap_one_push(pushes)
    next_day = DAY + timedelta(days=1)
    candidates = [_digest_candidate("s1", f"p{number}", 0.6) for number in range(5)]
    push_id = pushes.write_digest("s1", PushBatch("d", candidates, RULES, next_day))
    assert push_id is not None
    with pushes._transaction() as tx:
        rows = tx.rows("SELECT posting_id FROM push_digest_items WHERE push_id = ?", (push_id,))
    assert sorted(str(row["posting_id"]) for row in rows) == ["p3", "p4"]


def test_opt_out_skip_forgets_shown_job(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.9)], RULES, DAY))
    pushes.set_consent("s1", consent=False, at=DAY + timedelta(minutes=1))
    push_id = pushes.outbox_rows()[0]["push_id"]
    assert pushes.claim(push_id, DAY + timedelta(minutes=2), RULES, LEASE).action == "done"
    assert _shown(pushes) == []

    later = DAY + timedelta(days=2)
    pushes.set_consent("s1", consent=True, at=later - timedelta(hours=1))
    again = pushes.write_pushes(PushBatch("t2", [_candidate("s1", "p1", 0.9)], RULES, later))
    assert len(again) == 1
    assert pushes.claim(again[0], later, RULES, LEASE).action == "send"


def test_opted_out_digest_forgets_all_jobs(pushes: PushStore) -> None:
    push_id = _write_digest(pushes, ["p1", "p2", "p3"])
    pushes.set_consent("sim-000001", consent=False, at=DAY + timedelta(minutes=1))
    assert pushes.claim(push_id, DAY + timedelta(minutes=2), RULES, LEASE).action == "done"
    row = pushes.outbox_rows()[0]
    assert (row["status"], row["skip_reason"]) == ("skipped", "opted_out")
    assert _shown(pushes) == []

    later = DAY + timedelta(days=2)
    pushes.set_consent("sim-000001", consent=True, at=later - timedelta(hours=1))
    candidates = [_digest_candidate("sim-000001", p, 0.8) for p in ("p1", "p2", "p3")]
    again = pushes.write_digest("sim-000001", PushBatch("d2", candidates, RULES, later))
    assert again is not None
    assert _shown(pushes) == ["p1", "p2", "p3"]


def test_capped_digest_forgets_all_jobs(pushes: PushStore) -> None:
    _consent(pushes, "sim-000001")
    for number in range(3):
        candidate = _candidate("sim-000001", f"q{number}", 0.5 + number / 10)
        pushes.write_pushes(PushBatch("t", [candidate], RULES, DAY))
    _write_digest(pushes, ["p1", "p2"])
    assert _deliver_all(pushes, DAY) == ["send", "send", "send", "done"]
    digest = pushes.outbox_rows()[3]
    assert (digest["kind"], digest["skip_reason"]) == ("digest", "daily_cap")
    assert _shown(pushes) == ["q0", "q1", "q2"]


def test_no_contact_skip_forgets_shown_job(pushes: PushStore) -> None:
    _consent(pushes, "s1", channel="sms")
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.9)], RULES, DAY))
    push_id = pushes.outbox_rows()[0]["push_id"]
    assert pushes.claim(push_id, DAY, RULES, LEASE).action == "send"
    assert pushes.mark_skipped(push_id, "no_contact:no_mobile", 1)
    assert _shown(pushes) == []


def test_skip_after_failed_attempt_keeps_shown(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.9)], RULES, DAY))
    push_id = pushes.outbox_rows()[0]["push_id"]
    assert pushes.claim(push_id, DAY, RULES, LEASE).action == "send"
    # A gateway time-out: the message may have reached the phone all the same.
    pushes.mark_failed(push_id, "timed out", DAY, RULES, timedelta(minutes=1))
    pushes.set_consent("s1", consent=False, at=DAY + timedelta(minutes=2))
    assert pushes.claim(push_id, DAY + timedelta(minutes=3), RULES, LEASE).action == "done"

    assert pushes.outbox_rows()[0]["skip_reason"] == "opted_out"
    assert _shown(pushes) == ["p1"]
    later = DAY + timedelta(days=2)
    pushes.set_consent("s1", consent=True, at=later - timedelta(hours=1))
    assert pushes.write_pushes(PushBatch("t2", [_candidate("s1", "p1", 0.9)], RULES, later)) == []


def test_expired_claim_cannot_skip(pushes: PushStore) -> None:
    _consent(pushes, "s1", channel="sms")
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.9)], RULES, DAY))
    push_id = pushes.outbox_rows()[0]["push_id"]
    first = pushes.claim(push_id, DAY, RULES, LEASE)
    assert first.push is not None
    second = pushes.claim(push_id, DAY + LEASE * 2, RULES, LEASE)
    assert second.push is not None

    # The first worker, whose claim ran out, finds no address after the second claimed.
    assert not pushes.mark_skipped(push_id, "no_contact:no_mobile", int(first.push["attempts"]))
    assert pushes.outbox_rows()[0]["status"] == "sending"
    assert _shown(pushes) == ["p1"]
    assert pushes.mark_delivered(second.push, DAY + LEASE * 2)


def test_delivered_and_pending_stay_shown(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.8)], RULES, DAY))
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p2", 0.9)], RULES, DAY))
    first = pushes.outbox_rows()[0]["push_id"]
    claim = pushes.claim(first, DAY, RULES, LEASE)
    assert claim.push is not None
    pushes.mark_delivered(claim.push, DAY)
    later = DAY + timedelta(days=1)
    # p1 was delivered and p2 is pending: neither may be pushed again or beaten by 0.85.
    batch = [_candidate("s1", "p1", 0.99), _candidate("s1", "p3", 0.85)]
    assert pushes.write_pushes(PushBatch("t2", batch, RULES, later)) == []
    assert _shown(pushes) == ["p1", "p2"]


def test_left_over_skipped_row_taken_over(pushes: PushStore) -> None:
    _consent(pushes, "s1")
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.9)], RULES, DAY))
    with pushes._transaction() as tx:  # a push skipped without forgetting its shown job
        tx.execute("UPDATE push_outbox SET status = 'skipped', skip_reason = 'daily_cap'")
    assert _shown(pushes) == ["p1"]

    later = DAY + timedelta(days=1)
    worse = pushes.write_pushes(PushBatch("t2", [_candidate("s1", "p2", 0.6)], RULES, later))
    again = pushes.write_pushes(PushBatch("t3", [_candidate("s1", "p1", 0.7)], RULES, later))
    assert len(worse) == 1  # the skipped 0.9 is not compared
    assert len(again) == 1
    with pushes._transaction() as tx:
        rows = tx.rows("SELECT push_id, score FROM push_shown WHERE posting_id = 'p1'")
    assert [(row["push_id"], row["score"]) for row in rows] == [(again[0], 0.7)]


_FAIL_SHOWN_DELETE = {
    "sqlite": [
        "CREATE TRIGGER shown_delete_fails BEFORE DELETE ON push_shown"
        " BEGIN SELECT RAISE(ABORT, 'push_shown delete failed'); END"
    ],
    "postgres": [
        "CREATE FUNCTION shown_delete_fails() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'push_shown delete failed'; END $$",
        "CREATE TRIGGER shown_delete_fails BEFORE DELETE ON push_shown"
        " FOR EACH ROW EXECUTE FUNCTION shown_delete_fails()",
    ],
}


def test_failed_forget_keeps_push_unskipped(pushes: PushStore) -> None:
    _cap_one_push(pushes)  # s1 has had the day's 3 pushes, so the claim of p9 skips it
    pushes.write_pushes(
        PushBatch("t", [_candidate("s1", "p9", 0.95)], RULES, DAY + timedelta(minutes=1))
    )
    push_id = pushes.outbox_rows()[4]["push_id"]
    with pushes._transaction() as tx:
        store = "sqlite" if tx.is_sqlite else "postgres"
        for statement in _FAIL_SHOWN_DELETE[store]:
            tx.execute(statement)
    try:
        with pytest.raises((sqlite3.DatabaseError, psycopg.Error), match="delete failed"):
            pushes.claim(push_id, DAY + timedelta(minutes=2), RULES, LEASE)
    finally:
        with pushes._transaction() as tx:
            tx.execute(
                "DROP TRIGGER shown_delete_fails" + ("" if tx.is_sqlite else " ON push_shown")
            )
            if not tx.is_sqlite:
                tx.execute("DROP FUNCTION shown_delete_fails()")
    row = pushes.outbox_rows()[4]
    assert (row["status"], row["skip_reason"]) == ("pending", None)
    assert "p9" in _shown(pushes)


def _wait_for_lock_wait(pool: Pool, timeout_s: float = 10.0) -> None:
    """Wait until some session of the test database waits for a row lock."""
    deadline = time.monotonic() + timeout_s
    with pool.connection() as connection:
        while time.monotonic() < deadline:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            connection.commit()
            if row is not None and row[0] > 0:
                return
            time.sleep(0.05)
    raise AssertionError(f"no session waited for a lock within {timeout_s} s")


def test_deactivation_and_skip_no_deadlock(pg_pool: Pool) -> None:
    _clear_push_tables(pg_pool)
    pushes = PushStore.postgres(pg_pool)
    _consent(pushes, "s1")
    pushes.write_pushes(PushBatch("t", [_candidate("s1", "p1", 0.9)], RULES, DAY))
    push_id = pushes.outbox_rows()[0]["push_id"]
    pushes.set_consent("s1", consent=False, at=DAY + timedelta(minutes=1))
    cancelled: list[int] = []
    errors: list[BaseException] = []

    def deactivate() -> None:
        try:
            with pg_pool.connection() as connection, connection.transaction():
                cancelled.append(cancel_posting_pushes(SqlTx(connection), "p1"))
        except BaseException as err:  # reported by the assert below
            errors.append(err)

    deactivation = threading.Thread(target=deactivate)
    with pg_pool.connection() as connection, connection.transaction():
        claim_tx = SqlTx(connection)
        # Take the claim's first lock, on the outbox row, before the deactivation starts.
        claim_tx.rows("SELECT push_id FROM push_outbox WHERE push_id = ? FOR UPDATE", (push_id,))
        deactivation.start()
        _wait_for_lock_wait(pg_pool)
        claim = claim_push(claim_tx, push_id, DAY + timedelta(minutes=2), RULES, LEASE)
    deactivation.join(timeout=30)

    assert errors == []
    assert claim.action == "done"
    assert cancelled == [0]  # the claim had skipped the push already
    row = pushes.outbox_rows()[0]
    assert (row["status"], row["skip_reason"]) == ("skipped", "opted_out")
    assert _shown(pushes) == []
