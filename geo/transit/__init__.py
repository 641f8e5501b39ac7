"""The transit commute model of Xi'an: metro, derived bus stops, walking, cycling and driving.

See `geo.transit.network.TransitNetwork` and docs/transit.md.
"""

from geo.transit.itinerary import Leg, LegKind, Route
from geo.transit.modes import TRAVEL_MODES, parse_travel_modes
from geo.transit.network import TransitNetwork
from geo.transit.parameters import TransitParameters

__all__ = [
    "TRAVEL_MODES",
    "Leg",
    "LegKind",
    "Route",
    "TransitNetwork",
    "TransitParameters",
    "parse_travel_modes",
]
