"""Job accessibility by transit: cumulative opportunities and the two-step floating catchment.

Origin areas are the 1 km EPSG:4545 grid cells that hold seekers' homes, because
communities have no coordinates in the data. Each area's point is the mean of its
homes. Jobs are active postings whose location is at least a business area
(商圈) precise, pooled in 250 m cells at the mean point of their postings. Door-to-door
minutes come from `geo.transit.TransitNetwork.matrix` with walking and transit.

For a catchment of ``d`` minutes, the two-step floating catchment (2SFCA) is:

1. each job cell j gets the ratio R_j = S_j / (sum of P_k over areas k with t_kj <= d),
   where S_j is its postings and P_k the seekers living in area k;
2. each area i gets A_i = sum of R_j over job cells j with t_ij <= d.

A_i is postings per competing seeker. Every seeker competes for every posting, so a
group's score is the A_i of the areas its seekers live in, averaged over those seekers.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo.crs import from_metric, to_metric
from geo.location import Precision

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

AREA_CELL_M = 1_000.0
JOB_CELL_M = 250.0
CATCHMENTS_MIN = (30.0, 45.0)
MODES = "walk;transit"

LOCATED_PRECISIONS = frozenset(
    {Precision.EXACT, Precision.POI, Precision.BUILDING, Precision.BUSINESS_AREA}
)
"""Posting precisions used, because zone, district and city points are too coarse for a trip."""


class TravelMatrix(Protocol):
    """Anything with `geo.transit.TransitNetwork.matrix`'s signature."""

    def matrix(
        self,
        origins_lon: npt.ArrayLike,
        origins_lat: npt.ArrayLike,
        dest_lon: npt.ArrayLike,
        dest_lat: npt.ArrayLike,
        modes: str | Iterable[str],
    ) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class Accessibility:
    """Areas with jobs reachable and 2SFCA scores, and the inputs' sizes.

    ``areas`` has one row per origin area: ``area_id``, ``lon``, ``lat`` (WGS84),
    ``district_code``, ``seekers``, one ``seekers_<group>`` column per group, and per
    catchment ``d`` the columns ``jobs_<d>`` (postings reachable within d minutes)
    and ``score_<d>`` (2SFCA postings per competing seeker). ``postings_reached``
    maps each catchment to the postings that at least one area reaches; the
    seeker-weighted sum of ``score_<d>`` equals it.
    """

    areas: pd.DataFrame
    groups: tuple[str, ...]
    catchments_min: tuple[float, ...]
    postings_used: int
    postings_skipped: int
    job_cells: int
    postings_reached: dict[float, float]


def measure_accessibility(
    seekers: pd.DataFrame,
    postings: pd.DataFrame,
    travel: TravelMatrix,
    *,
    catchments_min: tuple[float, ...] = CATCHMENTS_MIN,
    precisions: frozenset[Precision] = LOCATED_PRECISIONS,
) -> Accessibility:
    """Count jobs reachable and compute 2SFCA scores per origin area.

    Parameters
    ----------
    seekers
        ``home_lon``, ``home_lat`` (WGS84 degrees), ``home_district_code`` and ``group``.
    postings
        ``lon``, ``lat`` (WGS84 degrees) and ``precision`` (a `geo.location.Precision`
        value); rows of other precisions than ``precisions`` are skipped.
    travel
        The transit network, or any object with its ``matrix`` method.
    catchments_min
        Catchment sizes in minutes, each > 0.
    precisions
        Posting precisions used; adding ``Precision.ZONE`` counts development-zone
        postings at the zone's point, a coarser but larger sample.

    Raises
    ------
    ValueError
        When a catchment is not positive, a frame is empty or lacks a column, or no
        posting has one of ``precisions``.
    """
    _check_inputs(seekers, postings, catchments_min)
    homed = seekers[["home_lon", "home_lat"]].notna().all(axis=1)
    if not homed.all():
        logger.warning("accessibility: skipped %d seekers without a home point", (~homed).sum())
    areas, groups = _origin_areas(seekers.loc[homed])
    located = postings["precision"].isin([str(value) for value in precisions])
    if not located.any():
        raise ValueError(
            f"postings has no row at precision {sorted(str(value) for value in precisions)};"
            " pass a wider precisions set"
        )
    jobs = _job_cells(postings.loc[located])
    minutes = travel.matrix(areas["lon"], areas["lat"], jobs["lon"], jobs["lat"], MODES)

    supply = jobs["postings"].to_numpy(np.float64)
    demand = areas["seekers"].to_numpy(np.float64)
    reached = {}
    for catchment in catchments_min:
        within = minutes <= catchment
        areas[f"jobs_{catchment:.0f}"] = within.astype(np.float64) @ supply
        areas[f"score_{catchment:.0f}"] = two_step_scores(within, supply, demand)
        reached[catchment] = float(supply[within.any(axis=0)].sum())

    logger.info(
        "accessibility of %d areas to %d job cells (%d postings, %d too coarse)",
        len(areas),
        len(jobs),
        int(located.sum()),
        int((~located).sum()),
    )
    return Accessibility(
        areas,
        groups,
        tuple(catchments_min),
        postings_used=int(located.sum()),
        postings_skipped=int((~located).sum()),
        job_cells=len(jobs),
        postings_reached=reached,
    )


