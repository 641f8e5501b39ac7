"""Curation states of employer anchors and the districts and zones a staff member serves.

States (:class:`AnchorState`) move only along :data:`ALLOWED_TRANSITIONS`.
Reactivation rule: a retired anchor accepts no edit unless the change sets
``reactivate=True``. That change moves it back to ``draft`` only, so a
reactivated anchor passes review again before it shows as verified.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from geo.errors import DoorstepError
from geo.regions import Regions
from geo.zones import DevelopmentZone

# geo.curation imports this module, so AnchorRecord is imported for annotations only.
if TYPE_CHECKING:
    from geo.curation import AnchorRecord

logger = logging.getLogger(__name__)


class AnchorState(StrEnum):
    """Curation state of an anchor."""

    DRAFT = "draft"
    PENDING_REVIEW = "pending_review"
    VERIFIED = "verified"
    RETIRED = "retired"
    REJECTED = "rejected"


ALLOWED_TRANSITIONS: dict[AnchorState, frozenset[AnchorState]] = {
    AnchorState.DRAFT: frozenset({AnchorState.PENDING_REVIEW, AnchorState.RETIRED}),
    AnchorState.PENDING_REVIEW: frozenset({AnchorState.VERIFIED, AnchorState.REJECTED}),
    AnchorState.REJECTED: frozenset({AnchorState.DRAFT}),
    AnchorState.VERIFIED: frozenset({AnchorState.RETIRED, AnchorState.PENDING_REVIEW}),
    AnchorState.RETIRED: frozenset(),
}
"""Target states reachable from each state. Retired leaves only by reactivation (to draft)."""

ANCHOR_STATE_LABELS_ZH: dict[AnchorState, str] = {
    AnchorState.DRAFT: "草稿",
    AnchorState.PENDING_REVIEW: "待审核",
    AnchorState.VERIFIED: "已核实",
    AnchorState.RETIRED: "已停用",
    AnchorState.REJECTED: "已驳回",
}


class InvalidTransitionError(DoorstepError, ValueError):
    """A state change that :data:`ALLOWED_TRANSITIONS` does not allow."""

    def __init__(self, current: AnchorState, target: AnchorState) -> None:
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[current])) or "none"
        super().__init__(
            f"state cannot change from {current.value!r} to {target.value!r}; "
            f"allowed targets from {current.value!r}: {allowed}"
        )
        self.current = current
        self.target = target
        self.field = "state"
        self.rule = "invalid_transition"
        self.rule_params: dict[str, object] = {
            "current": ANCHOR_STATE_LABELS_ZH[current],
            "target": ANCHOR_STATE_LABELS_ZH[target],
        }


class OutOfScopeError(DoorstepError, LookupError):
    """An anchor or point outside the caller's districts and zones (the API returns 404)."""


def transition(
    current: AnchorState, target: AnchorState, *, reactivate: bool = False
) -> AnchorState:
    """Check one state change against :data:`ALLOWED_TRANSITIONS` and return the target.

    Parameters
    ----------
    current, target
        The anchor's state and the requested state.
    reactivate
        Allows ``retired`` to ``draft``, the reactivation rule of this module.

    Raises
    ------
    InvalidTransitionError
        If the change is not allowed; it names both states.
    """
    if reactivate and current is AnchorState.RETIRED and target is AnchorState.DRAFT:
        return target
    if target not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransitionError(current, target)
    return target


@dataclass(frozen=True, slots=True)
class StaffScope:
    """The districts (6-digit codes) and development zones (zone keys) a staff member serves.

    Staff of a street or a community station curate only the anchors filed under
    their own organisation subtree: ``filing_org`` is the organisation that their
    new anchors are filed under, and ``filing_orgs`` contains the organisation ids of
    their subtree. Both stay empty for district and city staff, who curate every
    anchor of their districts and zones, filed or not.

    ``filing_district`` returns the district code of a street or station that the
    caller may file an anchor under (one inside their subtree), and None for any
    other organisation id. Without it, no change may set ``filed_org``.
    """

    district_codes: frozenset[str]
    zone_keys: frozenset[str] = frozenset()
    filing_org: str | None = None
    filing_orgs: frozenset[str] = frozenset()
    filing_district: Callable[[str], str | None] | None = None

    @property
    def by_filing(self) -> bool:
        """True for street and station staff, whose scope is the anchors filed under them."""
        return self.filing_org is not None

    @classmethod
    def city_wide(cls, regions: Regions, zones: Iterable[DevelopmentZone] = ()) -> "StaffScope":
        """Build the scope of city bureau staff: every district and every given zone."""
        return cls(frozenset(regions.districts["code"]), frozenset(zone.key for zone in zones))


@dataclass(frozen=True, slots=True)
class PlacedPoint:
    """A WGS84 point (degrees) with its district and the zone and organisation it is filed under."""

    lon: float
    lat: float
    district_code: str | None
    zone_key: str | None = None
    filed_org: str | None = None


def ensure_in_scope(target: "AnchorRecord | PlacedPoint", scope: StaffScope) -> None:
    """Raise unless an anchor or a point lies in the staff member's districts or zones.

    An anchor filed under one of the scope's zones is in scope whatever its
    district, and so is an anchor whose ``district_code`` is one of the
    scope's districts. For street and station staff (:attr:`StaffScope.by_filing`)
    the anchor must also be filed under an organisation of their subtree.

    Raises
    ------
    OutOfScopeError
        Otherwise. The API returns 404, so anchors of other organisations stay invisible.
    """
    in_zone = target.zone_key is not None and target.zone_key in scope.zone_keys
    in_district = target.district_code is not None and target.district_code in scope.district_codes
    filed_here = not scope.by_filing or target.filed_org in scope.filing_orgs
    if (in_zone or in_district) and filed_here:
        return

    if not isinstance(target, PlacedPoint):
        raise OutOfScopeError(f"anchor {target.anchor_id!r} is not in the caller's scope")
    if not filed_here:
        raise OutOfScopeError(
            f"the anchor would be filed under {target.filed_org!r}, outside the caller's "
            f"organisations {sorted(scope.filing_orgs)}"
        )
    raise OutOfScopeError(
        f"point ({target.lon:.5f}, {target.lat:.5f}) in district {target.district_code!r} "
        f"is outside the caller's districts {sorted(scope.district_codes)} "
        f"and zones {sorted(scope.zone_keys)}"
    )
