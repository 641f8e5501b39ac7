"""The community through-train endpoint (``GET /v1/through-train``).

It lists the employer sites reachable from a community, or from a point, within a
time limit by each requested mode, grouped by metro line, bus line or mode. See
`matching.through_train` for how a community without coordinates is placed.
"""

import json
import threading
from pathlib import Path
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from api.auth import require
from api.errors import NotFoundError, QueryLimitError
from api.pages import LangQuery, load_messages, render_page_in
from api.permissions import Permission
from api.regions_state import app_regions
from api.route_routes import TransitDep, _leg, _point
from api.routes import CoordSysDep, Lang
from api.schemas import RouteLeg
from geo.crs import CoordSys, from_wgs84
from geo.transit import parse_travel_modes
from matching.through_train import (
    MAX_EMPLOYERS_LIMIT,
    MAX_MINUTES,
    MIN_MINUTES,
    CommunityPlace,
    Employer,
    ThroughTrain,
    employer_sites,
    place_community,
    through_train,
)

router = APIRouter(dependencies=[require(Permission.PUBLIC)])

_sites_lock = threading.Lock()

# The page's own zh/en texts, merged over the shared page messages.
_PAGE_MESSAGES: dict[str, dict[str, str]] = json.loads(
    (Path(__file__).parent / "templates" / "through_train_messages.json").read_text("utf-8")
)


class ThroughTrainPlace(BaseModel):
    """The point minutes are measured from, and the community it stands for."""

    lon: float
    lat: float
    placed_by: str = Field(
        description="street_office, district_seat, or point when the caller gave a point."
    )
    community_code: str | None
    community_name: str | None
    street_name: str | None
    district_name: str | None


class ThroughTrainEmployer(BaseModel):
    """An employer site with its active postings and the trip to it."""

    anchor_id: str
    name: str
    lon: float
    lat: float
    n_postings: int
    titles: list[str]
    minutes: float
    text: str
    legs: list[RouteLeg]


class ThroughTrainGroup(BaseModel):
    """Employers reached the same way: one metro line, one bus line, or one mode."""

    key: str = Field(description="metro:<line>, bus:<line>, walk, bike or drive.")
    label: str
    employers: list[ThroughTrainEmployer]


class ThroughTrainMode(BaseModel):
    """The reach of one mode: counts of every reachable site and the listed ones by route."""

    mode: str
    n_employers: int
    n_postings: int
    truncated: bool = Field(description="True when more sites are reachable than listed.")
    groups: list[ThroughTrainGroup]


class ThroughTrainBody(BaseModel):
    """The through-train of one community or point."""

    place: ThroughTrainPlace
    minutes: float
    modes: list[ThroughTrainMode]


@router.get("/v1/through-train", response_model=ThroughTrainBody, tags=["commute"])
def through_train_route(
    request: Request,
    network: TransitDep,
    coord_sys: CoordSysDep,
    community: Annotated[
        str | None, Query(max_length=12, description="12-digit statistical community code.")
    ] = None,
    point: Annotated[
        str | None, Query(max_length=64, description="Start as lon,lat in coord_sys.")
    ] = None,
    minutes: Annotated[
        float, Query(ge=MIN_MINUTES, le=MAX_MINUTES, description="Door-to-door limit, minutes.")
    ] = 30,
    modes: Annotated[
        str,
        Query(max_length=64, description="Modes joined by ';': walk, bike, transit, drive."),
    ] = "walk;transit",
    limit: Annotated[
        int, Query(ge=1, le=MAX_EMPLOYERS_LIMIT, description="Listed employers per mode.")
    ] = 100,
    lang: Lang = "zh",
) -> ThroughTrainBody:
    """List the employers reachable within ``minutes`` by each mode, grouped by route.

    Coordinates in the response are in ``coord_sys``, like the ``point`` parameter.
    """
    place = _place(request, community, point, coord_sys)
    allowed = parse_travel_modes(modes)
    sites = _sites(request)
    result = through_train(network, sites, place, minutes, allowed, limit)
    return _body(result, lang, coord_sys)


@router.get("/through-train", response_class=HTMLResponse, include_in_schema=False)
def through_train_page(request: Request, lang: LangQuery = "zh") -> HTMLResponse:
    """Community through-train page (社区直通车): a map and a printable list for a notice board."""
    if lang not in _PAGE_MESSAGES:
        return render_page_in(request, "through_train.html", lang)
    texts = {**load_messages()[lang], **_PAGE_MESSAGES[lang]}
    return render_page_in(request, "through_train.html", lang, {"t": texts})


def _place(
    request: Request, community: str | None, point: str | None, coord_sys: CoordSys
) -> CommunityPlace:
    if community is not None and point is None:
        return _community_place(request, community)
    if point is None or community is not None:
        raise QueryLimitError(
            "community or point is missing or both are given; give exactly one of them",
            field="community",
            message_zh="请只提供社区代码 community 或坐标 point 其中之一",
        )
    lon, lat = _point(point, "point", coord_sys)
    return CommunityPlace(lon=lon, lat=lat, placed_by="point")


def _community_place(request: Request, community: str) -> CommunityPlace:
    try:
        return place_community(app_regions(request.app.state), community)
    except ValueError as err:
        raise QueryLimitError(
            str(err), field="community", message_zh="社区代码 community 须为12位统计用区划代码"
        ) from err
    except LookupError as err:
        raise NotFoundError(str(err), message_zh="未找到该社区代码") from err


def _sites(request: Request) -> pd.DataFrame:
    """Return the employer sites of the current postings, rebuilt when the postings change."""
    postings = request.app.state.recommender.postings
    with _sites_lock:
        cached = getattr(request.app.state, "through_train_sites", None)
        if cached is None or cached[0] is not postings:
            cached = (postings, employer_sites(postings))
            request.app.state.through_train_sites = cached
    sites: pd.DataFrame = cached[1]
    return sites


def _body(result: ThroughTrain, lang: str, coord_sys: CoordSys) -> ThroughTrainBody:
    zh = lang == "zh"
    place = result.place
    place_lon, place_lat = from_wgs84(place.lon, place.lat, coord_sys)
    return ThroughTrainBody(
        place=ThroughTrainPlace(
            lon=round(place_lon, 6),
            lat=round(place_lat, 6),
            placed_by=place.placed_by,
            community_code=place.code,
            community_name=place.name,
            street_name=place.street_name,
            district_name=place.district_name,
        ),
        minutes=result.max_minutes,
        modes=[
            ThroughTrainMode(
                mode=reach.mode,
                n_employers=reach.n_employers,
                n_postings=reach.n_postings,
                truncated=reach.truncated,
                groups=[
                    ThroughTrainGroup(
                        key=group.key,
                        label=group.label_zh if zh else group.label_en,
                        employers=[
                            _employer(employer, lang, coord_sys) for employer in group.employers
                        ],
                    )
                    for group in reach.groups
                ],
            )
            for reach in result.modes
        ],
    )


def _employer(employer: Employer, lang: str, coord_sys: CoordSys) -> ThroughTrainEmployer:
    lon, lat = from_wgs84(employer.lon, employer.lat, coord_sys)
    return ThroughTrainEmployer(
        anchor_id=employer.anchor_id,
        name=employer.name,
        lon=round(lon, 6),
        lat=round(lat, 6),
        n_postings=employer.n_postings,
        titles=list(employer.titles),
        minutes=round(employer.minutes, 1),
        text=employer.trip.text(lang),
        legs=[_leg(leg, lang) for leg in employer.trip.legs],
    )
