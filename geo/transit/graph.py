"""The transit network as a weighted directed graph, and its stop-to-stop travel times.

Nodes and edges (weights in minutes):

- Each metro station has an *in* node (street level, entering) and an *out* node
  (street level, leaving), kept apart so that a trip cannot leave and re-enter a
  station for free. Each (line, station) pair has a *platform* node.
  in → platform: station entry plus the expected wait for that line.
  platform → platform along a line: straight-line distance at the metro speed.
  platform → platform of another line at the same station: transfer walk plus the
  expected wait for the new line. platform → out: station exit.
- Each bus cell (see `geo.transit.bus`) has an *in* node (boarding) and an *out*
  node (alighting), and each route stop a *route stop* node. route stop → next
  route stop of the same line, both directions: distance along the line at the bus
  speed. cell in → the route stops next to the line's route stop in that cell:
  expected bus wait plus that ride, so every bus trip rides at least one section.
  route stop → cell out: 0. cell out → in of the same cell: 0, a change of bus
  line that pays the next wait.
- Walking links join stations and cells less than ``max_transfer_walk_m`` apart,
  straight line, always from an out node to an in node, in both directions. Their
  weight is the walking time with the detour factor.

Trips start at an *access* node (the in node of a station or cell) and end at an
*egress* node (an out node). Both are indexed the same way: stations first, in the
order of `MetroData`, then cells.
"""

import logging
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from geo.crs import haversine_m, to_metric
from geo.transit.bus import BusStops
from geo.transit.metro import MetroData
from geo.transit.parameters import TransitParameters

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# Rows of the all-pairs search per scipy call; each row has a float64 per node.
_SOURCES_PER_CALL = 128


class NodeKind(IntEnum):
    """Kind of a graph node; `TransitGraph.ref` gives the station, cell or route stop."""

    STATION_IN = 0
    STATION_OUT = 1
    PLATFORM = 2
    CELL_IN = 3
    CELL_OUT = 4
    ROUTE_STOP = 5


@dataclass(frozen=True)
class TransitGraph:
    """The network graph with node labels and the access and egress node lists.

    ``ref`` is the station index for station and platform nodes, the cell index for
    cell nodes and the route stop index for route stop nodes. ``line`` is the metro
    line index (into `MetroData.lines`) of a platform, the bus line index of a route
    stop, and -1 for other nodes.
    """

    weights: csr_matrix
    kind: npt.NDArray[np.int8]
    ref: IntArray
    line: IntArray
    access_nodes: IntArray
    egress_nodes: IntArray

    @property
    def n_nodes(self) -> int:
        """Number of graph nodes."""
        return len(self.kind)


class _Edges:
    """Edge lists collected before they become one sparse matrix."""

    def __init__(self) -> None:
        self.sources: list[IntArray] = []
        self.targets: list[IntArray] = []
        self.minutes: list[FloatArray] = []

    def add(self, sources: npt.ArrayLike, targets: npt.ArrayLike, minutes: npt.ArrayLike) -> None:
        source = np.asarray(sources, dtype=np.intp)
        self.sources.append(source)
        self.targets.append(np.asarray(targets, dtype=np.intp))
        self.minutes.append(np.broadcast_to(np.asarray(minutes, dtype=np.float64), source.shape))

    def matrix(self, n_nodes: int) -> csr_matrix:
        """Build the CSR matrix, keeping the smallest weight of repeated edges.

        Zero weights stay stored, so scipy's shortest-path routines see those edges.
        """
        sources = np.concatenate(self.sources)
        targets = np.concatenate(self.targets)
        minutes = np.concatenate(self.minutes)
        order = np.lexsort((minutes, targets, sources))
        sources, targets, minutes = sources[order], targets[order], minutes[order]
        first = np.ones(len(sources), dtype=bool)
        first[1:] = (sources[1:] != sources[:-1]) | (targets[1:] != targets[:-1])
        shape = (n_nodes, n_nodes)
        return coo_matrix((minutes[first], (sources[first], targets[first])), shape=shape).tocsr()


