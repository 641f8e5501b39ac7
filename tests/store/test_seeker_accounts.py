"""Seeker account links and contacts on both stores, and migration 0014's rollback."""

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from store.postgres import PostgresStore
from store.seeker_accounts import ProfileConflictError, ProfileWrite, SeekerAccounts
from store.seeker_records import EnvelopeUpdate
from store.sqlite import SqliteStore, write_store
from tests.store.conftest import make_database, pg_pool, pg_store, pg_url
from tests.store.test_contract import _inputs
from tests.store.test_curation_store import _migrated, _roll_back

__all__ = ["make_database", "pg_pool", "pg_store", "pg_url"]

AT = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
INDEX_A = "a" * 64
INDEX_B = "b" * 64


def _row(seeker_id: str, mobile_index: str, **changes: Any) -> dict[str, Any]:
    """A stored profile row whose envelopes are placeholders; the store never decrypts."""
    row: dict[str, Any] = {
        "seeker_id": seeker_id, "simulated": False, "group": "general", "education": 4,
        "experience_years": 2.0, "major": "", "occupation_wish_code": "",
        "occupation_wish_name": "", "keywords": "", "salary_wish_min": None,
        "salary_wish_max": None, "max_commute_min": 45, "modes": "walk;transit",
        "home_lon": 108.94, "home_lat": 34.22, "home_kind": "registered_point",
        "home_district_code": "610113", "home_street_code": "610113001",
        "home_community_code": "", "name_enc": "pi1.k.n", "mobile_enc": "pi1.k.m",
        "id_number_enc": "pi1.k.i", "hardship_enc": "pi1.k.h", "home_enc": "pi1.k.home",
        "id_number_index": None, "mobile_index": mobile_index,
    }  # fmt: skip
    row.update(changes)
    return row


@pytest.fixture(params=["sqlite", "postgres"])
def accounts(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, SeekerAccounts]:
    """The seeker account tables of each store, beside the contract inputs."""
    inputs = _inputs()
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite"
        write_store(path, **inputs)
        return SqliteStore(path), SeekerAccounts.sqlite(path)
    store: PostgresStore = request.getfixturevalue("pg_store")
    store.replace_all(**inputs)
    with store.pool.connection() as connection:
        connection.execute("DELETE FROM seeker_accounts")
        connection.execute("DELETE FROM seeker_contacts")
    return store, SeekerAccounts.postgres(store.pool)


def test_save_inserts_links_and_updates(accounts: tuple[Any, SeekerAccounts]) -> None:
    store, tables = accounts
    before = store.count_seekers()

    tables.save_profile(ProfileWrite("seeker-1", _row("reg-1", INDEX_A)), AT)
    tables.save_profile(ProfileWrite("seeker-1", _row("reg-1", INDEX_A, max_commute_min=90)), AT)

    assert tables.linked_seeker("seeker-1", INDEX_A) == "reg-1"
    assert tables.linked_account("reg-1") == "seeker-1"
    assert store.seeker_record("reg-1")["max_commute_min"] == 90
    assert store.count_seekers() == before + 1


def test_link_needs_equal_mobile_index(accounts: tuple[Any, SeekerAccounts]) -> None:
    _, tables = accounts
    tables.save_profile(ProfileWrite("seeker-1", _row("reg-1", INDEX_A)), AT)

    assert tables.linked_seeker("seeker-1", INDEX_B) is None
    assert tables.link_by_mobile("seeker-2", INDEX_B, AT) is None
    assert tables.link_by_mobile("seeker-2", INDEX_A, AT) == "reg-1"
    assert tables.linked_account("reg-1") == "seeker-2"  # one mobile, one account


def test_profile_of_other_account_conflicts(accounts: tuple[Any, SeekerAccounts]) -> None:
    store, tables = accounts
    tables.save_profile(ProfileWrite("seeker-1", _row("reg-1", INDEX_A)), AT)

    with pytest.raises(ProfileConflictError):
        tables.save_profile(ProfileWrite("seeker-2", _row("reg-1", INDEX_A, education=1)), AT)

    assert store.seeker_record("reg-1")["education"] == 4


def test_openid_bind_and_erase(accounts: tuple[Any, SeekerAccounts]) -> None:
    _, tables = accounts
    tables.save_profile(ProfileWrite("seeker-1", _row("reg-1", INDEX_A)), AT)
    tables.bind_openid("reg-1", "pi1.k.first", AT)
    tables.bind_openid("reg-1", "pi1.k.second", AT)

    assert tables.openid_envelope("reg-1") == "pi1.k.second"
    assert tables.erase_seeker("reg-1") == {"seeker_accounts": 1, "seeker_contacts": 1}
    assert tables.erase_seeker("reg-1") == {"seeker_accounts": 0, "seeker_contacts": 0}
    assert tables.openid_envelope("reg-1") is None
    assert tables.linked_account("reg-1") is None


def test_openid_rotation_queries(accounts: tuple[Any, SeekerAccounts]) -> None:
    _, tables = accounts
    tables.save_profile(ProfileWrite("seeker-1", _row("reg-1", INDEX_A)), AT)
    tables.bind_openid("reg-1", "pi1.k.first", AT)

    rows = tables.openids_to_rotate("k2", 10)
    written = tables.replace_openids([EnvelopeUpdate("reg-1", ("pi1.k.first",), ("pi1.k2.x",))])
    stale = tables.replace_openids([EnvelopeUpdate("reg-1", ("pi1.k.first",), ("pi1.k2.y",))])

    assert rows == [("reg-1", ("pi1.k.first",))]
    assert written == 1
    assert stale == 0
    assert tables.count_openids_to_rotate("k2") == 0
    assert tables.openid_envelope("reg-1") == "pi1.k2.x"


def test_postgres_rejects_plaintext_openid(pg_store: PostgresStore) -> None:
    tables = SeekerAccounts.postgres(pg_store.pool)

    with pytest.raises(psycopg.errors.CheckViolation):
        tables.bind_openid("reg-x", "oPlainOpenId123", AT)


def test_postgres_seeker_accounts_rolls_back(make_database: Callable[[], str]) -> None:
    url = _migrated(make_database)
    _roll_back(url, "0014_seeker_accounts")

    with psycopg.connect(url) as connection:
        tables = connection.execute(
            "SELECT to_regclass('seeker_accounts'), to_regclass('seeker_contacts'),"
            " to_regclass('seekers_registered_row')"
        ).fetchone()
    assert tables == (None, None, None)
