"""The embedded store: one SQLite file, written by the build, read by the service.

The file is built into a temporary path and renamed into place, so a crashed or
interrupted build never leaves a half-written store behind. Anchors are indexed
with SQLite's R*Tree module so bounding-box queries go through a spatial index.

Reads open the file read-only. Anchor curation writes open a separate writable
connection in WAL mode with a busy timeout, and run each write in one
``BEGIN IMMEDIATE`` transaction, so concurrent writers queue instead of failing.
"""

import json
import logging
import os
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from geo.anchor_states import AnchorState, StaffScope
from geo.curation import AnchorRecord, AnchorVersion
from geo.duplicates import MergePlan
from geo.errors import DoorstepError
from store.curation_tables import (
    HISTORY_COLUMNS,
    RECORD_COLUMNS,
    STAFF_SOURCE,
    check_change_pair,
    check_new_pair,
    check_survivor,
    count_column,
    duplicate_anchor_error,
    history_from_row,
    history_params,
    location_label,
    merge_updates,
    record_from_row,
    record_to_row,
    stale_version_error,
    tidy_counts,
    update_assignments,
    update_params,
    utc_time,
)

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "2"

BUSY_TIMEOUT_S = 5.0
"""Seconds a curation write waits for another writer's lock before it fails."""

# The anchor columns the build writes; reads of anchor frames return these, as in schema 1.
_BUILD_ANCHOR_COLUMNS = ", ".join(
    f"a.{name}"
    for name in (
        "anchor_row", "anchor_id", "name", "lon", "lat", "precision", "source",
        "location_label", "district_code", "state", "n_postings",
    )
)  # fmt: skip

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE anchors (
    anchor_row INTEGER PRIMARY KEY,
    anchor_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    precision TEXT NOT NULL,
    source TEXT NOT NULL,
    location_label TEXT NOT NULL,
    district_code TEXT,
    state TEXT NOT NULL DEFAULT 'draft',
    n_postings INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    zone_key TEXT,
    address TEXT NOT NULL DEFAULT '',
    entrance_lon REAL,
    entrance_lat REAL,
    credit_code TEXT,
    industry_code TEXT,
    size TEXT,
    key_enterprise INTEGER NOT NULL DEFAULT 0,
    above_scale_industrial INTEGER NOT NULL DEFAULT 0,
    contact_role TEXT,
    contact_phone TEXT,
    shift_times TEXT NOT NULL DEFAULT '[]',
    shuttle_stop TEXT
);
CREATE UNIQUE INDEX anchors_credit_code ON anchors(credit_code) WHERE credit_code IS NOT NULL;
CREATE INDEX anchors_district_code ON anchors(district_code);
CREATE INDEX anchors_zone_key ON anchors(zone_key);
CREATE TABLE anchor_history (
    history_id INTEGER PRIMARY KEY,
    anchor_id TEXT NOT NULL REFERENCES anchors(anchor_id),
    version INTEGER NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT NOT NULL,
    changes TEXT NOT NULL,
    state TEXT NOT NULL,
    UNIQUE (anchor_id, version)
);
CREATE VIRTUAL TABLE anchors_rtree USING rtree(anchor_row, min_lon, max_lon, min_lat, max_lat);
CREATE TABLE layers (
    name TEXT PRIMARY KEY,
    title_zh TEXT NOT NULL,
    title_en TEXT NOT NULL,
    source TEXT NOT NULL,
    updated TEXT NOT NULL,
    geometry_type TEXT NOT NULL
);
CREATE TABLE layer_features (
    layer TEXT NOT NULL REFERENCES layers(name),
    properties TEXT NOT NULL,
    geometry BLOB NOT NULL
);
CREATE INDEX layer_features_layer ON layer_features(layer);
"""


class StoreNotFoundError(DoorstepError, FileNotFoundError):
    """The embedded store file does not exist or is not a Doorstep store."""


class LayerNotFoundError(DoorstepError, LookupError):
    """No map layer has the requested name."""


class SqliteStore:
    """Read access to a built embedded store.

    Parameters
    ----------
    path : pathlib.Path
        The SQLite file written by :func:`write_store`.
    busy_timeout_s : float
        Seconds a curation write waits for another writer before it fails.
    """

    def __init__(self, path: Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        if not path.is_file():
            raise StoreNotFoundError(
                f"store file {path} does not exist; build it with `doorstep build`"
            )
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        version = self.meta().get("schema_version")
        if version != SCHEMA_VERSION:
            raise StoreNotFoundError(
                f"store file {path} has schema version {version!r}, expected {SCHEMA_VERSION!r};"
                " rebuild it with `doorstep build --force`"
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            yield connection
        finally:
            connection.close()

    def describe(self) -> str:
        """Return the store file's path, for logs."""
        return f"SQLite {self.path}"

    def meta(self) -> dict[str, Any]:
        """Return the build metadata (counts, reports, timings) stored with the data."""
        with self._connect() as connection:
            try:
                rows = connection.execute("SELECT key, value FROM meta").fetchall()
            except sqlite3.DatabaseError as err:
                raise StoreNotFoundError(f"{self.path} is not a Doorstep store: {err}") from err
        return {key: json.loads(value) for key, value in rows}

    def postings_frame(self) -> pd.DataFrame:
        """Return active postings joined with their anchor's point, precision and district."""
        query = """
            SELECT p.*, a.lon, a.lat, a.precision, a.location_label, a.district_code,
                   a.source AS location_source
            FROM postings AS p JOIN anchors AS a USING (anchor_id)
            WHERE p.active = 1
        """
        with self._connect() as connection:
            return pd.read_sql_query(query, connection)

    def seekers_frame(self) -> pd.DataFrame:
        """Return every seeker; the embedded default holds only simulated seekers."""
        with self._connect() as connection:
            frame = pd.read_sql_query("SELECT * FROM seekers", connection)
        frame["simulated"] = frame["simulated"].astype(bool)
        return frame

    def anchors_in_bbox(
        self,
        bbox: tuple[float, float, float, float],
        limit: int,
        exclude_precisions: Collection[str] = (),
    ) -> pd.DataFrame:
        """Return up to ``limit`` anchors inside a WGS84 bbox (min_lon, min_lat, max_lon, max_lat).

        Anchors whose precision is in ``exclude_precisions`` are left out.
        Anchors with the most postings come first when the box holds more than ``limit``.
        The R*Tree keeps float32 bounds rounded outwards, so it selects by overlap and
        the exact ``lon``/``lat`` columns decide, keeping points on the box edge.
        """
        min_lon, min_lat, max_lon, max_lat = bbox
        query = f"""
            SELECT {_BUILD_ANCHOR_COLUMNS}
            FROM anchors_rtree AS r JOIN anchors AS a USING (anchor_row)
            WHERE r.max_lon >= ? AND r.min_lon <= ? AND r.max_lat >= ? AND r.min_lat <= ?
              AND a.lon BETWEEN ? AND ? AND a.lat BETWEEN ? AND ?
              AND a.precision NOT IN (SELECT value FROM json_each(?))
            ORDER BY a.n_postings DESC, a.anchor_id
            LIMIT ?
        """
        with self._connect() as connection:
            return pd.read_sql_query(
                query,
                connection,
                params=(
                    *(min_lon, max_lon, min_lat, max_lat),
                    *(min_lon, max_lon, min_lat, max_lat),
                    json.dumps(sorted(exclude_precisions)),
                    limit,
                ),
            )

    def anchors_frame(self) -> pd.DataFrame:
        """Return every anchor."""
        with self._connect() as connection:
            query = f"SELECT {_BUILD_ANCHOR_COLUMNS} FROM anchors AS a ORDER BY a.anchor_row"
            return pd.read_sql_query(query, connection)

    def layer_infos(self) -> list[dict[str, str]]:
        """Return the metadata of every map layer, in name order."""
        with self._connect() as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute("SELECT * FROM layers ORDER BY name").fetchall()
        return [dict(row) for row in rows]

    def layer_frame(self, name: str) -> gpd.GeoDataFrame:
        """Return one map layer as a WGS84 GeoDataFrame."""
        with self._connect() as connection:
            known = connection.execute("SELECT 1 FROM layers WHERE name = ?", (name,)).fetchone()
            if known is None:
                raise LayerNotFoundError(f"map layer {name!r} does not exist")
            rows = connection.execute(
                "SELECT properties, geometry FROM layer_features WHERE layer = ?", (name,)
            ).fetchall()
        properties = pd.DataFrame([json.loads(props) for props, _ in rows])
        geometry = shapely.from_wkb([blob for _, blob in rows])
        return gpd.GeoDataFrame(properties, geometry=geometry, crs="EPSG:4326")

    # --- anchor curation (CurationStore) ---------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Lend a writable WAL connection inside one ``BEGIN IMMEDIATE`` transaction.

        The transaction commits when the block ends and rolls back on any exception.
        """
        connection = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()

    def _read_rows(self, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        with self._connect() as connection:
            connection.row_factory = sqlite3.Row
            return [dict(row) for row in connection.execute(query, params).fetchall()]

    def get_anchor(self, anchor_id: str) -> AnchorRecord | None:
        """Return the stored record of one anchor, or None when the id is unknown."""
        rows = self._read_rows(
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM anchors WHERE anchor_id = ?", (anchor_id,)
        )
        return record_from_row(rows[0]) if rows else None

    def anchors_for_scope(
        self,
        scope: StaffScope,
        *,
        state: AnchorState | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AnchorRecord]:
        """Return anchors in the scope's districts or zones, optionally in one state.

        Records are ordered by ``anchor_id`` in byte order and paged by ``limit`` and ``offset``.
        """
        _check_page(limit, offset)
        query = f"""
            SELECT {", ".join(RECORD_COLUMNS)} FROM anchors
            WHERE (district_code IN (SELECT value FROM json_each(?))
                   OR zone_key IN (SELECT value FROM json_each(?)))
              AND (? IS NULL OR state = ?)
            ORDER BY anchor_id LIMIT ? OFFSET ?
        """
        state_value = None if state is None else AnchorState(state).value
        params = (
            json.dumps(sorted(scope.district_codes)),
            json.dumps(sorted(scope.zone_keys)),
            state_value,
            state_value,
            limit,
            offset,
        )
        return [record_from_row(row) for row in self._read_rows(query, params)]

    def anchor_history(self, anchor_id: str) -> list[AnchorVersion]:
        """Return the history entries of one anchor, oldest first."""
        rows = self._read_rows(
            f"SELECT {', '.join(HISTORY_COLUMNS)} FROM anchor_history"
            " WHERE anchor_id = ? ORDER BY version",
            (anchor_id,),
        )
        return [history_from_row(row) for row in rows]

    def save_anchor_change(
        self, record: AnchorRecord, version: AnchorVersion, *, expected_version: int
    ) -> None:
        """Store an edited record and its history entry if the anchor is at ``expected_version``.

        Raises
        ------
        StaleVersionError
            Another edit moved the anchor past ``expected_version``; nothing is written.
        AnchorNotFoundError
            The anchor is not stored.
        DuplicateAnchorError
            The new credit code belongs to another anchor.
        """
        check_change_pair(record, version, expected_version)
        with self._write() as connection:
            _update_record(connection, record, version, expected_version)
        logger.info(
            "stored anchor %r at version %d in %s", record.anchor_id, record.version, self.path
        )

    def insert_anchor(self, record: AnchorRecord, version: AnchorVersion) -> None:
        """Store a staff-added anchor (version 1) and its creation entry.

        Raises
        ------
        DuplicateAnchorError
            The id or the credit code is already stored; nothing is written.
        """
        check_new_pair(record, version)
        with self._write() as connection:
            _insert_record(connection, record, version)
        logger.info("stored new anchor %r in %s", record.anchor_id, self.path)

    def apply_merge(self, plan: MergePlan, *, expected_versions: Mapping[str, int]) -> int:
        """Retire the merged anchors, move their postings to the survivor; return postings moved.

        ``expected_versions`` has the version the plan was made from for each
        merged anchor, and for the survivor when it is to be checked as well.
        One transaction writes everything or, on any error, nothing.

        Raises
        ------
        StaleVersionError
            An anchor moved past its expected version.
        AnchorNotFoundError, InvalidMergeError
            The survivor is gone or was retired meanwhile.
        """
        updates = merge_updates(plan, expected_versions)
        merged = json.dumps(list(plan.merged_ids))
        with self._write() as connection:
            found = connection.execute(
                "SELECT version, state FROM anchors WHERE anchor_id = ?", (plan.survivor_id,)
            ).fetchone()
            check_survivor(plan.survivor_id, found, expected_versions.get(plan.survivor_id))
            for record, entry, expected in updates:
                _update_record(connection, record, entry, expected)

            moved = connection.execute(
                "UPDATE postings SET anchor_id = ?"
                " WHERE anchor_id IN (SELECT value FROM json_each(?))",
                (plan.survivor_id, merged),
            ).rowcount
            connection.execute(
                "UPDATE anchors SET n_postings ="
                " (SELECT count(*) FROM postings AS p WHERE p.anchor_id = anchors.anchor_id)"
                " WHERE anchor_id = ? OR anchor_id IN (SELECT value FROM json_each(?))",
                (plan.survivor_id, merged),
            )
        logger.info(
            "merged anchors %s into %r in %s: %d postings moved",
            list(plan.merged_ids),
            plan.survivor_id,
            self.path,
            moved,
        )
        return moved

    def apply_import(self, created: Sequence[tuple[AnchorRecord, AnchorVersion]]) -> int:
        """Store every imported anchor with its creation entry, or none; return the count.

        Raises
        ------
        DuplicateAnchorError
            An id or credit code is already stored or repeated in the import.
        """
        for record, entry in created:
            check_new_pair(record, entry)
        with self._write() as connection:
            for record, entry in created:
                _insert_record(connection, record, entry)
        logger.info("imported %d anchors into %s", len(created), self.path)
        return len(created)

    def precision_state_counts(self, by: str = "district") -> pd.DataFrame:
        """Count anchors by district (or zone), precision and state.

        Columns ``district_code`` (``zone_key`` when ``by="zone"``), ``precision``,
        ``state`` and ``n``, ordered by key (missing last), precision, state.
        """
        column = count_column(by)
        query = (
            f"SELECT {column}, precision, state, count(*) AS n FROM anchors"
            f" GROUP BY {column}, precision, state"
        )
        with self._connect() as connection:
            frame = pd.read_sql_query(query, connection)
        return tidy_counts(frame, column)


def write_store(
    path: Path,
    *,
    postings: pd.DataFrame,
    anchors: pd.DataFrame,
    seekers: pd.DataFrame,
    layers: dict[str, tuple[Any, gpd.GeoDataFrame]],
    meta: dict[str, Any],
) -> None:
    """Write a complete store to ``path`` atomically (temporary file, then rename).

    Parameters
    ----------
    path : pathlib.Path
        Destination file; its folder is created when missing.
    postings : pandas.DataFrame
        Normalised postings with an ``anchor_id`` column; every one is stored as active.
    anchors : pandas.DataFrame
        Columns of :data:`geo.anchors.ANCHOR_COLUMNS`, WGS84 degrees.
    seekers : pandas.DataFrame
        Seeker rows; must contain ``seeker_id`` and ``simulated``.
    layers : dict
        Layer name to (info, GeoDataFrame in EPSG:4326). ``info`` has the
        attributes title_zh, title_en, source, updated and geometry_type
        (:class:`geo.layers.LayerInfo`).
    meta : dict
        JSON-serialisable build metadata.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)

    connection = sqlite3.connect(partial)
    try:
        # WAL is a property of the file: curation writers then never race to switch it.
        connection.execute("PRAGMA journal_mode = WAL")
        connection.executescript(_SCHEMA)
        _write_anchors(connection, anchors)
        _write_frame(connection, "postings", postings.assign(active=1), "posting_id")
        # Merges re-point postings by anchor_id.
        connection.execute("CREATE INDEX postings_anchor_id ON postings(anchor_id)")
        _write_frame(connection, "seekers", seekers, "seeker_id")
        _write_layers(connection, layers)
        _write_meta(connection, {**meta, "schema_version": SCHEMA_VERSION})
        connection.commit()
    finally:
        connection.close()

    os.replace(partial, path)
    logger.info("wrote store %s", path)


