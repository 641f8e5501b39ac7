"""The one table that maps domain errors to HTTP responses.

Error bodies follow FastAPI's validation shape, ``{"detail": [{"loc", "msg", "type"}]}``,
with ``msg`` in English and ``msg_zh`` in Chinese, so clients handle one format.
FastAPI's own request-validation errors get the same ``msg_zh`` treatment.
"""

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.auth import PasswordChangeRequiredError, PermissionDeniedError
from api.middleware import internal_error_message
from api.security.audit import request_id
from api.security.identity import (
    AccountLockedError,
    CodeRateLimitedError,
    DeviceNotBoundError,
    LoginFailedError,
    SessionInvalidError,
)
from api.security.passwords import PasswordPolicyError
from api.security.sms import SmsDeliveryError
from api.security.validation import PersonalFieldError
from geo.anchor_import import ImportRejectedError
from geo.anchor_rules import format_message_zh
from geo.anchor_states import InvalidTransitionError, OutOfScopeError
from geo.curation import AnchorValidationError, StaleVersionError
from geo.duplicates import InvalidMergeError
from geo.errors import (
    DoorstepError,
    InvalidCoordinateError,
    InvalidTravelModeError,
    UnknownCoordSysError,
)
from matching.assistance import LedgerConflictError, LedgerError
from matching.assistance_xlsx import WorkbookError
from matching.seeker_profile import ProfileFieldError
from store.assistance_store import (
    RecommendationNotFoundError,
    TargetNotFoundError,
    VisitNotFoundError,
)
from store.audit import AuditWriteError
from store.base import AnchorNotFoundError, DuplicateAnchorError, PostingNotFoundError
from store.identity import AccountExistsError, RoleConflictError
from store.seeker_accounts import ProfileConflictError
from store.sqlite import LayerNotFoundError, StoreNotFoundError
from store.sqlite_curation import StoreReplacedError

logger = logging.getLogger(__name__)


class QueryLimitError(DoorstepError, ValueError):
    """A query parameter or body field is over a configured limit or otherwise invalid.

    ``location`` is the first element of the error's ``loc``: ``query`` or ``body``.
    An empty ``field`` reports the whole location, as in ``["body"]``.
    """

    def __init__(
        self, message: str, field: str, message_zh: str, *, location: str = "query"
    ) -> None:
        super().__init__(message)
        self.field = field
        self.message_zh = message_zh
        self.location = location


