"""Community through-train (社区直通车): employers reachable from a community, by mode and route.

A community notice board lists the employers whose sites a resident reaches within
a time limit, grouped by how they get there: a metro line, a bus line, on foot, by
bike or by car. Each employer carries the itinerary of the fastest trip in that mode.

Placing a community
-------------------
The data folder has community codes and names but no community coordinates. A
community is placed at its street office (街道办事处) POI, which is also the home-area
point of simulated seekers. When its street has no office POI, the community is
placed at the district government seat. `CommunityPlace.placed_by` names the point
used, so a page can state that minutes are measured from the street office or the
district seat and not from the community itself.

NOTE: 98 of the 172 streets in the data folder have no office POI, so the
communities of those streets share their district seat and the same reach.
"""

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo.crs import validate_point
from geo.location import Precision
from geo.regions import Regions
from geo.transit.itinerary import LegKind, Route
from geo.transit.modes import parse_travel_modes

logger = logging.getLogger(__name__)

MIN_MINUTES = 5
MAX_MINUTES = 120
MAX_EMPLOYERS_LIMIT = 500


class RoutePlanner(Protocol):
    """The part of `geo.transit.TransitNetwork` the through-train uses."""

    def mode_matrices(
        self,
        origins_lon: npt.ArrayLike,
        origins_lat: npt.ArrayLike,
        dest_lon: npt.ArrayLike,
        dest_lat: npt.ArrayLike,
        modes: str | Iterable[str],
    ) -> dict[str, npt.NDArray[np.float32]]: ...

    def route(
        self,
        origin: tuple[float, float],
        destination: tuple[float, float],
        modes: str | Iterable[str],
    ) -> Route: ...


@dataclass(frozen=True)
class CommunityPlace:
    """The point minutes are measured from, with the community it stands for.

    ``placed_by`` is ``street_office``, ``district_seat`` or ``point`` (a point given
    by the caller, with no community).
    """

    lon: float
    lat: float
    placed_by: str
    code: str | None = None
    name: str | None = None
    street_name: str | None = None
    district_name: str | None = None


@dataclass(frozen=True)
class Employer:
    """An employer site (anchor) with its active postings and the trip to it."""

    anchor_id: str
    name: str
    lon: float
    lat: float
    n_postings: int
    titles: tuple[str, ...]
    minutes: float
    trip: Route


@dataclass(frozen=True)
class RouteGroup:
    """Employers reached the same way, e.g. all whose first ride is metro line 2.

    ``key`` is ``metro:<line>``, ``bus:<line>``, ``walk``, ``bike`` or ``drive``.
    """

    key: str
    label_zh: str
    label_en: str
    employers: tuple[Employer, ...]


@dataclass(frozen=True)
class ModeReach:
    """The employers one mode reaches within the limit, grouped by route.

    ``n_employers`` counts every reachable site; ``groups`` hold at most the
    ``limit`` fastest of them, so ``truncated`` is True when some were left out.
    """

    mode: str
    n_employers: int
    n_postings: int
    truncated: bool
    groups: tuple[RouteGroup, ...]


@dataclass(frozen=True)
class ThroughTrain:
    """The through-train of one place: the limit and the reach of each requested mode."""

    place: CommunityPlace
    max_minutes: float
    modes: tuple[ModeReach, ...]


def place_community(regions: Regions, code: str) -> CommunityPlace:
    """Place a community at its street office POI, or at its district seat when there is none.

    Raises
    ------
    ValueError
        When ``code`` is not 12 digits.
    LookupError
        When no community has that code, or neither point is known.
    """
    if len(code) != 12 or not code.isdigit():
        raise ValueError("community is invalid; expected a 12-digit statistical code")
    community = regions.community_by_code(code)
    if community is None:
        raise LookupError(f"community {code} not found")

    street = regions.street_by_code(community.street_code)
    district = regions.district(community.district_code)
    district_name = district.name if district else None
    street_name = street.name if street else None
    if street is not None and math.isfinite(street.lon) and math.isfinite(street.lat):
        lon, lat, placed_by = street.lon, street.lat, "street_office"
    elif district is not None:
        lon, lat, placed_by = district.lon, district.lat, "district_seat"
    else:
        raise LookupError(f"community {code} has no street office or district seat to place it")
    return CommunityPlace(
        lon=float(lon),
        lat=float(lat),
        placed_by=placed_by,
        code=code,
        name=community.name,
        street_name=street_name,
        district_name=district_name,
    )


def employer_sites(postings: pd.DataFrame) -> pd.DataFrame:
    """Group active postings by anchor into employer sites with a point location.

    Anchors placed only at city level are left out, because their point is the city
    centre and means "somewhere in Xi'an".

    Returns
    -------
    pandas.DataFrame
        Columns ``anchor_id``, ``name`` (the most frequent company name), ``lon``,
        ``lat``, ``n_postings`` and ``titles`` (up to three distinct titles),
        sorted by ``anchor_id``.
    """
    located = postings.loc[postings["precision"].astype(str) != Precision.CITY.value]
    located = located.dropna(subset=["lon", "lat"])
    if located.empty:
        return pd.DataFrame(columns=["anchor_id", "name", "lon", "lat", "n_postings", "titles"])
    grouped = located.groupby("anchor_id", sort=True)
    sites = grouped.agg(
        lon=("lon", "first"),
        lat=("lat", "first"),
        n_postings=("title", "size"),
        name=("company", lambda names: names.mode().iloc[0]),
        titles=("title", lambda titles: tuple(dict.fromkeys(titles.astype(str)))[:3]),
    )
    return sites.reset_index()


