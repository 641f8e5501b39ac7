"""Tests of the 15-minute service circle, on a small synthetic town and on the real data."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from geo.coverage.circle import ServiceCircle, straight_line_minutes
from geo.coverage.gap_map import gap_map
from geo.coverage.grid import WalkGrid
from geo.coverage.places import load_employment_stations, load_residential_places
from geo.errors import InvalidCoordinateError
from geo.regions import Regions

TOWN = box(108.91, 34.23, 108.97, 34.29)
STATION = (108.94, 34.26)
# About 0.5 km, 2 km and 3 km east of the station; 1 km north-east of the far ones.
PLACES = pd.DataFrame(
    {
        "name": ["近小区", "中小区", "<script>远小区</script>"],
        "kind": ["residential", "residential", "dormitory"],
        "lon": [108.9455, 108.9618, 108.9726],
        "lat": [34.26, 34.26, 34.26],
        "district_code": ["610103", "610103", "610102"],
        "street_code": ["610103001", "610103001", None],
    }
)


@pytest.fixture(scope="module")
def town_circle() -> ServiceCircle:
    """One station and three places in a 250 m grid over central Xi'an."""
    grid = WalkGrid.over_area(TOWN)
    stations = pd.DataFrame({"name": ["钟楼就业服务站"], "lon": [STATION[0]], "lat": [STATION[1]]})
    return ServiceCircle(grid, PLACES, stations)


def test_circle_marks_places_within_threshold(town_circle: ServiceCircle) -> None:
    covered = town_circle.places["covered"].tolist()

    assert covered == [True, False, False]
    assert town_circle.places["minutes"].is_monotonic_increasing


def test_shares_by_district(town_circle: ServiceCircle, regions: Regions) -> None:
    table = town_circle.shares("district", regions).set_index("code")

    assert table.loc["610103", "name"] == "碑林区"
    assert table.loc["610103", "places"] == 2
    assert table.loc["610103", "covered"] == 1
    assert table.loc["610103", "share"] == pytest.approx(0.5)
    assert table.loc["610102", "share"] == 0.0


def test_street_shares_skip_places_without_street(
    town_circle: ServiceCircle, regions: Regions
) -> None:
    table = town_circle.shares("street", regions)

    assert table["places"].sum() == 2


def test_unknown_level_is_rejected(town_circle: ServiceCircle, regions: Regions) -> None:
    with pytest.raises(ValueError, match="level 'community' is invalid"):
        town_circle.shares("community", regions)


def test_gain_counts_newly_covered_places(town_circle: ServiceCircle) -> None:
    gain = town_circle.marginal_gain(108.967, 34.26)

    assert gain.newly_covered == 2
    assert gain.by_district == {"610103": 1, "610102": 1}
    assert gain.covered_before == 1
    assert gain.share_after == pytest.approx(1.0)


def test_gain_beside_station_is_zero(town_circle: ServiceCircle) -> None:
    gain = town_circle.marginal_gain(108.941, 34.26)

    assert gain.newly_covered == 0
    assert gain.by_district == {}


@pytest.mark.parametrize(
    ("lon", "lat", "field", "rule"),
    [
        (0.0, 0.0, "candidate", "null_island"),
        (34.26, 108.94, "candidate", "swapped_axes"),
        (116.4, 39.9, "candidate", "outside_xian"),
        (float("nan"), 34.26, "lon", "coordinate_nan"),
    ],
)
def test_gain_rejects_invalid_candidate(
    town_circle: ServiceCircle, lon: float, lat: float, field: str, rule: str
) -> None:
    with pytest.raises(InvalidCoordinateError) as info:
        town_circle.marginal_gain(lon, lat)

    assert info.value.field == field
    assert info.value.rule == rule


def test_circle_requires_stations() -> None:
    grid = WalkGrid.over_area(TOWN)
    no_stations = pd.DataFrame({"name": [], "lon": [], "lat": []})

    with pytest.raises(ValueError, match="stations is empty"):
        ServiceCircle(grid, PLACES, no_stations)


def test_gap_map_loads_only_local_assets(town_circle: ServiceCircle) -> None:
    page = gap_map(town_circle, assets_url="/assets/leaflet").get_root().render()

    assert "https://" not in page
    assert "/assets/leaflet/leaflet.js" in page
    assert "<script>远小区" not in page
    assert "&lt;script&gt;远小区" in page


@pytest.fixture(scope="module")
def city_circle(data_dir: Path, regions: Regions) -> ServiceCircle:
    """The real residential places and HR offices on the city-wide 250 m grid."""
    grid = WalkGrid.over_area(regions.city_outline)
    places = load_residential_places(data_dir, regions)
    stations = load_employment_stations(data_dir)
    return ServiceCircle(grid, places, stations)


def test_real_places_and_stations(city_circle: ServiceCircle) -> None:
    places = city_circle.places

    # 2,851 Baidu compounds and dormitories; 1,456 Hi-tech Zone Amap compounds remain
    # after dropping those within 50 m of a Baidu one.
    assert len(places) == 4_307
    assert (places["source"] == "baidu_poi").sum() == 2_851
    assert len(city_circle.stations) == 78
    assert places["district_code"].notna().all()
    assert places["street_code"].notna().mean() > 0.9


def test_real_grid_error_against_straight_line(city_circle: ServiceCircle) -> None:
    places = city_circle.places
    straight = straight_line_minutes(
        places, city_circle.stations, city_circle.grid.params.minutes_per_m
    )
    excess = places["minutes"].to_numpy() - straight
    disagree = (straight <= 15.0) != places["covered"].to_numpy()

    # Measured: median 0.47 min, 95th percentile 1.96 min, 45 places (1.0 %) disagree.
    assert np.median(excess) < 0.6
    assert np.percentile(excess, 95) < 2.5
    assert (excess > -0.05).all()
    assert disagree.mean() < 0.015


def test_real_city_share(city_circle: ServiceCircle) -> None:
    # Measured 0.366 = 1,578 of 4,307 places.
    assert city_circle.places["covered"].mean() == pytest.approx(0.366, abs=0.005)
