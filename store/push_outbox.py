"""Push decisions, the outbox and the inbox: the statements both stores run for pushes.

Each function runs inside the caller's transaction (:class:`store.push_sql.SqlTx`),
so a trigger's push rows commit or roll back with the trigger's own change. The
rules that need stored state are applied here:

- consent: only seekers with a consent time and no later opt-out get a push, and a
  delivery checks again, so an opt-out stops every push not yet sent;
- never the same job twice: ``push_shown`` has one row per seeker and posting. A push
  skipped before any claim handed it to a gateway (opt-out, daily cap, closed posting,
  no address) deletes its rows in the transaction that skips it, so a later trigger
  may push its jobs;
- better than already shown: a job's score must beat every job pushed to the seeker
  in the window by more than the margin;
- seekers per opening: at most :meth:`PushRules.posting_cap` seekers per posting and
  trigger (``max_seekers_per_opening`` per vacancy), best scores first;
- active postings only: a job push for a posting the store holds as inactive is not
  written, deactivation skips the posting's pending and queued pushes
  (:func:`cancel_posting_pushes`), and a claim skips any left (``posting_inactive``).
  A claim drops the jobs of inactive postings from a digest and renders its text
  again, or skips it (``posting_inactive``) when no job remains;
- quiet hours and the daily cap are checked when a worker claims a push, because
  they depend on the time of delivery.
"""

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from matching.push_rules import Lang, PushMessage, PushRules, render_digest
from store.push_digest import DigestJob, digest_jobs, drop_digest_jobs, write_digest_jobs
from store.push_sql import SQLITE_PUSH_TABLES, SqlTx

if TYPE_CHECKING:
    from matching.push_fanout import PushCandidate

logger = logging.getLogger(__name__)

CHANNELS = ("inbox", "sms", "wechat")
"""Delivery channels a seeker may choose; ``inbox`` is the in-app inbox."""

POSTING_INACTIVE = "posting_inactive"
"""Skip reason of a push whose posting was deactivated before it was sent."""

CLAIMS_WITHOUT_RESULT = (
    "claimed {attempts} times without a recorded failure; each claim counts as an attempt,"
    " so these were workers that died or overran the claim lease while sending"
)
"""Dead-letter reason of a push whose attempts were all used up by claims with no result."""

ShownScorer = Callable[[Sequence[tuple[str, str]]], dict[tuple[str, str], float]]
"""Re-scores (seeker id, posting id) pairs on the scale of a batch's scores."""

IN_LIST_CHUNK = 900
"""Maximum values in one ``IN (...)`` list, because SQLite before 3.32 allows 999 parameters."""

_OF_SKIPPED_PUSH = (
    "EXISTS (SELECT 1 FROM push_outbox AS o"
    " WHERE o.push_id = push_shown.push_id AND o.status = 'skipped' AND o.attempts = 0)"
)
"""Condition on a ``push_shown`` row: its push was skipped before any claim to send it,
so the seeker never saw the job. A skipped push that a worker claimed may have reached
the gateway, so its row still counts as shown."""

_NOT_SKIPPED = " AND NOT " + _OF_SKIPPED_PUSH
"""Filter of ``push_shown`` rows to those of pushes sent, being sent or still to send."""

_OUTBOX_INSERT = """
INSERT INTO push_outbox (push_id, seeker_id, kind, posting_id, trigger, score, channel,
    title, body, link, created_at, not_before)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


class PushState(StrEnum):
    """Status of an outbox row."""

    PENDING = "pending"
    QUEUED = "queued"
    SENDING = "sending"
    DELIVERED = "delivered"
    SKIPPED = "skipped"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class PushBatch:
    """The push decisions of one trigger, written with the trigger's change."""

    trigger: str
    """Cause of the pushes, such as ``posting.active:<id>`` or ``anchor.verified:<id>``."""
    candidates: Sequence["PushCandidate"]
    rules: PushRules
    at: datetime
    written: list[str] = field(default_factory=list)
    """Push ids written, filled in by :func:`write_job_pushes`."""
    ranker: str = "baseline"
    """Scorer of the candidates: a registry model id, or ``baseline``."""
    score_shown: ShownScorer | None = None
    """Re-scores the jobs already pushed to a seeker with the batch's ranker, for the
    better-than-shown rule. None compares with the stored scores, which is right only
    when they come from the same scorer (the baseline score)."""


