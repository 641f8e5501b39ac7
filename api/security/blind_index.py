"""Blind index: HMAC-SM3 of a normalised personal value, for exact-match lookup.

The index key is separate from the SM4 data keys. Each kind of value is
normalised first (an ID number to its 18-character form, a mobile number to
11 digits), so every spelling of one number gives the same index entry. The
kind is part of the message, so equal text of two kinds gives two entries.
"""

from cryptography.hazmat.primitives import hashes, hmac

from api.security.validation import normalise_mobile, parse_id_number

MIN_INDEX_KEY_BYTES = 32


class BlindIndex:
    """Compute blind-index entries (64 hex characters) with one HMAC-SM3 key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_INDEX_KEY_BYTES:
            raise ValueError(
                f"blind-index key has {len(key)} bytes; expected at least {MIN_INDEX_KEY_BYTES}"
            )
        self._key = key

    def digest(self, kind: str, normalised: str) -> str:
        """Return the entry of an already normalised value of ``kind``."""
        mac = hmac.HMAC(self._key, hashes.SM3())
        mac.update(kind.encode() + b"\x00" + normalised.encode())
        return mac.finalize().hex()

    def id_number(self, raw: str) -> str:
        """Return the entry of a resident ID number; raise PersonalFieldError when invalid."""
        return self.digest("id_number", parse_id_number(raw).value)

    def mobile(self, raw: str) -> str:
        """Return the entry of a mobile number; raise PersonalFieldError when invalid."""
        return self.digest("mobile", normalise_mobile(raw))
