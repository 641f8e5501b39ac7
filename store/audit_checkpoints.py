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
from collections.abc import Callable, Iterable
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
    key_id: str | None = None
    """Id of the audit key that signed the MAC; None in files written before key rotation."""

    def signed_fields(self) -> bytes:
        """Return the canonical bytes that the MAC covers, the key id included when set."""
        fields: list[str | int] = [self.seq, self.tag.hex(), utc_text(self.at), self.store]
        if self.key_id is not None:
            fields.append(self.key_id)
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()

    def to_line(self) -> str:
        """Return the checkpoint as one JSON line, without the newline."""
        line: dict[str, str | int] = {
            "seq": self.seq,
            "tag": self.tag.hex(),
            "at": utc_text(self.at),
            "store": self.store,
            "mac": self.mac.hex(),
        }
        if self.key_id is not None:
            line["key_id"] = self.key_id
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def make_checkpoint(
    chain: AuditChain,
    head: tuple[int, bytes],
    at: datetime,
    store: str,
    key_id: str | None = None,
) -> AuditCheckpoint:
    """Return a checkpoint of ``head`` taken at ``at``, signed by ``chain``'s key ``key_id``."""
    seq, tag = head
    unsigned = AuditCheckpoint(seq, tag, at, store, b"", key_id)
    return AuditCheckpoint(
        seq, tag, at, store, chain.mac(CHECKPOINT_PURPOSE, unsigned.signed_fields()), key_id
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
    chain: AuditChain | Callable[[str | None], AuditChain],
    records: Iterable[StoredAudit],
    checkpoints: Iterable[AuditCheckpoint],
) -> ChainProblem | None:
    """Return the first checkpoint the records contradict, or None when all agree.

    ``chain`` is the one audit key, or a function from a checkpoint's ``key_id`` to the
    chain of that key (which may raise when the key is not configured).
    Call it after :meth:`AuditChain.verify` has passed, because it compares tags only.
    A checkpoint whose MAC fails is reported first: the file itself was changed, so
    none of its checkpoints can be trusted.
    """
    pending: dict[int, AuditCheckpoint] = {}
    for checkpoint in checkpoints:
        signer = chain if isinstance(chain, AuditChain) else chain(checkpoint.key_id)
        expected = signer.mac(CHECKPOINT_PURPOSE, checkpoint.signed_fields())
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
            key_id=None if fields.get("key_id") is None else str(fields["key_id"]),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointFileError(
            f"checkpoint file {path} line {number} is invalid ({err.__class__.__name__});"
            " expected JSON with seq, tag, at, store and mac"
        ) from err