@dataclass(frozen=True, slots=True)
class Claim:
    """Outcome of :func:`claim_push`: what a worker does with one stream entry."""

    action: str
    """``send`` (deliver now), ``done`` (nothing left to do, so acknowledge) or ``busy``
    (another worker has a live claim, so acknowledge; the relay queues the push again
    if that worker dies)."""
    push: dict[str, Any] | None = None


def ensure_sqlite_tables(tx: SqlTx) -> None:
    """Create the push tables in a SQLite store written before they existed."""
    if not tx.is_sqlite:
        return
    for statement in SQLITE_PUSH_TABLES.split(";"):
        if statement.strip():
            tx.execute(statement)


# --- consent --------------------------------------------------------------------------


def set_consent(
    tx: SqlTx, seeker_id: str, *, consent: bool, at: datetime, channel: str, lang: Lang | None
) -> dict[str, Any]:
    """Store a seeker's explicit consent (with its time) or opt-out, and return the row.

    An opt-out keeps the earlier consent time for the record; a later consent clears
    the opt-out. ``lang`` None keeps the stored language (``zh`` for a new row).
    """
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r} is invalid; expected one of {list(CHANNELS)}")
    if lang is None:
        stored = read_consent(tx, seeker_id)
        lang = "zh" if stored is None else stored["lang"]
    now = tx.time(at)
    if consent:
        tx.execute(
            "INSERT INTO push_consents (seeker_id, consented_at, opted_out_at, channel, lang,"
            " updated_at) VALUES (?, ?, NULL, ?, ?, ?) ON CONFLICT (seeker_id) DO UPDATE SET"
            " consented_at = excluded.consented_at, opted_out_at = NULL,"
            " channel = excluded.channel, lang = excluded.lang, updated_at = excluded.updated_at",
            (seeker_id, now, channel, lang, now),
        )
    else:
        tx.execute(
            "INSERT INTO push_consents (seeker_id, consented_at, opted_out_at, channel, lang,"
            " updated_at) VALUES (?, NULL, ?, ?, ?, ?) ON CONFLICT (seeker_id) DO UPDATE SET"
            " opted_out_at = excluded.opted_out_at, updated_at = excluded.updated_at",
            (seeker_id, now, channel, lang, now),
        )
    return read_consent(tx, seeker_id) or {}


def read_consent(tx: SqlTx, seeker_id: str) -> dict[str, Any] | None:
    """Return a seeker's consent row, or None when they never gave or refused consent."""
    rows = tx.rows(
        "SELECT seeker_id, consented_at, opted_out_at, channel, lang, updated_at"
        " FROM push_consents WHERE seeker_id = ?",
        (seeker_id,),
    )
    return rows[0] if rows else None


def _consenting(row: dict[str, Any] | None) -> bool:
    return row is not None and row["consented_at"] is not None and row["opted_out_at"] is None


# --- decisions ------------------------------------------------------------------------


def write_job_pushes(tx: SqlTx, batch: PushBatch) -> list[str]:
    """Write the pushes of one trigger that pass the stored-state rules; return their ids.

    Candidates are taken best score first until the posting's cap
    (:meth:`PushRules.posting_cap` of its headcount) is written. Consent and the best
    recently shown score are read once per seeker, in two queries, and the
    concurrent-trigger race on one seeker and posting is settled by the ``push_shown``
    primary key. Candidates of postings stored as inactive are dropped.
    """
    ensure_sqlite_tables(tx)
    inactive = inactive_postings(tx, sorted({item.posting_id for item in batch.candidates}))
    ordered = sorted(
        (item for item in batch.candidates if item.posting_id not in inactive),
        key=lambda item: (-item.score, item.seeker_id),
    )
    seekers = sorted({item.seeker_id for item in ordered})
    consents = _consents(tx, seekers)
    since = batch.at - timedelta(days=batch.rules.shown_window_days)
    best_shown = _best_shown(tx, seekers, since, batch.score_shown)

    written: list[str] = []
    per_posting: dict[str, int] = {}
    for candidate in ordered:
        cap = batch.rules.posting_cap(candidate.headcount)
        if per_posting.get(candidate.posting_id, 0) >= cap:
            continue
        consent = consents.get(candidate.seeker_id)
        if consent is None or not _consenting(consent):
            continue
        best = best_shown.get(candidate.seeker_id)
        if best is not None and candidate.score <= best + batch.rules.better_margin:
            continue
        push_id = _write_job_push(tx, candidate, consent, batch)
        if push_id is None:
            continue
        written.append(push_id)
        per_posting[candidate.posting_id] = per_posting.get(candidate.posting_id, 0) + 1
        best_shown[candidate.seeker_id] = max(best or candidate.score, candidate.score)
    batch.written.extend(written)
    logger.info(
        "trigger %s wrote %d of %d push candidates scored by %s (%d dropped: posting inactive)",
        batch.trigger,
        len(written),
        len(ordered),
        batch.ranker,
        len(batch.candidates) - len(ordered),
    )
    return written


