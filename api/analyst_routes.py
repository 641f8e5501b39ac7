"""The analyst dashboard (市局分析): its page and the JSON of its figures.

The page is a public shell like the station page: the figures come from routes that
need the ``analytics.read`` permission, fetched with the analyst's session token.
The coverage figures are precomputed by ``doorstep coverage dashboard`` and read
from the file it writes, reloaded when the file changes. The gap map is served as
GeoJSON and drawn by the page's own script with the locally served Leaflet, so it
runs under the Content-Security-Policy that forbids inline scripts.

Other figures join the dashboard as further JSON routes and one renderer each in
``api/static/analyst-page.js`` (its ``FIGURES`` list): the 131 completion rates
(``/v1/analytics/assistance/completion``) and the fairness audit (``/v1/analytics/fairness``).
"""

import json
import logging
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from api.auth import require
from api.errors import ServiceUnavailableError
from api.pages import LangQuery, load_messages, render_page_in
from api.permissions import Permission
from geo.coverage.dashboard import dashboard_path, read_dashboard

logger = logging.getLogger(__name__)

router = APIRouter()

_cache_lock = threading.Lock()

GEOJSON_MEDIA_TYPE = "application/geo+json"

# The page's own zh/en texts, merged over the shared page messages.
_PAGE_MESSAGES: dict[str, dict[str, str]] = json.loads(
    (Path(__file__).parent / "templates" / "analyst_messages.json").read_text("utf-8")
)


@router.get(
    "/analyst",
    response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[require(Permission.PUBLIC)],
)
def analyst_page(request: Request, lang: LangQuery = "zh") -> HTMLResponse:
    """Analyst dashboard (市局分析): service-circle coverage, accessibility and the gap map."""
    if lang not in _PAGE_MESSAGES:
        return render_page_in(request, "analyst.html", lang)
    texts = {**load_messages()[lang], **_PAGE_MESSAGES[lang]}
    return render_page_in(request, "analyst.html", lang, {"t": texts})


@router.get(
    "/v1/analyst/coverage",
    tags=["analyst"],
    dependencies=[require(Permission.ANALYTICS_READ)],
)
def coverage_figures(request: Request) -> dict[str, Any]:
    """Return the 15-minute circle shares, jobs reachable and 2SFCA scores by district.

    The gap map is left out; it is served by ``/v1/analyst/coverage/gaps``.
    """
    figures = _figures(request)
    return {key: value for key, value in figures.items() if key != "gaps"}


@router.get(
    "/v1/analyst/coverage/gaps",
    tags=["analyst"],
    response_class=JSONResponse,
    responses={200: {"content": {GEOJSON_MEDIA_TYPE: {}}}},
    dependencies=[require(Permission.ANALYTICS_READ)],
)
def coverage_gaps(request: Request) -> JSONResponse:
    """Return residential places (within or beyond the circle) and stations as GeoJSON, WGS84."""
    gaps = _figures(request)["gaps"]
    return JSONResponse(gaps, media_type=GEOJSON_MEDIA_TYPE)


def _figures(request: Request) -> dict[str, Any]:
    """Return the stored figures, read again only when the file's modification time changes."""
    path = dashboard_path(request.app.state.settings.data.store_path)
    try:
        modified = path.stat().st_mtime_ns
    except FileNotFoundError as err:
        raise ServiceUnavailableError(
            "coverage figures are not computed; run `doorstep coverage dashboard`",
            message_zh="覆盖率数据尚未计算，请先运行 doorstep coverage dashboard",
        ) from err
    with _cache_lock:
        cached = getattr(request.app.state, "analyst_figures", None)
        if cached is None or cached[0] != (path, modified):
            try:
                figures = read_dashboard(path)
            except ValueError as err:
                logger.warning("analyst figures %s not read: %s", path, err)
                raise ServiceUnavailableError(
                    str(err),
                    message_zh="覆盖率数据格式已过期，请重新运行 doorstep coverage dashboard",
                ) from err
            cached = ((path, modified), figures)
            request.app.state.analyst_figures = cached
            logger.info("loaded analyst figures from %s", path)
    result: dict[str, Any] = cached[1]
    return result
