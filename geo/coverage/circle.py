"""The 15-minute employment-service circle: who lives within a walk of a station.

Walking minutes come from `geo.coverage.grid.WalkGrid`, one multi-source pass from
every employment station. Shares count residential places, not residents, because
the data has no population per compound.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.spatial import cKDTree

from geo.coverage.grid import WalkGrid, WalkGridParameters, read_snapped
from geo.coverage.places import load_employment_stations, load_residential_places
from geo.crs import to_metric, validate_point
from geo.regions import Regions

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

THRESHOLD_MIN = 15.0
"""Walking minutes of the service circle."""

LEVELS = {"district": "district_code", "street": "street_code"}


@dataclass(frozen=True)
class SitingGain:
    """Effect of one candidate station on the service circle.

    ``newly_covered`` counts residential places that move within the threshold, and
    ``by_district`` splits that count by district code.
    """

    lon: float
    lat: float
    newly_covered: int
    covered_before: int
    places: int
    by_district: dict[str, int]

    @property
    def share_after(self) -> float:
        """Share of places within the threshold with the candidate station added."""
        return (self.covered_before + self.newly_covered) / self.places if self.places else 0.0


class ServiceCircle:
    """Walking minutes from every residential place to its nearest employment station.

    Parameters
    ----------
    grid
        The walking grid.
    places
        Residential places of `geo.coverage.places.load_residential_places`.
    stations
        Employment stations with ``lon``, ``lat`` (WGS84 degrees), at least one.
    threshold_min
        Walking minutes of the circle, 15 by default.

    Attributes
    ----------
    cell_minutes : numpy.ndarray
        Minutes from each grid cell to its nearest station.
    places : pandas.DataFrame
        The places plus ``minutes`` and ``covered`` (minutes <= threshold).
    """

    def __init__(
        self,
        grid: WalkGrid,
        places: pd.DataFrame,
        stations: pd.DataFrame,
        threshold_min: float = THRESHOLD_MIN,
    ) -> None:
        if len(stations) == 0:
            raise ValueError("stations is empty; expected at least one employment station")
        if not np.isfinite(threshold_min) or threshold_min <= 0:
            raise ValueError(f"threshold_min {threshold_min!r} is invalid; expected minutes > 0")
        self.grid, self.stations, self.threshold_min = grid, stations, threshold_min

        self.cell_minutes = grid.minutes_from(stations["lon"], stations["lat"])
        self._place_cells, self._place_walks = grid.snap(places["lon"], places["lat"])
        minutes = read_snapped(self.cell_minutes, self._place_cells, self._place_walks)
        self.places = places.assign(minutes=minutes, covered=minutes <= threshold_min)
        logger.info(
            "service circle: %d of %d places within %.0f min of %d stations",
            int(self.places["covered"].sum()),
            len(self.places),
            threshold_min,
            len(stations),
        )

    def shares(self, level: str, regions: Regions) -> pd.DataFrame:
        """Count places and the share within the threshold, by district or street.

        Parameters
        ----------
        level
            ``"district"`` or ``"street"``. Places without a street are left out of
            the street table.
        regions
            For the zh-CN names of districts and streets.

        Returns
        -------
        pandas.DataFrame
            Columns ``code``, ``name``, ``places``, ``covered``, ``share`` (0..1) and
            ``median_minutes``, sorted by ``share``, lowest first.
        """
        if level not in LEVELS:
            raise ValueError(f"level {level!r} is invalid; expected one of {sorted(LEVELS)}")
        column = LEVELS[level]
        located = self.places.dropna(subset=[column])
        table = (
            located.groupby(column)
            .agg(
                places=("covered", "size"),
                covered=("covered", "sum"),
                median_minutes=("minutes", "median"),
            )
            .reset_index()
            .rename(columns={column: "code"})
        )
        table["share"] = table["covered"] / table["places"]
        table["name"] = [_region_name(regions, level, code) for code in table["code"]]
        columns = ["code", "name", "places", "covered", "share", "median_minutes"]
        return table[columns].sort_values(["share", "code"]).reset_index(drop=True)

    def marginal_gain(self, lon: float, lat: float) -> SitingGain:
        """Count the places a new station at (lon, lat) would bring within the threshold.

        Parameters
        ----------
        lon, lat
            Candidate station, WGS84 degrees, inside the Xi'an area.

        Raises
        ------
        InvalidCoordinateError
            When the point is NaN, infinite, swapped, (0, 0) or outside Xi'an. The
            field is ``candidate``, or ``lon``/``lat`` for an error of one axis.
        """
        validate_point(lon, lat, field="candidate")
        cell_minutes = self.grid.minutes_from([lon], [lat], limit_min=self.threshold_min)
        uncovered = ~self.places["covered"].to_numpy()
        minutes = read_snapped(
            cell_minutes, self._place_cells[uncovered], self._place_walks[uncovered]
        )
        gained = self.places.loc[uncovered].loc[minutes <= self.threshold_min]
        by_district = gained.groupby("district_code").size()
        return SitingGain(
            lon=lon,
            lat=lat,
            newly_covered=len(gained),
            covered_before=int(self.places["covered"].sum()),
            places=len(self.places),
            by_district={str(code): int(count) for code, count in by_district.items()},
        )


def straight_line_minutes(
    places: pd.DataFrame, stations: pd.DataFrame, minutes_per_m: float
) -> FloatArray:
    """Compute minutes to the nearest station with the straight-line walking model.

    This is the transit model's direct walk: straight-line distance in EPSG:4545
    times ``minutes_per_m`` (detour factor over speed). It is the reference the grid
    is compared with.
    """
    station_x, station_y = to_metric(stations["lon"], stations["lat"])
    place_x, place_y = to_metric(places["lon"], places["lat"])
    distance, _ = cKDTree(np.column_stack([station_x, station_y])).query(
        np.column_stack([place_x, place_y])
    )
    return np.asarray(distance, dtype=np.float64) * minutes_per_m


def _region_name(regions: Regions, level: str, code: str) -> str:
    if level == "district":
        district = regions.district(code)
        return district.name if district else code
    street = regions.street_by_code(code)
    return street.name if street else code


def build_service_circle(
    data_dir: Path,
    regions: Regions,
    *,
    threshold_min: float = THRESHOLD_MIN,
    grid_params: WalkGridParameters | None = None,
) -> ServiceCircle:
    """Build the city grid and the service circle of the data folder's places and stations.

    Parameters
    ----------
    data_dir
        The data folder (see `geo.coverage.places`).
    regions
        Loaded regions: the city outline bounds the grid.
    threshold_min
        Walking minutes of the circle.
    grid_params
        Cell size and walking model; `WalkGridParameters` defaults when None.

    Raises
    ------
    DataSourceError
        When a source file is missing or lacks a column.
    """
    grid = WalkGrid.over_area(regions.city_outline, grid_params)
    places = load_residential_places(data_dir, regions)
    stations = load_employment_stations(data_dir)
    return ServiceCircle(grid, places, stations, threshold_min)
