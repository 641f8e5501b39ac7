"""The identity store in PostgreSQL, over the tables of migration ``0007_identity``.

Each call borrows a pooled connection for one transaction. Login failures lock
the account row and one-time codes lock the code row ``FOR UPDATE``, so two
concurrent requests cannot both use one code or both miss a lockout.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import errors

from store.identity_sql import SqlIdentity
from store.postgres import Pool

Connection = psycopg.Connection[tuple[Any, ...]]


class _PostgresTransaction:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._connection.execute(statement, params).fetchall()

    def run(self, statement: str, params: Sequence[Any] = ()) -> int:
        return self._connection.execute(statement, params).rowcount


class PostgresIdentity(SqlIdentity):
    """Identity records in the database of ``pool``."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def describe(self) -> str:
        """Return the pool's name, for logs."""
        return f"PostgreSQL pool {self.pool.name!r}"

    @contextmanager
    def transaction(self) -> Iterator[_PostgresTransaction]:
        """Borrow a connection for one transaction."""
        with self.pool.connection() as connection, connection.transaction():
            yield _PostgresTransaction(connection)

    def to_db_time(self, at: datetime) -> datetime:
        """Pass an aware time to a timestamptz column."""
        if at.tzinfo is None:
            raise ValueError("identity times must be timezone-aware")
        return at

    def from_db_time(self, value: Any) -> datetime:
        """Return a timestamptz value in UTC."""
        if not isinstance(value, datetime):
            raise TypeError(f"expected a timestamptz value, got {type(value).__name__}")
        return value.astimezone(UTC)

    def is_unique_violation(self, err: Exception) -> bool:
        """Return whether ``err`` is SQLSTATE 23505."""
        return isinstance(err, errors.UniqueViolation)

    def is_foreign_key_violation(self, err: Exception) -> bool:
        """Return whether ``err`` is SQLSTATE 23503."""
        return isinstance(err, errors.ForeignKeyViolation)