def inactive_postings(tx: SqlTx, posting_ids: Sequence[str]) -> set[str]:
    """Return which of ``posting_ids`` are stored as inactive.

    A posting missing from the store counts as active, because a push store may run
    without the postings table (the pipeline tests use a bare push store).
    """
    if not posting_ids or not _has_postings_table(tx):
        return set()
    found: set[str] = set()
    for chunk in _chunks(posting_ids):
        rows = tx.rows(
            "SELECT posting_id FROM postings"
            f" WHERE posting_id IN ({_in_list(chunk)}) AND NOT active",  # nosec B608 # markers only
            chunk,
        )
        found.update(str(row["posting_id"]) for row in rows)
    return found


def _has_postings_table(tx: SqlTx) -> bool:
    if tx.is_sqlite:
        query = "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = 'postings'"
    else:
        query = "SELECT 1 AS found WHERE to_regclass('postings') IS NOT NULL"
    return bool(tx.rows(query))


def cancel_posting_pushes(tx: SqlTx, posting_id: str) -> int:
    """Skip a posting's pending and queued pushes with reason ``posting_inactive``.

    Returns the number skipped. A push in ``sending`` is left to its worker: one whose
    claim ran out is skipped by the next claim, and one with a live claim may be at the
    gateway already. The skipped pushes that no worker claimed yet forget their
    ``push_shown`` rows (:func:`forget_shown`), so activating the posting again can
    push it to their seekers.

    The outbox rows are locked (PostgreSQL ``FOR UPDATE``) before their ``push_shown``
    rows are deleted, the order in which a claim that skips a push takes the same locks,
    so neither waits for a lock that the other took after its own.
    """
    ensure_sqlite_tables(tx)
    lock = "" if tx.is_sqlite else " FOR UPDATE"
    query = (
        "SELECT push_id, attempts FROM push_outbox"  # nosec B608 # constant text
        " WHERE posting_id = ? AND status IN ('pending', 'queued')" + lock
    )
    rows = tx.rows(query, (posting_id,))
    for row in rows:
        _skip(tx, str(row["push_id"]), POSTING_INACTIVE, int(row["attempts"]))
    return len(rows)


def _in_list(values: Sequence[str]) -> str:
    return ", ".join("?" for _ in values) or "NULL"


def _chunks(values: Sequence[str]) -> list[Sequence[str]]:
    return [values[start : start + IN_LIST_CHUNK] for start in range(0, len(values), IN_LIST_CHUNK)]


