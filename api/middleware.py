"""HTTP guards around every route: security headers, CORS, body size limit and the 500 handler.

:func:`install_middleware` adds them in this order, outermost first:

1. Security headers, so every response carries them, error responses included.
2. CORS, only when ``DOORSTEP_CORS_ALLOW_ORIGINS`` lists origins.
3. The request id and operation log (:mod:`api.security.audit`).
4. The body size limit, which rejects a body with 413 before it is read into memory.
5. The catch-all, which turns an unhandled exception into a 500 that names the
   request id and logs the exception. No response carries a traceback or the
   exception's text.

All three are plain ASGI middleware, so a streamed body passes through them chunk
by chunk and is never buffered whole.
"""

import logging

from fastapi import FastAPI, Request, status
from fastapi.exceptions import HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.security.audit import REQUEST_ID_HEADER, install_audit, request_id
from api.settings import HttpSettings, ServerSettings, Settings
from api.tiles import tile_origin as tile_origin
from api.tiles import tile_source

logger = logging.getLogger(__name__)

# The route whose body carries an anchor import file, allowed max_import_body_bytes.
IMPORT_PATH = "/v1/staff/imports"

# Browser features no page uses; the header turns them off for this origin and its frames.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "camera",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
)

CORS_METHODS = ["GET", "POST", "PATCH", "DELETE"]
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Device-ID",
    REQUEST_ID_HEADER,
]
CORS_EXPOSED_HEADERS = [REQUEST_ID_HEADER, "Retry-After", "Idempotent-Replayed"]
CORS_MAX_AGE_S = 600


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Add the HTTP guards and the operation-log middleware to ``app`` in their order.

    Starlette runs the middleware added last first, so they are added innermost first.
    """
    app.add_middleware(InternalErrorMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.http.max_body_bytes,
        import_max_bytes=settings.http.max_import_body_bytes,
    )
    install_audit(app)
    if settings.http.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.http.cors_allow_origins,
            allow_credentials=settings.http.cors_allow_credentials,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=CORS_MAX_AGE_S,
        )
    app.add_middleware(SecurityHeadersMiddleware, headers=security_headers(settings))


# Security headers


def content_security_policy(server: ServerSettings, http: HttpSettings | None = None) -> str:
    """Build the Content-Security-Policy header that every response carries.

    Scripts, styles, fetches and fonts come from the service itself, with no inline
    script or style. Images may also come from the tile host when a tile source is
    configured. Leaflet positions elements through the ``style`` property, which
    CSP does not restrict, so it needs no ``'unsafe-inline'``.
    """
    http = http or HttpSettings()
    img_sources = ["'self'", "data:"]
    origin = tile_source(server).csp_origin
    if origin:
        img_sources.append(origin)

    directives = [
        "default-src 'self'",
        f"img-src {' '.join(img_sources)}",
        "style-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        f"frame-ancestors {http.frame_ancestors}",
    ]
    return "; ".join(directives)


def security_headers(settings: Settings) -> list[tuple[str, str]]:
    """Return the headers set on every response; HSTS only in production."""
    headers = [
        ("Content-Security-Policy", content_security_policy(settings.server, settings.http)),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("Permissions-Policy", PERMISSIONS_POLICY),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Cross-Origin-Resource-Policy", "same-origin"),
    ]
    # Older browsers ignore frame-ancestors, and X-Frame-Options can express only these two.
    legacy_frame = {"'none'": "DENY", "'self'": "SAMEORIGIN"}.get(settings.http.frame_ancestors)
    if legacy_frame:
        headers.append(("X-Frame-Options", legacy_frame))
    if settings.auth.environment == "production":
        max_age = settings.http.hsts_max_age_s
        headers.append(("Strict-Transport-Security", f"max-age={max_age}; includeSubDomains"))
    return headers


class SecurityHeadersMiddleware:
    """Set ``headers`` on every HTTP response, replacing a value a route may have set."""

    def __init__(self, app: ASGIApp, headers: list[tuple[str, str]]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    response_headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Body size limit


class RequestTooLargeError(HTTPException):
    """A request body over the limit of its route, rejected with 413."""

    def __init__(self, max_bytes: int) -> None:
        detail = [
            {
                "loc": ["body"],
                "msg": f"request body is larger than {max_bytes} bytes; send a smaller body",
                "msg_zh": f"请求内容过大，不能超过 {_size_text(max_bytes)}，请减小后重试",
                "type": "RequestTooLargeError",
            }
        ]
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, detail=detail)


def _size_text(n_bytes: int) -> str:
    if n_bytes % (1024 * 1024) == 0:
        return f"{n_bytes // (1024 * 1024)} MiB"
    if n_bytes % 1024 == 0:
        return f"{n_bytes // 1024} KiB"
    return f"{n_bytes} 字节"


class BodyLimitMiddleware:
    """Reject a body over ``max_bytes`` (``import_max_bytes`` on the import route) with 413.

    A declared ``Content-Length`` over the limit is rejected before the app runs. A
    chunked body, or one longer than declared, is counted as the app receives it,
    and the chunk that crosses the limit raises :class:`RequestTooLargeError`, so at
    most the limit plus one chunk is ever held in memory.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, import_max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.import_max_bytes = import_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.import_max_bytes if scope["path"] == IMPORT_PATH else self.max_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            logger.info(
                "%s %s rejected with 413: Content-Length %d > %d bytes",
                scope["method"], scope["path"], declared, limit,
            )  # fmt: skip
            await _too_large_response(limit)(scope, receive, send)
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    logger.info(
                        "%s %s rejected with 413: body passed %d bytes while streaming",
                        scope["method"], scope["path"], limit,
                    )  # fmt: skip
                    raise RequestTooLargeError(limit)
            return message

        tracked = _StartTrackingSend(send)
        try:
            await self.app(scope, counting_receive, tracked)
        except RequestTooLargeError:
            # Raised where no exception handler caught it, such as in a streaming read.
            if tracked.started:
                raise
            await _too_large_response(limit)(scope, receive, send)


class _StartTrackingSend:
    """An ASGI ``send`` that records whether the response has started."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self.send(message)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def _too_large_response(limit: int) -> JSONResponse:
    error = RequestTooLargeError(limit)
    return JSONResponse(status_code=error.status_code, content={"detail": error.detail})


# Catch-all 500


class InternalErrorMiddleware:
    """Turn an unhandled exception into a 500 with a zh/en message and the request id.

    The exception and its traceback go to the log under the request id, never into
    the response. When the response had already started, the exception is re-raised
    so the server closes the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = _StartTrackingSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception:
            rid = request_id(Request(scope))
            logger.exception(
                "request %s: %s %s failed with an unhandled exception",
                rid,
                scope.get("method"),
                scope.get("path"),
            )
            if tracked.started:
                raise
            await internal_error_response(rid)(scope, receive, send)


def internal_error_message(rid: str) -> tuple[str, str]:
    """Return the English and Chinese message of a 500 for request ``rid``."""
    return (
        f"internal server error; quote request id {rid} when reporting it",
        f"服务内部错误，请稍后重试。报告问题时请提供请求编号 {rid}",
    )


def internal_error_response(rid: str) -> JSONResponse:
    """Return the 500 response that names request ``rid`` and nothing about the failure."""
    message, message_zh = internal_error_message(rid)
    detail = {
        "loc": [],
        "msg": message,
        "msg_zh": message_zh,
        "type": "InternalServerError",
        "request_id": rid,
    }
    return JSONResponse(
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        content={"detail": [detail]},
        headers={REQUEST_ID_HEADER: rid},
    )
