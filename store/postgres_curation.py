"""Anchor curation on the PostgreSQL store: versioned anchor writes and their history.

Each write runs in one READ COMMITTED transaction. Its
``UPDATE ... WHERE version = expected`` takes the row lock, so of two concurrent
edits of one version the second waits, then matches no row and fails as stale.
"""

import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from geo.anchor_states import AnchorState, StaffScope
from geo.curation import AnchorRecord, AnchorVersion
from geo.duplicates import MergePlan
from store.audit import AuditWrite
from store.base import IDEMPOTENCY_KEY_TTL, KeyedInsert, replayed_insert
from store.curation_tables import (
    HISTORY_COLUMNS,
    MERGE_LINK_ASSIGNMENT,
    RECORD_COLUMNS,
    STAFF_SOURCE,
    check_change_pair,
    check_new_pair,
    check_survivor,
    count_column,
    duplicate_anchor_error,
    history_from_row,
    history_params,
    location_label,
    merge_updates,
    record_from_row,
    record_to_row,
    stale_version_error,
    tidy_counts,
    update_params,
    utc_time,
)
from store.index_changes import (
    IndexChange,
    index_changes_since,
    latest_index_change,
    moves_postings,
    record_index_change,
)
from store.postgres_audit import append_audit
from store.posting_state import write_posting_active
from store.push_outbox import PushBatch, write_job_pushes
from store.push_sql import SqlTx

logger = logging.getLogger(__name__)

Connection = psycopg.Connection[tuple[Any, ...]]

_RECORD_LIST = sql.SQL(", ").join(sql.Identifier(name) for name in RECORD_COLUMNS)