def two_step_scores(
    within: npt.NDArray[np.bool_], supply: FloatArray, demand: FloatArray
) -> FloatArray:
    """Compute 2SFCA scores from a catchment mask.

    Parameters
    ----------
    within
        Shape (areas, job cells): True where the job cell is inside the area's catchment.
    supply
        Postings per job cell.
    demand
        Seekers per area.

    Returns
    -------
    numpy.ndarray
        Postings per competing seeker for each area. A job cell that no seeker reaches
        adds to no score.
    """
    mask = within.astype(np.float64)
    competing = demand @ mask
    ratios = np.divide(supply, competing, out=np.zeros_like(supply), where=competing > 0)
    return np.asarray(mask @ ratios, dtype=np.float64)


def scores_by_group(result: Accessibility, catchment_min: float) -> pd.DataFrame:
    """Average each group's 2SFCA score over its seekers, by district and for the city.

    Returns
    -------
    pandas.DataFrame
        Columns ``district_code`` ("all" for the city), ``group``, ``seekers`` and
        ``score`` (postings per competing seeker, seeker-weighted mean).
    """
    score = result.areas[f"score_{catchment_min:.0f}"]
    rows = []
    for group in result.groups:
        weights = result.areas[f"seekers_{group}"]
        frame = pd.DataFrame(
            {"district_code": result.areas["district_code"], "w": weights, "ws": weights * score}
        )
        by_district = frame.groupby("district_code")[["w", "ws"]].sum()
        by_district.loc["all"] = frame[["w", "ws"]].sum()
        for code, sums in by_district.iterrows():
            mean = sums["ws"] / sums["w"] if sums["w"] > 0 else np.nan
            rows.append(
                {"district_code": code, "group": group, "seekers": int(sums["w"]), "score": mean}
            )
    return pd.DataFrame(rows)


def _check_inputs(
    seekers: pd.DataFrame, postings: pd.DataFrame, catchments_min: tuple[float, ...]
) -> None:
    for name, frame, columns in (
        ("seekers", seekers, ("home_lon", "home_lat", "home_district_code", "group")),
        ("postings", postings, ("lon", "lat", "precision")),
    ):
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise ValueError(f"{name} lacks columns {missing}; expected {list(columns)}")
        if frame.empty:
            raise ValueError(f"{name} is empty; expected at least one row")
    for catchment in catchments_min:
        if not np.isfinite(catchment) or catchment <= 0:
            raise ValueError(f"catchment {catchment!r} is invalid; expected minutes > 0")


def _cell_keys(x: FloatArray, y: FloatArray, cell_m: float) -> npt.NDArray[np.int64]:
    columns = np.floor(x / cell_m).astype(np.int64)
    rows = np.floor(y / cell_m).astype(np.int64)
    return rows * 1_000_000 + columns


def _origin_areas(seekers: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Pool seekers' homes into ``AREA_CELL_M`` cells, with seekers per group."""
    x, y = to_metric(seekers["home_lon"], seekers["home_lat"])
    frame = pd.DataFrame(
        {
            "area_id": _cell_keys(x, y, AREA_CELL_M),
            "x": x,
            "y": y,
            "group": seekers["group"].to_numpy(),
            "district_code": seekers["home_district_code"].to_numpy(),
        }
    )
    groups = tuple(sorted(frame["group"].unique()))
    areas = frame.groupby("area_id").agg(
        x=("x", "mean"),
        y=("y", "mean"),
        seekers=("x", "size"),
        district_code=("district_code", _most_common),
    )
    per_group = pd.crosstab(frame["area_id"], frame["group"]).add_prefix("seekers_")
    areas = areas.join(per_group).reset_index()
    areas["lon"], areas["lat"] = from_metric(areas["x"], areas["y"])
    return areas.drop(columns=["x", "y"]), groups


def _job_cells(postings: pd.DataFrame) -> pd.DataFrame:
    """Pool postings into ``JOB_CELL_M`` cells at the mean point of their postings."""
    x, y = to_metric(postings["lon"], postings["lat"])
    frame = pd.DataFrame({"cell": _cell_keys(x, y, JOB_CELL_M), "x": x, "y": y})
    cells = frame.groupby("cell").agg(x=("x", "mean"), y=("y", "mean"), postings=("x", "size"))
    cells["lon"], cells["lat"] = from_metric(cells["x"], cells["y"])
    return cells.reset_index(drop=True)


def _most_common(values: pd.Series) -> object:
    counts = values.dropna().value_counts()
    return counts.index[0] if len(counts) else None
