"""Residential places and employment stations of the coverage analysis, in WGS84.

The data has no population per compound and no community coordinates, so the
residential places are the compounds (住宅区) and dormitories (宿舍) of the Baidu POIs
plus the residential Amap POIs of the Hi-tech Zone, and each place counts once.
Amap points within ``DUPLICATE_RADIUS_M`` of a Baidu place are taken as the same
compound and dropped.

Employment stations are the HR-related government POIs (人社局, 就业服务中心,
community 劳动保障工作站 and similar, 78 rows). A deployment replaces both with the
bureau's own lists in the same shapes.
"""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from geo.crs import CoordSys, to_metric, to_wgs84_arrays
from geo.errors import DataSourceError
from geo.regions import Regions

logger = logging.getLogger(__name__)

BAIDU_PLACES_FILE = "xian_poi_baidu_richiebao/realestate_residential_offices.csv"
GAOXIN_PLACES_FILE = "xian_gaoxin_realestate_zhubo240/gaoxin_amap_pois_gcj02.csv"
STATIONS_FILE = "xian_poi_baidu_richiebao/government_agencies.csv"

BAIDU_RESIDENTIAL_TAGS = {"房地产;住宅区": "residential", "房地产;宿舍": "dormitory"}
DUPLICATE_RADIUS_M = 50.0
"""Amap and Baidu residential points closer than this are one compound."""


def load_residential_places(data_dir: Path, regions: Regions) -> pd.DataFrame:
    """Read the residential compounds and dormitories, with district and street.

    Parameters
    ----------
    data_dir
        The data folder with ``xian_poi_baidu_richiebao`` and
        ``xian_gaoxin_realestate_zhubo240``.
    regions
        Districts and street office points, for ``district_code`` and ``street_code``.

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``kind`` ("residential", "dormitory"), ``source``, ``lon``,
        ``lat`` (WGS84 degrees), ``district_code`` and ``street_code`` (see
        :func:`assign_streets`); places outside every district are dropped.

    Raises
    ------
    DataSourceError
        When a file is missing or lacks a column.
    """
    baidu = _read(data_dir / BAIDU_PLACES_FILE, ("name", "tag", "lng_gcj02", "lat_gcj02"))
    baidu = baidu.loc[baidu["tag"].isin(list(BAIDU_RESIDENTIAL_TAGS))]
    baidu = baidu.assign(kind=baidu["tag"].map(BAIDU_RESIDENTIAL_TAGS), source="baidu_poi")
    amap = _read(data_dir / GAOXIN_PLACES_FILE, ("name", "category", "lng_gcj02", "lat_gcj02"))
    amap = amap.loc[amap["category"] == "residential"].assign(kind="residential", source="amap_poi")

    places = pd.concat([_to_wgs84(baidu), _to_wgs84(amap)], ignore_index=True)
    places = _drop_duplicates(places)

    places["district_code"] = regions.districts_at(places["lon"], places["lat"])
    outside = places["district_code"].isna()
    if outside.any():
        logger.warning("dropped %d residential places outside every district", int(outside.sum()))
    places = places.loc[~outside].reset_index(drop=True)
    places["street_code"] = assign_streets(places, regions)
    return places


def load_employment_stations(data_dir: Path) -> pd.DataFrame:
    """Read the employment stations: the HR-related government POIs.

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``lon``, ``lat`` (WGS84 degrees).

    Raises
    ------
    DataSourceError
        When the file is missing or lacks a column.
    """
    agencies = _read(data_dir / STATIONS_FILE, ("name", "hr_related", "lng_gcj02", "lat_gcj02"))
    flagged = agencies["hr_related"].astype(str).str.strip().str.lower().eq("true")
    stations = _to_wgs84(agencies.loc[flagged])
    return stations[["name", "lon", "lat"]].reset_index(drop=True)


def assign_streets(places: pd.DataFrame, regions: Regions) -> pd.Series:
    """Assign each place to the street whose office point is nearest within its district.

    Streets have no polygons in the data, only office points for 74 of 172 streets,
    so this is a nearest-office proxy: places near a street boundary can land in the
    neighbouring street, and districts without office points get no street.

    Parameters
    ----------
    places
        Frame with ``lon``, ``lat`` (WGS84 degrees) and ``district_code``.
    regions
        Streets with ``code``, ``district_code``, ``lon``, ``lat``.

    Returns
    -------
    pandas.Series
        Street code per place (object dtype), None where the district has no office point.
    """
    streets = regions.streets.dropna(subset=["lon", "lat"])
    codes = pd.Series([None] * len(places), index=places.index, dtype=object)
    for district_code, offices in streets.groupby("district_code"):
        in_district = (places["district_code"] == district_code).to_numpy()
        if not in_district.any():
            continue
        office_x, office_y = to_metric(offices["lon"], offices["lat"])
        place_x, place_y = to_metric(places.loc[in_district, "lon"], places.loc[in_district, "lat"])
        _, nearest = cKDTree(np.column_stack([office_x, office_y])).query(
            np.column_stack([place_x, place_y])
        )
        codes.loc[in_district] = offices["code"].to_numpy()[nearest]
    return codes


def _read(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise DataSourceError(f"coverage source {path} not found")
    frame = pd.read_csv(path, dtype={"name": str})
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataSourceError(f"{path} lacks columns {missing}; expected {list(columns)}")
    return frame


def _to_wgs84(frame: pd.DataFrame) -> pd.DataFrame:
    """Convert the GCJ-02 ``lng_gcj02``/``lat_gcj02`` columns to WGS84 ``lon``/``lat``."""
    lons = pd.to_numeric(frame["lng_gcj02"], errors="coerce")
    lats = pd.to_numeric(frame["lat_gcj02"], errors="coerce")
    located = (lons.notna() & lats.notna()).to_numpy()
    if not located.all():
        logger.warning("dropped %d rows without coordinates", int((~located).sum()))
    wgs_lons, wgs_lats = to_wgs84_arrays(lons[located], lats[located], CoordSys.GCJ02)
    located_rows = frame.loc[located].drop(columns=["lng_gcj02", "lat_gcj02"])
    return located_rows.assign(lon=wgs_lons, lat=wgs_lats).reset_index(drop=True)


def _drop_duplicates(places: pd.DataFrame) -> pd.DataFrame:
    """Drop Amap places within ``DUPLICATE_RADIUS_M`` of a Baidu place."""
    is_baidu = (places["source"] == "baidu_poi").to_numpy()
    x, y = to_metric(places["lon"], places["lat"])
    points = np.column_stack([x, y])
    distance, _ = cKDTree(points[is_baidu]).query(points[~is_baidu])
    duplicate = np.zeros(len(places), dtype=bool)
    duplicate[np.flatnonzero(~is_baidu)[distance < DUPLICATE_RADIUS_M]] = True
    logger.info("dropped %d Amap places already in the Baidu POIs", int(duplicate.sum()))
    columns = ["name", "kind", "source", "lon", "lat"]
    return places.loc[~duplicate, columns].reset_index(drop=True)
