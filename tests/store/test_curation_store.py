"""Anchor curation in both stores: versions, history, optimistic locking, merges and imports.

Every case runs against the SQLite store and the PostgreSQL store. Records and
history entries come from the real curation rules (:mod:`geo.curation`) on the
real district polygons, development zones and GB/T 4754 codes.
"""

import json
import os
import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import psycopg
import pytest
from stdnum.cn import uscc
from yoyo import get_backend, read_migrations

from geo.anchor_fields import EnterpriseSize, ShuttleStop
from geo.anchor_states import AnchorState, StaffScope
from geo.curation import (
    AnchorChange,
    AnchorRecord,
    AnchorVersion,
    StaleVersionError,
    apply_change,
    new_anchor,
)
from geo.duplicates import plan_merge
from geo.industry import IndustryCatalogue, load_industry_catalogue
from geo.location import Precision
from geo.regions import Regions, load_regions
from geo.zones import DevelopmentZone, load_zones
from matching.recommend import Recommender
from store.base import (
    AnchorNotFoundError,
    CurationStore,
    DuplicateAnchorError,
    IdempotencyKeyConflictError,
    KeyedInsert,
    ReadStore,
)
from store.migrations import MIGRATIONS_DIR, MigrationError, apply_migrations
from store.postgres import PoolOptions, PostgresStore, open_pool
from store.rebuild import MergeCycleError
from store.sqlite import SqliteStore, StoreNotFoundError, write_store
from store.sqlite_curation import StoreReplacedError
from store.sqlite_merges import MERGED_INTO_COLUMN
from tests.store.test_contract import _LABELS as MAP_LABELS
from tests.store.test_contract import _inputs

NOW = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
YANTA = StaffScope(frozenset({"610113"}))
YANTA_POINT = (108.9480, 34.2230)  # inside 雁塔区 610113, away from the contract anchors
STAFF = "staff-yanta-01"


def _credit_code(first17: str) -> str:
    return first17 + uscc.calc_check_digit(first17)


CODE_A = _credit_code("91610113MA6TXXXX0")
CODE_B = _credit_code("91610113MA6TYYYY0")


class FullStore(ReadStore, CurationStore, Protocol):
    """A store with both the read and the curation interface."""


@pytest.fixture(scope="module")
def regions(data_dir: Path) -> Regions:
    return load_regions(data_dir)


@pytest.fixture(scope="module")
def zones(data_dir: Path, regions: Regions) -> list[DevelopmentZone]:
    return load_zones(data_dir, regions)


@pytest.fixture(scope="module")
def industries(data_dir: Path) -> IndustryCatalogue:
    return load_industry_catalogue(data_dir)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FullStore:
    """Each store in turn, holding the contract inputs; PostgreSQL skips when unreachable."""
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite"
        write_store(path, **_inputs())
        return SqliteStore(path)

    pg_store = request.getfixturevalue("pg_store")
    pg_store.replace_all(**_inputs())
    return pg_store  # type: ignore[no-any-return]


@pytest.fixture
def rules(
    regions: Regions, zones: list[DevelopmentZone], industries: IndustryCatalogue
) -> dict[str, Any]:
    """Reference data keyword arguments of apply_change and new_anchor."""
    return {"regions": regions, "zones": zones, "industries": industries}


def _edit(
    store: FullStore,
    anchor_id: str,
    change: AnchorChange,
    rules: dict[str, Any],
    *,
    minutes: int = 0,
) -> tuple[AnchorRecord, AnchorVersion]:
    record = store.get_anchor(anchor_id)
    assert record is not None
    return apply_change(
        record,
        change,
        actor=STAFF,
        reason="现场核实",
        expected_version=record.version,
        now=NOW + timedelta(minutes=minutes),
        scope=YANTA,
        **rules,
    )


Edit = tuple[AnchorRecord, AnchorVersion]


def _created(name: str, rules: dict[str, Any], **details: Any) -> Edit:
    return new_anchor(
        name,
        *YANTA_POINT,
        actor=STAFF,
        reason="站点新增",
        now=NOW,
        scope=YANTA,
        details=AnchorChange(**details),
        **rules,
    )


# --- reads of built anchors -----------------------------------------------------------


def test_built_anchor_has_defaults(store: FullStore) -> None:
    assert isinstance(store, CurationStore)
    record = store.get_anchor("anc-a")

    assert record is not None
    assert record.version == 1
    assert record.state is AnchorState.DRAFT
    assert record.precision is Precision.POI
    assert record.address == ""
    assert record.shift_times == ()
    assert record.credit_code is None
    assert record.key_enterprise is False
    assert store.anchor_history("anc-a") == []


def test_unknown_anchor_is_none(store: FullStore) -> None:
    assert store.get_anchor("anc-missing") is None


def test_scope_lists_district_anchors(store: FullStore) -> None:
    found = store.anchors_for_scope(YANTA)
    assert [record.anchor_id for record in found] == ["anc-B", "anc-a", "anc-c", "anc-edge"]


def test_scope_pages_and_filters(store: FullStore, rules: dict[str, Any]) -> None:
    store.save_anchor_change(
        *_edit(store, "anc-c", AnchorChange(state="pending_review"), rules), expected_version=1
    )

    page = store.anchors_for_scope(YANTA, limit=2, offset=1)
    pending = store.anchors_for_scope(YANTA, state=AnchorState.PENDING_REVIEW)

    assert [record.anchor_id for record in page] == ["anc-a", "anc-c"]
    assert [record.anchor_id for record in pending] == ["anc-c"]
    assert store.anchors_for_scope(StaffScope(frozenset({"610103"}))) == []


def test_scope_includes_zone_anchors(store: FullStore, rules: dict[str, Any]) -> None:
    record, entry = _created("高新某科技有限公司", rules, zone_key="高新")
    store.insert_anchor(record, entry)

    by_zone = store.anchors_for_scope(StaffScope(frozenset(), frozenset({"高新"})))

    assert [found.anchor_id for found in by_zone] == [record.anchor_id]


def test_street_scope_lists_filed_anchors(store: FullStore, rules: dict[str, Any]) -> None:
    street = "street:610113001"
    filed, entry = new_anchor(
        "小寨某商贸有限公司",
        *YANTA_POINT,
        actor=STAFF,
        reason="街道新增",
        now=NOW,
        scope=StaffScope(
            frozenset({"610113"}),
            filing_org=street,
            filing_orgs=frozenset({street}),
            filing_district={street: "610113"}.get,
        ),
        **rules,
    )
    store.insert_anchor(filed, entry)
    station = "station:610113001001"
    only_station = StaffScope(
        frozenset({"610113"}), filing_org=station, filing_orgs=frozenset({station})
    )
    whole_street = StaffScope(
        frozenset({"610113"}), filing_org=street, filing_orgs=frozenset({street, station})
    )

    assert store.get_anchor(filed.anchor_id) == filed
    assert [found.anchor_id for found in store.anchors_for_scope(whole_street)] == [filed.anchor_id]
    assert store.count_for_scope(whole_street) == 1
    assert store.anchors_for_scope(only_station) == []
    assert store.count_for_scope(YANTA) == 5


