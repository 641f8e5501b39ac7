"""Operation-log records of HTTP requests, and the X-Request-ID header.

Every write route listed in :data:`AUDITED_ROUTES` leaves exactly one record:

- A write that reaches the store passes the record lent by
  :func:`recorded_write` to the store method, which appends it in the
  write's own transaction.
- Every other outcome (401, 404 of a missing or another organisation's
  anchor, 409, 422, a dry-run import, a 5xx) is recorded by
  :func:`audit_middleware` after the response, with the response status.

When the middleware cannot store its record, it logs the error and replaces
the response with 503, so no audited request completes without a record.
"""

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response, status
from fastapi.responses import JSONResponse

from api.staff_auth import STATION_STAFF_ROLE, StaffContext
from store.audit import AuditChain, AuditEntry, AuditLog, AuditResult, AuditWrite, AuditWriteError

if TYPE_CHECKING:
    from api.security.identity import Principal

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# A client's request id is kept when it is 1-128 characters of this set, else replaced.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

ANONYMOUS = "anonymous"

AUDITED_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/staff/anchors"): "anchor.create",
    ("PATCH", "/v1/staff/anchors/{anchor_id}"): "anchor.update",
    ("POST", "/v1/staff/anchors/merge"): "anchor.merge",
    ("POST", "/v1/staff/imports"): "anchor.import",
    ("POST", "/v1/staff/seekers/lookup"): "seeker.lookup",
    ("PATCH", "/v1/staff/postings/{posting_id}"): "posting.update",
}
"""Audited routes by method and path template, with their action names.

``anchor.update`` covers state transitions, which are edits of the state field.
"""

# Writes under this prefix that the table above lacks are recorded as this action.
_STAFF_PREFIX = "/v1/staff/"
_UNLISTED_ACTION = "staff.write"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def install_audit(app: FastAPI) -> None:
    """Add the request-id and operation-log middleware to ``app``."""
    app.middleware("http")(audit_middleware)


def request_id(request: Request) -> str:
    """Return the request's id: the client's X-Request-ID when well formed, else a new UUID."""
    known: str | None = getattr(request.state, "request_id", None)
    if known is None:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        known = offered if _REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        request.state.request_id = known
    return known


@contextmanager
def recorded_write(
    request: Request,
    staff: StaffContext,
    action: str,
    object_id: str,
    *,
    status_code: int = status.HTTP_200_OK,
) -> Iterator[AuditWrite]:
    """Lend the record of a write, to pass to the store method that performs it.

    The store appends the record in the write's transaction. When the block
    ends without an exception the request is marked as recorded, so the
    middleware adds no second record. When it raises, the store rolled the
    record back with the write, and the middleware records the failure.
    """
    entry = _entry(request, staff, action, object_id, "ok", status_code)
    yield AuditWrite(entry, _chain(request))
    request.state.audit_recorded = True


async def audit_middleware(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Assign the request id, and record audited requests that no store write recorded."""
    rid = request_id(request)
    response = await call_next(request)
    response.headers[REQUEST_ID_HEADER] = rid

    action = _audited_action(request)
    if action is None or getattr(request.state, "audit_recorded", False):
        return response
    staff: StaffContext | None = getattr(request.state, "staff", None)
    result = getattr(request.state, "audit_result", None) or _result(response.status_code)
    entry = _entry(request, staff, action, _object_id(request), result, response.status_code)
    store = request.app.state.store
    try:
        if not isinstance(store, AuditLog):
            raise AuditWriteError(f"store {type(store).__name__} has no operation log")
        store.append_audit(AuditWrite(entry, _chain(request)))
    except AuditWriteError as err:
        logger.error("request %s: audit record of %s not stored: %s", rid, action, err)
        return _audit_unavailable(rid)
    return response


def middleware_records(request: Request) -> bool:
    """Return whether :func:`audit_middleware` records this request's outcome itself."""
    return _audited_action(request) is not None


def _audited_action(request: Request) -> str | None:
    if request.method in _READ_METHODS or not request.url.path.startswith(_STAFF_PREFIX):
        return None
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    return AUDITED_ROUTES.get((request.method, template), _UNLISTED_ACTION)


def _object_id(request: Request) -> str:
    anchor_id = request.scope.get("path_params", {}).get("anchor_id")
    return "" if anchor_id is None else f"anchor:{anchor_id}"


def _result(status_code: int) -> AuditResult:
    if status_code < 400:
        return "ok"
    if status_code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN):
        return "denied"
    if status_code == status.HTTP_409_CONFLICT:
        return "conflict"
    if status_code < 500:
        return "rejected"
    return "failed"


def _entry(
    request: Request,
    staff: StaffContext | None,
    action: str,
    object_id: str,
    result: AuditResult,
    status_code: int,
) -> AuditEntry:
    return AuditEntry(
        at=datetime.now(UTC),
        actor=ANONYMOUS if staff is None else staff.staff_id,
        role="" if staff is None else STATION_STAFF_ROLE,
        org="" if staff is None else staff.org,
        action=action,
        object_id=object_id,
        result=result,
        status_code=status_code,
        source=request.client.host if request.client else "unknown",
        request_id=request_id(request),
    )


def _chain(request: Request) -> AuditChain:
    chain: AuditChain = request.app.state.audit_chain
    return chain


def _audit_unavailable(rid: str) -> JSONResponse:
    detail = {
        "loc": [],
        "msg": "the operation log is unavailable, so the request was not recorded; retry later",
        "msg_zh": "操作日志暂不可用，请稍后重试",
        "type": "AuditWriteError",
    }
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": [detail]},
        headers={REQUEST_ID_HEADER: rid},
    )


def record_event(
    request: Request,
    principal: "Principal | None",
    *,
    action: str,
    object_id: str,
    result: AuditResult,
    status_code: int,
    actor: str | None = None,
) -> None:
    """Append one operation-log record of an identity event (login, logout, denial).

    ``actor`` names the caller when no session exists yet, such as a staff login
    name on a failed login; it must never be a personal field in plaintext.

    Raises
    ------
    AuditWriteError
        The record could not be stored; the caller's request must fail with 503.
    """
    entry = _principal_entry(request, principal, action, object_id, result, status_code, actor)
    store = request.app.state.store
    if not isinstance(store, AuditLog):
        raise AuditWriteError(f"store {type(store).__name__} has no operation log")
    store.append_audit(AuditWrite(entry, _chain(request)))


def principal_write(
    request: Request, action: str, object_id: str, *, status_code: int = status.HTTP_200_OK
) -> AuditWrite:
    """Return the ``ok`` record of the request's logged-in caller, for a store write to append."""
    principal: Principal | None = getattr(request.state, "principal", None)
    entry = _principal_entry(request, principal, action, object_id, "ok", status_code, None)
    return AuditWrite(entry, _chain(request))


def _principal_entry(
    request: Request,
    principal: "Principal | None",
    action: str,
    object_id: str,
    result: AuditResult,
    status_code: int,
    actor: str | None,
) -> AuditEntry:
    account = None if principal is None else principal.account
    return AuditEntry(
        at=datetime.now(UTC),
        actor=account.account_id if account is not None else (actor or ANONYMOUS),
        role="" if account is None else ",".join(sorted(role.value for role in account.roles)),
        org="" if account is None else (account.org_id or ""),
        action=action,
        object_id=object_id,
        result=result,
        status_code=status_code,
        source=request.client.host if request.client else "unknown",
        request_id=request_id(request),
    )
