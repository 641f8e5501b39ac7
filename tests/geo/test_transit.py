"""Tests of the transit commute model on the real Xi'an metro and bus data."""

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyproj
import pytest

from geo.crs import XIAN_BOUNDS_WGS84, CoordSys, haversine_m, to_wgs84
from geo.errors import InvalidCoordinateError, InvalidTravelModeError
from geo.transit import (
    TRAVEL_MODES,
    LegKind,
    Route,
    TransitNetwork,
    TransitParameters,
    parse_travel_modes,
)
from geo.transit.stop_times import CACHE_PREFIX

WGS84 = pyproj.Geod(ellps="WGS84")

# Central Xi'an, inside the second ring road and a little beyond, WGS84 degrees.
CENTRE_BOX = (108.86, 34.19, 109.03, 34.33)


def _offset(point: tuple[float, float], bearing_deg: float, metres: float) -> tuple[float, float]:
    lon, lat, _ = WGS84.fwd(point[0], point[1], bearing_deg, metres)
    return float(lon), float(lat)


def _random_points(count: int, seed: int) -> tuple[npt.NDArray[np.float64], ...]:
    rng = np.random.default_rng(seed)
    min_lon, min_lat, max_lon, max_lat = CENTRE_BOX
    return rng.uniform(min_lon, max_lon, count), rng.uniform(min_lat, max_lat, count)


def _kinds(route: Route) -> list[LegKind]:
    return [leg.kind for leg in route.legs]


def _station_route(network: TransitNetwork, origin: str, destination: str) -> Route:
    """Route between two station points by transit (walking directly allowed)."""
    return network.route(
        network.station_point(origin), network.station_point(destination), "transit"
    )


def test_metro_network_from_openmetro(transit_network: TransitNetwork) -> None:
    metro = transit_network.metro

    assert len(metro) == 248
    assert len(metro.lines) == 13
    assert sum(len(line.stations) for line in metro.lines) == 287
    assert [line.line_id for line in metro.lines if line.loop] == ["8"]


def test_stations_stored_in_wgs84(transit_network: TransitNetwork) -> None:
    # 钟楼 station as the openmetro export gives it, GCJ-02.
    gcj_lon, gcj_lat = 108.947068, 34.261023

    stored = transit_network.station_point("钟楼")

    assert stored == pytest.approx(to_wgs84(gcj_lon, gcj_lat, CoordSys.GCJ02), abs=1e-9)
    # The GCJ-02 offset in Xi'an is several hundred metres.
    assert float(haversine_m(gcj_lon, gcj_lat, *stored)) > 300


def test_unknown_station_name(transit_network: TransitNetwork) -> None:
    with pytest.raises(LookupError, match="不存在站"):
        transit_network.station_point("不存在站")


def test_bus_pseudo_stops_spacing(transit_network: TransitNetwork) -> None:
    bus = transit_network.bus
    same_line = bus.stop_line[1:] == bus.stop_line[:-1]

    gaps = haversine_m(bus.stop_lons[:-1], bus.stop_lats[:-1], bus.stop_lons[1:], bus.stop_lats[1:])

    # 529 geometries, 13 of them exact duplicates.
    assert len(bus.line_ids) == 516
    # A chord is never longer than the stretch of line it spans, 500 m at most in
    # EPSG:4545; haversine distances differ from those by up to 0.5 %.
    assert gaps[same_line].max() <= 500.0 * 1.005
    min_lon, min_lat, max_lon, max_lat = XIAN_BOUNDS_WGS84
    assert ((bus.stop_lons > min_lon) & (bus.stop_lons < max_lon)).all()
    assert ((bus.stop_lats > min_lat) & (bus.stop_lats < max_lat)).all()


def test_line_2_first_phase_takes_47_min(transit_network: TransitNetwork) -> None:
    # The metro speed is calibrated on this run: 韦曲南 to 西安北站, 20 sections.
    route = _station_route(transit_network, "韦曲南", "西安北站")

    (ride,) = [leg for leg in route.legs if leg.kind is LegKind.METRO]
    assert (ride.line, ride.stops) == ("2", 20)
    assert ride.minutes - ride.wait_min == pytest.approx(47.0, abs=0.1)


