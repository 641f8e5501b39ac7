"""Coordinate systems, conversions between them, validation and metric distances.

The stored system is WGS84 (EPSG:4326, degrees, axis order lon, lat). GCJ-02
(Amap, Tencent) and BD-09 (Baidu) are obfuscating offsets rather than
coordinate reference systems, so they are converted here, at the edges, with
the ``prcoords`` 1.0.2 library (CC0). Its inverses ``gcj_wgs_bored`` and
``bd_wgs_bored`` iterate the forward transform to a fixed point. Over the
Xi'an area the round trip WGS84 -> GCJ-02 -> WGS84 is within 3 mm and
WGS84 -> BD-09 -> WGS84 within 2 cm (measured by the tests in
``tests/geo/test_crs.py``).

Inside-mainland-China rule: the offsets apply only to points inside mainland
China, and everything else is returned unchanged. A point counts as inside when
it lies in the ``prcoords`` bounding box (0.8293-55.8271 N, 72.004-137.8347 E)
and outside two coarse exclusion areas drawn for this module. The first covers
the Korean peninsula and Japan: east of 123 E south of 39.6 N, then east of a
line along the Yalu and Tumen rivers. The second is Taiwan (119.3-122.5 E,
21.8-25.35 N). Land neighbours inside the box (Mongolia, Vietnam, northern
India and others) still count as inside, which only matters for callers
outside Xi'an.

Metric work uses EPSG:4545 (CGCS2000 / 3-degree Gauss-Kruger CM 108E), which
covers the whole city. Point-to-point distances are geodesic on the WGS84
ellipsoid, or haversine on a sphere of ``EARTH_RADIUS_M`` where a BallTree
needs a plain metric.
"""

import logging
import math
from collections.abc import Callable
from enum import StrEnum
from functools import lru_cache
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import prcoords
import pyproj
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from geo.errors import InvalidCoordinateError, UnknownCoordSysError, clip_echo

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
GeometryT = TypeVar("GeometryT", bound=BaseGeometry)

METRIC_CRS = "EPSG:4545"
"""CGCS2000 / 3-degree Gauss-Kruger CM 108E: metres, x east, y north."""

EARTH_RADIUS_M = 6_371_008.8
"""IUGG mean earth radius in metres, used by :func:`haversine_m`."""

# Bounds of the Xi'an municipality outline (cnmaps 610100, GCJ-02 converted to
# WGS84: 107.6591-109.8173 E, 33.6956-34.7440 N). They are widened by 0.2 degrees
# on each side and rounded outwards, so the metro stations in Xianyang (西咸新区,
# the airport) and points on the city edge pass.
XIAN_BOUNDS_WGS84: tuple[float, float, float, float] = (107.45, 33.49, 110.02, 34.95)
"""(min_lon, min_lat, max_lon, max_lat) of the accepted Xi'an area, WGS84 degrees."""

_XIAN_TYPICAL_LON_LAT = (108.9, 34.3)

_CHINA_BBOX = (72.004, 0.8293, 137.8347, 55.8271)
_KOREA_JAPAN = Polygon(
    [
        (123.0, 0.0),
        (123.0, 39.6),
        (124.3, 39.6),
        (125.0, 40.4),
        (126.0, 41.0),
        (127.0, 41.5),
        (128.2, 41.9),
        (129.0, 42.2),
        (129.8, 42.5),
        (130.6, 42.4),
        (132.0, 43.0),
        (134.0, 44.0),
        (138.0, 46.0),
        (138.0, 0.0),
    ]
)
_TAIWAN = shapely.box(119.3, 21.8, 122.5, 25.35)
_OUTSIDE_MAINLAND = shapely.union(_KOREA_JAPAN, _TAIWAN)
shapely.prepare(_OUTSIDE_MAINLAND)


class CoordSys(StrEnum):
    """Coordinate system of an input or output point."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


def parse_coord_sys(name: str | CoordSys) -> CoordSys:
    """Parse a coordinate system name, case-insensitively.

    Parameters
    ----------
    name
        ``wgs84``, ``gcj02`` or ``bd09`` (surrounding spaces and case ignored).

    Returns
    -------
    CoordSys

    Raises
    ------
    UnknownCoordSysError
        If the name is not one of the three.
    """
    if isinstance(name, CoordSys):
        return name
    try:
        return CoordSys(str(name).strip().lower())
    except ValueError as err:
        expected = ", ".join(member.value for member in CoordSys)
        raise UnknownCoordSysError(
            f"coord_sys {clip_echo(repr(name))} is not one of {expected}", value=str(name)
        ) from err


def in_mainland_china(lons: npt.ArrayLike, lats: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Flag points where the GCJ-02 and BD-09 offsets apply.

    Parameters
    ----------
    lons, lats
        Longitudes and latitudes in degrees (WGS84 or GCJ-02, the rule is far
        coarser than the offset). NaN gives False.

    Returns
    -------
    numpy.ndarray of bool
        True inside mainland China by the rule in the module docstring.
    """
    lon = np.asarray(lons, dtype=np.float64)
    lat = np.asarray(lats, dtype=np.float64)
    min_lon, min_lat, max_lon, max_lat = _CHINA_BBOX
    with np.errstate(invalid="ignore"):
        in_box = (lon >= min_lon) & (lon <= max_lon) & (lat >= min_lat) & (lat <= max_lat)
    excluded = shapely.contains_xy(_OUTSIDE_MAINLAND, np.nan_to_num(lon), np.nan_to_num(lat))
    return np.asarray(in_box & ~excluded, dtype=np.bool_)


