"""`WalkGrid`: a regular metric grid over the city for many-source walking times.

The data has no road network, so walking is modelled on a square grid in
EPSG:4545. Each cell centre links to its 16 neighbours: the 8 adjacent cells and
the 8 knight's-move cells. A link costs its straight length times the walking detour
factor over the walking speed, the same model as the transit network's direct walk.
On this grid a shortest path is at most 1/cos(13.3 deg) = 2.8 % longer than the
straight line between two cell centres, because every heading lies within 13.3
degrees of one of the 16 link directions.

Points attach to the grid with straight-line walks. A source links to its
``SOURCE_SNAP_CELLS`` nearest cell centres (about 1.1 km around it with 250 m cells),
so short walks near a station follow the straight-line model. A point whose minutes
are read attaches to its ``SNAP_CELLS`` nearest centres. Multi-source shortest paths
run once from a virtual node linked to every source's snap cells, with scipy's Dijkstra.
"""

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from scipy.sparse import coo_matrix, csr_matrix, vstack
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree
from shapely.geometry.base import BaseGeometry

from geo.crs import from_metric, to_metric

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# Cell offsets (columns, rows) of the links, one of each opposite pair: the graph is
# undirected.
_LINK_OFFSETS = ((1, 0), (0, 1), (1, 1), (1, -1), (2, 1), (1, 2), (2, -1), (1, -2))

SNAP_CELLS = 4
"""Number of nearest cell centres a point attaches to when its minutes are read."""

SOURCE_SNAP_CELLS = 64
"""Number of nearest cell centres a source links to with a straight-line walk."""


@dataclass(frozen=True)
class WalkGridParameters:
    """Cell size and walking model of a `WalkGrid`.

    The walking speed and detour factor default to those of
    `geo.transit.TransitParameters` (4.7 km/h, 1.3).
    """

    cell_m: float = 250.0
    walk_speed_kmh: float = 4.7
    walk_detour_factor: float = 1.3

    def __post_init__(self) -> None:
        for name in ("cell_m", "walk_speed_kmh", "walk_detour_factor"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} {value!r} is invalid; expected a positive number")

    @property
    def minutes_per_m(self) -> float:
        """Walking minutes per metre of straight line."""
        return self.walk_detour_factor / (self.walk_speed_kmh * 1000.0 / 60.0)


