"""Curation of employer anchors (完善锚点): records and versioned edits.

Station staff make anchors exact and trustworthy. Every edit goes through
:func:`apply_change`, which checks the expected version, validates every field
of the change and returns the new record with one :class:`AnchorVersion`
history entry. Nothing is applied when any field fails. This module is pure
domain logic: the store persists records and versions, and the API maps
:class:`StaleVersionError` to 409, :class:`OutOfScopeError` to 404 and
:class:`AnchorValidationError` to 422.

The validation of one change is in :mod:`geo.anchor_checks`, the single-field
rules in :mod:`geo.anchor_fields`, and the states, their transitions and the
staff scope in :mod:`geo.anchor_states`.

A pin set or confirmed by staff gets precision ``exact``, because a person at
the station has placed it on the employer's site. Verifying an anchor therefore
requires precision ``exact``. Moving the pin of a verified anchor sends it back
to ``pending_review``.
"""

import logging
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime

from geo.anchor_checks import ChangeValidator
from geo.anchor_fields import EnterpriseSize, FieldError, ShuttleStop
from geo.anchor_states import AnchorState, PlacedPoint, StaffScope, ensure_in_scope
from geo.crs import CoordSys
from geo.errors import DoorstepError
from geo.industry import IndustryCatalogue
from geo.location import Precision
from geo.regions import Regions
from geo.zones import DevelopmentZone

logger = logging.getLogger(__name__)

MAX_REASON_CHARS = 500


class StaleVersionError(DoorstepError):
    """The edit was based on an older version of the anchor (the API returns 409)."""

    def __init__(self, anchor_id: str, expected_version: int, current_version: int) -> None:
        super().__init__(
            f"anchor {anchor_id!r} is at version {current_version}, not the expected "
            f"version {expected_version}; reload the anchor and apply the change again"
        )
        self.anchor_id = anchor_id
        self.expected_version = expected_version
        self.current_version = current_version


class AnchorValidationError(DoorstepError, ValueError):
    """Every field error of one change; the change was not applied.

    ``message_zh`` joins the zh-CN messages of the errors for bureau staff.
    """

    def __init__(self, anchor_id: str, errors: Iterable[FieldError]) -> None:
        self.errors = tuple(errors)
        listed = "; ".join(f"{error.field}: {error.message}" for error in self.errors)
        super().__init__(f"change to anchor {anchor_id!r} rejected: {listed}")
        self.anchor_id = anchor_id
        self.message_zh = "；".join(error.message_zh for error in self.errors)


@dataclass(frozen=True, slots=True)
class AnchorRecord:
    """An employer anchor as curated by station staff.

    Points are WGS84 (EPSG:4326, degrees). ``district_code`` is the 6-digit
    code of the district containing the pin, ``zone_key`` the
    :attr:`DevelopmentZone.key` for an anchor managed by a development zone.
    ``contact_role`` names a role (人事部, HR经理), never a person, and
    ``contact_phone`` is an organisation landline or a 400/800 number.
    ``shift_times`` are ``HH:MM-HH:MM`` strings, and an end before the start
    means an overnight shift. ``filed_org`` is the street or community station
    (an organisation id such as ``street:610113001``) whose staff curate the
    anchor; None leaves it to the district.
    """

    anchor_id: str
    name: str
    lon: float
    lat: float
    precision: Precision
    district_code: str | None
    zone_key: str | None
    state: AnchorState
    version: int
    address: str = ""
    entrance_lon: float | None = None
    entrance_lat: float | None = None
    credit_code: str | None = None
    industry_code: str | None = None
    size: EnterpriseSize | None = None
    key_enterprise: bool = False
    above_scale_industrial: bool = False
    contact_role: str | None = None
    contact_phone: str | None = None
    shift_times: tuple[str, ...] = ()
    shuttle_stop: ShuttleStop | None = None
    filed_org: str | None = None


