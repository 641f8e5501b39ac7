"""Curation rules: states, versioned changes, field validation and staff scope."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from geo.anchor_fields import EnterpriseSize, validate_contact_phone, validate_shift_time
from geo.anchor_states import (
    ALLOWED_TRANSITIONS,
    AnchorState,
    InvalidTransitionError,
    OutOfScopeError,
    PlacedPoint,
    StaffScope,
    ensure_in_scope,
    transition,
)
from geo.crs import from_wgs84
from geo.curation import (
    AnchorChange,
    AnchorRecord,
    AnchorValidationError,
    AnchorVersion,
    StaleVersionError,
    apply_change,
    new_anchor,
)
from geo.industry import IndustryCatalogue
from geo.location import Precision
from geo.regions import Regions
from geo.zones import DevelopmentZone

NOW = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
BELL_TOWER = (108.9402, 34.2600)  # 钟楼, 碑林区 610103
YANTA_POINT = (108.9480, 34.2230)  # 雁塔区 610113
BEILIN = StaffScope(frozenset({"610103"}))


def _apply(
    record: AnchorRecord,
    change: AnchorChange,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
    *,
    expected_version: int | None = None,
    scope: StaffScope = BEILIN,
) -> tuple[AnchorRecord, AnchorVersion]:
    return apply_change(
        record,
        change,
        actor="staff-0042",
        reason="现场核实",
        expected_version=record.version if expected_version is None else expected_version,
        regions=regions,
        zones=zones,
        industries=industries,
        now=NOW,
        scope=scope,
    )


def test_allowed_transitions_table() -> None:
    assert transition(AnchorState.DRAFT, AnchorState.PENDING_REVIEW) is AnchorState.PENDING_REVIEW
    assert transition(AnchorState.VERIFIED, AnchorState.PENDING_REVIEW)
    assert transition(AnchorState.REJECTED, AnchorState.DRAFT) is AnchorState.DRAFT
    assert ALLOWED_TRANSITIONS[AnchorState.RETIRED] == frozenset()


def test_invalid_transition_names_states() -> None:
    with pytest.raises(InvalidTransitionError, match="'draft' to 'verified'"):
        transition(AnchorState.DRAFT, AnchorState.VERIFIED)


def test_retired_leaves_only_by_reactivation() -> None:
    with pytest.raises(InvalidTransitionError):
        transition(AnchorState.RETIRED, AnchorState.DRAFT)
    assert transition(AnchorState.RETIRED, AnchorState.DRAFT, reactivate=True)
    with pytest.raises(InvalidTransitionError):
        transition(AnchorState.RETIRED, AnchorState.VERIFIED, reactivate=True)


def test_pin_move_is_exact_and_versioned(
    record: AnchorRecord,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
) -> None:
    change = AnchorChange(lon=BELL_TOWER[0], lat=BELL_TOWER[1], industry_code="6513")
    updated, entry = _apply(record, change, regions, zones, industries)
    assert updated.version == 4
    assert updated.precision is Precision.EXACT
    assert updated.lon == BELL_TOWER[0]
    assert updated.industry_code == "6513"
    changed = {item.field: (item.old, item.new) for item in entry.changes}
    assert changed["precision"] == (Precision.DISTRICT, Precision.EXACT)
    assert changed["lon"] == (108.9410, BELL_TOWER[0])
    assert entry.version == 4
    assert entry.actor == "staff-0042"


def test_gcj02_pin_converted(
    record: AnchorRecord,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
) -> None:
    gcj_lon, gcj_lat = from_wgs84(*BELL_TOWER, "gcj02")
    change = AnchorChange(lon=gcj_lon, lat=gcj_lat, coord_sys="gcj02")
    updated, _ = _apply(record, change, regions, zones, industries)
    assert updated.lon == pytest.approx(BELL_TOWER[0], abs=1e-6)
    assert updated.lat == pytest.approx(BELL_TOWER[1], abs=1e-6)


def test_stale_version_carries_current(
    record: AnchorRecord,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
) -> None:
    with pytest.raises(StaleVersionError) as info:
        _apply(record, AnchorChange(name="新名称"), regions, zones, industries, expected_version=2)
    assert info.value.current_version == 3


def test_all_field_errors_collected(
    record: AnchorRecord,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
) -> None:
    change = AnchorChange(
        lon=YANTA_POINT[0],
        lat=YANTA_POINT[1],
        credit_code="91610131MA6TXXXX00",
        industry_code="9999",
        contact_phone="13812345678",
        shift_times=("08:00-17:00", "25:00-06:00"),
        contact_role="王先生",
    )
    with pytest.raises(AnchorValidationError) as info:
        _apply(record, change, regions, zones, industries)
    fields = sorted(error.field for error in info.value.errors)
    assert fields == [
        "contact_phone",
        "contact_role",
        "credit_code",
        "district_code",
        "industry_code",
        "shift_times",
    ]
    assert "13812345678" not in str(info.value)
    assert "碑林区" in str(info.value)

    rules = {error.field: error.rule for error in info.value.errors}
    assert rules == {
        "contact_phone": "mobile_phone",
        "contact_role": "role_person",
        "credit_code": "check_digit",
        "district_code": "outside_district",
        "industry_code": "unknown_industry",
        "shift_times": "shift_format",
    }
    messages_zh = {error.field: error.message_zh for error in info.value.errors}
    assert messages_zh["district_code"] == "坐标不在所填区县（碑林区）范围内，实际位于雁塔区"
    assert messages_zh["industry_code"] == "行业代码“9999”不是 GB/T 4754-2017 中的代码"
    assert messages_zh["contact_phone"] == "联系电话须为单位电话，不能填写手机号码"
    assert "13812345678" not in info.value.message_zh
    assert "王" not in info.value.message_zh


def test_mobile_phone_message_exact() -> None:
    with pytest.raises(ValueError) as info:
        validate_contact_phone("+86 138-1234-5678")
    assert str(info.value) == "contact_phone must be an organisation phone, not a mobile number"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("029-88886666", "02988886666"),
        ("400 123 4567", "4001234567"),
        ("029-8888666转12", "0298888666-12"),
    ],
)
def test_organisation_phones_pass(raw: str, expected: str) -> None:
    assert validate_contact_phone(raw) == expected


def test_phone_without_area_code_rejected() -> None:
    with pytest.raises(ValueError, match="area code"):
        validate_contact_phone("88886666")


def test_shift_times_normalised() -> None:
    assert validate_shift_time("８：００－１７：３０") == "08:00-17:30"
    assert validate_shift_time("22:00-06:00") == "22:00-06:00"
    with pytest.raises(ValueError, match="same time"):
        validate_shift_time("08:00-08:00")


def test_flags_and_size_set_and_cleared(
    record: AnchorRecord,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
) -> None:
    flagged, entry = _apply(
        record,
        AnchorChange(key_enterprise=True, above_scale_industrial=True, size="中型"),
        regions,
        zones,
        industries,
    )
    assert flagged.key_enterprise is True
    assert flagged.above_scale_industrial is True
    assert flagged.size is EnterpriseSize.MEDIUM
    assert {item.field for item in entry.changes} == {
        "key_enterprise",
        "above_scale_industrial",
        "size",
    }

    unflagged, _ = _apply(
        flagged,
        AnchorChange(key_enterprise=False, clear=frozenset({"size"})),
        regions,
        zones,
        industries,
    )
    assert unflagged.key_enterprise is False
    assert unflagged.above_scale_industrial is True
    assert unflagged.size is None


def test_verify_requires_exact_pin(
    record: AnchorRecord,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
) -> None:
    pending = replace(record, state=AnchorState.PENDING_REVIEW)
    with pytest.raises(AnchorValidationError, match="exact pin"):
        _apply(pending, AnchorChange(state="verified"), regions, zones, industries)

    verified, entry = _apply(
        pending, AnchorChange(state="verified", confirm_pin=True), regions, zones, industries
    )
    assert verified.state is AnchorState.VERIFIED
    assert entry.state is AnchorState.VERIFIED


def test_moving_verified_pin_sends_to_review(
    record: AnchorRecord,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
) -> None:
    verified = replace(record, state=AnchorState.VERIFIED, precision=Precision.EXACT)
    moved, _ = _apply(
        verified, AnchorChange(lon=BELL_TOWER[0], lat=BELL_TOWER[1]), regions, zones, industries
    )
    assert moved.state is AnchorState.PENDING_REVIEW


def test_retired_rejects_edit_until_reactivated(
    record: AnchorRecord,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
) -> None:
    retired = replace(record, state=AnchorState.RETIRED)
    with pytest.raises(AnchorValidationError, match="retired"):
        _apply(retired, AnchorChange(name="新名称"), regions, zones, industries)
    revived, _ = _apply(retired, AnchorChange(reactivate=True), regions, zones, industries)
    assert revived.state is AnchorState.DRAFT


def test_zone_anchor_may_move_within_hosts(
    record: AnchorRecord,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
) -> None:
    zone_anchor = replace(record, zone_key="高新", district_code="610113")
    scope = StaffScope(frozenset(), frozenset({"高新"}))
    moved, _ = _apply(
        zone_anchor,
        AnchorChange(lon=YANTA_POINT[0], lat=YANTA_POINT[1]),
        regions,
        zones,
        industries,
        scope=scope,
    )
    assert moved.district_code == "610113"

    with pytest.raises(AnchorValidationError) as info:
        _apply(
            zone_anchor,
            AnchorChange(lon=BELL_TOWER[0], lat=BELL_TOWER[1]),
            regions,
            zones,
            industries,
            scope=scope,
        )
    assert [error.field for error in info.value.errors] == ["zone_key"]


def test_out_of_scope_before_version(
    record: AnchorRecord,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
) -> None:
    yanta = StaffScope(frozenset({"610113"}))
    with pytest.raises(OutOfScopeError):
        _apply(
            record,
            AnchorChange(name="x"),
            regions,
            zones,
            industries,
            scope=yanta,
            expected_version=1,
        )


def test_move_out_of_scope_rejected(
    record: AnchorRecord,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
) -> None:
    change = AnchorChange(lon=YANTA_POINT[0], lat=YANTA_POINT[1], district_code="610113")
    with pytest.raises(OutOfScopeError):
        _apply(record, change, regions, zones, industries)


def test_ensure_in_scope_point() -> None:
    ensure_in_scope(PlacedPoint(*BELL_TOWER, "610103"), BEILIN)
    with pytest.raises(LookupError):
        ensure_in_scope(PlacedPoint(*YANTA_POINT, "610113"), BEILIN)


def test_new_anchor_draft_version_one(
    regions: Regions, zones: list[DevelopmentZone], industries: IndustryCatalogue
) -> None:
    record, entry = new_anchor(
        "西安钟楼软件有限公司",
        *BELL_TOWER,
        actor="staff-0042",
        reason="站点新增",
        regions=regions,
        zones=zones,
        industries=industries,
        now=NOW,
        scope=BEILIN,
        details=AnchorChange(contact_role="人事部", contact_phone="029-87654321"),
    )
    assert record.state is AnchorState.DRAFT
    assert record.version == 1
    assert record.district_code == "610103"
    assert record.precision is Precision.EXACT
    assert all(item.old is None for item in entry.changes)
    assert record.anchor_id.startswith("anc-")


def test_new_anchor_outside_scope(
    regions: Regions, zones: list[DevelopmentZone], industries: IndustryCatalogue
) -> None:
    with pytest.raises(OutOfScopeError):
        new_anchor(
            "雁塔某公司",
            *YANTA_POINT,
            actor="staff-0042",
            reason="站点新增",
            regions=regions,
            zones=zones,
            industries=industries,
            now=NOW,
            scope=BEILIN,
        )


def test_empty_change_rejected(
    record: AnchorRecord,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
) -> None:
    with pytest.raises(AnchorValidationError, match="no field"):
        _apply(record, AnchorChange(name=record.name), regions, zones, industries)


# --- filing under streets and stations ------------------------------------------------------

NANYUANMEN = "street:610103001"  # 南院门街道, 碑林区
BOSHULIN = "street:610103002"  # 柏树林街道, 碑林区
XIAOZHAI = "street:610113001"  # 小寨路街道, 雁塔区
STREET_DISTRICTS = {NANYUANMEN: "610103", BOSHULIN: "610103", XIAOZHAI: "610113"}


def _street_scope(org_id: str) -> StaffScope:
    return StaffScope(
        frozenset({STREET_DISTRICTS[org_id]}),
        filing_org=org_id,
        filing_orgs=frozenset({org_id}),
        filing_district={org_id: STREET_DISTRICTS[org_id]}.get,
    )


def test_street_scope_needs_the_filing() -> None:
    street = _street_scope(NANYUANMEN)

    ensure_in_scope(PlacedPoint(*BELL_TOWER, "610103", filed_org=NANYUANMEN), street)
    for filed in (None, BOSHULIN):
        with pytest.raises(OutOfScopeError):
            ensure_in_scope(PlacedPoint(*BELL_TOWER, "610103", filed_org=filed), street)
    # District staff see the district's anchors, filed or not.
    ensure_in_scope(PlacedPoint(*BELL_TOWER, "610103", filed_org=BOSHULIN), BEILIN)


def test_street_staff_file_new_anchors_under_their_street(
    regions: Regions, zones: list[DevelopmentZone], industries: IndustryCatalogue
) -> None:
    record, entry = new_anchor(
        "南院门某商行",
        *BELL_TOWER,
        actor="staff-0042",
        reason="街道新增",
        regions=regions,
        zones=zones,
        industries=industries,
        now=NOW,
        scope=_street_scope(NANYUANMEN),
    )

    assert record.filed_org == NANYUANMEN
    assert ("filed_org", NANYUANMEN) in [(item.field, item.new) for item in entry.changes]


def test_filing_rules(
    record: AnchorRecord,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
) -> None:
    assert record.district_code == "610103"
    district = StaffScope(frozenset({"610103", "610113"}), filing_district=STREET_DISTRICTS.get)
    filed, entry = _apply(
        record, AnchorChange(filed_org=BOSHULIN), regions, zones, industries, scope=district
    )
    assert filed.filed_org == BOSHULIN
    assert [item.field for item in entry.changes] == ["filed_org"]

    cases = [
        (AnchorChange(filed_org="street:999999999"), district, "unknown_filing_org"),
        (AnchorChange(filed_org=XIAOZHAI), district, "filing_outside_district"),
        (AnchorChange(filed_org=BOSHULIN), BEILIN, "unknown_filing_org"),
    ]
    for change, scope, rule in cases:
        with pytest.raises(AnchorValidationError) as info:
            _apply(record, change, regions, zones, industries, scope=scope)
        assert [(error.field, error.rule) for error in info.value.errors] == [("filed_org", rule)]

    # Moving a filed anchor into another district asks for a new filing.
    move = AnchorChange(lon=YANTA_POINT[0], lat=YANTA_POINT[1], district_code="610113")
    with pytest.raises(AnchorValidationError) as info:
        _apply(filed, move, regions, zones, industries, scope=district)
    assert [error.rule for error in info.value.errors] == ["filing_outside_district"]
    refiled = replace(move, filed_org=XIAOZHAI)
    moved, _ = _apply(filed, refiled, regions, zones, industries, scope=district)
    assert (moved.district_code, moved.filed_org) == ("610113", XIAOZHAI)

    street = _street_scope(BOSHULIN)
    with pytest.raises(AnchorValidationError) as info:
        _apply(
            filed,
            AnchorChange(clear=frozenset({"filed_org"})),
            regions,
            zones,
            industries,
            scope=street,
        )
    assert [error.rule for error in info.value.errors] == ["filing_required"]
    cleared, _ = _apply(
        filed,
        AnchorChange(clear=frozenset({"filed_org"})),
        regions,
        zones,
        industries,
        scope=district,
    )
    assert cleared.filed_org is None
