"""Rows of the curation tables: anchor records and history entries as both stores keep them.

Both stores convert between :class:`geo.curation.AnchorRecord` /
:class:`geo.curation.AnchorVersion` and table rows here, so SQLite and
PostgreSQL hold the same values. Lists and the shuttle stop are JSON text
(``jsonb`` in PostgreSQL), enums are their string values, and history times
are UTC. Coordinates are WGS84 (EPSG:4326) degrees.
"""

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import pandas as pd

from geo.anchor_fields import EnterpriseSize, ShuttleStop
from geo.anchor_states import AnchorState
from geo.curation import AnchorRecord, AnchorVersion, FieldChange, StaleVersionError
from geo.duplicates import InvalidMergeError, MergePlan
from geo.errors import DoorstepError
from geo.location import Precision
from store.base import AnchorNotFoundError, DuplicateAnchorError

logger = logging.getLogger(__name__)

RECORD_COLUMNS: tuple[str, ...] = tuple(item.name for item in fields(AnchorRecord))
"""Anchor table columns holding one :class:`AnchorRecord` field each, in field order."""

HISTORY_COLUMNS = ("anchor_id", "version", "actor", "at", "reason", "changes", "state")
"""Columns of the ``anchor_history`` table, apart from its generated key."""

COUNT_GROUPS = {"district": "district_code", "zone": "zone_key"}
"""Grouping keys of :func:`precision_state_counts`: the ``by`` value to its column."""

STAFF_SOURCE = "curation"
"""``source`` of anchors added by station staff (built anchors carry their ingest source)."""


# --- values ------------------------------------------------------------------------


def _to_json_value(value: object) -> object:
    """Return a JSON-ready form of a record field: enums as values, NaN as null."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, ShuttleStop):
        return {"name": value.name, "lon": value.lon, "lat": value.lat}
    if isinstance(value, tuple | list):
        return [_to_json_value(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _shuttle_stop(value: object) -> ShuttleStop | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"shuttle_stop {value!r} is invalid; expected a JSON object")
    return ShuttleStop(str(value["name"]), value.get("lon"), value.get("lat"))


_FIELD_DECODERS: dict[str, Callable[[Any], object]] = {
    "precision": Precision,
    "state": AnchorState,
    "size": EnterpriseSize,
    "shift_times": lambda value: tuple(value),
    "shuttle_stop": _shuttle_stop,
    "key_enterprise": bool,
    "above_scale_industrial": bool,
}


def _from_json_value(field_name: str, value: object) -> object:
    """Return a field's value read from JSON with its record type (enum, tuple, stop)."""
    if value is None:
        return None
    decode = _FIELD_DECODERS.get(field_name)
    return value if decode is None else decode(value)


def _parsed_json(value: object) -> object:
    """Return a JSON column's value: SQLite returns text, psycopg returns decoded jsonb."""
    return json.loads(value) if isinstance(value, str) else value


