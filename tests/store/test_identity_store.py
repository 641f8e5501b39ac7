"""The identity store contract, run against SQLite and real PostgreSQL alike.

Each test creates its own account ids, so the tests share one migrated
PostgreSQL database and one small organisation tree.
"""

import dataclasses
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from geo.regions import load_regions
from store.identity import (
    CITY_ORG_ID,
    Account,
    AccountEnvelopeUpdate,
    AccountExistsError,
    OneTimeCode,
    Organisation,
    OrganisationNotFoundError,
    Role,
    RoleConflictError,
    Session,
    organisations_from_regions,
)
from store.identity_sql import SqlIdentity
from store.postgres import Pool
from store.postgres_identity import PostgresIdentity
from store.sqlite_identity import SqliteIdentity

NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)

TREE = [
    Organisation(CITY_ORG_ID, None, "city", "西安市人力资源和社会保障局", "610100", None),
    Organisation(
        "district:610113", CITY_ORG_ID, "district", "雁塔区就业服务中心", "610113", "610113"
    ),
    Organisation(
        "district:610102", CITY_ORG_ID, "district", "新城区就业服务中心", "610102", "610102"
    ),
    Organisation(
        "street:610113001",
        "district:610113",
        "street",
        "小寨路街道劳动保障所",
        "610113001",
        "610113",
    ),
    Organisation(
        "station:610113001001",
        "street:610113001",
        "station",
        "某社区就业服务站",
        "610113001001",
        "610113",
    ),
]


@pytest.fixture(params=["sqlite", "postgres"])
def identity(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlIdentity]:
    """An identity store with the small test tree, in SQLite or PostgreSQL."""
    store: SqlIdentity
    if request.param == "sqlite":
        store = SqliteIdentity(tmp_path / "identity.sqlite")
    else:
        pool: Pool = request.getfixturevalue("pg_pool")
        store = PostgresIdentity(pool)
    store.seed_organisations(TREE)
    yield store


def _account(org_id: str | None = "district:610113", *roles: Role, kind: str = "staff") -> Account:
    unique = uuid.uuid4().hex[:10]
    return Account(
        account_id=f"acc-{unique}",
        kind=kind,  # type: ignore[arg-type]
        login=f"user-{unique}",
        org_id=org_id,
        name_enc="v1:envelope-name",
        mobile_enc="v1:envelope-mobile",
        mobile_index=f"idx-{unique}",
        password_hash="$argon2id$placeholder" if kind == "staff" else None,
        password_changed_at=NOW if kind == "staff" else None,
        second_factor="sms",
        totp_secret_enc=None,
        locked_until=None,
        created_at=NOW,
        roles=frozenset(roles),
    )


def _raw(identity: SqlIdentity, statement: str) -> None:
    with identity.transaction() as tx:
        tx.run(statement)


def test_seed_is_idempotent(identity: SqlIdentity) -> None:
    assert identity.seed_organisations(TREE) == 0
    assert identity.organisation("district:610113") == TREE[1]
    assert identity.organisation("district:999999") is None


def test_subtree_district_codes(identity: SqlIdentity) -> None:
    assert identity.subtree_district_codes(CITY_ORG_ID) >= {"610113", "610102"}
    assert identity.subtree_district_codes("district:610113") == {"610113"}
    assert identity.subtree_district_codes("station:610113001001") == {"610113"}
    assert identity.subtree_district_codes("district:999999") == frozenset()


def test_is_within_follows_parents(identity: SqlIdentity) -> None:
    assert identity.is_within("station:610113001001", CITY_ORG_ID)
    assert identity.is_within("station:610113001001", "district:610113")
    assert identity.is_within("district:610113", "district:610113")
    assert not identity.is_within("station:610113001001", "district:610102")
    assert not identity.is_within("district:610113", "street:610113001")


def test_organisation_within_one_query(identity: SqlIdentity) -> None:
    station = identity.organisation("station:610113001001")

    assert identity.organisation_within("station:610113001001", CITY_ORG_ID) == station
    assert identity.organisation_within("district:610113", "district:610113") == TREE[1]
    assert identity.organisation_within("station:610113001001", "district:610102") is None
    assert identity.organisation_within("district:999999", CITY_ORG_ID) is None


