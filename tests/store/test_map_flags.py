"""Enterprise flags in the map's anchor layer on both stores, and migration 0015's rollback.

Flags are set through the versioned curation write (``save_anchor_change``), as the
staff route sets them, so the cases also check that an edit shows in the layer at
once: SQLite reads the flag columns, PostgreSQL rewrites the stored map fragment.
"""

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from geo.curation import AnchorChange
from store.anchor_map import FlagFilter
from store.migrations import apply_migrations
from store.postgres import PoolOptions, PostgresStore, open_pool
from tests.store.test_contract import _LABELS, _inputs
from tests.store.test_curation_store import (
    FullStore,
    _edit,
    _migrated,
    _roll_back,
    industries,
    regions,
    rules,
    store,
    zones,
)

# The curation fixtures live in test_curation_store.py; importing them here lends them
# to this module as well.
__all__ = ["industries", "regions", "rules", "store", "zones"]

# Every contract anchor but the city-level one (anc-city) lies inside this box.
_VIEW = (108.85, 34.15, 109.05, 34.35)
_EXCLUDE_CITY = ("city",)


def _flag(store: FullStore, anchor_id: str, rules: dict[str, Any], **flags: bool) -> None:
    """Set enterprise flags of one anchor through a versioned curation edit."""
    record = store.get_anchor(anchor_id)
    assert record is not None
    change = AnchorChange(**flags)
    store.save_anchor_change(
        *_edit(store, anchor_id, change, rules, minutes=record.version),
        expected_version=record.version,
    )


def _properties(body: bytes) -> dict[str, dict[str, Any]]:
    """Return the properties of each anchor feature of a map body, by anchor id."""
    collection = json.loads(body)
    assert collection["clustered"] is False
    return {f["properties"]["anchor_id"]: f["properties"] for f in collection["features"]}


def test_flag_edit_shows_in_map(store: FullStore, rules: dict[str, Any]) -> None:
    before = _properties(store.anchor_map(_VIEW, 10, _LABELS, _EXCLUDE_CITY))
    _flag(store, "anc-c", rules, key_enterprise=True)
    _flag(store, "anc-a", rules, above_scale_industrial=True)

    after = _properties(store.anchor_map(_VIEW, 10, _LABELS, _EXCLUDE_CITY))

    assert all(p["key_enterprise"] is False for p in before.values())
    assert all(p["above_scale_industrial"] is False for p in before.values())
    assert after["anc-c"]["key_enterprise"] is True
    assert after["anc-c"]["above_scale_industrial"] is False
    assert after["anc-a"]["key_enterprise"] is False
    assert after["anc-a"]["above_scale_industrial"] is True
    assert after["anc-B"]["key_enterprise"] is False
    # The language labels still follow the flags.
    assert after["anc-c"]["precision_label"] == "楼宇级"
    assert after["anc-c"]["district_name"] == "雁塔区"


def test_flag_edit_keeps_version_rules(store: FullStore, rules: dict[str, Any]) -> None:
    _flag(store, "anc-c", rules, key_enterprise=True)
    _flag(store, "anc-c", rules, key_enterprise=False)

    record = store.get_anchor("anc-c")
    history = store.anchor_history("anc-c")
    shown = _properties(store.anchor_map(_VIEW, 10, _LABELS, _EXCLUDE_CITY))

    assert record is not None
    assert record.version == 3
    assert [entry.version for entry in history] == [2, 3]
    assert [[item.field for item in entry.changes] for entry in history] == [
        ["key_enterprise"],
        ["key_enterprise"],
    ]
    assert shown["anc-c"]["key_enterprise"] is False


