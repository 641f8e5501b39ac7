"""`TransitNetwork`: door-to-door minutes, itineraries and many-to-many matrices.

A transit trip is: walk (straight line times the detour factor) to one of the
nearest metro stations or derived bus stops, ride the network, walk to the
destination. Stop-to-stop times come from one all-pairs Dijkstra run over the graph
(`geo.transit.graph`), made once when the network is built. A query then only
finds the nearest stops of each point (scipy ``cKDTree`` in EPSG:4545) and
takes the minimum over access stop, egress stop and mode with numpy broadcasting:

    transit(o, d) = min over i, j of walk(o, i) + stop_minutes[i, j] + walk(j, d)

Walking, cycling and driving go straight from door to door: haversine distance
times a detour factor over a speed, plus a fixed overhead for driving. Walking
directly is always an option of `TransitNetwork.matrix` and `TransitNetwork.route`.
"""

import logging
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from geo.crs import haversine_m, to_metric, validate_point
from geo.errors import InvalidCoordinateError
from geo.transit.bus import BusStops, load_bus_stops
from geo.transit.graph import build_graph
from geo.transit.itinerary import Leg, LegKind, Route
from geo.transit.metro import MetroData, load_metro
from geo.transit.modes import parse_travel_modes
from geo.transit.parameters import TransitParameters
from geo.transit.paths import path_legs
from geo.transit.stop_times import stop_times

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.intp]

# Upper bound on the float32 elements of one broadcast block (16 MiB).
_BLOCK_ELEMENTS = 1 << 22