def test_sqlite_adds_filing_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    write_store(path, **_inputs())
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute("DROP INDEX anchors_filed_org")
        connection.execute("ALTER TABLE anchors DROP COLUMN filed_org")

    store = SqliteStore(path)

    record = store.get_anchor("anc-a")
    assert record is not None
    assert record.filed_org is None
    with closing(sqlite3.connect(path)) as connection:
        indexes = {row[1] for row in connection.execute("PRAGMA index_list(anchors)")}
    assert "anchors_filed_org" in indexes


def test_scope_rejects_negative_limit(store: FullStore) -> None:
    with pytest.raises(ValueError, match="limit -1"):
        store.anchors_for_scope(YANTA, limit=-1)


def test_scope_filters_by_name(store: FullStore) -> None:
    found = store.anchors_for_scope(YANTA, name_contains="丙")

    assert [record.anchor_id for record in found] == ["anc-c"]
    assert store.anchors_for_scope(YANTA, name_contains="丁") == []
    assert len(store.anchors_for_scope(YANTA, name_contains="公司")) == 4


def test_scope_count_ignores_paging(store: FullStore, rules: dict[str, Any]) -> None:
    store.save_anchor_change(
        *_edit(store, "anc-c", AnchorChange(state="pending_review"), rules), expected_version=1
    )

    assert store.count_for_scope(YANTA) == 4
    assert store.count_for_scope(YANTA, state=AnchorState.PENDING_REVIEW) == 1
    assert store.count_for_scope(YANTA, name_contains="甲") == 1
    assert store.count_for_scope(StaffScope(frozenset({"610103"}))) == 0


def test_posting_counts_by_anchor(store: FullStore) -> None:
    counts = store.posting_counts(["anc-a", "anc-B", "anc-missing"])

    assert counts == {"anc-a": 1, "anc-B": 2}


def test_enterprise_flags_after_edit(store: FullStore, rules: dict[str, Any]) -> None:
    change = AnchorChange(key_enterprise=True, above_scale_industrial=True)
    store.save_anchor_change(*_edit(store, "anc-a", change, rules), expected_version=1)

    flags = store.enterprise_flags(["anc-a", "anc-B", "anc-missing"])

    assert flags == {"anc-a": (True, True), "anc-B": (False, False)}


# --- versioned edits ------------------------------------------------------------------


def test_change_round_trip(store: FullStore, rules: dict[str, Any]) -> None:
    change = AnchorChange(
        lon=YANTA_POINT[0],
        lat=YANTA_POINT[1],
        address="雁塔区科技路 1 号",
        entrance_lon=YANTA_POINT[0] + 0.0005,
        entrance_lat=YANTA_POINT[1] + 0.0003,
        credit_code=CODE_A,
        industry_code="6513",
        size="medium",
        key_enterprise=True,
        contact_role="人事部",
        contact_phone="029-88886666",
        shift_times=("08:00-17:00", "22:00-06:00"),
        shuttle_stop=ShuttleStop("科技路站", 108.949, 34.224),
    )
    updated, entry = _edit(store, "anc-a", change, rules)

    store.save_anchor_change(updated, entry, expected_version=1)

    assert store.get_anchor("anc-a") == updated
    assert updated.size is EnterpriseSize.MEDIUM
    assert updated.precision is Precision.EXACT
    assert updated.entrance_lon == pytest.approx(YANTA_POINT[0] + 0.0005)
    assert store.anchor_history("anc-a") == [entry]


def test_cleared_entrance_round_trip(store: FullStore, rules: dict[str, Any]) -> None:
    change = AnchorChange(
        entrance_lon=108.9005,
        entrance_lat=34.2003,
        shuttle_stop=ShuttleStop("科技路站", 108.902, 34.201),
    )
    store.save_anchor_change(*_edit(store, "anc-a", change, rules), expected_version=1)
    cleared = _edit(
        store, "anc-a", AnchorChange(clear=frozenset({"entrance", "shuttle_stop"})), rules
    )

    store.save_anchor_change(*cleared, expected_version=2)

    record = store.get_anchor("anc-a")
    assert record is not None
    assert record.entrance_lon is None
    assert record.entrance_lat is None
    assert record.shuttle_stop is None
    assert store.anchor_history("anc-a")[-1] == cleared[1]


def test_history_oldest_first_in_utc(store: FullStore, rules: dict[str, Any]) -> None:
    first = _edit(store, "anc-a", AnchorChange(name="甲公司雁塔"), rules)
    store.save_anchor_change(*first, expected_version=1)
    second = _edit(store, "anc-a", AnchorChange(state="pending_review"), rules, minutes=5)
    store.save_anchor_change(*second, expected_version=2)

    history = store.anchor_history("anc-a")

    assert [entry.version for entry in history] == [2, 3]
    assert history[0].changes[0].field == "name"
    assert history[0].changes[0].old == "甲公司"
    assert history[0].changes[0].new == "甲公司雁塔"
    assert history[1].changes[0].new is AnchorState.PENDING_REVIEW
    assert history[1].at == NOW + timedelta(minutes=5)
    assert history[1].at.utcoffset() == timedelta(0)
    assert history[1].actor == STAFF
    assert history[1].reason == "现场核实"


def test_history_time_in_other_zone(store: FullStore, rules: dict[str, Any]) -> None:
    record, entry = _edit(store, "anc-a", AnchorChange(name="甲公司二"), rules)
    beijing = entry.at.astimezone(timezone(timedelta(hours=8)))

    store.save_anchor_change(record, replace(entry, at=beijing), expected_version=1)

    assert store.anchor_history("anc-a")[0].at == NOW
    assert str(store.anchor_history("anc-a")[0].at.tzinfo) == "UTC"


def test_stale_version_writes_nothing(store: FullStore, rules: dict[str, Any]) -> None:
    first = _edit(store, "anc-a", AnchorChange(name="甲公司一"), rules)
    late = _edit(store, "anc-a", AnchorChange(name="甲公司二"), rules)
    store.save_anchor_change(*first, expected_version=1)

    with pytest.raises(StaleVersionError) as raised:
        store.save_anchor_change(*late, expected_version=1)

    assert raised.value.current_version == 2
    assert store.get_anchor("anc-a") == first[0]
    assert len(store.anchor_history("anc-a")) == 1


