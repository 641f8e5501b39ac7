"""PostgreSQL-only behaviour: the pool, timeouts, migrations, radius queries and the API on it."""

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict
from pyproj import Geod
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli_app
from api.settings import DatabaseSettings, DataSettings, Settings
from geo.errors import InvalidCoordinateError
from geo.layers import LayerInfo
from store.anchor_map import MapLabels
from store.postgres import (
    DatabaseUnavailableError,
    PoolOptions,
    PostgresStore,
    mask_url,
    open_pool,
)
from store.sqlite import SqliteStore, StoreNotFoundError
from tests.store.test_contract import _inputs

# WGS84 point of the Bell Tower (钟楼), the anc-city anchor of the contract inputs.
BELL_TOWER = (108.9402, 34.2600)

# Columns SqliteStore.postings_frame adds to the written postings.
_JOINED_COLUMNS = ["active", "lon", "lat", "precision", "location_label", "district_code"]


def _terminate_other_backends(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def test_pool_replaces_killed_connections(pg_url: str) -> None:
    pool = open_pool(pg_url, PoolOptions(min_size=2, max_size=2, name="restart-test"))
    try:
        store = PostgresStore(pool)
        store.meta()

        assert _terminate_other_backends(pg_url) >= 2

        for _ in range(4):
            assert isinstance(store.meta(), dict)
    finally:
        pool.close()


def test_statement_timeout_applies(pg_url: str) -> None:
    pool = open_pool(pg_url, PoolOptions(statement_timeout_ms=200, name="timeout-test"))
    try:
        with pool.connection() as connection:
            shown = connection.execute("SHOW statement_timeout").fetchone()
        assert shown == ("200ms",)

        with pytest.raises(psycopg.errors.QueryCanceled), pool.connection() as connection:
            connection.execute("SELECT pg_sleep(2)")
    finally:
        pool.close()


def test_unreachable_server_is_named(pg_url: str) -> None:
    # Nothing listens on port 1 of the loopback address.
    url = "postgresql://postgres:s3cret@127.0.0.1:1/doorstep"
    options = PoolOptions(timeout_s=1.0, connect_timeout_s=1, name="unreachable-test")
    with pytest.raises(DatabaseUnavailableError, match=r"127\.0\.0\.1:1/") as raised:
        open_pool(url, options)
    assert "s3cret" not in str(raised.value)


def test_password_never_logged(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    # Trust authentication ignores the password, so the URL still connects.
    url = pg_url.replace("postgres@", "postgres:s3cret@")
    caplog.set_level(logging.DEBUG)
    pool = open_pool(url, PoolOptions(name="mask-test"))
    try:
        store = PostgresStore(pool)
        store.replace_all(**_inputs())
        description = store.describe()
    finally:
        pool.close()

    assert "s3cret" not in description
    assert ":***@" in description
    assert "mask-test" in description
    assert caplog.records
    assert not [r for r in caplog.records if "s3cret" in r.getMessage()]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:pw@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("postgresql://u@db/x", "postgresql://u@db/x"),
    ],
)
def test_mask_url(url: str, expected: str) -> None:
    assert mask_url(url) == expected


def test_mask_conninfo() -> None:
    masked = conninfo_to_dict(mask_url("host=db user=u password=pw dbname=x"))
    assert masked == {"host": "db", "user": "u", "password": "***", "dbname": "x"}


def test_store_without_tables_names_migrate(make_database: Callable[[], str]) -> None:
    pool = open_pool(make_database(), PoolOptions(name="empty-test"))
    try:
        with pytest.raises(StoreNotFoundError, match="doorstep migrate"):
            PostgresStore(pool)
    finally:
        pool.close()


def test_migrate_twice_applies_nothing(make_database: Callable[[], str]) -> None:
    runner = CliRunner()
    env = {"DOORSTEP_DATABASE_URL": make_database()}

    first = runner.invoke(cli_app, ["migrate"], env=env)
    second = runner.invoke(cli_app, ["migrate"], env=env)

    assert first.exit_code == 0, first.output
    assert "applied 0001_initial" in first.output
    assert second.exit_code == 0, second.output
    assert "no pending migrations" in " ".join(second.output.split())
    assert "applied" not in second.output


def test_anchors_within_radius(pg_store: PostgresStore) -> None:
    pg_store.replace_all(**_inputs())
    geod = Geod(ellps="WGS84")
    _, _, expected_m = geod.inv(*BELL_TOWER, 108.95, 34.26)

    near = pg_store.anchors_within(*BELL_TOWER, radius_m=500)
    wider = pg_store.anchors_within(*BELL_TOWER, radius_m=1_000)

    assert near["anchor_id"].tolist() == ["anc-city"]
    assert wider["anchor_id"].tolist() == ["anc-city", "anc-B"]
    assert wider["distance_m"].iloc[0] == 0.0
    assert wider["distance_m"].iloc[1] == pytest.approx(expected_m, abs=0.01)
    assert 900 < expected_m < 1_000


