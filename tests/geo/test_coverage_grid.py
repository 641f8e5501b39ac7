"""Tests of the walking grid against the straight-line walking model."""

import numpy as np
import numpy.typing as npt
import pytest
from shapely.geometry import box

from geo.coverage.grid import WalkGrid, WalkGridParameters
from geo.crs import haversine_m

# A 6 km x 7 km box around the Bell Tower (钟楼), WGS84 degrees.
CENTRE_BOX = box(108.91, 34.23, 108.97, 34.29)
# Worst excess of a 16-neighbour grid path over the straight line: 1 / cos(13.3 deg).
GRID_EXCESS = 1.028


@pytest.fixture(scope="module")
def grid() -> WalkGrid:
    """250 m cells over the central box."""
    return WalkGrid.over_area(CENTRE_BOX)


def straight_minutes(
    grid: WalkGrid, lon1: float, lat1: float, lon2: npt.ArrayLike, lat2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Minutes of the straight-line walking model (haversine times detour over speed)."""
    return haversine_m(lon1, lat1, lon2, lat2) * grid.params.minutes_per_m


def test_grid_never_beats_straight_line(grid: WalkGrid) -> None:
    rng = np.random.default_rng(7)
    lons = rng.uniform(108.915, 108.965, 200)
    lats = rng.uniform(34.235, 34.285, 200)
    minutes = grid.read(grid.minutes_from([108.94], [34.26]), lons, lats)
    straight = straight_minutes(grid, 108.94, 34.26, lons, lats)
    # Via the nearest centres A, B of the ends s, p: |sA| + 1.028 |AB| + |Bp| is at most
    # 1.028 |sp| + 2.028 (|sA| + |Bp|), and each snap is at most half a cell diagonal.
    half_diagonal_min = grid.params.cell_m * np.sqrt(0.5) * grid.params.minutes_per_m
    snap_bound = 2.028 * 2 * half_diagonal_min

    # Haversine and EPSG:4545 distances differ by well under 0.5 %.
    assert (minutes >= straight * 0.995).all()
    assert (minutes <= straight * GRID_EXCESS + snap_bound).all()
    assert np.median(minutes / straight) < 1.03


def test_grid_long_walk_error_is_small(grid: WalkGrid) -> None:
    minutes = grid.read(grid.minutes_from([108.915], [34.235]), [108.965], [34.285])[0]
    straight = float(straight_minutes(grid, 108.915, 34.235, 108.965, 34.285))

    assert straight == pytest.approx(120.0, abs=10.0)
    assert minutes / straight < GRID_EXCESS


def test_multi_source_is_minimum_of_single_sources(grid: WalkGrid) -> None:
    sources = ([108.92, 108.96, 108.95], [34.24, 34.28, 34.25])
    together = grid.minutes_from(*sources)
    separate = np.min(
        [grid.minutes_from([lon], [lat]) for lon, lat in zip(*sources, strict=True)], axis=0
    )

    np.testing.assert_allclose(together, separate)


def test_duplicate_sources_do_not_add_up(grid: WalkGrid) -> None:
    once = grid.minutes_from([108.94], [34.26])
    twice = grid.minutes_from([108.94, 108.94], [34.26, 34.26])

    np.testing.assert_allclose(once, twice)


def test_limit_leaves_far_cells_unreached(grid: WalkGrid) -> None:
    minutes = grid.minutes_from([108.94], [34.26], limit_min=10.0)

    assert np.isinf(minutes).any()
    assert (minutes[np.isfinite(minutes)] <= 10.0).all()
    assert np.isfinite(minutes).sum() < len(grid) / 4


def test_cells_lie_inside_area(grid: WalkGrid) -> None:
    min_lon, min_lat, max_lon, max_lat = CENTRE_BOX.bounds

    assert ((grid.lons > min_lon) & (grid.lons < max_lon)).all()
    assert ((grid.lats > min_lat) & (grid.lats < max_lat)).all()
    assert len(grid) == pytest.approx(6.0 * 6.7 * 16, rel=0.15)


def test_empty_area_is_rejected() -> None:
    with pytest.raises(ValueError, match="no cells"):
        WalkGrid.over_area(box(108.94, 34.26, 108.9401, 34.2601))


@pytest.mark.parametrize("name", ["cell_m", "walk_speed_kmh", "walk_detour_factor"])
@pytest.mark.parametrize("value", [0.0, -1.0, float("nan")])
def test_parameters_reject_non_positive(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        WalkGridParameters(**{name: value})


def test_no_sources_is_rejected(grid: WalkGrid) -> None:
    with pytest.raises(ValueError, match="sources is empty"):
        grid.minutes_from([], [])
