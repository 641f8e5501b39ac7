"""The interfaces that both stores implement: SQLite (embedded) and PostgreSQL.

The service, the recommender and the command line depend on :class:`ReadStore`,
and anchor curation on :class:`CurationStore`, so the store behind them is a
setting. Both implementations pass the contract suite in
``tests/store/test_contract.py``.
"""

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import geopandas as gpd
import pandas as pd

from geo.anchor_states import AnchorState, StaffScope
from geo.curation import AnchorRecord, AnchorVersion
from geo.duplicates import MergePlan
from geo.errors import DoorstepError
from store.anchor_map import NO_FLAG_FILTER, FlagFilter, MapLabels
from store.audit import AuditLog, AuditWrite

if TYPE_CHECKING:
    from store.push_outbox import PushBatch

logger = logging.getLogger(__name__)


class AnchorNotFoundError(DoorstepError, LookupError):
    """No stored anchor has the requested id."""


class PostingNotFoundError(DoorstepError, LookupError):
    """No stored posting has the requested id."""


class DuplicateAnchorError(DoorstepError, ValueError):
    """A write would store a second anchor with the same id or credit code; nothing was written."""


IDEMPOTENCY_KEY_TTL = timedelta(hours=24)
"""Time after which a stored idempotency key is ignored and may be used for a new anchor."""


class IdempotencyKeyConflictError(DoorstepError, ValueError):
    """An idempotency key of a staff member was stored for another request body."""


@dataclass(frozen=True, slots=True)
class KeyedInsert:
    """Outcome of :meth:`CurationStore.insert_anchor_once`."""

    anchor_id: str
    """The anchor stored under the key: the new one, or the one an earlier request created."""
    replayed: bool
    """True when the key was already stored, so nothing was written."""


def replayed_insert(
    staff_id: str, key: str, body_hash: str, stored_hash: str, anchor_id: str
) -> KeyedInsert:
    """Return the replay of a stored idempotency key, or raise if its body hash differs.

    Raises
    ------
    IdempotencyKeyConflictError
        ``stored_hash`` is not ``body_hash``: the key was used for another request body.
    """
    if stored_hash != body_hash:
        raise IdempotencyKeyConflictError(
            f"idempotency key {key!r} of {staff_id!r} was stored for another request body;"
            " nothing was written, send a new key for a new anchor"
        )
    logger.info("idempotency key %r of %r replays anchor %r", key, staff_id, anchor_id)
    return KeyedInsert(anchor_id, replayed=True)


@runtime_checkable
class ReadStore(Protocol):
    """Read access to the postings, anchors, seekers, map layers and build metadata."""

    def describe(self) -> str:
        """Return a one-line description of the store for logs, without any secret."""
        ...

    def meta(self) -> dict[str, Any]:
        """Return the build metadata (counts, reports, timings) stored with the data."""
        ...

    def postings_frame(self) -> pd.DataFrame:
        """Return active postings joined with their anchor's point, precision and district."""
        ...

    def seekers_frame(self) -> pd.DataFrame:
        """Return every seeker, with a boolean ``simulated`` column."""
        ...

    def anchors_in_bbox(
        self,
        bbox: tuple[float, float, float, float],
        limit: int,
        exclude_precisions: Collection[str] = (),
    ) -> pd.DataFrame:
        """Return up to ``limit`` anchors inside a WGS84 bbox (min_lon, min_lat, max_lon, max_lat).

        Rows are ordered by ``n_postings`` descending, then ``anchor_id``.
        """
        ...

    def anchor_map(
        self,
        bbox: tuple[float, float, float, float],
        max_features: int,
        labels: MapLabels,
        exclude_precisions: Collection[str] = (),
        flags: FlagFilter = NO_FLAG_FILTER,
    ) -> bytes:
        """Return the anchors inside a WGS84 bbox as the map's GeoJSON body, UTF-8 encoded.

        At most ``max_features`` anchors come as single features, most postings first.
        The order of anchors with equal ``n_postings`` is not specified. Above that, as
        at most ``max_features`` grid clusters. Only anchors that pass ``flags`` count.
        The body is described in :mod:`store.anchor_map`.
        """
        ...

    def anchors_frame(self) -> pd.DataFrame:
        """Return every anchor."""
        ...

    def layer_infos(self) -> list[dict[str, str]]:
        """Return the metadata of every map layer, in name order."""
        ...

    def layer_frame(self, name: str) -> gpd.GeoDataFrame:
        """Return one map layer as a WGS84 GeoDataFrame; raise LayerNotFoundError when unknown."""
        ...


