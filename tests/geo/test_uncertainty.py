"""Uncertainty radii of approximate locations."""

import math

import numpy as np
import pandas as pd
import pytest

from geo.regions import Regions
from geo.uncertainty import (
    BUSINESS_AREA_UNCERTAINTY_M,
    ZONE_UNCERTAINTY_M,
    district_uncertainty_m,
    posting_uncertainty_m,
)


@pytest.fixture(scope="module")
def by_district(regions: Regions) -> dict[str, float]:
    return district_uncertainty_m(regions.districts)


def test_district_radius_from_area(by_district: dict[str, float]) -> None:
    # 碑林区 is about 23 km², 长安区 about 1,580 km² (government figures, rounded).
    beilin = (2 / 3) * math.sqrt(23e6 / math.pi)
    changan = (2 / 3) * math.sqrt(1_580e6 / math.pi)
    assert by_district["610103"] == pytest.approx(beilin, rel=0.15)
    assert by_district["610116"] == pytest.approx(changan, rel=0.15)
    assert len(by_district) == 13


def test_posting_uncertainty_by_precision(by_district: dict[str, float]) -> None:
    postings = pd.DataFrame(
        {
            "precision": ["poi", "building", "business_area", "zone", "district", "city"],
            "district_code": ["610103"] * 6,
        }
    )
    values = posting_uncertainty_m(postings, by_district).tolist()
    assert values[:4] == [0.0, 0.0, BUSINESS_AREA_UNCERTAINTY_M, ZONE_UNCERTAINTY_M]
    assert values[4] == by_district["610103"]
    assert np.isnan(values[5])


def test_unknown_district_is_nan(by_district: dict[str, float]) -> None:
    postings = pd.DataFrame({"precision": ["district"], "district_code": [None]})
    assert np.isnan(posting_uncertainty_m(postings, by_district).iloc[0])