def through_train(
    network: RoutePlanner,
    sites: pd.DataFrame,
    place: CommunityPlace,
    max_minutes: float,
    modes: str | Iterable[str],
    limit: int = 100,
) -> ThroughTrain:
    """Find the employer sites reachable from ``place`` within ``max_minutes`` by each mode.

    Each mode is computed on its own with walking allowed as well, as
    `TransitNetwork.route` does: the walk group of the transit mode lists sites where
    walking beats the network. Within a mode the fastest ``limit`` sites get an
    itinerary; they are grouped by the first ride (metro or bus line) of the trip.

    Parameters
    ----------
    sites
        The frame of `employer_sites`.
    max_minutes
        Door-to-door limit, from `MIN_MINUTES` to `MAX_MINUTES`.
    modes
        ``"walk;transit"`` or names from `geo.transit.TRAVEL_MODES`.
    limit
        Sites with an itinerary per mode, 1 to `MAX_EMPLOYERS_LIMIT`.

    Raises
    ------
    ValueError
        When ``max_minutes`` or ``limit`` is out of range.
    InvalidTravelModeError
        With field ``modes``.
    """
    if not MIN_MINUTES <= max_minutes <= MAX_MINUTES:
        raise ValueError(
            f"minutes {max_minutes!r} is out of range; expected {MIN_MINUTES} to {MAX_MINUTES}"
        )
    if not 1 <= limit <= MAX_EMPLOYERS_LIMIT:
        raise ValueError(f"limit {limit!r} is out of range; expected 1 to {MAX_EMPLOYERS_LIMIT}")
    validate_point(place.lon, place.lat, field="point")
    chosen = parse_travel_modes(modes)
    if sites.empty:
        empty = tuple(ModeReach(mode, 0, 0, False, ()) for mode in chosen)
        return ThroughTrain(place, max_minutes, empty)

    by_mode = network.mode_matrices(
        [place.lon], [place.lat], sites["lon"], sites["lat"], ("walk", *chosen)
    )
    walk = by_mode["walk"][0]
    reaches = []
    for mode in chosen:
        minutes = np.minimum(walk, by_mode[mode][0])
        reaches.append(_mode_reach(network, sites, place, mode, minutes, max_minutes, limit))
    return ThroughTrain(place, max_minutes, tuple(reaches))


def _mode_reach(
    network: RoutePlanner,
    sites: pd.DataFrame,
    place: CommunityPlace,
    mode: str,
    minutes: npt.NDArray[np.float32],
    max_minutes: float,
    limit: int,
) -> ModeReach:
    reachable = np.flatnonzero(minutes <= max_minutes)
    # Stable sort by minutes, then by anchor_id because sites are sorted by it.
    order = reachable[np.argsort(minutes[reachable], kind="stable")]
    listed = order[:limit]

    groups: dict[str, list[Employer]] = {}
    labels: dict[str, tuple[str, str]] = {}
    for position in listed:
        row = sites.iloc[int(position)]
        trip = network.route((place.lon, place.lat), (float(row["lon"]), float(row["lat"])), mode)
        key, label_zh, label_en = route_key(trip)
        labels[key] = (label_zh, label_en)
        groups.setdefault(key, []).append(
            Employer(
                anchor_id=str(row["anchor_id"]),
                name=str(row["name"]),
                lon=float(row["lon"]),
                lat=float(row["lat"]),
                n_postings=int(row["n_postings"]),
                titles=tuple(row["titles"]),
                minutes=float(trip.minutes),
                trip=trip,
            )
        )

    # Largest group first, then the group whose nearest employer is nearest.
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[1][0].minutes))
    return ModeReach(
        mode=mode,
        n_employers=int(reachable.size),
        n_postings=int(sites["n_postings"].to_numpy()[reachable].sum()),
        truncated=bool(reachable.size > listed.size),
        groups=tuple(
            RouteGroup(key, *labels[key], employers=tuple(employers)) for key, employers in ordered
        ),
    )


def route_key(trip: Route) -> tuple[str, str, str]:
    """Return the group key and its zh-CN and English labels: the trip's first ride, or its mode."""
    for leg in trip.legs:
        if leg.kind is LegKind.METRO:
            return (
                f"metro:{leg.line}",
                str(leg.line_name_zh or f"地铁{leg.line}号线"),
                f"Metro {leg.line_name_en or leg.line}",
            )
        if leg.kind is LegKind.BUS:
            return f"bus:{leg.line}", f"公交线路#{leg.line}", f"Bus line #{leg.line}"
    labels = {"walk": ("步行", "On foot"), "bike": ("骑行", "By bike"), "drive": ("驾车", "By car")}
    label_zh, label_en = labels.get(trip.mode, (trip.mode, trip.mode))
    return trip.mode, label_zh, label_en
