"""Bus lines from the city-vein polylines, with pseudo-stops derived along each line.

The file ``xian_transit_lines_cityvein/xian_bus_lines_gcj02.geojson`` contains 529
LineStrings in GCJ-02, one per route direction or variant, collected around 2020.
They have no names and **no stop points**. The stops used here are therefore
derived, not observed:

1. Exact duplicate geometries are dropped, and each line is simplified with a
   tolerance of 1e-4 degrees (about 10 m, the precision of the source coordinates)
   before its vertices are converted to WGS84.
2. Along each line, measured in EPSG:4545, pseudo-stops are placed at equal
   intervals of at most ``bus_stop_spacing_m``, both ends included.
3. The pseudo-stops fall into square cells of ``bus_cell_m`` metres. The stops of
   all lines in one cell form one boarding and transfer node, placed at their mean
   position. Consecutive stops of one line in the same cell form one route stop.

Every line is taken to run in both directions along its geometry.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely

from geo.crs import CoordSys, convert_arrays, from_metric, haversine_m, to_metric
from geo.errors import DataSourceError

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

BUS_LINES_FILE = Path("xian_transit_lines_cityvein") / "xian_bus_lines_gcj02.geojson"

# The source coordinates have 4 decimals (about 10 m), so simplifying with this
# tolerance drops vertices without moving a line by more than that precision.
_SIMPLIFY_TOLERANCE_DEG = 1e-4


@dataclass(frozen=True)
class BusStops:
    """Derived bus stops: pseudo-stops, their cells and the route stops of each line.

    Positions are WGS84 degrees. ``stop_*`` arrays have one entry per pseudo-stop,
    ``cell_*`` one per cell, and ``route_stop_*`` one per route stop (a line's
    consecutive pseudo-stops in one cell). Stops and route stops are ordered by line
    and along each line. ``*_line`` values index ``line_ids``, the upstream ``idx``
    values of the kept lines. ``cell_radius_m`` is the haversine distance from a
    cell's position to its farthest pseudo-stop.
    """

    line_ids: IntArray
    stop_lons: FloatArray
    stop_lats: FloatArray
    stop_line: IntArray
    stop_cell: IntArray
    cell_lons: FloatArray
    cell_lats: FloatArray
    cell_radius_m: FloatArray
    route_stop_line: IntArray
    route_stop_cell: IntArray
    route_stop_offset_m: FloatArray

    @property
    def n_cells(self) -> int:
        """Number of cells, which is the number of bus boarding nodes."""
        return len(self.cell_lons)


def load_bus_stops(data_dir: Path, spacing_m: float, cell_m: float) -> BusStops:
    """Read the bus lines and derive pseudo-stops, cells and route stops.

    Parameters
    ----------
    data_dir
        The data folder that contains ``xian_transit_lines_cityvein``.
    spacing_m
        Largest distance in metres between consecutive pseudo-stops of a line.
    cell_m
        Side in metres (EPSG:4545) of the square cells that group pseudo-stops.

    Returns
    -------
    BusStops

    Raises
    ------
    DataSourceError
        When the file is missing or has no LineString with an ``idx`` property.
    """
    line_ids, lines = _read_lines(data_dir / BUS_LINES_FILE)
    lengths = shapely.length(lines)
    keep = lengths > 0
    line_ids, lines, lengths = line_ids[keep], lines[keep], lengths[keep]

    stop_line, offsets = _stop_offsets(lengths, spacing_m)
    points = shapely.line_interpolate_point(lines[stop_line], offsets)
    stop_xy = shapely.get_coordinates(points)
    stop_cell, cell_xy = _cells(stop_xy, cell_m)
    route_line, route_cell, route_offset = _route_stops(stop_line, stop_cell, offsets)

    stop_lons, stop_lats = from_metric(stop_xy[:, 0], stop_xy[:, 1])
    cell_lons, cell_lats = from_metric(cell_xy[:, 0], cell_xy[:, 1])
    radius = np.zeros(len(cell_lons), dtype=np.float64)
    spread = haversine_m(cell_lons[stop_cell], cell_lats[stop_cell], stop_lons, stop_lats)
    np.maximum.at(radius, stop_cell, spread)
    logger.info(
        "derived %d bus pseudo-stops, %d route stops and %d cells on %d lines",
        len(stop_lons),
        len(route_line),
        len(cell_lons),
        len(lines),
    )
    return BusStops(
        line_ids=line_ids,
        stop_lons=stop_lons,
        stop_lats=stop_lats,
        stop_line=stop_line,
        stop_cell=stop_cell,
        cell_lons=cell_lons,
        cell_lats=cell_lats,
        cell_radius_m=radius,
        route_stop_line=route_line,
        route_stop_cell=route_cell,
        route_stop_offset_m=route_offset,
    )


def _read_lines(path: Path) -> tuple[IntArray, npt.NDArray[np.object_]]:
    """Return the upstream ids and the lines in EPSG:4545, duplicates dropped."""
    if not path.is_file():
        raise DataSourceError(f"bus line file {path} not found; expected the city-vein export")
    frame = gpd.read_file(path)
    if "idx" not in frame.columns:
        raise DataSourceError(f"bus line file {path} lacks the 'idx' property")
    frame = frame[(frame.geom_type == "LineString") & ~frame.geometry.is_empty]
    frame = frame[~frame.geometry.to_wkb().duplicated()]
    if frame.empty:
        raise DataSourceError(f"bus line file {path} has no LineString features")

    simplified = shapely.simplify(frame.geometry.to_numpy(), _SIMPLIFY_TOLERANCE_DEG)
    wgs84 = shapely.transform(simplified, _gcj02_to_wgs84)
    metric = shapely.transform(wgs84, _wgs84_to_metric)
    return frame["idx"].to_numpy(dtype=np.intp), np.asarray(metric, dtype=object)


def _gcj02_to_wgs84(coords: FloatArray) -> FloatArray:
    lons, lats = convert_arrays(coords[:, 0], coords[:, 1], CoordSys.GCJ02, CoordSys.WGS84)
    return np.column_stack([lons, lats])


def _wgs84_to_metric(coords: FloatArray) -> FloatArray:
    x, y = to_metric(coords[:, 0], coords[:, 1])
    return np.column_stack([x, y])


def _stop_offsets(lengths: FloatArray, spacing_m: float) -> tuple[IntArray, FloatArray]:
    """Place stops at equal intervals of at most ``spacing_m`` along each line, ends included."""
    intervals = np.maximum(np.ceil(lengths / spacing_m), 1).astype(np.intp)
    stop_line = np.repeat(np.arange(len(lengths), dtype=np.intp), intervals + 1)
    first = np.repeat(np.cumsum(intervals + 1) - (intervals + 1), intervals + 1)
    position = np.arange(len(stop_line)) - first
    offsets = position * (lengths / intervals)[stop_line]
    return stop_line, offsets


def _cells(stop_xy: FloatArray, cell_m: float) -> tuple[IntArray, FloatArray]:
    """Group stops by square cell; return each stop's cell and each cell's mean position."""
    keys = np.floor(stop_xy / cell_m).astype(np.int64)
    _, stop_cell = np.unique(keys, axis=0, return_inverse=True)
    stop_cell = stop_cell.ravel().astype(np.intp)
    counts = np.bincount(stop_cell).astype(np.float64)
    cell_xy = np.column_stack(
        [np.bincount(stop_cell, weights=stop_xy[:, axis]) / counts for axis in (0, 1)]
    )
    return stop_cell, cell_xy


def _route_stops(
    stop_line: IntArray, stop_cell: IntArray, offsets: FloatArray
) -> tuple[IntArray, IntArray, FloatArray]:
    """Merge each line's consecutive stops in one cell; return line, cell and mean offset."""
    starts = np.ones(len(stop_line), dtype=bool)
    starts[1:] = (stop_line[1:] != stop_line[:-1]) | (stop_cell[1:] != stop_cell[:-1])
    run = np.cumsum(starts) - 1
    run_offset = np.bincount(run, weights=offsets) / np.bincount(run)
    return stop_line[starts], stop_cell[starts], run_offset
