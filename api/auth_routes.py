"""Login, logout and account administration routes (``/v1/auth``, ``/v1/admin``, ``/v1/audit``).

Every login success and failure, lockout, logout and administrator action
leaves an operation-log record; denials are recorded by :func:`api.auth.require`.
"""

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, Field

from api.auth import identity_service, require
from api.errors import NotFoundError
from api.permissions import Permission
from api.security.audit import record_event
from api.security.identity import (
    AccountLockedError,
    AuthenticationError,
    IdentityService,
    IssuedToken,
    Principal,
)
from api.security.masking import mask_name
from api.seeker_accounts import link_on_login
from store.audit import AuditLog, AuditResult
from store.identity import Account

router = APIRouter(tags=["identity"])

IdentityDep = Annotated[IdentityService, Depends(identity_service)]


class LoginIn(BaseModel):
    """Staff login name and password."""

    login: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


class ChallengeOut(BaseModel):
    """The second-factor challenge: send it back with the code to ``/v1/auth/verify``."""

    challenge: str
    second_factor: str


class VerifyIn(BaseModel):
    """The challenge, the SMS or TOTP code and the bound device."""

    challenge: str = Field(min_length=1, max_length=2048)
    code: str = Field(pattern=r"^[0-9]{6}$")
    device_id: str = Field(min_length=1, max_length=128)


class TokenOut(BaseModel):
    """An access token tied to a server-side session."""

    token: str
    expires_at: datetime
    password_change_required: bool


class SeekerCodeIn(BaseModel):
    """A seeker's mobile number."""

    mobile: str = Field(min_length=11, max_length=20)


class SeekerVerifyIn(BaseModel):
    """A seeker's mobile number and the SMS code sent to it."""

    mobile: str = Field(min_length=11, max_length=20)
    code: str = Field(pattern=r"^[0-9]{6}$")


class PasswordIn(BaseModel):
    """The current and the new password."""

    current: str = Field(min_length=1, max_length=128)
    new: str = Field(min_length=1, max_length=128)


class AccountOut(BaseModel):
    """An account with its name masked."""

    account_id: str
    kind: str
    login: str
    name_masked: str
    org_id: str | None
    roles: list[str]
    locked_until: datetime | None


class LockIn(BaseModel):
    """How long to lock an account."""

    minutes: int = Field(ge=1, le=60 * 24 * 365)


class DeviceIn(BaseModel):
    """A device to bind to an account."""

    device_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    label: str = Field(default="", max_length=64)


class AuditRecordOut(BaseModel):
    """One operation-log record."""

    seq: int
    at: datetime
    actor: str
    role: str
    org: str
    action: str
    object_id: str
    result: str
    status_code: int


def _token_out(issued: IssuedToken) -> TokenOut:
    return TokenOut(
        token=issued.token,
        expires_at=issued.expires_at,
        password_change_required=issued.password_change_required,
    )


def _audit_failure(request: Request, action: str, actor: str, err: AuthenticationError) -> None:
    result: AuditResult = "denied"
    code = status.HTTP_423_LOCKED if isinstance(err, AccountLockedError) else 401
    event = "auth.lockout" if isinstance(err, AccountLockedError) else action
    record_event(request, None, action=event, object_id="", result=result, status_code=code,
                 actor=actor)  # fmt: skip


@router.post(
    "/v1/auth/login", response_model=ChallengeOut, dependencies=[require(Permission.PUBLIC)]
)
def login(body: LoginIn, request: Request, identity: IdentityDep) -> ChallengeOut:
    """Check a staff password and send the second-factor challenge."""
    try:
        challenge = identity.start_staff_login(body.login, body.password)
    except AuthenticationError as err:
        _audit_failure(request, "auth.login", f"login:{body.login}", err)
        raise
    record_event(request, None, action="auth.password_ok", object_id="", result="ok",
                 status_code=200, actor=f"login:{body.login}")  # fmt: skip
    return ChallengeOut(challenge=challenge.token, second_factor=challenge.second_factor)


@router.post("/v1/auth/verify", response_model=TokenOut, dependencies=[require(Permission.PUBLIC)])
def verify(body: VerifyIn, request: Request, identity: IdentityDep) -> TokenOut:
    """Check the second factor and device, and open a session."""
    try:
        issued = identity.finish_staff_login(body.challenge, body.code, body.device_id)
    except AuthenticationError as err:
        _audit_failure(request, "auth.login", "challenge", err)
        raise
    principal = identity.authenticate(issued.token, "staff", body.device_id)
    record_event(request, principal, action="auth.login", object_id=issued.session_id,
                 result="ok", status_code=200)  # fmt: skip
    return _token_out(issued)


