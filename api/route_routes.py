"""The door-to-door route endpoint (``GET /v1/route``) on the transit commute model."""

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api.auth import require
from api.errors import QueryLimitError, ServiceUnavailableError
from api.permissions import Permission
from api.routes import CoordSysDep, Lang
from api.schemas import RouteBody, RouteLeg
from geo.crs import CoordSys, validate_and_convert
from geo.errors import InvalidCoordinateError
from geo.transit import Leg, Route, TransitNetwork, parse_travel_modes

router = APIRouter(dependencies=[require(Permission.PUBLIC)])

# Chinese names of the two points, for validation messages.
_POINT_LABELS_ZH = {"from": "起点 from", "to": "终点 to", "point": "坐标 point"}


def _transit(request: Request) -> TransitNetwork:
    network: TransitNetwork | None = request.app.state.transit
    if network is None:
        raise ServiceUnavailableError(
            "the transit network is not loaded (DOORSTEP_TRANSIT_MODEL off or its data missing)",
            message_zh="公共交通模型未加载，暂无法规划路线",
        )
    return network


TransitDep = Annotated[TransitNetwork, Depends(_transit)]


@router.get("/v1/route", response_model=RouteBody, tags=["commute"])
def route(
    network: TransitDep,
    coord_sys: CoordSysDep,
    origin: Annotated[
        str, Query(alias="from", max_length=64, description="Start as lon,lat in coord_sys.")
    ],
    destination: Annotated[
        str, Query(alias="to", max_length=64, description="End as lon,lat in coord_sys.")
    ],
    modes: Annotated[
        str,
        Query(
            max_length=64, description="Allowed modes joined by ';': walk, bike, transit, drive."
        ),
    ] = "walk;transit",
    lang: Lang = "zh",
) -> RouteBody:
    """Return the fastest door-to-door trip between two points: minutes and legs."""
    start = _point(origin, "from", coord_sys)
    end = _point(destination, "to", coord_sys)
    allowed = parse_travel_modes(modes)

    trip = network.route(start, end, allowed)
    return _route_body(trip, ("walk", *allowed), lang)


def _point(text: str, field: str, coord_sys: CoordSys) -> tuple[float, float]:
    """Parse and validate one ``lon,lat`` parameter; every error names ``field``."""
    lon, lat = _lon_lat(text, field)
    try:
        return validate_and_convert(lon, lat, coord_sys, field=field)
    except InvalidCoordinateError as err:
        if err.field == field:
            raise
        # validate_and_convert names one axis (lon or lat), which is not a parameter here.
        raise InvalidCoordinateError(
            f"{field}: {err}", field=field, rule=err.rule, rule_params=err.rule_params
        ) from err


def _lon_lat(text: str, field: str) -> tuple[float, float]:
    """Parse ``lon,lat``; the error names the field and never repeats the value."""
    parts = text.split(",")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(values) != 2 or not all(math.isfinite(value) for value in values):
        raise QueryLimitError(
            f"{field} is invalid; expected two finite numbers lon,lat such as 108.9421,34.2224",
            field=field,
            message_zh=f"{_POINT_LABELS_ZH[field]} 须为两个有限数值：经度,纬度，"
            "例如 108.9421,34.2224",
        )
    return values[0], values[1]


def _route_body(trip: Route, allowed: tuple[str, ...], lang: str) -> RouteBody:
    return RouteBody(
        minutes=round(trip.minutes, 1),
        mode=trip.mode,  # type: ignore[arg-type]
        text=trip.text(lang),
        legs=[_leg(leg, lang) for leg in trip.legs],
        modes=list(dict.fromkeys(allowed)),
    )


def _leg(leg: Leg, lang: str) -> RouteLeg:
    zh = lang == "zh"
    return RouteLeg(
        kind=leg.kind.value,
        minutes=round(leg.minutes, 1),
        wait_min=round(leg.wait_min, 1),
        line=leg.line,
        line_name=leg.line_name_zh if zh else leg.line_name_en,
        from_stop=leg.from_zh if zh else leg.from_en,
        to_stop=leg.to_zh if zh else leg.to_en,
        stops=leg.stops,
    )