def _write_anchors(connection: sqlite3.Connection, anchors: pd.DataFrame) -> None:
    rows = anchors.reset_index(drop=True)
    rows.insert(0, "anchor_row", range(1, len(rows) + 1))
    rows.to_sql("anchors", connection, if_exists="append", index=False)
    connection.executemany(
        "INSERT INTO anchors_rtree VALUES (?, ?, ?, ?, ?)",
        zip(rows["anchor_row"], rows["lon"], rows["lon"], rows["lat"], rows["lat"], strict=True),
    )


def _write_frame(connection: sqlite3.Connection, table: str, frame: pd.DataFrame, key: str) -> None:
    frame.to_sql(table, connection, index=False, chunksize=5_000)
    connection.execute(f"CREATE UNIQUE INDEX {table}_{key} ON {table}({key})")


def _write_layers(
    connection: sqlite3.Connection,
    layers: dict[str, tuple[Any, gpd.GeoDataFrame]],
) -> None:
    for name, (info, frame) in layers.items():
        connection.execute(
            "INSERT INTO layers VALUES (?, ?, ?, ?, ?, ?)",
            (name, info.title_zh, info.title_en, info.source, info.updated, info.geometry_type),
        )
        properties = frame.drop(columns=frame.geometry.name)
        records = properties.astype(object).where(properties.notna(), None).to_dict("records")
        blobs = shapely.to_wkb(frame.geometry.values)
        connection.executemany(
            "INSERT INTO layer_features VALUES (?, ?, ?)",
            [
                (name, json.dumps(record, ensure_ascii=False, default=str), blob)
                for record, blob in zip(records, blobs, strict=True)
            ],
        )


