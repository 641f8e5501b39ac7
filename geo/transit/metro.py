"""Metro stations and line orders read from the openmetro export in the data folder.

The folder ``xian_metro_openmetro`` contains ``stations.csv`` (one row per physical
station, GCJ-02 coordinates), ``lines.csv`` (one row per line, ``loop`` true for the
ring line 8) and ``line_sequences.csv`` (the ordered stations of each line). Station
coordinates are converted to WGS84 here and only the WGS84 values are kept.
"""

import logging
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo.crs import CoordSys, to_wgs84_arrays
from geo.errors import DataSourceError

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

METRO_FOLDER = "xian_metro_openmetro"

_STATION_COLUMNS = ("station_id", "name_zh", "name_en", "lon_gcj02", "lat_gcj02")
_LINE_COLUMNS = ("line", "line_name", "loop")
_SEQUENCE_COLUMNS = ("line", "seq", "station_id")


@dataclass(frozen=True)
class MetroLine:
    """One metro line: its id (``"2"``, ``"西户线"``), names and ordered station indices.

    ``stations`` indexes `MetroData.station_ids` in travel order. On a loop line the
    last station also connects to the first.
    """

    line_id: str
    name_zh: str
    name_en: str
    loop: bool
    stations: IntArray


@dataclass(frozen=True)
class MetroData:
    """Metro stations (WGS84 degrees) and the lines that serve them."""

    station_ids: tuple[str, ...]
    names_zh: tuple[str, ...]
    names_en: tuple[str, ...]
    lons: FloatArray
    lats: FloatArray
    lines: tuple[MetroLine, ...]

    def __len__(self) -> int:
        return len(self.station_ids)


def load_metro(data_dir: Path) -> MetroData:
    """Read the metro stations and lines from ``data_dir/xian_metro_openmetro``.

    Parameters
    ----------
    data_dir
        The data folder that contains the ``xian_metro_openmetro`` folder.

    Returns
    -------
    MetroData
        Stations in the order of ``stations.csv``, coordinates converted from GCJ-02
        to WGS84, and lines in the order of ``lines.csv``.

    Raises
    ------
    DataSourceError
        When a file or a column is missing, or a line names an unknown station.
    """
    folder = data_dir / METRO_FOLDER
    stations = _read_csv(folder / "stations.csv", _STATION_COLUMNS)
    lines = _read_csv(folder / "lines.csv", _LINE_COLUMNS)
    sequences = _read_csv(folder / "line_sequences.csv", _SEQUENCE_COLUMNS)

    lons, lats = to_wgs84_arrays(
        stations["lon_gcj02"].astype(float), stations["lat_gcj02"].astype(float), CoordSys.GCJ02
    )
    position = {station_id: i for i, station_id in enumerate(stations["station_id"])}
    metro_lines = tuple(_metro_line(row, sequences, position) for row in lines.to_dict("records"))
    logger.info("loaded %d metro stations on %d lines", len(stations), len(metro_lines))
    return MetroData(
        station_ids=tuple(stations["station_id"]),
        names_zh=tuple(stations["name_zh"]),
        names_en=tuple(stations["name_en"]),
        lons=lons,
        lats=lats,
        lines=metro_lines,
    )


def _read_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise DataSourceError(f"metro file {path} not found; expected the openmetro export")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataSourceError(f"metro file {path} lacks the columns {missing}")
    return frame


def _metro_line(
    row: Mapping[Hashable, str], sequences: pd.DataFrame, position: dict[str, int]
) -> MetroLine:
    line_id = row["line"]
    stops = sequences.loc[sequences["line"] == line_id]
    stops = stops.assign(order=stops["seq"].astype(int)).sort_values("order")
    unknown = sorted(set(stops["station_id"]) - position.keys())
    if unknown:
        raise DataSourceError(f"metro line {line_id!r} names unknown stations {unknown}")
    if len(stops) < 2:
        raise DataSourceError(f"metro line {line_id!r} has {len(stops)} stations; expected 2+")

    return MetroLine(
        line_id=line_id,
        name_zh=row["line_name"],
        name_en=_english_line_name(line_id),
        loop=row["loop"].strip().lower() == "true",
        stations=np.array([position[station] for station in stops["station_id"]], dtype=np.intp),
    )


def _english_line_name(line_id: str) -> str:
    if re.fullmatch(r"\d+", line_id):
        return f"Line {line_id}"
    if line_id == "西户线":
        return "Xihu Line"
    return line_id
