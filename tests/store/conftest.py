"""PostgreSQL fixtures: a throwaway, migrated database per test session, and a pool on it.

The server is ``DOORSTEP_TEST_POSTGRES_URL`` (default: user postgres on 127.0.0.1:5432,
trust authentication). When it cannot be reached the PostgreSQL tests skip with the
reason, and under CI=true the root conftest turns that skip into a failure.
"""

import os
import secrets
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from store.migrations import MigrationError, apply_migrations
from store.postgres import Pool, PoolOptions, PostgresStore, open_pool

ADMIN_URL = os.environ.get(
    "DOORSTEP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _database_url(name: str) -> str:
    """Return ADMIN_URL with its database name replaced by ``name``."""
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


def _admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as err:
        pytest.skip(f"PostgreSQL at {ADMIN_URL} is unreachable: {err}")


def _create_database(name: str) -> str:
    with _admin_connection() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _database_url(name)


def _drop_database(name: str) -> None:
    with _admin_connection() as admin:
        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        admin.execute(statement.format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def make_database() -> Iterator[Callable[[], str]]:
    """Create empty ``doorstep_test_<random>`` databases on demand; drop them all at the end."""
    created: list[str] = []

    def make() -> str:
        name = f"doorstep_test_{secrets.token_hex(4)}"
        url = _create_database(name)
        created.append(name)
        return url

    yield make
    for name in created:
        _drop_database(name)


@pytest.fixture(scope="session")
def pg_url(make_database: Callable[[], str]) -> str:
    """URL of the session's migrated test database."""
    url = make_database()
    try:
        apply_migrations(url)
    except MigrationError as err:
        # Without the PostGIS package CREATE EXTENSION fails, and the skip reason names it.
        pytest.skip(f"cannot migrate the test database (is PostGIS installed?): {err}")
    return url


@pytest.fixture(scope="session")
def pg_pool(pg_url: str) -> Iterator[Pool]:
    """A small pool on the session's test database, closed at the end."""
    pool = open_pool(pg_url, PoolOptions(min_size=1, max_size=4, name="test"))
    yield pool
    pool.close()


@pytest.fixture
def pg_store(pg_pool: Pool) -> PostgresStore:
    """The PostgreSQL store on the session's test database, with no anchors left from earlier tests.

    Tests replace its data. ``replace_all`` keeps curated anchors, so the anchors
    and their history are deleted first to keep one test's curation out of the next.
    """
    with pg_pool.connection() as connection:
        connection.execute("DELETE FROM anchor_history")
        connection.execute("DELETE FROM anchors")
    return PostgresStore(pg_pool)
