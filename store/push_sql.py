"""One transaction's view of the push tables, the same for SQLite and PostgreSQL.

The push SQL is written once with ``?`` parameter markers. :class:`SqlTx` runs it on
a sqlite3 connection as written, and on a psycopg connection with ``%s`` markers.
Times are aware datetimes on the way in and out: SQLite keeps them as ISO 8601 UTC
text with microseconds (so text order is time order), PostgreSQL as ``timestamptz``.
"""

import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

SQLITE_PUSH_TABLES = """
CREATE TABLE IF NOT EXISTS push_consents (
    seeker_id TEXT PRIMARY KEY,
    consented_at TEXT,
    opted_out_at TEXT,
    channel TEXT NOT NULL DEFAULT 'inbox' CHECK (channel IN ('inbox', 'sms', 'wechat')),
    lang TEXT NOT NULL DEFAULT 'zh' CHECK (lang IN ('zh', 'en')),
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS push_shown (
    seeker_id TEXT NOT NULL,
    posting_id TEXT NOT NULL,
    push_id TEXT NOT NULL,
    score REAL NOT NULL,
    shown_at TEXT NOT NULL,
    PRIMARY KEY (seeker_id, posting_id)
);
CREATE TABLE IF NOT EXISTS push_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    push_id TEXT NOT NULL UNIQUE,
    seeker_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('job', 'digest')),
    posting_id TEXT,
    trigger TEXT NOT NULL,
    score REAL,
    channel TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT NOT NULL,
    created_at TEXT NOT NULL,
    not_before TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'queued', 'sending', 'delivered', 'skipped', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    relayed_at TEXT,
    claimed_until TEXT,
    sent_day TEXT,
    delivered_at TEXT,
    skip_reason TEXT,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS push_outbox_due ON push_outbox (status, not_before);
CREATE INDEX IF NOT EXISTS push_outbox_seeker_day ON push_outbox (seeker_id, sent_day);
CREATE TABLE IF NOT EXISTS push_inbox (
    push_id TEXT PRIMARY KEY,
    seeker_id TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT NOT NULL,
    created_at TEXT NOT NULL,
    read_at TEXT
);
CREATE INDEX IF NOT EXISTS push_inbox_seeker ON push_inbox (seeker_id, created_at);
CREATE TABLE IF NOT EXISTS push_digest_items (
    push_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    seeker_id TEXT NOT NULL,
    posting_id TEXT NOT NULL,
    score REAL NOT NULL,
    lang TEXT NOT NULL CHECK (lang IN ('zh', 'en')),
    line TEXT NOT NULL,
    PRIMARY KEY (push_id, position)
);
CREATE INDEX IF NOT EXISTS push_digest_items_seeker ON push_digest_items (seeker_id);
"""
"""The push tables of the embedded store; PostgreSQL gets the same from migrations 0010_push
and 0016_push_digest_items."""

_TIME_COLUMNS = frozenset(
    {
        "consented_at",
        "opted_out_at",
        "updated_at",
        "shown_at",
        "created_at",
        "not_before",
        "relayed_at",
        "claimed_until",
        "delivered_at",
        "read_at",
    }
)


class SqlTx:
    """Run the push SQL inside a caller's open transaction on SQLite or PostgreSQL.

    ``time_columns`` and ``day_columns`` name the columns that :meth:`rows` turns from
    SQLite text back into datetimes and dates; subclasses for other tables set their own.
    """

    time_columns: frozenset[str] = _TIME_COLUMNS
    day_columns: frozenset[str] = frozenset({"sent_day"})

    def __init__(self, connection: sqlite3.Connection | psycopg.Connection[Any]) -> None:
        self._connection = connection
        self.is_sqlite = isinstance(connection, sqlite3.Connection)

    @property
    def connection(self) -> sqlite3.Connection | psycopg.Connection[Any]:
        """The driver connection, for statements of another module in the same transaction."""
        return self._connection

    def time(self, at: datetime) -> object:
        """Return a time as this driver stores it; a naive time raises ValueError."""
        if at.tzinfo is None:
            raise ValueError(f"time {at.isoformat()} has no time zone; pass an aware datetime")
        utc = at.astimezone(UTC)
        return utc.isoformat(timespec="microseconds") if self.is_sqlite else utc

    def day(self, value: date) -> object:
        """Return a calendar day as this driver stores it."""
        return value.isoformat() if self.is_sqlite else value

    def execute(self, query: str, params: Sequence[Any] = ()) -> int:
        """Run one statement and return the number of rows it changed."""
        if isinstance(self._connection, sqlite3.Connection):
            return self._connection.execute(query, params).rowcount
        with self._connection.cursor() as cursor:
            cursor.execute(query.replace("?", "%s"), params)
            return cursor.rowcount

    def rows(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run one query and return its rows as dicts, times as aware UTC datetimes."""
        if isinstance(self._connection, sqlite3.Connection):
            cursor = self._connection.execute(query, params)
            names = [item[0] for item in cursor.description or ()]
            found = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        else:
            with self._connection.cursor(row_factory=dict_row) as pg_cursor:
                pg_cursor.execute(query.replace("?", "%s"), params)
                found = pg_cursor.fetchall() if pg_cursor.description else []
        return [self._decoded(row) for row in found]

    def _decoded(self, row: dict[str, Any]) -> dict[str, Any]:
        for name, value in row.items():
            if name in self.time_columns and isinstance(value, str):
                row[name] = datetime.fromisoformat(value)
            elif name in self.day_columns and isinstance(value, str):
                row[name] = date.fromisoformat(value)
        return row
