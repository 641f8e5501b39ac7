"""The permission dependency: authenticate the caller, check their role, log denials.

``require(Permission.X)`` is the only way a route declares its permission.
Unless the permission is PUBLIC it reads ``Authorization: Bearer <token>`` and,
for staff, ``X-Device-ID``, checks the token's server-side session through
:class:`api.security.identity.IdentityService`, and checks that one of the
account's roles grants the permission. It stores the caller in
``request.state.principal`` for the route. Every 401 and 403 it raises leaves
an operation-log record.
"""

import logging
from typing import Annotated, Any

import jwt
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.permissions import Permission, permissions_of
from api.security.audit import middleware_records, record_event
from api.security.identity import (
    AUDIENCES,
    AuthenticationError,
    DeviceNotBoundError,
    IdentityService,
    Principal,
    SessionInvalidError,
)
from geo.errors import DoorstepError
from store.identity import AccountKind

logger = logging.getLogger(__name__)

DEVICE_HEADER = "X-Device-ID"
# Maximum length of a device id that can be bound (the admin route's DeviceIn.device_id).
MAX_DEVICE_ID_CHARS = 128

_bearer = HTTPBearer(auto_error=False)


class PermissionDeniedError(DoorstepError, PermissionError):
    """A logged-in caller whose roles do not grant the route's permission."""

    def __init__(self, permission: Permission) -> None:
        super().__init__(f"your roles do not grant the permission {permission.value!r}")
        self.message_zh = "当前账号的角色无权执行此操作"


class PasswordChangeRequiredError(DoorstepError, PermissionError):
    """A staff password older than 90 days: only changing it is allowed."""

    def __init__(self) -> None:
        super().__init__("password is older than 90 days; change it with POST /v1/auth/password")
        self.message_zh = "密码已超过 90 天未修改，请先修改密码"


class MissingTokenError(SessionInvalidError):
    """A request without a bearer token to a route that needs one."""

    message_zh = "请先登录：缺少登录令牌"


def identity_service(request: Request) -> IdentityService:
    """Return the app's identity service, created in the lifespan."""
    service: IdentityService = request.app.state.identity
    return service


def token_kind(token: str) -> AccountKind:
    """Return the account kind a token's audience names, before its signature is checked.

    The kind only selects which audience :meth:`IdentityService.authenticate`
    then verifies, so a forged ``aud`` gains nothing.
    """
    try:
        audience = jwt.decode(token, options={"verify_signature": False}).get("aud")
    except jwt.InvalidTokenError as err:
        raise SessionInvalidError(f"token is invalid: {type(err).__name__}") from err
    for kind, name in AUDIENCES.items():
        if audience == name:
            return kind
    raise SessionInvalidError("token audience is not a doorstep account audience")


class RequirePermission:
    """The dependency behind :func:`require`; ``permission`` is read by the start-up check."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        # No max_length here: when this dependency fails validation, FastAPI still runs the
        # route's other dependencies without a principal. The length is checked in _authorise.
        device_id: Annotated[str | None, Header(alias=DEVICE_HEADER)] = None,
    ) -> Principal | None:
        if self.permission is Permission.PUBLIC:
            return None
        try:
            principal = self._authorise(request, credentials, device_id)
        except (AuthenticationError, DoorstepError) as err:
            _record_denial(request, self.permission, err)
            raise
        request.state.principal = principal
        return principal

    def _authorise(
        self,
        request: Request,
        credentials: HTTPAuthorizationCredentials | None,
        device_id: str | None,
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise MissingTokenError("missing bearer token")
        token = credentials.credentials
        if device_id is not None and len(device_id) > MAX_DEVICE_ID_CHARS:
            raise DeviceNotBoundError(
                f"{DEVICE_HEADER} has {len(device_id)} characters; a bound device id has at"
                f" most {MAX_DEVICE_ID_CHARS}"
            )
        principal = identity_service(request).authenticate(token, token_kind(token), device_id)
        request.state.principal = principal
        if self.permission not in permissions_of(principal.roles):
            raise PermissionDeniedError(self.permission)
        if principal.password_change_required and self.permission is not Permission.SESSION:
            raise PasswordChangeRequiredError()
        return principal


def require(permission: Permission) -> Any:
    """Return the dependency that declares and enforces ``permission`` on a route."""
    return Depends(RequirePermission(permission))


def _record_denial(request: Request, permission: Permission, err: Exception) -> None:
    if middleware_records(request):
        return  # the audit middleware records it with the write's own action and object
    principal: Principal | None = getattr(request.state, "principal", None)
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    logger.info("permission %s denied on %s: %s", permission.value, template, type(err).__name__)
    record_event(
        request,
        principal,
        action=f"permission.{permission.value}",
        object_id=f"{request.method} {template}",
        result="denied",
        status_code=403 if principal is not None else 401,
    )
