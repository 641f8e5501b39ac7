"""Curation of employer anchors (完善锚点): records, versioned edits and their validation.

Station staff make anchors exact and trustworthy. Every edit goes through
:func:`apply_change`, which checks the expected version, validates every field
of the change and returns the new record with one :class:`AnchorVersion`
history entry. Nothing is applied when any field fails. This module is pure
domain logic: the store persists records and versions, and the API maps
:class:`StaleVersionError` to 409, :class:`OutOfScopeError` to 404 and
:class:`AnchorValidationError` to 422.

The single-field rules are in :mod:`geo.anchor_fields`, the states, their
transitions and the staff scope in :mod:`geo.anchor_states`.

A pin set or confirmed by staff gets precision ``exact``, because a person at
the station has placed it on the employer's site. Verifying an anchor therefore
requires precision ``exact``. Moving the pin of a verified anchor sends it back
to ``pending_review``.
"""

import logging
import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from geo.anchor_fields import (
    MAX_ADDRESS_CHARS,
    MAX_NAME_CHARS,
    AnchorFieldError,
    EnterpriseSize,
    FieldError,
    ShuttleStop,
    parse_enterprise_size,
    validate_contact_phone,
    validate_contact_role,
    validate_shift_times,
    validate_text,
)
from geo.anchor_rules import PRECISION_LABELS_ZH
from geo.anchor_states import (
    AnchorState,
    PlacedPoint,
    StaffScope,
    ensure_in_scope,
    transition,
)
from geo.credit_code import validate_credit_code
from geo.crs import CoordSys, haversine_m, validate_and_convert
from geo.errors import DoorstepError
from geo.industry import IndustryCatalogue
from geo.location import Precision
from geo.regions import Regions
from geo.zones import DevelopmentZone

logger = logging.getLogger(__name__)

ENTRANCE_MAX_DISTANCE_M = 1_000.0
"""Maximum distance in metres between an anchor's pin and its entrance point."""

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
    means an overnight shift.
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


CLEARABLE_FIELDS = frozenset(
    {
        "zone_key",
        "entrance",
        "credit_code",
        "industry_code",
        "size",
        "contact_role",
        "contact_phone",
        "shuttle_stop",
    }
)
"""Fields an :class:`AnchorChange` may set back to empty through ``clear``."""


