"""Activation and deactivation of a posting, the same statements on SQLite and PostgreSQL.

Both stores call :func:`write_posting_active` inside the transaction that also writes
the operation-log record of the change, so the state, its pushes, its job-index change
and its audit entry commit or roll back together.
"""

import logging

from store.base import PostingNotFoundError
from store.index_changes import record_index_change
from store.push_outbox import PushBatch, cancel_posting_pushes, write_job_pushes
from store.push_sql import SqlTx

logger = logging.getLogger(__name__)


def write_posting_active(
    tx: SqlTx, posting_id: str, active: bool, pushes: PushBatch | None = None
) -> bool:
    """Set whether a posting is active; return False when it already was in that state.

    A change of state appends a job-index change (:mod:`store.index_changes`), so
    other service processes apply it to their own index. Activation writes ``pushes``
    when the state changed. Deactivation skips every
    pending or queued push of the posting with reason ``posting_inactive``, also when
    the posting was inactive already, so a retried request finishes the job.

    Raises
    ------
    PostingNotFoundError
        The posting is not stored; nothing is written.
    """
    value: object = int(active) if tx.is_sqlite else active
    changed = tx.execute(
        "UPDATE postings SET active = ? WHERE posting_id = ? AND active <> ?",
        (value, posting_id, value),
    )
    if not changed:
        found = tx.rows("SELECT 1 AS found FROM postings WHERE posting_id = ?", (posting_id,))
        if not found:
            raise PostingNotFoundError(f"posting {posting_id!r} does not exist")
    if active and changed and pushes is not None:
        write_job_pushes(tx, pushes)
    if not active:
        cancelled = cancel_posting_pushes(tx, posting_id)
        logger.info("posting %r deactivated: %d undelivered pushes skipped", posting_id, cancelled)
    if changed:
        # Last, because PostgreSQL holds the change log's lock until the commit: a push
        # write waiting meanwhile for another transaction's push_shown row would deadlock
        # with that transaction if it logs a change of its own.
        record_index_change(tx, "posting", posting_id)
    return bool(changed)
