"""Recruitment-bus tours (``POST /v1/tours/plan``, 招聘大巴) and shuttle proposals (定制公交).

Staff and analysts plan a tour for employers of their own organisation's districts.
The stops are communities of those districts with the most simulated seekers matched
to the employers. The response contains the OR-Tools tour beside the greedy
nearest-neighbour tour. See `matching.bus_tour` and `matching.bus_tour_stops`.
``GET /v1/shuttles/proposals`` proposes shuttle lines from the homes of the same
districts' seekers (`matching.shuttle`).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated

import numpy as np
import numpy.typing as npt
import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, StringConstraints

from api.auth import require
from api.background_jobs import Progress
from api.errors import QueryLimitError, fields_in_body
from api.permissions import Permission
from api.regions_state import app_regions
from api.route_routes import TransitDep
from api.routes import enforce_rate_limit
from api.staff_auth import StaffContext, StaffDep
from geo.crs import CoordSys, from_wgs84, validate_and_convert
from geo.regions import Regions
from geo.transit import TransitNetwork
from matching.bus_tour import Tour, nearest_neighbour_tour, plan_tour
from matching.bus_tour_stops import (
    community_stops,
    driving_minutes,
    matched_communities,
    shortest_visit_minutes,
)
from matching.recommend import Recommender
from matching.shuttle import ShuttleLine, ShuttleRules, propose_shuttles

logger = logging.getLogger(__name__)

router = APIRouter(dependencies=[Depends(enforce_rate_limit)])

MAX_ANCHORS = 20
MAX_SEEKERS = 20_000
"""Maximum seekers scored per request, the size of the default simulated store.

With exact homes on 2 shared cores, batched matching over 20,000 seekers took 49 s for
shuttle proposals and 61 s for a tour with 20 employers (docs/through-train.md).
"""

AnchorId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class DepotIn(BaseModel):
    """The depot, where the bus starts and ends the day, in ``coord_sys``."""

    lon: float
    lat: float
    coord_sys: CoordSys = CoordSys.WGS84


class TourPlanIn(BaseModel):
    """The employers on board and the day's limits."""

    anchor_ids: list[AnchorId] = Field(
        min_length=1, max_length=MAX_ANCHORS, description="Employer anchors on the bus."
    )
    depot: DepotIn
    budget_min: float = Field(
        480, ge=30, le=1440, description="The day's minutes, including the return to the depot."
    )
    dwell_min: float = Field(45, ge=0, le=240, description="Minutes at each stop.")
    stops: int = Field(15, ge=1, le=60, description="Candidate communities, most matched first.")
    top_k: int = Field(
        20, ge=1, le=200, description="A seeker is matched when a posting is in their top K."
    )
    max_seekers: int = Field(
        MAX_SEEKERS,
        ge=1,
        le=MAX_SEEKERS,
        description="Seekers of the caller's districts scored, in seeker-id order; all by default.",
    )


class TourStopOut(BaseModel):
    """One community stop of a tour, in ``coord_sys``."""

    community_code: str
    name: str | None
    lon: float
    lat: float
    placed_by: str = Field(description="street_office or district_seat: how it is placed.")
    seekers: int


class TourOut(BaseModel):
    """One tour: ``ortools`` or ``nearest_neighbour``."""

    method: str
    seekers: int = Field(description="Matched seekers at the visited stops.")
    minutes: float = Field(description="Driving plus dwell, from the depot and back.")
    stops: list[TourStopOut]


class TourPlanOut(BaseModel):
    """The OR-Tools tour, the nearest-neighbour tour and what they were planned from."""

    simulated_seekers: bool = Field(description="True: the matched seekers are simulated.")
    seekers_scored: int
    seekers_in_scope: int
    candidates: int = Field(description="Communities with matched seekers offered as stops.")
    budget_min: float
    dwell_min: float
    tours: list[TourOut]


@router.post(
    "/v1/tours/plan",
    response_model=TourPlanOut,
    tags=["through-train"],
    dependencies=[require(Permission.TOUR_PLAN)],
)
def plan_tour_route(
    request: Request, body: TourPlanIn, network: TransitDep, staff: StaffDep
) -> TourPlanOut:
    """Plan a recruitment-bus tour for employers of the caller's districts (OR-Tools and greedy).

    City-wide scopes take about a minute; ``POST /v1/tours/plan/jobs`` runs them in the
    background.
    """
    _, work = tour_plan_work(request, body, network, staff)
    return work(None)


