"""The :class:`store.seeker_records.SeekerStore` methods of the PostgreSQL store."""

import logging
from collections.abc import Sequence
from typing import Any

from psycopg import Connection, sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from store.audit import AuditWrite
from store.postgres_audit import append_audit
from store.seeker_records import ENVELOPE_COLUMNS, INDEX_COLUMNS, EnvelopeUpdate

logger = logging.getLogger(__name__)

_ENVELOPES = sql.SQL(", ").join(sql.Identifier(column) for column in ENVELOPE_COLUMNS)
# Every envelope starts with "pi1.<key_id>.", so a row is rotated when all five do.
_OTHER_KEY = sql.SQL(" OR ").join(
    sql.SQL("NOT starts_with({}, %(prefix)s)").format(sql.Identifier(column))
    for column in ENVELOPE_COLUMNS
)
_SET_ENVELOPES = sql.SQL(", ").join(
    sql.SQL("{} = %s").format(sql.Identifier(column)) for column in ENVELOPE_COLUMNS
)
_SAME_ENVELOPES = sql.SQL(" AND ").join(
    sql.SQL("{} = %s").format(sql.Identifier(column)) for column in ENVELOPE_COLUMNS
)


class PostgresSeekers:
    """Seeker rows of :class:`store.postgres.PostgresStore`; the host sets ``_pool``."""

    _pool: ConnectionPool[Connection[tuple[Any, ...]]]

    def seeker_record(self, seeker_id: str) -> dict[str, Any] | None:
        """Return one stored seeker row (envelopes, not plaintext), or None when unknown.

        Typed columns only: the build keeps no personal field in ``extra``.
        """
        with (
            self._pool.connection() as connection,
            connection.cursor(row_factory=dict_row) as cursor,
        ):
            row = cursor.execute(
                "SELECT * FROM seekers WHERE seeker_id = %s", (seeker_id,)
            ).fetchone()
        if row is None:
            return None
        extra = row.pop("extra") or {}
        row.pop("seeker_row", None)
        return {**extra, **row}

    def seeker_id_by_index(self, column: str, digest: str) -> str | None:
        """Return the id of the seeker whose blind index ``column`` is ``digest``, or None."""
        if column not in INDEX_COLUMNS:
            raise ValueError(f"column {column!r} is not a blind index; expected {INDEX_COLUMNS}")
        query = sql.SQL("SELECT seeker_id FROM seekers WHERE {} = %s").format(
            sql.Identifier(column)
        )
        with self._pool.connection() as connection:
            row = connection.execute(query, (digest,)).fetchone()
        return None if row is None else str(row[0])

    def delete_seeker(self, seeker_id: str, *, audit: AuditWrite | None = None) -> bool:
        """Delete one seeker row and append ``audit`` in the same transaction."""
        with self._pool.connection() as connection, connection.transaction():
            cursor = connection.execute("DELETE FROM seekers WHERE seeker_id = %s", (seeker_id,))
            found = cursor.rowcount > 0
            if audit is not None:
                append_audit(connection, audit)
        logger.info("seeker %r %s", seeker_id, "deleted" if found else "was already deleted")
        return found

    def envelopes_to_rotate(self, key_id: str, limit: int) -> list[tuple[str, tuple[str, ...]]]:
        """Return up to ``limit`` rows with an envelope of another key than ``key_id``."""
        query = sql.SQL(
            "SELECT seeker_id, {envelopes} FROM seekers WHERE {other}"
            ' ORDER BY seeker_id COLLATE "C" LIMIT %(limit)s'
        ).format(envelopes=_ENVELOPES, other=_OTHER_KEY)
        with self._pool.connection() as connection:
            rows = connection.execute(query, {"prefix": f"pi1.{key_id}.", "limit": limit})
            return [(str(row[0]), tuple(str(value) for value in row[1:])) for row in rows]

    def count_to_rotate(self, key_id: str) -> int:
        """Return the number of rows with an envelope of another key than ``key_id``."""
        query = sql.SQL("SELECT count(*) FROM seekers WHERE {}").format(_OTHER_KEY)
        with self._pool.connection() as connection:
            row = connection.execute(query, {"prefix": f"pi1.{key_id}."}).fetchone()
        return 0 if row is None else int(row[0])

    def replace_envelopes(self, updates: Sequence[EnvelopeUpdate]) -> int:
        """Write every update whose row still has its old envelopes, in one transaction."""
        query = sql.SQL("UPDATE seekers SET {} WHERE seeker_id = %s AND {}").format(
            _SET_ENVELOPES, _SAME_ENVELOPES
        )
        written = 0
        with self._pool.connection() as connection, connection.transaction():
            for update in updates:
                cursor = connection.execute(query, (*update.new, update.seeker_id, *update.old))
                written += cursor.rowcount
        return written

    def index_sources(self, after: str, limit: int) -> list[tuple[str, str, str]]:
        """Return up to ``limit`` (seeker_id, id_number_enc, mobile_enc) rows after ``after``."""
        query = (
            "SELECT seeker_id, id_number_enc, mobile_enc FROM seekers"
            ' WHERE seeker_id COLLATE "C" > %s ORDER BY seeker_id COLLATE "C" LIMIT %s'
        )
        with self._pool.connection() as connection:
            rows = connection.execute(query, (after, limit)).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def replace_indexes(self, indexes: Sequence[tuple[str, str, str]]) -> int:
        """Set the two blind indexes of each row, in one transaction."""
        query = "UPDATE seekers SET id_number_index = %s, mobile_index = %s WHERE seeker_id = %s"
        written = 0
        with self._pool.connection() as connection, connection.transaction():
            for seeker_id, id_index, mobile_index in indexes:
                written += connection.execute(query, (id_index, mobile_index, seeker_id)).rowcount
        return written

    def count_seekers(self) -> int:
        """Return the number of stored seekers."""
        with self._pool.connection() as connection:
            row = connection.execute("SELECT count(*) FROM seekers").fetchone()
        return 0 if row is None else int(row[0])