@router.post(
    "/v1/auth/seeker/code",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[require(Permission.PUBLIC)],
)
def seeker_code(body: SeekerCodeIn, identity: IdentityDep) -> Response:
    """Send a login code to a seeker's mobile (one per minute per mobile, else 429)."""
    identity.request_seeker_code(body.mobile)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.post(
    "/v1/auth/seeker/verify", response_model=TokenOut, dependencies=[require(Permission.PUBLIC)]
)
def seeker_verify(body: SeekerVerifyIn, request: Request, identity: IdentityDep) -> TokenOut:
    """Check a seeker's SMS code and open a session."""
    try:
        issued = identity.finish_seeker_login(body.mobile, body.code)
    except AuthenticationError as err:
        _audit_failure(request, "auth.seeker_login", "seeker", err)
        raise
    principal = identity.authenticate(issued.token, "seeker", None)
    record_event(request, principal, action="auth.seeker_login", object_id=issued.session_id,
                 result="ok", status_code=200)  # fmt: skip
    link_on_login(request, principal.account)
    return _token_out(issued)


def _principal(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


PrincipalDep = Annotated[Principal, Depends(_principal)]


@router.post(
    "/v1/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[require(Permission.SESSION)],
)
def logout(request: Request, principal: PrincipalDep, identity: IdentityDep) -> Response:
    """End the caller's session at once."""
    identity.logout(principal.session.session_id)
    record_event(request, principal, action="auth.logout", object_id=principal.session.session_id,
                 result="ok", status_code=204)  # fmt: skip
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/auth/password",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[require(Permission.SESSION)],
)
def change_password(
    body: PasswordIn, request: Request, principal: PrincipalDep, identity: IdentityDep
) -> Response:
    """Change the caller's staff password."""
    identity.change_password(principal.account, body.current, body.new)
    record_event(request, principal, action="auth.password_change", object_id="", result="ok",
                 status_code=204)  # fmt: skip
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/auth/me", response_model=AccountOut, dependencies=[require(Permission.SESSION)])
def me(principal: PrincipalDep, identity: IdentityDep) -> AccountOut:
    """Return the caller's account with the name masked."""
    return _account_out(principal.account, identity)


def _account_out(account: Account, identity: IdentityService) -> AccountOut:
    return AccountOut(
        account_id=account.account_id,
        kind=account.kind,
        login=account.login,
        name_masked=mask_name(identity.decrypt_name(account)),
        org_id=account.org_id,
        roles=sorted(role.value for role in account.roles),
        locked_until=account.locked_until,
    )


def _account_in_subtree(
    principal: Principal, account_id: str, identity: IdentityService
) -> Account:
    """Return an account inside the caller's organisation subtree; 404 for any other."""
    target = identity.store.account(account_id)
    caller_org = principal.account.org_id
    if (
        target is None
        or target.org_id is None
        or caller_org is None
        or not identity.store.is_within(target.org_id, caller_org)
    ):
        raise NotFoundError(f"account {account_id!r} not found", "账号不存在")
    return target


@router.get(
    "/v1/admin/accounts/{account_id}",
    response_model=AccountOut,
    dependencies=[require(Permission.ACCOUNT_ADMIN)],
)
def get_account(account_id: str, principal: PrincipalDep, identity: IdentityDep) -> AccountOut:
    """Return an account of the caller's organisation subtree, name masked."""
    return _account_out(_account_in_subtree(principal, account_id, identity), identity)


@router.post(
    "/v1/admin/accounts/{account_id}/lock",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[require(Permission.SECURITY_ADMIN)],
)
def lock_account(
    account_id: str, body: LockIn, request: Request, principal: PrincipalDep, identity: IdentityDep
) -> Response:
    """Lock an account of the caller's subtree and end its sessions at once."""
    target = _account_in_subtree(principal, account_id, identity)
    until = identity.clock() + timedelta(minutes=body.minutes)
    identity.lock(target.account_id, until)
    record_event(request, principal, action="account.lock", object_id=f"account:{account_id}",
                 result="ok", status_code=204)  # fmt: skip
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/admin/accounts/{account_id}/devices",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[require(Permission.SECURITY_ADMIN)],
)
def bind_device(
    account_id: str,
    body: DeviceIn,
    request: Request,
    principal: PrincipalDep,
    identity: IdentityDep,
) -> Response:
    """Bind a device to an account of the caller's subtree."""
    target = _account_in_subtree(principal, account_id, identity)
    identity.store.bind_device(target.account_id, body.device_id, body.label, identity.clock())
    record_event(request, principal, action="device.bind",
                 object_id=f"account:{account_id}/device:{body.device_id}", result="ok",
                 status_code=204)  # fmt: skip
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/v1/audit/records",
    response_model=list[AuditRecordOut],
    dependencies=[require(Permission.AUDIT_READ)],
)
def audit_records(
    request: Request, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[AuditRecordOut]:
    """Return the newest operation-log records, newest first."""
    store = request.app.state.store
    if not isinstance(store, AuditLog):
        return []
    # NOTE: reads the whole chain to take the tail; a seq-range read would scale better.
    records = list(store.audit_records())[-limit:]
    record_event(request, principal, action="audit.read", object_id="", result="ok",
                 status_code=200)  # fmt: skip
    return [
        AuditRecordOut(
            seq=item.seq,
            at=item.entry.at,
            actor=item.entry.actor,
            role=item.entry.role,
            org=item.entry.org,
            action=item.entry.action,
            object_id=item.entry.object_id,
            result=item.entry.result,
            status_code=item.entry.status_code,
        )
        for item in reversed(records)
    ]