@dataclass(frozen=True, slots=True)
class AnchorChange:
    """The fields a staff member sets in one edit; ``None`` leaves a field unchanged.

    ``lon``/``lat``, ``entrance_lon``/``entrance_lat`` and the shuttle stop's
    point are in ``coord_sys`` (the map picker of the station page sends
    GCJ-02) and are converted to WGS84. ``confirm_pin`` marks the current pin
    as checked on site without moving it. ``clear`` names fields of
    :data:`CLEARABLE_FIELDS` to empty. ``reactivate`` is the only way out of
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


# --- validation of one change ---------------------------------------------------

_INVALID = object()


class _ChangeValidator:
    """Validate every field of one change against a record, collecting all field errors."""

    def __init__(
        self,
        record: AnchorRecord,
        change: AnchorChange,
        regions: Regions,
        zones: Iterable[DevelopmentZone],
        industries: IndustryCatalogue,
    ) -> None:
        self.record = record
        self.change = change
        self.regions = regions
        self.zones = {zone.key: zone for zone in zones}
        self.industries = industries
        self.values: dict[str, Any] = {}
        self.errors: list[FieldError] = []

    def run(self) -> dict[str, Any]:
        """Return the new value of each changed field; ``errors`` lists the failures."""
        self._check_clear()
        self._check_texts()
        self._check_codes()
        self._check_contacts()
        self._check_flags()
        self._check_pin_and_place()
        self._check_entrance()
        self._check_shuttle_stop()
        self._check_state()
        return self.values

    def _attempt(self, field_name: str, check: Callable[[], Any]) -> Any:
        try:
            return check()
        except (DoorstepError, ValueError, LookupError) as err:
            self.errors.append(FieldError.from_exception(field_name, err))
            return _INVALID

    def _set(self, field_name: str, check: Callable[[], Any]) -> None:
        value = self._attempt(field_name, check)
        if value is not _INVALID:
            self.values[field_name] = value

    def _check_clear(self) -> None:
        unknown = sorted(self.change.clear - CLEARABLE_FIELDS)
        if unknown:
            self.errors.append(
                FieldError.of(
                    "clear",
                    f"clear names {unknown}; clearable: {sorted(CLEARABLE_FIELDS)}",
                    rule="unknown_clear_field",
                    names=", ".join(unknown),
                    clearable=", ".join(sorted(CLEARABLE_FIELDS)),
                )
            )
        for name in sorted(self.change.clear & CLEARABLE_FIELDS):
            if name == "entrance":
                self.values.update(entrance_lon=None, entrance_lat=None)
            else:
                self.values[name] = None

    def _set_given(self, field_name: str, parse: Callable[[Any], Any]) -> None:
        """Set ``field_name`` to ``parse`` of the change's value, when the change gives one."""
        value = getattr(self.change, field_name)
        if value is not None:
            self._set(field_name, lambda: parse(value))

    def _check_texts(self) -> None:
        self._set_given(
            "name", lambda name: validate_text(name, field="name", max_chars=MAX_NAME_CHARS)
        )
        self._set_given(
            "address",
            lambda address: validate_text(
                address, field="address", max_chars=MAX_ADDRESS_CHARS, required=False
            ),
        )

    def _check_codes(self) -> None:
        self._set_given("credit_code", validate_credit_code)
        self._set_given("industry_code", lambda code: self.industries.validate(code).code)
        self._set_given("size", parse_enterprise_size)

    def _check_contacts(self) -> None:
        self._set_given("contact_role", validate_contact_role)
        self._set_given("contact_phone", validate_contact_phone)
        self._set_given("shift_times", validate_shift_times)

    def _check_flags(self) -> None:
        self._set_given("key_enterprise", bool)
        self._set_given("above_scale_industrial", bool)

    def _convert_point(self, field_name: str, lon: float, lat: float) -> tuple[float, float] | None:
        point = self._attempt(
            field_name,
            lambda: validate_and_convert(lon, lat, self.change.coord_sys, field=field_name),
        )
        return None if point is _INVALID else point

    @property
    def pin_moved(self) -> bool:
        """True when the change sets a longitude or latitude."""
        return self.change.lon is not None or self.change.lat is not None

    def _check_pin_and_place(self) -> None:
        change = self.change
        if self.pin_moved:
            if change.lon is None or change.lat is None:
                self.errors.append(
                    FieldError.of(
                        "pin", "lon and lat must be given together", rule="point_incomplete"
                    )
                )
                return
            point = self._convert_point("pin", change.lon, change.lat)
            if point is None:
                return
            self.values.update(lon=point[0], lat=point[1], precision=Precision.EXACT)

        if change.confirm_pin:
            if math.isnan(self.record.lon):
                self.errors.append(
                    FieldError.of(
                        "confirm_pin", "the anchor has no pin to confirm", rule="no_pin_to_confirm"
                    )
                )
            else:
                self.values["precision"] = Precision.EXACT

        self._check_zone_and_district()

    def _check_zone_and_district(self) -> None:
        change = self.change
        if change.zone_key is not None and change.zone_key not in self.zones:
            known = ", ".join(self.zones)
            self.errors.append(
                FieldError.of(
                    "zone_key",
                    f"zone_key {change.zone_key!r} is not one of {known}",
                    rule="unknown_zone",
                    value=change.zone_key,
                )
            )
            return
        if change.zone_key is not None:
            self.values["zone_key"] = change.zone_key

        if change.district_code is not None and self.regions.district(change.district_code) is None:
            self.errors.append(
                FieldError.of(
                    "district_code",
                    f"district_code {change.district_code!r} is not a Xi'an district code",
                    rule="unknown_district",
                    value=change.district_code,
                )
            )
            return

        placement_changed = (
            self.pin_moved or change.zone_key is not None or "zone_key" in (change.clear)
        )
        if placement_changed or change.district_code is not None:
            self._check_placement()

    def _check_placement(self) -> None:
        """Check that the pin lies in the declared district, or in a host district of the zone."""
        lon = self.values.get("lon", self.record.lon)
        lat = self.values.get("lat", self.record.lat)
        zone_key = self.values.get("zone_key", self.record.zone_key)
        declared = self.change.district_code or self.record.district_code

        containing = self.regions.district_at(lon, lat)
        if containing is None:
            self.errors.append(
                FieldError.of(
                    "pin",
                    "the point lies in none of the 13 Xi'an districts",
                    rule="outside_city_districts",
                )
            )
            return

        if zone_key is not None:
            zone = self.zones[zone_key]
            if containing.code not in zone.host_district_codes:
                self.errors.append(
                    FieldError.of(
                        "zone_key",
                        f"the point is in {containing.name} ({containing.code}), outside the "
                        f"host districts {list(zone.host_district_codes)} of zone {zone.name}",
                        rule="outside_zone_districts",
                        actual=containing.name,
                        zone=zone.name,
                    )
                )
                return
        elif declared is not None and containing.code != declared:
            district = self.regions.district(declared)
            declared_name = district.name if district is not None else declared
            self.errors.append(
                FieldError.of(
                    "district_code",
                    f"the point is in {containing.name} ({containing.code}), outside the "
                    f"declared district {declared_name} ({declared}); set district_code "
                    "as well if the employer is in another district",
                    rule="outside_district",
                    declared=declared_name,
                    actual=containing.name,
                )
            )
            return
        self.values["district_code"] = containing.code

    def _check_entrance(self) -> None:
        change = self.change
        if change.entrance_lon is None and change.entrance_lat is None:
            return
        if change.entrance_lon is None or change.entrance_lat is None:
            self.errors.append(
                FieldError.of(
                    "entrance",
                    "entrance_lon and entrance_lat must be given together",
                    rule="point_incomplete",
                )
            )
            return

        point = self._convert_point("entrance", change.entrance_lon, change.entrance_lat)
        if point is None:
            return
        pin_lon = self.values.get("lon", self.record.lon)
        pin_lat = self.values.get("lat", self.record.lat)
        distance = float(haversine_m(pin_lon, pin_lat, point[0], point[1]))
        if not distance <= ENTRANCE_MAX_DISTANCE_M:
            self.errors.append(
                FieldError.of(
                    "entrance",
                    f"the entrance is {distance:.0f} m from the pin, "
                    f"maximum {ENTRANCE_MAX_DISTANCE_M:.0f} m",
                    rule="entrance_too_far",
                    distance=f"{distance:.0f}",
                    max_distance=f"{ENTRANCE_MAX_DISTANCE_M:.0f}",
                )
            )
            return
        self.values.update(entrance_lon=point[0], entrance_lat=point[1])

    def _check_shuttle_stop(self) -> None:
        stop = self.change.shuttle_stop
        if stop is None:
            return
        name = self._attempt(
            "shuttle_stop", lambda: validate_text(stop.name, field="shuttle_stop", max_chars=50)
        )
        if (stop.lon is None) != (stop.lat is None):
            self.errors.append(
                FieldError.of(
                    "shuttle_stop", "lon and lat must be given together", rule="point_incomplete"
                )
            )
            return
        point = None
        if stop.lon is not None and stop.lat is not None:
            point = self._convert_point("shuttle_stop", stop.lon, stop.lat)
            if point is None:
                return
        if name is not _INVALID:
            lon, lat = point if point is not None else (None, None)
            self.values["shuttle_stop"] = ShuttleStop(name, lon, lat)

    def _check_state(self) -> None:
        state = self._target_state()
        if state is not None and state is not self.record.state:
            self.values["state"] = state

    def _target_state(self) -> AnchorState | None:
        current = self.record.state
        requested = self._attempt("state", lambda: _parse_state(self.change.state))
        if requested is _INVALID:
            return None

        if current is AnchorState.RETIRED and not self.change.reactivate:
            self.errors.append(
                FieldError.of(
                    "state",
                    "the anchor is retired; set reactivate to edit it",
                    rule="retired_locked",
                )
            )
            return None
        if self.change.reactivate:
            return self._reactivated_state(current, requested)

        if self.pin_moved and current is AnchorState.VERIFIED:
            if requested not in (None, AnchorState.PENDING_REVIEW):
                self.errors.append(
                    FieldError.of(
                        "state",
                        "a verified anchor whose pin moves goes to pending_review",
                        rule="verified_pin_moved",
                    )
                )
            return AnchorState.PENDING_REVIEW

        if requested is None or requested is current:
            return None
        target = self._attempt("state", lambda: transition(current, requested))
        if target is AnchorState.VERIFIED:
            self._check_verifiable()
        return None if target is _INVALID else target

    def _reactivated_state(
        self, current: AnchorState, requested: AnchorState | None
    ) -> AnchorState | None:
        if current is not AnchorState.RETIRED:
            self.errors.append(
                FieldError.of(
                    "reactivate", "only a retired anchor is reactivated", rule="not_retired"
                )
            )
            return None
        if requested not in (None, AnchorState.DRAFT):
            self.errors.append(
                FieldError.of(
                    "state", "a reactivated anchor returns to draft", rule="reactivate_to_draft"
                )
            )
            return None
        return AnchorState.DRAFT

    def _check_verifiable(self) -> None:
        precision = self.values.get("precision", self.record.precision)
        if precision is not Precision.EXACT:
            self.errors.append(
                FieldError.of(
                    "state",
                    f"verifying requires an exact pin, but precision is {precision.value!r}; "
                    "move or confirm the pin first",
                    rule="verify_requires_exact",
                    precision=PRECISION_LABELS_ZH[precision],
                )
            )