def test_filter_keeps_flagged_anchors(store: FullStore, rules: dict[str, Any]) -> None:
    _flag(store, "anc-c", rules, key_enterprise=True)
    _flag(store, "anc-a", rules, key_enterprise=True, above_scale_industrial=True)
    _flag(store, "anc-B", rules, above_scale_industrial=True)

    def ids_shown(flags: FlagFilter) -> list[str]:
        return sorted(_properties(store.anchor_map(_VIEW, 10, _LABELS, _EXCLUDE_CITY, flags)))

    assert ids_shown(FlagFilter(key_enterprise=True)) == ["anc-a", "anc-c"]
    assert ids_shown(FlagFilter(key_enterprise=False)) == ["anc-B", "anc-edge"]
    assert ids_shown(FlagFilter(above_scale_industrial=True)) == ["anc-B", "anc-a"]
    assert ids_shown(FlagFilter(key_enterprise=True, above_scale_industrial=True)) == ["anc-a"]
    assert ids_shown(FlagFilter(key_enterprise=False, above_scale_industrial=False)) == ["anc-edge"]
    assert ids_shown(FlagFilter()) == ["anc-B", "anc-a", "anc-c", "anc-edge"]


def test_filter_applies_before_total(store: FullStore, rules: dict[str, Any]) -> None:
    _flag(store, "anc-c", rules, key_enterprise=True)

    body = json.loads(store.anchor_map(_VIEW, 10, _LABELS, _EXCLUDE_CITY, FlagFilter(True)))

    assert body["total"] == 1
    assert [f["properties"]["anchor_id"] for f in body["features"]] == ["anc-c"]


def test_clusters_count_flagged_anchors(store: FullStore, rules: dict[str, Any]) -> None:
    _flag(store, "anc-c", rules, key_enterprise=True, above_scale_industrial=True)
    _flag(store, "anc-a", rules, above_scale_industrial=True)
    _flag(store, "anc-edge", rules, key_enterprise=True)

    body = json.loads(store.anchor_map(_VIEW, 4, _LABELS))

    # The grid of the contract's cluster test: (anc-a, anc-c), (anc-B, anc-edge), anc-city.
    assert body["clustered"] is True
    counts = [
        (
            f["properties"]["count"],
            f["properties"]["n_key_enterprise"],
            f["properties"]["n_above_scale_industrial"],
        )
        for f in body["features"]
    ]
    assert counts == [(2, 1, 2), (2, 1, 0), (1, 0, 0)]


def test_filter_applies_before_clustering(store: FullStore, rules: dict[str, Any]) -> None:
    _flag(store, "anc-c", rules, key_enterprise=True)

    # Five anchors in view exceed a limit of four, but only four are not key enterprises.
    everything = json.loads(store.anchor_map(_VIEW, 4, _LABELS))
    others = json.loads(store.anchor_map(_VIEW, 4, _LABELS, flags=FlagFilter(False)))

    assert everything["clustered"] is True
    assert others["clustered"] is False
    assert others["total"] == 4
    assert "anc-c" not in {f["properties"]["anchor_id"] for f in others["features"]}


def test_postgres_flags_migration_rolls_back(make_database: Callable[[], str]) -> None:
    url = _migrated(make_database)
    pool = open_pool(url, PoolOptions(min_size=1, max_size=2, name="test-0015"))
    try:
        PostgresStore(pool).replace_all(**_inputs())
    finally:
        pool.close()
    with psycopg.connect(url) as connection:
        connection.execute("UPDATE anchors SET key_enterprise = true WHERE anchor_id = 'anc-a'")

    _roll_back(url, "0015_anchor_map_flags")
    unflagged = _fragments(url)
    reapplied = apply_migrations(url)
    flagged = _fragments(url)

    assert all("key_enterprise" not in properties for properties in unflagged.values())
    assert reapplied == ["0015_anchor_map_flags"]
    assert flagged["anc-a"]["key_enterprise"] is True
    assert flagged["anc-B"]["key_enterprise"] is False
    assert all(p["above_scale_industrial"] is False for p in flagged.values())


def _fragments(url: str) -> dict[str, dict[str, Any]]:
    """Return the properties of each anchor's stored map fragment, by anchor id."""
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT anchor_id, map_feature FROM anchors").fetchall()
    return {anchor_id: json.loads(fragment + "}}")["properties"] for anchor_id, fragment in rows}


@pytest.mark.parametrize("flags", [FlagFilter(True), FlagFilter(None, False)])
def test_empty_view_with_filter(store: FullStore, flags: FlagFilter) -> None:
    body = json.loads(store.anchor_map((100.0, 30.0, 100.1, 30.1), 10, _LABELS, (), flags))

    assert body == {"type": "FeatureCollection", "clustered": False, "total": 0, "features": []}