def build_graph(metro: MetroData, bus: BusStops, params: TransitParameters) -> TransitGraph:
    """Build the network graph from the metro lines and the derived bus stops.

    Parameters
    ----------
    metro
        Stations and lines, WGS84.
    bus
        Cells and route stops derived from the bus lines, WGS84.
    params
        Speeds, waits and walking limits.

    Returns
    -------
    TransitGraph
    """
    layout = _Layout(
        n_stations=len(metro),
        n_platforms=sum(len(line.stations) for line in metro.lines),
        n_cells=bus.n_cells,
        n_route_stops=len(bus.route_stop_line),
    )
    kind = np.empty(layout.n_nodes, dtype=np.int8)
    ref = np.empty(layout.n_nodes, dtype=np.intp)
    line = np.full(layout.n_nodes, -1, dtype=np.intp)
    for block, block_kind, count in (
        (layout.station_in, NodeKind.STATION_IN, layout.n_stations),
        (layout.station_out, NodeKind.STATION_OUT, layout.n_stations),
        (layout.cell_in, NodeKind.CELL_IN, layout.n_cells),
        (layout.cell_out, NodeKind.CELL_OUT, layout.n_cells),
        (layout.route_stop, NodeKind.ROUTE_STOP, layout.n_route_stops),
    ):
        kind[block : block + count], ref[block : block + count] = block_kind, np.arange(count)
    line[layout.route_stop :] = bus.route_stop_line

    edges = _Edges()
    platform_station, platform_line = _add_metro(edges, metro, params, layout)
    platforms = slice(layout.platform, layout.platform + layout.n_platforms)
    kind[platforms], ref[platforms], line[platforms] = (
        NodeKind.PLATFORM,
        platform_station,
        platform_line,
    )
    _add_bus(edges, bus, params, layout)
    _add_walking_links(edges, metro, bus, params, layout)

    weights = edges.matrix(layout.n_nodes)
    logger.info("transit graph: %d nodes, %d edges", layout.n_nodes, weights.nnz)
    stations = np.arange(layout.n_stations, dtype=np.intp)
    cells = np.arange(layout.n_cells, dtype=np.intp)
    return TransitGraph(
        weights=weights,
        kind=kind,
        ref=ref,
        line=line,
        access_nodes=np.concatenate([layout.station_in + stations, layout.cell_in + cells]),
        egress_nodes=np.concatenate([layout.station_out + stations, layout.cell_out + cells]),
    )


@dataclass(frozen=True)
class _Layout:
    """Node counts and the first node of each block, in graph order."""

    n_stations: int
    n_platforms: int
    n_cells: int
    n_route_stops: int

    @property
    def station_in(self) -> int:
        return 0

    @property
    def station_out(self) -> int:
        return self.n_stations

    @property
    def platform(self) -> int:
        return 2 * self.n_stations

    @property
    def cell_in(self) -> int:
        return self.platform + self.n_platforms

    @property
    def cell_out(self) -> int:
        return self.cell_in + self.n_cells

    @property
    def route_stop(self) -> int:
        return self.cell_out + self.n_cells

    @property
    def n_nodes(self) -> int:
        return self.route_stop + self.n_route_stops


def _add_metro(
    edges: _Edges, metro: MetroData, params: TransitParameters, layout: _Layout
) -> tuple[IntArray, IntArray]:
    """Add platforms' edges; return the station and line index of each platform."""
    platform_base = layout.platform
    metres_per_min = params.metro_speed_kmh * 1000.0 / 60.0
    stations_of: list[IntArray] = []
    lines_of: list[IntArray] = []
    first = platform_base
    for line_index, metro_line in enumerate(metro.lines):
        stations = metro_line.stations
        platforms = np.arange(first, first + len(stations), dtype=np.intp)
        ahead = np.roll(platforms, -1) if metro_line.loop else platforms[1:]
        behind = platforms if metro_line.loop else platforms[:-1]
        ahead_station = stations[ahead - first]
        behind_station = stations[behind - first]
        ride = (
            haversine_m(
                metro.lons[behind_station],
                metro.lats[behind_station],
                metro.lons[ahead_station],
                metro.lats[ahead_station],
            )
            / metres_per_min
        )
        edges.add(behind, ahead, ride)
        edges.add(ahead, behind, ride)

        board = params.station_entry_min + params.metro_wait_min(metro_line.line_id)
        edges.add(layout.station_in + stations, platforms, board)
        edges.add(platforms, layout.station_out + stations, params.station_exit_min)
        stations_of.append(stations)
        lines_of.append(np.full(len(stations), line_index, dtype=np.intp))
        first += len(stations)

    platform_station = np.concatenate(stations_of)
    platform_line = np.concatenate(lines_of)
    _add_transfers(edges, metro, params, platform_base, platform_station, platform_line)
    return platform_station, platform_line