def _consents(tx: SqlTx, seekers: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(seekers):
        rows = tx.rows(
            "SELECT seeker_id, consented_at, opted_out_at, channel, lang FROM push_consents"
            f" WHERE seeker_id IN ({_in_list(chunk)})",  # nosec B608 # markers only, bound values
            chunk,
        )
        found.update((str(row["seeker_id"]), row) for row in rows)
    return found


def _best_shown(
    tx: SqlTx, seekers: Sequence[str], since: datetime, score_shown: ShownScorer | None
) -> dict[str, float]:
    """Return each seeker's best score among the jobs shown since ``since``.

    Only pushes sent, being sent or still to send count: the row of a push skipped
    before its first claim is left out, because the seeker never saw its job.

    With ``score_shown`` the shown jobs are re-scored on the batch's scale, and a job
    it cannot score (its posting is no longer loaded) is left out.
    """
    if score_shown is None:
        found: dict[str, float] = {}
        for chunk in _chunks(seekers):
            rows = tx.rows(
                "SELECT seeker_id, max(score) AS best FROM push_shown"
                f" WHERE seeker_id IN ({_in_list(chunk)}) AND shown_at >= ?"  # nosec B608 # markers only
                + _NOT_SKIPPED
                + " GROUP BY seeker_id",
                [*chunk, tx.time(since)],
            )
            found.update((str(row["seeker_id"]), float(row["best"])) for row in rows)
        return found

    pairs: list[tuple[str, str]] = []
    for chunk in _chunks(seekers):
        rows = tx.rows(
            "SELECT seeker_id, posting_id FROM push_shown"
            f" WHERE seeker_id IN ({_in_list(chunk)}) AND shown_at >= ?" + _NOT_SKIPPED,  # nosec B608 # markers only
            [*chunk, tx.time(since)],
        )
        pairs.extend((str(row["seeker_id"]), str(row["posting_id"])) for row in rows)
    best: dict[str, float] = {}
    for (seeker_id, _), score in score_shown(pairs).items():
        best[seeker_id] = max(best.get(seeker_id, score), score)
    return best


def _write_job_push(
    tx: SqlTx, candidate: "PushCandidate", consent: dict[str, Any], batch: PushBatch
) -> str | None:
    push_id = uuid.uuid4().hex
    if not _record_shown(
        tx, candidate.seeker_id, candidate.posting_id, push_id, candidate.score, batch.at
    ):
        return None
    message = candidate.messages[consent["lang"]]
    _insert_outbox(
        tx, push_id, candidate.seeker_id, "job", candidate.posting_id, candidate.score,
        consent["channel"], message, batch,
    )  # fmt: skip
    return push_id


def _record_shown(
    tx: SqlTx, seeker_id: str, posting_id: str, push_id: str, score: float, at: datetime
) -> bool:
    """Record a job as shown to a seeker by ``push_id``; return False when it already is.

    A row still recorded for a push skipped before its first claim is taken over,
    because the seeker never saw that push (such skips delete their rows, see
    :func:`forget_shown`, so only stores written by earlier versions have them). The takeover is a
    separate UPDATE, not ``ON CONFLICT DO UPDATE ... WHERE``, because PostgreSQL 15
    locks a conflicting row for the latter even when its WHERE is false, while an UPDATE
    whose WHERE is false locks none (checked with ``FOR UPDATE NOWAIT``).
    """
    params = (seeker_id, posting_id, push_id, score, tx.time(at))
    inserted = tx.execute(
        "INSERT INTO push_shown (seeker_id, posting_id, push_id, score, shown_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (seeker_id, posting_id) DO NOTHING",
        params,
    )
    if inserted:
        return True
    taken_over = tx.execute(
        "UPDATE push_shown SET push_id = ?, score = ?, shown_at = ?"  # nosec B608 # constant text
        " WHERE seeker_id = ? AND posting_id = ? AND " + _OF_SKIPPED_PUSH,
        (push_id, score, tx.time(at), seeker_id, posting_id),
    )
    return bool(taken_over)


def _insert_outbox(
    tx: SqlTx,
    push_id: str,
    seeker_id: str,
    kind: str,
    posting_id: str | None,
    score: float | None,
    channel: str,
    message: PushMessage,
    batch: PushBatch,
) -> None:
    not_before = batch.rules.earliest_send(batch.at)
    tx.execute(
        _OUTBOX_INSERT,
        (push_id, seeker_id, kind, posting_id, batch.trigger, score, channel, message.title,
         message.body, message.link, tx.time(batch.at), tx.time(not_before)),
    )  # fmt: skip


def write_digest(tx: SqlTx, seeker_id: str, batch: PushBatch) -> str | None:
    """Write one digest push listing the not yet shown jobs of ``batch``; return its id.

    Returns None when the seeker has not consented or every job was already shown.
    The listed jobs are recorded as shown, so they are not pushed again one by one, and
    stored with the push (:mod:`store.push_digest`), so the claim can drop the jobs of
    postings deactivated before delivery.
    """
    ensure_sqlite_tables(tx)
    consent = read_consent(tx, seeker_id)
    if not _consenting(consent) or consent is None:
        return None
    push_id = uuid.uuid4().hex
    lang = consent["lang"]
    jobs: list[DigestJob] = []
    for candidate in sorted(batch.candidates, key=lambda item: -item.score):
        if len(jobs) >= batch.rules.digest_size:
            break
        if _record_shown(tx, seeker_id, candidate.posting_id, push_id, candidate.score, batch.at):
            jobs.append(
                DigestJob(candidate.posting_id, candidate.score, candidate.digest_lines[lang])
            )
    if not jobs:
        return None
    # The seeker page takes one job, so the digest links to its best job.
    link = batch.rules.job_link(jobs[0].posting_id, lang)
    message = render_digest([job.line for job in jobs], link, lang)
    best = max(job.score for job in jobs)
    _insert_outbox(tx, push_id, seeker_id, "digest", None, best, consent["channel"], message, batch)
    write_digest_jobs(tx, push_id, seeker_id, lang, jobs)
    batch.written.append(push_id)
    return push_id


# --- relay ----------------------------------------------------------------------------


_DUE_FILTER = (
    " WHERE (status = 'pending' AND not_before <= ?)"
    " OR (status IN ('queued', 'sending') AND relayed_at < ?"
    "     AND (claimed_until IS NULL OR claimed_until < ?))"
)


def has_due(tx: SqlTx, now: datetime, lease: timedelta) -> bool:
    """Return whether any push is due for the relay (see :func:`due_for_relay`)."""
    params = (tx.time(now), tx.time(now - lease), tx.time(now))
    query = "SELECT 1 AS due FROM push_outbox" + _DUE_FILTER + " LIMIT 1"  # nosec B608 # constant text
    rows = tx.rows(query, params)
    return bool(rows)


def due_for_relay(tx: SqlTx, now: datetime, lease: timedelta, limit: int) -> list[dict[str, Any]]:
    """Return pushes to put on the stream and mark them queued, oldest first.

    Due pending pushes come with pushes queued or sending longer than ``lease`` ago
    and not delivered, because their stream entry may be lost (Redis restarted with an
    empty data set) or their worker died after its entry was acknowledged elsewhere.
    """
    query = "SELECT push_id, seeker_id, channel FROM push_outbox" + _DUE_FILTER  # nosec B608 # constant text
    rows = tx.rows(
        query + " ORDER BY seq LIMIT ?",
        (tx.time(now), tx.time(now - lease), tx.time(now), limit),
    )
    for row in rows:
        tx.execute(
            "UPDATE push_outbox SET status = CASE WHEN status = 'sending' THEN status"
            " ELSE 'queued' END, relayed_at = ? WHERE push_id = ?",
            (tx.time(now), row["push_id"]),
        )
    return rows


# --- delivery -------------------------------------------------------------------------


def claim_push(tx: SqlTx, push_id: str, now: datetime, rules: PushRules, lease: timedelta) -> Claim:
    """Decide whether a worker sends a push now, applying the delivery-time rules.

    The seeker's consent row is locked first (PostgreSQL ``FOR UPDATE``; SQLite
    serialises writers), so two workers cannot both pass the daily cap. A push
    already in ``sending`` whose claim ran out may have been sent by a worker that
    died before marking it. It is sent again with the same push id, which the SMS
    gateway uses as the idempotency key, and it counts once against the cap.
    """
    lock = "" if tx.is_sqlite else " FOR UPDATE"
    query = "SELECT * FROM push_outbox WHERE push_id = ?" + lock  # nosec B608 # constant text
    rows = tx.rows(query, (push_id,))
    if not rows:
        return Claim("done")
    push = rows[0]
    if push["status"] in (PushState.DELIVERED, PushState.SKIPPED, PushState.DEAD):
        return Claim("done")
    if (
        push["status"] == PushState.SENDING
        and push["claimed_until"]
        and push["claimed_until"] > now
    ):
        return Claim("busy")

    query = "SELECT * FROM push_consents WHERE seeker_id = ?" + lock  # nosec B608 # constant text
    consent_rows = tx.rows(query, (push["seeker_id"],))
    if not _consenting(consent_rows[0] if consent_rows else None):
        _skip(tx, push_id, "opted_out", push["attempts"])
        return Claim("done")
    if push["posting_id"] is not None and inactive_postings(tx, [str(push["posting_id"])]):
        _skip(tx, push_id, POSTING_INACTIVE, push["attempts"])
        return Claim("done")
    if push["kind"] == "digest" and not _drop_closed_digest_jobs(tx, push):
        _skip(tx, push_id, POSTING_INACTIVE, push["attempts"])
        return Claim("done")
    if rules.in_quiet_hours(now):
        tx.execute(
            "UPDATE push_outbox SET status = 'pending', not_before = ?, claimed_until = NULL"
            " WHERE push_id = ?",
            (tx.time(rules.earliest_send(now)), push_id),
        )
        return Claim("done")
    if push["attempts"] >= rules.max_attempts:
        # attempts counts claims, so a worker that died while sending used one up.
        reason = push.get("last_error") or CLAIMS_WITHOUT_RESULT.format(attempts=push["attempts"])
        _dead(tx, push_id, reason)
        return Claim("done")

    day = rules.local_day(now)
    if push["status"] != PushState.SENDING or push["sent_day"] is None:
        sent = tx.rows(
            "SELECT count(*) AS n FROM push_outbox WHERE seeker_id = ? AND sent_day = ?"
            " AND status IN ('sending', 'delivered')",
            (push["seeker_id"], tx.day(day)),
        )
        if int(sent[0]["n"]) >= rules.daily_cap:
            _skip(tx, push_id, "daily_cap", push["attempts"])
            return Claim("done")
    tx.execute(
        "UPDATE push_outbox SET status = 'sending', attempts = attempts + 1, claimed_until = ?,"
        " sent_day = ? WHERE push_id = ?",
        (tx.time(now + lease), tx.day(day), push_id),
    )
    push.update(status=PushState.SENDING.value, attempts=push["attempts"] + 1)
    return Claim("send", push)


def _drop_closed_digest_jobs(tx: SqlTx, push: dict[str, Any]) -> bool:
    """Drop the jobs of inactive postings from a digest push; return False when none remain."""
    lang, jobs = digest_jobs(tx, str(push["push_id"]))
    if not jobs:
        # NOTE: a digest written before its jobs were stored (before migration
        # 0016_push_digest_items) has none to check, so it is sent as written.
        return True
    closed = inactive_postings(tx, [job.posting_id for job in jobs])
    if not closed:
        return True
    return drop_digest_jobs(tx, push, lang, jobs, closed) > 0


def mark_delivered(tx: SqlTx, push: dict[str, Any], now: datetime) -> bool:
    """Mark a push delivered; for the inbox channel this also stores the inbox message.

    Returns False when it was already delivered, so the caller only acknowledges.
    """
    changed = tx.execute(
        "UPDATE push_outbox SET status = 'delivered', delivered_at = ?, claimed_until = NULL"
        " WHERE push_id = ? AND status <> 'delivered'",
        (tx.time(now), push["push_id"]),
    )
    if changed and push["channel"] == "inbox":
        tx.execute(
            "INSERT INTO push_inbox (push_id, seeker_id, title, body, link, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (push_id) DO NOTHING",
            (push["push_id"], push["seeker_id"], push["title"], push["body"], push["link"],
             tx.time(now)),
        )  # fmt: skip
    return bool(changed)


def mark_failed(
    tx: SqlTx, push_id: str, error: str, now: datetime, rules: PushRules, retry_after: timedelta
) -> PushState:
    """Record a failed delivery: retry later, or dead-letter after ``max_attempts``."""
    rows = tx.rows("SELECT attempts FROM push_outbox WHERE push_id = ?", (push_id,))
    if not rows:
        return PushState.SKIPPED
    if int(rows[0]["attempts"]) >= rules.max_attempts:
        _dead(tx, push_id, error)
        return PushState.DEAD
    tx.execute(
        "UPDATE push_outbox SET status = 'pending', not_before = ?, claimed_until = NULL,"
        " sent_day = NULL, last_error = ? WHERE push_id = ? AND status = 'sending'",
        (tx.time(now + retry_after), error[:500], push_id),
    )
    return PushState.PENDING


def mark_skipped(tx: SqlTx, push_id: str, reason: str, attempts: int) -> bool:
    """Skip a push that its claim did not hand to the gateway; it counts against no daily cap.

    ``attempts`` is the claim's own count (:func:`claim_push`), so a worker whose claim
    ran out and was claimed again changes nothing. On the first claim the push drops
    its ``push_shown`` rows (:func:`forget_shown`); after an earlier claim, which may
    have reached the gateway, they stay. Returns False when the push was not in
    ``sending`` under this claim (delivered, claimed again or erased meanwhile).
    """
    changed = tx.execute(
        "UPDATE push_outbox SET status = 'skipped', skip_reason = ?, claimed_until = NULL,"
        " sent_day = NULL WHERE push_id = ? AND status = 'sending' AND attempts = ?",
        (reason[:200], push_id, attempts),
    )
    if changed and attempts <= 1:
        forget_shown(tx, push_id)
    return bool(changed)


def forget_shown(tx: SqlTx, push_id: str) -> int:
    """Delete the ``push_shown`` rows of a push that was not sent; return how many.

    The seeker never saw its jobs, so a later trigger may push them again, and the
    better-than-shown rule no longer compares with them. A job push has one row and a
    digest one per listed job. The seeker id limits the delete to a prefix of the
    primary key, because ``push_shown`` has no index on ``push_id``.
    """
    return tx.execute(
        "DELETE FROM push_shown WHERE seeker_id = (SELECT seeker_id FROM push_outbox"
        " WHERE push_id = ?) AND push_id = ?",
        (push_id, push_id),
    )


def _skip(tx: SqlTx, push_id: str, reason: str, attempts: int) -> None:
    """Skip a push before a claim sends it, in one transaction.

    A push that no worker claimed yet (``attempts`` 0) drops its ``push_shown`` rows.
    One that a worker claimed may have reached the gateway: a worker that died after
    sending, or a gateway that timed out after delivering. Its rows stay, so a later
    trigger never pushes the seeker a job they may have seen.
    """
    tx.execute(
        "UPDATE push_outbox SET status = 'skipped', skip_reason = ?, claimed_until = NULL"
        " WHERE push_id = ?",
        (reason, push_id),
    )
    if attempts == 0:
        forget_shown(tx, push_id)


def _dead(tx: SqlTx, push_id: str, error: str) -> None:
    tx.execute(
        "UPDATE push_outbox SET status = 'dead', last_error = ?, claimed_until = NULL"
        " WHERE push_id = ?",
        (error[:500], push_id),
    )
    logger.warning("push %s moved to the dead-letter list: %s", push_id, error[:200])


# --- reads and erasure -----------------------------------------------------------------


def dead_letters(tx: SqlTx, limit: int, offset: int) -> list[dict[str, Any]]:
    """Return dead-lettered pushes, oldest first, without message text."""
    return tx.rows(
        "SELECT push_id, seeker_id, kind, posting_id, channel, attempts, last_error, created_at"
        " FROM push_outbox WHERE status = 'dead' ORDER BY seq LIMIT ? OFFSET ?",
        (limit, offset),
    )


def inbox_messages(
    tx: SqlTx, seeker_id: str, *, unread_only: bool, limit: int
) -> list[dict[str, Any]]:
    """Return a seeker's inbox messages, newest first."""
    unread = " AND read_at IS NULL" if unread_only else ""
    query = (
        "SELECT push_id, title, body, link, created_at, read_at FROM push_inbox"  # nosec B608 # constant text
        " WHERE seeker_id = ?" + unread + " ORDER BY created_at DESC, push_id LIMIT ?"
    )
    return tx.rows(
        query,
        (seeker_id, limit),
    )


def mark_read(tx: SqlTx, seeker_id: str, push_id: str, now: datetime) -> bool:
    """Mark one of the seeker's inbox messages read; return False when they have no such one."""
    tx.execute(
        "UPDATE push_inbox SET read_at = ? WHERE seeker_id = ? AND push_id = ? AND read_at IS NULL",
        (tx.time(now), seeker_id, push_id),
    )
    found = tx.rows(
        "SELECT 1 AS found FROM push_inbox WHERE seeker_id = ? AND push_id = ?",
        (seeker_id, push_id),
    )
    return bool(found)


def status_counts(tx: SqlTx) -> dict[str, int]:
    """Return the number of outbox rows in each status."""
    ensure_sqlite_tables(tx)
    rows = tx.rows("SELECT status, count(*) AS n FROM push_outbox GROUP BY status")
    return {str(row["status"]): int(row["n"]) for row in rows}


def erase_seeker_rows(tx: SqlTx, seeker_id: str) -> tuple[list[str], dict[str, int]]:
    """Delete a seeker's consent, shown jobs, digest jobs, outbox and inbox rows.

    Returns the deleted push ids (for removing stream entries) and the rows deleted per table.
    """
    ensure_sqlite_tables(tx)
    push_ids = [
        str(row["push_id"])
        for row in tx.rows("SELECT push_id FROM push_outbox WHERE seeker_id = ?", (seeker_id,))
    ]
    counts = {}
    tables = ("push_digest_items", "push_inbox", "push_outbox", "push_shown", "push_consents")
    for table in tables:
        counts[table] = tx.execute(
            f"DELETE FROM {table} WHERE seeker_id = ?",  # nosec B608 # constant table names
            (seeker_id,),
        )
    return push_ids, counts
