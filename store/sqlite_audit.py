"""The operation log in the embedded SQLite store: tables, appends and the copy on rebuild.

Appends run inside a ``BEGIN IMMEDIATE`` transaction, which SQLite serialises,
so reading the chain head and advancing it cannot interleave with another
append. Triggers abort UPDATE and DELETE of audit rows and DELETE of the head.
NOTE: anyone who can write the store file can drop those triggers; the hash
chain, checked by ``doorstep audit verify``, is what detects such changes.
"""

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import cast

from store.audit import (
    GENESIS_TAG,
    AuditEntry,
    AuditResult,
    AuditWrite,
    AuditWriteError,
    StoredAudit,
)

AUDIT_COLUMNS = (
    "seq", "at", "actor", "role", "org", "action", "object_id", "result", "status_code",
    "source", "request_id", "tag",
)  # fmt: skip

AUDIT_TABLES = f"""
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY CHECK (seq >= 1),
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    org TEXT NOT NULL,
    action TEXT NOT NULL,
    object_id TEXT NOT NULL,
    result TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    source TEXT NOT NULL,
    request_id TEXT NOT NULL,
    tag BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    tag BLOB NOT NULL
);
INSERT OR IGNORE INTO audit_head (id, seq, tag) VALUES (1, 0, X'{GENESIS_TAG.hex()}');
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log rows cannot be updated'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log rows cannot be deleted'); END;
CREATE TRIGGER IF NOT EXISTS audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, 'the audit chain head cannot be deleted'); END;
"""
"""The operation-log tables; ``IF NOT EXISTS`` so files built before them get them on first use."""


def create_audit_tables(connection: sqlite3.Connection) -> None:
    """Create the audit tables and the chain head in a file that lacks them."""
    for statement in _statements(AUDIT_TABLES):
        connection.execute(statement)


def append_audit(connection: sqlite3.Connection, write: AuditWrite) -> int:
    """Append one record and advance the chain head inside the caller's write transaction.

    Raises
    ------
    AuditWriteError
        The insert failed; the caller's transaction must roll back.
    """
    entry = write.entry
    try:
        create_audit_tables(connection)
        head_seq, head_tag = connection.execute(
            "SELECT seq, tag FROM audit_head WHERE id = 1"
        ).fetchone()
        seq = int(head_seq) + 1
        tag = write.chain.tag(bytes(head_tag), seq, entry)
        connection.execute(
            f"INSERT INTO audit_log ({', '.join(AUDIT_COLUMNS)})"  # nosec B608 # constant identifiers, bound values
            f" VALUES ({', '.join('?' * len(AUDIT_COLUMNS))})",
            [seq, *entry.canonical_fields(), tag],
        )
        connection.execute("UPDATE audit_head SET seq = ?, tag = ? WHERE id = 1", (seq, tag))
    except sqlite3.Error as err:
        raise AuditWriteError(
            f"audit record of {entry.action} by {entry.actor!r} could not be stored: {err}"
        ) from err
    return seq


def read_audit_records(connection: sqlite3.Connection) -> Iterator[StoredAudit]:
    """Yield every stored record in sequence order; none when the file has no audit table."""
    if not _has_audit_tables(connection):
        return
    cursor = connection.execute(f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log ORDER BY seq")  # nosec B608 # constant identifiers, bound values
    for row in cursor:
        yield record_from_row(row)


def read_audit_head(connection: sqlite3.Connection) -> tuple[int, bytes]:
    """Return the chain head; a file without audit tables has the empty chain's head."""
    if not _has_audit_tables(connection):
        return 0, GENESIS_TAG
    row = connection.execute("SELECT seq, tag FROM audit_head WHERE id = 1").fetchone()
    return (0, GENESIS_TAG) if row is None else (int(row[0]), bytes(row[1]))


def record_from_row(row: tuple[object, ...] | sqlite3.Row) -> StoredAudit:
    """Return the record of an ``audit_log`` row read in :data:`AUDIT_COLUMNS` order."""
    values = list(row)
    entry = AuditEntry(
        at=datetime.fromisoformat(str(values[1])),
        actor=str(values[2]),
        role=str(values[3]),
        org=str(values[4]),
        action=str(values[5]),
        object_id=str(values[6]),
        result=cast(AuditResult, str(values[7])),
        status_code=int(str(values[8])),
        source=str(values[9]),
        request_id=str(values[10]),
    )
    return StoredAudit(int(str(values[0])), entry, bytes(values[11]))


def copy_audit(old: sqlite3.Connection | None, new: sqlite3.Connection) -> int:
    """Copy every audit record and the chain head from the old store file; return the count.

    A rebuild calls this while it holds the old file's write lock, so no record
    is appended to the old file after the copy.
    """
    create_audit_tables(new)
    if old is None or not _has_audit_tables(old):
        return 0
    rows = old.execute(f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log ORDER BY seq").fetchall()  # nosec B608 # constant identifiers, bound values
    new.executemany(
        f"INSERT INTO audit_log ({', '.join(AUDIT_COLUMNS)})"  # nosec B608 # constant identifiers, bound values
        f" VALUES ({', '.join('?' * len(AUDIT_COLUMNS))})",
        [tuple(row) for row in rows],
    )
    head = read_audit_head(old)
    new.execute("UPDATE audit_head SET seq = ?, tag = ? WHERE id = 1", head)
    return len(rows)


def _has_audit_tables(connection: sqlite3.Connection) -> bool:
    found = connection.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        " AND name IN ('audit_log', 'audit_head')"
    ).fetchone()
    return int(found[0]) == 2


def _statements(script: str) -> list[str]:
    """Split a script into statements, keeping trigger bodies whole.

    ``executescript`` would commit the caller's open transaction first, so the
    statements run one by one through ``execute``.
    """
    statements, current = [], ""
    for line in script.strip().splitlines():
        current += line + "\n"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements
