"""Key rotation of one SM4-GCM envelope column keyed by seeker id, on SQLite or PostgreSQL.

The seekers and accounts tables have their own rotation queries. Tables added later
with a single envelope column (the assistance category, the WeChat openid) share
these: select the rows whose envelope names another key, and replace an envelope only
while the row still contains the one that was read.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from store.seeker_records import EnvelopeUpdate


class RowTransaction(Protocol):
    """A transaction with ``?`` markers on either driver (``LedgerTx``, ``SqlTx``)."""

    def execute(self, query: str, params: Sequence[Any] = ()) -> int:
        """Run one statement and return the number of rows it changed."""
        ...

    def rows(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run one query and return its rows as dicts."""
        ...


@dataclass(frozen=True, slots=True)
class EnvelopeColumn:
    """A table's envelope column and the seeker-id column that keys its rows.

    Both names are constants of this package, never user input, so they are placed in
    the SQL text; every value is a bound parameter.
    """

    table: str
    column: str
    key_column: str = "seeker_id"

    def count_other_key(self, tx: RowTransaction, key_id: str) -> int:
        """Return the number of rows whose envelope names another key than ``key_id``."""
        prefix = _prefix(key_id)
        found = tx.rows(
            f"SELECT count(*) AS n FROM {self.table}"  # nosec B608 # constant identifiers
            f" WHERE substr({self.column}, 1, CAST(? AS INTEGER)) <> ?",
            (len(prefix), prefix),
        )
        return int(found[0]["n"])

    def other_key_rows(
        self, tx: RowTransaction, key_id: str, limit: int
    ) -> list[tuple[str, tuple[str]]]:
        """Return up to ``limit`` (seeker id, (envelope,)) rows under another key."""
        prefix = _prefix(key_id)
        found = tx.rows(
            f"SELECT {self.key_column} AS row_id, {self.column} AS envelope"  # nosec B608 # constant identifiers
            f" FROM {self.table} WHERE substr({self.column}, 1, CAST(? AS INTEGER)) <> ?"
            f" ORDER BY {self.key_column} LIMIT ?",
            (len(prefix), prefix, limit),
        )
        return [(str(row["row_id"]), (str(row["envelope"]),)) for row in found]

    def replace(self, tx: RowTransaction, updates: Sequence[EnvelopeUpdate]) -> int:
        """Write each new envelope whose row still has the old one; return the rows written."""
        query = (
            f"UPDATE {self.table} SET {self.column} = ?"  # nosec B608 # constant identifiers
            f" WHERE {self.key_column} = ? AND {self.column} = ?"
        )
        return sum(
            tx.execute(query, (update.new[0], update.seeker_id, update.old[0]))
            for update in updates
        )


def _prefix(key_id: str) -> str:
    # Envelopes are "pi1.<key_id>.<payload>" (api.security.encryption).
    return f"pi1.{key_id}."
