"""The map's anchor layer as GeoJSON text: single anchors, or grid clusters when too many.

Both stores return the same body from `ReadStore.anchor_map`. When at most
``max_features`` anchors lie in the viewport, each is one Point feature. Above that,
the viewport is cut into a grid of about square cells (`ClusterGrid`) with at most
``max_features`` cells, and each occupied cell becomes one cluster feature, placed at
the mean position of its anchors. So no response carries more than ``max_features``
features, whatever the zoom.

The body is a FeatureCollection with two members besides ``features``:
``clustered`` (true when the features are clusters) and ``total`` (anchors in view).

Anchor feature properties: ``anchor_id``, ``name``, ``precision``, ``state``,
``n_postings``, ``location_label``, ``district_code``, the staff-curated booleans
``key_enterprise`` (重点企业) and ``above_scale_industrial`` (规上工业企业), then the
labels the request's language adds: ``approximate``, ``precision_label`` and
``district_name``.

Cluster feature properties: ``cluster`` (true), ``count`` (anchors), ``n_postings``
(their sum), ``n_key_enterprise`` and ``n_above_scale_industrial`` (its anchors with
each flag; an anchor with both flags counts in both) and ``bbox`` (the extent of its
anchors, WGS84, for zooming in).

A `FlagFilter` keeps only anchors with the given flag values. It applies before
anchors are counted, so ``total`` and the choice between anchors and clusters refer
to the anchors that pass it.

The embedded store builds the text here in Python. PostgreSQL builds the same text in
SQL (`store.postgres_map`) from a per-anchor fragment that a trigger keeps up to date.
The contract suite checks that both stores return equal bodies, up to the order of
anchors with equal ``n_postings``: PostgreSQL leaves ties in scan order.
"""

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

BBox = tuple[float, float, float, float]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MAX_MAP_FEATURES = 2_000
"""The maximum number of features in one map response."""

# Metres per degree at Xi'an's latitude are only needed to make cells about square on
# the ground; a spherical approximation is enough for that.
_METRES_PER_DEGREE = 111_320.0

_dumps = partial(json.dumps, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


@dataclass(frozen=True)
class MapLabels:
    """The language-dependent labels that anchor features carry."""

    precision_labels: Mapping[str, str]
    """Label of each precision value (``poi`` → ``地点级`` in Chinese)."""
    approximate: Mapping[str, bool]
    """Whether each precision value stands for an area rather than a point."""
    district_names: Mapping[str, str]
    """Name of each 6-digit district code."""

    def as_sql_params(self) -> dict[str, str]:
        """Return the labels as two JSON objects of ready-made property text, for the SQL query.

        ``precision_suffixes`` maps a precision value to its ``"approximate"`` and
        ``"precision_label"`` members, and ``district_suffixes`` maps a district code to
        its ``"district_name"`` member and the braces that close the feature. The query
        appends both to the stored fragment with one lookup each.
        """
        precision = {
            value: f',"approximate":{_dumps(self.approximate.get(value))}'
            f',"precision_label":{_dumps(label)}'
            for value, label in self.precision_labels.items()
        }
        district = {
            code: f',"district_name":{_dumps(name)}}}}}'
            for code, name in self.district_names.items()
        }
        return {"precision_suffixes": _dumps(precision), "district_suffixes": _dumps(district)}


@dataclass(frozen=True)
class FlagFilter:
    """The enterprise flag values an anchor needs to be on the map; None ignores a flag."""

    key_enterprise: bool | None = None
    """重点企业: True keeps flagged anchors only, False keeps the others."""
    above_scale_industrial: bool | None = None
    """规上工业企业, as ``key_enterprise``."""

    def as_params(self) -> dict[str, bool | None]:
        """Return the filter as named SQL parameters."""
        return {
            "key_enterprise": self.key_enterprise,
            "above_scale_industrial": self.above_scale_industrial,
        }


NO_FLAG_FILTER = FlagFilter()
"""The filter that keeps every anchor."""


@dataclass(frozen=True)
class ClusterGrid:
    """A grid over a WGS84 bbox whose cells are about square on the ground.

    Cell ``(col, row)`` contains the points with
    ``col = min(floor((lon - min_lon) / cell_lon), cols - 1)``, and rows likewise.
    Both stores compute this formula, so they put every point in the same cell.
    """

    min_lon: float
    min_lat: float
    cell_lon: float
    cell_lat: float
    cols: int
    rows: int

    @classmethod
    def for_bbox(cls, bbox: BBox, max_cells: int) -> "ClusterGrid":
        """Return a grid over ``bbox`` with at most ``max_cells`` cells of about equal sides.

        Raises
        ------
        ValueError
            ``max_cells`` is below 1, or the bbox is empty or inverted.
        """
        min_lon, min_lat, max_lon, max_lat = bbox
        if max_cells < 1:
            raise ValueError(f"max_cells {max_cells!r} is invalid; expected at least 1")
        if not (max_lon > min_lon and max_lat > min_lat):
            raise ValueError(f"bbox {bbox!r} is invalid; expected min < max on both axes")
        mid_lat = math.radians((min_lat + max_lat) / 2)
        width_m = (max_lon - min_lon) * _METRES_PER_DEGREE * max(math.cos(mid_lat), 1e-6)
        height_m = (max_lat - min_lat) * _METRES_PER_DEGREE
        cell_m = math.sqrt(width_m * height_m / max_cells)
        # Rounding may overshoot by a row or column; capping rows (and, for a box far
        # wider than tall, columns) keeps cols * rows <= max_cells.
        cols = min(max(1, round(width_m / cell_m)), max_cells)
        rows = min(max(1, round(height_m / cell_m)), max_cells // cols)
        return cls(
            min_lon=min_lon,
            min_lat=min_lat,
            cell_lon=(max_lon - min_lon) / cols,
            cell_lat=(max_lat - min_lat) / rows,
            cols=cols,
            rows=rows,
        )

    def cells(self, lons: FloatArray, lats: FloatArray) -> tuple[npt.NDArray[np.int64], ...]:
        """Return the column and row index of each point."""
        cols = np.floor((lons - self.min_lon) / self.cell_lon).astype(np.int64)
        rows = np.floor((lats - self.min_lat) / self.cell_lat).astype(np.int64)
        return np.clip(cols, 0, self.cols - 1), np.clip(rows, 0, self.rows - 1)

    def as_params(self) -> dict[str, Any]:
        """Return the grid as named SQL parameters."""
        return {
            "grid_min_lon": self.min_lon,
            "grid_min_lat": self.min_lat,
            "cell_lon": self.cell_lon,
            "cell_lat": self.cell_lat,
            "cols": self.cols,
            "rows": self.rows,
        }


def anchors_collection(anchors: pd.DataFrame, labels: MapLabels) -> str:
    """Return anchors as the map's GeoJSON text.

    ``anchors`` has the columns of `ReadStore.anchors_in_bbox` plus the boolean (or 0/1)
    columns ``key_enterprise`` and ``above_scale_industrial``.
    """
    # Plain Python lists, not a DataFrame, because pandas 3.1 stores a column of strings
    # and None with NaN in place of None, which JSON cannot encode.
    columns: dict[str, list[Any]] = {
        name: anchors[name].tolist()
        for name in ("anchor_id", "name", "precision", "state", "location_label")
    }
    columns["n_postings"] = anchors["n_postings"].astype(int).tolist()
    columns["district_code"] = [None if pd.isna(c) else str(c) for c in anchors["district_code"]]
    for flag in ("key_enterprise", "above_scale_industrial"):
        columns[flag] = anchors[flag].astype(bool).tolist()
    order = [
        "anchor_id", "name", "precision", "state", "n_postings", "location_label",
        "district_code", "key_enterprise", "above_scale_industrial",
    ]  # fmt: skip
    rows = zip(*(columns[name] for name in order), strict=True)
    records = [dict(zip(order, values, strict=True)) for values in rows]
    features = []
    for lon, lat, properties in zip(
        anchors["lon"].astype(float).tolist(),
        anchors["lat"].astype(float).tolist(),
        records,
        strict=True,
    ):
        precision, district = properties["precision"], properties["district_code"]
        properties["approximate"] = labels.approximate.get(precision)
        properties["precision_label"] = labels.precision_labels.get(precision)
        properties["district_name"] = labels.district_names.get(district) if district else None
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": properties,
            }
        )
    body = {"type": "FeatureCollection", "clustered": False, "total": len(features)}
    return _dumps({**body, "features": features})


