"""Tests of jobs reachable and the two-step floating catchment (2SFCA)."""

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from geo.coverage.access import measure_accessibility, scores_by_group, two_step_scores
from geo.crs import haversine_m


class StraightLineTravel:
    """Door-to-door minutes at 300 m per minute in a straight line, for exact expectations."""

    def matrix(
        self,
        origins_lon: npt.ArrayLike,
        origins_lat: npt.ArrayLike,
        dest_lon: npt.ArrayLike,
        dest_lat: npt.ArrayLike,
        modes: str | Iterable[str],
    ) -> npt.NDArray[np.float32]:
        distance = haversine_m(
            np.asarray(origins_lon)[:, None],
            np.asarray(origins_lat)[:, None],
            np.asarray(dest_lon)[None, :],
            np.asarray(dest_lat)[None, :],
        )
        return (distance / 300.0).astype(np.float32)


def test_two_step_golden_value() -> None:
    # Area 0 (2 seekers) reaches both job cells; area 1 (1 seeker) only the second.
    within = np.array([[True, True], [False, True]])
    supply = np.array([3.0, 1.0])
    demand = np.array([2.0, 1.0])

    scores = two_step_scores(within, supply, demand)

    # R = [3/2, 1/3], so A_0 = 3/2 + 1/3 and A_1 = 1/3.
    np.testing.assert_allclose(scores, [11 / 6, 1 / 3])


def test_two_step_conserves_reached_supply() -> None:
    rng = np.random.default_rng(3)
    within = rng.random((30, 50)) < 0.2
    supply = rng.integers(1, 20, 50).astype(np.float64)
    demand = rng.integers(1, 9, 30).astype(np.float64)

    scores = two_step_scores(within, supply, demand)

    reached = within.any(axis=0)
    assert demand @ scores == pytest.approx(supply[reached].sum())


def test_two_step_without_reach_is_zero() -> None:
    within = np.zeros((2, 3), dtype=bool)

    scores = two_step_scores(within, np.ones(3), np.ones(2))

    np.testing.assert_array_equal(scores, [0.0, 0.0])


@pytest.fixture
def seekers() -> pd.DataFrame:
    """Three seekers in one 1 km cell near 钟楼 and one 9 km north, WGS84."""
    return pd.DataFrame(
        {
            "home_lon": [108.9400, 108.9405, 108.9402, 108.9400],
            "home_lat": [34.2600, 34.2603, 34.2601, 34.3400],
            "home_district_code": ["610103", "610103", "610103", "610112"],
            "group": ["graduate", "general", "general", "assistance"],
        }
    )


@pytest.fixture
def postings() -> pd.DataFrame:
    """Two postings 1.5 km east of 钟楼, one far east, and one only located as 西安."""
    return pd.DataFrame(
        {
            "lon": [108.9565, 108.9566, 109.10, 108.94],
            "lat": [34.2600, 34.2600, 34.26, 34.26],
            "precision": ["poi", "building", "poi", "city"],
        }
    )


def test_jobs_reachable_per_area(seekers: pd.DataFrame, postings: pd.DataFrame) -> None:
    result = measure_accessibility(seekers, postings, StraightLineTravel())
    areas = result.areas.sort_values("lat").reset_index(drop=True)

    assert len(areas) == 2
    assert areas["seekers"].tolist() == [3, 1]
    assert areas["jobs_30"].tolist() == [2.0, 0.0]
    assert areas["jobs_45"].tolist() == [2.0, 2.0]
    assert result.postings_used == 3
    assert result.postings_skipped == 1
    assert result.job_cells == 2
    assert result.postings_reached == {30.0: 2.0, 45.0: 2.0}


def test_scores_share_jobs_among_competitors(seekers: pd.DataFrame, postings: pd.DataFrame) -> None:
    result = measure_accessibility(seekers, postings, StraightLineTravel())
    areas = result.areas.sort_values("lat").reset_index(drop=True)

    # 30 min: only the south area reaches the 2 postings, shared by its 3 seekers.
    assert areas["score_30"].tolist() == pytest.approx([2 / 3, 0.0])
    # 45 min: both areas reach them, so 4 seekers compete.
    assert areas["score_45"].tolist() == pytest.approx([0.5, 0.5])


def test_scores_by_group(seekers: pd.DataFrame, postings: pd.DataFrame) -> None:
    result = measure_accessibility(seekers, postings, StraightLineTravel())

    table = scores_by_group(result, 30.0).set_index(["district_code", "group"])

    assert table.loc[("all", "general"), "seekers"] == 2
    assert table.loc[("all", "general"), "score"] == pytest.approx(2 / 3)
    assert table.loc[("all", "assistance"), "score"] == 0.0
    assert table.loc[("610112", "assistance"), "seekers"] == 1
    assert np.isnan(table.loc[("610112", "graduate"), "score"])


@pytest.mark.parametrize("catchment", [0.0, -5.0, float("nan")])
def test_invalid_catchment_is_rejected(
    seekers: pd.DataFrame, postings: pd.DataFrame, catchment: float
) -> None:
    with pytest.raises(ValueError, match="catchment"):
        measure_accessibility(seekers, postings, StraightLineTravel(), catchments_min=(catchment,))


def test_missing_column_is_named(seekers: pd.DataFrame, postings: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"postings lacks columns \['precision'\]"):
        measure_accessibility(seekers, postings.drop(columns="precision"), StraightLineTravel())


def test_empty_seekers_are_rejected(postings: pd.DataFrame) -> None:
    empty = pd.DataFrame(columns=["home_lon", "home_lat", "home_district_code", "group"])

    with pytest.raises(ValueError, match="seekers is empty"):
        measure_accessibility(empty, postings, StraightLineTravel())


def test_coarse_postings_only_are_rejected(seekers: pd.DataFrame) -> None:
    coarse = pd.DataFrame({"lon": [108.94], "lat": [34.26], "precision": ["district"]})

    with pytest.raises(ValueError, match="no row at precision"):
        measure_accessibility(seekers, coarse, StraightLineTravel())


def test_seekers_without_home_are_skipped(
    seekers: pd.DataFrame, postings: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    homeless = seekers.assign(home_lon=[108.94, None, 108.9402, 108.94])

    result = measure_accessibility(homeless, postings, StraightLineTravel())

    assert result.areas["seekers"].sum() == 3
    assert "skipped 1 seekers without a home point" in caplog.text
