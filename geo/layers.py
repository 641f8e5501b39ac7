"""HR map layers (人社地图): offices, training, universities, parks, metro and districts.

Every layer is a GeoDataFrame in WGS84 (EPSG:4326) with at least the columns
``name``, ``kind``, ``district_code`` and ``geometry``. The sources are GCJ-02
(Baidu POIs already converted from BD-09 by the data folder, Amap, openmetro)
and are converted to WGS84 at load. ``district_code`` always comes from
:meth:`geo.regions.Regions.districts_at` on the converted point, so every layer
uses the same polygons. It is None outside the 13 districts (for example the
metro stations in Xianyang) and for metro lines, which cross districts.

:func:`layer_geojson` converts a layer back to the basemap's system for display.
"""

import logging
import math
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString

from geo.crs import (
    CoordSys,
    from_wgs84_arrays,
    parse_coord_sys,
    to_wgs84_arrays,
    transform_geometry,
)
from geo.errors import DataSourceError
from geo.layer_catalog import LAYER_INFOS
from geo.layer_catalog import LayerInfo as LayerInfo
from geo.regions import Regions

logger = logging.getLogger(__name__)

BAIDU_DIR = "xian_poi_baidu_richiebao"
METRO_DIR = "xian_metro_openmetro"
UNIVERSITIES_FILE = "xian_universities/xian_universities_baidu_poi.csv"
GAOXIN_POIS_FILE = "xian_gaoxin_realestate_zhubo240/gaoxin_amap_pois_gcj02.csv"

# 西户线 has no colour upstream; it is drawn in neutral grey.
DEFAULT_LINE_COLOR = "#888888"

_INCUBATOR_PATTERN = re.compile(r"孵化|众创|创业|创客")


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except OSError as err:
        raise DataSourceError(f"cannot read layer source {path}: {err}") from err


def _points_layer(
    frame: pd.DataFrame, kind: str, regions: Regions, lon_column: str, lat_column: str
) -> gpd.GeoDataFrame:
    """Convert GCJ-02 rows to a WGS84 point layer with ``kind`` and ``district_code``.

    Rows without coordinates are dropped with a warning.
    """
    lons = pd.to_numeric(frame[lon_column], errors="coerce")
    lats = pd.to_numeric(frame[lat_column], errors="coerce")
    located = lons.notna() & lats.notna()
    if not located.all():
        logger.warning("layer %r: dropped %d rows without coordinates", kind, (~located).sum())

    frame = frame.loc[located].reset_index(drop=True)
    wgs_lons, wgs_lats = to_wgs84_arrays(lons[located], lats[located], CoordSys.GCJ02)
    frame = frame.drop(columns=[lon_column, lat_column]).assign(
        kind=kind, district_code=regions.districts_at(wgs_lons, wgs_lats)
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(wgs_lons, wgs_lats), crs="EPSG:4326")


def _is_true(column: pd.Series) -> pd.Series:
    return column.fillna("").str.strip().str.lower().eq("true")


def _baidu_layer(
    data_dir: Path, file_name: str, kind: str, regions: Regions, flag: str | None = None
) -> gpd.GeoDataFrame:
    frame = _read_csv(data_dir / BAIDU_DIR / file_name)
    if flag is not None:
        frame = frame.loc[_is_true(frame[flag])]
    frame = frame[["name", "tag", "address", "baidu_uid", "lng_gcj02", "lat_gcj02"]]
    return _points_layer(frame, kind, regions, "lng_gcj02", "lat_gcj02")


def _street_offices(data_dir: Path, regions: Regions) -> gpd.GeoDataFrame:
    frame = _read_csv(data_dir / BAIDU_DIR / "street_office_points.csv")
    frame = frame.rename(columns={"poi_name": "name"})
    frame = frame[["name", "street_code", "street_name", "address", "lng_gcj02", "lat_gcj02"]]
    return _points_layer(frame, "street_office", regions, "lng_gcj02", "lat_gcj02")


