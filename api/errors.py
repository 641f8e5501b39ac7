"""The one table that maps domain errors to HTTP responses.

Error bodies follow FastAPI's validation shape, ``{"detail": [{"loc", "msg", "type"}]}``,
with ``msg`` in English and ``msg_zh`` in Chinese, so clients handle one format.
"""

import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from geo.errors import DoorstepError, InvalidCoordinateError, UnknownCoordSysError
from store.sqlite import LayerNotFoundError, StoreNotFoundError

logger = logging.getLogger(__name__)


class QueryLimitError(DoorstepError, ValueError):
    """A query parameter is over a configured limit or otherwise invalid."""

    def __init__(self, message: str, field: str, message_zh: str) -> None:
        super().__init__(message)
        self.field = field
        self.message_zh = message_zh


class NotFoundError(DoorstepError, LookupError):
    """A record addressed by id does not exist."""

    def __init__(self, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.message_zh = message_zh


_STATUS: list[tuple[type[DoorstepError], int, str]] = [
    (InvalidCoordinateError, status.HTTP_422_UNPROCESSABLE_CONTENT, "坐标无效"),
    (UnknownCoordSysError, status.HTTP_422_UNPROCESSABLE_CONTENT, "坐标系不受支持"),
    (QueryLimitError, status.HTTP_422_UNPROCESSABLE_CONTENT, "查询参数无效"),
    (NotFoundError, status.HTTP_404_NOT_FOUND, "未找到"),
    (LayerNotFoundError, status.HTTP_404_NOT_FOUND, "图层不存在"),
    (StoreNotFoundError, status.HTTP_503_SERVICE_UNAVAILABLE, "数据尚未构建"),
]


def install_error_handlers(app: FastAPI) -> None:
    """Register the domain-error handler on ``app``."""
    app.add_exception_handler(DoorstepError, _handle_domain_error)


async def _handle_domain_error(request: Request, error: Exception) -> JSONResponse:
    status_code, title_zh = _lookup(error)
    field = getattr(error, "field", None)
    message_zh = getattr(error, "message_zh", None) or f"{title_zh}：{error}"
    if status_code >= 500:
        logger.error("request %s failed: %s", request.url.path, error)
    body = {
        "detail": [
            {
                "loc": ["query", field] if field else ["path"],
                "msg": str(error),
                "msg_zh": message_zh,
                "type": type(error).__name__,
            }
        ]
    }
    return JSONResponse(status_code=status_code, content=body)


def _lookup(error: Exception) -> tuple[int, str]:
    for error_type, status_code, title_zh in _STATUS:
        if isinstance(error, error_type):
            return status_code, title_zh
    return status.HTTP_500_INTERNAL_SERVER_ERROR, "服务内部错误"
