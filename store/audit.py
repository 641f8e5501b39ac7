"""The operation log (操作日志): audit records in an HMAC-SM3 hash chain.

Each record gets the next sequence number and a tag,
``HMAC-SM3(key, previous tag || canonical record)``, where the canonical
record is a compact JSON array of the sequence number and every field, and the
first record's previous tag is 32 zero bytes. A one-row chain head stores the
last sequence number and tag. Both stores append a record and advance the head
in one serialised transaction, so the chain has no forks. :meth:`AuditChain.verify`
walks the records in sequence order and reports the first changed, inserted or
deleted record.
"""

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes, hmac

from geo.errors import DoorstepError

GENESIS_TAG = bytes(32)
"""The previous tag of the first record: SM3 output size, all zero."""

MIN_AUDIT_KEY_BYTES = 32

AuditResult = Literal["ok", "denied", "rejected", "conflict", "failed"]


class AuditWriteError(DoorstepError, RuntimeError):
    """An audit record could not be stored; the operation it records was not carried out."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One operation: who did what to which object, with what result, from where."""

    at: datetime
    """Time of the operation, timezone-aware; stored in UTC with microseconds."""
    actor: str
    """Staff or seeker id; ``anonymous`` when the caller did not authenticate."""
    role: str
    org: str
    action: str
    """Dotted operation name such as ``anchor.update``."""
    object_id: str
    """The object acted on, such as ``anchor:<id>``; empty when the request named none."""
    result: AuditResult
    status_code: int
    """HTTP status of the response, or 0 outside HTTP."""
    source: str
    """Client address."""
    request_id: str

    def canonical_fields(self) -> list[str | int]:
        """Return the fields in a fixed order, with the time as UTC ISO 8601."""
        return [
            utc_text(self.at),
            self.actor,
            self.role,
            self.org,
            self.action,
            self.object_id,
            self.result,
            self.status_code,
            self.source,
            self.request_id,
        ]


