"""Stop-to-stop minutes and the transit reach bound, computed once or read from a disk cache.

The all-pairs search is most of the network's build time. When a cache folder is
given, its result is stored there as ``transit-stop-times-<key>.npz``. The key is a
SHA-256 of the parameters, the graph's edges and the node positions, so a file is
only read back for exactly the same network, and a changed network writes a new
file and removes the old ones.
"""

import hashlib
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from geo.crs import EARTH_RADIUS_M
from geo.transit.bus import BusStops
from geo.transit.graph import TransitGraph, stop_to_stop_minutes
from geo.transit.metro import MetroData
from geo.transit.parameters import TransitParameters

logger = logging.getLogger(__name__)

CACHE_PREFIX = "transit-stop-times-"

# Upper bound on the float64 elements of one block of the reach computation.
_BLOCK_ELEMENTS = 1 << 23

# Relative margin added to the reach bound for rounding between formulas.
_REACH_MARGIN = 1e-6


@dataclass(frozen=True)
class StopTimes:
    """Network minutes between stops, and the bound of transit's straight-line reach.

    ``minutes`` has shape (access nodes, egress nodes) and is ``inf`` beyond
    ``max_transit_min``. No transit trip of ``t`` minutes ends farther than
    ``reach_speed_m_per_min * t + reach_slack_m`` metres (haversine) from its start.
    """

    minutes: npt.NDArray[np.float32]
    reach_speed_m_per_min: float
    reach_slack_m: float


def stop_times(
    graph: TransitGraph,
    metro: MetroData,
    bus: BusStops,
    params: TransitParameters,
    cache_dir: Path | None = None,
) -> StopTimes:
    """Compute the stop-to-stop minutes and the reach bound, or read them from ``cache_dir``.

    Parameters
    ----------
    graph, metro, bus, params
        The network.
    cache_dir
        Folder of the cache file; None computes without reading or writing one.

    Returns
    -------
    StopTimes
    """
    if cache_dir is None:
        return _compute(graph, metro, bus, params)

    path = cache_dir / f"{CACHE_PREFIX}{_cache_key(graph, metro, bus, params)}.npz"
    cached = _read(path)
    if cached is not None:
        logger.info("read stop-to-stop minutes from %s", path)
        return cached

    times = _compute(graph, metro, bus, params)
    _write(path, times)
    return times


def _compute(
    graph: TransitGraph, metro: MetroData, bus: BusStops, params: TransitParameters
) -> StopTimes:
    minutes = stop_to_stop_minutes(graph, params.max_transit_min)
    speed, slack = _reach_bound(minutes, metro, bus, params)
    return StopTimes(minutes, speed, slack)


def _reach_bound(
    minutes: npt.NDArray[np.float32], metro: MetroData, bus: BusStops, params: TransitParameters
) -> tuple[float, float]:
    """Return (metres per minute, metres) bounding transit's straight-line reach.

    A transit trip walks from the origin to a station or a pseudo-stop of access
    node ``a``, rides to egress node ``e`` and walks on. Its straight-line length
    is at most the two walks, plus the distance between the positions of ``a``
    and ``e`` (station, or mean position of a cell's stops), plus the distance
    from each cell's mean position to its farthest pseudo-stop. The speed is the
    largest ratio of position distance to ``minutes`` over all pairs, and at least
    the walking speed. The constant is twice the largest cell radius, plus the
    distance of any pair joined in zero minutes.
    """
    lons = np.radians(np.concatenate([metro.lons, bus.cell_lons]))
    lats = np.radians(np.concatenate([metro.lats, bus.cell_lats]))
    unit = np.column_stack([np.cos(lats) * np.cos(lons), np.cos(lats) * np.sin(lons), np.sin(lats)])
    speed = params.walk_m_per_min / params.walk_detour_factor
    slack = 0.0
    rows = max(1, _BLOCK_ELEMENTS // len(unit))
    for start in range(0, len(unit), rows):
        block = slice(start, start + rows)
        # Great-circle distance from the chord between unit vectors, as in haversine_m.
        chord = np.sqrt(np.clip(2.0 - 2.0 * (unit[block] @ unit.T), 0.0, 4.0))
        metres = 2.0 * EARTH_RADIUS_M * np.arcsin(np.minimum(chord / 2.0, 1.0))
        block_minutes = minutes[block]
        moving = np.isfinite(block_minutes) & (block_minutes > 0)
        ratio = np.divide(metres, block_minutes, out=np.zeros_like(metres), where=moving)
        speed = max(speed, float(ratio.max()))
        # Distinct places joined in zero minutes have no speed; count them as slack.
        slack = max(slack, float(metres.max(where=block_minutes == 0, initial=0.0)))
    slack += 2.0 * float(bus.cell_radius_m.max(initial=0.0))
    return speed * (1.0 + _REACH_MARGIN), slack * (1.0 + _REACH_MARGIN)


def _cache_key(
    graph: TransitGraph, metro: MetroData, bus: BusStops, params: TransitParameters
) -> str:
    digest = hashlib.sha256(repr(params).encode("utf-8"))
    for array in (
        graph.weights.indptr,
        graph.weights.indices,
        graph.weights.data,
        graph.access_nodes,
        graph.egress_nodes,
        metro.lons,
        metro.lats,
        bus.cell_lons,
        bus.cell_lats,
        bus.cell_radius_m,
    ):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:24]


def _read(path: Path) -> StopTimes | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as stored:
            return StopTimes(
                minutes=stored["minutes"].astype(np.float32, copy=False),
                reach_speed_m_per_min=float(stored["reach_speed_m_per_min"]),
                reach_slack_m=float(stored["reach_slack_m"]),
            )
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        logger.warning("ignored unreadable transit cache %s: %s", path, err)
        return None


def _write(path: Path, times: StopTimes) -> None:
    """Write the cache file atomically and remove cache files of other networks."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".transit-", suffix=".npz")
    except OSError as err:
        logger.warning("could not write transit cache %s: %s", path, err)
        return
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(
                stream,
                minutes=times.minutes,
                reach_speed_m_per_min=times.reach_speed_m_per_min,
                reach_slack_m=times.reach_slack_m,
            )
        os.replace(temporary, path)
    except OSError as err:
        Path(temporary).unlink(missing_ok=True)
        logger.warning("could not write transit cache %s: %s", path, err)
        return

    for stale in path.parent.glob(f"{CACHE_PREFIX}*.npz"):
        if stale != path:
            stale.unlink(missing_ok=True)
            logger.info("removed stale transit cache %s", stale)
    logger.info("wrote stop-to-stop minutes to %s", path)
