"""check_change: validating a staff change without applying it."""

from geo.anchor_checks import ENTRANCE_MAX_DISTANCE_M, check_change
from geo.anchor_states import AnchorState
from geo.curation import AnchorChange, AnchorRecord
from geo.industry import IndustryCatalogue
from geo.location import Precision
from geo.regions import Regions
from geo.zones import DevelopmentZone

RECORD = AnchorRecord(
    anchor_id="anc-check0001",
    name="西安钟楼软件有限公司",
    lon=108.9410,
    lat=34.2590,
    precision=Precision.DISTRICT,
    district_code="610103",
    zone_key=None,
    state=AnchorState.DRAFT,
    version=2,
)


def test_valid_change_has_no_errors(
    regions: Regions, zones: list[DevelopmentZone], industries: IndustryCatalogue
) -> None:
    change = AnchorChange(lon=108.9402, lat=34.2600, industry_code="6513", size="小型")
    errors = check_change(RECORD, change, regions=regions, zones=zones, industries=industries)
    assert errors == []


def test_errors_listed_not_raised(
    regions: Regions, zones: list[DevelopmentZone], industries: IndustryCatalogue
) -> None:
    # About 2.2 km north of the pin, over the 1 km limit.
    far_entrance = AnchorChange(entrance_lon=108.9410, entrance_lat=34.2790, state="verified")
    errors = check_change(RECORD, far_entrance, regions=regions, zones=zones, industries=industries)
    rules = {error.field: error.rule for error in errors}
    assert rules == {"entrance": "entrance_too_far", "state": "invalid_transition"}
    assert f"maximum {ENTRANCE_MAX_DISTANCE_M:.0f} m" in errors[0].message
