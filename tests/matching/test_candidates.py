"""Tests of candidate retrieval through the BallTree index."""

import math

import numpy as np
import pandas as pd
import pyproj
import pytest

from geo.crs import EARTH_RADIUS_M, haversine_m
from geo.errors import InvalidCoordinateError, InvalidTravelModeError
from geo.transit import TRAVEL_MODES, TransitNetwork, parse_travel_modes
from matching.candidates import (
    DETOUR_FACTOR,
    MODE_SPEEDS_KMH,
    JobIndex,
    StraightLineCommute,
    parse_modes,
)

HOME = (108.9480, 34.2600)  # near the Bell Tower, WGS84
SPHERE = pyproj.Geod(a=EARTH_RADIUS_M, b=EARTH_RADIUS_M)


def _posting(
    posting_id: str, lon: float, lat: float, precision: str = "exact"
) -> dict[str, object]:
    return {
        "posting_id": posting_id,
        "title": f"岗位{posting_id}",
        "lon": lon,
        "lat": lat,
        "precision": precision,
        "published_on": "2018-09-26",
    }


def _at(distance_m: float, bearing_deg: float) -> tuple[float, float]:
    lon, lat, _ = SPHERE.fwd(HOME[0], HOME[1], bearing_deg, distance_m)
    return float(lon), float(lat)


@pytest.fixture
def offsets_frame() -> pd.DataFrame:
    """Postings at known sphere distances from HOME, plus awkward rows."""
    rows = [
        _posting(f"d{int(distance)}", *_at(distance, bearing))
        for distance, bearing in [(100, 0), (500, 90), (1000, 200), (2000, 45), (5000, 300)]
    ]
    rows.append(_posting("district3000", *_at(3000, 135), precision="district"))
    rows.append(_posting("same-point", *HOME))
    rows.append(_posting("city-old", *HOME, precision="city") | {"published_on": "2018-08-01"})
    rows.append(_posting("city-new", *HOME, precision="city") | {"published_on": "2018-09-27"})
    rows.append(_posting("no-coordinate", float("nan"), float("nan")))
    return pd.DataFrame(rows)


def test_within_known_offsets(offsets_frame: pd.DataFrame) -> None:
    found = JobIndex(offsets_frame).within(*HOME, 1500.0)

    assert list(found["posting_id"]) == ["same-point", "d100", "d500", "d1000"]
    expected = np.array([0.0, 100.0, 500.0, 1000.0])
    np.testing.assert_allclose(found["distance_m"], expected, rtol=1e-6, atol=1e-6)


def test_within_marks_approximate_distance(offsets_frame: pd.DataFrame) -> None:
    found = JobIndex(offsets_frame).within(*HOME, 3500.0).set_index("posting_id")

    assert bool(found.loc["district3000", "distance_is_estimate"])
    assert not bool(found.loc["d2000", "distance_is_estimate"])


def test_within_never_returns_city_level(offsets_frame: pd.DataFrame) -> None:
    found = JobIndex(offsets_frame).within(*HOME, 100_000.0)

    assert not found["posting_id"].str.startswith("city").any()
    assert "no-coordinate" not in set(found["posting_id"])
    assert len(found) == 7


def test_within_radius_zero(offsets_frame: pd.DataFrame) -> None:
    found = JobIndex(offsets_frame).within(*HOME, 0.0)

    assert list(found["posting_id"]) == ["same-point"]


def test_within_point_on_radius(offsets_frame: pd.DataFrame) -> None:
    index = JobIndex(offsets_frame)
    target = offsets_frame.set_index("posting_id").loc["d2000"]
    exact = float(haversine_m(HOME[0], HOME[1], target["lon"], target["lat"]))

    assert "d2000" in set(index.within(*HOME, exact)["posting_id"])
    assert "d2000" not in set(index.within(*HOME, exact * (1 - 1e-6))["posting_id"])
    assert exact == pytest.approx(2000.0, rel=1e-6)


def test_within_empty_frame() -> None:
    empty = pd.DataFrame(columns=["posting_id", "lon", "lat", "precision"])
    found = JobIndex(empty).within(*HOME, 5000.0)

    assert found.empty
    assert "distance_m" in found.columns


@pytest.mark.parametrize(
    ("lon", "lat"), [(float("nan"), 34.26), (108.9, float("inf")), (34.26, 108.95)]
)
def test_within_rejects_bad_point(offsets_frame: pd.DataFrame, lon: float, lat: float) -> None:
    with pytest.raises(InvalidCoordinateError):
        JobIndex(offsets_frame).within(lon, lat, 1000.0)