def test_concurrent_saves_one_wins(store: FullStore, rules: dict[str, Any]) -> None:
    edits = [
        _edit(store, "anc-a", AnchorChange(name=name), rules) for name in ("甲公司一", "甲公司二")
    ]
    barrier = threading.Barrier(len(edits))
    outcomes: list[object] = []

    def save(record: AnchorRecord, entry: AnchorVersion) -> None:
        barrier.wait()
        try:
            store.save_anchor_change(record, entry, expected_version=1)
            outcomes.append("saved")
        except StaleVersionError as err:
            outcomes.append(err)

    threads = [threading.Thread(target=save, args=edit) for edit in edits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    errors = [outcome for outcome in outcomes if isinstance(outcome, StaleVersionError)]
    assert outcomes.count("saved") == 1
    assert len(errors) == 1
    assert errors[0].current_version == 2
    assert len(store.anchor_history("anc-a")) == 1


def test_save_unknown_anchor(store: FullStore, rules: dict[str, Any]) -> None:
    record, entry = _edit(store, "anc-a", AnchorChange(name="甲公司一"), rules)
    ghost = replace(record, anchor_id="anc-ghost")

    with pytest.raises(AnchorNotFoundError, match="anc-ghost"):
        store.save_anchor_change(ghost, replace(entry, anchor_id="anc-ghost"), expected_version=1)


def test_save_rejects_mismatched_entry(store: FullStore, rules: dict[str, Any]) -> None:
    record, entry = _edit(store, "anc-a", AnchorChange(name="甲公司一"), rules)

    with pytest.raises(ValueError, match="expected 3"):
        store.save_anchor_change(record, entry, expected_version=2)
    with pytest.raises(ValueError, match="does not match"):
        store.save_anchor_change(record, replace(entry, version=5), expected_version=1)
    assert store.anchor_history("anc-a") == []


def test_moved_pin_found_by_bbox(store: FullStore, rules: dict[str, Any]) -> None:
    moved = _edit(store, "anc-a", AnchorChange(lon=YANTA_POINT[0], lat=YANTA_POINT[1]), rules)
    store.save_anchor_change(*moved, expected_version=1)

    around_new = store.anchors_in_bbox((108.943, 34.218, 108.953, 34.228), limit=10)
    around_old = store.anchors_in_bbox((108.895, 34.195, 108.905, 34.205), limit=10)

    assert around_new["anchor_id"].tolist() == ["anc-a"]
    assert around_old["anchor_id"].tolist() == []
    # The map body follows the move too (PostgreSQL rewrites its stored fragment).
    body = json.loads(store.anchor_map((108.943, 34.218, 108.953, 34.228), 10, MAP_LABELS))
    assert body["features"][0]["geometry"]["coordinates"] == list(YANTA_POINT)
    assert body["features"][0]["properties"]["name"] == "甲公司"


def test_taken_credit_code_rejected(store: FullStore, rules: dict[str, Any]) -> None:
    store.save_anchor_change(
        *_edit(store, "anc-a", AnchorChange(credit_code=CODE_A), rules), expected_version=1
    )
    clash = _edit(store, "anc-c", AnchorChange(credit_code=CODE_A), rules)

    with pytest.raises(DuplicateAnchorError, match=CODE_A):
        store.save_anchor_change(*clash, expected_version=1)

    record = store.get_anchor("anc-c")
    assert record is not None
    assert record.credit_code is None
    assert store.anchor_history("anc-c") == []


# --- staff-added anchors and imports ----------------------------------------------------


def test_insert_anchor_round_trip(store: FullStore, rules: dict[str, Any]) -> None:
    record, entry = _created("雁塔新材料有限公司", rules, credit_code=CODE_B, address="科技路")

    store.insert_anchor(record, entry)

    assert store.get_anchor(record.anchor_id) == record
    assert store.anchor_history(record.anchor_id) == [entry]
    assert all(item.old is None for item in entry.changes)
    anchors = store.anchors_frame().set_index("anchor_id")
    assert anchors.loc[record.anchor_id, "n_postings"] == 0
    assert anchors.loc[record.anchor_id, "location_label"] == "科技路"
    found = store.anchors_in_bbox((108.943, 34.218, 108.953, 34.228), limit=10)
    assert found["anchor_id"].tolist() == [record.anchor_id]
    body = json.loads(store.anchor_map((108.943, 34.218, 108.953, 34.228), 10, MAP_LABELS))
    assert body["features"][0]["properties"]["anchor_id"] == record.anchor_id
    assert body["features"][0]["properties"]["n_postings"] == 0


def test_insert_existing_id_rejected(store: FullStore, rules: dict[str, Any]) -> None:
    record, entry = _created("雁塔新材料有限公司", rules)
    store.insert_anchor(record, entry)

    with pytest.raises(DuplicateAnchorError, match=record.anchor_id):
        store.insert_anchor(replace(record, name="另一家"), entry)

    assert store.get_anchor(record.anchor_id) == record
    assert len(store.anchor_history(record.anchor_id)) == 1


def test_insert_rejects_version_two(store: FullStore, rules: dict[str, Any]) -> None:
    record, entry = _created("雁塔新材料有限公司", rules)

    with pytest.raises(ValueError, match="expected 1"):
        store.insert_anchor(replace(record, version=2), replace(entry, version=2))
    assert store.get_anchor(record.anchor_id) is None


# --- idempotent creation ---------------------------------------------------------------

HASH_A = "a" * 64
HASH_B = "b" * 64


def _names(store: FullStore, name: str) -> list[str]:
    anchors = store.anchors_frame()
    return anchors.loc[anchors["name"] == name, "anchor_id"].tolist()


def test_keyed_insert_stores_once(store: FullStore, rules: dict[str, Any]) -> None:
    first, first_entry = _created("雁塔幂等有限公司", rules)
    retry, retry_entry = _created("雁塔幂等有限公司", rules)

    stored = store.insert_anchor_once(
        first, first_entry, staff_id=STAFF, key="k-1", body_hash=HASH_A
    )
    replayed = store.insert_anchor_once(
        retry, retry_entry, staff_id=STAFF, key="k-1", body_hash=HASH_A
    )

    assert stored.anchor_id == first.anchor_id
    assert not stored.replayed
    assert replayed.anchor_id == first.anchor_id
    assert replayed.replayed
    assert store.get_anchor(retry.anchor_id) is None
    assert _names(store, "雁塔幂等有限公司") == [first.anchor_id]
    assert store.anchor_history(first.anchor_id) == [first_entry]


def test_keyed_insert_other_body_rejected(store: FullStore, rules: dict[str, Any]) -> None:
    first, first_entry = _created("雁塔幂等有限公司", rules)
    other, other_entry = _created("另一家有限公司", rules)
    store.insert_anchor_once(first, first_entry, staff_id=STAFF, key="k-1", body_hash=HASH_A)

    with pytest.raises(IdempotencyKeyConflictError, match="k-1"):
        store.insert_anchor_once(other, other_entry, staff_id=STAFF, key="k-1", body_hash=HASH_B)

    assert store.get_anchor(other.anchor_id) is None


def test_keyed_insert_key_per_staff(store: FullStore, rules: dict[str, Any]) -> None:
    first, first_entry = _created("雁塔幂等有限公司", rules)
    second, second_entry = _created("雁塔幂等有限公司", rules)
    store.insert_anchor_once(first, first_entry, staff_id=STAFF, key="k-1", body_hash=HASH_A)

    outcome = store.insert_anchor_once(
        second, second_entry, staff_id="staff-yanta-02", key="k-1", body_hash=HASH_A
    )

    assert outcome.anchor_id == second.anchor_id
    assert not outcome.replayed
    assert len(_names(store, "雁塔幂等有限公司")) == 2


def test_keyed_insert_key_expires(store: FullStore, rules: dict[str, Any]) -> None:
    first, first_entry = _created("雁塔幂等有限公司", rules)
    late, late_entry = _created("另一家有限公司", rules)
    late_entry = replace(late_entry, at=NOW + timedelta(hours=24, seconds=1))
    store.insert_anchor_once(first, first_entry, staff_id=STAFF, key="k-1", body_hash=HASH_A)

    outcome = store.insert_anchor_once(
        late, late_entry, staff_id=STAFF, key="k-1", body_hash=HASH_B
    )

    assert outcome.anchor_id == late.anchor_id
    assert not outcome.replayed
    assert store.get_anchor(first.anchor_id) == first


def test_keyed_insert_within_day_replays(store: FullStore, rules: dict[str, Any]) -> None:
    first, first_entry = _created("雁塔幂等有限公司", rules)
    retry, retry_entry = _created("雁塔幂等有限公司", rules)
    retry_entry = replace(retry_entry, at=NOW + timedelta(hours=23, minutes=59))
    store.insert_anchor_once(first, first_entry, staff_id=STAFF, key="k-1", body_hash=HASH_A)

    outcome = store.insert_anchor_once(
        retry, retry_entry, staff_id=STAFF, key="k-1", body_hash=HASH_A
    )

    assert outcome.anchor_id == first.anchor_id
    assert outcome.replayed


def test_failed_keyed_insert_keeps_no_key(store: FullStore, rules: dict[str, Any]) -> None:
    taken, taken_entry = _created("雁塔新材料有限公司", rules, credit_code=CODE_A)
    store.insert_anchor(taken, taken_entry)
    clash, clash_entry = _created("雁塔幂等有限公司", rules, credit_code=CODE_A)
    fixed, fixed_entry = _created("雁塔幂等有限公司", rules)

    with pytest.raises(DuplicateAnchorError):
        store.insert_anchor_once(clash, clash_entry, staff_id=STAFF, key="k-1", body_hash=HASH_A)
    outcome = store.insert_anchor_once(
        fixed, fixed_entry, staff_id=STAFF, key="k-1", body_hash=HASH_B
    )

    assert store.get_anchor(clash.anchor_id) is None
    assert outcome.anchor_id == fixed.anchor_id
    assert not outcome.replayed


def test_concurrent_keyed_inserts_one_anchor(store: FullStore, rules: dict[str, Any]) -> None:
    created = [_created("雁塔并发有限公司", rules) for _ in range(2)]
    barrier = threading.Barrier(len(created))
    outcomes: list[Any] = []

    def insert(record: AnchorRecord, entry: AnchorVersion) -> None:
        barrier.wait()
        try:
            outcomes.append(
                store.insert_anchor_once(
                    record, entry, staff_id=STAFF, key="k-same", body_hash=HASH_A
                )
            )
        except Exception as err:
            outcomes.append(err)

    threads = [threading.Thread(target=insert, args=pair) for pair in created]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    stored = _names(store, "雁塔并发有限公司")
    assert len(stored) == 1
    assert len(outcomes) == 2
    assert all(isinstance(outcome, KeyedInsert) for outcome in outcomes), outcomes
    assert {outcome.anchor_id for outcome in outcomes} == set(stored)
    assert sorted(outcome.replayed for outcome in outcomes) == [False, True]


def test_rebuild_keeps_idempotency_key(store: FullStore, rules: dict[str, Any]) -> None:
    first, first_entry = _created("雁塔幂等有限公司", rules)
    retry, retry_entry = _created("雁塔幂等有限公司", rules)
    store.insert_anchor_once(first, first_entry, staff_id=STAFF, key="k-1", body_hash=HASH_A)

    _rebuild(store, **_inputs())
    outcome = store.insert_anchor_once(
        retry, retry_entry, staff_id=STAFF, key="k-1", body_hash=HASH_A
    )

    assert outcome.anchor_id == first.anchor_id
    assert outcome.replayed
    assert _names(store, "雁塔幂等有限公司") == [first.anchor_id]


def test_import_stores_every_anchor(store: FullStore, rules: dict[str, Any]) -> None:
    created = [_created(f"导入单位{i}", rules) for i in range(3)]

    assert store.apply_import(created) == 3

    for record, entry in created:
        assert store.get_anchor(record.anchor_id) == record
        assert store.anchor_history(record.anchor_id) == [entry]


def test_import_failure_stores_nothing(store: FullStore, rules: dict[str, Any]) -> None:
    first = _created("导入单位甲", rules, credit_code=CODE_A)
    second = _created("导入单位乙", rules, credit_code=CODE_A)
    third = _created("导入单位丙", rules)

    with pytest.raises(DuplicateAnchorError, match=CODE_A):
        store.apply_import([first, second, third])

    for record, _ in (first, second, third):
        assert store.get_anchor(record.anchor_id) is None
        assert store.anchor_history(record.anchor_id) == []
    assert len(store.anchors_frame()) == 5


# --- merges ---------------------------------------------------------------------------


def _merge_plan(store: FullStore, survivor: str, merged: list[str]) -> Any:
    records = {}
    for anchor_id in (survivor, *merged):
        record = store.get_anchor(anchor_id)
        assert record is not None
        records[anchor_id] = record
    postings = store.postings_frame()[["posting_id", "anchor_id"]]
    return plan_merge(survivor, merged, postings, records=records, actor=STAFF, now=NOW)


def test_merge_moves_postings(store: FullStore) -> None:
    plan = _merge_plan(store, "anc-B", ["anc-c", "anc-a"])

    moved = store.apply_merge(plan, expected_versions={"anc-c": 1, "anc-a": 1})

    assert moved == 3
    postings = store.postings_frame().set_index("posting_id")
    assert postings.loc[["p1", "p2", "p3", "p4", "p5"], "anchor_id"].unique().tolist() == ["anc-B"]
    anchors = store.anchors_frame().set_index("anchor_id")
    assert anchors.loc["anc-B", "n_postings"] == 5
    assert anchors.loc["anc-c", "n_postings"] == 0
    retired = store.get_anchor("anc-c")
    assert retired is not None
    assert retired.state is AnchorState.RETIRED
    assert retired.version == 2
    assert store.anchor_history("anc-c") == [plan.history[0]]
    assert "anc-B" in store.anchor_history("anc-a")[0].reason


def test_stale_merge_rolls_back(store: FullStore, rules: dict[str, Any]) -> None:
    plan = _merge_plan(store, "anc-B", ["anc-a", "anc-c"])
    store.save_anchor_change(
        *_edit(store, "anc-c", AnchorChange(name="丙公司（新）"), rules), expected_version=1
    )

    with pytest.raises(StaleVersionError) as raised:
        store.apply_merge(plan, expected_versions={"anc-a": 1, "anc-c": 1})

    assert raised.value.anchor_id == "anc-c"
    assert raised.value.current_version == 2
    untouched = store.get_anchor("anc-a")
    assert untouched is not None
    assert untouched.state is AnchorState.DRAFT
    assert untouched.version == 1
    assert store.anchor_history("anc-a") == []
    postings = store.postings_frame().set_index("posting_id")
    assert postings.loc["p1", "anchor_id"] == "anc-a"
    assert postings.loc["p4", "anchor_id"] == "anc-c"
    assert store.anchors_frame().set_index("anchor_id").loc["anc-B", "n_postings"] == 2


def test_merge_checks_survivor_version(store: FullStore, rules: dict[str, Any]) -> None:
    plan = _merge_plan(store, "anc-B", ["anc-c"])
    store.save_anchor_change(
        *_edit(store, "anc-B", AnchorChange(name="乙公司（新）"), rules), expected_version=1
    )

    with pytest.raises(StaleVersionError, match="anc-B"):
        store.apply_merge(plan, expected_versions={"anc-B": 1, "anc-c": 1})

    record = store.get_anchor("anc-c")
    assert record is not None
    assert record.state is AnchorState.DRAFT


def test_merge_needs_every_version(store: FullStore) -> None:
    plan = _merge_plan(store, "anc-B", ["anc-c", "anc-a"])

    with pytest.raises(ValueError, match="anc-a"):
        store.apply_merge(plan, expected_versions={"anc-c": 1})


# --- summaries ------------------------------------------------------------------------


def test_precision_state_counts(store: FullStore, rules: dict[str, Any]) -> None:
    store.save_anchor_change(
        *_edit(store, "anc-c", AnchorChange(state="pending_review"), rules), expected_version=1
    )

    counts = store.precision_state_counts()

    assert list(counts.columns) == ["district_code", "precision", "state", "n"]
    assert counts["n"].dtype == "int64"
    rows = list(counts.itertuples(index=False, name=None))
    assert rows[:4] == [
        ("610113", "building", "pending_review", 1),
        ("610113", "district", "draft", 1),
        ("610113", "exact", "draft", 1),
        ("610113", "poi", "draft", 1),
    ]
    assert pd.isna(rows[4][0])
    assert rows[4][1:] == ("city", "draft", 1)
    assert counts["n"].sum() == 5


def test_counts_by_zone(store: FullStore, rules: dict[str, Any]) -> None:
    store.insert_anchor(*_created("高新某科技有限公司", rules, zone_key="高新"))

    counts = store.precision_state_counts(by="zone")

    assert list(counts.columns) == ["zone_key", "precision", "state", "n"]
    assert counts.iloc[0].tolist() == ["高新", "exact", "draft", 1]
    assert counts["n"].sum() == 6


def test_counts_reject_unknown_group(store: FullStore) -> None:
    with pytest.raises(ValueError, match="'street'"):
        store.precision_state_counts(by="street")


# --- rebuilds -------------------------------------------------------------------------


def _rebuild(store: FullStore, **inputs: Any) -> None:
    """Write new build data over the store, as ``doorstep build --force`` does."""
    if isinstance(store, SqliteStore):
        write_store(store.path, **inputs)
    else:
        store.replace_all(**inputs)  # type: ignore[attr-defined]


def _verified_at_new_pin(store: FullStore, anchor_id: str, rules: dict[str, Any]) -> None:
    """Move an anchor's pin to YANTA_POINT and take it through review to verified."""
    moved = AnchorChange(lon=YANTA_POINT[0], lat=YANTA_POINT[1], state="pending_review")
    store.save_anchor_change(*_edit(store, anchor_id, moved, rules), expected_version=1)
    verified = AnchorChange(state="verified")
    store.save_anchor_change(
        *_edit(store, anchor_id, verified, rules, minutes=5), expected_version=2
    )


def test_rebuild_keeps_curated_anchor(store: FullStore, rules: dict[str, Any]) -> None:
    _verified_at_new_pin(store, "anc-a", rules)
    record = store.get_anchor("anc-a")
    history = store.anchor_history("anc-a")

    _rebuild(store, **_inputs())

    assert store.get_anchor("anc-a") == record
    assert record is not None
    assert record.version == 3
    assert record.state is AnchorState.VERIFIED
    assert (record.lon, record.lat) == pytest.approx(YANTA_POINT)
    assert store.anchor_history("anc-a") == history
    assert [entry.version for entry in history] == [2, 3]
    assert store.posting_counts(["anc-a"]) == {"anc-a": 1}
    postings = store.postings_frame().set_index("posting_id")
    assert postings.loc["p1", "anchor_id"] == "anc-a"
    assert postings.loc["p1", "lon"] == pytest.approx(YANTA_POINT[0])


def test_rebuild_indexes_kept_pin(store: FullStore, rules: dict[str, Any]) -> None:
    _verified_at_new_pin(store, "anc-a", rules)

    _rebuild(store, **_inputs())

    near = (YANTA_POINT[0] - 0.001, YANTA_POINT[1] - 0.001, YANTA_POINT[0] + 0.001, 34.224)
    assert store.anchors_in_bbox(near, limit=10)["anchor_id"].tolist() == ["anc-a"]
    assert len(store.anchors_frame()) == 5


def test_rebuild_keeps_staff_anchor(store: FullStore, rules: dict[str, Any]) -> None:
    record, entry = _created("雁塔新材料有限公司", rules, credit_code=CODE_A)
    store.insert_anchor(record, entry)

    _rebuild(store, **_inputs())

    assert store.get_anchor(record.anchor_id) == record
    assert store.anchor_history(record.anchor_id) == [entry]
    assert store.posting_counts([record.anchor_id]) == {record.anchor_id: 0}
    assert store.anchors_frame()["anchor_id"].tolist()[-1] == record.anchor_id


def test_rebuild_replaces_uncurated_anchors(store: FullStore, rules: dict[str, Any]) -> None:
    _verified_at_new_pin(store, "anc-c", rules)
    inputs = _inputs()
    anchors, postings = inputs["anchors"], inputs["postings"]
    # The new data renames 乙公司 and no longer produces 丙公司 (anc-c) or 西安某公司 (anc-city).
    anchors.loc[anchors["anchor_id"] == "anc-B", "name"] = "乙公司（新）"
    inputs["anchors"] = anchors[~anchors["anchor_id"].isin(["anc-c", "anc-city"])]
    inputs["postings"] = postings[~postings["anchor_id"].isin(["anc-c", "anc-city"])]

    _rebuild(store, **inputs)

    anc_b = store.get_anchor("anc-B")
    assert anc_b is not None
    assert anc_b.name == "乙公司（新）"
    assert store.get_anchor("anc-city") is None
    kept = store.get_anchor("anc-c")
    assert kept is not None
    assert kept.state is AnchorState.VERIFIED
    assert store.posting_counts(["anc-c"]) == {"anc-c": 0}
    assert len(store.anchor_history("anc-c")) == 2
    assert store.anchors_frame()["anchor_id"].tolist() == ["anc-a", "anc-B", "anc-edge", "anc-c"]


def test_rebuild_recounts_kept_postings(store: FullStore, rules: dict[str, Any]) -> None:
    _verified_at_new_pin(store, "anc-a", rules)
    inputs = _inputs()
    postings = inputs["postings"]
    # Two more postings of 甲公司 locate to the same place, so they get anc-a again.
    extra = postings[postings["anchor_id"] == "anc-a"].assign(posting_id=["p8"])
    more = postings[postings["anchor_id"] == "anc-a"].assign(posting_id=["p9"])
    inputs["postings"] = pd.concat([postings, extra, more], ignore_index=True)

    _rebuild(store, **inputs)

    assert store.posting_counts(["anc-a"]) == {"anc-a": 3}
    anchors = store.anchors_frame().set_index("anchor_id")
    assert anchors.loc["anc-a", "n_postings"] == 3


def test_failed_rebuild_keeps_curation(store: FullStore, rules: dict[str, Any]) -> None:
    _verified_at_new_pin(store, "anc-a", rules)
    record = store.get_anchor("anc-a")
    broken = _inputs()
    broken["seekers"] = pd.DataFrame({"seeker_id": ["a", "a"], "simulated": [True, True]})

    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
        _rebuild(store, **broken)

    assert store.get_anchor("anc-a") == record
    assert len(store.anchor_history("anc-a")) == 2
    assert store.posting_counts(["anc-a"]) == {"anc-a": 1}


# --- merges replayed by rebuilds ------------------------------------------------------


def _merge(store: FullStore, survivor: str, merged: list[str]) -> None:
    """Merge anchors that are at version 1 into ``survivor``."""
    plan = _merge_plan(store, survivor, merged)
    store.apply_merge(plan, expected_versions=dict.fromkeys(merged, 1))


def _execute(store: FullStore, request: pytest.FixtureRequest, statement: str) -> None:
    """Run one SQL statement on the store's database, outside the store's own checks."""
    if isinstance(store, SqliteStore):
        with closing(sqlite3.connect(store.path)) as connection, connection:
            connection.execute(statement)
        return
    pool = request.getfixturevalue("pg_pool")
    with pool.connection() as connection:
        connection.execute(statement)


def test_rebuild_replays_merge(store: FullStore) -> None:
    # anc-B has p2 and p3, anc-c has p4 and p5; the new data computes anc-c for p4 and p5 again.
    _merge(store, "anc-B", ["anc-c"])

    _rebuild(store, **_inputs())

    postings = store.postings_frame().set_index("posting_id")
    assert postings.loc[["p2", "p3", "p4", "p5"], "anchor_id"].tolist() == ["anc-B"] * 4
    assert postings.loc["p4", "lon"] == pytest.approx(108.95)
    assert postings.loc["p4", "lat"] == pytest.approx(34.26)
    assert store.posting_counts(["anc-B", "anc-c"]) == {"anc-B": 4, "anc-c": 0}
    anchors = store.anchors_frame().set_index("anchor_id")
    assert anchors.loc["anc-B", "n_postings"] == 4
    assert anchors["n_postings"].sum() == len(postings)
    retired = store.get_anchor("anc-c")
    assert retired is not None
    assert retired.state is AnchorState.RETIRED
    assert len(store.anchor_history("anc-c")) == 1


def test_rebuild_replays_merge_twice(store: FullStore) -> None:
    _merge(store, "anc-B", ["anc-c"])

    _rebuild(store, **_inputs())
    _rebuild(store, **_inputs())

    assert store.posting_counts(["anc-B", "anc-c"]) == {"anc-B": 4, "anc-c": 0}
    postings = store.postings_frame().set_index("posting_id")
    assert postings.loc[["p4", "p5"], "anchor_id"].tolist() == ["anc-B", "anc-B"]


def test_rebuild_keeps_merge_survivor(store: FullStore) -> None:
    _merge(store, "anc-B", ["anc-c"])
    inputs = _inputs()
    anchors, postings = inputs["anchors"], inputs["postings"]
    # The new data no longer produces 乙公司 (anc-B), the survivor that staff never edited.
    inputs["anchors"] = anchors[anchors["anchor_id"] != "anc-B"]
    inputs["postings"] = postings[postings["anchor_id"] != "anc-B"]

    _rebuild(store, **inputs)

    survivor = store.get_anchor("anc-B")
    assert survivor is not None
    assert survivor.version == 1
    assert survivor.state is AnchorState.DRAFT
    assert store.posting_counts(["anc-B", "anc-c"]) == {"anc-B": 2, "anc-c": 0}
    postings_after = store.postings_frame().set_index("posting_id")
    assert sorted(postings_after.index[postings_after["anchor_id"] == "anc-B"]) == ["p4", "p5"]


def test_rebuild_follows_merge_chain(store: FullStore) -> None:
    # 甲 (anc-a) merged into 乙 (anc-B), then 乙 merged into 丙 (anc-c).
    _merge(store, "anc-B", ["anc-a"])
    _merge(store, "anc-c", ["anc-B"])

    _rebuild(store, **_inputs())

    postings = store.postings_frame().set_index("posting_id")
    on_c = ["p1", "p2", "p3", "p4", "p5"]
    assert postings.loc[on_c, "anchor_id"].tolist() == ["anc-c"] * 5
    counts = store.posting_counts(["anc-a", "anc-B", "anc-c"])
    assert counts == {"anc-a": 0, "anc-B": 0, "anc-c": 5}
    anchors = store.anchors_frame().set_index("anchor_id")
    assert anchors["n_postings"].sum() == len(postings)


def test_rebuild_after_reactivation(store: FullStore, rules: dict[str, Any]) -> None:
    _merge(store, "anc-B", ["anc-c"])
    reactivate = _edit(store, "anc-c", AnchorChange(reactivate=True), rules, minutes=5)
    store.save_anchor_change(*reactivate, expected_version=2)

    _rebuild(store, **_inputs())

    postings = store.postings_frame().set_index("posting_id")
    assert postings.loc[["p4", "p5"], "anchor_id"].tolist() == ["anc-c", "anc-c"]
    assert store.posting_counts(["anc-B", "anc-c"]) == {"anc-B": 2, "anc-c": 2}


def test_recommender_sees_merge_survivor(store: FullStore) -> None:
    _merge(store, "anc-B", ["anc-c"])

    _rebuild(store, **_inputs())

    recommender = Recommender.from_store(store)
    # anc-B is district-level, so its uncertainty widens distance_m; the pin is at 108.95, 34.26.
    found = recommender.index.within(108.95, 34.26, 50_000.0)
    at_pin = found[found["point_distance_m"] < 1.0]
    assert sorted(at_pin["posting_id"]) == ["p2", "p3", "p4", "p5"]
    assert set(at_pin["anchor_id"]) == {"anc-B"}
    assert set(at_pin["precision"]) == {"district"}


def test_merge_cycle_fails_rebuild(store: FullStore, request: pytest.FixtureRequest) -> None:
    _merge(store, "anc-B", ["anc-c"])
    # No curation write makes a cycle, because a survivor must not be retired.
    _execute(
        store,
        request,
        "UPDATE anchors SET state = 'retired', merged_into = 'anc-c' WHERE anchor_id = 'anc-B'",
    )
    inputs = _inputs()
    inputs["meta"] = {"note": "never written"}

    try:
        with pytest.raises(MergeCycleError, match="anc-B -> anc-c -> anc-B"):
            _rebuild(store, **inputs)

        assert store.meta()["note"] == "模拟数据"
        postings = store.postings_frame().set_index("posting_id")
        assert postings.loc[["p4", "p5"], "anchor_id"].tolist() == ["anc-B", "anc-B"]
        assert store.posting_counts(["anc-B", "anc-c"]) == {"anc-B": 4, "anc-c": 0}
    finally:
        # Other PostgreSQL tests rebuild the session's database without deleting anchors first.
        _execute(store, request, "UPDATE anchors SET merged_into = NULL")


# --- SQLite only ----------------------------------------------------------------------


def test_sqlite_writes_in_wal_mode(tmp_path: Path, rules: dict[str, Any]) -> None:
    path = tmp_path / "store.sqlite"
    write_store(path, **_inputs())
    store = SqliteStore(path)

    store.insert_anchor(*_created("雁塔新材料有限公司", rules))

    with sqlite3.connect(path) as connection:
        mode = connection.execute("PRAGMA journal_mode").fetchone()
    assert mode == ("wal",)


def test_sqlite_rejects_schema_one(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    write_store(path, **_inputs())
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE meta SET value = '\"1\"' WHERE key = 'schema_version'")

    with pytest.raises(StoreNotFoundError, match="rebuild it"):
        SqliteStore(path)


def test_sqlite_rebuilds_over_schema_one(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    write_store(path, **_inputs())
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE meta SET value = '\"1\"' WHERE key = 'schema_version'")
        connection.execute("UPDATE anchors SET version = 2 WHERE anchor_id = 'anc-a'")

    write_store(path, **_inputs())

    record = SqliteStore(path).get_anchor("anc-a")
    assert record is not None
    assert record.version == 1


def test_sqlite_file_without_keys_table(tmp_path: Path, rules: dict[str, Any]) -> None:
    path = tmp_path / "old.sqlite"
    write_store(path, **_inputs())
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE idempotency_keys")
    staff_made, staff_entry = _created("雁塔新材料有限公司", rules)
    SqliteStore(path).insert_anchor(staff_made, staff_entry)

    write_store(path, **_inputs())
    store = SqliteStore(path)
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE idempotency_keys")
    keyed, keyed_entry = _created("雁塔幂等有限公司", rules)
    outcome = store.insert_anchor_once(
        keyed, keyed_entry, staff_id=STAFF, key="k-1", body_hash="a" * 64
    )

    assert store.get_anchor(staff_made.anchor_id) == staff_made
    assert outcome.anchor_id == keyed.anchor_id
    assert store.get_anchor(keyed.anchor_id) == keyed


def _drop_merged_into(path: Path) -> None:
    """Rewrite the anchors table without ``merged_into``, as files written before it had it."""
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute("PRAGMA legacy_alter_table = ON")
        create = connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'anchors'"
        ).fetchone()[0]
        legacy_create = create.replace(f",\n    {MERGED_INTO_COLUMN}", "")
        assert "merged_into" not in legacy_create
        columns = ", ".join(
            row[1]
            for row in connection.execute("PRAGMA table_info(anchors)")
            if row[1] != "merged_into"
        )
        connection.execute("BEGIN")
        connection.execute("ALTER TABLE anchors RENAME TO anchors_with_links")
        connection.execute(legacy_create)
        connection.execute(
            f"INSERT INTO anchors ({columns}) SELECT {columns} FROM anchors_with_links"
        )
        connection.execute("DROP TABLE anchors_with_links")
        connection.execute("COMMIT")


def _merge_links(path: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(path)) as connection:
        rows = connection.execute(
            "SELECT anchor_id, merged_into FROM anchors WHERE merged_into IS NOT NULL"
        ).fetchall()
    return [(str(merged), str(survivor)) for merged, survivor in rows]


def test_sqlite_rebuild_reads_old_merges(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    write_store(path, **_inputs())
    _merge(SqliteStore(path), "anc-B", ["anc-c"])
    _drop_merged_into(path)

    write_store(path, **_inputs())

    store = SqliteStore(path)
    postings = store.postings_frame().set_index("posting_id")
    assert postings.loc[["p4", "p5"], "anchor_id"].tolist() == ["anc-B", "anc-B"]
    assert store.posting_counts(["anc-B", "anc-c"]) == {"anc-B": 4, "anc-c": 0}
    assert _merge_links(path) == [("anc-c", "anc-B")]


def test_sqlite_write_adds_merge_column(tmp_path: Path, rules: dict[str, Any]) -> None:
    path = tmp_path / "old.sqlite"
    write_store(path, **_inputs())
    store = SqliteStore(path)
    _merge(store, "anc-B", ["anc-a"])
    _drop_merged_into(path)

    store.insert_anchor(*_created("雁塔新材料有限公司", rules))

    assert _merge_links(path) == [("anc-a", "anc-B")]
    _merge(store, "anc-B", ["anc-c"])
    assert sorted(_merge_links(path)) == [("anc-a", "anc-B"), ("anc-c", "anc-B")]


def test_sqlite_write_waiting_on_rebuild_fails(tmp_path: Path, rules: dict[str, Any]) -> None:
    path = tmp_path / "store.sqlite"
    write_store(path, **_inputs())
    store = SqliteStore(path)
    edit = _edit(store, "anc-a", AnchorChange(name="甲公司一"), rules)
    rebuilt = tmp_path / "rebuilt.sqlite"
    write_store(rebuilt, **_inputs())
    errors: list[Exception] = []

    def save() -> None:
        try:
            store.save_anchor_change(*edit, expected_version=1)
        except Exception as err:  # the test checks which error the thread raised
            errors.append(err)

    # The lock a rebuild takes on the old file, held while the new file is renamed into place.
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    writer = threading.Thread(target=save)
    writer.start()
    writer.join(timeout=0.5)
    os.replace(rebuilt, path)
    lock.execute("ROLLBACK")
    lock.close()
    writer.join(timeout=10)

    assert len(errors) == 1
    assert isinstance(errors[0], StoreReplacedError)
    record = store.get_anchor("anc-a")
    assert record is not None
    assert record.version == 1


# --- PostgreSQL only ------------------------------------------------------------------


def _migrated(make_database: Callable[[], str]) -> str:
    """Return the URL of a new, fully migrated database; skip when migrations fail."""
    url = make_database()
    try:
        apply_migrations(url)
    except MigrationError as err:
        pytest.skip(f"cannot migrate the test database (is PostGIS installed?): {err}")
    return url


def _roll_back(url: str, migration_id: str) -> None:
    """Roll back one applied migration with yoyo, as an operator would."""
    backend = get_backend("postgresql+psycopg://" + url.partition("://")[2])
    chosen = read_migrations(str(MIGRATIONS_DIR)).filter(
        lambda migration: migration.id == migration_id
    )
    try:
        with backend.lock():
            backend.rollback_migrations(backend.to_rollback(chosen))
    finally:
        backend.connection.close()


def test_postgres_curation_migration_rolls_back(make_database: Callable[[], str]) -> None:
    url = _migrated(make_database)
    _roll_back(url, "0002_anchor_curation")

    with psycopg.connect(url) as connection:
        history = connection.execute("SELECT to_regclass('anchor_history')").fetchone()
        columns = connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'anchors'"
        ).fetchall()
    assert history == (None,)
    assert ("version",) not in columns
    assert ("state",) in columns
    assert apply_migrations(url) == ["0002_anchor_curation"]


def test_postgres_keys_migration_rolls_back(make_database: Callable[[], str]) -> None:
    url = _migrated(make_database)
    _roll_back(url, "0003_idempotency_keys")

    with psycopg.connect(url) as connection:
        table = connection.execute("SELECT to_regclass('idempotency_keys')").fetchone()
    assert table == (None,)
    assert apply_migrations(url) == ["0003_idempotency_keys"]


def test_postgres_merge_links_migration_rolls_back(make_database: Callable[[], str]) -> None:
    url = _migrated(make_database)
    _roll_back(url, "0004_merge_links")

    with psycopg.connect(url) as connection:
        columns = connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'anchors'"
        ).fetchall()
    assert ("merged_into",) not in columns
    assert ("version",) in columns
    assert apply_migrations(url) == ["0004_merge_links"]


_MERGE_REASON = "merged into anchor anc-survivor as a duplicate"

# (anchor_id, state, version, (reason, state) of each history entry from version 2 on)
_OLD_ANCHORS = [
    ("anc-survivor", "draft", 1, []),
    ("anc-merged", "retired", 2, [(_MERGE_REASON, "retired")]),
    ("anc-orphan", "retired", 2, [("merged into anchor anc-gone as a duplicate", "retired")]),
    ("anc-closed", "retired", 2, [("企业停业", "retired")]),
    ("anc-back", "draft", 3, [(_MERGE_REASON, "retired"), ("误合并，恢复", "draft")]),
]


def test_postgres_migration_reads_old_merges(make_database: Callable[[], str]) -> None:
    url = make_database()
    backend = get_backend("postgresql+psycopg://" + url.partition("://")[2])
    earlier = read_migrations(str(MIGRATIONS_DIR)).filter(
        lambda migration: migration.id != "0004_merge_links"
    )
    try:
        with backend.lock():
            backend.apply_migrations(backend.to_apply(earlier))
    except psycopg.Error as err:
        pytest.skip(f"cannot migrate the test database (is PostGIS installed?): {err}")
    finally:
        backend.connection.close()
    with psycopg.connect(url) as connection:
        for row, (anchor_id, state, version, entries) in enumerate(_OLD_ANCHORS, start=1):
            connection.execute(
                "INSERT INTO anchors (anchor_id, anchor_row, name, lon, lat, precision, source,"
                " location_label, state, n_postings, version)"
                " VALUES (%s, %s, '甲公司', 108.9, 34.2, 'poi', 'test', '甲', %s, 0, %s)",
                (anchor_id, row, state, version),
            )
            for entry_version, (reason, entry_state) in enumerate(entries, start=2):
                connection.execute(
                    "INSERT INTO anchor_history"
                    " (anchor_id, version, actor, at, reason, changes, state)"
                    " VALUES (%s, %s, %s, %s, %s, '[]', %s)",
                    (anchor_id, entry_version, STAFF, NOW, reason, entry_state),
                )

    assert apply_migrations(url) == ["0004_merge_links"]

    with psycopg.connect(url) as connection:
        links = connection.execute(
            "SELECT anchor_id, merged_into FROM anchors WHERE merged_into IS NOT NULL"
        ).fetchall()
    assert links == [("anc-merged", "anc-survivor")]


def test_postgres_map_feature_migration_fills_stored_rows(
    make_database: Callable[[], str],
) -> None:
    url = _migrated(make_database)
    pool = open_pool(url, PoolOptions(min_size=1, max_size=2, name="test-0005"))
    try:
        PostgresStore(pool).replace_all(**_inputs())
    finally:
        pool.close()
    _roll_back(url, "0005_anchor_map_feature")

    with psycopg.connect(url) as connection:
        columns = connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'anchors'"
        ).fetchall()
    assert ("map_feature",) not in columns

    assert apply_migrations(url) == ["0005_anchor_map_feature"]
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            'SELECT anchor_id, map_feature FROM anchors ORDER BY anchor_id COLLATE "C"'
        ).fetchall()
    assert len(rows) == 5
    for anchor_id, fragment in rows:
        feature = json.loads(fragment + "}}")
        assert feature["properties"]["anchor_id"] == anchor_id
