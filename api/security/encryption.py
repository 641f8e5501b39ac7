"""SM4-GCM encryption of personal fields at rest, behind a key-provider interface.

A stored value is a text envelope ``pi1.<key_id>.<payload>``: ``pi1`` is the
envelope version, ``key_id`` names the SM4 key in the provider, and the payload
is the unpadded base64url of a fresh 96-bit nonce, the ciphertext and the
128-bit GCM tag. The associated data binds the value to its table, column and
row id, and to the version and key id, so a ciphertext copied to another row or
column, or relabelled with another key id, fails to decrypt.
"""

import base64
import json
import os
import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from geo.errors import DoorstepError

ENVELOPE_VERSION = "pi1"
SM4_KEY_BYTES = 16
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")


class UnknownKeyError(DoorstepError, LookupError):
    """An envelope names a key id that is not configured in the key provider."""


class DecryptionError(DoorstepError, ValueError):
    """An envelope is malformed, or its tag does not verify for its key and associated data."""


@dataclass(frozen=True, slots=True)
class FieldContext:
    """Storage location of an encrypted value, bound to the ciphertext as associated data."""

    table: str
    column: str
    row_id: str

    def describe(self) -> str:
        """Return ``table.column`` of row ``row_id`` for error messages."""
        return f"{self.table}.{self.column} of row {self.row_id!r}"


@runtime_checkable
class KeyProvider(Protocol):
    """Source of the SM4 data keys and the blind-index key.

    A software provider reads them from settings; a hardware security module
    or a key management service can implement the same three methods.
    """

    def active_key_id(self) -> str:
        """Return the id of the key that encrypts new values."""
        ...

    def encryption_key(self, key_id: str) -> bytes:
        """Return the 16-byte SM4 key ``key_id``; raise UnknownKeyError when it is not held."""
        ...

    def index_key(self) -> bytes:
        """Return the HMAC-SM3 key of the blind index."""
        ...


class SoftwareKeyProvider:
    """Keys held in process memory, as read from settings or the development key file."""

    def __init__(self, keys: dict[str, bytes], active: str, index_key: bytes) -> None:
        for key_id, key in keys.items():
            if not KEY_ID_PATTERN.fullmatch(key_id):
                raise ValueError(
                    f"key id {key_id!r} is invalid; expected 1-32 letters, digits, _ or -"
                )
            if len(key) != SM4_KEY_BYTES:
                raise ValueError(
                    f"SM4 key {key_id!r} has {len(key)} bytes; expected {SM4_KEY_BYTES}"
                )
        if active not in keys:
            raise ValueError(f"active key id {active!r} is not among the keys {sorted(keys)}")
        self._keys = dict(keys)
        self._active = active
        self._index_key = index_key

    def active_key_id(self) -> str:
        """Return the id of the key that encrypts new values."""
        return self._active

    def key_ids(self) -> list[str]:
        """Return the ids of the held keys, sorted."""
        return sorted(self._keys)

    def encryption_key(self, key_id: str) -> bytes:
        """Return the SM4 key ``key_id``; raise UnknownKeyError when it is not held."""
        try:
            return self._keys[key_id]
        except KeyError:
            raise UnknownKeyError(
                f"SM4 key {key_id!r} is not configured; known key ids: {sorted(self._keys)}"
            ) from None

    def index_key(self) -> bytes:
        """Return the HMAC-SM3 key of the blind index."""
        return self._index_key


class FieldCipher:
    """Encrypt and decrypt personal field values with SM4-GCM through a key provider."""

    def __init__(self, provider: KeyProvider) -> None:
        self.provider = provider

    def encrypt(self, plaintext: str, context: FieldContext) -> str:
        """Encrypt ``plaintext`` with the active key and a fresh nonce; return the envelope."""
        key_id = self.provider.active_key_id()
        nonce = os.urandom(NONCE_BYTES)
        encryptor = Cipher(
            algorithms.SM4(self.provider.encryption_key(key_id)), modes.GCM(nonce)
        ).encryptor()
        encryptor.authenticate_additional_data(_associated_data(key_id, context))
        ciphertext = encryptor.update(plaintext.encode()) + encryptor.finalize()
        payload = base64.urlsafe_b64encode(nonce + ciphertext + encryptor.tag).rstrip(b"=")
        return f"{ENVELOPE_VERSION}.{key_id}.{payload.decode()}"

    def decrypt(self, envelope: str, context: FieldContext) -> str:
        """Return the plaintext of an envelope stored at ``context``.

        Raises
        ------
        DecryptionError
            The envelope is malformed, or was changed, moved to another row or
            column, or relabelled with another key id.
        UnknownKeyError
            The envelope's key id is not held by the provider.
        """
        key_id, blob = _split_envelope(envelope, context)
        nonce, ciphertext, tag = blob[:NONCE_BYTES], blob[NONCE_BYTES:-TAG_BYTES], blob[-TAG_BYTES:]
        decryptor = Cipher(
            algorithms.SM4(self.provider.encryption_key(key_id)), modes.GCM(nonce, tag)
        ).decryptor()
        decryptor.authenticate_additional_data(_associated_data(key_id, context))
        try:
            plaintext = decryptor.update(ciphertext) + decryptor.finalize()
        except InvalidTag as err:
            raise DecryptionError(
                f"{context.describe()} failed authentication under key {key_id!r}:"
                " the value was changed or belongs to another row or column"
            ) from err
        return plaintext.decode()

    def needs_rotation(self, envelope: str) -> bool:
        """Return whether an envelope was encrypted with another key than the active one."""
        _, key_id, _ = envelope.split(".", 2)
        return key_id != self.provider.active_key_id()


def _associated_data(key_id: str, context: FieldContext) -> bytes:
    # A JSON array keeps the parts apart, so no two contexts give the same bytes.
    parts = [ENVELOPE_VERSION, key_id, context.table, context.column, context.row_id]
    return json.dumps(parts, ensure_ascii=False).encode()


def _split_envelope(envelope: str, context: FieldContext) -> tuple[str, bytes]:
    version, _, rest = envelope.partition(".")
    key_id, _, payload = rest.partition(".")
    if version != ENVELOPE_VERSION or not KEY_ID_PATTERN.fullmatch(key_id) or not payload:
        raise DecryptionError(
            f"{context.describe()} is not a {ENVELOPE_VERSION}.<key_id>.<payload> envelope"
        )
    try:
        blob = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except ValueError as err:
        raise DecryptionError(f"{context.describe()} has a payload that is not base64url") from err
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError(f"{context.describe()} has a payload shorter than nonce and tag")
    return key_id, blob