def _universities(data_dir: Path, regions: Regions) -> gpd.GeoDataFrame:
    frame = _read_csv(data_dir / UNIVERSITIES_FILE)
    frame = frame[["name", "moe_code", "address", "lng_gcj02", "lat_gcj02"]]
    return _points_layer(frame, "university", regions, "lng_gcj02", "lat_gcj02")


def _parks(data_dir: Path, regions: Regions) -> gpd.GeoDataFrame:
    """Collect parks and incubators from three Baidu files and the Amap scan, one row per name."""
    parts = []
    for file_name in (
        "companies.csv",
        "government_agencies.csv",
        "realestate_residential_offices.csv",
    ):
        frame = _read_csv(data_dir / BAIDU_DIR / file_name)
        frame = frame.loc[_is_true(frame["park_or_incubator"]), ["name", "lng_gcj02", "lat_gcj02"]]
        parts.append(frame.assign(source=f"baidu_poi:{file_name}"))

    amap = _read_csv(data_dir / GAOXIN_POIS_FILE)
    amap = amap.loc[amap["category"] == "industrial_park", ["name", "lng_gcj02", "lat_gcj02"]]
    parts.append(amap.assign(source="amap_poi:gaoxin_amap_pois_gcj02.csv"))

    combined = pd.concat(parts, ignore_index=True)
    combined = combined.assign(name=combined["name"].str.strip()).drop_duplicates("name")
    layer = _points_layer(combined, "industrial_park", regions, "lng_gcj02", "lat_gcj02")
    incubator = layer["name"].str.contains(_INCUBATOR_PATTERN)
    layer.loc[incubator, "kind"] = "incubator"
    return layer


def _metro_stations(data_dir: Path, regions: Regions) -> gpd.GeoDataFrame:
    frame = _read_csv(data_dir / METRO_DIR / "stations.csv")
    frame = frame.rename(columns={"name_zh": "name"})
    frame = frame.assign(
        is_interchange=_is_true(frame["is_interchange"]),
        lines=frame["lines"].fillna(""),
    )
    frame = frame[
        ["station_id", "name", "name_en", "lines", "is_interchange", "lon_gcj02", "lat_gcj02"]
    ]
    return _points_layer(frame, "metro_station", regions, "lon_gcj02", "lat_gcj02")


