"""The assistance tables on SQLite and PostgreSQL: targets, the 131 ledger, visits, audit."""

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from matching.assistance import LedgerConflictError, LedgerError
from store.assistance_store import (
    AssistanceStore,
    RecommendationNotFoundError,
    TargetAssignment,
    TargetNotFoundError,
    VisitNotFoundError,
)
from store.audit import AuditChain, AuditEntry, AuditWrite
from store.migrations import apply_migrations
from store.postgres import Pool
from store.seeker_records import EnvelopeUpdate
from store.sqlite import SqliteStore, write_store
from tests.store.test_contract import _inputs
from tests.store.test_curation_store import _migrated, _roll_back

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
CHAIN = AuditChain(secrets.token_bytes(32))


@dataclass
class Case:
    """One store kind: the assistance store and the operation log it appends to."""

    name: str
    store: AssistanceStore
    audit_count: Callable[[], int]


def _audit(action: str = "assistance.test") -> AuditWrite:
    entry = AuditEntry(NOW, "officer-1", "assistance_officer", "district:610113", action,
                       "seeker:sim-1", "ok", 200, "127.0.0.1", "req-1")  # fmt: skip
    return AuditWrite(entry, CHAIN)


@pytest.fixture(params=["sqlite", "postgres"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite"
        write_store(path, **_inputs())
        sqlite_store = SqliteStore(path)
        return Case(
            "sqlite",
            AssistanceStore.sqlite(path),
            lambda: sum(1 for _ in sqlite_store.audit_records()),
        )
    pool: Pool = request.getfixturevalue("pg_pool")
    with pool.connection() as connection:
        connection.execute("DELETE FROM assistance_visits")
        connection.execute("DELETE FROM service_131_recommendations")
        connection.execute("DELETE FROM assistance_targets")

    def pg_count() -> int:
        with pool.connection() as connection:
            row = connection.execute("SELECT count(*) FROM audit_log").fetchone()
        return 0 if row is None else int(row[0])

    return Case("postgres", AssistanceStore.postgres(pool), pg_count)


def _assign(case: Case, *seeker_ids: str, officer: str = "officer-1") -> None:
    assignments = [
        TargetAssignment(seeker_id, officer, "district:610113", "610113", f"pi1.k.{seeker_id}")
        for seeker_id in seeker_ids
    ]
    case.store.assign_targets(assignments, "officer-1", NOW, _audit("assistance.assign"))


def _guided(case: Case, *seeker_ids: str) -> None:
    _assign(case, *seeker_ids)
    for seeker_id in seeker_ids:
        case.store.record_guidance(seeker_id, "policy", NOW, _audit())


def test_assign_writes_audit(case: Case) -> None:
    before = case.audit_count()

    _assign(case, "sim-1", "sim-2")

    assert [row["seeker_id"] for row in case.store.targets("officer-1")] == ["sim-1", "sim-2"]
    assert case.audit_count() == before + 1
    target = case.store.target("sim-1")
    assert target is not None
    assert target["assigned_at"] == NOW
    assert target["guidance_at"] is None


def test_reassign_keeps_ledger(case: Case) -> None:
    _guided(case, "sim-1")

    _assign(case, "sim-1", officer="officer-2")

    target = case.store.target("sim-1")
    assert target is not None
    assert target["officer_id"] == "officer-2"
    assert target["guidance_at"] == NOW
    assert case.store.targets("officer-1") == []


def test_other_officers_target_not_taken(case: Case) -> None:
    _assign(case, "sim-1", officer="officer-2")  # assigned by officer-1
    before = case.audit_count()
    taking = TargetAssignment("sim-1", "officer-3", "district:610113", "610113", "pi1.k.new")

    with pytest.raises(LedgerConflictError, match="another officer"):
        case.store.assign_targets(
            [TargetAssignment("sim-9", "officer-3", "district:610113", "610113", "pi1.k.x"),
             taking],
            "officer-3", NOW, _audit("assistance.assign"),
        )  # fmt: skip

    target = case.store.target("sim-1")
    assert target is not None
    assert target["officer_id"] == "officer-2"
    assert target["category_enc"] == "pi1.k.sim-1"
    assert case.store.target("sim-9") is None
    assert case.audit_count() == before


def test_guidance_only_once(case: Case) -> None:
    _guided(case, "sim-1")
    before = case.audit_count()

    with pytest.raises(LedgerError, match="already recorded"):
        case.store.record_guidance("sim-1", "skills", NOW, _audit())

    assert case.audit_count() == before


def test_unknown_target(case: Case) -> None:
    with pytest.raises(TargetNotFoundError, match="sim-404"):
        case.store.record_guidance("sim-404", "policy", NOW, _audit())


def test_sign_off_before_guidance(case: Case) -> None:
    _assign(case, "sim-1")

    with pytest.raises(LedgerError, match="career guidance"):
        case.store.sign_off("sim-1", [("p1", "610113")], {"p1": 1}, "officer-1", NOW, _audit())

    assert case.store.recommendations(["sim-1"]) == []


def test_sign_off_respects_headcount(case: Case) -> None:
    _guided(case, "sim-1", "sim-2")
    case.store.sign_off("sim-1", [("p1", "610113")], {"p1": 1}, "officer-1", NOW, _audit())
    before = case.audit_count()

    with pytest.raises(LedgerConflictError, match="no vacancy left"):
        case.store.sign_off(
            "sim-2", [("p2", "610113"), ("p1", "610113")], {"p1": 1, "p2": 5}, "officer-1", NOW,
            _audit(),
        )  # fmt: skip

    # The whole sign-off rolled back, p2 included, and no audit record was kept.
    assert case.store.recommendations(["sim-2"]) == []
    assert case.audit_count() == before
    assert case.store.holding_counts() == {"p1": 1}


def test_declined_frees_vacancy(case: Case) -> None:
    _guided(case, "sim-1", "sim-2")
    case.store.sign_off("sim-1", [("p1", "610113")], {"p1": 1}, "officer-1", NOW, _audit())
    case.store.move_recommendation("sim-1", "p1", "delivered", NOW, _audit())
    case.store.move_recommendation("sim-1", "p1", "declined", NOW, _audit())

    case.store.sign_off("sim-2", [("p1", "610113")], {"p1": 1}, "officer-1", NOW, _audit())

    assert case.store.holding_counts() == {"p1": 1}


def test_sign_off_at_most_three(case: Case) -> None:
    _guided(case, "sim-1")
    pairs = [(f"p{i}", "610113") for i in range(3)]
    counts = {f"p{i}": 1 for i in range(4)}
    case.store.sign_off("sim-1", pairs, counts, "officer-1", NOW, _audit())

    with pytest.raises(LedgerError, match="at most 3"):
        case.store.sign_off("sim-1", [("p3", "610113")], counts, "officer-1", NOW, _audit())


def test_state_rules_and_delivery_visit(case: Case) -> None:
    _guided(case, "sim-1")
    case.store.sign_off("sim-1", [("p1", "610113")], {"p1": 1}, "officer-1", NOW, _audit())

    with pytest.raises(LedgerError, match="cannot move to 'hired'"):
        case.store.move_recommendation("sim-1", "p1", "hired", NOW, _audit())
    row = case.store.move_recommendation("sim-1", "p1", "delivered", NOW, _audit())

    assert row["state"] == "delivered"
    assert row["delivered_at"] == NOW
    visits = case.store.visits(["sim-1"], open_only=True)
    assert [(v["due_on"], v["reason"]) for v in visits] == [(date(2026, 12, 19), "delivery")]


def test_recommendation_not_found(case: Case) -> None:
    _guided(case, "sim-1")

    with pytest.raises(RecommendationNotFoundError, match="p9"):
        case.store.move_recommendation("sim-1", "p9", "delivered", NOW, _audit())


def test_training_offer_and_response(case: Case) -> None:
    _assign(case, "sim-1")
    with pytest.raises(LedgerError, match="career guidance"):
        case.store.offer_training("sim-1", "uid1 某培训学校", NOW, _audit())
    case.store.record_guidance("sim-1", "policy", NOW, _audit())
    with pytest.raises(LedgerError, match="training offer before"):
        case.store.record_training_response("sim-1", "accepted", NOW, _audit())

    case.store.offer_training("sim-1", "uid1 某培训学校", NOW, _audit())
    target = case.store.record_training_response("sim-1", "accepted", NOW, _audit())

    assert target["training_institution"] == "uid1 某培训学校"
    assert target["training_response"] == "accepted"
    with pytest.raises(LedgerError, match="already"):
        case.store.offer_training("sim-1", "uid2", NOW, _audit())


def test_visits_schedule_and_complete(case: Case) -> None:
    _assign(case, "sim-1")
    today = NOW.date()
    with pytest.raises(LedgerError, match="before today"):
        case.store.schedule_visit("sim-1", today - timedelta(days=1), NOW, _audit())

    visit = case.store.schedule_visit("sim-1", today, NOW, _audit())
    done = case.store.complete_visit("sim-1", visit["visit_id"], NOW, _audit())

    assert done["done_at"] == NOW
    assert case.store.visits(["sim-1"], open_only=True) == []
    with pytest.raises(LedgerError, match="already done"):
        case.store.complete_visit("sim-1", visit["visit_id"], NOW, _audit())
    with pytest.raises(VisitNotFoundError):
        case.store.complete_visit("sim-1", "visit-0000000000000000", NOW, _audit())


def test_delete_target_erases_ledger(case: Case) -> None:
    _guided(case, "sim-1")
    case.store.sign_off("sim-1", [("p1", "610113")], {"p1": 1}, "officer-1", NOW, _audit())
    case.store.move_recommendation("sim-1", "p1", "delivered", NOW, _audit())

    assert case.store.delete_target("sim-1") is True

    assert case.store.target("sim-1") is None
    assert case.store.recommendations(["sim-1"]) == []
    assert case.store.visits(["sim-1"]) == []
    assert case.store.delete_target("sim-1") is False


def test_concurrent_sign_off_one_vacancy(case: Case) -> None:
    seekers = [f"sim-{i}" for i in range(6)]
    _guided(case, *seekers)
    outcomes: list[str] = []
    barrier = threading.Barrier(len(seekers))

    def sign(seeker_id: str) -> None:
        barrier.wait()
        try:
            case.store.sign_off(seeker_id, [("p1", "610113")], {"p1": 2}, "o", NOW, _audit())
            outcomes.append("ok")
        except LedgerConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=sign, args=(s,)) for s in seekers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["conflict"] * 4 + ["ok"] * 2
    assert case.store.holding_counts() == {"p1": 2}


def test_category_rotation_queries(case: Case) -> None:
    _assign(case, "sim-1", "sim-2", "sim-3")
    assert case.store.count_categories_to_rotate("k") == 0
    assert case.store.count_categories_to_rotate("k_") == 3  # "_" is no LIKE wildcard here

    rows = case.store.categories_to_rotate("k2", 2)
    stale = EnvelopeUpdate("sim-3", ("pi1.k.other",), ("pi1.k2.other",))
    written = case.store.replace_categories(
        [EnvelopeUpdate(seeker_id, old, ("pi1.k2." + seeker_id,)) for seeker_id, old in rows]
        + [stale]
    )

    assert rows == [("sim-1", ("pi1.k.sim-1",)), ("sim-2", ("pi1.k.sim-2",))]
    assert written == 2
    assert case.store.count_categories_to_rotate("k2") == 1
    assert case.store.categories_to_rotate("k2", 10) == [("sim-3", ("pi1.k.sim-3",))]


def test_sqlite_rebuild_keeps_ledger(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    write_store(path, **_inputs())
    store = AssistanceStore.sqlite(path)
    store.assign_targets(
        [TargetAssignment("sim-1", "officer-1", "district:610113", "610113", "pi1.k.x")],
        "officer-1", NOW, _audit(),
    )  # fmt: skip
    store.record_guidance("sim-1", "policy", NOW, _audit())
    store.sign_off("sim-1", [("p1", "610113")], {"p1": 1}, "officer-1", NOW, _audit())

    write_store(path, **_inputs())

    rebuilt = AssistanceStore.sqlite(path)
    target = rebuilt.target("sim-1")
    assert target is not None
    assert target["guidance_at"] == NOW
    assert [row["posting_id"] for row in rebuilt.recommendations()] == ["p1"]


def test_postgres_assistance_migration_rolls_back(make_database: Callable[[], str]) -> None:
    url = _migrated(make_database)
    _roll_back(url, "0012_assistance")

    with psycopg.connect(url) as connection:
        tables: list[Any] = [
            connection.execute(f"SELECT to_regclass('{name}')").fetchone()
            for name in ("assistance_targets", "service_131_recommendations", "assistance_visits")
        ]
    assert tables == [(None,), (None,), (None,)]
    assert apply_migrations(url) == ["0012_assistance"]
