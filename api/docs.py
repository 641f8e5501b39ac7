"""The OpenAPI documentation page, served with Swagger UI from the service itself.

FastAPI's built-in ``/docs`` and ``/redoc`` load their scripts, styles and fonts from
public CDNs, which a bureau intranet cannot reach and which the pages must not contact.
This page uses ``swagger-ui-dist`` installed by ``npm ci`` instead.
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.auth import require
from api.pages import MissingAssetsError
from api.permissions import Permission

SWAGGER_PREFIX = "/assets/swagger-ui"


def mount_api_docs(app: FastAPI, repo_root: Path) -> None:
    """Serve Swagger UI's files and the ``/docs`` page; raise when ``npm ci`` has not run."""
    folder = repo_root / "node_modules" / "swagger-ui-dist"
    if not (folder / "swagger-ui-bundle.js").is_file():
        raise MissingAssetsError(
            f"{folder / 'swagger-ui-bundle.js'} is missing; run `npm ci` (or `make run`)"
        )
    app.mount(SWAGGER_PREFIX, StaticFiles(directory=folder), name="swagger-ui")

    @app.get("/docs", include_in_schema=False, dependencies=[require(Permission.PUBLIC)])
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} · API",
            swagger_js_url=f"{SWAGGER_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_PREFIX}/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )
