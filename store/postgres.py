"""The production store: PostgreSQL 15 with PostGIS 3, through one psycopg 3 connection pool.

The schema comes from the migrations in ``store/migrations``. Columns the service
reads are typed columns. Any other column of a written frame goes to the row's
``extra`` jsonb. The ``frame_columns`` table records every column's order and pandas
kind, so a read returns the frame that was written. Coordinates are WGS84 (EPSG:4326);
bbox queries use the GiST index on ``geom`` and radius queries measure metres on
``geography``.

The anchor curation methods come from :class:`store.postgres_curation.PostgresCuration`.
"""

import json
import logging
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Json, Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from geo.errors import DoorstepError, InvalidCoordinateError

# _fetch_frame and _qualified live in the curation module, because importing them from
# here would make an import cycle.
from store.anchor_map import NO_FLAG_FILTER, FlagFilter, MapLabels
from store.index_changes import with_new_generation
from store.postgres_audit import PostgresAudit
from store.postgres_curation import PostgresCuration, _fetch_frame, _qualified
from store.postgres_map import anchor_map_body
from store.postgres_rebuild import delete_build_rows, replay_merges
from store.postgres_seekers import PostgresSeekers
from store.rebuild import anchor_positions, log_kept, log_replayed
from store.seeker_records import ENVELOPE_COLUMNS, INDEX_COLUMNS, check_protected
from store.sqlite import LayerNotFoundError, StoreNotFoundError

logger = logging.getLogger(__name__)

Pool = ConnectionPool[psycopg.Connection[tuple[Any, ...]]]

# The build writes as a batch job, so it gets a longer limit than the per-connection
# statement timeout, which protects request handlers.
WRITE_STATEMENT_TIMEOUT = "10min"

_dumps = partial(json.dumps, ensure_ascii=False, default=str)


class DatabaseUnavailableError(DoorstepError, ConnectionError):
    """Connecting to PostgreSQL failed or timed out."""


@dataclass(frozen=True)
class PoolOptions:
    """Size and timeouts of the connection pool.

    Parameters
    ----------
    min_size, max_size : int
        Connections kept open, and the most opened at once.
    timeout_s : float
        Seconds a caller waits for a free connection, and for the pool to open.
    connect_timeout_s : int
        Seconds to establish one connection (libpq ``connect_timeout``).
    statement_timeout_ms : int
        Server-side limit of one statement, in milliseconds (0 disables it).
    name : str
        Pool name used in logs.
    """

    min_size: int = 1
    max_size: int = 4
    timeout_s: float = 10.0
    connect_timeout_s: int = 5
    statement_timeout_ms: int = 30_000
    name: str = "doorstep"


@dataclass(frozen=True)
class _Table:
    """A frame's table: typed columns, integer ones, and the column keeping the write order."""

    name: str
    row_column: str
    columns: tuple[str, ...]
    integer_columns: frozenset[str]


_ANCHORS = _Table(
    name="anchors",
    row_column="anchor_row",
    columns=(
        "anchor_id", "name", "lon", "lat", "precision", "source", "location_label",
        "district_code", "state", "n_postings",
    ),
    integer_columns=frozenset({"n_postings"}),
)  # fmt: skip
_POSTINGS = _Table(
    name="postings",
    row_column="posting_row",
    columns=(
        "posting_id", "anchor_id", "source", "title", "company", "location_text",
        "business_zones", "salary_text", "salary_min_month", "salary_max_month",
        "salary_period", "salary_months_per_year", "education", "experience_min_years",
        "experience_max_years", "graduate_ok", "published_on", "occupation_code",
        "occupation_name", "occupation_score",
    ),
    integer_columns=frozenset({"education"}),
)  # fmt: skip
_SEEKERS = _Table(
    name="seekers",
    row_column="seeker_row",
    columns=(
        "seeker_id", "simulated", "group", "education", "experience_years", "major",
        "occupation_wish_code", "occupation_wish_name", "keywords", "salary_wish_min",
        "salary_wish_max", "max_commute_min", "modes", "home_lon", "home_lat", "home_kind",
        "home_district_code", "home_street_code", "home_community_code", *ENVELOPE_COLUMNS,
        *INDEX_COLUMNS,
    ),
    integer_columns=frozenset({"education", "max_commute_min"}),
)  # fmt: skip

# Anchor columns joined onto each posting, named as the SQLite store names them.
_POSTING_LOCATION = (
    "a.lon, a.lat, a.precision, a.location_label, a.district_code, a.source AS location_source"
)


def mask_url(url: str) -> str:
    """Return a PostgreSQL URL or conninfo string with its password replaced by ``***``."""
    if "://" in url:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparsable conninfo>"
    if "password" in params:
        params["password"] = "***"  # nosec B105 # a log mask, not a password
    return make_conninfo(**{key: str(value) for key, value in params.items()})


def open_pool(database_url: str, options: PoolOptions | None = None) -> Pool:
    """Open a connection pool that replaces connections found broken when they are lent.

    Raises
    ------
    DatabaseUnavailableError
        When ``min_size`` connections cannot be opened within ``timeout_s``.
    """
    opts = options or PoolOptions()
    pool: Pool = ConnectionPool(
        database_url,
        min_size=opts.min_size,
        max_size=opts.max_size,
        timeout=opts.timeout_s,
        name=opts.name,
        open=False,
        check=ConnectionPool.check_connection,
        # NOTE: these keys override the same keys given in the URL's query string.
        kwargs={
            "connect_timeout": opts.connect_timeout_s,
            "options": f"-c statement_timeout={opts.statement_timeout_ms}",
            "application_name": "doorstep",
        },
    )
    try:
        pool.open(wait=True, timeout=opts.timeout_s)
    except PoolTimeout as err:
        pool.close()
        raise DatabaseUnavailableError(
            f"could not open {opts.min_size} connection(s) to {mask_url(database_url)} within"
            f" {opts.timeout_s} s; check that PostgreSQL is running and DOORSTEP_DATABASE_URL"
        ) from err

    logger.info(
        "pool %r open on %s (min %d, max %d connections)",
        opts.name,
        mask_url(database_url),
        opts.min_size,
        opts.max_size,
    )
    return pool