def _pair_converter(src: CoordSys, dst: CoordSys) -> Callable[[float, float], tuple[float, float]]:
    """Build a scalar (lon, lat) converter from ``src`` to ``dst`` through prcoords."""
    steps: dict[tuple[CoordSys, CoordSys], Callable[..., tuple[float, float]]] = {
        (CoordSys.GCJ02, CoordSys.WGS84): prcoords.gcj_wgs_bored,
        (CoordSys.BD09, CoordSys.WGS84): prcoords.bd_wgs_bored,
        (CoordSys.WGS84, CoordSys.GCJ02): prcoords.wgs_gcj,
        (CoordSys.WGS84, CoordSys.BD09): prcoords.wgs_bd,
        (CoordSys.GCJ02, CoordSys.BD09): prcoords.gcj_bd,
        (CoordSys.BD09, CoordSys.GCJ02): prcoords.bd_gcj_bored,
    }
    step = steps[(src, dst)]

    def convert(lon: float, lat: float) -> tuple[float, float]:
        # prcoords takes and returns (lat, lon); the China check is done by the caller.
        out = step((lat, lon), False)
        return float(out[1]), float(out[0])

    return convert


def convert_arrays(
    lons: npt.ArrayLike, lats: npt.ArrayLike, src: CoordSys | str, dst: CoordSys | str
) -> tuple[FloatArray, FloatArray]:
    """Convert longitude and latitude arrays between coordinate systems.

    Parameters
    ----------
    lons, lats
        Degrees in ``src``, same shape. NaN passes through as NaN.
    src, dst
        Coordinate systems (``CoordSys`` or its name).

    Returns
    -------
    tuple of numpy.ndarray
        Longitudes and latitudes in ``dst``, degrees. Points outside mainland
        China are returned unchanged.
    """
    src_sys, dst_sys = parse_coord_sys(src), parse_coord_sys(dst)
    lon = np.array(lons, dtype=np.float64, copy=True)
    lat = np.array(lats, dtype=np.float64, copy=True)
    if src_sys is dst_sys or lon.size == 0:
        return lon, lat

    convert = _pair_converter(src_sys, dst_sys)
    mask = in_mainland_china(lon, lat)
    for index in zip(*np.nonzero(mask), strict=True):
        lon[index], lat[index] = convert(float(lon[index]), float(lat[index]))
    return lon, lat


def to_wgs84_arrays(
    lons: npt.ArrayLike, lats: npt.ArrayLike, coord_sys: CoordSys | str
) -> tuple[FloatArray, FloatArray]:
    """Convert arrays of points in ``coord_sys`` to WGS84 degrees (see :func:`convert_arrays`)."""
    return convert_arrays(lons, lats, coord_sys, CoordSys.WGS84)


def from_wgs84_arrays(
    lons: npt.ArrayLike, lats: npt.ArrayLike, coord_sys: CoordSys | str
) -> tuple[FloatArray, FloatArray]:
    """Convert arrays of WGS84 points to ``coord_sys`` degrees (see :func:`convert_arrays`)."""
    return convert_arrays(lons, lats, CoordSys.WGS84, coord_sys)


def to_wgs84(lon: float, lat: float, coord_sys: CoordSys | str) -> tuple[float, float]:
    """Convert one point from ``coord_sys`` to WGS84.

    Parameters
    ----------
    lon, lat
        Degrees in ``coord_sys``.
    coord_sys
        Source system.

    Returns
    -------
    tuple of float
        (lon, lat) in WGS84 degrees; the input itself outside mainland China.
    """
    lons, lats = to_wgs84_arrays([lon], [lat], coord_sys)
    return float(lons[0]), float(lats[0])


def from_wgs84(lon: float, lat: float, coord_sys: CoordSys | str) -> tuple[float, float]:
    """Convert one WGS84 point to ``coord_sys``.

    Parameters
    ----------
    lon, lat
        WGS84 degrees.
    coord_sys
        Target system.

    Returns
    -------
    tuple of float
        (lon, lat) in ``coord_sys`` degrees; the input itself outside mainland China.
    """
    lons, lats = from_wgs84_arrays([lon], [lat], coord_sys)
    return float(lons[0]), float(lats[0])