def _metro_lines(data_dir: Path, stations: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Join stations in line order into LineStrings, closing the ring of loop lines."""
    sequences = _read_csv(data_dir / METRO_DIR / "line_sequences.csv")
    lines = _read_csv(data_dir / METRO_DIR / "lines.csv")
    positions = stations.set_index("station_id").geometry

    unknown = sorted(set(sequences["station_id"]) - set(positions.index))
    if unknown:
        raise DataSourceError(
            f"line_sequences.csv refers to station ids missing from stations.csv: {unknown[:5]}"
        )

    sequences = sequences.assign(seq=sequences["seq"].astype(int)).sort_values(["line", "seq"])
    records = []
    for row in lines.itertuples(index=False):
        station_ids = sequences.loc[sequences["line"] == row.line, "station_id"].tolist()
        coords = [(positions[sid].x, positions[sid].y) for sid in station_ids]
        is_loop = str(row.loop).lower() == "true"
        if is_loop:
            coords.append(coords[0])
        color = row.color if isinstance(row.color, str) and row.color else DEFAULT_LINE_COLOR
        records.append(
            {
                "name": row.line_name,
                "line": row.line,
                "color": color,
                "loop": is_loop,
                "n_stations": len(station_ids),
                "geometry": LineString(coords),
            }
        )

    frame = gpd.GeoDataFrame(records, geometry="geometry", crs="EPSG:4326")
    return frame.assign(kind="metro_line", district_code=None)


def _districts(regions: Regions) -> gpd.GeoDataFrame:
    frame = regions.districts[["code", "name", "lon", "lat", "geometry"]].copy()
    return frame.assign(kind="district", district_code=frame["code"])


def load_layers(data_dir: Path, regions: Regions) -> dict[str, tuple[LayerInfo, gpd.GeoDataFrame]]:
    """Load every HR map layer from the data folder, converted to WGS84.

    Parameters
    ----------
    data_dir
        The data folder containing ``xian_poi_baidu_richiebao``,
        ``xian_metro_openmetro``, ``xian_universities`` and
        ``xian_gaoxin_realestate_zhubo240``.
    regions
        Loaded regions, for ``district_code`` and the ``districts`` layer.

    Returns
    -------
    dict
        Layer name to (LayerInfo, GeoDataFrame in EPSG:4326). Layers:
        ``hr_offices``, ``street_offices``, ``training``, ``universities``,
        ``parks``, ``metro_stations``, ``metro_lines``, ``districts``.

    Raises
    ------
    DataSourceError
        If a source file is missing or a line names an unknown station.
    """
    stations = _metro_stations(data_dir, regions)
    frames = {
        "hr_offices": _baidu_layer(
            data_dir, "government_agencies.csv", "hr_office", regions, flag="hr_related"
        ),
        "street_offices": _street_offices(data_dir, regions),
        "training": _baidu_layer(data_dir, "training_institutions.csv", "training", regions),
        "universities": _universities(data_dir, regions),
        "parks": _parks(data_dir, regions),
        "metro_stations": stations,
        "metro_lines": _metro_lines(data_dir, stations),
        "districts": _districts(regions),
    }

    for name, frame in frames.items():
        logger.info("loaded layer %r with %d features", name, len(frame))
    return {name: (LAYER_INFOS[name], frame) for name, frame in frames.items()}


def _json_value(value: Any) -> Any:
    """Convert a cell to a JSON-safe value: NaN and NA become None, numpy scalars plain Python."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def layer_geojson(
    gdf: gpd.GeoDataFrame,
    coord_sys: CoordSys | str = CoordSys.WGS84,
    bbox: tuple[float, float, float, float] | None = None,
) -> dict[str, Any]:
    """Export a layer as a GeoJSON FeatureCollection for a basemap in ``coord_sys``.

    Parameters
    ----------
    gdf
        A layer from :func:`load_layers` (EPSG:4326).
    coord_sys
        System of the output coordinates, e.g. ``gcj02`` for Amap tiles.
    bbox
        Optional (min_lon, min_lat, max_lon, max_lat) in WGS84 degrees. Only
        features intersecting it are exported.

    Returns
    -------
    dict
        FeatureCollection whose properties are every non-geometry column, with
        NaN turned into None. ``lon``/``lat`` properties are converted to
        ``coord_sys`` like the geometry.

    Raises
    ------
    ValueError
        If ``gdf`` is not in EPSG:4326 or ``bbox`` has min above max.
    """
    target = parse_coord_sys(coord_sys)
    if gdf.crs is None or gdf.crs.to_epsg() != 4326:
        raise ValueError(f"layer CRS {gdf.crs} is not EPSG:4326; reproject it first")

    if bbox is not None:
        min_lon, min_lat, max_lon, max_lat = bbox
        if min_lon > max_lon or min_lat > max_lat:
            raise ValueError(f"bbox {bbox} is not (min_lon, min_lat, max_lon, max_lat)")
        positions = gdf.sindex.query(shapely.box(*bbox), predicate="intersects")
        gdf = gdf.iloc[np.sort(positions)]

    property_columns = [column for column in gdf.columns if column != gdf.geometry.name]
    if {"lon", "lat"} <= set(property_columns) and target is not CoordSys.WGS84:
        # Representative points kept as properties follow the geometry's system.
        lons, lats = from_wgs84_arrays(
            gdf["lon"].to_numpy(dtype=float), gdf["lat"].to_numpy(dtype=float), target
        )
        gdf = gdf.assign(lon=lons, lat=lats)
    features = []
    for record, geometry in zip(
        gdf[property_columns].to_dict("records"), gdf.geometry, strict=True
    ):
        converted = transform_geometry(geometry, CoordSys.WGS84, target)
        features.append(
            {
                "type": "Feature",
                "properties": {str(key): _json_value(value) for key, value in record.items()},
                "geometry": shapely.geometry.mapping(converted),
            }
        )
    return {"type": "FeatureCollection", "features": features}
