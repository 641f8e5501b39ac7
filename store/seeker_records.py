"""Seekers' personal fields at rest: envelope and blind-index columns, and the store interface.

A stored seeker row keeps its name, mobile, ID number, hardship category and exact
home (point, compound name, campus) only as SM4-GCM envelopes (``*_enc`` columns,
``pi1.<key_id>.<payload>``, see :mod:`api.security.encryption`), plus HMAC-SM3 blind
indexes of the ID number and the mobile for exact-match lookup. In plaintext it
keeps what matching and scoping need at a coarse level: the home's district, street
and community codes, and ``home_lon``/``home_lat``, which hold the street office
point (WGS84 degrees), not the home.

The store layer never sees a key: the API layer encrypts before a write and
decrypts after a read. Both stores refuse a seekers frame that still carries a
plaintext personal column.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from geo.errors import DoorstepError
from store.audit import AuditWrite

ENVELOPE_COLUMNS = ("name_enc", "mobile_enc", "id_number_enc", "hardship_enc", "home_enc")
"""Columns holding one SM4-GCM envelope each, in this order everywhere."""

INDEX_COLUMNS = ("id_number_index", "mobile_index")
"""Blind-index columns: 64 hex characters of HMAC-SM3, unique per store."""

PLAINTEXT_COLUMNS = (
    "name", "mobile", "id_number", "sex", "birth_date", "age", "hardship_category",
    "home_label", "university", "home_area_lon", "home_area_lat",
)  # fmt: skip
"""Columns of the simulation that must never reach a store in plaintext."""


class PlaintextPersonalDataError(DoorstepError, ValueError):
    """A seekers frame with plaintext personal columns, or without its envelopes, was written."""


class SeekerNotStoredError(DoorstepError, LookupError):
    """No stored seeker has the requested id."""


@dataclass(frozen=True, slots=True)
class EnvelopeUpdate:
    """New envelopes of one seeker row, written only if the row still has the old ones."""

    seeker_id: str
    old: tuple[str, ...]
    """The row's envelopes as read, in :data:`ENVELOPE_COLUMNS` order."""
    new: tuple[str, ...]


def check_protected(seekers: pd.DataFrame) -> None:
    """Raise PlaintextPersonalDataError unless ``seekers`` is in its stored (encrypted) form.

    A frame without any home column (``home_lon``) holds no personal field, so it
    needs no envelopes; tests and benchmarks write such frames.
    """
    plaintext = [column for column in PLAINTEXT_COLUMNS if column in seekers.columns]
    if plaintext:
        raise PlaintextPersonalDataError(
            f"seekers frame has plaintext personal column(s) {plaintext}; encrypt it with"
            " api.security.seeker_pi.SeekerPiCodec.protect before writing it"
        )
    missing = [c for c in (*ENVELOPE_COLUMNS, *INDEX_COLUMNS) if c not in seekers.columns]
    if missing and "home_lon" in seekers.columns:
        raise PlaintextPersonalDataError(
            f"seekers frame lacks the envelope or index column(s) {missing}; encrypt it with"
            " api.security.seeker_pi.SeekerPiCodec.protect before writing it"
        )


@runtime_checkable
class SeekerStore(Protocol):
    """Reads, lookups, deletion and key rotation of stored seeker rows."""

    def seeker_record(self, seeker_id: str) -> dict[str, Any] | None:
        """Return one stored seeker row (envelopes, not plaintext), or None when unknown."""
        ...

    def seeker_id_by_index(self, column: str, digest: str) -> str | None:
        """Return the id of the seeker whose blind index ``column`` is ``digest``, or None."""
        ...

    def delete_seeker(self, seeker_id: str, *, audit: AuditWrite | None = None) -> bool:
        """Delete one seeker row; return False when it was already gone.

        ``audit`` is appended in the same transaction, also when nothing was deleted.
        """
        ...

    def envelopes_to_rotate(self, key_id: str, limit: int) -> list[tuple[str, tuple[str, ...]]]:
        """Return up to ``limit`` (seeker_id, envelopes) rows with an envelope of another key.

        Rows come in ``seeker_id`` order.
        """
        ...

    def count_to_rotate(self, key_id: str) -> int:
        """Return the number of rows with an envelope of another key than ``key_id``."""
        ...

    def replace_envelopes(self, updates: Sequence[EnvelopeUpdate]) -> int:
        """Write every update whose row still has its old envelopes, in one transaction.

        Returns the number of rows written; rows changed or deleted meanwhile are skipped.
        """
        ...

    def index_sources(self, after: str, limit: int) -> list[tuple[str, str, str]]:
        """Return up to ``limit`` (seeker_id, id_number_enc, mobile_enc) rows after ``after``.

        Rows come in ``seeker_id`` order; ``after=""`` starts at the first row.
        """
        ...

    def replace_indexes(self, indexes: Sequence[tuple[str, str, str]]) -> int:
        """Set (seeker_id, id_number_index, mobile_index) of each row, in one transaction.

        Returns the number of rows written; deleted rows are skipped.
        """
        ...

    def count_seekers(self) -> int:
        """Return the number of stored seekers."""
        ...