class PostgresCuration:
    """The :class:`store.base.CurationStore` methods of :class:`store.postgres.PostgresStore`.

    The host class sets both attributes in its ``__init__``.
    """

    _pool: ConnectionPool[Connection]
    """The host store's open connection pool."""
    _label: str
    """The host store's description for logs, with the password masked."""

    @contextmanager
    def _audited(self, audit: AuditWrite | None) -> Iterator[Connection]:
        """Lend a pooled connection inside one transaction that ends by appending ``audit``.

        The record is appended after the block, so a write whose audit record
        fails rolls back with it, and the chain head is locked only briefly.
        """
        with self._pool.connection() as connection, connection.transaction():
            yield connection
            if audit is not None:
                append_audit(connection, audit)

    def _read_dicts(self, query: sql.Composed, params: Sequence[Any]) -> list[dict[str, Any]]:
        with (
            self._pool.connection() as connection,
            connection.cursor(row_factory=dict_row) as cursor,
        ):
            return cursor.execute(query, params).fetchall()

    def index_changes_since(self, after: int, limit: int = 500) -> list[IndexChange]:
        """Return up to ``limit`` job-index changes with ids above ``after``, oldest first."""
        with self._pool.connection() as connection:
            return index_changes_since(SqlTx(connection), after, limit)

    def latest_index_change(self) -> int:
        """Return the highest stored job-index change id, 0 when none is stored."""
        with self._pool.connection() as connection:
            return latest_index_change(SqlTx(connection))

    def get_anchor(self, anchor_id: str) -> AnchorRecord | None:
        """Return the stored record of one anchor, or None when the id is unknown."""
        query = sql.SQL("SELECT {columns} FROM anchors WHERE anchor_id = %s")
        rows = self._read_dicts(query.format(columns=_RECORD_LIST), (anchor_id,))
        return record_from_row(rows[0]) if rows else None

    def anchors_for_scope(
        self,
        scope: StaffScope,
        *,
        state: AnchorState | None = None,
        name_contains: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AnchorRecord]:
        """Return anchors in the scope's districts or zones, optionally in one state.

        ``name_contains`` keeps anchors whose name contains it (case-sensitive).
        Records are ordered by ``anchor_id`` in byte order (``COLLATE "C"``, as in
        SQLite) and paged by ``limit`` and ``offset``.
        """
        _check_page(limit, offset)
        query = sql.SQL(
            "SELECT {columns} FROM anchors WHERE {scope}"
            ' ORDER BY anchor_id COLLATE "C" LIMIT %s OFFSET %s'
        ).format(columns=_RECORD_LIST, scope=_SCOPE_FILTER)
        params = (*_scope_params(scope, state, name_contains), limit, offset)
        return [record_from_row(row) for row in self._read_dicts(query, params)]

    def count_for_scope(
        self,
        scope: StaffScope,
        *,
        state: AnchorState | None = None,
        name_contains: str | None = None,
    ) -> int:
        """Count the anchors that :meth:`anchors_for_scope` pages through."""
        query = sql.SQL("SELECT count(*) AS n FROM anchors WHERE {scope}").format(
            scope=_SCOPE_FILTER
        )
        rows = self._read_dicts(query, _scope_params(scope, state, name_contains))
        return int(rows[0]["n"])

    def posting_counts(self, anchor_ids: Collection[str]) -> dict[str, int]:
        """Return the number of postings on each stored anchor of ``anchor_ids``."""
        query = sql.SQL(
            "SELECT anchor_id, n_postings FROM anchors WHERE anchor_id = ANY(%s::text[])"
        ).format()
        rows = self._read_dicts(query, (sorted(anchor_ids),))
        return {str(row["anchor_id"]): int(row["n_postings"] or 0) for row in rows}

    def enterprise_flags(self, anchor_ids: Collection[str]) -> dict[str, tuple[bool, bool]]:
        """Return (key_enterprise, above_scale_industrial) of each stored anchor in ``anchor_ids``.

        Unknown ids are left out. The flags are 重点企业 and 规上工业企业.
        """
        query = sql.SQL(
            "SELECT anchor_id, key_enterprise, above_scale_industrial FROM anchors"
            " WHERE anchor_id = ANY(%s::text[])"
        ).format()
        rows = self._read_dicts(query, (sorted(anchor_ids),))
        return {
            str(row["anchor_id"]): (
                bool(row["key_enterprise"]),
                bool(row["above_scale_industrial"]),
            )
            for row in rows
        }

    def anchor_history(self, anchor_id: str) -> list[AnchorVersion]:
        """Return the history entries of one anchor, oldest first, with times in UTC."""
        query = sql.SQL(
            "SELECT {columns} FROM anchor_history WHERE anchor_id = %s ORDER BY version"
        ).format(columns=_qualified(None, HISTORY_COLUMNS))
        rows = self._read_dicts(query, (anchor_id,))
        return [history_from_row(row) for row in rows]

    def save_anchor_change(
        self,
        record: AnchorRecord,
        version: AnchorVersion,
        *,
        expected_version: int,
        audit: AuditWrite | None = None,
        pushes: PushBatch | None = None,
    ) -> None:
        """Store an edited record and its history entry if the anchor is at ``expected_version``.

        ``pushes`` (an anchor becoming verified) are written in the same transaction.

        Raises
        ------
        StaleVersionError
            Another edit moved the anchor past ``expected_version``; nothing is written.
        AnchorNotFoundError
            The anchor is not stored.
        DuplicateAnchorError
            The new credit code belongs to another anchor.
        """
        check_change_pair(record, version, expected_version)
        with self._audited(audit) as connection:
            _update_record(connection, record, version, expected_version)
            if pushes is not None:
                write_job_pushes(SqlTx(connection), pushes)
            if moves_postings({item.field for item in version.changes}):
                record_index_change(SqlTx(connection), "anchor", record.anchor_id)
        logger.info(
            "stored anchor %r at version %d in %s", record.anchor_id, record.version, self._label
        )

    def posting_for_push(self, posting_id: str) -> dict[str, Any] | None:
        """Return one posting, active or not, joined with its anchor's location.

        The row has every column of `postings_frame`, the untyped ones unpacked from
        ``extra``, because an activation adds it to the job index as it is.
        """
        query = sql.SQL(
            "SELECT p.*, a.lon, a.lat, a.precision, a.location_label, a.district_code,"
            " a.source AS location_source, a.state AS anchor_state"
            " FROM postings AS p JOIN anchors AS a USING (anchor_id) WHERE p.posting_id = %s"
        )
        rows = self._read_dicts(query.format(), (posting_id,))
        if not rows:
            return None
        row = rows[0]
        extra = row.pop("extra", None) or {}
        return {**extra, **row}

    def set_posting_active(
        self,
        posting_id: str,
        active: bool,
        *,
        audit: AuditWrite | None = None,
        pushes: PushBatch | None = None,
    ) -> bool:
        """Set whether a posting is active; return False when it already was in that state.

        See :func:`store.posting_state.write_posting_active`: activation writes ``pushes``,
        deactivation skips the posting's undelivered pushes, in one transaction.

        Raises
        ------
        PostingNotFoundError
            The posting is not stored; nothing is written.
        """
        with self._audited(audit) as connection:
            changed = write_posting_active(SqlTx(connection), posting_id, active, pushes)
        logger.info(
            "posting %r active=%s (changed: %s) in %s", posting_id, active, changed, self._label
        )
        return changed

    def insert_anchor(
        self, record: AnchorRecord, version: AnchorVersion, *, audit: AuditWrite | None = None
    ) -> None:
        """Store a staff-added anchor (version 1) and its creation entry.

        Raises
        ------
        DuplicateAnchorError
            The id or the credit code is already stored; nothing is written.
        """
        check_new_pair(record, version)
        with self._audited(audit) as connection:
            _insert_record(connection, record, version)
        logger.info("stored new anchor %r in %s", record.anchor_id, self._label)

    def insert_anchor_once(
        self,
        record: AnchorRecord,
        version: AnchorVersion,
        *,
        staff_id: str,
        key: str,
        body_hash: str,
        audit: AuditWrite | None = None,
    ) -> KeyedInsert:
        """Store a staff-added anchor under an idempotency key, or find the anchor of that key.

        The key row is inserted first with ``ON CONFLICT DO NOTHING``: a concurrent
        request with the same key waits on the primary key until the first commits
        or rolls back, then either finds its row or inserts its own. Keys older than
        :data:`store.base.IDEMPOTENCY_KEY_TTL` at ``version.at`` are deleted first,
        skipping rows that another transaction has locked.

        Raises
        ------
        IdempotencyKeyConflictError
            The key is stored with another body hash; nothing is written.
        DuplicateAnchorError
            The id or the credit code is already stored; nothing is written.
        """
        check_new_pair(record, version)
        created_at = utc_time(version.at)
        expired = created_at - IDEMPOTENCY_KEY_TTL
        with self._audited(audit) as connection:
            connection.execute(
                "DELETE FROM idempotency_keys WHERE (staff_id, key) IN (SELECT staff_id, key"
                " FROM idempotency_keys WHERE created_at < %s FOR UPDATE SKIP LOCKED)",
                (expired,),
            )
            # A locked expired row of this key was skipped above; wait for it here.
            connection.execute(
                "DELETE FROM idempotency_keys WHERE staff_id = %s AND key = %s AND created_at < %s",
                (staff_id, key, expired),
            )
            inserted = connection.execute(
                "INSERT INTO idempotency_keys (staff_id, key, body_hash, anchor_id, created_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (staff_id, key) DO NOTHING"
                " RETURNING anchor_id",
                (staff_id, key, body_hash, record.anchor_id, created_at),
            ).fetchone()
            found = None
            if inserted is None:
                found = connection.execute(
                    "SELECT body_hash, anchor_id FROM idempotency_keys"
                    " WHERE staff_id = %s AND key = %s",
                    (staff_id, key),
                ).fetchone()
                if found is None:
                    # Only a delete between the two statements leads here; nothing is written.
                    raise RuntimeError(
                        f"idempotency key {key!r} of {staff_id!r} was deleted while this"
                        " request waited for it; retry the request"
                    )
            else:
                _insert_record(connection, record, version)
        if found is not None:
            return replayed_insert(staff_id, key, body_hash, str(found[0]), str(found[1]))
        logger.info(
            "stored new anchor %r under idempotency key %r of %r in %s",
            record.anchor_id,
            key,
            staff_id,
            self._label,
        )
        return KeyedInsert(record.anchor_id, replayed=False)

    def apply_merge(
        self,
        plan: MergePlan,
        *,
        expected_versions: Mapping[str, int],
        audit: AuditWrite | None = None,
    ) -> int:
        """Retire the merged anchors, move their postings to the survivor; return postings moved.

        ``expected_versions`` has the version the plan was made from for each
        merged anchor, and for the survivor when it is to be checked as well.
        Each merged anchor's ``merged_into`` is set to the survivor, so a rebuild
        moves the postings again. One transaction writes everything or, on any
        error, nothing.

        Raises
        ------
        StaleVersionError
            An anchor moved past its expected version.
        AnchorNotFoundError, InvalidMergeError
            The survivor is gone or was retired meanwhile.
        """
        updates = merge_updates(plan, expected_versions)
        merged = list(plan.merged_ids)
        with self._audited(audit) as connection:
            found = connection.execute(
                "SELECT version, state FROM anchors WHERE anchor_id = %s FOR UPDATE",
                (plan.survivor_id,),
            ).fetchone()
            survivor = None if found is None else (int(found[0]), str(found[1]))
            check_survivor(plan.survivor_id, survivor, expected_versions.get(plan.survivor_id))
            for record, entry, expected in updates:
                _update_record(connection, record, entry, expected)
            # A rebuild reads this link to move the postings again (store.rebuild).
            connection.execute(
                "UPDATE anchors SET merged_into = %s WHERE anchor_id = ANY(%s::text[])",
                (plan.survivor_id, merged),
            )

            moved = connection.execute(
                "UPDATE postings SET anchor_id = %s WHERE anchor_id = ANY(%s::text[])",
                (plan.survivor_id, merged),
            ).rowcount
            connection.execute(
                "UPDATE anchors SET n_postings ="
                " (SELECT count(*) FROM postings AS p WHERE p.anchor_id = anchors.anchor_id)"
                " WHERE anchor_id = %s OR anchor_id = ANY(%s::text[])",
                (plan.survivor_id, merged),
            )
            record_index_change(SqlTx(connection), "anchor", plan.survivor_id, merged)
        logger.info(
            "merged anchors %s into %r in %s: %d postings moved",
            merged,
            plan.survivor_id,
            self._label,
            moved,
        )
        return moved

    def apply_import(
        self,
        created: Sequence[tuple[AnchorRecord, AnchorVersion]],
        *,
        audit: AuditWrite | None = None,
    ) -> int:
        """Store every imported anchor with its creation entry, or none; return the count.

        Raises
        ------
        DuplicateAnchorError
            An id or credit code is already stored or repeated in the import.
        """
        for record, entry in created:
            check_new_pair(record, entry)
        with self._audited(audit) as connection:
            for record, entry in created:
                _insert_record(connection, record, entry)
        logger.info("imported %d anchors into %s", len(created), self._label)
        return len(created)

    def precision_state_counts(self, by: str = "district") -> pd.DataFrame:
        """Count anchors by district (or zone), precision and state.

        Columns ``district_code`` (``zone_key`` when ``by="zone"``), ``precision``,
        ``state`` and ``n``, ordered by key (missing last), precision, state.
        """
        column = sql.Identifier(count_column(by))
        query = sql.SQL(
            "SELECT {column}, precision, state, count(*) AS n FROM anchors"
            " GROUP BY {column}, precision, state"
        ).format(column=column)
        with self._pool.connection() as connection:
            frame = _fetch_frame(connection, query)
        return tidy_counts(frame, count_column(by))