def tour_plan_work(
    request: Request, body: TourPlanIn, network: TransitNetwork, staff: StaffContext
) -> tuple[int, Callable[[Progress | None], TourPlanOut]]:
    """Validate a tour request; return the seekers it scores and the planning still to do.

    The checks that need no matching run here, so a synchronous request and a job reject
    the same input with the same 422. The budget can only be checked once the stops are
    known, so the returned function may still raise `QueryLimitError` for ``budget_min``.
    """
    districts = staff.scope.district_codes
    depot = _depot(body.depot)
    recommender = request.app.state.recommender
    _check_anchors(recommender.postings, body.anchor_ids, districts)

    seekers = _seekers_in_scope(recommender.seekers, districts)
    scored = seekers.sort_index().head(body.max_seekers)
    inputs = _TourInputs(
        recommender=recommender,
        regions=app_regions(request.app.state),
        network=network,
        body=body,
        staff_id=staff.staff_id,
        districts=districts,
        depot=depot,
        seekers_in_scope=len(seekers),
        scored=scored,
    )
    return len(scored), partial(_plan, inputs)


@dataclass(frozen=True)
class _TourInputs:
    """A validated tour request with everything its planning reads."""

    recommender: Recommender
    regions: Regions
    network: TransitNetwork
    body: TourPlanIn
    staff_id: str
    districts: frozenset[str]
    depot: tuple[float, float]
    seekers_in_scope: int
    scored: pd.DataFrame


def _plan(inputs: _TourInputs, progress: Progress | None) -> TourPlanOut:
    body, scored = inputs.body, inputs.scored
    counts = matched_communities(
        inputs.recommender, body.anchor_ids, body.top_k, scored, progress=progress
    )
    counts = counts.loc[[str(code)[:6] in inputs.districts for code in counts.index]]
    stops = community_stops(inputs.regions, counts, body.stops)

    tours: list[Tour] = []
    if len(stops):
        driving = driving_minutes(inputs.network, inputs.depot, stops)
        _check_budget(driving, body.budget_min, body.dwell_min)
        prizes = stops["seekers"].to_numpy(dtype=np.int64)
        tours = [
            plan_tour(driving, prizes, body.budget_min, body.dwell_min),
            nearest_neighbour_tour(driving, prizes, body.budget_min, body.dwell_min),
        ]
    logger.info(
        "tour plan by %s: %d anchors, %d of %d seekers scored, %d candidate stops",
        inputs.staff_id,
        len(body.anchor_ids),
        len(scored),
        inputs.seekers_in_scope,
        len(stops),
    )
    return TourPlanOut(
        simulated_seekers=bool(scored["simulated"].astype(bool).all()) if len(scored) else True,
        seekers_scored=len(scored),
        seekers_in_scope=inputs.seekers_in_scope,
        candidates=len(stops),
        budget_min=body.budget_min,
        dwell_min=body.dwell_min,
        tours=[_tour_out(tour, stops, body.depot.coord_sys) for tour in tours],
    )


def _depot(depot: DepotIn) -> tuple[float, float]:
    """Convert the depot to WGS84; a point outside Xi'an is a 422 naming ``depot``."""
    with fields_in_body():
        return validate_and_convert(depot.lon, depot.lat, depot.coord_sys, field="depot")


def _check_anchors(
    postings: pd.DataFrame, anchor_ids: list[str], districts: frozenset[str]
) -> None:
    """Reject anchors without active postings in the caller's districts, naming how many."""
    active = postings.loc[postings["district_code"].astype(str).isin(districts), "anchor_id"]
    unknown = sorted(set(anchor_ids) - set(active.astype(str)))
    if unknown:
        # Another organisation's employer is reported like a missing one.
        raise QueryLimitError(
            f"anchor_ids has {len(unknown)} anchors without active postings in your"
            f" organisation's districts: {', '.join(unknown[:5])}",
            field="anchor_ids",
            message_zh=f"anchor_ids 中有 {len(unknown)} 个用人单位在本机构辖区内没有在招岗位",
            location="body",
        )


def _seekers_in_scope(seekers: pd.DataFrame, districts: frozenset[str]) -> pd.DataFrame:
    in_scope = seekers["home_district_code"].astype(str).isin(districts)
    return seekers.loc[in_scope & seekers["simulated"].astype(bool)]


def _check_budget(driving: npt.NDArray[np.float64], budget_min: float, dwell_min: float) -> None:
    shortest = shortest_visit_minutes(driving, dwell_min)
    if budget_min < shortest:
        raise QueryLimitError(
            f"budget_min {budget_min:g} is too short: the nearest stop needs {shortest:.0f} min"
            f" (driving there and back plus {dwell_min:g} min dwell); raise budget_min or"
            " move the depot",
            field="budget_min",
            message_zh=f"时间预算 budget_min 不足：最近的站点往返加停留需要 {shortest:.0f} 分钟",
            location="body",
        )