def clusters_collection(
    lons: FloatArray,
    lats: FloatArray,
    n_postings: npt.NDArray[np.int64],
    grid: ClusterGrid,
    *,
    key_enterprise: BoolArray | None = None,
    above_scale_industrial: BoolArray | None = None,
) -> str:
    """Return points grouped into the grid's cells as the map's GeoJSON text.

    ``key_enterprise`` and ``above_scale_industrial`` are the flags of each point;
    None counts no point as flagged. Clusters come largest first, then by row and column.
    """
    cols, rows = grid.cells(lons, lats)
    no_flags = np.zeros(len(lons), dtype=np.bool_)
    frame = pd.DataFrame(
        {
            "col": cols,
            "row": rows,
            "lon": lons,
            "lat": lats,
            "n_postings": n_postings,
            "key": no_flags if key_enterprise is None else key_enterprise,
            "above_scale": no_flags if above_scale_industrial is None else above_scale_industrial,
        }
    )
    cells = (
        frame.groupby(["row", "col"], sort=True)
        .agg(
            count=("lon", "size"),
            n_postings=("n_postings", "sum"),
            n_key=("key", "sum"),
            n_above_scale=("above_scale", "sum"),
            lon=("lon", "mean"),
            lat=("lat", "mean"),
            min_lon=("lon", "min"),
            min_lat=("lat", "min"),
            max_lon=("lon", "max"),
            max_lat=("lat", "max"),
        )
        .reset_index()
        .sort_values(["count", "row", "col"], ascending=[False, True, True], kind="stable")
    )
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {
                "cluster": True,
                "count": int(count),
                "n_postings": int(postings),
                "n_key_enterprise": int(n_key),
                "n_above_scale_industrial": int(n_above_scale),
                "bbox": [x0, y0, x1, y1],
            },
        }
        for lon, lat, count, postings, n_key, n_above_scale, x0, y0, x1, y1 in zip(
            *(
                cells[column].tolist()
                for column in (
                    "lon",
                    "lat",
                    "count",
                    "n_postings",
                    "n_key",
                    "n_above_scale",
                    "min_lon",
                    "min_lat",
                    "max_lon",
                    "max_lat",
                )
            ),
            strict=True,
        )
    ]
    body = {"type": "FeatureCollection", "clustered": True, "total": len(lons)}
    return _dumps({**body, "features": features})
