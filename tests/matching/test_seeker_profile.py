"""Home areas of self-registered seekers: nearest street office, community checks, errors."""

from pathlib import Path

import numpy as np
import pyproj
import pytest

from geo.crs import METRIC_CRS
from geo.regions import Regions, load_regions
from matching.seeker_profile import ProfileFieldError, home_area

# A point in 雁塔区 near 小寨, WGS84.
YANTA_POINT = (108.9460, 34.2230)


@pytest.fixture(scope="module")
def regions(data_dir: Path) -> Regions:
    return load_regions(data_dir)


def _first_community(regions: Regions, district: str) -> str:
    codes = regions.communities.loc[regions.communities["district_code"] == district, "code"]
    return str(sorted(codes.astype(str))[0])


def test_point_takes_nearest_office(regions: Regions) -> None:
    area = home_area(regions, lon=YANTA_POINT[0], lat=YANTA_POINT[1])

    offices = regions.streets[regions.streets["district_code"] == "610113"].dropna(
        subset=["lon", "lat"]
    )
    to_metric = pyproj.Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    x, y = to_metric.transform(offices["lon"].to_numpy(), offices["lat"].to_numpy())
    home_x, home_y = to_metric.transform(*YANTA_POINT)
    nearest = offices.iloc[int(np.argmin(np.hypot(x - home_x, y - home_y)))]
    assert area.district_code == "610113"
    assert area.street_code == nearest["code"]
    assert (area.area_lon, area.area_lat) == (nearest["lon"], nearest["lat"])
    assert (area.exact_lon, area.exact_lat) == YANTA_POINT
    assert area.community_code == ""
    assert area.exact is True


def test_community_only_uses_street_office(regions: Regions) -> None:
    code = _first_community(regions, "610103")
    community = regions.community_by_code(code)
    assert community is not None

    area = home_area(regions, community_code=code)

    assert area.community_code == code
    assert area.street_code == community.street_code
    assert area.district_code == "610103"
    assert (area.exact_lon, area.exact_lat) == (area.area_lon, area.area_lat)
    assert area.exact is False


def test_point_with_own_community(regions: Regions) -> None:
    code = _first_community(regions, "610113")

    area = home_area(regions, lon=YANTA_POINT[0], lat=YANTA_POINT[1], community_code=code)

    assert area.community_code == code
    assert area.street_code == code[:9]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"community_code": "610113999999"}, "home.community_code"),
        ({}, "home"),
        ({"lon": YANTA_POINT[0], "lat": YANTA_POINT[1], "community_code": "other"}, "home"),
    ],
)
def test_invalid_home_names_field(
    regions: Regions, arguments: dict[str, object], field: str
) -> None:
    if arguments.get("community_code") == "other":
        arguments = {**arguments, "community_code": _first_community(regions, "610103")}
        field = "home.community_code"

    with pytest.raises(ProfileFieldError) as raised:
        home_area(regions, **arguments)  # type: ignore[arg-type]

    assert raised.value.field == field
    assert "610113999999" not in str(raised.value)
    assert "108.946" not in str(raised.value)
    assert raised.value.message_zh