def test_account_envelope_rotation_rows(identity: SqlIdentity) -> None:
    sms = replace(_account(), name_enc="pi1.k1.n", mobile_enc="pi1.k2.m")
    totp = replace(
        _account(), name_enc="pi1.k2.n", mobile_enc="pi1.k2.m", second_factor="totp",
        totp_secret_enc="pi1.k1.t",
    )  # fmt: skip
    done = replace(_account(), name_enc="pi1.k2.n", mobile_enc="pi1.k2.m")
    for account in (sms, totp, done):
        identity.create_account(account)
    mine = {sms.account_id, totp.account_id, done.account_id}

    rows = [row for row in identity.account_envelopes_to_rotate("k2", 100) if row[0] in mine]
    stale = AccountEnvelopeUpdate(sms.account_id, ("pi1.k0.x", "pi1.k2.m", None), ("a", "b", None))
    fresh = [
        AccountEnvelopeUpdate(sms.account_id, ("pi1.k1.n", "pi1.k2.m", None),
                              ("pi1.k2.N", "pi1.k2.m", None)),
        AccountEnvelopeUpdate(totp.account_id, ("pi1.k2.n", "pi1.k2.m", "pi1.k1.t"),
                              ("pi1.k2.n", "pi1.k2.m", "pi1.k2.T")),
    ]  # fmt: skip

    assert sorted(rows) == sorted(
        [(sms.account_id, ("pi1.k1.n", "pi1.k2.m", None)),
         (totp.account_id, ("pi1.k2.n", "pi1.k2.m", "pi1.k1.t"))]
    )  # fmt: skip
    assert identity.replace_account_envelopes([stale]) == 0
    assert identity.replace_account_envelopes(fresh) == 2
    assert not [r for r in identity.account_envelopes_to_rotate("k2", 100) if r[0] in mine]
    assert identity.account(sms.account_id).name_enc == "pi1.k2.N"  # type: ignore[union-attr]
    assert identity.account(totp.account_id).totp_secret_enc == "pi1.k2.T"  # type: ignore[union-attr]


def test_parent_must_be_one_level_up(identity: SqlIdentity) -> None:
    wrong = Organisation(
        "station:x", "district:610113", "station", "错层", "610113999999", "610113"
    )
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.CheckViolation)):
        identity.seed_organisations([wrong])
    assert identity.organisation("station:x") is None


def test_city_must_have_no_parent(identity: SqlIdentity) -> None:
    wrong = Organisation("city-2", "district:610113", "city", "第二市局", "610100", None)
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.CheckViolation)):
        identity.seed_organisations([wrong])


def test_account_round_trip(identity: SqlIdentity) -> None:
    account = _account("district:610113", Role.STATION_STAFF, Role.ASSISTANCE_OFFICER)
    identity.create_account(account)
    assert identity.account(account.account_id) == account
    assert identity.account_by_login(account.login) == account
    assert identity.account_by_mobile("staff", account.mobile_index) == account
    assert identity.account_by_mobile("seeker", account.mobile_index) is None


def test_duplicate_login_rejected(identity: SqlIdentity) -> None:
    first = _account(None, Role.SEEKER, kind="seeker")
    identity.create_account(first)
    second = _account(None, Role.SEEKER, kind="seeker")
    clash = dataclasses.replace(second, mobile_index=first.mobile_index)
    with pytest.raises(AccountExistsError):
        identity.create_account(clash)
    assert identity.account(clash.account_id) is None


def test_unknown_organisation_rejected(identity: SqlIdentity) -> None:
    with pytest.raises(OrganisationNotFoundError, match="district:999999"):
        identity.create_account(_account("district:999999", Role.STATION_STAFF))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN),
        (Role.SECURITY_ADMIN, Role.AUDIT_ADMIN),
        (Role.AUDIT_ADMIN, Role.SYSTEM_ADMIN),
    ],
)
def test_two_admin_roles_rejected(identity: SqlIdentity, first: Role, second: Role) -> None:
    with pytest.raises(RoleConflictError, match="each administrator role needs its own account"):
        identity.create_account(_account(CITY_ORG_ID, first, second))

    account = _account(CITY_ORG_ID, first)
    identity.create_account(account)
    with pytest.raises(RoleConflictError, match=second.value):
        identity.grant_role(account.account_id, second)
    stored = identity.account(account.account_id)
    assert stored is not None
    assert stored.roles == {first}


def test_admin_rule_holds_in_raw_sql(identity: SqlIdentity) -> None:
    """The database itself rejects a second admin role, not only the Python layer."""
    account = _account(CITY_ORG_ID, Role.AUDIT_ADMIN)
    identity.create_account(account)
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
        _raw(
            identity,
            "INSERT INTO account_roles (account_id, role)"
            f" VALUES ('{account.account_id}', 'security_admin')",
        )