def _parse_state(value: AnchorState | str | None) -> AnchorState | None:
    if value is None:
        return None
    try:
        return AnchorState(str(value).strip().lower())
    except ValueError as err:
        expected = ", ".join(state.value for state in AnchorState)
        raise AnchorFieldError(
            "state", f"state {value!r} is not one of {expected}", rule="unknown_state", value=value
        ) from err


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


def check_change(
    record: AnchorRecord,
    change: AnchorChange,
    *,
    regions: Regions,
    zones: Iterable[DevelopmentZone],
    industries: IndustryCatalogue,
) -> list[FieldError]:
    """Validate every field of a change without applying it; an empty list means valid.

    The version, actor, reason and scope are not checked here (see :func:`apply_change`).
    """
    validator = _ChangeValidator(record, change, regions, zones, industries)
    validator.run()
    return validator.errors


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
    validator = _ChangeValidator(record, change, regions, zones, industries)
    values = validator.run()
    errors.extend(validator.errors)
    if errors:
        raise AnchorValidationError(record.anchor_id, errors)

    updated = replace(record, **values, version=record.version + 1)
    if scope is not None and (validator.pin_moved or "district_code" in values):
        ensure_in_scope(
            PlacedPoint(updated.lon, updated.lat, updated.district_code, updated.zone_key), scope
        )

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
        The new point (its district, or ``details.zone_key``) must be in scope.
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
    change = replace(
        details or AnchorChange(),
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