def _optional_float(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


# --- anchor records ------------------------------------------------------------------


def record_to_row(record: AnchorRecord) -> dict[str, Any]:
    """Return the column values of an anchor record, keyed by :data:`RECORD_COLUMNS`."""
    row: dict[str, Any] = {}
    for name in RECORD_COLUMNS:
        value = getattr(record, name)
        if name in ("shift_times", "shuttle_stop"):
            row[name] = None if value is None else json.dumps(_to_json_value(value))
        elif isinstance(value, Enum):
            row[name] = value.value
        else:
            row[name] = value
    return row


def record_from_row(row: Mapping[str, Any]) -> AnchorRecord:
    """Build an anchor record from a row holding at least :data:`RECORD_COLUMNS`."""
    shift_times = _parsed_json(row["shift_times"])
    return AnchorRecord(
        anchor_id=str(row["anchor_id"]),
        name=str(row["name"]),
        lon=float(row["lon"]),
        lat=float(row["lat"]),
        precision=Precision(row["precision"]),
        district_code=row["district_code"],
        zone_key=row["zone_key"],
        state=AnchorState(row["state"]),
        version=int(row["version"]),
        address=str(row["address"]),
        entrance_lon=_optional_float(row["entrance_lon"]),
        entrance_lat=_optional_float(row["entrance_lat"]),
        credit_code=row["credit_code"],
        industry_code=row["industry_code"],
        size=None if row["size"] is None else EnterpriseSize(row["size"]),
        key_enterprise=bool(row["key_enterprise"]),
        above_scale_industrial=bool(row["above_scale_industrial"]),
        contact_role=row["contact_role"],
        contact_phone=row["contact_phone"],
        shift_times=tuple(shift_times) if isinstance(shift_times, list) else (),
        shuttle_stop=_shuttle_stop(_parsed_json(row["shuttle_stop"])),
        filed_org=row["filed_org"],
    )


MERGE_LINK_ASSIGNMENT = "merged_into = CASE WHEN {state} = 'retired' THEN merged_into END"
"""Assignment that every versioned anchor update makes, with ``{state}`` the new state's marker.

A merge link is valid only while its anchor stays retired. A retired anchor
accepts no edit but reactivation, so the link goes when the anchor is reactivated.
"""


def update_assignments(placeholder: str) -> str:
    """Return ``col = ?, ...`` for every record column except ``anchor_id``, and the merge link.

    ``placeholder`` is the driver's parameter marker (``?`` for sqlite3). The
    column names are constants of this module, never input. The PostgreSQL store
    composes the same list with :mod:`psycopg.sql` identifiers.
    """
    columns = [f"{name} = {placeholder}" for name in RECORD_COLUMNS if name != "anchor_id"]
    return ", ".join([*columns, MERGE_LINK_ASSIGNMENT.format(state=placeholder)])


def update_params(record: AnchorRecord, expected_version: int) -> list[Any]:
    """Return the parameters of ``UPDATE anchors SET <assignments> WHERE anchor_id AND version``."""
    row = record_to_row(record)
    values = [row[name] for name in RECORD_COLUMNS if name != "anchor_id"]
    return [*values, record.state.value, record.anchor_id, expected_version]


# --- history -------------------------------------------------------------------------


def changes_to_json(changes: Sequence[FieldChange]) -> str:
    """Return the changed fields of a history entry as a JSON list of {field, old, new}."""
    items = [
        {"field": item.field, "old": _to_json_value(item.old), "new": _to_json_value(item.new)}
        for item in changes
    ]
    return json.dumps(items, ensure_ascii=False)


def changes_from_json(value: object) -> tuple[FieldChange, ...]:
    """Read the changed fields written by :func:`changes_to_json` back with their types."""
    items = _parsed_json(value)
    if not isinstance(items, list):
        raise ValueError(f"history changes {value!r} are invalid; expected a JSON list")
    return tuple(
        FieldChange(
            item["field"],
            _from_json_value(item["field"], item["old"]),
            _from_json_value(item["field"], item["new"]),
        )
        for item in items
    )


def history_params(entry: AnchorVersion, *, at: object) -> list[Any]:
    """Return the values of :data:`HISTORY_COLUMNS` for one entry, with ``at`` as given.

    ``at`` is the entry's time as the driver stores it: ISO text for SQLite,
    the aware datetime for psycopg.
    """
    return [
        entry.anchor_id,
        entry.version,
        entry.actor,
        at,
        entry.reason,
        changes_to_json(entry.changes),
        entry.state.value,
    ]


def utc_time(at: datetime) -> datetime:
    """Return an aware time in UTC; a naive time raises because its zone is unknown."""
    if at.tzinfo is None:
        raise ValueError(f"history time {at.isoformat()} has no time zone; pass an aware datetime")
    return at.astimezone(UTC)


def history_from_row(row: Mapping[str, Any]) -> AnchorVersion:
    """Build a history entry from a row of :data:`HISTORY_COLUMNS`; ``at`` comes back in UTC."""
    at = row["at"]
    stamp = datetime.fromisoformat(at) if isinstance(at, str) else at
    return AnchorVersion(
        anchor_id=str(row["anchor_id"]),
        version=int(row["version"]),
        actor=str(row["actor"]),
        at=utc_time(stamp),
        reason=str(row["reason"]),
        changes=changes_from_json(row["changes"]),
        state=AnchorState(row["state"]),
    )


# --- checks before a write ------------------------------------------------------------


def check_change_pair(record: AnchorRecord, entry: AnchorVersion, expected_version: int) -> None:
    """Raise ValueError unless ``entry`` is the history entry that takes ``record`` to its version.

    The record must be one version past ``expected_version`` (as
    :func:`geo.curation.apply_change` returns it), and the entry must name the
    same anchor and version.
    """
    if record.version != expected_version + 1:
        raise ValueError(
            f"anchor {record.anchor_id!r} has version {record.version}; expected "
            f"{expected_version + 1}, one past expected_version {expected_version}"
        )
    if (entry.anchor_id, entry.version) != (record.anchor_id, record.version):
        raise ValueError(
            f"history entry ({entry.anchor_id!r}, version {entry.version}) does not match "
            f"anchor {record.anchor_id!r} at version {record.version}"
        )
    utc_time(entry.at)


def check_new_pair(record: AnchorRecord, entry: AnchorVersion) -> None:
    """Raise ValueError unless a new anchor is at version 1 with its creation entry."""
    if record.version != 1:
        raise ValueError(
            f"new anchor {record.anchor_id!r} has version {record.version}; expected 1"
        )
    check_change_pair(record, entry, expected_version=0)


def merge_updates(
    plan: MergePlan, expected_versions: Mapping[str, int]
) -> list[tuple[AnchorRecord, AnchorVersion, int]]:
    """Pair each retired record of a merge plan with its history entry and expected version.

    Raises
    ------
    ValueError
        If ``expected_versions`` lacks a merged anchor, or a record and its
        history entry do not match.
    """
    missing = [anchor_id for anchor_id in plan.merged_ids if anchor_id not in expected_versions]
    if missing:
        raise ValueError(f"expected_versions has no version for merged anchors {missing}")

    entries = {entry.anchor_id: entry for entry in plan.history}
    updates = []
    for record in plan.retired:
        expected = expected_versions[record.anchor_id]
        entry = entries[record.anchor_id]
        check_change_pair(record, entry, expected)
        updates.append((record, entry, expected))
    return updates


# --- summaries ----------------------------------------------------------------------


def count_column(by: str) -> str:
    """Return the anchor column that ``by`` groups on; raise ValueError when unknown."""
    try:
        return COUNT_GROUPS[by]
    except KeyError:
        raise ValueError(f"by {by!r} is invalid; expected one of {sorted(COUNT_GROUPS)}") from None


def tidy_counts(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Sort a (key, precision, state, n) count frame the same way in both stores.

    Rows are ordered by key (missing keys last), then precision and state.
    """
    frame = frame.astype({"n": "int64"})
    ordered = frame.sort_values([column, "precision", "state"], na_position="last")
    return ordered.reset_index(drop=True)


# --- errors shared by both stores ---------------------------------------------------


def stale_version_error(
    anchor_id: str, expected_version: int, current_version: int | None
) -> DoorstepError:
    """Return the error for an update that matched no row: stale version, or no such anchor."""
    if current_version is None:
        return AnchorNotFoundError(f"anchor {anchor_id!r} does not exist")
    return StaleVersionError(anchor_id, expected_version, current_version)


def duplicate_anchor_error(record: AnchorRecord, constraint: str) -> DuplicateAnchorError:
    """Return the error for a unique constraint that a record broke, naming the clashing value."""
    if "credit_code" in constraint:
        return DuplicateAnchorError(
            f"credit code {record.credit_code!r} of anchor {record.anchor_id!r} already belongs"
            " to another anchor; merge the two anchors instead"
        )
    return DuplicateAnchorError(
        f"anchor id {record.anchor_id!r} already exists; create the anchor with a new id"
    )


def check_survivor(
    survivor_id: str, found: tuple[int, str] | None, expected_version: int | None
) -> None:
    """Check the stored (version, state) of a merge survivor before the merge is written.

    Raises
    ------
    AnchorNotFoundError
        If the survivor is not stored.
    StaleVersionError
        If ``expected_version`` is given and the survivor is at another version.
    InvalidMergeError
        If the survivor was retired since the plan was made.
    """
    if found is None:
        raise AnchorNotFoundError(f"merge survivor {survivor_id!r} does not exist")
    version, state = found
    if expected_version is not None and version != expected_version:
        raise StaleVersionError(survivor_id, expected_version, version)
    if state == AnchorState.RETIRED.value:
        raise InvalidMergeError(f"survivor {survivor_id!r} is retired; pick an active anchor")


def location_label(record: AnchorRecord) -> str:
    """Return the map label of a staff-added anchor: its address, or its name without one."""
    return record.address or record.name