def transform_geometry(geom: GeometryT, src: CoordSys | str, dst: CoordSys | str) -> GeometryT:
    """Convert every vertex of a shapely geometry between coordinate systems.

    Parameters
    ----------
    geom
        Any shapely geometry with (lon, lat) vertices in ``src`` degrees.
    src, dst
        Coordinate systems.

    Returns
    -------
    shapely geometry
        The same type with vertices in ``dst``. The offsets are smooth at the
        scale of a vertex spacing, so converting vertices is enough.
    """

    def convert_vertices(coords: FloatArray) -> FloatArray:
        lons, lats = convert_arrays(coords[:, 0], coords[:, 1], src, dst)
        return np.column_stack([lons, lats])

    result: GeometryT = shapely.transform(geom, convert_vertices)
    return result


def _format_degrees(value: float) -> str:
    """Format degrees with up to 6 decimals and no trailing zeros; huge values in e-notation."""
    if abs(value) >= 1e6:
        return f"{value:.6g}"
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _inside_xian_bounds(lon: float, lat: float) -> bool:
    min_lon, min_lat, max_lon, max_lat = XIAN_BOUNDS_WGS84
    return min_lon <= lon <= max_lon and min_lat <= lat <= max_lat


def axes_look_swapped(lon: float, lat: float) -> bool:
    """Check whether a point's longitude and latitude were entered the wrong way round.

    Parameters
    ----------
    lon, lat
        Degrees as received, in any of the three coordinate systems (the
        offsets are far smaller than the bounds).

    Returns
    -------
    bool
        True when (lat, lon) lies inside ``XIAN_BOUNDS_WGS84`` but (lon, lat) does not.
    """
    return _inside_xian_bounds(lat, lon) and not _inside_xian_bounds(lon, lat)


def _check_raw_numbers(lon: float, lat: float, field: str) -> None:
    """Reject NaN, infinite, swapped, out-of-range and (0, 0) values, in that order.

    The swap test runs before the range test: a Xi'an point with the axes
    swapped has latitude near 108.9, and naming the swap is the more useful
    message. An error about one axis names that axis (``lon`` or ``lat``) as
    its field; an error about the pair carries ``field``.
    """
    for axis, value in (("lon", lon), ("lat", lat)):
        if math.isnan(value):
            raise InvalidCoordinateError(f"{axis} is NaN", field=axis, rule="coordinate_nan")
        if math.isinf(value):
            raise InvalidCoordinateError(
                f"{axis} is infinite ({value})", field=axis, rule="coordinate_infinite"
            )

    if axes_look_swapped(lon, lat):
        typical_lon, typical_lat = _XIAN_TYPICAL_LON_LAT
        raise InvalidCoordinateError(
            f"longitude {_format_degrees(lon)} and latitude {_format_degrees(lat)} look "
            f"swapped: Xi'an is near longitude {typical_lon}, latitude {typical_lat}",
            field=field,
            rule="swapped_axes",
        )
    if not -180.0 <= lon <= 180.0:
        raise InvalidCoordinateError(
            f"longitude {_format_degrees(lon)} is outside -180..180",
            field="lon",
            rule="longitude_range",
            rule_params={"lon": _format_degrees(lon)},
        )
    if not -90.0 <= lat <= 90.0:
        raise InvalidCoordinateError(
            f"latitude {_format_degrees(lat)} is outside -90..90; "
            "were longitude and latitude swapped?",
            field="lat",
            rule="latitude_range",
            rule_params={"lat": _format_degrees(lat)},
        )
    if lon == 0.0 and lat == 0.0:
        raise InvalidCoordinateError(
            "(0, 0) is the null island placeholder, not a location",
            field=field,
            rule="null_island",
        )


def _check_inside_xian(lon: float, lat: float, field: str) -> None:
    if _inside_xian_bounds(lon, lat):
        return
    min_lon, min_lat, max_lon, max_lat = XIAN_BOUNDS_WGS84
    raise InvalidCoordinateError(
        f"point ({lon:.2f}, {lat:.2f}) is outside the Xi'an area "
        f"{min_lon}–{max_lon} E, {min_lat}–{max_lat} N",
        field=field,
        rule="outside_xian",
        rule_params={"lon": f"{lon:.2f}", "lat": f"{lat:.2f}"},
    )


