"""check_change: validating a staff change without applying it."""

from geo.anchor_checks import ENTRANCE_MAX_DISTANCE_M, check_change
from geo.curation import AnchorChange, AnchorRecord
from geo.industry import IndustryCatalogue
from geo.regions import Regions
from geo.zones import DevelopmentZone


def test_valid_change_has_no_errors(
    record: AnchorRecord,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
) -> None:
    change = AnchorChange(lon=108.9402, lat=34.2600, industry_code="6513", size="小型")
    errors = check_change(record, change, regions=regions, zones=zones, industries=industries)
    assert errors == []


def test_errors_listed_not_raised(
    record: AnchorRecord,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
) -> None:
    # About 2.2 km north of the pin, over the 1 km limit.
    far_entrance = AnchorChange(entrance_lon=108.9410, entrance_lat=34.2790, state="verified")
    errors = check_change(record, far_entrance, regions=regions, zones=zones, industries=industries)
    rules = {error.field: error.rule for error in errors}
    assert rules == {"entrance": "entrance_too_far", "state": "invalid_transition"}
    assert f"maximum {ENTRANCE_MAX_DISTANCE_M:.0f} m" in errors[0].message