class TransitNetwork:
    """The Xi'an commute model: metro, derived bus stops, walking, cycling and driving.

    Build it with :meth:`from_data_dir`. Points are WGS84 degrees (lon, lat) and
    times are minutes. The model ignores timetables, crowding and service hours:
    waits are half a peak headway, and bus stops are derived (see `geo.transit.bus`).

    Attributes
    ----------
    params : TransitParameters
    metro : MetroData
    bus : BusStops
    graph : TransitGraph
    stop_minutes : numpy.ndarray of float32
        Network minutes from each access node to each egress node, ``inf`` beyond
        ``params.max_transit_min``. They are read from ``cache_dir`` when it has a
        cache file of the same network.
    build_seconds : float
        Wall time of the build; :meth:`from_data_dir` includes reading the files.
    """

    def __init__(
        self,
        metro: MetroData,
        bus: BusStops,
        params: TransitParameters | None = None,
        *,
        cache_dir: Path | None = None,
    ) -> None:
        started = time.perf_counter()
        self.params = params or TransitParameters()
        self.metro, self.bus = metro, bus
        self.graph = build_graph(metro, bus, self.params)
        times = stop_times(self.graph, metro, bus, self.params, cache_dir)
        self.stop_minutes = times.minutes
        self._transit_speed = times.reach_speed_m_per_min
        self._transit_slack_m = times.reach_slack_m

        self._station_tree = cKDTree(np.column_stack(to_metric(metro.lons, metro.lats)))
        self._stop_tree = cKDTree(np.column_stack(to_metric(bus.stop_lons, bus.stop_lats)))
        self.build_seconds = time.perf_counter() - started

    @classmethod
    def from_data_dir(
        cls,
        data_dir: Path,
        params: TransitParameters | None = None,
        *,
        cache_dir: Path | None = None,
    ) -> "TransitNetwork":
        """Read the metro and bus data from ``data_dir`` and build the network.

        Parameters
        ----------
        data_dir
            The data folder with ``xian_metro_openmetro`` and ``xian_transit_lines_cityvein``.
        params
            Model parameters; the defaults of `TransitParameters` when None.
        cache_dir
            Folder where the stop-to-stop minutes are cached (see
            `geo.transit.stop_times`); None always computes them.

        Raises
        ------
        DataSourceError
            When a metro or bus file is missing or malformed.
        """
        started = time.perf_counter()
        params = params or TransitParameters()
        metro = load_metro(data_dir)
        bus = load_bus_stops(data_dir, params.bus_stop_spacing_m, params.bus_cell_m)
        network = cls(metro, bus, params, cache_dir=cache_dir)
        network.build_seconds = time.perf_counter() - started
        logger.info(
            "transit network built from %s in %.2f s: %d access nodes",
            data_dir,
            network.build_seconds,
            len(network.stop_minutes),
        )
        return network

    def station_point(self, name_zh: str) -> tuple[float, float]:
        """Return the WGS84 (lon, lat) of the metro station named ``name_zh``, e.g. ``小寨``.

        Raises
        ------
        LookupError
            When no station has that name.
        """
        try:
            index = self.metro.names_zh.index(name_zh)
        except ValueError as err:
            raise LookupError(f"metro station {name_zh!r} not found") from err
        return float(self.metro.lons[index]), float(self.metro.lats[index])

    def matrix(
        self,
        origins_lon: npt.ArrayLike,
        origins_lat: npt.ArrayLike,
        dest_lon: npt.ArrayLike,
        dest_lat: npt.ArrayLike,
        modes: str | Iterable[str],
    ) -> Float32Array:
        """Compute door-to-door minutes from every origin to every destination.

        Parameters
        ----------
        origins_lon, origins_lat
            Origins, WGS84 degrees, 1-D and of equal length.
        dest_lon, dest_lat
            Destinations, WGS84 degrees, 1-D and of equal length.
        modes
            Allowed modes, ``"walk;transit"`` or a list of names from
            `geo.transit.TRAVEL_MODES`. Walking directly is added when missing.

        Returns
        -------
        numpy.ndarray of float32
            Shape (origins, destinations): the fastest allowed mode's minutes.

        Raises
        ------
        InvalidTravelModeError
            With field ``modes`` for an empty list or an unknown name.
        InvalidCoordinateError
            When a coordinate is not finite or out of range; the field names the array.
        """
        allowed = ("walk", *parse_travel_modes(modes))
        by_mode = self.mode_matrices(origins_lon, origins_lat, dest_lon, dest_lat, allowed)
        fastest: Float32Array = np.minimum.reduce(list(by_mode.values()))
        return fastest

    def mode_matrices(
        self,
        origins_lon: npt.ArrayLike,
        origins_lat: npt.ArrayLike,
        dest_lon: npt.ArrayLike,
        dest_lat: npt.ArrayLike,
        modes: str | Iterable[str],
    ) -> dict[str, Float32Array]:
        """Compute door-to-door minutes for each mode separately.

        Parameters are those of :meth:`matrix`, except that walking is not added.
        ``transit`` means the network with walks at both ends, and is ``inf`` where no
        stop lies within ``params.max_access_walk_m`` or the stop-to-stop time exceeds
        ``params.max_transit_min``.

        Returns
        -------
        dict
            Mode name to a float32 array of shape (origins, destinations), in
            `TRAVEL_MODES` order.
        """
        chosen = parse_travel_modes(modes)
        o_lon, o_lat = _points(origins_lon, origins_lat, "origins")
        d_lon, d_lat = _points(dest_lon, dest_lat, "dest")

        # Many postings share an anchor, so each distinct point is computed once.
        o_points, o_inverse = _distinct(o_lon, o_lat)
        d_points, d_inverse = _distinct(d_lon, d_lat)
        by_mode = self._distinct_mode_matrices(o_points, d_points, chosen)
        return {mode: values[np.ix_(o_inverse, d_inverse)] for mode, values in by_mode.items()}

    def route(
        self,
        origin: tuple[float, float],
        destination: tuple[float, float],
        modes: str | Iterable[str],
    ) -> Route:
        """Find the fastest door-to-door trip and describe it leg by leg.

        Parameters
        ----------
        origin, destination
            (lon, lat) in WGS84 degrees, inside the Xi'an area.
        modes
            Allowed modes as for :meth:`matrix`; walking directly is always allowed.

        Returns
        -------
        Route
            ``minutes`` equals ``matrix([o_lon], [o_lat], [d_lon], [d_lat], modes)``;
            ties between modes go to the first in `TRAVEL_MODES`.

        Raises
        ------
        InvalidCoordinateError
            With field ``origin`` or ``destination``.
        InvalidTravelModeError
            With field ``modes``.
        """
        validate_point(*origin, field="origin")
        validate_point(*destination, field="destination")
        allowed = ("walk", *parse_travel_modes(modes))
        by_mode = self.mode_matrices(
            [origin[0]], [origin[1]], [destination[0]], [destination[1]], allowed
        )
        mode = min(by_mode, key=lambda name: float(by_mode[name][0, 0]))
        minutes = float(by_mode[mode][0, 0])

        if mode == "transit":
            legs = self._transit_legs(origin, destination)
        else:
            legs = (Leg(kind=LegKind(mode), minutes=minutes),)
        return Route(minutes=minutes, mode=mode, legs=legs)

    def routes(
        self,
        origin: tuple[float, float],
        dest_lon: npt.ArrayLike,
        dest_lat: npt.ArrayLike,
        modes: str | Iterable[str],
    ) -> list[Route]:
        """Find the fastest trip from one origin to each destination, as `route` does.

        The transit legs of all destinations come from one Dijkstra call over their
        distinct boarding nodes, which is what makes a page of 20 itineraries cheap
        enough for a request.

        Parameters
        ----------
        origin
            (lon, lat) in WGS84 degrees, inside the Xi'an area.
        dest_lon, dest_lat
            Destinations, WGS84 degrees, 1-D and of equal length.
        modes
            Allowed modes as for :meth:`matrix`; walking directly is always allowed.

        Returns
        -------
        list of Route
            One per destination, equal to ``route(origin, (lon, lat), modes)``.

        Raises
        ------
        InvalidCoordinateError
            With field ``origin``, or ``dest`` for a destination.
        InvalidTravelModeError
            With field ``modes``.
        """
        validate_point(*origin, field="origin")
        allowed = ("walk", *parse_travel_modes(modes))
        d_lon, d_lat = _points(dest_lon, dest_lat, "dest")
        by_mode = self.mode_matrices([origin[0]], [origin[1]], d_lon, d_lat, allowed)
        names = list(by_mode)
        stacked = np.vstack([by_mode[mode][0] for mode in names])
        # argmin returns the first minimum, so ties go to the first mode as in `route`.
        chosen = [names[row] for row in np.argmin(stacked, axis=0)]

        by_transit = [i for i, mode in enumerate(chosen) if mode == "transit"]
        transit_legs = self._many_transit_legs(origin, d_lon[by_transit], d_lat[by_transit])
        legs_of = dict(zip(by_transit, transit_legs, strict=True))
        result = []
        for i, mode in enumerate(chosen):
            minutes = float(by_mode[mode][0, i])
            legs = legs_of.get(i) or (Leg(kind=LegKind(mode), minutes=minutes),)
            result.append(Route(minutes=minutes, mode=mode, legs=legs))
        return result

    def reach_m(self, max_commute_min: float, mode: str) -> float:
        """Return an upper bound of the straight-line distance reachable in the time.

        No destination whose ``mode`` minutes are at most ``max_commute_min`` lies
        farther from the origin than this many metres (haversine). The bound is
        affine in ``max_commute_min``. For transit it comes from the built network:
        the fastest straight-line progress of any stop-to-stop trip, counted from the
        farthest pseudo-stop of each cell, and never below walking.

        Raises
        ------
        ValueError
            When ``max_commute_min`` is negative or not finite.
        InvalidTravelModeError
            When ``mode`` is not a travel mode.
        """
        if not np.isfinite(max_commute_min) or max_commute_min < 0:
            raise ValueError(
                f"max_commute_min {max_commute_min!r} is invalid; expected minutes >= 0"
            )
        (name,) = parse_travel_modes([mode])
        if name == "transit":
            return self._transit_speed * max_commute_min + self._transit_slack_m
        speed_kmh, detour, _ = self._direct_mode(name)
        return max_commute_min * speed_kmh * 1000.0 / 60.0 / detour

    def _distinct_mode_matrices(
        self, origins: FloatArray, dests: FloatArray, modes: tuple[str, ...]
    ) -> dict[str, Float32Array]:
        """Compute each mode's matrix for (n, 2) arrays of distinct (lon, lat) points."""
        if len(origins) == 0 or len(dests) == 0:
            empty = np.empty((len(origins), len(dests)), dtype=np.float32)
            return {mode: empty.copy() for mode in modes}
        result: dict[str, Float32Array] = {}
        direct = [mode for mode in modes if mode != "transit"]
        if direct:
            result.update(self._direct_minutes(origins, dests, direct))
        if "transit" in modes:
            result["transit"] = self._transit_minutes(origins, dests)
        return {mode: result[mode] for mode in modes}

    def _direct_mode(self, mode: str) -> tuple[float, float, float]:
        """Return speed (km/h), detour factor and fixed overhead (minutes) of a direct mode."""
        params = self.params
        table = {
            "walk": (params.walk_speed_kmh, params.walk_detour_factor, 0.0),
            "bike": (params.bike_speed_kmh, params.bike_detour_factor, 0.0),
            "drive": (
                params.drive_speed_kmh,
                params.drive_detour_factor,
                params.drive_overhead_min,
            ),
        }
        return table[mode]

    def _direct_minutes(
        self, origins: FloatArray, dests: FloatArray, modes: list[str]
    ) -> dict[str, Float32Array]:
        shape = (len(origins), len(dests))
        result = {mode: np.empty(shape, dtype=np.float32) for mode in modes}
        rows = max(1, _BLOCK_ELEMENTS // max(1, len(dests)))
        for start in range(0, len(origins), rows):
            block = slice(start, start + rows)
            metres = haversine_m(
                origins[block, 0, None], origins[block, 1, None], dests[:, 0], dests[:, 1]
            )
            for mode in modes:
                speed_kmh, detour, overhead = self._direct_mode(mode)
                metres_per_min = speed_kmh * 1000.0 / 60.0
                result[mode][block] = overhead + metres * detour / metres_per_min
        return result

    def nearest_stops(
        self, lons: npt.ArrayLike, lats: npt.ArrayLike
    ) -> tuple[IntArray, Float32Array]:
        """Find the stations and bus stops each point may walk to, as a trip's first or last leg.

        Parameters
        ----------
        lons, lats
            WGS84 degrees, 1-D and of equal length.

        Returns
        -------
        indices : numpy.ndarray of intp
            Shape (points, k): rows of ``stop_minutes`` for a trip's start (columns for
            its end), stations first in `MetroData` order, then cells. The same place
            can appear more than once.
        minutes : numpy.ndarray of float32
            Walking minutes to each, ``inf`` beyond ``params.max_access_walk_m``.
        """
        lon, lat = _points(lons, lats, "points")
        return self._candidates(np.column_stack([lon, lat]))

    def _candidates(self, points: FloatArray) -> tuple[IntArray, Float32Array]:
        """Run `nearest_stops` on an (n, 2) array of (lon, lat) rows."""
        params = self.params
        n_stations = len(self.metro)
        station_k = min(params.access_stations, n_stations)
        stop_k = min(params.access_bus_stops, len(self.bus.stop_lons))
        if len(points) == 0:
            shape = (0, station_k + stop_k)
            return np.empty(shape, dtype=np.intp), np.empty(shape, dtype=np.float32)
        # Neighbours are searched in EPSG:4545; the walks use haversine metres.
        query = np.column_stack(to_metric(points[:, 0], points[:, 1]))
        _, station_index = self._station_tree.query(query, k=[*range(1, station_k + 1)])
        _, stop_index = self._stop_tree.query(query, k=[*range(1, stop_k + 1)])
        lons = np.hstack([self.metro.lons[station_index], self.bus.stop_lons[stop_index]])
        lats = np.hstack([self.metro.lats[station_index], self.bus.stop_lats[stop_index]])
        metres = haversine_m(points[:, 0, None], points[:, 1, None], lons, lats)

        index = np.hstack([station_index, n_stations + self.bus.stop_cell[stop_index]])
        minutes = metres * params.walk_detour_factor / params.walk_m_per_min
        minutes[metres > params.max_access_walk_m] = np.inf
        return index.astype(np.intp), minutes.astype(np.float32)

    def _transit_minutes(self, origins: FloatArray, dests: FloatArray) -> Float32Array:
        access, access_min = self._candidates(origins)
        egress, egress_min = self._candidates(dests)
        result = np.full((len(origins), len(dests)), np.inf, dtype=np.float32)
        rows = max(1, _BLOCK_ELEMENTS // max(1, len(dests), self.stop_minutes.shape[1]))
        for start in range(0, len(origins), rows):
            block = slice(start, start + rows)
            # Fastest time from each origin to every egress node, one access stop at a time.
            shape = (len(access[block]), self.stop_minutes.shape[1])
            to_egress = np.full(shape, np.inf, dtype=np.float32)
            for column in range(access.shape[1]):
                via = access_min[block, column, None] + self.stop_minutes[access[block, column]]
                np.minimum(to_egress, via, out=to_egress)
            # Then from the egress nodes to each destination, one egress stop at a time.
            for column in range(egress.shape[1]):
                via = to_egress[:, egress[:, column]] + egress_min[None, :, column]
                np.minimum(result[block], via, out=result[block])
        return result

    def _transit_legs(
        self, origin: tuple[float, float], destination: tuple[float, float]
    ) -> tuple[Leg, ...]:
        access, access_min = self._candidates(np.array([origin], dtype=np.float64))
        egress, egress_min = self._candidates(np.array([destination], dtype=np.float64))
        # `_transit_minutes` takes the minimum of these float32 sums, so the best pair
        # here gives exactly the matrix entry.
        pairs = (
            access_min[0][:, None] + self.stop_minutes[np.ix_(access[0], egress[0])]
        ) + egress_min[0][None, :]
        first, last = np.unravel_index(int(np.argmin(pairs)), pairs.shape)
        source = int(self.graph.access_nodes[access[0][first]])
        target = int(self.graph.egress_nodes[egress[0][last]])

        _, predecessors = dijkstra(
            self.graph.weights,
            directed=True,
            indices=source,
            return_predecessors=True,
            limit=self.params.max_transit_min,
        )
        return path_legs(
            _trace(predecessors, source, target),
            float(access_min[0][first]),
            float(egress_min[0][last]),
            graph=self.graph,
            metro=self.metro,
            bus=self.bus,
            params=self.params,
        )

    def _many_transit_legs(
        self, origin: tuple[float, float], d_lon: FloatArray, d_lat: FloatArray
    ) -> list[tuple[Leg, ...]]:
        """Return the transit legs from one origin to each destination, one Dijkstra call."""
        if len(d_lon) == 0:
            return []
        access, access_min = self._candidates(np.array([origin], dtype=np.float64))
        egress, egress_min = self._candidates(np.column_stack([d_lon, d_lat]))
        # The same float32 sums as `_transit_legs`, so each best pair is its matrix entry.
        pairs = (
            access_min[0][None, :, None]
            + self.stop_minutes[access[0][None, :, None], egress[:, None, :]]
        ) + egress_min[:, None, :]
        flat = pairs.reshape(len(d_lon), -1).argmin(axis=1)
        first, last = np.unravel_index(flat, pairs.shape[1:])
        sources = self.graph.access_nodes[access[0][first]].astype(np.intp)
        targets = self.graph.egress_nodes[egress[np.arange(len(d_lon)), last]].astype(np.intp)

        distinct_sources = np.unique(sources)
        _, predecessors = dijkstra(
            self.graph.weights,
            directed=True,
            indices=distinct_sources,
            return_predecessors=True,
            limit=self.params.max_transit_min,
        )
        row_of = {int(source): row for row, source in enumerate(distinct_sources)}
        return [
            path_legs(
                _trace(predecessors[row_of[int(source)]], int(source), int(target)),
                float(access_min[0][start]),
                float(egress_min[i][end]),
                graph=self.graph,
                metro=self.metro,
                bus=self.bus,
                params=self.params,
            )
            for i, (source, target, start, end) in enumerate(
                zip(sources, targets, first, last, strict=True)
            )
        ]


def _points(lons: npt.ArrayLike, lats: npt.ArrayLike, name: str) -> tuple[FloatArray, FloatArray]:
    """Check 1-D coordinate arrays of equal length, finite and in range."""
    lon = np.asarray(lons, dtype=np.float64)
    lat = np.asarray(lats, dtype=np.float64)
    if lon.ndim != 1 or lon.shape != lat.shape:
        raise ValueError(
            f"{name}_lon and {name}_lat have shapes {lon.shape} and {lat.shape}; "
            "expected two 1-D arrays of equal length"
        )
    for axis, values, low, high in (("lon", lon, -180.0, 180.0), ("lat", lat, -90.0, 90.0)):
        bad = ~np.isfinite(values) | (values < low) | (values > high)
        if bad.any():
            position = int(np.flatnonzero(bad)[0])
            raise InvalidCoordinateError(
                f"{name}_{axis}[{position}] is {values[position]!r}; expected a finite "
                f"value in {low:g}..{high:g} (WGS84 degrees)",
                field=f"{name}_{axis}",
                rule="invalid_coordinate",
            )
    return lon, lat


def _distinct(lons: FloatArray, lats: FloatArray) -> tuple[FloatArray, IntArray]:
    """Return the distinct (lon, lat) rows and, per input point, its row among them."""
    # A complex number stores both floats exactly, and hashing it is faster than sorting rows.
    inverse, distinct = pd.factorize(lons + 1j * lats)
    points = np.column_stack([distinct.real, distinct.imag])
    return points, inverse.astype(np.intp)


def _trace(predecessors: IntArray, source: int, target: int) -> IntArray:
    """Follow scipy's predecessor array back from ``target`` to ``source``."""
    nodes = [target]
    while nodes[-1] != source:
        previous = int(predecessors[nodes[-1]])
        if previous < 0:
            raise AssertionError(f"graph node {target} is not reachable from node {source}")
        nodes.append(previous)
    return np.asarray(nodes[::-1], dtype=np.intp)