def validate_point(lon: float, lat: float, *, field: str = "location") -> None:
    """Check that a WGS84 point is a plausible Xi'an location.

    Parameters
    ----------
    lon, lat
        WGS84 degrees.
    field
        Name of the input field, carried by the error for the API response.

    Raises
    ------
    InvalidCoordinateError
        With a distinct message for, in this order of checks: NaN, infinite,
        axes swapped (the swapped pair would be inside Xi'an), longitude outside
        -180..180, latitude outside -90..90, (0, 0), and outside
        ``XIAN_BOUNDS_WGS84``.
    """
    _check_raw_numbers(lon, lat, field)
    _check_inside_xian(lon, lat, field)


def validate_and_convert(
    lon: float, lat: float, coord_sys: CoordSys | str, *, field: str = "location"
) -> tuple[float, float]:
    """Validate a raw input point, convert it to WGS84 and check it lies in Xi'an.

    Parameters
    ----------
    lon, lat
        Degrees in ``coord_sys`` as received.
    coord_sys
        System of the input; an unknown name raises ``UnknownCoordSysError``.
    field
        Name of the input field, carried by the error.

    Returns
    -------
    tuple of float
        (lon, lat) in WGS84 degrees.

    Raises
    ------
    InvalidCoordinateError
        As :func:`validate_point`. The raw checks run on the input numbers, the
        Xi'an bounds check on the converted point.
    """
    system = parse_coord_sys(coord_sys)
    _check_raw_numbers(lon, lat, field)

    wgs_lon, wgs_lat = to_wgs84(lon, lat, system)
    _check_inside_xian(wgs_lon, wgs_lat, field)
    return wgs_lon, wgs_lat


@lru_cache(maxsize=1)
def _metric_transformer() -> pyproj.Transformer:
    return pyproj.Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)


@lru_cache(maxsize=1)
def _inverse_metric_transformer() -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)


@lru_cache(maxsize=1)
def _wgs84_geod() -> pyproj.Geod:
    return pyproj.Geod(ellps="WGS84")


def to_metric(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Project WGS84 points to ``METRIC_CRS`` (EPSG:4545).

    Parameters
    ----------
    lons, lats
        WGS84 degrees.

    Returns
    -------
    tuple of numpy.ndarray
        Easting x and northing y in metres.
    """
    x, y = _metric_transformer().transform(
        np.asarray(lons, dtype=np.float64), np.asarray(lats, dtype=np.float64)
    )
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def from_metric(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Unproject ``METRIC_CRS`` (EPSG:4545) points to WGS84, the inverse of :func:`to_metric`.

    Parameters
    ----------
    x, y
        Easting and northing in metres.

    Returns
    -------
    tuple of numpy.ndarray
        Longitudes and latitudes in WGS84 degrees.
    """
    lons, lats = _inverse_metric_transformer().transform(
        np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    )
    return np.asarray(lons, dtype=np.float64), np.asarray(lats, dtype=np.float64)


def geodesic_distance_m(
    lon1: npt.ArrayLike, lat1: npt.ArrayLike, lon2: npt.ArrayLike, lat2: npt.ArrayLike
) -> FloatArray:
    """Compute geodesic distances on the WGS84 ellipsoid, element-wise.

    Parameters
    ----------
    lon1, lat1, lon2, lat2
        WGS84 degrees; arrays broadcast against each other.

    Returns
    -------
    numpy.ndarray
        Distances in metres (0-d for scalar input).
    """
    a_lon, a_lat, b_lon, b_lat = np.broadcast_arrays(
        *(np.asarray(value, dtype=np.float64) for value in (lon1, lat1, lon2, lat2))
    )
    _, _, distance = _wgs84_geod().inv(a_lon, a_lat, b_lon, b_lat)
    return np.asarray(distance, dtype=np.float64)


def haversine_m(
    lon1: npt.ArrayLike, lat1: npt.ArrayLike, lon2: npt.ArrayLike, lat2: npt.ArrayLike
) -> FloatArray:
    """Compute great-circle distances on a sphere of ``EARTH_RADIUS_M``, element-wise.

    Parameters
    ----------
    lon1, lat1, lon2, lat2
        WGS84 degrees; arrays broadcast against each other.

    Returns
    -------
    numpy.ndarray
        Distances in metres (0-d for scalar input). Within 0.5 % of the
        geodesic distance at Xi'an's latitude.
    """
    lam1, phi1, lam2, phi2 = (
        np.radians(np.asarray(value, dtype=np.float64)) for value in (lon1, lat1, lon2, lat2)
    )
    half_chord = (
        np.sin((phi2 - phi1) / 2) ** 2
        + np.cos(phi1) * np.cos(phi2) * np.sin((lam2 - lam1) / 2) ** 2
    )
    central_angle = 2 * np.arcsin(np.sqrt(np.clip(half_chord, 0.0, 1.0)))
    return np.asarray(EARTH_RADIUS_M * central_angle, dtype=np.float64)
