"""Shuttle proposals: the rider rule, the DBSCAN clusters and the lines."""

import pandas as pd
import pytest

from matching.shuttle import ShuttleRules, cluster_points, propose_lines, riders

# Two pick-up areas about 5 km apart and one work area, WGS84 degrees.
HOME_A = (108.90, 34.20)
HOME_B = (108.95, 34.23)
WORK = (109.05, 34.30)


def _pair(
    seeker: str, home: tuple[float, float], transit: float, drive: float
) -> dict[str, object]:
    return {
        "seeker_id": seeker,
        "home_lon": home[0],
        "home_lat": home[1],
        "home_district_code": "610113",
        "anchor_id": "anc-1",
        "company": "某制造公司",
        "lon": WORK[0],
        "lat": WORK[1],
        "transit_min": transit,
        "drive_min": drive,
    }


def test_riders_rule_boundaries() -> None:
    rules = ShuttleRules(long_transit_min=45, max_ride_min=40, min_saving_min=15, access_min=8)
    pairs = pd.DataFrame(
        [
            _pair("long-transit", HOME_A, 60, 20),  # shuttle 34 min, saves 26: qualifies
            _pair("transit-ok", HOME_A, 45, 10),  # transit not above 45
            _pair("ride-too-long", HOME_A, 90, 30),  # shuttle 47 min > 40
            _pair("small-saving", HOME_A, 46, 20),  # saves 12 < 15
        ]
    )

    kept = riders(pairs, rules)

    assert kept["seeker_id"].tolist() == ["long-transit"]
    assert kept["shuttle_min"].iloc[0] == pytest.approx(20 * 1.3 + 8)


def test_cluster_points_by_radius() -> None:
    lons = [HOME_A[0], HOME_A[0] + 0.005, HOME_B[0]]
    lats = [HOME_A[1], HOME_A[1], HOME_B[1]]

    labels = cluster_points(lons, lats, radius_m=1_000)

    assert labels[0] == labels[1]
    assert labels[0] != labels[2]


def test_lines_need_min_riders() -> None:
    rules = ShuttleRules(min_riders=3)
    pairs = [_pair(f"a{i}", HOME_A, 70, 20) for i in range(3)]
    pairs += [_pair(f"b{i}", HOME_B, 70, 20) for i in range(2)]
    pairs.append(_pair("a0", HOME_A, 70, 20))  # the same seeker twice counts once
    qualifying = riders(pd.DataFrame(pairs), rules)

    lines = propose_lines(qualifying, rules)

    assert len(lines) == 1
    assert lines[0].riders == 3
    assert lines[0].home_lon == pytest.approx(HOME_A[0], abs=1e-6)
    assert lines[0].work_lat == pytest.approx(WORK[1], abs=1e-6)
    assert lines[0].employers == ("某制造公司",)


def test_no_qualifying_pairs_no_lines() -> None:
    empty = riders(pd.DataFrame([_pair("x", HOME_A, 20, 10)]), ShuttleRules())

    assert propose_lines(empty, ShuttleRules()) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("long_transit_min", 0.0), ("home_radius_m", -1.0), ("shuttle_detour", 0.5)],
)
def test_rules_reject_invalid(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        ShuttleRules(**{field: value})  # type: ignore[arg-type]
