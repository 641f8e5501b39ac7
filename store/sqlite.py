"""The embedded store: one SQLite file, written by the build, read by the service.

The file is built into a temporary path and renamed into place, so a crashed or
interrupted build never leaves a half-written store behind. Anchors are indexed
with SQLite's R*Tree module so bounding-box queries go through a spatial index.
A rebuild copies the curated anchors, their history and the operation log from the
old file into the new one before the rename, and moves the postings of merged
anchors to their survivors (the rule is in :mod:`store.rebuild`).

Reads open the file read-only. The anchor curation methods, which write through
their own connection, come from :class:`store.sqlite_curation.SqliteCuration`.
"""

import json
import logging
import os
import sqlite3
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import DoorstepError
from store.anchor_map import (
    NO_FLAG_FILTER,
    ClusterGrid,
    FlagFilter,
    MapLabels,
    anchors_collection,
    clusters_collection,
)
from store.assistance_store import copy_assistance_tables
from store.index_changes import (
    SQLITE_INDEX_CHANGES_TABLE,
    add_sqlite_index_changes,
    with_new_generation,
)
from store.rebuild import log_kept, log_replayed
from store.seeker_records import INDEX_COLUMNS, check_protected
from store.sqlite_audit import copy_audit
from store.sqlite_curation import (
    FILED_ORG_COLUMN,
    IDEMPOTENCY_KEYS_TABLE,
    SqliteCuration,
    add_filed_org,
)
from store.sqlite_merges import MERGED_INTO_COLUMN
from store.sqlite_rebuild import locked_old_store, read_kept, write_anchors
from store.sqlite_seekers import SqliteSeekers

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

# The staff-curated enterprise flags (0 or 1) that the map layer carries.
_FLAG_COLUMNS = "a.key_enterprise, a.above_scale_industrial"