@pytest.mark.parametrize("radius", [-1.0, float("nan"), float("inf")])
def test_within_rejects_bad_radius(offsets_frame: pd.DataFrame, radius: float) -> None:
    with pytest.raises(ValueError, match="radius_m"):
        JobIndex(offsets_frame).within(*HOME, radius)


def test_within_matches_brute_force_70k() -> None:
    rng = np.random.default_rng(20240601)
    n = 70_000
    frame = pd.DataFrame(
        {
            "posting_id": [f"p{i}" for i in range(n)],
            "lon": rng.uniform(108.6, 109.3, n),
            "lat": rng.uniform(34.0, 34.5, n),
            "precision": rng.choice(["exact", "poi", "district", "zone"], n),
        }
    )
    index = JobIndex(frame)

    for lon, lat, radius in [
        (108.95, 34.26, 3000.0),
        (108.88, 34.20, 8000.0),
        (109.25, 34.45, 12000.0),
        (108.61, 34.01, 500.0),
    ]:
        found = index.within(lon, lat, radius)
        distances = haversine_m(lon, lat, frame["lon"].to_numpy(), frame["lat"].to_numpy())
        expected = set(frame.loc[distances <= radius, "posting_id"])
        assert set(found["posting_id"]) == expected
        assert found["distance_m"].is_monotonic_increasing


def test_for_commute_walk_radius(offsets_frame: pd.DataFrame) -> None:
    found = JobIndex(offsets_frame).for_commute(*HOME, 15.0, "walk")

    walk_m_per_min = MODE_SPEEDS_KMH["walk"] * 1000 / 60
    assert list(found["posting_id"]) == ["same-point", "d100", "d500"]
    expected = found["distance_m"] * DETOUR_FACTOR / walk_m_per_min
    np.testing.assert_allclose(found["estimated_commute_min"], expected)
    assert (found["estimated_commute_min"] <= 15.0).all()


def test_for_commute_uses_fastest_mode(offsets_frame: pd.DataFrame) -> None:
    found = JobIndex(offsets_frame).for_commute(*HOME, 30.0, "walk;transit")

    far = found.set_index("posting_id").loc["d5000"]
    assert far["commute_mode"] == "transit"
    assert far["estimated_commute_min"] == pytest.approx(5000 * DETOUR_FACTOR / 250.0, rel=1e-6)


def test_for_commute_city_fill_only_when_short(offsets_frame: pd.DataFrame) -> None:
    index = JobIndex(offsets_frame)

    without_fill = index.for_commute(*HOME, 15.0, ["walk"])
    filled = index.for_commute(*HOME, 15.0, ["walk"], min_results=4)

    assert len(without_fill) == 3
    assert list(filled["posting_id"]) == ["same-point", "d100", "d500", "city-new"]
    assert np.isnan(filled["distance_m"].iloc[-1])
    assert np.isnan(filled["estimated_commute_min"].iloc[-1])


def test_for_commute_rejects_unknown_mode(offsets_frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="'teleport'"):
        JobIndex(offsets_frame).for_commute(*HOME, 15.0, "teleport")


def test_parse_modes_rejects_empty() -> None:
    with pytest.raises(ValueError, match="empty"):
        parse_modes(" ; ")


def test_straight_line_reach_inverts_minutes() -> None:
    estimator = StraightLineCommute()
    reach = estimator.reach_m(40.0, "transit")

    assert float(estimator.minutes(np.array([reach]), "transit")[0]) == pytest.approx(40.0)


def test_uncertainty_widens_distance() -> None:
    lon, lat = 108.94, 34.26
    frame = pd.DataFrame(
        [
            _posting("exact", lon, lat + 0.009, "poi") | {"uncertainty_m": 0.0},
            _posting("area", lon, lat + 0.002, "district") | {"uncertainty_m": 3_000.0},
        ]
    )
    index = JobIndex(frame)

    found = index.within(lon, lat, 5_000)
    near = index.within(lon, lat, 2_000)

    assert found["posting_id"].tolist() == ["exact", "area"]
    assert found["distance_m"].iloc[1] == pytest.approx(
        math.hypot(found["point_distance_m"].iloc[1], 3_000.0)
    )
    assert near["posting_id"].tolist() == ["exact"]


