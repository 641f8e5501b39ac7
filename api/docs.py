"""The OpenAPI schema and its documentation page, served with Swagger UI from the service.

FastAPI's built-in ``/docs`` and ``/redoc`` load their scripts, styles and fonts from
public CDNs, which a bureau intranet cannot reach and which the pages must not contact,
and start Swagger UI with an inline script that the Content-Security-Policy forbids.
This page uses ``swagger-ui-dist`` installed by ``npm ci`` and ``api/static/api-docs.js``
instead. ``/redoc`` is not served.

In production ``/openapi.json`` needs the ``api.docs`` permission of a staff session.
``/docs`` itself is then an empty page whose script requests the schema with the
session token that the staff login page left in the browser tab.
"""

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from api.auth import require
from api.pages import MissingAssetsError, templates
from api.permissions import Permission
from api.settings import Settings

SWAGGER_PREFIX = "/assets/swagger-ui"
OPENAPI_URL = "/openapi.json"


def docs_permission(settings: Settings) -> Permission:
    """Return the permission of the schema: ``api.docs`` in production, public otherwise."""
    if settings.auth.environment == "production":
        return Permission.API_DOCS
    return Permission.PUBLIC


def mount_api_docs(app: FastAPI, repo_root: Path, settings: Settings) -> None:
    """Serve Swagger UI's files, ``/openapi.json`` and ``/docs``; raise when ``npm ci`` has not run.

    ``app`` must be created with ``openapi_url=None``, so that FastAPI's own schema
    route, which no permission guards, is absent.
    """
    folder = repo_root / "node_modules" / "swagger-ui-dist"
    if not (folder / "swagger-ui-bundle.js").is_file():
        raise MissingAssetsError(
            f"{folder / 'swagger-ui-bundle.js'} is missing; run `npm ci` (or `make run`)"
        )
    app.mount(SWAGGER_PREFIX, StaticFiles(directory=folder), name="swagger-ui")
    permission = docs_permission(settings)

    @app.get(OPENAPI_URL, include_in_schema=False, dependencies=[require(permission)])
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[require(Permission.PUBLIC)])
    def docs(request: Request) -> HTMLResponse:
        docs_config: dict[str, Any] = {
            "openapi_url": OPENAPI_URL,
            "login_required": permission is not Permission.PUBLIC,
        }
        context = {
            "title": f"{app.title} · API",
            "swagger_prefix": SWAGGER_PREFIX,
            "docs_config": docs_config,
        }
        return templates.TemplateResponse(request, "api_docs.html", context)
