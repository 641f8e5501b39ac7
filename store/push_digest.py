"""The jobs a preference-change digest lists, stored beside its outbox row.

A digest's text is rendered when the seeker changes preferences, but a worker sends
it later: after the quiet hours, after failed attempts, or after the relay lease. A
posting deactivated in between must not reach the seeker, so each listed job is kept
here with its line of text, and the claim drops the jobs of inactive postings and
renders the text again from the rest (:func:`drop_digest_jobs`).
"""

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, cast

from matching.push_rules import Lang, relink_job, render_digest
from store.push_sql import SqlTx

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DigestJob:
    """One job of a digest: its posting, score and line of text in the digest's language."""

    posting_id: str
    score: float
    line: str


def write_digest_jobs(
    tx: SqlTx, push_id: str, seeker_id: str, lang: Lang, jobs: Sequence[DigestJob]
) -> None:
    """Store the jobs of one digest push in listing order (best first)."""
    for position, job in enumerate(jobs):
        tx.execute(
            "INSERT INTO push_digest_items (push_id, position, seeker_id, posting_id, score,"
            " lang, line) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (push_id, position, seeker_id, job.posting_id, job.score, lang, job.line),
        )


def digest_jobs(tx: SqlTx, push_id: str) -> tuple[Lang, list[DigestJob]]:
    """Return the language and the jobs of one digest push, in listing order.

    A digest written before the jobs were stored has none; its language is then ``zh``.
    """
    rows = tx.rows(
        "SELECT posting_id, score, lang, line FROM push_digest_items WHERE push_id = ?"
        " ORDER BY position",
        (push_id,),
    )
    lang = cast(Lang, str(rows[0]["lang"])) if rows else "zh"
    jobs = [
        DigestJob(str(row["posting_id"]), float(row["score"]), str(row["line"])) for row in rows
    ]
    return lang, jobs


def drop_digest_jobs(
    tx: SqlTx, push: dict[str, Any], lang: Lang, jobs: Sequence[DigestJob], closed: Collection[str]
) -> int:
    """Remove the jobs of ``closed`` postings from a digest push; return how many remain.

    ``lang`` and ``jobs`` are the digest's, as :func:`digest_jobs` returns them.

    The dropped jobs lose their ``push_shown`` rows, because the seeker never saw them,
    so a posting activated again can be pushed to the seeker later. When jobs remain,
    the outbox row's title, body, link (to the first remaining job) and score are rendered
    again from them, and ``push`` (the claimed row) is updated to match. When none remain
    the text is left as it was and the caller skips the push.
    """
    push_id = str(push["push_id"])
    dropped = [job.posting_id for job in jobs if job.posting_id in closed]
    for posting_id in dropped:
        tx.execute(
            "DELETE FROM push_digest_items WHERE push_id = ? AND posting_id = ?",
            (push_id, posting_id),
        )
        tx.execute(
            "DELETE FROM push_shown WHERE seeker_id = ? AND posting_id = ? AND push_id = ?",
            (push["seeker_id"], posting_id, push_id),
        )
    remaining = [job for job in jobs if job.posting_id not in closed]
    if dropped and remaining:
        link = relink_job(str(push["link"]), remaining[0].posting_id)
        message = render_digest([job.line for job in remaining], link, lang)
        best = max(job.score for job in remaining)
        tx.execute(
            "UPDATE push_outbox SET title = ?, body = ?, link = ?, score = ? WHERE push_id = ?",
            (message.title, message.body, link, best, push_id),
        )
        push.update(title=message.title, body=message.body, link=link, score=best)
    if dropped:
        logger.info(
            "digest push %s: dropped %d jobs of inactive postings, %d remain",
            push_id,
            len(dropped),
            len(remaining),
        )
    return len(remaining)