def test_mode_names_match_transit_model() -> None:
    assert set(MODE_SPEEDS_KMH) == set(TRAVEL_MODES)


@pytest.fixture(scope="module")
def city_frame() -> pd.DataFrame:
    """3,000 postings spread over central Xi'an, a third of them approximate."""
    rng = np.random.default_rng(20261205)
    n = 3_000
    precision = rng.choice(["poi", "district", "zone", "business_area"], n, p=[0.6, 0.2, 0.1, 0.1])
    uncertainty = np.select(
        [precision == "district", precision == "zone", precision == "business_area"],
        [rng.uniform(1_500.0, 6_000.0, n), 3_000.0, 1_000.0],
        default=0.0,
    )
    frame = pd.DataFrame(
        {
            "posting_id": [f"p{i}" for i in range(n)],
            "lon": rng.uniform(108.80, 109.10, n),
            "lat": rng.uniform(34.15, 34.38, n),
            "precision": precision,
            "uncertainty_m": uncertainty,
            "published_on": "2018-09-26",
        }
    )
    city = pd.DataFrame([_posting("city-only", *HOME, precision="city")])
    return pd.concat([frame, city], ignore_index=True)


def _brute_force_minutes(
    network: TransitNetwork, frame: pd.DataFrame, home: tuple[float, float], modes: str
) -> pd.Series:
    """Minutes to every located posting without a search radius, as `for_commute` defines them."""
    located = frame[frame["precision"] != "city"]
    lons = located["lon"].to_numpy()
    lats = located["lat"].to_numpy()
    point_m = haversine_m(home[0], home[1], lons, lats)
    added_m = np.hypot(point_m, located["uncertainty_m"].to_numpy()) - point_m
    tried = parse_travel_modes(["walk", *parse_modes(modes)])
    by_mode = network.mode_matrices([home[0]], [home[1]], lons, lats, tried)
    straight = StraightLineCommute()
    minutes = np.min([by_mode[mode][0] + straight.minutes(added_m, mode) for mode in tried], axis=0)
    return pd.Series(minutes, index=located["posting_id"].to_numpy())


@pytest.mark.parametrize("modes", ["walk;transit", "walk;bike", "transit;drive"])
def test_network_commute_cuts_nothing_reachable(
    transit_network: TransitNetwork, city_frame: pd.DataFrame, modes: str
) -> None:
    index = JobIndex(city_frame, network=transit_network)
    homes = [(108.9480, 34.2600), (108.8850, 34.2300), (109.0100, 34.3200)]

    for home in homes:
        expected = _brute_force_minutes(transit_network, city_frame, home, modes)
        for limit in (15.0, 30.0, 60.0):
            found = index.for_commute(*home, limit, modes).set_index("posting_id")
            reachable = expected[expected <= limit]
            assert set(found.index) == set(reachable.index), (home, limit)
            np.testing.assert_allclose(
                found.loc[reachable.index, "estimated_commute_min"], reachable, rtol=1e-6
            )


def test_network_commute_sorted_with_modes(
    transit_network: TransitNetwork, city_frame: pd.DataFrame
) -> None:
    found = JobIndex(city_frame, network=transit_network).for_commute(
        108.9480, 34.2600, 45.0, "walk;transit"
    )

    assert found["estimated_commute_min"].is_monotonic_increasing
    assert set(found["commute_mode"]) == {"walk", "transit"}


def test_network_commute_walks_next_door(transit_network: TransitNetwork) -> None:
    frame = pd.DataFrame([_posting("next-door", *_at(150.0, 45.0))])

    found = JobIndex(frame, network=transit_network).for_commute(*HOME, 30.0, "transit")

    assert found["commute_mode"].tolist() == ["walk"]
    walked = 150.0 * transit_network.params.walk_detour_factor
    expected = walked / transit_network.params.walk_m_per_min
    assert found["estimated_commute_min"].iloc[0] == pytest.approx(expected, rel=1e-4)


def test_network_commute_rejects_unknown_mode(transit_network: TransitNetwork) -> None:
    frame = pd.DataFrame([_posting("d100", *_at(100.0, 0.0))])

    with pytest.raises(InvalidTravelModeError, match="'teleport'") as caught:
        JobIndex(frame, network=transit_network).for_commute(*HOME, 15.0, "walk;teleport")

    assert caught.value.field == "modes"