def _tour_out(tour: Tour, stops: pd.DataFrame, coord_sys: CoordSys) -> TourOut:
    visited = []
    for stop in tour.order:
        row = stops.iloc[stop]
        lon, lat = from_wgs84(float(row["lon"]), float(row["lat"]), coord_sys)
        visited.append(
            TourStopOut(
                community_code=str(row["code"]),
                name=None if pd.isna(row["name"]) else str(row["name"]),
                lon=round(lon, 6),
                lat=round(lat, 6),
                placed_by=str(row["placed_by"]),
                seekers=int(row["seekers"]),
            )
        )
    return TourOut(method=tour.method, seekers=tour.seekers, minutes=tour.minutes, stops=visited)


class ShuttleLineOut(BaseModel):
    """A proposed shuttle line between a pick-up area and a work area, in ``coord_sys``."""

    home_lon: float
    home_lat: float
    work_lon: float
    work_lat: float
    riders: int = Field(description="Scored seekers whose match the line would serve.")
    transit_min: float = Field(description="Median walk-and-transit minutes of its riders.")
    shuttle_min: float = Field(description="Median estimated shuttle minutes of its riders.")
    employers: list[str]
    home_districts: list[str]


class ShuttleProposalsOut(BaseModel):
    """Shuttle lines (定制公交) proposed from the caller's districts' seekers."""

    simulated_seekers: bool = Field(description="True: the seekers are simulated.")
    seekers_scored: int
    seekers_in_scope: int
    qualifying_matches: int = Field(
        description="Scored seekers with a qualifying match, each counted once."
    )
    lines: list[ShuttleLineOut]


MaxSeekersQuery = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_SEEKERS,
        description="Seekers of the caller's districts scored, in seeker-id order.",
    ),
]
MinRidersQuery = Annotated[int, Query(ge=1, le=1000, description="Riders a line needs.")]
OutputCoordSysQuery = Annotated[CoordSys, Query(description="System of the output points.")]


@router.get(
    "/v1/shuttles/proposals",
    response_model=ShuttleProposalsOut,
    tags=["through-train"],
    dependencies=[require(Permission.TOUR_PLAN)],
)
def shuttle_proposals_route(
    request: Request,
    network: TransitDep,
    staff: StaffDep,
    max_seekers: MaxSeekersQuery = MAX_SEEKERS,
    min_riders: MinRidersQuery = 3,
    coord_sys: OutputCoordSysQuery = CoordSys.WGS84,
) -> ShuttleProposalsOut:
    """Propose commuter shuttle lines from home clusters of the caller's districts.

    City-wide scopes take about a minute; ``POST /v1/shuttles/proposals/jobs`` runs them
    in the background.
    """
    _, work = shuttle_proposals_work(request, network, staff, max_seekers, min_riders, coord_sys)
    return work(None)


def shuttle_proposals_work(
    request: Request,
    network: TransitNetwork,
    staff: StaffContext,
    max_seekers: int,
    min_riders: int,
    coord_sys: CoordSys,
) -> tuple[int, Callable[[Progress | None], ShuttleProposalsOut]]:
    """Select the seekers of a shuttle request; return how many and the proposal still to do."""
    recommender = request.app.state.recommender
    seekers = _seekers_in_scope(recommender.seekers, staff.scope.district_codes)
    scored = seekers.sort_index().head(max_seekers)

    def propose(progress: Progress | None) -> ShuttleProposalsOut:
        lines, qualifying = propose_shuttles(
            recommender, network, scored, ShuttleRules(min_riders=min_riders), progress
        )
        return ShuttleProposalsOut(
            simulated_seekers=True,
            seekers_scored=len(scored),
            seekers_in_scope=len(seekers),
            qualifying_matches=qualifying,
            lines=[_line_out(line, coord_sys) for line in lines],
        )

    return len(scored), propose


def _line_out(line: ShuttleLine, coord_sys: CoordSys) -> ShuttleLineOut:
    home_lon, home_lat = from_wgs84(line.home_lon, line.home_lat, coord_sys)
    work_lon, work_lat = from_wgs84(line.work_lon, line.work_lat, coord_sys)
    return ShuttleLineOut(
        home_lon=round(home_lon, 6),
        home_lat=round(home_lat, 6),
        work_lon=round(work_lon, 6),
        work_lat=round(work_lat, 6),
        riders=line.riders,
        transit_min=line.transit_min,
        shuttle_min=line.shuttle_min,
        employers=list(line.employers),
        home_districts=list(line.home_districts),
    )
