"""Turn a shortest path through the transit graph into itinerary legs."""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geo.transit.bus import BusStops
from geo.transit.graph import NodeKind, TransitGraph
from geo.transit.itinerary import Leg, LegKind, merge_walks
from geo.transit.metro import MetroData
from geo.transit.parameters import TransitParameters

IntArray = npt.NDArray[np.intp]


@dataclass
class _Ride:
    """A metro or bus ride being assembled edge by edge."""

    kind: LegKind
    line: int
    board: int
    alight: int
    wait_min: float
    minutes: float
    stops: int = 0


class _LegBuilder:
    def __init__(
        self, graph: TransitGraph, metro: MetroData, bus: BusStops, params: TransitParameters
    ) -> None:
        self.graph, self.metro, self.bus, self.params = graph, metro, bus, params
        self.legs: list[Leg] = []
        self.ride: _Ride | None = None

    def walk(self, minutes: float) -> None:
        self.legs.append(Leg(kind=LegKind.WALK, minutes=minutes))

    def board(self, kind: LegKind, node: int, wait_min: float) -> None:
        ref = int(self.graph.ref[node])
        line = int(self.graph.line[node])
        self.ride = _Ride(kind, line, ref, ref, wait_min, wait_min)

    def advance(self, node: int, minutes: float) -> None:
        ride = self._current()
        ride.minutes += minutes
        ride.stops += 1
        ride.alight = int(self.graph.ref[node])

    def alight(self) -> None:
        ride = self._current()
        self.legs.append(self._ride_leg(ride))
        self.ride = None

    def _current(self) -> _Ride:
        if self.ride is None:
            raise AssertionError("path rides a line it never boarded; expected a board edge first")
        return self.ride

    def _ride_leg(self, ride: _Ride) -> Leg:
        if ride.kind is LegKind.BUS:
            metres_per_min = self.params.bus_speed_kmh * 1000.0 / 60.0
            return Leg(
                kind=LegKind.BUS,
                minutes=ride.minutes,
                line=str(int(self.bus.line_ids[ride.line])),
                stops=ride.stops,
                wait_min=ride.wait_min,
                distance_m=(ride.minutes - ride.wait_min) * metres_per_min,
            )
        metro_line = self.metro.lines[ride.line]
        return Leg(
            kind=LegKind.METRO,
            minutes=ride.minutes,
            line=metro_line.line_id,
            line_name_zh=metro_line.name_zh,
            line_name_en=metro_line.name_en,
            from_zh=self.metro.names_zh[ride.board],
            to_zh=self.metro.names_zh[ride.alight],
            from_en=self.metro.names_en[ride.board],
            to_en=self.metro.names_en[ride.alight],
            stops=ride.stops,
            wait_min=ride.wait_min,
        )

    def step(self, source: int, target: int) -> None:
        """Add the edge ``source → target`` to the legs."""
        minutes = float(self.graph.weights[source, target])
        kinds = (NodeKind(self.graph.kind[source]), NodeKind(self.graph.kind[target]))
        same_line = self.graph.line[source] == self.graph.line[target]
        match kinds:
            case (NodeKind.STATION_IN, NodeKind.PLATFORM):
                self.walk(self.params.station_entry_min)
                self.board(LegKind.METRO, target, minutes - self.params.station_entry_min)
            case (NodeKind.PLATFORM, NodeKind.PLATFORM) if same_line:
                self.advance(target, minutes)
            case (NodeKind.PLATFORM, NodeKind.PLATFORM):
                self.alight()
                transfer = self.params.transfer_walk_min
                self.legs.append(Leg(kind=LegKind.TRANSFER, minutes=transfer))
                self.board(LegKind.METRO, target, minutes - transfer)
            case (NodeKind.PLATFORM, NodeKind.STATION_OUT):
                self.alight()
                self.walk(minutes)
            case (NodeKind.CELL_IN, NodeKind.ROUTE_STOP):
                wait = self.params.bus_wait_min
                self.board(LegKind.BUS, target, wait)
                self.advance(target, minutes - wait)
            case (NodeKind.ROUTE_STOP, NodeKind.ROUTE_STOP):
                self.advance(target, minutes)
            case (NodeKind.ROUTE_STOP, NodeKind.CELL_OUT):
                self.alight()
            case _:
                self.walk(minutes)


def path_legs(
    path: IntArray,
    access_min: float,
    egress_min: float,
    *,
    graph: TransitGraph,
    metro: MetroData,
    bus: BusStops,
    params: TransitParameters,
) -> tuple[Leg, ...]:
    """Describe a trip through the graph as legs.

    Parameters
    ----------
    path
        Graph nodes from the access node to the egress node.
    access_min, egress_min
        Walking minutes from the origin to the access node and from the egress node
        to the destination.
    graph, metro, bus, params
        The network the path runs through.

    Returns
    -------
    tuple of Leg
        Walk legs merged, so the trip reads walk → ride → … → walk.
    """
    builder = _LegBuilder(graph, metro, bus, params)
    builder.walk(access_min)
    for source, target in zip(path[:-1].tolist(), path[1:].tolist(), strict=True):
        builder.step(source, target)
    builder.walk(egress_min)
    return merge_walks(builder.legs)
