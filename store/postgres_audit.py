"""The operation log in the PostgreSQL store: serialised appends and ordered reads.

The tables and their append-only triggers come from migration ``0006_audit_log``.
An append locks the one-row chain head ``FOR UPDATE``, computes the next tag,
inserts the record and advances the head, all in the caller's transaction, so
concurrent appends queue on the head row and the chain cannot fork.
"""

import logging
from collections.abc import Iterator
from typing import Any, cast

import psycopg
from psycopg_pool import ConnectionPool

from store.audit import AuditEntry, AuditResult, AuditWrite, AuditWriteError, StoredAudit

logger = logging.getLogger(__name__)

Connection = psycopg.Connection[tuple[Any, ...]]

AUDIT_COLUMNS = (
    "seq", "at", "actor", "role", "org", "action", "object_id", "result", "status_code",
    "source", "request_id", "tag",
)  # fmt: skip

# Records fetched per round trip by the verifying read.
_FETCH_ROWS = 5_000


def append_audit(connection: Connection, write: AuditWrite) -> int:
    """Append one record and advance the chain head inside the caller's transaction.

    Raises
    ------
    AuditWriteError
        The head is missing or a statement failed; the caller's transaction rolls back.
    """
    entry = write.entry
    try:
        head = connection.execute(
            "SELECT seq, tag FROM audit_head WHERE id = 1 FOR UPDATE"
        ).fetchone()
        if head is None:
            raise AuditWriteError("the audit chain head row is missing; run `doorstep migrate`")
        seq = int(head[0]) + 1
        tag = write.chain.tag(bytes(head[1]), seq, entry)
        connection.execute(
            f"INSERT INTO audit_log ({', '.join(AUDIT_COLUMNS)})"  # nosec B608 # constant identifiers, bound values
            f" VALUES ({', '.join(['%s'] * len(AUDIT_COLUMNS))})",
            [seq, entry.at, *entry.canonical_fields()[1:], tag],
        )
        connection.execute("UPDATE audit_head SET seq = %s, tag = %s WHERE id = 1", (seq, tag))
    except psycopg.Error as err:
        raise AuditWriteError(
            f"audit record of {entry.action} by {entry.actor!r} could not be stored: {err}"
        ) from err
    return seq


class PostgresAudit:
    """The :class:`store.audit.AuditLog` methods of :class:`store.postgres.PostgresStore`."""

    _pool: ConnectionPool[Connection]
    _label: str

    def append_audit(self, write: AuditWrite) -> int:
        """Append one audit record in its own transaction; return its sequence number.

        Raises
        ------
        AuditWriteError
            The record could not be stored.
        """
        try:
            with self._pool.connection() as connection, connection.transaction():
                return append_audit(connection, write)
        except psycopg.Error as err:
            raise AuditWriteError(f"audit log of {self._label} is not writable: {err}") from err

    def audit_records(self) -> Iterator[StoredAudit]:
        """Yield every audit record in sequence order, through a server-side cursor."""
        query = f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log ORDER BY seq"  # nosec B608 # constant identifiers, bound values
        with (
            self._pool.connection() as connection,
            connection.transaction(),
            connection.cursor(name="audit_records") as cursor,
        ):
            cursor.itersize = _FETCH_ROWS
            cursor.execute(query)
            for row in cursor:
                yield _record_from_row(row)

    def audit_head(self) -> tuple[int, bytes]:
        """Return the chain head: the last sequence number and tag."""
        with self._pool.connection() as connection:
            row = connection.execute("SELECT seq, tag FROM audit_head WHERE id = 1").fetchone()
        if row is None:
            raise AuditWriteError("the audit chain head row is missing; run `doorstep migrate`")
        return int(row[0]), bytes(row[1])


def _record_from_row(row: tuple[Any, ...]) -> StoredAudit:
    entry = AuditEntry(
        at=row[1],
        actor=row[2],
        role=row[3],
        org=row[4],
        action=row[5],
        object_id=row[6],
        result=cast(AuditResult, row[7]),
        status_code=int(row[8]),
        source=row[9],
        request_id=row[10],
    )
    return StoredAudit(int(row[0]), entry, bytes(row[11]))