def test_xiaozhai_to_beidajie_on_line_2(transit_network: TransitNetwork) -> None:
    origin = _offset(transit_network.station_point("小寨"), 180.0, 200.0)
    destination = _offset(transit_network.station_point("北大街"), 0.0, 200.0)

    route = transit_network.route(origin, destination, "walk;transit")

    assert route.mode == "transit"
    assert _kinds(route) == [LegKind.WALK, LegKind.METRO, LegKind.WALK]
    ride = route.legs[1]
    assert (ride.line, ride.from_zh, ride.to_zh, ride.stops) == ("2", "小寨", "北大街", 5)
    assert 10.0 <= route.minutes <= 25.0
    assert route.text() == "步行5分钟 → 地铁2号线 小寨→北大街（5站）→ 步行5分钟"
    assert route.text("en") == (
        "Walk 5 min → Metro Line 2 Xiao Zhai→Bei Da Jie (5 stops) → Walk 5 min"
    )


def test_route_legs_add_up(transit_network: TransitNetwork) -> None:
    origin = _offset(transit_network.station_point("小寨"), 180.0, 200.0)
    destination = _offset(transit_network.station_point("北大街"), 0.0, 200.0)
    params = transit_network.params

    route = transit_network.route(origin, destination, "walk;transit")

    assert sum(leg.minutes for leg in route.legs) == pytest.approx(route.minutes, abs=1e-3)
    first_walk = route.legs[0].minutes
    walked = 200.0 * params.walk_detour_factor / params.walk_m_per_min
    # The walk to the platform includes entering the station (the straight line to the
    # station point is 200 m).
    assert first_walk == pytest.approx(walked + params.station_entry_min, abs=0.05)
    assert route.legs[1].wait_min == pytest.approx(params.metro_wait_min("2"))


def test_transfer_adds_one_penalty(transit_network: TransitNetwork) -> None:
    params = transit_network.params

    route = _station_route(transit_network, "钟楼", "大雁塔")

    assert _kinds(route) == [
        LegKind.WALK,
        LegKind.METRO,
        LegKind.TRANSFER,
        LegKind.METRO,
        LegKind.WALK,
    ]
    first, transfer, second = route.legs[1:4]
    assert (first.line, first.to_zh, second.line, second.from_zh) == ("2", "小寨", "3", "小寨")
    assert transfer.minutes == params.transfer_walk_min
    assert second.wait_min == pytest.approx(params.metro_wait_min("3"))
    assert sum(leg.minutes for leg in route.legs) == pytest.approx(route.minutes, abs=1e-3)
    assert "站内换乘4分钟" in route.text()


def test_loop_line_wraps(transit_network: TransitNetwork) -> None:
    # 省体育馆 and 山门口 are the first and last station of the ring line 8.
    route = _station_route(transit_network, "省体育馆", "山门口")

    (ride,) = [leg for leg in route.legs if leg.kind is LegKind.METRO]
    assert (ride.line, ride.stops) == ("8", 1)


def test_walking_300_m_beats_metro(transit_network: TransitNetwork) -> None:
    origin = transit_network.station_point("小寨")
    destination = _offset(origin, 90.0, 300.0)
    params = transit_network.params

    by_mode = transit_network.mode_matrices(
        [origin[0]], [origin[1]], [destination[0]], [destination[1]], "walk;transit"
    )
    route = transit_network.route(origin, destination, "transit")

    assert by_mode["walk"][0, 0] < by_mode["transit"][0, 0]
    assert route.mode == "walk"
    assert _kinds(route) == [LegKind.WALK]
    metres = float(haversine_m(*origin, *destination))
    walked = metres * params.walk_detour_factor / params.walk_m_per_min
    assert route.minutes == pytest.approx(walked, rel=1e-6)


def test_bus_leg_described(transit_network: TransitNetwork) -> None:
    # West of the city centre, away from the metro, the fastest transit trip is by bus.
    route = transit_network.route((108.85, 34.20), (108.80, 34.23), "transit")

    buses = [leg for leg in route.legs if leg.kind is LegKind.BUS]
    assert route.mode == "transit"
    assert buses
    assert all(leg.wait_min == transit_network.params.bus_wait_min for leg in buses)
    assert all(leg.stops >= 1 and leg.distance_m is not None for leg in buses)
    assert "推算" in route.text()
    assert "derived stops" in route.text("en")