def test_anchor_map_leaves_connections_transactional(pg_url: str, pg_store: PostgresStore) -> None:
    pg_store.replace_all(**_inputs())
    pool = open_pool(pg_url, PoolOptions(min_size=1, max_size=1, name="one"))
    try:
        store = PostgresStore(pool)
        body = store.anchor_map((108.85, 34.15, 109.05, 34.35), 10, MapLabels({}, {}, {}))
        assert json.loads(body)["total"] == 5
        # anchor_map runs in autocommit mode; the pool's only connection must be back
        # in transaction mode, or later writes would commit statement by statement.
        with pool.connection() as connection:
            assert connection.autocommit is False
            connection.execute("SELECT 1")
            assert connection.info.transaction_status is psycopg.pq.TransactionStatus.INTRANS
    finally:
        pool.close()


def test_anchors_within_rejects_nan(pg_store: PostgresStore) -> None:
    with pytest.raises(InvalidCoordinateError, match="latitude nan"):
        pg_store.anchors_within(108.94, float("nan"), radius_m=100)


def _copy_inputs(source: SqliteStore) -> dict[str, Any]:
    """Return write inputs that reproduce ``source``: its frames minus the joined columns."""
    layers = {
        info["name"]: (LayerInfo(**info), source.layer_frame(info["name"]))
        for info in source.layer_infos()
    }
    return {
        "postings": source.postings_frame().drop(columns=[*_JOINED_COLUMNS, "location_source"]),
        "anchors": source.anchors_frame().drop(columns="anchor_row"),
        "seekers": source.seekers_frame(),
        "layers": layers,
        "meta": source.meta(),
    }


def _close(found: object, expected: object) -> bool:
    """Tell whether two JSON values are equal, floats to 1e-9 relative."""
    if isinstance(found, float) and isinstance(expected, float):
        return math.isclose(found, expected, rel_tol=1e-9)
    if isinstance(found, dict) and isinstance(expected, dict):
        return found.keys() == expected.keys() and all(
            _close(found[key], expected[key]) for key in found
        )
    if isinstance(found, list) and isinstance(expected, list):
        return len(found) == len(expected) and all(
            _close(a, b) for a, b in zip(found, expected, strict=True)
        )
    return found == expected


def test_api_matches_sqlite_store(
    full_store: SqliteStore, pg_store: PostgresStore, pg_url: str
) -> None:
    pg_store.replace_all(**_copy_inputs(full_store))
    sqlite_settings = Settings(data=DataSettings(store_path=full_store.path))
    pg_settings = Settings(
        data=DataSettings(store_path=Path("/nonexistent.sqlite")),
        database=DatabaseSettings(database_url=pg_url),
    )
    requests: list[tuple[str, dict[str, Any]]] = [
        ("/health", {}),
        ("/v1/jobs/nearby", {"lon": BELL_TOWER[0], "lat": BELL_TOWER[1], "radius_m": 3000}),
        ("/v1/jobs/nearby", {"lon": 108.88, "lat": 34.19, "radius_m": 5000, "page": 2}),
        ("/v1/anchors", {"bbox": "108.90,34.20,109.00,34.30"}),
        ("/v1/anchors", {}),
    ]

    with (
        TestClient(create_app(sqlite_settings, store=full_store)) as sqlite_client,
        TestClient(create_app(pg_settings)) as pg_client,
    ):
        assert isinstance(pg_client.app.state.store, PostgresStore)  # type: ignore[attr-defined]
        for path, params in requests:
            expected = sqlite_client.get(path, params=params)
            answered = pg_client.get(path, params=params)
            assert answered.status_code == expected.status_code == 200, path
            # Cluster centroids are means, which the two stores sum in different orders.
            assert _close(answered.json(), expected.json()), (path, params)


def test_ogc_api_matches_sqlite_store(
    full_store: SqliteStore, pg_store: PostgresStore, pg_url: str
) -> None:
    pg_store.replace_all(**_copy_inputs(full_store))
    sqlite_settings = Settings(data=DataSettings(store_path=full_store.path))
    pg_settings = Settings(
        data=DataSettings(store_path=Path("/nonexistent.sqlite")),
        database=DatabaseSettings(database_url=pg_url),
    )
    requests: list[tuple[str, dict[str, Any]]] = [
        ("/ogc/collections", {}),
        ("/ogc/collections/metro_lines/items", {}),
        ("/ogc/collections/training/items", {"bbox": "108.90,34.20,109.00,34.30", "offset": 20}),
        ("/ogc/collections/anchors/items", {"bbox": "108.90,34.20,109.00,34.30", "limit": 50}),
        ("/ogc/collections/anchors/items", {"limit": 2000}),
        ("/ogc/collections/hr_offices/items/7", {}),
    ]

    with (
        TestClient(create_app(sqlite_settings, store=full_store)) as sqlite_client,
        TestClient(create_app(pg_settings)) as pg_client,
    ):
        assert isinstance(pg_client.app.state.store, PostgresStore)  # type: ignore[attr-defined]
        for path, params in requests:
            expected = sqlite_client.get(path, params=params)
            answered = pg_client.get(path, params=params)
            assert answered.status_code == expected.status_code == 200, path
            expected_body, answered_body = expected.json(), answered.json()
            # The time stamp is the time of each response.
            expected_body.pop("timeStamp", None)
            answered_body.pop("timeStamp", None)
            assert _close(answered_body, expected_body), (path, params)
