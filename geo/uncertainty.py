"""How far an approximate location may be from the point that stands for it.

A posting known only by its district sits on the district government seat, a zone
posting on the zone's management committee, a business-area posting on the area's
point. The real workplace is somewhere in that area, so distances to the point
understate or overstate the trip. Matching adds an uncertainty radius to such
distances (see ``matching.candidates``) instead of treating the point as exact.
"""

import math

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.crs import METRIC_CRS
from geo.location import Precision

# Assumptions, not measurements: a development zone or a business area is taken to
# spread about this far from its representative point. Xi'an's zones range from a
# few km² (港务区 core) to well over 100 km² (高新), so 3 km is a middling value;
# a 商圈 such as 小寨 or 高新软件园 covers roughly a 1 km radius.
ZONE_UNCERTAINTY_M = 3_000.0
BUSINESS_AREA_UNCERTAINTY_M = 1_000.0


def district_uncertainty_m(districts: gpd.GeoDataFrame) -> dict[str, float]:
    """Return, per district code, the mean distance from the centre of an equal-area disk.

    Parameters
    ----------
    districts : geopandas.GeoDataFrame
        Columns ``code`` (6-digit str) and polygon ``geometry`` in any CRS; areas are
        taken in EPSG:4545 (metres).

    Returns
    -------
    dict
        Code to metres: ``(2/3) * sqrt(area / pi)``, the mean distance of a uniform
        point in a disk of the district's area from its centre (about 1.8 km for
        碑林区, 15 km for 长安区).
    """
    areas = districts.to_crs(METRIC_CRS).geometry.area.to_numpy()
    radii = (2.0 / 3.0) * np.sqrt(areas / math.pi)
    return dict(zip(districts["code"].astype(str), radii.tolist(), strict=True))


def posting_uncertainty_m(postings: pd.DataFrame, by_district: dict[str, float]) -> pd.Series:
    """Return each posting's location uncertainty in metres, NaN for city-level postings.

    Parameters
    ----------
    postings : pandas.DataFrame
        Columns ``precision`` and ``district_code``.
    by_district : dict
        Output of :func:`district_uncertainty_m`.
    """
    precision = postings["precision"].astype(str)
    district = postings["district_code"].map(by_district).astype(float)
    values = np.select(
        [
            precision == Precision.DISTRICT.value,
            precision == Precision.ZONE.value,
            precision == Precision.BUSINESS_AREA.value,
            precision == Precision.CITY.value,
        ],
        [district, ZONE_UNCERTAINTY_M, BUSINESS_AREA_UNCERTAINTY_M, np.nan],
        default=0.0,
    )
    return pd.Series(values, index=postings.index, name="uncertainty_m")