def test_matrix_equals_route_minutes(transit_network: TransitNetwork) -> None:
    o_lons, o_lats = _random_points(8, seed=11)
    d_lons, d_lats = _random_points(10, seed=12)

    for modes in ("walk;transit", "walk;bike;transit;drive", "drive"):
        matrix = transit_network.matrix(o_lons, o_lats, d_lons, d_lats, modes)
        for i in range(len(o_lons)):
            for j in range(len(d_lons)):
                origin = (float(o_lons[i]), float(o_lats[i]))
                destination = (float(d_lons[j]), float(d_lats[j]))
                route = transit_network.route(origin, destination, modes)
                assert route.minutes == float(matrix[i, j]), (modes, i, j)
                assert sum(leg.minutes for leg in route.legs) == pytest.approx(
                    route.minutes, abs=1e-3
                )


def test_matrix_monotone_in_modes(transit_network: TransitNetwork) -> None:
    points = (*_random_points(30, seed=21), *_random_points(400, seed=22))

    walk = transit_network.matrix(*points, "walk")
    transit = transit_network.matrix(*points, "walk;transit")
    every = transit_network.matrix(*points, "walk;bike;transit;drive")

    assert walk.dtype == np.float32
    assert walk.shape == (30, 400)
    assert (transit <= walk).all()
    assert (every <= transit).all()
    assert (transit < walk).mean() > 0.5
    assert (every < transit).any()


def test_matrix_always_allows_walking(transit_network: TransitNetwork) -> None:
    points = (*_random_points(5, seed=31), *_random_points(50, seed=32))

    transit_only = transit_network.matrix(*points, "transit")
    with_walk = transit_network.matrix(*points, "transit;walk")

    np.testing.assert_array_equal(transit_only, with_walk)


def test_matrix_repeated_points(transit_network: TransitNetwork) -> None:
    lons, lats = _random_points(3, seed=41)
    d_lons = np.array([lons[0], lons[1], lons[0]])
    d_lats = np.array([lats[0], lats[1], lats[0]])

    minutes = transit_network.matrix(lons, lats, d_lons, d_lats, "walk;transit")

    np.testing.assert_array_equal(minutes[:, 0], minutes[:, 2])
    assert minutes[0, 0] == 0.0
    assert transit_network.matrix(lons, lats, [], [], "walk").shape == (3, 0)


@pytest.mark.parametrize("mode", TRAVEL_MODES)
def test_reach_bounds_reachable_points(transit_network: TransitNetwork, mode: str) -> None:
    o_lons, o_lats = _random_points(20, seed=51)
    d_lons, d_lats = _random_points(3_000, seed=52)

    minutes = transit_network.mode_matrices(o_lons, o_lats, d_lons, d_lats, mode)[mode]
    metres = haversine_m(o_lons[:, None], o_lats[:, None], d_lons[None, :], d_lats[None, :])

    for limit in (10.0, 30.0, 60.0):
        reachable = minutes <= limit
        assert (metres[reachable] <= transit_network.reach_m(limit, mode)).all()
    assert transit_network.reach_m(30.0, mode) < transit_network.reach_m(60.0, mode)


def test_reach_rejects_negative_minutes(transit_network: TransitNetwork) -> None:
    with pytest.raises(ValueError, match="max_commute_min"):
        transit_network.reach_m(-1.0, "walk")


def test_unknown_mode_names_field(transit_network: TransitNetwork) -> None:
    with pytest.raises(InvalidTravelModeError, match="'teleport'") as caught:
        transit_network.matrix([108.94], [34.26], [108.95], [34.27], "walk;teleport")

    assert caught.value.field == "modes"
    assert caught.value.rule == "unknown_travel_mode"
    assert caught.value.rule_params == {"value": "teleport"}


def test_empty_modes_names_field(transit_network: TransitNetwork) -> None:
    with pytest.raises(InvalidTravelModeError, match="empty") as caught:
        transit_network.route((108.94, 34.26), (108.95, 34.27), " ; ")

    assert caught.value.field == "modes"
    assert caught.value.rule == "no_travel_mode"


def test_bad_coordinate_names_array(transit_network: TransitNetwork) -> None:
    with pytest.raises(InvalidCoordinateError, match=r"dest_lat\[1\]") as caught:
        transit_network.matrix([108.94], [34.26], [108.95, 108.96], [34.27, np.nan], "walk")

    assert caught.value.field == "dest_lat"