def utc_text(at: datetime) -> str:
    """Format a timezone-aware time as UTC ISO 8601 with microseconds."""
    if at.tzinfo is None:
        raise ValueError("audit time must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class StoredAudit:
    """An audit record as stored: its position in the chain, the entry and its tag."""

    seq: int
    entry: AuditEntry
    tag: bytes


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """The first record at which the chain breaks."""

    seq: int
    kind: Literal["changed", "inserted", "deleted", "head", "checkpoint"]
    message: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Outcome of :meth:`AuditChain.verify`."""

    checked: int
    """Records whose tag verified before the first problem."""
    problem: ChainProblem | None

    @property
    def ok(self) -> bool:
        """True when every record and the chain head verified."""
        return self.problem is None


class AuditChain:
    """Tag and verify audit records with one HMAC-SM3 key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_AUDIT_KEY_BYTES:
            raise ValueError(
                f"audit key has {len(key)} bytes; expected at least {MIN_AUDIT_KEY_BYTES}"
            )
        self._key = key

    def tag(self, previous: bytes, seq: int, entry: AuditEntry) -> bytes:
        """Return the tag of record ``seq`` following a record tagged ``previous``."""
        canonical = json.dumps(
            [seq, *entry.canonical_fields()], ensure_ascii=False, separators=(",", ":")
        )
        mac = hmac.HMAC(self._key, hashes.SM3())
        mac.update(previous + canonical.encode())
        return mac.finalize()

    def mac(self, purpose: bytes, data: bytes) -> bytes:
        """Return HMAC-SM3 of ``purpose``, a zero byte and ``data`` under the chain key.

        The purpose keeps these MACs apart from record tags and from each other.
        """
        mac = hmac.HMAC(self._key, hashes.SM3())
        mac.update(purpose + b"\x00" + data)
        return mac.finalize()

    def verify(
        self,
        records: Iterable[StoredAudit],
        head: tuple[int, bytes],
        next_chain: "NextChain | None" = None,
    ) -> ChainReport:
        """Walk records in sequence order and report the first break, if any.

        A gap in the sequence numbers is a deletion. A record whose tag fails is an
        insertion when the record after it verifies in its place (the forger
        renumbered the later records), else a change. Finally the chain head
        ``(last seq, last tag)`` must match the last record, which finds records
        deleted from or added to the end.

        ``next_chain`` is called with each record whose tag verified. It returns the
        chain that tags the records after it (a key rotation), a problem that stops the
        walk, or None to keep the current chain.
        """
        chain = self
        previous, expected_seq, checked = GENESIS_TAG, 1, 0
        rows = _with_next(iter(records))
        for record, following in rows:
            if record.seq != expected_seq:
                return ChainReport(checked, _gap(expected_seq, record.seq))
            if chain.tag(previous, record.seq, record.entry) != record.tag:
                return ChainReport(checked, chain._classify(previous, record, following))
            previous, expected_seq, checked = record.tag, record.seq + 1, checked + 1
            switched = None if next_chain is None else next_chain(record)
            if isinstance(switched, ChainProblem):
                return ChainReport(checked - 1, switched)
            if switched is not None:
                chain = switched

        head_seq, head_tag = head
        last_seq = expected_seq - 1
        if head_seq != last_seq or head_tag != previous:
            return ChainReport(checked, _head_problem(head_seq, last_seq))
        return ChainReport(checked, None)

    def _classify(
        self, previous: bytes, record: StoredAudit, following: StoredAudit | None
    ) -> ChainProblem:
        if following is not None:
            original_seq = following.seq - 1
            if self.tag(previous, original_seq, following.entry) == following.tag:
                return ChainProblem(
                    record.seq,
                    "inserted",
                    f"record {record.seq} was inserted: the next record verifies"
                    f" as record {original_seq}",
                )
        return ChainProblem(
            record.seq,
            "changed",
            f"record {record.seq} was changed (or added at the end): its tag does not verify",
        )


NextChain = Callable[[StoredAudit], "AuditChain | ChainProblem | None"]
"""Called by :meth:`AuditChain.verify` after each verified record; see there."""


def _with_next(records: Iterator[StoredAudit]) -> Iterator[tuple[StoredAudit, StoredAudit | None]]:
    current = next(records, None)
    while current is not None:
        following = next(records, None)
        yield current, following
        current = following


def _gap(expected_seq: int, found_seq: int) -> ChainProblem:
    if found_seq < expected_seq:
        return ChainProblem(
            found_seq, "inserted", f"record {found_seq} repeats or reorders the sequence"
        )
    return ChainProblem(
        expected_seq,
        "deleted",
        f"records {expected_seq}..{found_seq - 1} were deleted: the sequence jumps to {found_seq}",
    )


def _head_problem(head_seq: int, last_seq: int) -> ChainProblem:
    if head_seq > last_seq:
        return ChainProblem(
            last_seq + 1,
            "deleted",
            f"records {last_seq + 1}..{head_seq} were deleted from the end: the chain head"
            f" is at {head_seq}",
        )
    if head_seq < last_seq:
        return ChainProblem(
            head_seq + 1,
            "inserted",
            f"records {head_seq + 1}..{last_seq} were added after the chain head"
            f" (record {head_seq})",
        )
    return ChainProblem(
        last_seq, "head", f"the chain head tag does not match the tag of record {last_seq}"
    )


@dataclass(frozen=True, slots=True)
class AuditWrite:
    """An entry to append, with the chain key that tags it."""

    entry: AuditEntry
    chain: AuditChain


@runtime_checkable
class AuditLog(Protocol):
    """The operation log of a store: serialised appends and an ordered read for verification."""

    def append_audit(self, write: AuditWrite) -> int:
        """Append one record in its own transaction and return its sequence number.

        Raises AuditWriteError when the record could not be stored.
        """
        ...

    def audit_records(self) -> Iterator[StoredAudit]:
        """Yield every record in sequence order."""
        ...

    def audit_head(self) -> tuple[int, bytes]:
        """Return the chain head: the last sequence number and tag (0 and zeros when empty)."""
        ...