class NotFoundError(DoorstepError, LookupError):
    """A record addressed by id does not exist."""

    def __init__(self, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.message_zh = message_zh


class ServiceUnavailableError(DoorstepError):
    """A part of the service that the request needs is not loaded in this process."""

    def __init__(self, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.message_zh = message_zh


class RateLimitedError(DoorstepError):
    """A client sent more requests in the current minute than the rate limit allows."""

    def __init__(self, limit_per_minute: int, retry_after_s: int) -> None:
        super().__init__(
            f"more than {limit_per_minute} requests per minute from this client address;"
            f" retry after {retry_after_s} s"
        )
        self.retry_after_s = retry_after_s
        self.message_zh = f"请求过于频繁，请在 {retry_after_s} 秒后重试"
        self.headers = {"Retry-After": str(retry_after_s)}


_STATUS: list[tuple[type[DoorstepError], int, str]] = [
    # Identity: the more specific classes come first, because the first match wins.
    (AccountLockedError, status.HTTP_423_LOCKED, "账号已锁定，请稍后再试"),
    (CodeRateLimitedError, status.HTTP_429_TOO_MANY_REQUESTS, "验证码发送过于频繁"),
    (DeviceNotBoundError, status.HTTP_403_FORBIDDEN, "设备未绑定到此账号"),
    (LoginFailedError, status.HTTP_401_UNAUTHORIZED, "账号或密码错误"),
    (SessionInvalidError, status.HTTP_401_UNAUTHORIZED, "登录已失效，请重新登录"),
    (PermissionDeniedError, status.HTTP_403_FORBIDDEN, "无权执行此操作"),
    (PasswordChangeRequiredError, status.HTTP_403_FORBIDDEN, "请先修改密码"),
    (PasswordPolicyError, status.HTTP_422_UNPROCESSABLE_CONTENT, "密码不符合复杂度要求"),
    (PersonalFieldError, status.HTTP_422_UNPROCESSABLE_CONTENT, "个人信息格式无效"),
    (ProfileFieldError, status.HTTP_422_UNPROCESSABLE_CONTENT, "求职者资料无效"),
    (ProfileConflictError, status.HTTP_409_CONFLICT, "该账号或求职者资料已与其他账号关联"),
    (RoleConflictError, status.HTTP_409_CONFLICT, "三类管理员角色不能由同一账号兼任"),
    (AccountExistsError, status.HTTP_409_CONFLICT, "登录名或手机号码已被其他账号使用"),
    (InvalidCoordinateError, status.HTTP_422_UNPROCESSABLE_CONTENT, "坐标无效"),
    (UnknownCoordSysError, status.HTTP_422_UNPROCESSABLE_CONTENT, "坐标系不受支持"),
    (InvalidTravelModeError, status.HTTP_422_UNPROCESSABLE_CONTENT, "出行方式无效"),
    (QueryLimitError, status.HTTP_422_UNPROCESSABLE_CONTENT, "查询参数无效"),
    (NotFoundError, status.HTTP_404_NOT_FOUND, "未找到"),
    (RateLimitedError, status.HTTP_429_TOO_MANY_REQUESTS, "请求过于频繁"),
    (ServiceUnavailableError, status.HTTP_503_SERVICE_UNAVAILABLE, "服务暂不可用"),
    (LayerNotFoundError, status.HTTP_404_NOT_FOUND, "图层不存在"),
    # Curation: another organisation's anchor is reported as not found, not forbidden.
    (OutOfScopeError, status.HTTP_404_NOT_FOUND, "未找到"),
    (AnchorNotFoundError, status.HTTP_404_NOT_FOUND, "锚点不存在"),
    (PostingNotFoundError, status.HTTP_404_NOT_FOUND, "岗位不存在"),
    (StaleVersionError, status.HTTP_409_CONFLICT, "锚点已被他人修改，请刷新后重试"),
    (DuplicateAnchorError, status.HTTP_409_CONFLICT, "统一社会信用代码已被其他锚点使用"),
    (AnchorValidationError, status.HTTP_422_UNPROCESSABLE_CONTENT, "锚点修改无效"),
    (InvalidTransitionError, status.HTTP_422_UNPROCESSABLE_CONTENT, "锚点状态变更无效"),
    (InvalidMergeError, status.HTTP_422_UNPROCESSABLE_CONTENT, "合并请求无效"),
    (ImportRejectedError, status.HTTP_422_UNPROCESSABLE_CONTENT, "导入文件无效"),
    # The 131 ledger of assistance officers.
    (LedgerConflictError, status.HTTP_409_CONFLICT, "岗位名额已满，请选择其他岗位"),
    (LedgerError, status.HTTP_422_UNPROCESSABLE_CONTENT, "不符合131台账规则"),
    (WorkbookError, status.HTTP_422_UNPROCESSABLE_CONTENT, "Excel 文件无效"),
    (TargetNotFoundError, status.HTTP_404_NOT_FOUND, "未找到该援助对象"),
    (RecommendationNotFoundError, status.HTTP_404_NOT_FOUND, "未找到该推荐记录"),
    (VisitNotFoundError, status.HTTP_404_NOT_FOUND, "未找到该回访"),
    # The write's audit record failed, so the write was rolled back: retrying is safe.
    (
        AuditWriteError,
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "操作日志暂不可用，操作未执行，请稍后重试",
    ),
    # The SMS gateway did not accept a login code; the stored code expires unused.
    (
        SmsDeliveryError,
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "短信发送失败，请稍后重试或改用动态口令登录",
    ),
    # A rebuild swapped the store file while a curation write waited: retrying is safe.
    (StoreReplacedError, status.HTTP_503_SERVICE_UNAVAILABLE, "数据正在重建，请稍后重试"),
    (
        StoreNotFoundError,
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "数据尚未构建，请先运行 doorstep build",
    ),
]

# English messages of 5xx errors. Their own text may name files, hosts or driver errors,
# which go to the log only. ServiceUnavailableError keeps its text, written for clients.
_SERVER_ERROR_MESSAGES: list[tuple[type[DoorstepError], str]] = [
    (AuditWriteError, "the operation log is unavailable, so nothing was changed; retry later"),
    (StoreReplacedError, "the data is being rebuilt, so nothing was changed; retry later"),
    (StoreNotFoundError, "the store has not been built; run doorstep build"),
    (SmsDeliveryError, "the SMS gateway did not accept the code; retry later or use TOTP"),
]

# Chinese names of query and path parameters, for validation messages.
PARAMETER_LABELS_ZH: dict[str, str] = {
    "lon": "经度 lon",
    "lat": "纬度 lat",
    "coord_sys": "坐标系 coord_sys",
    "radius_m": "搜索半径 radius_m",
    "page": "页码 page",
    "page_size": "每页条数 page_size",
    "limit": "条数 limit",
    "offset": "偏移量 offset",
    "lang": "语言 lang",
    "bbox": "范围 bbox",
    "name": "图层名称",
    "seeker_id": "求职者编号",
    "group": "求职者类别 group",
    "include_city": "include_city",
    "from": "起点 from",
    "to": "终点 to",
    "modes": "出行方式 modes",
}

# Chinese templates for pydantic's error types; {label} is the parameter's name.
VALIDATION_MESSAGES_ZH: dict[str, str] = {
    "missing": "缺少必填参数 {label}",
    "int_parsing": "{label} 须为整数",
    "int_from_float": "{label} 须为整数",
    "float_parsing": "{label} 须为数字",
    "bool_parsing": "{label} 须为 true 或 false",
    "finite_number": "{label} 须为有限数值",
    "greater_than": "{label} 须大于 {gt}",
    "greater_than_equal": "{label} 须大于或等于 {ge}",
    "less_than": "{label} 须小于 {lt}",
    "less_than_equal": "{label} 须小于或等于 {le}",
    "string_too_long": "{label} 不能超过 {max_length} 个字符",
    "string_too_short": "{label} 至少需要 {min_length} 个字符",
    "string_pattern_mismatch": "{label} 的格式无效",
    "literal_error": "{label} 的取值无效，可选值为 {expected}",
    "enum": "{label} 的取值无效，可选值为 {expected}",
    "extra_forbidden": "不接受字段 {label}",
}

# Error types about a name that the client sent and the route does not define. Their label
# is the sent name itself, because a parameter label such as name → 图层名称 would name
# another field.
_UNKNOWN_NAME_TYPES = frozenset({"extra_forbidden"})


@contextmanager
def fields_in_body() -> Iterator[None]:
    """Report the field of a domain error raised inside the block as a body field.

    Domain errors name a field but not where the request carried it, so the handler
    assumes the query string. Routes whose input is a JSON body wrap their checks in this.
    """
    try:
        yield
    except DoorstepError as err:
        if getattr(err, "field", None) and getattr(err, "location", None) is None:
            err.location = "body"  # type: ignore[attr-defined]
        raise


def install_error_handlers(app: FastAPI) -> None:
    """Register the domain-error and request-validation handlers on ``app``."""
    app.add_exception_handler(DoorstepError, _handle_domain_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)


def chinese_message(error: DoorstepError, title_zh: str) -> str:
    """Return the Chinese message of a domain error: its own, its rule's, or the title."""
    own = getattr(error, "message_zh", None)
    if own:
        return str(own)
    rule = getattr(error, "rule", None)
    if rule:
        field = str(getattr(error, "field", ""))
        params = dict(getattr(error, "rule_params", {}) or {})
        try:
            return format_message_zh(str(rule), field=field, **params)
        except KeyError:
            logger.warning("no zh-CN message for rule %r with params %s", rule, sorted(params))
    return title_zh


async def _handle_domain_error(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, DoorstepError):
        # Registered for DoorstepError only; anything else is the catch-all's 500.
        raise error
    status_code, title_zh = _lookup(error)
    field = getattr(error, "field", None)
    location = getattr(error, "location", None)
    detail: dict[str, Any] = {
        "loc": _error_location(location, field),
        "msg": str(error),
        "msg_zh": chinese_message(error, title_zh),
        "type": type(error).__name__,
    }
    if status_code >= 500:
        detail.update(_server_error_detail(request, error, status_code))
    if isinstance(error, OutOfScopeError):
        # The operation log records the denial that the response hides.
        request.state.audit_result = "denied"
        # Another organisation's record must look exactly like a missing one.
        detail.update(loc=["path"], msg="not found", msg_zh=title_zh, type="NotFoundError")
    if isinstance(error, ProfileFieldError):
        detail["loc"] = ["body", *error.field.split(".")]
    if isinstance(error, StaleVersionError):
        detail["current_version"] = error.current_version
    if isinstance(error, AnchorValidationError):
        detail["loc"] = ["body"]
        detail["errors"] = [
            {"field": item.field, "rule": item.rule, "msg": item.message, "msg_zh": item.message_zh}
            for item in error.errors
        ]
    body = {"detail": [detail]}
    headers: dict[str, str] | None = getattr(error, "headers", None)
    if isinstance(error, CodeRateLimitedError | AccountLockedError):
        headers = {"Retry-After": str(error.retry_after_s)}
    if status_code == status.HTTP_401_UNAUTHORIZED:
        headers = {"WWW-Authenticate": "Bearer"}
    return JSONResponse(status_code=status_code, content=body, headers=headers)


def _error_location(location: str | None, field: str | None) -> list[str]:
    """Return the ``loc`` of a domain error; an error without either names the path."""
    if field:
        return [location or "query", field]
    return [location] if location else ["path"]


def _server_error_detail(
    request: Request, error: DoorstepError, status_code: int
) -> dict[str, Any]:
    """Return the message fields of a 5xx domain error, which never quote its text."""
    rid = request_id(request)
    logger.error(
        "request %s %s failed with %s: %s", rid, request.url.path, type(error).__name__, error
    )
    if isinstance(error, ServiceUnavailableError):
        return {"request_id": rid}
    if status_code == status.HTTP_500_INTERNAL_SERVER_ERROR:
        message, message_zh = internal_error_message(rid)
        return {"msg": message, "msg_zh": message_zh, "request_id": rid}
    for error_type, message in _SERVER_ERROR_MESSAGES:
        if isinstance(error, error_type):
            return {"msg": message, "request_id": rid}
    return {"msg": "service unavailable; retry later", "request_id": rid}


async def _handle_validation_error(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, RequestValidationError):
        raise error
    details = [_validation_detail(item) for item in error.errors()]
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": details}
    )


def _field_name(location: Sequence[Any]) -> str:
    """Return the field an error is about; a list item's index is skipped for its list."""
    names = [str(part) for part in location if not isinstance(part, int)]
    return names[-1] if names else ""


def _label(location: Sequence[Any], name: str) -> str:
    """Return the Chinese label of a query or path parameter, else the field name itself.

    The labels name query and path parameters; a body field of the same name (a
    person's ``name``, say) is another thing.
    """
    if location and location[0] in ("query", "path"):
        return PARAMETER_LABELS_ZH.get(name, name)
    return name


def _validation_detail(item: Mapping[str, Any]) -> dict[str, Any]:
    location: Sequence[Any] = item.get("loc", ())
    name = _field_name(location)
    error_type = str(item.get("type"))
    label = name if error_type in _UNKNOWN_NAME_TYPES else _label(location, name)
    context = {key: str(value) for key, value in (item.get("ctx") or {}).items()}
    template = VALIDATION_MESSAGES_ZH.get(error_type, "{label} 无效")
    try:
        message_zh = template.format(label=label, **context)
    except KeyError:
        message_zh = f"{label} 无效"
    # The rejected input is left out on purpose: a validation error never echoes it.
    return {
        "loc": list(location),
        "msg": str(item.get("msg", "")),
        "msg_zh": message_zh,
        "type": str(item.get("type", "")),
    }


def _lookup(error: Exception) -> tuple[int, str]:
    for error_type, status_code, title_zh in _STATUS:
        if isinstance(error, error_type):
            return status_code, title_zh
    return status.HTTP_500_INTERNAL_SERVER_ERROR, "服务内部错误"