class PostgresStore(PostgresCuration, PostgresAudit, PostgresSeekers):
    """Read and replace the data in a migrated PostgreSQL + PostGIS database.

    Parameters
    ----------
    pool : psycopg_pool.ConnectionPool
        An open pool (see :func:`open_pool`); the caller closes it.
    """

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        conninfo = pool.conninfo if isinstance(pool.conninfo, str) else "<conninfo callable>"
        self._label = f"PostgreSQL {mask_url(conninfo)} (pool {pool.name!r})"
        with self._pool.connection() as connection:
            found = connection.execute("SELECT to_regclass('anchors')").fetchone()
        if found is None or found[0] is None:
            raise StoreNotFoundError(
                f"{self._label} has no Doorstep tables;"
                " apply the migrations with `doorstep migrate`"
            )

    @property
    def pool(self) -> Pool:
        """The connection pool, shared with the identity tables of the same database."""
        return self._pool

    def describe(self) -> str:
        """Return the masked connection string and the pool name."""
        return self._label

    def server_versions(self) -> dict[str, str]:
        """Return the versions of the PostgreSQL server and of PostGIS with its GEOS and PROJ."""
        with self._pool.connection() as connection:
            row = connection.execute(
                "SELECT current_setting('server_version'), postgis_lib_version(),"
                " postgis_geos_version(), postgis_proj_version()"
            ).fetchone()
        names = ("postgresql", "postgis", "postgis geos", "postgis proj")
        return dict(zip(names, (str(value) for value in row or ()), strict=False))

    def has_data(self) -> bool:
        """Return whether a build has been written (the metadata table is not empty)."""
        with self._pool.connection() as connection:
            row = connection.execute("SELECT EXISTS (SELECT 1 FROM meta)").fetchone()
        return bool(row and row[0])

    def meta(self) -> dict[str, Any]:
        """Return the build metadata (counts, reports, timings) stored with the data."""
        with self._pool.connection() as connection:
            rows = connection.execute("SELECT key, value FROM meta ORDER BY key").fetchall()
        return {key: value for key, value in rows}

    def postings_frame(self) -> pd.DataFrame:
        """Return active postings joined with their anchor's point, precision and district."""
        query = sql.SQL(
            "SELECT {columns}, p.extra, p.active, " + _POSTING_LOCATION + " FROM postings AS p"  # nosec B608 # constant identifiers, bound values
            " JOIN anchors AS a USING (anchor_id) WHERE p.active ORDER BY p.posting_row"
        ).format(columns=_qualified("p", _POSTINGS.columns))
        with self._snapshot() as connection:
            frame = _fetch_frame(connection, query)
            kinds = _column_kinds(connection, "postings")
        location = ["active", "lon", "lat", "precision", "location_label", "district_code"]
        return _restore(frame, _POSTINGS, kinds, trailing=[*location, "location_source"])

    def seekers_frame(self) -> pd.DataFrame:
        """Return every seeker as stored, with personal fields encrypted.

        The columns are described in :mod:`store.seeker_records`.
        """
        query = sql.SQL("SELECT {columns}, extra FROM seekers ORDER BY seeker_row").format(
            columns=_qualified(None, _SEEKERS.columns)
        )
        with self._snapshot() as connection:
            frame = _fetch_frame(connection, query)
            kinds = _column_kinds(connection, "seekers")
        frame = _restore(frame, _SEEKERS, kinds)
        frame["simulated"] = frame["simulated"].astype(bool)
        return frame

    def anchors_in_bbox(
        self,
        bbox: tuple[float, float, float, float],
        limit: int,
        exclude_precisions: Collection[str] = (),
    ) -> pd.DataFrame:
        """Return up to ``limit`` anchors inside a WGS84 bbox (min_lon, min_lat, max_lon, max_lat).

        Anchors whose precision is in ``exclude_precisions`` are left out. Anchors with
        the most postings come first; ties are broken by ``anchor_id`` in byte order
        (``COLLATE "C"``), as in SQLite.
        """
        query = sql.SQL(
            "SELECT anchor_row, {columns}, extra FROM anchors"
            " WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
            " AND precision <> ALL(%s::text[])"
            ' ORDER BY n_postings DESC, anchor_id COLLATE "C" LIMIT %s'
        ).format(columns=_qualified(None, _ANCHORS.columns))
        return self._anchors(query, (*bbox, sorted(exclude_precisions), limit))

    def anchor_map(
        self,
        bbox: tuple[float, float, float, float],
        max_features: int,
        labels: MapLabels,
        exclude_precisions: Collection[str] = (),
        flags: FlagFilter = NO_FLAG_FILTER,
    ) -> bytes:
        """Return the anchors inside a WGS84 bbox as the map's GeoJSON body, UTF-8 encoded
        (see :mod:`store.anchor_map` and :func:`store.postgres_map.anchor_map_body`).

        The statements run in autocommit mode, which saves the BEGIN and COMMIT round
        trips (about 0.2 ms of a 0.75 ms small viewport). They need no common snapshot.
        """
        with self._pool.connection() as connection:
            connection.autocommit = True
            try:
                return anchor_map_body(
                    connection, bbox, max_features, labels, exclude_precisions, flags
                )
            finally:
                if not connection.closed:
                    connection.autocommit = False

    def anchors_within(self, lon: float, lat: float, radius_m: float) -> pd.DataFrame:
        """Return the anchors within ``radius_m`` metres of a WGS84 point, nearest first.

        Distances are geodesic on the WGS84 spheroid (PostGIS ``geography``) and are
        returned in a ``distance_m`` column, in metres.
        """
        _check_point(lon, lat, radius_m)
        query = sql.SQL(
            "SELECT anchor_row, {columns}, extra, ST_Distance(geom::geography, here) AS distance_m"
            " FROM anchors, (SELECT ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography AS here) AS q"
            " WHERE ST_DWithin(geom::geography, here, %s)"
            ' ORDER BY distance_m, anchor_id COLLATE "C"'
        ).format(columns=_qualified(None, _ANCHORS.columns))
        return self._anchors(query, (lon, lat, radius_m), trailing=["distance_m"])

    def anchors_frame(self) -> pd.DataFrame:
        """Return every anchor, in the order they were written."""
        query = sql.SQL("SELECT anchor_row, {columns}, extra FROM anchors ORDER BY anchor_row")
        return self._anchors(query.format(columns=_qualified(None, _ANCHORS.columns)), ())

    def layer_infos(self) -> list[dict[str, str]]:
        """Return the metadata of every map layer, in name order."""
        query = (
            "SELECT name, title_zh, title_en, source, updated, geometry_type FROM layers"
            ' ORDER BY name COLLATE "C"'
        )
        with self._pool.connection() as connection, connection.cursor() as cursor:
            rows = cursor.execute(query).fetchall()
            names = [column.name for column in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def layer_frame(self, name: str) -> gpd.GeoDataFrame:
        """Return one map layer as a WGS84 GeoDataFrame, features in the order written."""
        with self._snapshot() as connection:
            known = connection.execute("SELECT 1 FROM layers WHERE name = %s", (name,)).fetchone()
            if known is None:
                raise LayerNotFoundError(f"map layer {name!r} does not exist")
            rows = connection.execute(
                "SELECT properties, ST_AsBinary(geom) FROM layer_features"
                " WHERE layer = %s ORDER BY feature_id",
                (name,),
            ).fetchall()
            kinds = _column_kinds(connection, f"layer:{name}")
        properties = pd.DataFrame([props for props, _ in rows])
        order = [column for column, _ in kinds if column in properties.columns]
        geometry = shapely.from_wkb([bytes(blob) for _, blob in rows])
        return gpd.GeoDataFrame(properties[order], geometry=geometry, crs="EPSG:4326")

    def replace_all(
        self,
        *,
        postings: pd.DataFrame,
        anchors: pd.DataFrame,
        seekers: pd.DataFrame,
        layers: dict[str, tuple[Any, gpd.GeoDataFrame]],
        meta: dict[str, Any],
    ) -> None:
        """Replace the build's rows in one transaction; on any error the old data stays.

        Curated anchors, merge survivors and their history are kept, and the
        postings of merged anchors move to their survivors (the rule is in
        :mod:`store.rebuild`). Every other row of every table is replaced.
        Curation writes wait for the transaction, because it locks the anchors
        table against writers. Readers keep reading the old data until it commits.

        Parameters are those of :func:`store.sqlite.write_store`: postings with an
        ``anchor_id`` (each stored as active), anchors with WGS84 ``lon``/``lat``,
        seekers with ``seeker_id`` and ``simulated``, layers as name to (info,
        GeoDataFrame in EPSG:4326), and JSON-serialisable metadata.

        Raises
        ------
        store.seeker_records.PlaintextPersonalDataError
            ``seekers`` carries a plaintext personal column; nothing was replaced.
        store.rebuild.MergeCycleError
            The stored merge links form a cycle; nothing was replaced.
        """
        check_protected(seekers)
        started = time.perf_counter()
        with self._pool.connection() as connection, connection.transaction():
            connection.execute(f"SET LOCAL statement_timeout = '{WRITE_STATEMENT_TIMEOUT}'")
            # SHARE ROW EXCLUSIVE blocks curation writes but not reads.
            connection.execute("LOCK TABLE anchors IN SHARE ROW EXCLUSIVE MODE")
            kept_ids = delete_build_rows(connection)
            _write_anchors(connection, anchors, kept_ids)
            _copy_frame(connection, _POSTINGS, postings.drop(columns="active", errors="ignore"))
            n_merged, moved = replay_merges(connection)
            connection.execute(
                "UPDATE anchors SET n_postings ="
                " (SELECT count(*) FROM postings AS p WHERE p.anchor_id = anchors.anchor_id)"
                " WHERE anchor_id = ANY(%s::text[])",
                (kept_ids,),
            )
            _copy_frame(connection, _SEEKERS, seekers)
            _write_layers(connection, layers)
            # The change log keeps its ids; the new build identity makes processes reload.
            _write_meta(connection, with_new_generation(meta))
            # Fresh statistics, so the planner estimates bbox queries from the new rows.
            connection.execute("ANALYZE anchors, postings, seekers, layer_features")
        log_kept(kept_ids, anchors["anchor_id"].tolist(), self.describe())
        if n_merged:
            log_replayed(n_merged, moved, self.describe())
        logger.info(
            "replaced store data in %s: %d postings, %d anchors, %d seekers, %d layers in %.1f s",
            self.describe(),
            len(postings),
            len(anchors),
            len(seekers),
            len(layers),
            time.perf_counter() - started,
        )

    def _anchors(
        self, query: sql.Composed, params: Sequence[Any], trailing: Sequence[str] = ()
    ) -> pd.DataFrame:
        with self._snapshot() as connection:
            frame = _fetch_frame(connection, query, params)
            kinds = _column_kinds(connection, "anchors")
        return _restore(frame, _ANCHORS, kinds, leading=["anchor_row"], trailing=trailing)

    @contextmanager
    def _snapshot(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """Lend a connection whose statements all see one snapshot of the data."""
        with self._pool.connection() as connection:
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield connection


def _check_point(lon: float, lat: float, radius_m: float) -> None:
    if not (np.isfinite(lon) and -180 <= lon <= 180):
        raise InvalidCoordinateError(f"longitude {lon!r} is invalid; expected -180..180", "lon")
    if not (np.isfinite(lat) and -90 <= lat <= 90):
        raise InvalidCoordinateError(f"latitude {lat!r} is invalid; expected -90..90", "lat")
    if not (np.isfinite(radius_m) and radius_m >= 0):
        raise ValueError(f"radius_m {radius_m!r} is invalid; expected a distance >= 0 in metres")


def _column_kinds(
    connection: psycopg.Connection[tuple[Any, ...]], frame: str
) -> list[tuple[str, str]]:
    """Return the (name, kind) of each column of a written frame, in write order."""
    rows = connection.execute(
        "SELECT name, kind FROM frame_columns WHERE frame = %s ORDER BY position", (frame,)
    ).fetchall()
    return [(name, kind) for name, kind in rows]


def _restore(
    frame: pd.DataFrame,
    table: _Table,
    kinds: list[tuple[str, str]],
    leading: Sequence[str] = (),
    trailing: Sequence[str] = (),
) -> pd.DataFrame:
    """Rebuild the written frame: unpack ``extra``, put columns in write order, restore dtypes.

    Typed columns that the written frame did not have are dropped. Without a record
    in ``frame_columns`` (nothing written yet) the typed columns are returned as read.
    """
    extra = pd.DataFrame(list(frame.pop("extra")), index=frame.index)
    merged = frame.join(extra.drop(columns=frame.columns, errors="ignore"))
    if not kinds:
        return merged[[*leading, *table.columns, *trailing]]

    written = [name for name, _ in kinds]
    restored = merged.reindex(columns=[*leading, *written, *trailing])
    for name, kind in kinds:
        restored[name] = _as_kind(restored[name], kind)
    return restored


def _as_kind(column: pd.Series, kind: str) -> pd.Series:
    """Cast a column read back from PostgreSQL to the pandas kind it was written with."""
    has_nulls = bool(column.isna().any())
    if kind == "float":
        return column.astype("float64")
    if kind == "int":
        return column.astype("float64" if has_nulls else "int64")
    if kind == "bool" and not has_nulls:
        return column.astype(bool)
    return column


def _frame_kind(column: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(column):
        return "bool"
    if pd.api.types.is_integer_dtype(column):
        return "int"
    if pd.api.types.is_float_dtype(column):
        return "float"
    if pd.api.types.is_string_dtype(column):
        return "text"
    return "other"


def _python_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the rows as dicts of plain Python values, with None for NaN and other nulls."""
    values = frame.astype(object).where(frame.notna(), None)
    return cast(list[dict[str, Any]], values.to_dict("records"))


def _write_anchors(
    connection: psycopg.Connection[tuple[Any, ...]], anchors: pd.DataFrame, kept_ids: list[str]
) -> None:
    """COPY the fresh anchors that no kept anchor replaces, and number every row in order."""
    positions = anchor_positions(anchors["anchor_id"].tolist(), kept_ids)
    fresh = _in_hilbert_order(anchors[~anchors["anchor_id"].isin(kept_ids)])
    _copy_frame(connection, _ANCHORS, fresh, positions=fresh["anchor_id"].map(positions).tolist())
    connection.execute(
        "UPDATE anchors SET anchor_row = kept.position"
        " FROM unnest(%s::text[], %s::integer[]) AS kept (anchor_id, position)"
        " WHERE anchors.anchor_id = kept.anchor_id",
        (kept_ids, [positions[anchor_id] for anchor_id in kept_ids]),
    )
    # Staff-added anchors number their rows after the ones the build wrote.
    connection.execute(
        "SELECT setval('anchors_anchor_row_seq', coalesce(max(anchor_row), 0) + 1, false)"
        " FROM anchors"
    )


def _in_hilbert_order(anchors: pd.DataFrame) -> pd.DataFrame:
    """Sort anchors along a Hilbert curve, so that neighbours share table pages.

    A viewport's anchors then sit on a few pages instead of one page each, which cuts
    the heap reads of a bbox query. ``anchor_row`` still keeps the build's order.
    """
    if len(anchors) < 2:
        return anchors
    points = gpd.GeoSeries.from_xy(anchors["lon"], anchors["lat"], crs="EPSG:4326")
    order = np.argsort(points.hilbert_distance().to_numpy(), kind="stable")
    return anchors.iloc[order]


def _copy_frame(
    connection: psycopg.Connection[tuple[Any, ...]],
    table: _Table,
    frame: pd.DataFrame,
    *,
    positions: Sequence[int] | None = None,
) -> None:
    """COPY a frame into its table: typed columns as such, the other columns into ``extra``.

    Rows are numbered 1, 2, … in the table's row column unless ``positions`` gives the numbers.
    """
    reserved = {table.row_column, "extra"} & set(frame.columns)
    if reserved:
        raise ValueError(
            f"{table.name} frame has reserved column(s) {sorted(reserved)}; rename them"
        )
    typed = [column for column in table.columns if column in frame.columns]
    extra = [column for column in frame.columns if column not in table.columns]

    statement = sql.SQL("COPY {table} ({columns}) FROM STDIN").format(
        table=sql.Identifier(table.name),
        columns=_qualified(None, [table.row_column, *typed, "extra"]),
    )
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        numbers = range(1, len(frame) + 1) if positions is None else positions
        for position, record in zip(numbers, _python_records(frame), strict=True):
            values = [_typed_value(record[c], c in table.integer_columns) for c in typed]
            payload = Jsonb({column: record[column] for column in extra}, dumps=_dumps)
            copy.write_row([position, *values, payload])

    _write_column_kinds(connection, table.name, frame)


def _typed_value(value: Any, integer: bool) -> Any:
    """Pass integral floats (an int column that held NaN) to integer columns as int."""
    if integer and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _write_column_kinds(
    connection: psycopg.Connection[tuple[Any, ...]], frame_name: str, frame: pd.DataFrame
) -> None:
    rows = [
        (frame_name, position, str(name), _frame_kind(frame[name]))
        for position, name in enumerate(frame.columns)
    ]
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO frame_columns (frame, position, name, kind) VALUES (%s, %s, %s, %s)", rows
        )


def _write_layers(
    connection: psycopg.Connection[tuple[Any, ...]],
    layers: dict[str, tuple[Any, gpd.GeoDataFrame]],
) -> None:
    """Insert each layer's info, then COPY its features as jsonb properties and EWKB points."""
    for name, (info, frame) in layers.items():
        if frame.crs is not None and frame.crs.to_epsg() != 4326:
            raise ValueError(f"layer {name!r} is in {frame.crs}; expected EPSG:4326 (WGS84)")
        connection.execute(
            "INSERT INTO layers (name, title_zh, title_en, source, updated, geometry_type)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (name, info.title_zh, info.title_en, info.source, info.updated, info.geometry_type),
        )

        properties = frame.drop(columns=frame.geometry.name)
        geometries = shapely.set_srid(np.asarray(frame.geometry.values), 4326)
        ewkb = shapely.to_wkb(geometries, hex=True, include_srid=True)
        statement = "COPY layer_features (layer, properties, geom) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for record, geometry in zip(_python_records(properties), ewkb, strict=True):
                copy.write_row([name, Jsonb(record, dumps=_dumps), geometry])

        _write_column_kinds(connection, f"layer:{name}", properties)


def _write_meta(connection: psycopg.Connection[tuple[Any, ...]], meta: dict[str, Any]) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO meta (key, value) VALUES (%s, %s)",
            [(key, Json(value, dumps=_dumps)) for key, value in meta.items()],
        )
