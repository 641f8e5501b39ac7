"""Web pages: the city map (城市地图), the seeker page (求职者页面) and staff curation (完善锚点).

The pages are Jinja2 templates that load only same-origin files: Leaflet and
leaflet.markercluster from ``node_modules`` (installed by ``npm ci`` from the pinned
``package-lock.json``) and our own scripts from ``api/static``. The scripts fetch the
JSON API and build every element with ``textContent``, so scraped job titles and
company names are shown as text, never parsed as HTML. The Content-Security-Policy
that forbids inline scripts and styles is set by :mod:`api.middleware`.
"""

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, cast
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from api.auth import require
from api.errors import NotFoundError
from api.permissions import Permission
from api.settings import AuthSettings, ServerSettings
from api.tiles import tile_source
from geo.errors import DoorstepError

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
MESSAGES_PATH = TEMPLATES_DIR / "messages.json"

# URL prefix -> (folder under node_modules, a file that folder must contain).
NPM_ASSETS: dict[str, tuple[str, str]] = {
    "/assets/leaflet": ("leaflet/dist", "leaflet.js"),
    "/assets/markercluster": ("leaflet.markercluster/dist", "leaflet.markercluster.js"),
}

Lang = Literal["zh", "en"]
HTML_LANG: dict[str, str] = {"zh": "zh-CN", "en": "en"}

# Rows per request of the seeker picker and of the job list. page_sizes() caps both at
# the server's query.max_page_size, so the pages never request more than it accepts.
SEEKER_PAGE_SIZE = 50
JOB_PAGE_SIZE = 20

# The rejected lang value is echoed on the error page (escaped) up to this length.
LANG_ECHO_MAX_CHARS = 40

router = APIRouter(dependencies=[require(Permission.PUBLIC)])

templates = Jinja2Templates(
    env=Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True)
)


class MissingAssetsError(DoorstepError, FileNotFoundError):
    """A front-end library folder under ``node_modules`` is missing."""


def mount_assets(app: FastAPI, repo_root: Path) -> None:
    """Mount Leaflet, leaflet.markercluster and ``api/static`` as static files.

    ``node_modules/leaflet/dist`` is served at ``/assets/leaflet``,
    ``node_modules/leaflet.markercluster/dist`` at ``/assets/markercluster`` and
    ``api/static`` at ``/static``. Raises ``MissingAssetsError`` naming the missing
    file when ``npm ci`` has not been run in ``repo_root``.
    """
    node_modules = repo_root / "node_modules"
    for prefix, (folder, marker_file) in NPM_ASSETS.items():
        directory = node_modules / folder
        if not (directory / marker_file).is_file():
            raise MissingAssetsError(
                f"front-end file {directory / marker_file} not found; "
                f"run `npm ci` in {repo_root} (or `make run`) to install Leaflet"
            )
        app.mount(prefix, StaticFiles(directory=directory), name=prefix.strip("/"))
        logger.info("serving %s from %s", prefix, directory)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


@lru_cache(maxsize=1)
def load_messages() -> dict[str, dict[str, Any]]:
    """Load the zh and en page messages from ``api/templates/messages.json``."""
    with MESSAGES_PATH.open(encoding="utf-8") as file:
        messages: dict[str, dict[str, Any]] = json.load(file)
    missing = set(messages["zh"]) ^ set(messages["en"])
    if missing:
        raise ValueError(f"messages.json keys {sorted(missing)} are not in both zh and en")
    return messages


def page_sizes(max_page_size: int) -> dict[str, int]:
    """Return the seeker and job page sizes the scripts request, capped at ``max_page_size``."""
    return {
        "max_page_size": max_page_size,
        "seeker_page_size": min(SEEKER_PAGE_SIZE, max_page_size),
        "job_page_size": min(JOB_PAGE_SIZE, max_page_size),
    }


def render_page(
    request: Request, template: str, lang: Lang, extra: dict[str, Any] | None = None
) -> HTMLResponse:
    """Render one page template with its messages and tile settings.

    ``extra`` adds template variables of one page.
    """
    settings = request.app.state.settings
    server: ServerSettings = settings.server
    messages = load_messages()[lang]

    tiles = tile_source(server)
    page_config = {
        "lang": lang,
        "tile_url": tiles.url,
        "tile_attribution": tiles.attribution,
        "tile_subdomains": tiles.subdomains,
        "coord_sys": tiles.coord_sys,
        **page_sizes(settings.query.max_page_size),
    }
    context = {
        "lang": lang,
        "html_lang": HTML_LANG[lang],
        "other_lang": "en" if lang == "zh" else "zh",
        "switch_lang_query": _switch_lang_query(request, "en" if lang == "zh" else "zh"),
        "t": messages,
        "page_config": page_config,
        "tile_url": tiles.url,
        "tile_attribution": tiles.attribution,
        "tile_coord_sys": tiles.coord_sys,
        **(extra or {}),
    }
    return templates.TemplateResponse(request, template, context)