class WalkGrid:
    """Walking graph over the cells of a regular EPSG:4545 grid inside an area.

    Build it with :meth:`over_area`. Times are minutes.

    Attributes
    ----------
    params : WalkGridParameters
    x, y : numpy.ndarray
        Cell centres, EPSG:4545 metres.
    lons, lats : numpy.ndarray
        Cell centres, WGS84 degrees.
    graph : scipy.sparse.csr_matrix
        Upper-triangular link minutes between cells, to be read as undirected.
    """

    def __init__(self, x: FloatArray, y: FloatArray, params: WalkGridParameters) -> None:
        if len(x) == 0:
            raise ValueError("the walking grid has no cells; is the area empty?")
        self.params = params
        self.x, self.y = x, y
        self.lons, self.lats = from_metric(x, y)
        self._tree = cKDTree(np.column_stack([x, y]))
        self.graph = self._link_cells()
        # The grid graph with an empty column for the virtual source node of with_sources.
        self._graph_with_virtual_column = csr_matrix(
            (self.graph.data, self.graph.indices, self.graph.indptr), shape=(len(x), len(x) + 1)
        )

    @classmethod
    def over_area(cls, area: BaseGeometry, params: WalkGridParameters | None = None) -> "WalkGrid":
        """Make a grid of the cells whose centres lie inside ``area``.

        Parameters
        ----------
        area
            Polygon or MultiPolygon in WGS84 degrees, e.g. the city outline.
        params
            Cell size and walking model; the defaults when None.
        """
        params = params or WalkGridParameters()
        metric = _to_metric_geometry(area)
        min_x, min_y, max_x, max_y = metric.bounds
        xs = np.arange(min_x + params.cell_m / 2, max_x, params.cell_m)
        ys = np.arange(min_y + params.cell_m / 2, max_y, params.cell_m)
        grid_x, grid_y = (values.ravel() for values in np.meshgrid(xs, ys))
        inside = shapely.contains_xy(metric, grid_x, grid_y)
        grid = cls(grid_x[inside], grid_y[inside], params)
        logger.info(
            "walking grid: %d cells of %.0f m, %d links", len(grid), params.cell_m, grid.graph.nnz
        )
        return grid

    def __len__(self) -> int:
        return len(self.x)

    def _link_cells(self) -> csr_matrix:
        """Link each cell to its neighbours present in the grid, weighted by walking minutes."""
        cell = self.params.cell_m
        columns = np.rint((self.x - self.x.min()) / cell).astype(np.int64)
        rows = np.rint((self.y - self.y.min()) / cell).astype(np.int64)
        width = int(columns.max()) + 3
        keys = rows * width + columns
        order = np.argsort(keys)
        sorted_keys = keys[order]

        starts, ends, lengths = [], [], []
        for d_column, d_row in _LINK_OFFSETS:
            neighbour_keys = (rows + d_row) * width + (columns + d_column)
            found = np.searchsorted(sorted_keys, neighbour_keys)
            found = np.minimum(found, len(sorted_keys) - 1)
            hit = sorted_keys[found] == neighbour_keys
            starts.append(np.flatnonzero(hit))
            ends.append(order[found[hit]])
            lengths.append(np.full(int(hit.sum()), cell * np.hypot(d_column, d_row)))

        weights = np.concatenate(lengths) * self.params.minutes_per_m
        n = len(self)
        graph = coo_matrix((weights, (np.concatenate(starts), np.concatenate(ends))), shape=(n, n))
        return graph.tocsr()

    def snap(
        self, lons: npt.ArrayLike, lats: npt.ArrayLike, cells: int = SNAP_CELLS
    ) -> tuple[IntArray, FloatArray]:
        """Find each point's nearest cells and the straight-line walking minutes to them.

        Parameters
        ----------
        lons, lats
            Points, WGS84 degrees, 1-D and of equal length.
        cells
            Number of nearest cells per point.

        Returns
        -------
        tuple of numpy.ndarray
            Cell indices and minutes, both of shape (points, ``min(cells, len(self))``).
        """
        x, y = to_metric(np.atleast_1d(lons), np.atleast_1d(lats))
        k = min(cells, len(self))
        distances, indices = self._tree.query(np.column_stack([x, y]), k=k)
        nearest = np.asarray(indices, dtype=np.intp).reshape(len(x), k)
        minutes = np.asarray(distances, dtype=np.float64).reshape(len(x), k)
        return nearest, minutes * self.params.minutes_per_m

    def minutes_from(
        self, lons: npt.ArrayLike, lats: npt.ArrayLike, *, limit_min: float = np.inf
    ) -> FloatArray:
        """Compute walking minutes from the nearest of several sources to every cell.

        Parameters
        ----------
        lons, lats
            Sources (e.g. employment stations), WGS84 degrees, at least one.
        limit_min
            Cells farther than this are ``inf``; a finite limit makes the search cheaper.

        Returns
        -------
        numpy.ndarray
            Minutes per cell, shape (cells,).
        """
        augmented = self.with_sources(lons, lats)
        minutes = dijkstra(augmented, directed=False, indices=len(self), limit=limit_min)
        return np.asarray(minutes[: len(self)], dtype=np.float64)

    def with_sources(self, lons: npt.ArrayLike, lats: npt.ArrayLike) -> csr_matrix:
        """Return the grid graph plus a last node linked to every source's snap cells.

        The shortest paths from that node are the multi-source walking times.
        """
        cells, minutes = self.snap(lons, lats, SOURCE_SNAP_CELLS)
        if cells.size == 0:
            raise ValueError("sources is empty; expected at least one source point")
        n = len(self)
        # Sources sharing a snap cell keep the shorter walk; a COO matrix would sum them.
        best = np.full(n + 1, np.inf)
        np.minimum.at(best, cells.ravel(), minutes.ravel())
        linked = np.flatnonzero(np.isfinite(best))
        virtual_row = csr_matrix(
            (best[linked], (np.zeros(len(linked), dtype=np.intp), linked)), shape=(1, n + 1)
        )
        # Stacking one row onto CSR copies arrays, which is cheaper than converting COO.
        return vstack([self._graph_with_virtual_column, virtual_row], format="csr")

    def read(
        self, cell_minutes: FloatArray, lons: npt.ArrayLike, lats: npt.ArrayLike
    ) -> FloatArray:
        """Read cell minutes at points: the best snap cell's minutes plus the walk to the point.

        Parameters
        ----------
        cell_minutes
            Minutes per cell, as returned by :meth:`minutes_from`.
        lons, lats
            Points, WGS84 degrees.

        Returns
        -------
        numpy.ndarray
            Minutes per point.
        """
        return read_snapped(cell_minutes, *self.snap(lons, lats))


def read_snapped(cell_minutes: FloatArray, cells: IntArray, walk_minutes: FloatArray) -> FloatArray:
    """Read cell minutes at points already snapped with `WalkGrid.snap`."""
    return np.asarray((cell_minutes[cells] + walk_minutes).min(axis=1), dtype=np.float64)


def _to_metric_geometry(area: BaseGeometry) -> BaseGeometry:
    """Project a WGS84 geometry to EPSG:4545."""

    def project(coords: FloatArray) -> FloatArray:
        x, y = to_metric(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    metric = shapely.transform(area, project)
    shapely.prepare(metric)
    return metric