def test_admin_role_with_business_role_allowed(identity: SqlIdentity) -> None:
    account = _account(CITY_ORG_ID, Role.SYSTEM_ADMIN)
    identity.create_account(account)
    identity.grant_role(account.account_id, Role.ANALYST)
    identity.grant_role(account.account_id, Role.ANALYST)  # granting twice is a no-op
    stored = identity.account(account.account_id)
    assert stored is not None
    assert stored.roles == {Role.SYSTEM_ADMIN, Role.ANALYST}


def test_lockout_after_limit(identity: SqlIdentity) -> None:
    account = _account()
    identity.create_account(account)
    window, lock_for = timedelta(minutes=15), timedelta(minutes=30)
    results = [
        identity.record_login_failure(
            account.account_id, NOW + timedelta(minutes=i), window=window, limit=5,
            lock_for=lock_for,
        )
        for i in range(5)
    ]  # fmt: skip
    assert results[:4] == [None] * 4
    assert results[4] == NOW + timedelta(minutes=4) + lock_for
    stored = identity.account(account.account_id)
    assert stored is not None
    assert stored.locked_until == NOW + timedelta(minutes=34)


def test_failures_outside_window_do_not_lock(identity: SqlIdentity) -> None:
    account = _account()
    identity.create_account(account)
    window = timedelta(minutes=15)
    for i in range(8):
        locked = identity.record_login_failure(
            account.account_id, NOW + timedelta(minutes=4 * i), window=window, limit=5,
            lock_for=timedelta(minutes=30),
        )  # fmt: skip
        assert locked is None, f"failure {i} locked although at most 4 fall within 15 minutes"


def test_cleared_failures_start_over(identity: SqlIdentity) -> None:
    account = _account()
    identity.create_account(account)
    window, lock_for = timedelta(minutes=15), timedelta(minutes=30)
    for i in range(4):
        at = NOW + timedelta(seconds=i)
        identity.record_login_failure(
            account.account_id, at, window=window, limit=5, lock_for=lock_for
        )
    identity.clear_login_failures(account.account_id)
    again = identity.record_login_failure(
        account.account_id, NOW, window=window, limit=5, lock_for=lock_for
    )
    assert again is None


def test_session_idle_and_revoke(identity: SqlIdentity) -> None:
    account = _account()
    identity.create_account(account)
    idle = timedelta(minutes=30)
    session = Session(f"s-{uuid.uuid4().hex}", account.account_id, "dev-1", NOW, NOW)
    identity.create_session(session)

    touched = identity.touch_session(session.session_id, NOW + timedelta(minutes=29), idle)
    assert touched is not None
    assert touched.last_seen_at == NOW + timedelta(minutes=29)
    # Activity moved the idle clock, so 50 minutes after creation it is still live.
    assert identity.touch_session(session.session_id, NOW + timedelta(minutes=50), idle)
    assert identity.touch_session(session.session_id, NOW + timedelta(minutes=81), idle) is None

    other = Session(f"s-{uuid.uuid4().hex}", account.account_id, None, NOW, NOW)
    identity.create_session(other)
    assert identity.revoke_session(other.session_id, NOW, "logout")
    assert not identity.revoke_session(other.session_id, NOW, "logout")
    assert identity.touch_session(other.session_id, NOW, idle) is None


def test_revoke_account_sessions(identity: SqlIdentity) -> None:
    account = _account()
    identity.create_account(account)
    ids = [f"s-{uuid.uuid4().hex}" for _ in range(3)]
    for session_id in ids:
        identity.create_session(Session(session_id, account.account_id, None, NOW, NOW))
    assert identity.revoke_account_sessions(account.account_id, NOW, "locked") == 3
    for session_id in ids:
        assert identity.touch_session(session_id, NOW, timedelta(minutes=30)) is None


def test_device_binding(identity: SqlIdentity) -> None:
    account = _account()
    identity.create_account(account)
    assert not identity.device_bound(account.account_id, "pad-7")
    identity.bind_device(account.account_id, "pad-7", "社区平板", NOW)
    assert identity.device_bound(account.account_id, "pad-7")
    assert identity.unbind_device(account.account_id, "pad-7", NOW)
    assert not identity.device_bound(account.account_id, "pad-7")
    identity.bind_device(account.account_id, "pad-7", "社区平板", NOW)
    assert identity.device_bound(account.account_id, "pad-7")


def _code(mobile_index: str, code_hash: str, created: datetime = NOW) -> OneTimeCode:
    return OneTimeCode(
        f"c-{uuid.uuid4().hex}", mobile_index, "login", code_hash, created,
        created + timedelta(minutes=5),
    )  # fmt: skip


