"""Checkpoints of the audit chain head, kept outside the database.

The chain head lives in the same database as the records, so anyone who can delete
the last records can also rewind the head to the record before them, and
:meth:`store.audit.AuditChain.verify` then accepts a shorter but intact chain. A
checkpoint copies the head (sequence number and tag) to an append-only JSON Lines
file that the database's administrators cannot write, with an HMAC-SM3 under the
audit key. Verification then also requires every checkpointed record to still be
there with the same tag, so records older than the last checkpoint cannot vanish
from the end unnoticed. Records newer than the last checkpoint are protected only
by the head, so checkpoints should be taken often (for example hourly by cron).
"""

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from geo.errors import DoorstepError
from store.audit import AuditChain, ChainProblem, StoredAudit, utc_text

CHECKPOINT_PURPOSE = b"doorstep.audit.checkpoint.v1"


class CheckpointFileError(DoorstepError, ValueError):
    """A checkpoint file line is not a valid checkpoint."""


@dataclass(frozen=True, slots=True)
class AuditCheckpoint:
    """The chain head at one time: last sequence number and tag, with a MAC over both."""

    seq: int
    tag: bytes
    at: datetime
    store: str
    """Description of the store, such as ``SQLite store.sqlite``; part of the MAC."""
    mac: bytes

    def signed_fields(self) -> bytes:
        """Return the canonical bytes that the MAC covers."""
        fields = [self.seq, self.tag.hex(), utc_text(self.at), self.store]
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()

    def to_line(self) -> str:
        """Return the checkpoint as one JSON line, without the newline."""
        return json.dumps(
            {
                "seq": self.seq,
                "tag": self.tag.hex(),
                "at": utc_text(self.at),
                "store": self.store,
                "mac": self.mac.hex(),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )


def make_checkpoint(
    chain: AuditChain, head: tuple[int, bytes], at: datetime, store: str
) -> AuditCheckpoint:
    """Return a signed checkpoint of ``head`` taken at ``at``."""
    seq, tag = head
    unsigned = AuditCheckpoint(seq, tag, at, store, b"")
    return AuditCheckpoint(
        seq, tag, at, store, chain.mac(CHECKPOINT_PURPOSE, unsigned.signed_fields())
    )


def append_checkpoint(path: Path, checkpoint: AuditCheckpoint) -> None:
    """Append ``checkpoint`` to ``path`` and flush it to disk before returning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(checkpoint.to_line() + "\n")
        out.flush()
        os.fsync(out.fileno())


def read_checkpoints(path: Path) -> list[AuditCheckpoint]:
    """Read every checkpoint of ``path``; raise CheckpointFileError naming a bad line."""
    checkpoints = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            checkpoints.append(_parse(line, path, number))
    return checkpoints


def check_checkpoints(
    chain: AuditChain, records: Iterable[StoredAudit], checkpoints: Iterable[AuditCheckpoint]
) -> ChainProblem | None:
    """Return the first checkpoint the records contradict, or None when all agree.

    Call it after :meth:`AuditChain.verify` has passed, because it compares tags only.
    A checkpoint whose MAC fails is reported first: the file itself was changed, so
    none of its checkpoints can be trusted.
    """
    pending: dict[int, AuditCheckpoint] = {}
    for checkpoint in checkpoints:
        expected = chain.mac(CHECKPOINT_PURPOSE, checkpoint.signed_fields())
        if expected != checkpoint.mac:
            return ChainProblem(
                checkpoint.seq,
                "checkpoint",
                f"the checkpoint of {utc_text(checkpoint.at)} does not verify under the audit"
                " key: the checkpoint file was changed",
            )
        if checkpoint.seq > 0:
            pending.setdefault(checkpoint.seq, checkpoint)

    last_seq = 0
    for record in records:
        last_seq = record.seq
        seen = pending.pop(record.seq, None)
        if seen is not None and seen.tag != record.tag:
            return ChainProblem(
                record.seq,
                "changed",
                f"record {record.seq} differs from the checkpoint of {utc_text(seen.at)}:"
                " the chain was rewritten from there on",
            )
    if pending:
        seq = min(pending)
        return ChainProblem(
            last_seq + 1,
            "deleted",
            f"records {last_seq + 1}..{seq} were deleted from the end and the chain head was"
            f" rewound: the checkpoint of {utc_text(pending[seq].at)} saw record {seq}",
        )
    return None


def _parse(line: str, path: Path, number: int) -> AuditCheckpoint:
    try:
        fields = json.loads(line)
        return AuditCheckpoint(
            seq=int(fields["seq"]),
            tag=bytes.fromhex(fields["tag"]),
            at=datetime.fromisoformat(fields["at"]),
            store=str(fields["store"]),
            mac=bytes.fromhex(fields["mac"]),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointFileError(
            f"checkpoint file {path} line {number} is invalid ({err.__class__.__name__});"
            " expected JSON with seq, tag, at, store and mac"
        ) from err
