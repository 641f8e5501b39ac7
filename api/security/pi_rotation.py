"""Re-encryption of every stored seeker, account, assistance category and WeChat openid
under the active SM4 key, in resumable batches, and recomputation of the seekers' blind
indexes under a new index key.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from api.security.blind_index import BlindIndex
from api.security.encryption import FieldCipher, FieldContext
from api.security.seeker_pi import TABLE, SeekerPiCodec
from api.security.validation import normalise_mobile
from geo.errors import DoorstepError
from store.envelope_column import EnvelopeColumn
from store.identity import ACCOUNT_ENVELOPE_COLUMNS, AccountEnvelopeUpdate, IdentityStore
from store.seeker_records import EnvelopeUpdate, SeekerStore

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500

ACCOUNTS_TABLE = "accounts"
"""Table name bound into the account envelopes' associated data, as the identity service does."""

_Envelopes = TypeVar("_Envelopes", bound=tuple[Any, ...])
_Update = TypeVar("_Update")

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
    api.security.encryption.DecryptionError
        A row does not decrypt under the key its envelope names (a wrong key).
    RotationStalledError
        Every row of a batch changed under the rotation; run it again.
    """

    def reencrypt(rows: list[tuple[str, tuple[str, ...]]]) -> list[EnvelopeUpdate]:
        return [
            EnvelopeUpdate(seeker_id, old, codec.reencrypt(seeker_id, old))
            for seeker_id, old in rows
        ]

    return _rotate_in_batches(
        "seeker",
        codec.active_key_id,
        count=store.count_to_rotate,
        fetch=store.envelopes_to_rotate,
        reencrypt=reencrypt,
        write=store.replace_envelopes,
        batch_size=batch_size,
        progress=progress,
    )


def rotate_accounts(
    store: IdentityStore,
    cipher: FieldCipher,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: RotationProgress | None = None,
) -> RotationReport:
    """Re-encrypt the name, mobile and TOTP secret of every staff and seeker account.

    Works like :func:`rotate_seekers`, on ``accounts.name_enc``, ``mobile_enc`` and
    ``totp_secret_enc`` (NULL for SMS accounts, and left NULL), and raises the same errors.
    """

    def reencrypt(rows: list[tuple[str, tuple[str | None, ...]]]) -> list[AccountEnvelopeUpdate]:
        updates = []
        for account_id, old in rows:
            new: list[str | None] = []
            for column, envelope in zip(ACCOUNT_ENVELOPE_COLUMNS, old, strict=True):
                if envelope is None:
                    new.append(None)
                    continue
                context = FieldContext(ACCOUNTS_TABLE, column, account_id)
                new.append(cipher.encrypt(cipher.decrypt(envelope, context), context))
            updates.append(AccountEnvelopeUpdate(account_id, old, tuple(new)))
        return updates

    return _rotate_in_batches(
        "account",
        cipher.provider.active_key_id(),
        count=store.count_account_envelopes_to_rotate,
        fetch=store.account_envelopes_to_rotate,
        reencrypt=reencrypt,
        write=store.replace_account_envelopes,
        batch_size=batch_size,
        progress=progress,
    )


def rotate_envelope_column(
    column: EnvelopeColumn,
    cipher: FieldCipher,
    *,
    count: Callable[[str], int],
    fetch: Callable[[str, int], list[tuple[str, tuple[str]]]],
    write: Callable[[Sequence[EnvelopeUpdate]], int],
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: RotationProgress | None = None,
) -> RotationReport:
    """Re-encrypt one envelope column keyed by seeker id, such as the assistance category.

    ``count``, ``fetch`` and ``write`` are the owning store's queries for ``column``.
    Works like :func:`rotate_seekers` and raises the same errors.
    """

    def reencrypt(rows: list[tuple[str, tuple[str]]]) -> list[EnvelopeUpdate]:
        updates = []
        for seeker_id, (old,) in rows:
            context = FieldContext(column.table, column.column, seeker_id)
            new = cipher.encrypt(cipher.decrypt(old, context), context)
            updates.append(EnvelopeUpdate(seeker_id, (old,), (new,)))
        return updates

    return _rotate_in_batches(
        column.table,
        cipher.provider.active_key_id(),
        count=count,
        fetch=fetch,
        reencrypt=reencrypt,
        write=write,
        batch_size=batch_size,
        progress=progress,
    )


def _rotate_in_batches(
    kind: str,
    key_id: str,
    *,
    count: Callable[[str], int],
    fetch: Callable[[str, int], list[tuple[str, _Envelopes]]],
    reencrypt: Callable[[list[tuple[str, _Envelopes]]], list[_Update]],
    write: Callable[[list[_Update]], int],
    batch_size: int,
    progress: RotationProgress | None,
) -> RotationReport:
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size} is invalid; expected at least 1")
    pending = count(key_id)
    logger.info("rotating %d %s rows to key %r in batches of %d", pending, kind, key_id, batch_size)
    rotated = batches = 0
    while rows := fetch(key_id, batch_size):
        written = write(reencrypt(rows))
        if written == 0:
            raise RotationStalledError(
                f"none of {len(rows)} {kind} rows from {rows[0][0]!r} could be written, because"
                " other writers changed them; run the rotation again"
            )
        rotated += written
        batches += 1
        if progress is not None:
            progress(rotated, pending)
    logger.info("rotated %d %s rows to key %r in %d batches", rotated, kind, key_id, batches)
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


def reindex_accounts(
    store: IdentityStore,
    cipher: FieldCipher,
    index: BlindIndex,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Recompute every account's mobile blind index under ``index``; return rows written.

    Staff SMS login and the seeker account link look accounts up by this index, so it
    must follow the seekers' indexes to a new key. Works like :func:`reindex_seekers`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size} is invalid; expected at least 1")
    written = 0
    after = ""
    while rows := store.account_mobiles(after, batch_size):
        indexes = []
        for account_id, envelope in rows:
            context = FieldContext(ACCOUNTS_TABLE, "mobile_enc", account_id)
            mobile = normalise_mobile(cipher.decrypt(envelope, context))
            indexes.append((account_id, index.digest("mobile", mobile)))
        written += store.replace_mobile_indexes(indexes)
        after = rows[-1][0]
    logger.info("recomputed the mobile blind indexes of %d accounts", written)
    return written
