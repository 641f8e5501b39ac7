"""Request and response bodies of the staff curation API (``/v1/staff``), and their builders.

Response points are WGS84 unless the route takes ``coord_sys``. History values
(``changes[].old`` and ``.new``) are always as stored, so points there are WGS84.
"""

import dataclasses
import math
from datetime import UTC
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from geo.anchor_fields import ShuttleStop
from geo.anchor_states import ANCHOR_STATE_LABELS_ZH
from geo.crs import CoordSys, from_wgs84
from geo.curation import AnchorChange, AnchorRecord, AnchorVersion
from geo.industry import IndustryCatalogue
from geo.location import PRECISION_LABELS_ZH
from geo.regions import Regions

CoordSysName = Literal["wgs84", "gcj02", "bd09"]


class ShuttleStopIn(BaseModel):
    """A shuttle-bus stop; its point is in the request's ``coord_sys``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    lon: float | None = None
    lat: float | None = None


class AnchorDetailsIn(BaseModel):
    """Optional anchor fields; an omitted field stays unchanged."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = None
    entrance_lon: float | None = None
    entrance_lat: float | None = None
    district_code: str | None = None
    zone_key: str | None = None
    credit_code: str | None = None
    industry_code: str | None = None
    size: str | None = None
    key_enterprise: bool | None = None
    above_scale_industrial: bool | None = None
    contact_role: str | None = None
    contact_phone: str | None = None
    shift_times: list[str] | None = None
    shuttle_stop: ShuttleStopIn | None = None
    filed_org: str | None = Field(
        default=None,
        max_length=64,
        description="Street or community station to file the anchor under, e.g. street:610113001.",
    )
    clear: list[str] = Field(default_factory=list)


class AnchorChangeIn(AnchorDetailsIn):
    """The fields of one staff edit; points are in ``coord_sys``."""

    name: str | None = None
    lon: float | None = None
    lat: float | None = None
    coord_sys: CoordSysName = "wgs84"
    state: str | None = None
    confirm_pin: bool = False
    reactivate: bool = False

    def to_change(self) -> AnchorChange:
        """Return the domain change, with the points still in ``coord_sys``."""
        values = self.model_dump(exclude={"shift_times", "shuttle_stop", "clear"})
        return AnchorChange(
            **values,
            shift_times=None if self.shift_times is None else tuple(self.shift_times),
            shuttle_stop=None
            if self.shuttle_stop is None
            else ShuttleStop(self.shuttle_stop.name, self.shuttle_stop.lon, self.shuttle_stop.lat),
            clear=frozenset(self.clear),
        )


# Versions are PostgreSQL integers. The bound also keeps a mistyped mobile or ID
# number out of the 409 message, which repeats the expected version.
MAX_VERSION = 2_147_483_647
# Strict: JSON true or 1.0 is a client bug, not version 1.
Version = Annotated[int, Field(ge=0, le=MAX_VERSION, strict=True)]


class AnchorPatchIn(BaseModel):
    """Body of ``PATCH /v1/staff/anchors/{anchor_id}``."""

    model_config = ConfigDict(extra="forbid")

    expected_version: Version
    reason: str
    changes: AnchorChangeIn


class AnchorCreateIn(BaseModel):
    """Body of ``POST /v1/staff/anchors``; the pin is in ``coord_sys``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    lon: float
    lat: float
    coord_sys: CoordSysName = "wgs84"
    reason: str
    details: AnchorDetailsIn = Field(default_factory=AnchorDetailsIn)

    def details_change(self) -> AnchorChange:
        """Return the details as a domain change (points in ``coord_sys``)."""
        change_in = AnchorChangeIn(**self.details.model_dump(), coord_sys=self.coord_sys)
        return change_in.to_change()


class MergeIn(BaseModel):
    """Body of ``POST /v1/staff/anchors/merge``."""

    model_config = ConfigDict(extra="forbid")

    survivor_id: str
    merged_ids: list[str] = Field(min_length=1)
    expected_versions: dict[str, Version]
    reason: str = Field(min_length=1, max_length=500)


class PointOut(BaseModel):
    """A point in the request's ``coord_sys``, in degrees."""

    lon: float
    lat: float


class ShuttleStopOut(BaseModel):
    """A shuttle-bus stop with its point in the request's ``coord_sys``, or no point."""

    name: str
    lon: float | None
    lat: float | None


class AnchorOut(BaseModel):
    """An anchor as shown to station staff, with its points in the request's ``coord_sys``."""

    anchor_id: str
    name: str
    lon: float | None
    lat: float | None
    precision: str
    precision_label: str
    state: str
    state_label: str
    version: int
    district_code: str | None
    district_name: str | None
    zone_key: str | None
    address: str
    entrance: PointOut | None
    credit_code: str | None
    industry_code: str | None
    industry_name: str | None
    size: str | None
    key_enterprise: bool
    above_scale_industrial: bool
    contact_role: str | None
    contact_phone: str | None
    shift_times: list[str]
    shuttle_stop: ShuttleStopOut | None
    filed_org: str | None
    n_postings: int


class FieldChangeOut(BaseModel):
    """One changed field of a history entry."""

    field: str
    old: Any
    new: Any


class VersionOut(BaseModel):
    """One history entry of an anchor."""

    version: int
    actor: str
    at: str
    reason: str
    state: str
    changes: list[FieldChangeOut]


class AnchorList(BaseModel):
    """A page of anchors in the caller's scope and the total matching the filters."""

    items: list[AnchorOut]
    total: int