def _qualified(alias: str | None, columns: Sequence[str]) -> sql.Composed:
    """Return a comma-separated, quoted column list, each prefixed by ``alias.`` if given."""
    names = [sql.Identifier(alias, c) if alias else sql.Identifier(c) for c in columns]
    return sql.SQL(", ").join(names)


def _fetch_frame(
    connection: psycopg.Connection[tuple[Any, ...]],
    query: sql.Composed,
    params: Sequence[Any] = (),
) -> pd.DataFrame:
    with connection.cursor() as cursor:
        rows = cursor.execute(query, params).fetchall()
        names = [column.name for column in cursor.description or ()]
    return pd.DataFrame(rows, columns=names)


# The filter of anchors_for_scope and count_for_scope; parameters from _scope_params.
_SCOPE_FILTER = sql.SQL(
    "(district_code = ANY(%s::text[]) OR zone_key = ANY(%s::text[]))"
    " AND (%s::text[] IS NULL OR filed_org = ANY(%s::text[]))"
    " AND (%s::text IS NULL OR state = %s)"
    " AND (%s::text IS NULL OR strpos(name, %s) > 0)"
)


def _scope_params(
    scope: StaffScope, state: AnchorState | None, name_contains: str | None
) -> tuple[Any, ...]:
    state_value = None if state is None else AnchorState(state).value
    name_value = name_contains or None
    filing = sorted(scope.filing_orgs) if scope.by_filing else None
    return (
        sorted(scope.district_codes),
        sorted(scope.zone_keys),
        filing,
        filing,
        state_value,
        state_value,
        name_value,
        name_value,
    )


