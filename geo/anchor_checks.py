"""Validation of one staff change to an employer anchor, field by field and across fields.

:class:`ChangeValidator` checks every field an :class:`geo.curation.AnchorChange`
sets against the stored record and collects all failures. It applies the
single-field rules of :mod:`geo.anchor_fields` and the rules that need more
than one field or reference data: a pin inside its district or its zone's host
districts, the entrance near the pin, and state transitions. Applying a valid
change and recording its history happen in :mod:`geo.curation`.
"""

import logging
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from geo.anchor_fields import (
    MAX_ADDRESS_CHARS,
    MAX_NAME_CHARS,
    AnchorFieldError,
    FieldError,
    ShuttleStop,
    parse_enterprise_size,
    validate_contact_phone,
    validate_contact_role,
    validate_shift_times,
    validate_text,
)
from geo.anchor_rules import PRECISION_LABELS_ZH
from geo.anchor_states import AnchorState, StaffScope, transition
from geo.credit_code import validate_credit_code
from geo.crs import haversine_m, validate_and_convert
from geo.errors import DoorstepError
from geo.industry import IndustryCatalogue
from geo.location import Precision
from geo.regions import Regions
from geo.zones import DevelopmentZone

# geo.curation imports this module, so its records are imported for annotations only.
if TYPE_CHECKING:
    from geo.curation import AnchorChange, AnchorRecord

logger = logging.getLogger(__name__)

ENTRANCE_MAX_DISTANCE_M = 1_000.0
"""Maximum distance in metres between an anchor's pin and its entrance point."""


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
        "filed_org",
    }
)
"""Fields an :class:`geo.curation.AnchorChange` may set back to empty through ``clear``."""


_INVALID = object()


class ChangeValidator:
    """Validate every field of one change against a record, collecting all field errors."""

    def __init__(
        self,
        record: "AnchorRecord",
        change: "AnchorChange",
        regions: Regions,
        zones: Iterable[DevelopmentZone],
        industries: IndustryCatalogue,
        *,
        scope: StaffScope | None = None,
    ) -> None:
        self.record = record
        self.change = change
        self.scope = scope
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
        self._check_filing()
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

    def _check_filing(self) -> None:
        """Check ``filed_org``: a street or station inside the caller's subtree and the district.

        The filing is checked again when the anchor changes district, so an anchor
        never stays filed under a street of another district.
        """
        change = self.change
        if "filed_org" in change.clear and self.scope is not None and self.scope.by_filing:
            self.errors.append(
                FieldError.of(
                    "filed_org",
                    "street and station staff cannot clear the filing of an anchor",
                    rule="filing_required",
                )
            )
            return
        filed = self.values.get("filed_org", change.filed_org or self.record.filed_org)
        district = self.values.get("district_code", self.record.district_code)
        if filed is None or (change.filed_org is None and district == self.record.district_code):
            return

        resolve = None if self.scope is None else self.scope.filing_district
        filed_district = None if resolve is None else resolve(filed)
        if filed_district is None:
            self.errors.append(
                FieldError.of(
                    "filed_org",
                    f"filed_org {filed!r} is not a street or community station "
                    "of the caller's organisation",
                    rule="unknown_filing_org",
                    value=filed,
                )
            )
            return
        if filed_district != district:
            filed_name = self._district_name(filed_district)
            actual = self._district_name(district)
            self.errors.append(
                FieldError.of(
                    "filed_org",
                    f"filed_org {filed!r} is in {filed_name}, the anchor in {actual}; "
                    "file it under a street or station of its own district",
                    rule="filing_outside_district",
                    value=filed,
                    filed=filed_name,
                    actual=actual,
                )
            )
            return
        self.values["filed_org"] = filed

    def _district_name(self, code: str | None) -> str:
        district = None if code is None else self.regions.district(code)
        return str(code) if district is None else district.name

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


def check_change(
    record: "AnchorRecord",
    change: "AnchorChange",
    *,
    regions: Regions,
    zones: Iterable[DevelopmentZone],
    industries: IndustryCatalogue,
) -> list[FieldError]:
    """Validate every field of a change without applying it; an empty list means valid.

    The version, actor, reason and scope are not checked here (see
    :func:`geo.curation.apply_change`).
    """
    validator = ChangeValidator(record, change, regions, zones, industries)
    validator.run()
    return validator.errors