@dataclass(frozen=True, slots=True)
class AnchorChange:
    """The fields a staff member sets in one edit; ``None`` leaves a field unchanged.

    ``lon``/``lat``, ``entrance_lon``/``entrance_lat`` and the shuttle stop's
    point are in ``coord_sys`` (the map picker of the station page sends
    GCJ-02) and are converted to WGS84. ``confirm_pin`` marks the current pin
    as checked on site without moving it. ``clear`` names fields of
    :data:`geo.anchor_checks.CLEARABLE_FIELDS` to empty. ``reactivate`` is the only way out of
    ``retired``.
    """

    name: str | None = None
    lon: float | None = None
    lat: float | None = None
    coord_sys: CoordSys | str = CoordSys.WGS84
    confirm_pin: bool = False
    district_code: str | None = None
    zone_key: str | None = None
    address: str | None = None
    entrance_lon: float | None = None
    entrance_lat: float | None = None
    credit_code: str | None = None
    industry_code: str | None = None
    size: EnterpriseSize | str | None = None
    key_enterprise: bool | None = None
    above_scale_industrial: bool | None = None
    contact_role: str | None = None
    contact_phone: str | None = None
    shift_times: tuple[str, ...] | None = None
    shuttle_stop: ShuttleStop | None = None
    filed_org: str | None = None
    state: AnchorState | str | None = None
    reactivate: bool = False
    clear: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class FieldChange:
    """The old and new value of one field in a history entry."""

    field: str
    old: object
    new: object


@dataclass(frozen=True, slots=True)
class AnchorVersion:
    """One history entry: who changed which fields of an anchor, when and why."""

    anchor_id: str
    version: int
    actor: str
    at: datetime
    reason: str
    changes: tuple[FieldChange, ...]
    state: AnchorState


# --- applying changes ------------------------------------------------------------


def _check_request(actor: str, reason: str, now: datetime) -> list[FieldError]:
    if now.tzinfo is None:
        raise ValueError(f"now {now.isoformat()} has no time zone; pass an aware datetime")
    errors = []
    if not actor.strip():
        errors.append(
            FieldError.of("actor", "actor must name the staff account", rule="missing_actor")
        )
    if not reason.strip():
        errors.append(FieldError.of("reason", "reason must not be empty", rule="text_empty"))
    elif len(reason) > MAX_REASON_CHARS:
        errors.append(
            FieldError.of(
                "reason",
                f"reason has more than {MAX_REASON_CHARS} characters",
                rule="text_too_long",
                max_chars=MAX_REASON_CHARS,
            )
        )
    return errors


def _diff(old: AnchorRecord, new: AnchorRecord) -> tuple[FieldChange, ...]:
    changes = []
    for item in fields(AnchorRecord):
        if item.name == "version":
            continue
        before, after = getattr(old, item.name), getattr(new, item.name)
        both_nan = isinstance(before, float) and isinstance(after, float)
        if both_nan and math.isnan(before) and math.isnan(after):
            continue
        if before != after:
            changes.append(FieldChange(item.name, before, after))
    return tuple(changes)


def _apply(
    record: AnchorRecord,
    change: AnchorChange,
    *,
    actor: str,
    reason: str,
    regions: Regions,
    zones: Iterable[DevelopmentZone],
    industries: IndustryCatalogue,
    now: datetime,
    scope: StaffScope | None,
) -> tuple[AnchorRecord, AnchorVersion]:
    errors = _check_request(actor, reason, now)
    validator = ChangeValidator(record, change, regions, zones, industries, scope=scope)
    values = validator.run()
    errors.extend(validator.errors)
    if errors:
        raise AnchorValidationError(record.anchor_id, errors)

    updated = replace(record, **values, version=record.version + 1)
    if scope is not None and (validator.pin_moved or {"district_code", "filed_org"} & set(values)):
        placed = PlacedPoint(
            updated.lon, updated.lat, updated.district_code, updated.zone_key, updated.filed_org
        )
        ensure_in_scope(placed, scope)

    changes = _diff(record, updated)
    if not changes:
        raise AnchorValidationError(
            record.anchor_id,
            [FieldError.of("change", "the change sets no field to a new value", rule="no_change")],
        )
    entry = AnchorVersion(
        record.anchor_id, updated.version, actor, now, reason.strip(), changes, updated.state
    )
    return updated, entry


