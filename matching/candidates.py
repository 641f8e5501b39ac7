"""Candidate retrieval: the postings a seeker can reach, found through a BallTree.

`JobIndex` is built once from the postings frame and answers two questions:
which postings lie within a straight-line radius of a point (`JobIndex.within`), and
which postings are reachable within a commute limit (`JobIndex.for_commute`). Every
query goes through a scikit-learn ``BallTree`` with the haversine metric over
radians (lat, lon), then the distances are recomputed with `geo.crs.haversine_m`, so
that the inclusion rule ``distance_m <= radius_m`` is the same as a brute-force filter
with that function.

Commute estimates
-----------------
With a transit network (`NetworkCommuteEstimator`, such as
`geo.transit.TransitNetwork`), `JobIndex.for_commute` takes door-to-door minutes
from the home to each posting's point from the network, walking directly always
allowed. Without one it falls back to `StraightLineCommute`, which converts the
straight-line distance with a detour factor and a speed per mode. Either way, the
search radius is an upper bound of the straight-line distance reachable in the
limit, so that no posting within reach is left out before its minutes are computed.

City-level postings
-------------------
A posting with precision ``city`` sits on the city centre and means only "somewhere in
Xi'an", so its distance is meaningless. The index keeps such postings out of the tree:
`JobIndex.within` never returns them. `JobIndex.for_commute` appends them only to fill
a page (``min_results``), newest first, with ``distance_m`` and
``estimated_commute_min`` set to NaN. Postings with precision ``district``, ``zone`` or
``business_area`` stay in the tree: their distance is measured to the area's
representative point, so it is an estimate, which the ``distance_is_estimate`` column
marks.

Approximate distances
---------------------
When the postings frame has an ``uncertainty_m`` column (see `geo.uncertainty`), a
posting's distance is ``hypot(point distance, uncertainty_m)``: a district-level job
near the seeker's district seat is not 250 m away but somewhere in the district. That
distance is the one the radius filter, the commute estimate and the ordering use;
``point_distance_m`` keeps the straight-line distance to the point itself. With a
transit network, such a posting's minutes are the network minutes to its point plus
the straight-line estimate of the added distance ``distance_m - point_distance_m``.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.neighbors import BallTree

from geo.crs import EARTH_RADIUS_M, haversine_m
from geo.errors import InvalidCoordinateError
from geo.location import APPROXIMATE_PRECISIONS, Precision
from geo.transit.modes import parse_travel_modes

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

# Assumption: the network distance of a city trip is taken as 1.4 times the
# straight-line distance. The factor has not been measured on Xi'an's streets or
# transit lines.
DETOUR_FACTOR = 1.4

# Door-to-door speeds in km/h. All four are assumptions, not measurements in Xi'an.
# The transit speed includes walking to the stop, waiting and transfers. The driving
# speed is meant as a peak-hour urban average, including parking.
MODE_SPEEDS_KMH: dict[str, float] = {
    "walk": 4.8,
    "bike": 12.0,
    "transit": 15.0,
    "drive": 25.0,
}

# The tree is queried with this relative slack, then the exact haversine filter
# decides, so rounding inside the tree never drops a point on the radius.
_TREE_RADIUS_SLACK = 1e-6


class CommuteEstimator(Protocol):
    """Estimates commute minutes from straight-line distance, per travel mode."""

    def minutes(self, distance_m: FloatArray, mode: str) -> FloatArray:
        """Return the one-way commute in minutes for straight-line distances in metres."""
        ...

    def reach_m(self, max_commute_min: float, mode: str) -> float:
        """Return the largest straight-line distance in metres reachable in the time."""
        ...


class NetworkCommuteEstimator(Protocol):
    """Estimates door-to-door minutes from origin points to destination points, per mode."""

    def reach_m(self, max_commute_min: float, mode: str) -> float:
        """Return an upper bound of the straight-line metres reachable in the time.

        The bound must be convex in ``max_commute_min`` (for example affine).
        """
        ...

    def mode_matrices(
        self,
        origins_lon: npt.ArrayLike,
        origins_lat: npt.ArrayLike,
        dest_lon: npt.ArrayLike,
        dest_lat: npt.ArrayLike,
        modes: str | Iterable[str],
    ) -> dict[str, npt.NDArray[np.float32]]:
        """Return minutes of shape (origins, destinations) for each requested mode."""
        ...


@dataclass(frozen=True)
class StraightLineCommute:
    """Commute estimate from straight-line distance, a detour factor and mode speeds.

    ``minutes = distance_m * detour_factor / speed``. A placeholder until the transit
    model exists: it ignores lines, stops, waiting time per trip and congestion.
    """

    detour_factor: float = DETOUR_FACTOR
    speeds_kmh: dict[str, float] = field(default_factory=lambda: dict(MODE_SPEEDS_KMH))

    def minutes(self, distance_m: FloatArray, mode: str) -> FloatArray:
        """Return the commute in minutes for straight-line ``distance_m`` (metres)."""
        metres_per_minute = self._speed_kmh(mode) * 1000.0 / 60.0
        return np.asarray(distance_m, dtype=np.float64) * self.detour_factor / metres_per_minute

    def reach_m(self, max_commute_min: float, mode: str) -> float:
        """Return the straight-line radius in metres reachable in ``max_commute_min``."""
        metres_per_minute = self._speed_kmh(mode) * 1000.0 / 60.0
        return max_commute_min * metres_per_minute / self.detour_factor

    def _speed_kmh(self, mode: str) -> float:
        if mode not in self.speeds_kmh:
            known = ", ".join(sorted(self.speeds_kmh))
            raise ValueError(f"unknown travel mode {mode!r}; expected one of {known}")
        return self.speeds_kmh[mode]


def parse_modes(modes: str | Iterable[str]) -> list[str]:
    """Split travel modes given as ``"walk;transit"`` or a list into a clean list.

    Raises
    ------
    ValueError
        When no mode is given.
    """
    items = modes.split(";") if isinstance(modes, str) else list(modes)
    cleaned = [item.strip() for item in items if item.strip()]
    if not cleaned:
        raise ValueError(f"modes {modes!r} is empty; expected e.g. 'walk;transit'")
    return cleaned


class JobIndex:
    """Spatial index over the active postings frame (WGS84 lon/lat in degrees).

    Parameters
    ----------
    postings
        The postings frame, one row per posting, with at least ``posting_id``,
        ``lon``, ``lat`` (WGS84 degrees) and ``precision``. ``published_on`` is used
        to order city-level fill-ins when present. Rows with a NaN coordinate are
        left out with a warning.
    estimator
        Straight-line commute model used by `for_commute` without a network, and for
        the distance an approximate location adds; defaults to `StraightLineCommute`.
    network
        Transit network used by `for_commute` for the minutes to each posting's point.
    """

    def __init__(
        self,
        postings: pd.DataFrame,
        estimator: CommuteEstimator | None = None,
        network: NetworkCommuteEstimator | None = None,
    ) -> None:
        self.estimator: CommuteEstimator = estimator or StraightLineCommute()
        self.network = network

        is_city = postings["precision"].astype(str).to_numpy() == Precision.CITY.value
        has_point = np.isfinite(postings["lon"].to_numpy(dtype=np.float64)) & np.isfinite(
            postings["lat"].to_numpy(dtype=np.float64)
        )
        dropped = int((~is_city & ~has_point).sum())
        if dropped:
            logger.warning("JobIndex: left out %d postings without coordinates", dropped)

        self._city = postings.loc[is_city].reset_index(drop=True)
        self._located = postings.loc[~is_city & has_point].reset_index(drop=True)
        self._lons = self._located["lon"].to_numpy(dtype=np.float64)
        self._lats = self._located["lat"].to_numpy(dtype=np.float64)
        if "uncertainty_m" in self._located.columns:
            uncertainty = self._located["uncertainty_m"].to_numpy(dtype=np.float64)
            self._uncertainty = np.nan_to_num(uncertainty, nan=0.0)
        else:
            self._uncertainty = np.zeros(len(self._located), dtype=np.float64)
        self._tree: BallTree | None = None
        # Many postings share a point, so trips are computed once per distinct point.
        points, self._point_ids = np.unique(
            np.column_stack([self._lons, self._lats]), axis=0, return_inverse=True
        )
        self._points = points.reshape(-1, 2)
        self._point_ids = self._point_ids.reshape(-1)
        self._tree_rank = np.arange(len(self._located), dtype=np.intp)
        if len(self._located):
            self._tree = BallTree(
                np.radians(np.column_stack([self._lats, self._lons])), metric="haversine"
            )
            # A radius query lists its postings in the tree's storage order.
            # NOTE: scikit-learn does not document that order; the batch matching
            # test compares `commute_table` ties with `for_commute` and fails if it changes.
            self._tree_rank[self._tree.get_arrays()[1]] = np.arange(len(self._located))
        logger.info(
            "JobIndex built: %d located postings, %d city-level",
            len(self._located),
            len(self._city),
        )

    def __len__(self) -> int:
        return len(self._located) + len(self._city)

    @property
    def city_level(self) -> pd.DataFrame:
        """Postings whose location is only "Xi'an" (precision ``city``), not in the tree."""
        city: pd.DataFrame = self._city.copy()
        return city

    def within(self, lon: float, lat: float, radius_m: float) -> pd.DataFrame:
        """Find located postings within a straight-line radius of a point.

        Parameters
        ----------
        lon, lat
            Query point, WGS84 degrees.
        radius_m
            Great-circle radius in metres (sphere of radius ``EARTH_RADIUS_M``); a
            posting at exactly ``radius_m`` is included.

        Returns
        -------
        pandas.DataFrame
            The matching postings with ``distance_m`` (haversine metres, widened by
            ``uncertainty_m`` for approximate locations), ``point_distance_m`` and
            ``distance_is_estimate`` (True for business-area, zone and district
            precision) added, sorted by distance. City-level postings are never
            returned.

        Raises
        ------
        InvalidCoordinateError
            When ``lon``/``lat`` is NaN or out of range.
        ValueError
            When ``radius_m`` is negative or not finite.
        """
        _check_point(lon, lat)
        if not np.isfinite(radius_m) or radius_m < 0:
            raise ValueError(f"radius_m {radius_m!r} is invalid; expected a finite value >= 0")

        return self._result_frame(self._within_arrays(lon, lat, radius_m))

    def for_commute(
        self,
        lon: float,
        lat: float,
        max_commute_min: float,
        modes: str | Iterable[str],
        *,
        min_results: int = 0,
    ) -> pd.DataFrame:
        """Find postings reachable from a point within a commute limit.

        The search radius is the largest reach over the allowed modes (see
        `_reach_m`). Each posting gets ``estimated_commute_min`` from the fastest
        allowed mode, and postings above ``max_commute_min`` are dropped. With a
        network, walking is always allowed.

        Parameters
        ----------
        lon, lat
            Seeker's home, WGS84 degrees.
        max_commute_min
            One-way commute limit in minutes.
        modes
            Allowed travel modes, ``"walk;transit"`` or a list; see `MODE_SPEEDS_KMH`.
        min_results
            When fewer located postings qualify, city-level postings (newest first)
            fill up to this count with ``distance_m`` and ``estimated_commute_min`` NaN.

        Returns
        -------
        pandas.DataFrame
            Postings with ``distance_m``, ``distance_is_estimate``,
            ``estimated_commute_min`` and ``commute_mode`` added, sorted by commute time
            with city-level fill-ins last.
        """
        # Rows are built only for reachable postings, which saves most of the time
        # when the radius covers much of the city.
        found = self.rows(self.reachable(lon, lat, max_commute_min, modes))

        shortfall = min_results - len(found)
        if shortfall > 0 and len(self._city):
            found = pd.concat([found, self._city_fill(shortfall)], ignore_index=True)
        return found

    def reachable(
        self, lon: float, lat: float, max_commute_min: float, modes: str | Iterable[str]
    ) -> "Reachable":
        """Find the located postings reachable within a commute limit, as index arrays.

        The rule is that of `for_commute`, without building rows or adding city-level
        postings. Positions are rows of `located`, in the tree's order; `rows` builds
        the frame of any subset in `for_commute`'s order.

        Raises
        ------
        ValueError
            When ``max_commute_min`` is negative or not finite, or ``modes`` is empty.
        InvalidCoordinateError
            When ``lon``/``lat`` is NaN or out of range.
        """
        if not np.isfinite(max_commute_min) or max_commute_min < 0:
            raise ValueError(
                f"max_commute_min {max_commute_min!r} is invalid; expected minutes >= 0"
            )
        mode_list = parse_modes(modes)
        if self.network is not None:
            mode_list = list(parse_travel_modes(["walk", *mode_list]))

        _check_point(lon, lat)
        radius_m = max(self._reach_m(max_commute_min, mode) for mode in mode_list)
        nearby = self._within_arrays(lon, lat, radius_m)
        minutes, fastest = self._fastest_commute(nearby, lon, lat, mode_list)
        keep = minutes <= max_commute_min
        return Reachable(
            nearby.positions[keep],
            nearby.distances[keep],
            nearby.point_distances[keep],
            minutes[keep],
            np.asarray(mode_list, dtype=object)[fastest[keep]],
        )

    def commute_table(
        self,
        lons: npt.ArrayLike,
        lats: npt.ArrayLike,
        max_commute_min: float,
        modes: str | Iterable[str],
    ) -> "CommuteTable":
        """Compute `reachable` for many homes at once, as arrays over every located posting.

        Entries equal those of `reachable` for each home; a posting that `reachable`
        leaves out has ``inf`` minutes. Parameters are those of `reachable`, with
        ``lons``/``lats`` 1-D arrays of WGS84 degrees.
        """
        if not np.isfinite(max_commute_min) or max_commute_min < 0:
            raise ValueError(
                f"max_commute_min {max_commute_min!r} is invalid; expected minutes >= 0"
            )
        mode_list = parse_modes(modes)
        if self.network is not None:
            mode_list = list(parse_travel_modes(["walk", *mode_list]))
        origin_lons = np.asarray(lons, dtype=np.float64).reshape(-1)
        origin_lats = np.asarray(lats, dtype=np.float64).reshape(-1)
        for lon, lat in zip(origin_lons, origin_lats, strict=True):
            _check_point(float(lon), float(lat))

        radius_m = max(self._reach_m(max_commute_min, mode) for mode in mode_list)
        point_distances = haversine_m(
            origin_lons[:, None], origin_lats[:, None], self._points[:, 0], self._points[:, 1]
        )[:, self._point_ids]
        distances = np.hypot(point_distances, self._uncertainty[None, :])
        per_mode = self._table_minutes(
            origin_lons, origin_lats, distances, point_distances, mode_list
        )
        minutes = np.minimum.reduce(per_mode)
        keep = (distances <= radius_m) & (minutes <= max_commute_min)
        return CommuteTable(np.where(keep, minutes, np.inf), distances)

    @property
    def tree_rank(self) -> npt.NDArray[np.intp]:
        """Rank of each located posting in the order `reachable` lists ties in time and distance."""
        rank: npt.NDArray[np.intp] = self._tree_rank
        return rank

    def _table_minutes(
        self,
        lons: FloatArray,
        lats: FloatArray,
        distances: FloatArray,
        point_distances: FloatArray,
        modes: list[str],
    ) -> list[FloatArray]:
        """Return one (homes, located postings) array of minutes per mode."""
        if self.network is None:
            return [self.estimator.minutes(distances, mode) for mode in modes]
        added_m = distances - point_distances
        by_mode = self.network.mode_matrices(
            lons, lats, self._points[:, 0], self._points[:, 1], modes
        )
        return [
            by_mode[mode][:, self._point_ids].astype(np.float64)
            + self.estimator.minutes(added_m, mode)
            for mode in modes
        ]

    def rows(self, reachable: "Reachable", **columns: npt.NDArray[Any]) -> pd.DataFrame:
        """Build the rows of ``reachable`` as `for_commute` returns them, sorted by commute time.

        Ties in minutes are ordered by distance, then by their order in ``reachable``.
        ``columns`` are added, one value per entry of ``reachable``.
        """
        nearby = _Nearby(reachable.positions, reachable.distances, reachable.point_distances)
        frame: pd.DataFrame = self._result_frame(
            nearby,
            first_by=reachable.minutes,
            estimated_commute_min=reachable.minutes,
            commute_mode=reachable.modes,
            **columns,
        )
        return frame

    @property
    def located(self) -> pd.DataFrame:
        """Postings with a point location, in the order that `Reachable.positions` index."""
        located: pd.DataFrame = self._located
        return located

    def _reach_m(self, max_commute_min: float, mode: str) -> float:
        """Return the search radius in metres for one mode.

        With a network, a posting's minutes are ``n + s``: ``n`` network minutes to
        its point at straight-line distance ``d``, and ``s`` straight-line minutes for
        the ``x`` metres its uncertainty adds. For ``n + s <= t``, ``d <= N(n)`` and
        ``x <= S(t - n)``, where ``N`` and ``S`` are the two models' reach functions.
        ``N`` is convex and ``S`` linear, so ``d + x`` is largest at ``n = 0`` or
        ``n = t``, which gives ``max(N(t), N(0) + S(t))``.
        """
        fallback = self.estimator.reach_m(max_commute_min, mode)
        if self.network is None:
            return fallback
        network = self.network.reach_m(max_commute_min, mode)
        return max(network, self.network.reach_m(0.0, mode) + fallback)

    def _query_positions(self, lon: float, lat: float, radius_m: float) -> npt.NDArray[np.intp]:
        if self._tree is None:
            return np.empty(0, dtype=np.intp)
        query = np.radians([[lat, lon]])
        radius_rad = radius_m * (1.0 + _TREE_RADIUS_SLACK) / EARTH_RADIUS_M
        (positions,) = self._tree.query_radius(query, r=radius_rad)
        return np.asarray(positions, dtype=np.intp)

    def _within_arrays(self, lon: float, lat: float, radius_m: float) -> "_Nearby":
        positions = self._query_positions(lon, lat, radius_m)
        point_distances = haversine_m(lon, lat, self._lons[positions], self._lats[positions])
        distances = np.hypot(point_distances, self._uncertainty[positions])
        keep = distances <= radius_m
        return _Nearby(positions[keep], distances[keep], point_distances[keep])

    def _result_frame(
        self,
        nearby: "_Nearby",
        first_by: FloatArray | None = None,
        **columns: npt.NDArray[Any],
    ) -> pd.DataFrame:
        """Build the rows of ``nearby`` with ``columns`` added.

        Rows are sorted by ``first_by`` when given, then by distance.
        """
        keys = (nearby.distances,) if first_by is None else (nearby.distances, first_by)
        order = np.lexsort(keys)
        result: pd.DataFrame = self._located.iloc[nearby.positions[order]].reset_index(drop=True)
        result["distance_m"] = nearby.distances[order]
        result["point_distance_m"] = nearby.point_distances[order]
        result["distance_is_estimate"] = (
            result["precision"]
            .astype(str)
            .isin([precision.value for precision in APPROXIMATE_PRECISIONS])
        )
        for name, values in columns.items():
            result[name] = values[order]
        return result

    def _fastest_commute(
        self, nearby: "_Nearby", lon: float, lat: float, modes: list[str]
    ) -> tuple[FloatArray, npt.NDArray[np.intp]]:
        """Return each posting's minutes by its fastest mode, and that mode's index."""
        per_mode = self._minutes_per_mode(nearby, lon, lat, modes)
        if per_mode.shape[1] == 0:
            return np.empty(0, dtype=np.float64), np.empty(0, dtype=np.intp)
        fastest = np.argmin(per_mode, axis=0)
        return per_mode[fastest, np.arange(per_mode.shape[1])], fastest

    def _minutes_per_mode(
        self, nearby: "_Nearby", lon: float, lat: float, modes: list[str]
    ) -> FloatArray:
        """Return minutes of shape (modes, postings)."""
        if self.network is None:
            return np.vstack([self.estimator.minutes(nearby.distances, mode) for mode in modes])

        added_m = nearby.distances - nearby.point_distances
        by_mode = self.network.mode_matrices(
            [lon],
            [lat],
            self._lons[nearby.positions],
            self._lats[nearby.positions],
            modes,
        )
        return np.vstack(
            [
                by_mode[mode][0].astype(np.float64) + self.estimator.minutes(added_m, mode)
                for mode in modes
            ]
        )

    def _city_fill(self, count: int) -> pd.DataFrame:
        ordered: pd.DataFrame = self._city
        if "published_on" in ordered.columns:
            ordered = ordered.sort_values("published_on", ascending=False, kind="stable")
        fill: pd.DataFrame = ordered.head(count).copy()
        fill["distance_m"] = np.nan
        fill["point_distance_m"] = np.nan
        fill["distance_is_estimate"] = True
        fill["estimated_commute_min"] = np.nan
        fill["commute_mode"] = None
        return fill


class Reachable(NamedTuple):
    """Located postings within a commute limit: rows of `JobIndex.located` and their trips."""

    positions: npt.NDArray[np.intp]
    distances: FloatArray
    """Metres, widened by the location's uncertainty (the ``distance_m`` column)."""
    point_distances: FloatArray
    """Great-circle metres to the posting's point."""
    minutes: FloatArray
    """Commute minutes by the fastest allowed mode."""
    modes: npt.NDArray[np.object_]
    """Name of that mode."""

    def subset(self, rows: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> "Reachable":
        """Return the entries at ``rows`` (integer positions or a mask), in that order."""
        return Reachable(
            self.positions[rows],
            self.distances[rows],
            self.point_distances[rows],
            self.minutes[rows],
            self.modes[rows],
        )


class CommuteTable(NamedTuple):
    """Trips from several homes to every located posting, arrays of shape (homes, postings)."""

    minutes: FloatArray
    """Commute minutes by the fastest allowed mode, ``inf`` where out of reach."""
    distances: FloatArray
    """Metres, widened by the location's uncertainty (the ``distance_m`` column)."""


class _Nearby(NamedTuple):
    """Located postings found by a radius query: row positions and metres to each."""

    positions: npt.NDArray[np.intp]
    distances: FloatArray
    point_distances: FloatArray

    def subset(self, keep: npt.NDArray[np.bool_]) -> "_Nearby":
        """Return the postings where ``keep`` is True."""
        return _Nearby(self.positions[keep], self.distances[keep], self.point_distances[keep])


def _check_point(lon: float, lat: float) -> None:
    if not (np.isfinite(lon) and np.isfinite(lat)):
        raise InvalidCoordinateError(f"query point ({lon!r}, {lat!r}) is not finite")
    if not -90.0 <= lat <= 90.0:
        raise InvalidCoordinateError(
            f"latitude {lat!r} is outside -90..90; were longitude and latitude swapped?",
            field="lat",
        )
    if not -180.0 <= lon <= 180.0:
        raise InvalidCoordinateError(f"longitude {lon!r} is outside -180..180", field="lon")