@runtime_checkable
class CurationStore(Protocol):
    """Versioned writes of curated employer anchors and their history.

    Every write runs in one transaction and writes all of its rows or none.
    A write given ``audit`` appends that record to the operation log
    (:mod:`store.audit`) in the same transaction, so it is stored only if the
    record is; a failed append raises ``AuditWriteError`` and writes nothing.
    Records and history entries come from :mod:`geo.curation`,
    :mod:`geo.duplicates` and :mod:`geo.anchor_import`, which apply the rules.
    """

    def get_anchor(self, anchor_id: str) -> AnchorRecord | None:
        """Return the stored record of one anchor, or None when the id is unknown."""
        ...

    def anchors_for_scope(
        self,
        scope: StaffScope,
        *,
        state: AnchorState | None = None,
        name_contains: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AnchorRecord]:
        """Return anchors in the scope's districts or zones, optionally in one state.

        ``name_contains`` keeps anchors whose name contains it (case-sensitive).
        Records are ordered by ``anchor_id`` in byte order and paged by ``limit`` and ``offset``.
        """
        ...

    def count_for_scope(
        self,
        scope: StaffScope,
        *,
        state: AnchorState | None = None,
        name_contains: str | None = None,
    ) -> int:
        """Count the anchors that :meth:`anchors_for_scope` pages through."""
        ...

    def posting_counts(self, anchor_ids: Collection[str]) -> dict[str, int]:
        """Return the number of postings on each stored anchor of ``anchor_ids``."""
        ...

    def enterprise_flags(self, anchor_ids: Collection[str]) -> dict[str, tuple[bool, bool]]:
        """Return (key_enterprise, above_scale_industrial) of each stored anchor in ``anchor_ids``.

        Unknown ids are left out. The flags are 重点企业 and 规上工业企业.
        """
        ...

    def save_anchor_change(
        self,
        record: AnchorRecord,
        version: AnchorVersion,
        *,
        expected_version: int,
        audit: AuditWrite | None = None,
        pushes: "PushBatch | None" = None,
    ) -> None:
        """Store an edited record and its history entry if the anchor is at ``expected_version``.

        ``pushes`` are written in the same transaction (:mod:`store.push_outbox`).
        Raises ``StaleVersionError`` with the current version when another edit came first.
        """
        ...

    def posting_for_push(self, posting_id: str) -> dict[str, Any] | None:
        """Return one posting, active or not, joined with its anchor's point and precision."""
        ...

    def set_posting_active(
        self,
        posting_id: str,
        active: bool,
        *,
        audit: AuditWrite | None = None,
        pushes: "PushBatch | None" = None,
    ) -> bool:
        """Set whether a posting is active, writing ``pushes`` in the same transaction.

        Returns False when the posting already was in that state (then nothing is
        written). Raises ``PostingNotFoundError`` for an unknown posting.
        """
        ...

    def insert_anchor(
        self, record: AnchorRecord, version: AnchorVersion, *, audit: AuditWrite | None = None
    ) -> None:
        """Store a staff-added anchor (version 1) and its creation entry."""
        ...

    def insert_anchor_once(
        self,
        record: AnchorRecord,
        version: AnchorVersion,
        *,
        staff_id: str,
        key: str,
        body_hash: str,
        audit: AuditWrite | None = None,
    ) -> KeyedInsert:
        """Store a staff-added anchor under an idempotency key, or find the anchor of that key.

        The anchor, its creation entry and the key row are written in one
        transaction. When ``(staff_id, key)`` is stored with ``body_hash`` and is
        younger than :data:`IDEMPOTENCY_KEY_TTL` at ``version.at``, nothing is
        written and the stored anchor id is returned. Of concurrent calls with one
        key, exactly one writes an anchor.

        Raises ``IdempotencyKeyConflictError`` when the key is stored with another
        body hash, and ``DuplicateAnchorError`` as :meth:`insert_anchor` does.
        """
        ...

    def anchor_history(self, anchor_id: str) -> list[AnchorVersion]:
        """Return the history entries of one anchor, oldest first."""
        ...

    def apply_merge(
        self,
        plan: MergePlan,
        *,
        expected_versions: Mapping[str, int],
        audit: AuditWrite | None = None,
    ) -> int:
        """Retire the merged anchors, move their postings to the survivor; return postings moved."""
        ...

    def apply_import(
        self,
        created: Sequence[tuple[AnchorRecord, AnchorVersion]],
        *,
        audit: AuditWrite | None = None,
    ) -> int:
        """Store every imported anchor with its creation entry, or none; return the count."""
        ...

    def precision_state_counts(self, by: str = "district") -> pd.DataFrame:
        """Count anchors by district (or zone), precision and state.

        Columns ``district_code`` (``zone_key`` when ``by="zone"``), ``precision``,
        ``state`` and ``n``.
        """
        ...


@runtime_checkable
class Store(ReadStore, CurationStore, AuditLog, Protocol):
    """A store the service runs on: built data to read, anchors to curate, the operation log."""
