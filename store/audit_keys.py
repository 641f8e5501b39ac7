"""Key epochs of the audit chain: rotating the HMAC-SM3 key without breaking the chain.

A rotation appends one record with the action ``audit.key_rotate`` and the object
``audit-key:<old id>><new id>:<fingerprint>``, tagged under the old key like every
record of its epoch. The records after it chain on from its tag under the new key.
The fingerprint is ``HMAC-SM3(new key, purpose || new id)``, so verification can
distinguish a wrong key configured under the new id from a changed record. Because the
rotation record is itself chained and tagged under the old key, nobody without the
old key can insert, move or retarget a rotation.

:func:`verify_epochs` walks the whole chain, switching keys at each rotation record.
It needs every epoch's key and raises :class:`MissingAuditKeyError`, naming the key
id and the records it tags, before it checks any record when one is not configured.
"""

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from geo.errors import DoorstepError
from store.audit import (
    GENESIS_TAG,
    AuditChain,
    AuditEntry,
    ChainProblem,
    ChainReport,
    StoredAudit,
)

KEY_ROTATION_ACTION = "audit.key_rotate"

FINGERPRINT_PURPOSE = b"doorstep.audit.key-fingerprint.v1"

KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")

_ROTATION_OBJECT = re.compile(
    r"audit-key:(?P<old>[A-Za-z0-9_-]{1,32})>(?P<new>[A-Za-z0-9_-]{1,32}):(?P<print>[0-9a-f]{32})"
)


class MissingAuditKeyError(DoorstepError, LookupError):
    """An epoch of the audit chain is tagged under a key id that is not configured."""


class AuditKeyMismatchError(DoorstepError, ValueError):
    """A configured audit key does not match the fingerprint its rotation record holds."""


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """One rotation record: its sequence number, the old and new key ids, the fingerprint."""

    seq: int
    old_id: str
    new_id: str
    fingerprint: str


class AuditKeyring:
    """The audit chain keys by id: the active key, which tags new records, and retired ones."""

    def __init__(self, active_id: str, keys: Mapping[str, bytes]) -> None:
        for key_id in keys:
            if not KEY_ID_PATTERN.fullmatch(key_id):
                raise ValueError(
                    f"audit key id {key_id!r} is invalid; expected 1-32 letters, digits, _ or -"
                )
        if active_id not in keys:
            raise ValueError(f"active audit key id {active_id!r} is not among {sorted(keys)}")
        self.active_id = active_id
        self._chains = {key_id: AuditChain(key) for key_id, key in keys.items()}

    @property
    def active(self) -> AuditChain:
        """The chain of the active key."""
        return self._chains[self.active_id]

    def key_ids(self) -> list[str]:
        """Return the configured key ids, sorted."""
        return sorted(self._chains)

    def chain(self, key_id: str, needed_for: str = "") -> AuditChain:
        """Return the chain of ``key_id``; raise MissingAuditKeyError when it is not held."""
        try:
            return self._chains[key_id]
        except KeyError:
            purpose = f" ({needed_for})" if needed_for else ""
            raise MissingAuditKeyError(
                f"audit key {key_id!r}{purpose} is not configured; configured ids:"
                f" {self.key_ids()}. Set DOORSTEP_AUDIT_RETIRED_KEYS to ID:KEY entries"
                " of the old keys"
            ) from None

    def key_of_first_record(self, record: StoredAudit | None) -> str | None:
        """Return the id of the key under which ``record`` verifies as record 1, or None."""
        if record is None or record.seq != 1:
            return None
        for key_id, chain in sorted(self._chains.items()):
            if chain.tag(GENESIS_TAG, record.seq, record.entry) == record.tag:
                return key_id
        return None

    def fingerprint(self, key_id: str) -> str:
        """Return the 32-hex-digit fingerprint of key ``key_id``."""
        return self.chain(key_id).mac(FINGERPRINT_PURPOSE, key_id.encode())[:16].hex()


def rotation_entry(template: AuditEntry, old_id: str, new_id: str, fingerprint: str) -> AuditEntry:
    """Return ``template`` as the rotation record from key ``old_id`` to ``new_id``."""
    from dataclasses import replace

    return replace(
        template,
        action=KEY_ROTATION_ACTION,
        object_id=f"audit-key:{old_id}>{new_id}:{fingerprint}",
        result="ok",
    )


def rotations(records: Iterable[StoredAudit]) -> list[KeyRotation]:
    """Return the rotation records in sequence order, read without checking any tag."""
    found = []
    for record in records:
        if record.entry.action != KEY_ROTATION_ACTION:
            continue
        match = _ROTATION_OBJECT.fullmatch(record.entry.object_id)
        if match is not None:
            found.append(KeyRotation(record.seq, match["old"], match["new"], match["print"]))
    return found


def first_key_id(keyring: AuditKeyring, found: list[KeyRotation]) -> str:
    """Return the id of the key that tags record 1: the first rotation's old key, else active."""
    return found[0].old_id if found else keyring.active_id


def current_key_id(keyring: AuditKeyring, found: list[KeyRotation]) -> str:
    """Return the id of the key that tags the next record: the last rotation's new key."""
    return found[-1].new_id if found else keyring.active_id


def verify_epochs(
    keyring: AuditKeyring,
    records: Iterable[StoredAudit],
    head: tuple[int, bytes],
    found: list[KeyRotation],
    first_id: str | None = None,
) -> ChainReport:
    """Verify the chain across key epochs; ``found`` is :func:`rotations` of the same records.

    ``first_id`` names the key of record 1 when the chain has no rotation yet and that
    key is not the active one (as just before the first rotation).

    The key of each later epoch is looked up when the walk reaches its rotation record
    and that record's tag has verified, so a changed rotation record is reported as a
    changed record, not as a missing key.

    Raises
    ------
    MissingAuditKeyError
        An epoch's key is not configured.
    AuditKeyMismatchError
        A configured key does not match the fingerprint its rotation record holds.
    """
    records = iter(records)
    record_1 = next(records, None)
    if record_1 is not None:
        records = itertools.chain([record_1], records)
    if found:
        first = found[0].old_id
    elif first_id is not None:
        first = first_id
    else:
        # No rotation record is left: record 1 names its key by the tag it verifies under,
        # so a deleted rotation record shows as a gap, not as a change of record 1.
        first = keyring.key_of_first_record(record_1) or keyring.active_id
    first_end = f"{found[0].seq}" if found else "the head"
    start_chain = keyring.chain(first, f"records 1..{first_end}")
    current = [first]

    def next_chain(record: StoredAudit) -> AuditChain | ChainProblem | None:
        if record.entry.action != KEY_ROTATION_ACTION:
            return None
        match = _ROTATION_OBJECT.fullmatch(record.entry.object_id)
        if match is None or match["old"] != current[0]:
            return ChainProblem(
                record.seq,
                "changed",
                f"record {record.seq} is a key rotation that does not start from the key in"
                f" effect ({current[0]!r})",
            )
        new_id = match["new"]
        chain = keyring.chain(new_id, f"records after the rotation at record {record.seq}")
        if keyring.fingerprint(new_id) != match["print"]:
            raise AuditKeyMismatchError(
                f"audit key {new_id!r} does not match the fingerprint that the rotation at"
                f" record {record.seq} holds; configure the key that was active after it"
            )
        current[0] = new_id
        return chain

    return start_chain.verify(records, head, next_chain)
