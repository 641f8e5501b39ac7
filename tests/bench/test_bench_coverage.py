"""Smoke tests of the coverage benchmarks on a small town: structure and equality checks."""

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from bench.coverage import (
    CITY_RUN_BASELINE,
    GAIN_BASELINE,
    _check_same_minutes,
    bench_coverage_pass,
    bench_marginal_gain,
)
from bench.result import SPEED_UP, ResultMismatchError
from geo.coverage.circle import ServiceCircle
from geo.coverage.grid import WalkGrid


@pytest.fixture(scope="module")
def circle() -> ServiceCircle:
    """Two stations and 40 random places in a 6 km box around 钟楼, 250 m cells."""
    rng = np.random.default_rng(11)
    places = pd.DataFrame(
        {
            "name": [f"小区{i}" for i in range(40)],
            "lon": rng.uniform(108.915, 108.965, 40),
            "lat": rng.uniform(34.235, 34.285, 40),
            "district_code": "610103",
            "street_code": None,
        }
    )
    stations = pd.DataFrame({"name": ["甲", "乙"], "lon": [108.92, 108.96], "lat": [34.24, 34.28]})
    return ServiceCircle(WalkGrid.over_area(box(108.91, 34.23, 108.97, 34.29)), places, stations)


def test_pass_compares_with_networkx(circle: ServiceCircle) -> None:
    (comparison,) = bench_coverage_pass(circle, repeats=1)

    assert comparison.baseline == CITY_RUN_BASELINE
    assert comparison.ratio_meaning == SPEED_UP
    assert comparison.details["cells"] == len(circle.grid)
    assert comparison.ratio > 0


def test_gain_compares_with_recount(circle: ServiceCircle) -> None:
    (comparison,) = bench_marginal_gain(circle, candidates=5, seed=3)

    assert comparison.baseline == GAIN_BASELINE
    assert comparison.details["candidates"] == 5
    assert len(comparison.details["subject_s"]) == 5


def test_gain_rejects_too_many_candidates(circle: ServiceCircle) -> None:
    with pytest.raises(ValueError, match="uncovered"):
        bench_marginal_gain(circle, candidates=10_000, seed=3)


def test_minute_mismatch_is_detected() -> None:
    subject = np.array([1.0, 2.0, np.inf])

    with pytest.raises(ResultMismatchError, match="differ"):
        _check_same_minutes(subject, {3: 0.0, 0: 1.0, 1: 2.5}, virtual=3)
    with pytest.raises(ResultMismatchError, match="different sets"):
        _check_same_minutes(subject, {3: 0.0, 0: 1.0, 1: 2.0, 2: 9.0}, virtual=3)
    _check_same_minutes(subject, {3: 0.0, 0: 1.0, 1: 2.0}, virtual=3)