def _add_transfers(
    edges: _Edges,
    metro: MetroData,
    params: TransitParameters,
    platform_base: int,
    platform_station: IntArray,
    platform_line: IntArray,
) -> None:
    """Link every pair of platforms of different lines at one station."""
    platforms = np.arange(len(platform_station), dtype=np.intp)
    same_station = platform_station[:, None] == platform_station[None, :]
    other_line = platform_line[:, None] != platform_line[None, :]
    sources, targets = np.nonzero(same_station & other_line)
    waits = np.array(
        [params.metro_wait_min(metro.lines[index].line_id) for index in platform_line[targets]]
    )
    edges.add(
        platform_base + platforms[sources],
        platform_base + platforms[targets],
        params.transfer_walk_min + waits,
    )


def _add_bus(edges: _Edges, bus: BusStops, params: TransitParameters, layout: _Layout) -> None:
    nodes = layout.route_stop + np.arange(len(bus.route_stop_line), dtype=np.intp)
    cell = bus.route_stop_cell
    same_line = bus.route_stop_line[1:] == bus.route_stop_line[:-1]
    metres_per_min = params.bus_speed_kmh * 1000.0 / 60.0
    ride = np.abs(np.diff(bus.route_stop_offset_m))[same_line] / metres_per_min
    behind, ahead = nodes[:-1][same_line], nodes[1:][same_line]
    edges.add(behind, ahead, ride)
    edges.add(ahead, behind, ride)

    # Boarding puts the rider on the bus at the line's next route stop, in either
    # direction, so that no trip boards and alights at the same route stop.
    wait = params.bus_wait_min
    edges.add(layout.cell_in + cell[:-1][same_line], ahead, wait + ride)
    edges.add(layout.cell_in + cell[1:][same_line], behind, wait + ride)
    edges.add(nodes, layout.cell_out + cell, 0.0)
    cells = np.arange(bus.n_cells, dtype=np.intp)
    edges.add(layout.cell_out + cells, layout.cell_in + cells, 0.0)


def _add_walking_links(
    edges: _Edges, metro: MetroData, bus: BusStops, params: TransitParameters, layout: _Layout
) -> None:
    n_stations = len(metro)
    lons = np.concatenate([metro.lons, bus.cell_lons])
    lats = np.concatenate([metro.lats, bus.cell_lats])
    x, y = to_metric(lons, lats)
    # The projected search radius is widened slightly; the haversine test below decides.
    pairs = cKDTree(np.column_stack([x, y])).query_pairs(
        params.max_transfer_walk_m * 1.01, output_type="ndarray"
    )
    first, second = pairs[:, 0], pairs[:, 1]
    metres = haversine_m(lons[first], lats[first], lons[second], lats[second])
    close = metres <= params.max_transfer_walk_m
    first, second, metres = first[close], second[close], metres[close]
    minutes = metres * params.walk_detour_factor / params.walk_m_per_min

    # Places are stations, then cells; a walk leaves an out node and enters an in node.
    def entering(place: IntArray) -> IntArray:
        cell = layout.cell_in + place - n_stations
        return np.where(place < n_stations, layout.station_in + place, cell)

    def leaving(place: IntArray) -> IntArray:
        cell = layout.cell_out + place - n_stations
        return np.where(place < n_stations, layout.station_out + place, cell)

    edges.add(leaving(first), entering(second), minutes)
    edges.add(leaving(second), entering(first), minutes)


def stop_to_stop_minutes(graph: TransitGraph, limit_min: float) -> npt.NDArray[np.float32]:
    """Compute the shortest network time from every access node to every egress node.

    Parameters
    ----------
    graph
        The network graph.
    limit_min
        Paths longer than this many minutes are not searched and come out as ``inf``.

    Returns
    -------
    numpy.ndarray of float32
        Minutes, shape (access nodes, egress nodes), both indexed stations first,
        then cells.
    """
    n_access = len(graph.access_nodes)
    times = np.empty((n_access, len(graph.egress_nodes)), dtype=np.float32)
    for start in range(0, n_access, _SOURCES_PER_CALL):
        sources = graph.access_nodes[start : start + _SOURCES_PER_CALL]
        rows = dijkstra(graph.weights, directed=True, indices=sources, limit=limit_min)
        times[start : start + len(sources)] = rows[:, graph.egress_nodes]
    return times