def apply_change(
    record: AnchorRecord,
    change: AnchorChange,
    *,
    actor: str,
    reason: str,
    expected_version: int,
    regions: Regions,
    zones: Iterable[DevelopmentZone],
    industries: IndustryCatalogue,
    now: datetime,
    scope: StaffScope | None = None,
) -> tuple[AnchorRecord, AnchorVersion]:
    """Validate a staff edit of an anchor and return the new record and its history entry.

    Parameters
    ----------
    record
        The anchor as stored.
    change
        The fields to set; points in ``change.coord_sys`` degrees.
    actor
        Staff account id, stored in the history entry.
    reason
        Why the edit was made (1 to ``MAX_REASON_CHARS`` characters).
    expected_version
        The version the staff member edited; it must equal ``record.version``.
    regions, zones, industries
        Reference data: districts for the placement rule, development zones for
        ``zone_key`` and GB/T 4754-2017 for ``industry_code``.
    now
        Time of the edit, time-zone aware.
    scope
        When given, both the anchor and its new place must be in scope.

    Returns
    -------
    tuple of AnchorRecord and AnchorVersion
        The record with ``version + 1`` and the history entry listing each
        changed field (old and new value).

    Raises
    ------
    OutOfScopeError
        The anchor, or the point it moves to, is outside ``scope``. Checked
        before the version, so an anchor out of scope reveals nothing.
    StaleVersionError
        ``expected_version`` is not ``record.version``; carries ``current_version``.
    AnchorValidationError
        One entry per broken rule, for instance a bad credit code, an unknown
        industry code, a pin outside the declared district, a mobile number, or
        a state change outside :data:`ALLOWED_TRANSITIONS`. Nothing is applied.
    """
    if scope is not None:
        ensure_in_scope(record, scope)
    if expected_version != record.version:
        raise StaleVersionError(record.anchor_id, expected_version, record.version)

    updated, entry = _apply(
        record,
        change,
        actor=actor,
        reason=reason,
        regions=regions,
        zones=zones,
        industries=industries,
        now=now,
        scope=scope,
    )
    logger.info(
        "anchor %r: version %d by %r, fields %s",
        record.anchor_id,
        entry.version,
        actor,
        [item.field for item in entry.changes],
    )
    return updated, entry


def blank_record(anchor_id: str) -> AnchorRecord:
    """Return the version-0 placeholder that :func:`new_anchor` applies its fields to."""
    return AnchorRecord(
        anchor_id=anchor_id,
        name="",
        lon=math.nan,
        lat=math.nan,
        precision=Precision.CITY,
        district_code=None,
        zone_key=None,
        state=AnchorState.DRAFT,
        version=0,
    )


def new_anchor_id() -> str:
    """Return a fresh id for a staff-added anchor (``anc-`` and 16 hex digits, random)."""
    return f"anc-{uuid.uuid4().hex[:16]}"


def new_anchor(
    name: str,
    lon: float,
    lat: float,
    *,
    actor: str,
    reason: str,
    regions: Regions,
    zones: Iterable[DevelopmentZone],
    industries: IndustryCatalogue,
    now: datetime,
    scope: StaffScope,
    coord_sys: CoordSys | str = CoordSys.WGS84,
    details: AnchorChange | None = None,
    anchor_id: str | None = None,
) -> tuple[AnchorRecord, AnchorVersion]:
    """Create a staff-added anchor in state ``draft`` at version 1.

    Parameters
    ----------
    name
        Employer name.
    lon, lat
        The pin in ``coord_sys`` degrees; it becomes an ``exact`` WGS84 pin.
    actor, reason, regions, zones, industries, now
        As for :func:`apply_change`.
    scope
        The new point (its district, or ``details.zone_key``) must be in scope. Street
        and station staff file the anchor under their own organisation unless
        ``details.filed_org`` names another one of their subtree.
    coord_sys
        System of ``lon``/``lat`` and of any point in ``details``.
    details
        Further fields (district, zone, codes, contacts); its ``name``, pin,
        ``state`` and ``reactivate`` are ignored.
    anchor_id
        Id to use, :func:`new_anchor_id` when None.

    Returns
    -------
    tuple of AnchorRecord and AnchorVersion
        Every field set appears in the history entry with ``old`` None.

    Raises
    ------
    AnchorValidationError, OutOfScopeError
        As :func:`apply_change`.
    """
    blank = blank_record(anchor_id or new_anchor_id())
    details = details or AnchorChange()
    if scope.by_filing and details.filed_org is None:
        details = replace(details, filed_org=scope.filing_org)
    change = replace(
        details,
        name=name,
        lon=lon,
        lat=lat,
        coord_sys=coord_sys,
        state=None,
        reactivate=False,
    )
    record, entry = _apply(
        blank,
        change,
        actor=actor,
        reason=reason,
        regions=regions,
        zones=zones,
        industries=industries,
        now=now,
        scope=scope,
    )

    created = tuple(FieldChange(item.field, None, item.new) for item in entry.changes)
    logger.info("anchor %r created by %r", record.anchor_id, actor)
    return record, replace(entry, changes=created)
