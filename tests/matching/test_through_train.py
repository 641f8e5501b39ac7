"""The community through-train: placing communities, employer sites and reach by mode."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geo.regions import Regions, load_regions
from geo.transit import TransitNetwork
from geo.transit.itinerary import Leg, LegKind, Route
from matching.through_train import (
    CommunityPlace,
    employer_sites,
    place_community,
    route_key,
    through_train,
)

# Hu Yi community (胡一社区), whose street 胡家庙街道 has an office POI.
HUYI = "610102009012"
# Xianning community (咸宁社区), whose street has no office POI.
XIANNING = "610102004001"


@pytest.fixture(scope="module")
def regions(data_dir: Path) -> Regions:
    return load_regions(data_dir)


@pytest.fixture(scope="module")
def sites() -> pd.DataFrame:
    """400 employer sites spread over central Xi'an, two postings each, plus a city-level one."""
    rng = np.random.default_rng(3)
    lons = rng.uniform(108.85, 109.05, 400)
    lats = rng.uniform(34.18, 34.34, 400)
    rows = [
        {
            "anchor_id": f"a{i:03d}",
            "company": f"公司{i}",
            "title": f"岗位{i}-{j}",
            "lon": lons[i],
            "lat": lats[i],
            "precision": "poi",
        }
        for i in range(400)
        for j in range(2)
    ]
    rows.append(
        {
            "anchor_id": "city",
            "company": "全市",
            "title": "x",
            "lon": 108.94,
            "lat": 34.26,
            "precision": "city",
        }
    )
    return employer_sites(pd.DataFrame(rows))


def test_place_community_at_street_office(regions: Regions) -> None:
    place = place_community(regions, HUYI)
    street = regions.street_by_code(HUYI[:9])

    assert street is not None
    assert place.placed_by == "street_office"
    assert (place.lon, place.lat) == (street.lon, street.lat)
    assert place.name == "胡一社区居民委员会"
    assert place.street_name == "胡家庙街道"
    assert place.district_name == "新城区"


def test_place_community_falls_back_to_seat(regions: Regions) -> None:
    place = place_community(regions, XIANNING)
    district = regions.district("610102")

    assert district is not None
    assert place.placed_by == "district_seat"
    assert (place.lon, place.lat) == (district.lon, district.lat)


def test_place_community_rejects_bad_codes(regions: Regions) -> None:
    with pytest.raises(ValueError, match="12-digit"):
        place_community(regions, "61010200900")
    with pytest.raises(ValueError, match="12-digit"):
        place_community(regions, "61010200901x")
    with pytest.raises(LookupError, match="not found"):
        place_community(regions, "610102999999")


def test_employer_sites_groups_postings(sites: pd.DataFrame) -> None:
    assert len(sites) == 400
    assert "city" not in set(sites["anchor_id"])
    first = sites.iloc[0]
    assert first["anchor_id"] == "a000"
    assert first["n_postings"] == 2
    assert first["name"] == "公司0"
    assert first["titles"] == ("岗位0-0", "岗位0-1")


def test_reach_matches_matrix(transit_network: TransitNetwork, sites: pd.DataFrame) -> None:
    place = CommunityPlace(lon=108.9472, lat=34.2230, placed_by="point")
    modes = ("walk", "bike", "transit")

    result = through_train(transit_network, sites, place, 25, modes, limit=500)

    assert [reach.mode for reach in result.modes] == list(modes)
    for reach in result.modes:
        expected = transit_network.matrix(
            [place.lon], [place.lat], sites["lon"], sites["lat"], reach.mode
        )[0]
        reachable = expected <= 25
        listed = [employer for group in reach.groups for employer in group.employers]
        assert reach.n_employers == int(reachable.sum())
        assert reach.n_postings == 2 * reach.n_employers
        assert reach.truncated is False
        assert sorted(e.anchor_id for e in listed) == sorted(sites["anchor_id"][reachable])
        assert all(employer.minutes <= 25 + 1e-4 for employer in listed)
    walk, bike, transit = result.modes
    assert walk.n_employers < bike.n_employers
    assert walk.n_employers <= transit.n_employers


def test_transit_groups_by_first_ride(transit_network: TransitNetwork, sites: pd.DataFrame) -> None:
    place = CommunityPlace(lon=108.9472, lat=34.2230, placed_by="point")

    (reach,) = through_train(transit_network, sites, place, 40, "transit", limit=60).modes

    assert reach.truncated is True
    assert sum(len(group.employers) for group in reach.groups) == 60
    assert any(group.key.startswith(("metro:", "bus:")) for group in reach.groups)
    sizes = [len(group.employers) for group in reach.groups]
    assert sizes == sorted(sizes, reverse=True)
    for group in reach.groups:
        for employer in group.employers:
            assert route_key(employer.trip)[0] == group.key
            minutes = [e.minutes for e in group.employers]
            assert minutes == sorted(minutes)


def test_through_train_rejects_limits(transit_network: TransitNetwork, sites: pd.DataFrame) -> None:
    place = CommunityPlace(lon=108.9472, lat=34.2230, placed_by="point")

    with pytest.raises(ValueError, match="minutes"):
        through_train(transit_network, sites, place, 121, "transit")
    with pytest.raises(ValueError, match="minutes"):
        through_train(transit_network, sites, place, math.nan, "transit")
    with pytest.raises(ValueError, match="limit"):
        through_train(transit_network, sites, place, 30, "transit", limit=0)


def test_through_train_without_sites(transit_network: TransitNetwork) -> None:
    place = CommunityPlace(lon=108.9472, lat=34.2230, placed_by="point")
    empty = employer_sites(
        pd.DataFrame(columns=["anchor_id", "company", "title", "lon", "lat", "precision"])
    )

    (reach,) = through_train(transit_network, empty, place, 30, "walk").modes

    assert (reach.n_employers, reach.groups) == (0, ())


def test_route_key_labels() -> None:
    metro = Leg(LegKind.METRO, 10, line="2", line_name_zh="地铁2号线", line_name_en="Line 2")
    walk = Leg(LegKind.WALK, 3)

    expected = ("metro:2", "地铁2号线", "Metro Line 2")
    assert route_key(Route(13, "transit", (walk, metro))) == expected
    bus = Leg(LegKind.BUS, 9, line="37")
    assert route_key(Route(9, "transit", (bus,)))[0] == "bus:37"
    assert route_key(Route(5, "walk", (walk,))) == ("walk", "步行", "On foot")