def _switch_lang_query(request: Request, other_lang: str) -> str:
    """Return the page's query string with ``lang`` set to ``other_lang``, other parameters kept.

    So switching language keeps what the page was showing (the through-train community).
    """
    params = [(key, value) for key, value in request.query_params.multi_items() if key != "lang"]
    return urlencode([("lang", other_lang), *params])


def render_lang_error(request: Request, value: str) -> HTMLResponse:
    """Render the 422 HTML page for an unknown ``lang`` value, in Chinese with an English line.

    A browser that follows a bad link gets a readable page with links to both languages
    instead of the JSON validation error that the API routes return.
    """
    messages = load_messages()
    shown = value[:LANG_ECHO_MAX_CHARS]
    context = {
        "t": messages["zh"],
        "t_en": messages["en"],
        "invalid_text": messages["zh"]["lang_invalid_text"].replace("{value}", shown),
        "invalid_text_en": messages["en"]["lang_invalid_text"].replace("{value}", shown),
        "path": request.url.path,
    }
    logger.info("page %s: rejected lang=%r", request.url.path, shown)
    return templates.TemplateResponse(request, "lang_error.html", context, status_code=422)


def render_page_in(
    request: Request, template: str, lang: str, extra: dict[str, Any] | None = None
) -> HTMLResponse:
    """Render ``template`` in ``lang``, or the 422 language error page for another value."""
    if lang not in HTML_LANG:
        return render_lang_error(request, lang)
    return render_page(request, template, cast(Lang, lang), extra)


# A plain string, checked in render_page_in, so that an unknown value gets an HTML
# error page. A Literal would make FastAPI return a JSON validation error instead.
LangQuery = Annotated[str, Query(description="Page language: zh (default) or en.")]


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def city_map_page(request: Request, lang: LangQuery = "zh") -> HTMLResponse:
    """City map (城市地图): districts, employer anchors and HR layers."""
    return render_page_in(request, "city_map.html", lang)


@router.get("/seeker", response_class=HTMLResponse, include_in_schema=False)
def seeker_page(request: Request, lang: LangQuery = "zh") -> HTMLResponse:
    """Seeker page (求职者页面): ranked jobs for a simulated seeker or a clicked point."""
    return render_page_in(request, "seeker.html", lang)


@router.get("/staff", response_class=HTMLResponse, include_in_schema=False)
def staff_page(request: Request, lang: LangQuery = "zh") -> HTMLResponse:
    """Staff curation page (完善锚点): edit, move, merge and import employer anchors."""
    return render_page_in(request, "staff.html", lang)


@router.get("/staff/login", response_class=HTMLResponse, include_in_schema=False)
def staff_login_page(request: Request, lang: LangQuery = "zh") -> HTMLResponse:
    """Staff login (工作人员登录): password, SMS or TOTP code, bound device."""
    auth: AuthSettings = request.app.state.settings.auth
    # Only the development gateway writes codes to a file, so only development names it.
    development_outbox = auth.environment == "development" and auth.sms_gateway == "outbox"
    outbox = auth.sms_outbox_path.resolve() if development_outbox else None
    return render_page_in(request, "staff_login.html", lang, {"outbox_path": outbox})


ADMIN_SECTIONS = ("system", "security", "audit")


@router.get("/admin/{section}", response_class=HTMLResponse, include_in_schema=False)
def admin_page(request: Request, section: str, lang: LangQuery = "zh") -> HTMLResponse:
    """Administrator pages (系统/安全/审计管理员): each shows its tools to its own role only.

    The page is a shell like the staff page; its script asks ``/v1/auth/me`` for the
    caller's roles and each API route checks its own permission.
    """
    if section not in ADMIN_SECTIONS:
        raise NotFoundError(
            f"admin page {section!r} not found; expected one of {ADMIN_SECTIONS}", "页面不存在"
        )
    return render_page_in(request, "admin.html", lang, {"section": section})
