"""The :class:`store.seeker_records.SeekerStore` methods of the embedded SQLite store."""

import logging
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from store.audit import AuditWrite
from store.seeker_records import ENVELOPE_COLUMNS, INDEX_COLUMNS, EnvelopeUpdate

logger = logging.getLogger(__name__)

_ENVELOPES = ", ".join(ENVELOPE_COLUMNS)
# Every envelope starts with "pi1.<key_id>.", so a row is rotated when all five do.
_OTHER_KEY = " OR ".join(
    f"substr({column}, 1, length(:prefix)) <> :prefix" for column in ENVELOPE_COLUMNS
)
_SAME_ENVELOPES = " AND ".join(f"{column} = ?" for column in ENVELOPE_COLUMNS)
_SET_ENVELOPES = ", ".join(f"{column} = ?" for column in ENVELOPE_COLUMNS)


class SqliteSeekers:
    """Seeker rows of :class:`store.sqlite.SqliteStore`; the host defines both helpers."""

    _connect: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _write: Callable[..., AbstractContextManager[sqlite3.Connection]]

    def seeker_record(self, seeker_id: str) -> dict[str, Any] | None:
        """Return one stored seeker row (envelopes, not plaintext), or None when unknown."""
        with self._connect() as connection:
            connection.row_factory = sqlite3.Row
            row = connection.execute(
                "SELECT * FROM seekers WHERE seeker_id = ?", (seeker_id,)
            ).fetchone()
        return None if row is None else dict(row)

    def seeker_id_by_index(self, column: str, digest: str) -> str | None:
        """Return the id of the seeker whose blind index ``column`` is ``digest``, or None."""
        if column not in INDEX_COLUMNS:
            raise ValueError(f"column {column!r} is not a blind index; expected {INDEX_COLUMNS}")
        with self._connect() as connection:
            row = connection.execute(
                f"SELECT seeker_id FROM seekers WHERE {column} = ?",  # nosec B608 # column checked above
                (digest,),
            ).fetchone()
        return None if row is None else str(row[0])

    def delete_seeker(self, seeker_id: str, *, audit: AuditWrite | None = None) -> bool:
        """Delete one seeker row and append ``audit`` in the same transaction."""
        with self._write(audit) as connection:
            # Zero the freed bytes, so the deleted envelopes do not stay in free pages.
            connection.execute("PRAGMA secure_delete = ON")
            deleted = connection.execute("DELETE FROM seekers WHERE seeker_id = ?", (seeker_id,))
            found = deleted.rowcount > 0
        logger.info("seeker %r %s", seeker_id, "deleted" if found else "was already deleted")
        return found

    def envelopes_to_rotate(self, key_id: str, limit: int) -> list[tuple[str, tuple[str, ...]]]:
        """Return up to ``limit`` rows with an envelope of another key than ``key_id``."""
        query = (
            f"SELECT seeker_id, {_ENVELOPES} FROM seekers WHERE {_OTHER_KEY}"  # nosec B608 # constant identifiers, bound values
            " ORDER BY seeker_id LIMIT :limit"
        )
        with self._connect() as connection:
            rows = connection.execute(query, {"prefix": f"pi1.{key_id}.", "limit": limit})
            return [(str(row[0]), tuple(str(value) for value in row[1:])) for row in rows]

    def count_to_rotate(self, key_id: str) -> int:
        """Return the number of rows with an envelope of another key than ``key_id``."""
        query = f"SELECT count(*) FROM seekers WHERE {_OTHER_KEY}"  # nosec B608 # constant identifiers, bound values
        with self._connect() as connection:
            row = connection.execute(query, {"prefix": f"pi1.{key_id}."}).fetchone()
        return int(row[0])

    def replace_envelopes(self, updates: Sequence[EnvelopeUpdate]) -> int:
        """Write every update whose row still has its old envelopes, in one transaction."""
        query = f"UPDATE seekers SET {_SET_ENVELOPES} WHERE seeker_id = ? AND {_SAME_ENVELOPES}"  # nosec B608 # constant identifiers, bound values
        written = 0
        with self._write() as connection:
            for update in updates:
                cursor = connection.execute(query, (*update.new, update.seeker_id, *update.old))
                written += cursor.rowcount
        return written

    def index_sources(self, after: str, limit: int) -> list[tuple[str, str, str]]:
        """Return up to ``limit`` (seeker_id, id_number_enc, mobile_enc) rows after ``after``."""
        query = (
            "SELECT seeker_id, id_number_enc, mobile_enc FROM seekers WHERE seeker_id > ?"
            " ORDER BY seeker_id LIMIT ?"
        )
        with self._connect() as connection:
            rows = connection.execute(query, (after, limit)).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def replace_indexes(self, indexes: Sequence[tuple[str, str, str]]) -> int:
        """Set the two blind indexes of each row, in one transaction."""
        query = "UPDATE seekers SET id_number_index = ?, mobile_index = ? WHERE seeker_id = ?"
        written = 0
        with self._write() as connection:
            for seeker_id, id_index, mobile_index in indexes:
                written += connection.execute(query, (id_index, mobile_index, seeker_id)).rowcount
        return written

    def count_seekers(self) -> int:
        """Return the number of stored seekers."""
        with self._connect() as connection:
            row = connection.execute("SELECT count(*) FROM seekers").fetchone()
        return int(row[0])
