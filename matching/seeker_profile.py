"""Home areas of seekers who register their own profile, by the simulated seekers' rules.

A stored seeker keeps in plaintext only the home's district, street and community
codes and the street office point (WGS84 degrees). The exact home goes into an
encrypted envelope. A registering seeker gives either a point or only a community
code, so :func:`home_area` derives the same columns from either:

- From a point: the district containing it, the street whose office is nearest in
  EPSG:4545 metres among that district's offices (the district seat when it has none),
  and the community the seeker names, which must belong to that district.
- From a community code alone: its street and district. The street office point (or
  the district seat) then also stands in for the exact home, so matching measures
  commutes from there.

Errors name the field and the rule and never quote the value, because a home and a
community code locate a person.
"""

import logging
import math
from dataclasses import dataclass

import numpy as np
import pyproj

from geo.crs import METRIC_CRS
from geo.errors import DoorstepError
from geo.regions import Regions

logger = logging.getLogger(__name__)


class ProfileFieldError(DoorstepError, ValueError):
    """A profile field breaks a rule; the message names the field and rule, never the value."""

    def __init__(self, field: str, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.field = field
        self.message_zh = message_zh


@dataclass(frozen=True, slots=True)
class HomeArea:
    """A home in the stored form's terms; every point is WGS84 degrees."""

    district_code: str
    street_code: str
    community_code: str
    """12-digit code, or "" when a seeker gave a point without one."""
    area_lon: float
    area_lat: float
    """The street office point (or district seat) that the store keeps in plaintext."""
    exact_lon: float
    exact_lat: float
    """The home that matching uses; the area point when only a community was given."""
    exact: bool
    """True when the seeker gave a point, False when only a community code."""


def home_area(
    regions: Regions,
    *,
    lon: float | None = None,
    lat: float | None = None,
    community_code: str | None = None,
) -> HomeArea:
    """Derive a registered seeker's home area from a WGS84 point, a community code or both.

    Parameters
    ----------
    regions
        The districts, streets (with office points) and communities of Xi'an.
    lon, lat
        The home in WGS84 degrees, already checked to lie inside Xi'an; both or neither.
    community_code
        12-digit community code; required when no point is given.

    Raises
    ------
    ProfileFieldError
        The community code is unknown or lies in another district than the point,
        or neither a point nor a community code was given.
    """
    community = None
    if community_code:
        community = regions.community_by_code(community_code)
        if community is None:
            raise ProfileFieldError(
                "home.community_code",
                "home.community_code is not a known 12-digit community code of Xi'an",
                "社区编码 home.community_code 不是西安市已知的 12 位社区编码",
            )
    if lon is None or lat is None:
        if community is None:
            raise ProfileFieldError(
                "home",
                "home needs a point (lon and lat) or a community_code",
                "住址 home 须填写坐标（lon、lat）或社区编码 community_code",
            )
        area_lon, area_lat = _street_point(regions, community.street_code, community.district_code)
        return HomeArea(
            community.district_code, community.street_code, community.code,
            area_lon, area_lat, area_lon, area_lat, exact=False,
        )  # fmt: skip

    district = regions.district_at(lon, lat)
    if district is None:
        raise ProfileFieldError(
            "home", "home lies outside every district of Xi'an", "住址不在西安市任何区县内"
        )
    if community is not None and community.district_code != district.code:
        raise ProfileFieldError(
            "home.community_code",
            "home.community_code belongs to another district than the home point",
            "社区编码 home.community_code 与住址坐标不在同一区县",
        )
    if community is not None:
        street_code = community.street_code
        area_lon, area_lat = _street_point(regions, street_code, district.code)
    else:
        street_code, area_lon, area_lat = _nearest_office(regions, district.code, lon, lat)
    code = "" if community is None else community.code
    return HomeArea(district.code, street_code, code, area_lon, area_lat, lon, lat, exact=True)


def _street_point(regions: Regions, street_code: str, district_code: str) -> tuple[float, float]:
    """Return a street's office point, or its district's seat when the office is unknown."""
    street = regions.street_by_code(street_code)
    if street is not None and math.isfinite(street.lon) and math.isfinite(street.lat):
        return street.lon, street.lat
    seat = regions.district(district_code)
    if seat is None:
        raise ProfileFieldError(
            "home.community_code",
            "home.community_code lies in a district without a known seat",
            "社区编码 home.community_code 所在区县缺少位置信息",
        )
    return seat.lon, seat.lat


def _nearest_office(
    regions: Regions, district_code: str, lon: float, lat: float
) -> tuple[str, float, float]:
    """Return the street whose office is nearest the point in EPSG:4545, and that office."""
    streets = regions.streets
    offices = streets[(streets["district_code"] == district_code)].dropna(subset=["lon", "lat"])
    if offices.empty:
        seat = regions.district(district_code)
        codes = sorted(streets.loc[streets["district_code"] == district_code, "code"].astype(str))
        if seat is None or not codes:
            raise ProfileFieldError(
                "home", "home lies in a district without streets", "住址所在区县缺少街道信息"
            )
        # NOTE: without office points the first street by code is used in place of the nearest.
        return codes[0], seat.lon, seat.lat
    to_metric = pyproj.Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    office_x, office_y = to_metric.transform(offices["lon"].to_numpy(), offices["lat"].to_numpy())
    home_x, home_y = to_metric.transform(lon, lat)
    nearest = int(np.argmin(np.hypot(np.asarray(office_x) - home_x, np.asarray(office_y) - home_y)))
    chosen = offices.iloc[nearest]
    return str(chosen["code"]), float(chosen["lon"]), float(chosen["lat"])