_SCHEMA = (
    f"""
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
    shuttle_stop TEXT,
    {FILED_ORG_COLUMN},
    {MERGED_INTO_COLUMN}
);
CREATE UNIQUE INDEX anchors_credit_code ON anchors(credit_code) WHERE credit_code IS NOT NULL;
CREATE INDEX anchors_district_code ON anchors(district_code);
CREATE INDEX anchors_zone_key ON anchors(zone_key);
CREATE INDEX anchors_filed_org ON anchors(filed_org);
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
    + IDEMPOTENCY_KEYS_TABLE
)


class StoreNotFoundError(DoorstepError, FileNotFoundError):
    """The embedded store file does not exist or is not a Doorstep store."""


class LayerNotFoundError(DoorstepError, LookupError):
    """No map layer has the requested name."""


class SqliteStore(SqliteCuration, SqliteSeekers):
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
        self.prepare_file()

    def prepare_file(self) -> None:
        """Check the file's schema version and add what files written before it lack.

        Runs when the store is opened, and again when a service process finds the file
        rebuilt under it.

        Raises
        ------
        StoreNotFoundError
            The file is not a store of the current schema version.
        """
        version = self.meta().get("schema_version")
        if version != SCHEMA_VERSION:
            raise StoreNotFoundError(
                f"store file {self.path} has schema version {version!r},"
                f" expected {SCHEMA_VERSION!r}; rebuild it with `doorstep build --force`"
            )
        add_filed_org(self.path, self.busy_timeout_s)
        add_sqlite_index_changes(self.path, self.busy_timeout_s)

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
            except sqlite3.OperationalError as err:
                # "database is locked" and other errors of reading, which a retry can fix,
                # unlike a file without the table.
                if "no such table" not in str(err):
                    raise
                raise StoreNotFoundError(f"{self.path} is not a Doorstep store: {err}") from err
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
        """Return every seeker as stored, with personal fields encrypted.

        The columns are described in :mod:`store.seeker_records`. The embedded
        default holds only simulated seekers.
        """
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
        Anchors with the most postings come first when the box contains more than ``limit``.
        The R*Tree keeps float32 bounds rounded outwards, so it selects by overlap and
        the exact ``lon``/``lat`` columns decide, keeping points on the box edge.
        """
        return self._select_in_bbox(
            _BUILD_ANCHOR_COLUMNS, bbox, limit, exclude_precisions, NO_FLAG_FILTER
        )

    def anchor_map(
        self,
        bbox: tuple[float, float, float, float],
        max_features: int,
        labels: MapLabels,
        exclude_precisions: Collection[str] = (),
        flags: FlagFilter = NO_FLAG_FILTER,
    ) -> bytes:
        """Return the anchors inside a WGS84 bbox as the map's GeoJSON body, UTF-8 encoded.

        See :mod:`store.anchor_map`: single anchors when at most ``max_features`` are in
        view, grid clusters above that. Anchors with equal ``n_postings`` come in
        ``anchor_id`` order here.
        """
        columns = f"{_BUILD_ANCHOR_COLUMNS}, {_FLAG_COLUMNS}"
        found = self._select_in_bbox(columns, bbox, max_features + 1, exclude_precisions, flags)
        if len(found) <= max_features:
            return anchors_collection(found, labels).encode()
        # SQLite reads LIMIT -1 as no limit.
        everything = self._select_in_bbox(columns, bbox, -1, exclude_precisions, flags)
        return clusters_collection(
            everything["lon"].to_numpy(np.float64),
            everything["lat"].to_numpy(np.float64),
            everything["n_postings"].to_numpy(np.int64),
            ClusterGrid.for_bbox(bbox, max_features),
            key_enterprise=everything["key_enterprise"].to_numpy(np.bool_),
            above_scale_industrial=everything["above_scale_industrial"].to_numpy(np.bool_),
        ).encode()

    def _select_in_bbox(
        self,
        columns: str,
        bbox: tuple[float, float, float, float],
        limit: int,
        exclude_precisions: Collection[str],
        flags: FlagFilter,
    ) -> pd.DataFrame:
        """Select ``columns`` of the anchors in a bbox that pass the filters, most postings first.

        A flag of ``flags`` that is None matches every anchor (``? IS NULL``).
        """
        min_lon, min_lat, max_lon, max_lat = bbox
        query = f"""
            SELECT {columns}
            FROM anchors_rtree AS r JOIN anchors AS a USING (anchor_row)
            WHERE r.max_lon >= ? AND r.min_lon <= ? AND r.max_lat >= ? AND r.min_lat <= ?
              AND a.lon BETWEEN ? AND ? AND a.lat BETWEEN ? AND ?
              AND a.precision NOT IN (SELECT value FROM json_each(?))
              AND (? IS NULL OR a.key_enterprise = ?)
              AND (? IS NULL OR a.above_scale_industrial = ?)
            ORDER BY a.n_postings DESC, a.anchor_id
            LIMIT ?
        """  # nosec B608 # constant identifiers, bound values
        key, above_scale = flags.key_enterprise, flags.above_scale_industrial
        with self._connect() as connection:
            return pd.read_sql_query(
                query,
                connection,
                params=(
                    *(min_lon, max_lon, min_lat, max_lat),
                    *(min_lon, max_lon, min_lat, max_lat),
                    json.dumps(sorted(exclude_precisions)),
                    *(key, key, above_scale, above_scale),
                    limit,
                ),
            )

    def anchors_frame(self) -> pd.DataFrame:
        """Return every anchor."""
        with self._connect() as connection:
            query = f"SELECT {_BUILD_ANCHOR_COLUMNS} FROM anchors AS a ORDER BY a.anchor_row"  # nosec B608 # constant identifiers, bound values
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

    When ``path`` is a store of the current schema, its curated anchors, merge
    survivors and their history are copied into the new file, and postings of
    merged anchors move to their survivors (see :mod:`store.rebuild`). A
    write lock on the old file is held from that read until the rename, so a
    curation write waits meanwhile and is not lost. If anything fails before
    the rename, the old file stays as it was. Every audit record and the chain
    head are copied too, whatever the old file's schema version, and so are the
    assistance targets, the 131 ledger and the return visits.

    Parameters
    ----------
    path : pathlib.Path
        Destination file; its folder is created when missing.
    postings : pandas.DataFrame
        Normalised postings with an ``anchor_id`` column; every one is stored as active.
    anchors : pandas.DataFrame
        Columns of :data:`geo.anchors.ANCHOR_COLUMNS`, WGS84 degrees.
    seekers : pandas.DataFrame
        Seeker rows in their stored form (:func:`store.seeker_records.check_protected`),
        with ``seeker_id`` and ``simulated``.
    layers : dict
        Layer name to (info, GeoDataFrame in EPSG:4326). ``info`` has the
        attributes title_zh, title_en, source, updated and geometry_type
        (:class:`geo.layers.LayerInfo`).
    meta : dict
        JSON-serialisable build metadata.

    Raises
    ------
    store.seeker_records.PlaintextPersonalDataError
        ``seekers`` carries a plaintext personal column; nothing was written.
    store.sqlite_rebuild.StoreBusyError
        Other connections kept writing to the old store's WAL; nothing was replaced.
    store.rebuild.MergeCycleError
        The old store's merge links form a cycle; nothing was replaced.
    """
    check_protected(seekers)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)

    connection = sqlite3.connect(partial)
    try:
        # WAL is a property of the file: curation writers then never race to switch it.
        connection.execute("PRAGMA journal_mode = WAL")
        connection.executescript(_SCHEMA)
        _write_frame(connection, "postings", postings.assign(active=1), "posting_id")
        # Merges re-point postings by anchor_id.
        connection.execute("CREATE INDEX postings_anchor_id ON postings(anchor_id)")
        _write_frame(connection, "seekers", seekers, "seeker_id")
        for column in (c for c in INDEX_COLUMNS if c in seekers.columns):
            connection.execute(f"CREATE UNIQUE INDEX seekers_{column} ON seekers({column})")
        _write_layers(connection, layers)
        _write_meta(connection, {**with_new_generation(meta), "schema_version": SCHEMA_VERSION})
        # The change log starts empty, with ids from 1 again; service processes that
        # applied the old file's changes see the new build identity and reload.
        connection.execute(SQLITE_INDEX_CHANGES_TABLE)

        # Curated rows are read last, so the old file's write lock is held only for the copy.
        with locked_old_store(path, BUSY_TIMEOUT_S) as old:
            kept = read_kept(path, old, SCHEMA_VERSION)
            moved = write_anchors(connection, anchors, kept)
            n_audit = copy_audit(old, connection)
            n_assistance = copy_assistance_tables(old, connection)
            connection.commit()
            connection.close()
            os.replace(partial, path)
        if kept.anchors:
            log_kept(
                [row["anchor_id"] for row in kept.anchors], anchors["anchor_id"].tolist(), str(path)
            )
        if kept.merges:
            log_replayed(len(kept.merges), moved, str(path))
        if n_audit:
            logger.info("carried %d audit records over into %s", n_audit, path)
        if n_assistance:
            logger.info("carried %d assistance rows over into %s", n_assistance, path)
    finally:
        connection.close()

    logger.info("wrote store %s", path)


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