def _write_meta(connection: sqlite3.Connection, meta: dict[str, Any]) -> None:
    connection.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [(key, json.dumps(value, ensure_ascii=False, default=str)) for key, value in meta.items()],
    )


def _check_page(limit: int, offset: int) -> None:
    if limit < 0:
        raise ValueError(f"limit {limit} is invalid; expected 0 or more")
    if offset < 0:
        raise ValueError(f"offset {offset} is invalid; expected 0 or more")


def _update_record(
    connection: sqlite3.Connection,
    record: AnchorRecord,
    entry: AnchorVersion,
    expected_version: int,
) -> None:
    """Update an anchor row at ``expected_version``, its R*Tree entry and its history."""
    try:
        cursor = connection.execute(
            f"UPDATE anchors SET {update_assignments('?')} WHERE anchor_id = ? AND version = ?",
            update_params(record, expected_version),
        )
    except sqlite3.IntegrityError as err:
        raise duplicate_anchor_error(record, str(err)) from err

    if cursor.rowcount != 1:
        found = connection.execute(
            "SELECT version FROM anchors WHERE anchor_id = ?", (record.anchor_id,)
        ).fetchone()
        raise stale_version_error(
            record.anchor_id, expected_version, None if found is None else found[0]
        )

    connection.execute(
        "UPDATE anchors_rtree SET min_lon = ?, max_lon = ?, min_lat = ?, max_lat = ?"
        " WHERE anchor_row = (SELECT anchor_row FROM anchors WHERE anchor_id = ?)",
        (record.lon, record.lon, record.lat, record.lat, record.anchor_id),
    )
    _insert_history(connection, entry)


def _insert_record(
    connection: sqlite3.Connection, record: AnchorRecord, entry: AnchorVersion
) -> None:
    """Insert a new anchor row with its R*Tree entry and its creation history entry."""
    row = record_to_row(record)
    columns = ["source", "location_label", "n_postings", *RECORD_COLUMNS]
    values = [STAFF_SOURCE, location_label(record), 0, *(row[name] for name in RECORD_COLUMNS)]
    try:
        cursor = connection.execute(
            f"INSERT INTO anchors ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            values,
        )
    except sqlite3.IntegrityError as err:
        raise duplicate_anchor_error(record, str(err)) from err

    connection.execute(
        "INSERT INTO anchors_rtree VALUES (?, ?, ?, ?, ?)",
        (cursor.lastrowid, record.lon, record.lon, record.lat, record.lat),
    )
    _insert_history(connection, entry)


def _insert_history(connection: sqlite3.Connection, entry: AnchorVersion) -> None:
    placeholders = ", ".join("?" * len(HISTORY_COLUMNS))
    connection.execute(
        f"INSERT INTO anchor_history ({', '.join(HISTORY_COLUMNS)}) VALUES ({placeholders})",
        history_params(entry, at=utc_time(entry.at).isoformat()),
    )