class AnchorDetail(BaseModel):
    """One anchor with its history, oldest first."""

    anchor: AnchorOut
    history: list[VersionOut]


class AnchorEdit(BaseModel):
    """The anchor after an edit or creation and the history entry it wrote."""

    anchor: AnchorOut
    version: VersionOut


class MergeOut(BaseModel):
    """Outcome of a merge."""

    moved_postings: int
    survivor: AnchorOut


class DuplicateOut(BaseModel):
    """A candidate pair of duplicate anchors."""

    anchor_id_a: str
    anchor_id_b: str
    name_a: str
    name_b: str
    reason: str
    distance_m: float | None
    similarity: float


class DuplicateList(BaseModel):
    """Candidate duplicate pairs in the caller's scope."""

    items: list[DuplicateOut]


class ImportRowErrorOut(BaseModel):
    """One rejected cell of an import file (the header is row 1)."""

    row: int
    field: str
    rule: str
    reason: str
    reason_zh: str


class ImportReportOut(BaseModel):
    """Outcome of checking (and, when not a dry run, applying) an import file."""

    ok: bool
    accepted: int
    rejected: list[ImportRowErrorOut]


class FilingOrgOut(BaseModel):
    """A street or community station that the caller may file anchors under."""

    org_id: str
    name: str
    level: Literal["street", "station"]
    parent_id: str | None
    district_code: str | None


class FilingOrgList(BaseModel):
    """The streets and stations of the caller's subtree, streets first."""

    items: list[FilingOrgOut]


class DistrictOut(BaseModel):
    """A district code with its Chinese name."""

    code: str
    name: str | None


class ZoneOut(BaseModel):
    """A development zone key with its Chinese name, which is null for an unknown key."""

    key: str
    name: str | None


class StaffMe(BaseModel):
    """The authenticated staff member and the scope they curate."""

    staff_id: str
    org: str
    filing_org: str | None = Field(
        description="Street or station the caller's new anchors are filed under; "
        "null for district and city staff, who curate their whole districts."
    )
    districts: list[DistrictOut]
    zones: list[ZoneOut]


class SummaryItem(BaseModel):
    """The number of anchors in one district, precision and state."""

    district_code: str | None
    district_name: str | None
    precision: str
    state: str
    n: int


class Summary(BaseModel):
    """Anchor counts in the caller's scope."""

    items: list[SummaryItem]


def json_value(value: object) -> Any:
    """Return a stored field value as JSON: enums by value, NaN as null, tuples as lists."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, tuple):
        return [json_value(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {key: json_value(item) for key, item in dataclasses.asdict(value).items()}
    return value


def _point_out(lon: float | None, lat: float | None, coord_sys: CoordSys) -> PointOut | None:
    """Convert a stored WGS84 point to ``coord_sys``, or return None when a part is missing."""
    if lon is None or lat is None or not (math.isfinite(lon) and math.isfinite(lat)):
        return None
    out_lon, out_lat = from_wgs84(lon, lat, coord_sys)
    return PointOut(lon=out_lon, lat=out_lat)


def _shuttle_stop_out(stop: ShuttleStop | None, coord_sys: CoordSys) -> ShuttleStopOut | None:
    if stop is None:
        return None
    point = _point_out(stop.lon, stop.lat, coord_sys)
    return ShuttleStopOut(
        name=stop.name,
        lon=None if point is None else point.lon,
        lat=None if point is None else point.lat,
    )


def anchor_out(
    record: AnchorRecord,
    *,
    n_postings: int,
    regions: Regions,
    industries: IndustryCatalogue,
    coord_sys: CoordSys = CoordSys.WGS84,
) -> AnchorOut:
    """Build the response of one anchor, converting its points from WGS84 to ``coord_sys``."""
    pin = _point_out(record.lon, record.lat, coord_sys)
    district = regions.district(record.district_code) if record.district_code else None
    industry = industries.lookup(record.industry_code) if record.industry_code else None
    return AnchorOut(
        anchor_id=record.anchor_id,
        name=record.name,
        lon=None if pin is None else pin.lon,
        lat=None if pin is None else pin.lat,
        precision=record.precision.value,
        precision_label=PRECISION_LABELS_ZH[record.precision],
        state=record.state.value,
        state_label=ANCHOR_STATE_LABELS_ZH[record.state],
        version=record.version,
        district_code=record.district_code,
        district_name=None if district is None else district.name,
        zone_key=record.zone_key,
        address=record.address,
        entrance=_point_out(record.entrance_lon, record.entrance_lat, coord_sys),
        credit_code=record.credit_code,
        industry_code=record.industry_code,
        industry_name=None if industry is None else industry.name,
        size=json_value(record.size),
        key_enterprise=record.key_enterprise,
        above_scale_industrial=record.above_scale_industrial,
        contact_role=record.contact_role,
        contact_phone=record.contact_phone,
        shift_times=list(record.shift_times),
        shuttle_stop=_shuttle_stop_out(record.shuttle_stop, coord_sys),
        filed_org=record.filed_org,
        n_postings=n_postings,
    )


def version_out(entry: AnchorVersion) -> VersionOut:
    """Build the response of one history entry, its time in ISO 8601 UTC."""
    return VersionOut(
        version=entry.version,
        actor=entry.actor,
        at=entry.at.astimezone(UTC).isoformat(),
        reason=entry.reason,
        state=entry.state.value,
        changes=[
            FieldChangeOut(field=item.field, old=json_value(item.old), new=json_value(item.new))
            for item in entry.changes
        ],
    )
