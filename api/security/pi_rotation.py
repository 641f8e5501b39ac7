"""Re-encryption of every stored seeker under the active SM4 key, in resumable batches,
and recomputation of the blind indexes under a new index key.

Each batch reads up to ``batch_size`` rows that still have an envelope of another
key and encrypts their five envelopes again under the active key. It writes them
in one transaction, each row only if it still has the envelopes that were read.
A crash or an error therefore leaves every row either fully under its
old key or fully under the new one. Running the rotation again picks up the rows
that are left, because the selection is "not yet under the active key", so nothing
is rotated twice and no row is lost. The old key must stay configured
(``DOORSTEP_PI_KEYS``) until a rotation reports 0 rows left.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from api.security.encryption import FieldContext
from api.security.seeker_pi import TABLE, SeekerPiCodec
from geo.errors import DoorstepError
from store.seeker_records import EnvelopeUpdate, SeekerStore

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500

RotationProgress = Callable[[int, int], None]
"""Called as ``progress(rows_rotated, rows_pending_at_start)`` after each batch."""


class RotationStalledError(DoorstepError, RuntimeError):
    """A whole batch was changed by other writers while it was re-encrypted."""


@dataclass(frozen=True, slots=True)
class RotationReport:
    """Outcome of one :func:`rotate_seekers` run."""

    key_id: str
    pending_at_start: int
    rotated: int
    batches: int


def rotate_seekers(
    store: SeekerStore,
    codec: SeekerPiCodec,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: RotationProgress | None = None,
) -> RotationReport:
    """Re-encrypt every seeker row that has an envelope of another key than the active one.

    Raises
    ------
    ValueError
        ``batch_size`` is below 1.
    api.security.encryption.UnknownKeyError
        A row's key is no longer configured; the rows rotated so far stay rotated.
    RotationStalledError
        Every row of a batch changed under the rotation; run it again.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size} is invalid; expected at least 1")
    key_id = codec.active_key_id
    pending = store.count_to_rotate(key_id)
    logger.info("rotating %d seeker rows to key %r in batches of %d", pending, key_id, batch_size)
    rotated = batches = 0
    while rows := store.envelopes_to_rotate(key_id, batch_size):
        updates = [
            EnvelopeUpdate(seeker_id, old, codec.reencrypt(seeker_id, old))
            for seeker_id, old in rows
        ]
        written = store.replace_envelopes(updates)
        if written == 0:
            raise RotationStalledError(
                f"none of {len(updates)} rows from {rows[0][0]!r} could be written, because"
                " other writers changed them; run the rotation again"
            )
        rotated += written
        batches += 1
        if progress is not None:
            progress(rotated, pending)
    logger.info("rotated %d seeker rows to key %r in %d batches", rotated, key_id, batches)
    return RotationReport(key_id, pending, rotated, batches)


def reindex_seekers(
    store: SeekerStore,
    codec: SeekerPiCodec,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: RotationProgress | None = None,
) -> int:
    """Recompute every seeker's blind indexes under the codec's index key; return rows written.

    Each batch decrypts the ID numbers and mobiles of ``batch_size`` rows in
    ``seeker_id`` order and writes their new indexes in one transaction. The
    result of a row depends only on its values and the key, so running the
    command again after a crash writes the same indexes and completes the rest.
    NOTE: until it completes, lookups with the new key miss the rows not yet
    written, and the old key no longer finds the rows already written.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size} is invalid; expected at least 1")
    total = store.count_seekers()
    written = 0
    after = ""
    while rows := store.index_sources(after, batch_size):
        indexes = []
        for seeker_id, id_envelope, mobile_envelope in rows:
            id_number = codec.cipher.decrypt(
                id_envelope, FieldContext(TABLE, "id_number_enc", seeker_id)
            )
            mobile = codec.cipher.decrypt(
                mobile_envelope, FieldContext(TABLE, "mobile_enc", seeker_id)
            )
            indexes.append(
                (
                    seeker_id,
                    codec.index.digest("id_number", id_number),
                    codec.index.digest("mobile", mobile),
                )
            )
        written += store.replace_indexes(indexes)
        after = rows[-1][0]
        if progress is not None:
            progress(written, total)
    logger.info("recomputed the blind indexes of %d seeker rows", written)
    return written
