"""Reference data shared by the geo tests, loaded once per session from the real data folder.

No geo test modifies these objects, so one copy serves every module. A test
that needs to change one must work on a copy.
"""

from pathlib import Path

import pytest

from geo.anchor_states import AnchorState
from geo.curation import AnchorRecord
from geo.industry import IndustryCatalogue, load_industry_catalogue
from geo.location import Precision
from geo.regions import Regions, load_regions
from geo.zones import DevelopmentZone, load_zones


@pytest.fixture(scope="session")
def regions(data_dir: Path) -> Regions:
    """The 13 districts of Xi'an with their streets and communities."""
    return load_regions(data_dir)


@pytest.fixture(scope="session")
def zones(data_dir: Path, regions: Regions) -> list[DevelopmentZone]:
    """The development zones, with host districts taken from ``regions``."""
    return load_zones(data_dir, regions)


@pytest.fixture(scope="session")
def industries(data_dir: Path) -> IndustryCatalogue:
    """The GB/T 4754-2017 industry catalogue."""
    return load_industry_catalogue(data_dir)


@pytest.fixture
def record() -> AnchorRecord:
    """A draft anchor in 碑林区 (610103) at district precision, version 3."""
    return AnchorRecord(
        anchor_id="anc-test0001",
        name="西安钟楼软件有限公司",
        lon=108.9410,
        lat=34.2590,
        precision=Precision.DISTRICT,
        district_code="610103",
        zone_key=None,
        state=AnchorState.DRAFT,
        version=3,
    )