def _check_page(limit: int, offset: int) -> None:
    if limit < 0:
        raise ValueError(f"limit {limit} is invalid; expected 0 or more")
    if offset < 0:
        raise ValueError(f"offset {offset} is invalid; expected 0 or more")


def _update_record(
    connection: Connection, record: AnchorRecord, entry: AnchorVersion, expected_version: int
) -> None:
    """Update an anchor row at ``expected_version`` and insert its history entry."""
    columns = [
        sql.SQL("{} = %s").format(sql.Identifier(name))
        for name in RECORD_COLUMNS
        if name != "anchor_id"
    ]
    merge_link = sql.SQL(MERGE_LINK_ASSIGNMENT.format(state="%s::text"))
    assignments = sql.SQL(", ").join([*columns, merge_link])
    statement = sql.SQL("UPDATE anchors SET {} WHERE anchor_id = %s AND version = %s")
    try:
        cursor = connection.execute(
            statement.format(assignments), update_params(record, expected_version)
        )
    except psycopg.errors.UniqueViolation as err:
        raise duplicate_anchor_error(record, err.diag.constraint_name or "") from err

    if cursor.rowcount != 1:
        found = connection.execute(
            "SELECT version FROM anchors WHERE anchor_id = %s", (record.anchor_id,)
        ).fetchone()
        raise stale_version_error(
            record.anchor_id, expected_version, None if found is None else int(found[0])
        )
    _insert_history(connection, entry)


def _insert_record(connection: Connection, record: AnchorRecord, entry: AnchorVersion) -> None:
    """Insert a new anchor row and its creation history entry."""
    row = record_to_row(record)
    columns = ["source", "location_label", "n_postings", *RECORD_COLUMNS]
    values = [STAFF_SOURCE, location_label(record), 0, *(row[name] for name in RECORD_COLUMNS)]
    statement = sql.SQL("INSERT INTO anchors ({columns}) VALUES ({values})").format(
        columns=_qualified(None, columns),
        values=sql.SQL(", ").join([sql.Placeholder()] * len(columns)),
    )
    try:
        connection.execute(statement, values)
    except psycopg.errors.UniqueViolation as err:
        raise duplicate_anchor_error(record, err.diag.constraint_name or "") from err
    _insert_history(connection, entry)


def _insert_history(connection: Connection, entry: AnchorVersion) -> None:
    statement = sql.SQL("INSERT INTO anchor_history ({columns}) VALUES ({values})").format(
        columns=_qualified(None, HISTORY_COLUMNS),
        values=sql.SQL(", ").join([sql.Placeholder()] * len(HISTORY_COLUMNS)),
    )
    connection.execute(statement, history_params(entry, at=utc_time(entry.at)))