def test_code_single_use(identity: SqlIdentity) -> None:
    mobile = f"m-{uuid.uuid4().hex}"
    identity.store_code(_code(mobile, "h1"))
    later = NOW + timedelta(minutes=1)
    assert identity.consume_code(mobile, "login", "h1", later, max_attempts=5)
    assert not identity.consume_code(mobile, "login", "h1", later, max_attempts=5)


def test_code_expires(identity: SqlIdentity) -> None:
    mobile = f"m-{uuid.uuid4().hex}"
    identity.store_code(_code(mobile, "h1"))
    expired = NOW + timedelta(minutes=5, seconds=1)
    assert not identity.consume_code(mobile, "login", "h1", expired, max_attempts=5)


def test_code_attempts_limited(identity: SqlIdentity) -> None:
    mobile = f"m-{uuid.uuid4().hex}"
    identity.store_code(_code(mobile, "right"))
    for _ in range(3):
        assert not identity.consume_code(mobile, "login", "wrong", NOW, max_attempts=3)
    assert not identity.consume_code(mobile, "login", "right", NOW, max_attempts=3)


def test_newest_code_wins(identity: SqlIdentity) -> None:
    mobile = f"m-{uuid.uuid4().hex}"
    identity.store_code(_code(mobile, "old"))
    identity.store_code(_code(mobile, "new", NOW + timedelta(seconds=30)))
    later = NOW + timedelta(minutes=1)
    assert not identity.consume_code(mobile, "login", "old", later, max_attempts=5)
    assert identity.consume_code(mobile, "login", "new", later, max_attempts=5)


def test_code_used_once_under_concurrency(identity: SqlIdentity) -> None:
    mobile = f"m-{uuid.uuid4().hex}"
    identity.store_code(_code(mobile, "h1"))
    results: list[bool] = []
    lock = threading.Lock()

    def use() -> None:
        outcome = identity.consume_code(mobile, "login", "h1", NOW, max_attempts=5)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1


def test_totp_step_used_once(identity: SqlIdentity) -> None:
    account = _account()
    identity.create_account(account)

    assert identity.use_totp_step(account.account_id, 59_000_000)
    assert not identity.use_totp_step(account.account_id, 59_000_000)


def test_older_totp_step_rejected(identity: SqlIdentity) -> None:
    account = _account()
    identity.create_account(account)
    assert identity.use_totp_step(account.account_id, 59_000_001)

    assert not identity.use_totp_step(account.account_id, 59_000_000)
    assert identity.use_totp_step(account.account_id, 59_000_002)


def test_totp_steps_are_per_account(identity: SqlIdentity) -> None:
    first, second = _account(), _account()
    identity.create_account(first)
    identity.create_account(second)

    assert identity.use_totp_step(first.account_id, 59_000_000)
    assert identity.use_totp_step(second.account_id, 59_000_000)


def test_totp_step_used_once_under_concurrency(identity: SqlIdentity) -> None:
    account = _account()
    identity.create_account(account)
    results: list[bool] = []
    lock = threading.Lock()

    def use() -> None:
        outcome = identity.use_totp_step(account.account_id, 59_000_000)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1


def test_tree_from_real_regions(data_dir: Path, tmp_path: Path) -> None:
    regions = load_regions(data_dir)
    tree = organisations_from_regions(regions)
    store = SqliteIdentity(tmp_path / "identity.sqlite")
    assert store.seed_organisations(tree) == len(tree)

    levels = [org.level for org in tree]
    assert levels.count("city") == 1
    assert levels.count("district") == len(regions.districts)
    assert levels.count("street") > 100
    assert levels.count("station") > 3000
    yanta = store.subtree_district_codes("district:610113")
    assert yanta == {"610113"}
    assert store.subtree_district_codes(CITY_ORG_ID) == set(regions.districts["code"])


def test_mobile_index_rows(identity: SqlIdentity) -> None:
    first, second = _account(), _account()
    for account in (first, second):
        identity.create_account(account)
    mine = {first.account_id, second.account_id}

    rows = [row for row in identity.account_mobiles("", 10_000) if row[0] in mine]
    written = identity.replace_mobile_indexes([(first.account_id, "idx-new")])

    assert sorted(rows) == sorted((account_id, "v1:envelope-mobile") for account_id in mine)
    assert written == 1
    found = identity.account_by_mobile("staff", "idx-new")
    assert found is not None
    assert found.account_id == first.account_id
    after = identity.account_mobiles(min(mine), 10_000)
    assert min(mine) not in [account_id for account_id, _ in after]