def test_swapped_route_point_names_field(transit_network: TransitNetwork) -> None:
    with pytest.raises(InvalidCoordinateError, match="swapped") as caught:
        transit_network.route((34.26, 108.94), (108.95, 34.27), "walk")

    assert caught.value.field == "origin"


def test_mismatched_arrays_rejected(transit_network: TransitNetwork) -> None:
    with pytest.raises(ValueError, match="origins_lon and origins_lat"):
        transit_network.matrix([108.94, 108.95], [34.26], [108.95], [34.27], "walk")


def test_parse_travel_modes_orders() -> None:
    assert parse_travel_modes(" Transit;walk;walk ") == ("walk", "transit")
    assert parse_travel_modes(["drive", "bike"]) == ("bike", "drive")


def test_route_text_rejects_language() -> None:
    with pytest.raises(ValueError, match="'fr'"):
        Route(minutes=1.0, mode="walk").text("fr")


def test_parameters_waits() -> None:
    params = TransitParameters()

    assert params.metro_wait_min("2") == pytest.approx(2.97 / 2)
    assert params.metro_wait_min("9") == params.default_metro_headway_min / 2
    # 西户线 runs 70 minutes apart; the wait is capped.
    assert params.metro_wait_min("西户线") == params.max_expected_wait_min
    assert params.bus_wait_min == 5.0


def test_build_time_recorded(transit_network: TransitNetwork) -> None:
    assert transit_network.build_seconds > 0
    assert transit_network.stop_minutes.shape == (248 + transit_network.bus.n_cells,) * 2


def _small_network(
    network: TransitNetwork, cache_dir: Path, max_transit_min: float
) -> TransitNetwork:
    """Rebuild the network with a short search limit, which keeps the all-pairs step quick."""
    params = replace(network.params, max_transit_min=max_transit_min)
    return TransitNetwork(network.metro, network.bus, params, cache_dir=cache_dir)


def test_stop_times_read_from_cache(
    transit_network: TransitNetwork, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = _small_network(transit_network, tmp_path, 10.0)

    with caplog.at_level(logging.INFO, logger="geo.transit.stop_times"):
        second = _small_network(transit_network, tmp_path, 10.0)

    assert "read stop-to-stop minutes" in caplog.text
    np.testing.assert_array_equal(first.stop_minutes, second.stop_minutes)
    assert second.reach_m(20.0, "transit") == first.reach_m(20.0, "transit")
    assert len(list(tmp_path.glob(f"{CACHE_PREFIX}*.npz"))) == 1


def test_changed_network_replaces_cache(transit_network: TransitNetwork, tmp_path: Path) -> None:
    _small_network(transit_network, tmp_path, 10.0)
    (old,) = tmp_path.glob(f"{CACHE_PREFIX}*.npz")

    _small_network(transit_network, tmp_path, 12.0)

    (new,) = tmp_path.glob(f"{CACHE_PREFIX}*.npz")
    assert new != old


def test_unreadable_cache_recomputed(
    transit_network: TransitNetwork, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = _small_network(transit_network, tmp_path, 10.0)
    (path,) = tmp_path.glob(f"{CACHE_PREFIX}*.npz")
    path.write_bytes(b"not a zip file")

    with caplog.at_level(logging.WARNING, logger="geo.transit.stop_times"):
        again = _small_network(transit_network, tmp_path, 10.0)

    assert "ignored unreadable transit cache" in caplog.text
    np.testing.assert_array_equal(first.stop_minutes, again.stop_minutes)


def test_routes_equal_single_routes(transit_network: TransitNetwork) -> None:
    origin = transit_network.station_point("小寨")
    rng = np.random.default_rng(21)
    lons = 108.85 + rng.random(25) * 0.2
    lats = 34.20 + rng.random(25) * 0.15

    trips = transit_network.routes(origin, lons, lats, "walk;transit;bike")

    assert len(trips) == 25
    assert {trip.mode for trip in trips} >= {"transit"}
    for trip, lon, lat in zip(trips, lons, lats, strict=True):
        assert trip == transit_network.route(origin, (lon, lat), "walk;transit;bike")
