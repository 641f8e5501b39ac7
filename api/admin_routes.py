"""Routes of the three administrator pages, one permission each so no role does another's job.

- System administrator (``account.admin``): list, create, disable and unlock staff
  accounts of the caller's organisation subtree, list and unbind their devices.
- Security administrator (``security.admin``): assign roles, read the key rotation status.
- Audit administrator (``audit.read``): search the operation log and verify its chain.

Every change leaves an operation-log record naming account ids only. Names are
masked in every response, and the log's object ids are ids and blind-index digests,
never personal values.
"""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require
from api.auth_routes import (
    AccountOut,
    AuditRecordOut,
    IdentityDep,
    PrincipalDep,
    _account_in_subtree,
    _account_out,
)
from api.errors import NotFoundError, QueryLimitError, fields_in_body
from api.permissions import Permission
from api.security.audit import record_event
from api.security.identity import Principal
from store.audit import AuditLog
from store.identity import ADMIN_ROLES, Role, RoleConflictError

router = APIRouter(tags=["administration"])

DISABLED_UNTIL = datetime(9999, 12, 31, tzinfo=UTC)
"""``locked_until`` of a disabled account: a lock with no end, lifted only by an unlock."""

MAX_ACCOUNTS = 500

# Roles the system administrator gives a new account; administrator roles are assigned
# by the security administrator only.
CREATABLE_ROLES = (Role.STATION_STAFF, Role.ASSISTANCE_OFFICER, Role.ANALYST)
STAFF_ROLES = tuple(role for role in Role if role is not Role.SEEKER)


class StaffAccountOut(AccountOut):
    """A staff account in the administrator list, name masked."""

    disabled: bool


class CreateAccountIn(BaseModel):
    """A new staff account; the system administrator gives it one non-administrator role."""

    model_config = ConfigDict(extra="forbid")

    login: str = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9._-]+$")
    name: str = Field(min_length=1, max_length=32)
    mobile: str = Field(min_length=11, max_length=20)
    org_id: str = Field(min_length=1, max_length=64)
    role: Literal["station_staff", "assistance_officer", "analyst"]
    password: str = Field(min_length=1, max_length=128)
    second_factor: Literal["sms", "totp"] = "sms"


class CreatedAccountOut(StaffAccountOut):
    """The created account; ``totp_secret`` is shown once, for the authenticator app."""

    totp_secret: str | None


class DeviceOut(BaseModel):
    """A device bound to an account."""

    device_id: str
    label: str
    bound_at: datetime


class RolesIn(BaseModel):
    """The complete set of roles an account should hold."""

    model_config = ConfigDict(extra="forbid")

    roles: list[Literal[
        "station_staff", "assistance_officer", "analyst",
        "system_admin", "security_admin", "audit_admin",
    ]] = Field(max_length=6)  # fmt: skip


class KeyStatusOut(BaseModel):
    """The active keys, and the rows that a rotation has still to re-encrypt."""

    pi_active_key: str
    pi_key_ids: list[str]
    seeker_rows_under_other_keys: int | None
    account_rows_under_other_keys: int
    audit_active_key: str
    audit_key_ids: list[str]
    audit_chain_key: str
    """The key that tags the next record, from the last rotation record of the chain."""
    audit_rotations: int


class ChainStatusOut(BaseModel):
    """The result of verifying the operation log's chain across key epochs."""

    ok: bool
    checked: int
    keys: int
    problem_seq: int | None
    problem_kind: str | None
    message: str


def _staff_out(principal: Principal, account_id: str, identity: IdentityDep) -> StaffAccountOut:
    account = _account_in_subtree(principal, account_id, identity)
    return _with_disabled(_account_out(account, identity), account.locked_until)


def _with_disabled(out: AccountOut, locked_until: datetime | None) -> StaffAccountOut:
    disabled = locked_until is not None and locked_until >= DISABLED_UNTIL
    return StaffAccountOut(**out.model_dump(), disabled=disabled)


def _not_self(principal: Principal, account_id: str, action: str) -> None:
    if principal.account.account_id == account_id:
        raise QueryLimitError(
            f"an administrator cannot {action} their own account",
            field="account_id",
            message_zh="管理员不能对自己的账号执行此操作",
            location="path",
        )


# System administrator


@router.get(
    "/v1/admin/accounts",
    response_model=list[StaffAccountOut],
    dependencies=[require(Permission.ACCOUNT_ADMIN)],
)
def list_accounts(
    principal: PrincipalDep,
    identity: IdentityDep,
    limit: Annotated[int, Query(ge=1, le=MAX_ACCOUNTS)] = 200,
) -> list[StaffAccountOut]:
    """Return the staff accounts of the caller's organisation subtree, by login, names masked."""
    org_id = principal.account.org_id
    if org_id is None:
        return []
    accounts = identity.store.staff_in_subtree(org_id, limit)
    return [_with_disabled(_account_out(a, identity), a.locked_until) for a in accounts]


@router.post(
    "/v1/admin/accounts",
    response_model=CreatedAccountOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[require(Permission.ACCOUNT_ADMIN)],
)
def create_account(
    body: CreateAccountIn, request: Request, principal: PrincipalDep, identity: IdentityDep
) -> CreatedAccountOut:
    """Create a staff account in the caller's subtree with one non-administrator role."""
    caller_org = principal.account.org_id
    if caller_org is None or identity.store.organisation_within(body.org_id, caller_org) is None:
        raise NotFoundError(f"organisation {body.org_id!r} not found", "机构不存在")
    with fields_in_body():
        created = identity.create_staff(
            login=body.login, name=body.name, mobile=body.mobile, org_id=body.org_id,
            roles=[Role(body.role)], password=body.password, second_factor=body.second_factor,
        )  # fmt: skip
    account_id = created.account.account_id
    record_event(request, principal, action="account.create", object_id=f"account:{account_id}",
                 result="ok", status_code=201)  # fmt: skip
    out = _with_disabled(_account_out(created.account, identity), None)
    return CreatedAccountOut(**out.model_dump(), totp_secret=created.totp_secret)


@router.post(
    "/v1/admin/accounts/{account_id}/disable",
    response_model=StaffAccountOut,
    dependencies=[require(Permission.ACCOUNT_ADMIN)],
)
def disable_account(
    account_id: str, request: Request, principal: PrincipalDep, identity: IdentityDep
) -> StaffAccountOut:
    """Disable an account of the caller's subtree: a lock with no end, sessions revoked."""
    _not_self(principal, account_id, "disable")
    target = _account_in_subtree(principal, account_id, identity)
    if target.roles & ADMIN_ROLES:
        # The three administrators check one another, so none may switch another off.
        raise QueryLimitError(
            f"account {account_id!r} has an administrator role and cannot be disabled here",
            field="account_id",
            message_zh="管理员账号不能由系统管理员停用",
            location="path",
        )
    identity.lock(target.account_id, DISABLED_UNTIL)
    record_event(request, principal, action="account.disable", object_id=f"account:{account_id}",
                 result="ok", status_code=200)  # fmt: skip
    return _staff_out(principal, account_id, identity)


@router.post(
    "/v1/admin/accounts/{account_id}/unlock",
    response_model=StaffAccountOut,
    dependencies=[require(Permission.ACCOUNT_ADMIN)],
)
def unlock_account(
    account_id: str, request: Request, principal: PrincipalDep, identity: IdentityDep
) -> StaffAccountOut:
    """Lift a lockout or a disable and clear the failed-login count."""
    target = _account_in_subtree(principal, account_id, identity)
    identity.store.lock_account(target.account_id, None)
    identity.store.clear_login_failures(target.account_id)
    record_event(request, principal, action="account.unlock", object_id=f"account:{account_id}",
                 result="ok", status_code=200)  # fmt: skip
    return _staff_out(principal, account_id, identity)


@router.get(
    "/v1/admin/accounts/{account_id}/devices",
    response_model=list[DeviceOut],
    dependencies=[require(Permission.ACCOUNT_ADMIN)],
)
def list_devices(
    account_id: str, principal: PrincipalDep, identity: IdentityDep
) -> list[DeviceOut]:
    """Return the devices bound to an account of the caller's subtree."""
    target = _account_in_subtree(principal, account_id, identity)
    return [
        DeviceOut(device_id=device, label=label, bound_at=at)
        for device, label, at in identity.store.bound_devices(target.account_id)
    ]


@router.delete(
    "/v1/admin/accounts/{account_id}/devices/{device}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[require(Permission.ACCOUNT_ADMIN)],
)
def unbind_device(
    account_id: str,
    device: str,
    request: Request,
    principal: PrincipalDep,
    identity: IdentityDep,
) -> Response:
    """Unbind a device; the account can no longer log in from it."""
    target = _account_in_subtree(principal, account_id, identity)
    if not identity.store.unbind_device(target.account_id, device, identity.clock()):
        raise NotFoundError(f"device {device!r} is not bound to the account", "设备未绑定")
    record_event(request, principal, action="device.unbind",
                 object_id=f"account:{account_id}/device:{device}", result="ok",
                 status_code=204)  # fmt: skip
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Security administrator


@router.get(
    "/v1/admin/role-assignments",
    response_model=list[StaffAccountOut],
    dependencies=[require(Permission.SECURITY_ADMIN)],
)
def role_assignments(
    principal: PrincipalDep,
    identity: IdentityDep,
    limit: Annotated[int, Query(ge=1, le=MAX_ACCOUNTS)] = 200,
) -> list[StaffAccountOut]:
    """Return the staff accounts of the caller's subtree with their roles, names masked."""
    return list_accounts(principal, identity, limit)


@router.put(
    "/v1/admin/accounts/{account_id}/roles",
    response_model=StaffAccountOut,
    dependencies=[require(Permission.SECURITY_ADMIN)],
)
def assign_roles(
    account_id: str,
    body: RolesIn,
    request: Request,
    principal: PrincipalDep,
    identity: IdentityDep,
) -> StaffAccountOut:
    """Set the roles of an account of the caller's subtree; at most one administrator role."""
    _not_self(principal, account_id, "change the roles of")
    target = _account_in_subtree(principal, account_id, identity)
    requested = frozenset(Role(role) for role in body.roles)
    admins = sorted(role.value for role in requested if role.value.endswith("_admin"))
    if len(admins) > 1:
        raise RoleConflictError(
            f"account {account_id!r} cannot hold {admins} together;"
            " each administrator role needs its own account"
        )
    # Revoke first, so that swapping one administrator role for another never has two at once.
    for role in target.roles - requested:
        identity.store.revoke_role(target.account_id, role)
    for role in sorted(requested - target.roles):
        identity.store.grant_role(target.account_id, role)
    changes = ",".join(sorted(role.value for role in requested)) or "none"
    record_event(request, principal, action="account.roles",
                 object_id=f"account:{account_id} roles:{changes}", result="ok",
                 status_code=200)  # fmt: skip
    return _staff_out(principal, account_id, identity)


@router.get(
    "/v1/admin/keys",
    response_model=KeyStatusOut,
    dependencies=[require(Permission.SECURITY_ADMIN)],
)
def key_status(request: Request, identity: IdentityDep) -> KeyStatusOut:
    """Return the active keys and the rows still encrypted under other SM4 keys."""
    from api.security.keys import load_key_material
    from store.audit_keys import current_key_id, rotations
    from store.seeker_records import SeekerStore

    material = load_key_material(request.app.state.settings)
    provider = material.provider
    active = provider.active_key_id()
    store = request.app.state.store
    seekers = store.count_to_rotate(active) if isinstance(store, SeekerStore) else None
    keyring = material.audit_keyring()
    # NOTE: reads the whole operation log to find the rotation records.
    found = rotations(store.audit_records()) if isinstance(store, AuditLog) else []
    return KeyStatusOut(
        pi_active_key=active,
        pi_key_ids=provider.key_ids(),
        seeker_rows_under_other_keys=seekers,
        account_rows_under_other_keys=identity.store.count_account_envelopes_to_rotate(active),
        audit_active_key=keyring.active_id,
        audit_key_ids=keyring.key_ids(),
        audit_chain_key=current_key_id(keyring, found),
        audit_rotations=len(found),
    )


# Audit administrator


@router.get(
    "/v1/audit/search",
    response_model=list[AuditRecordOut],
    dependencies=[require(Permission.AUDIT_READ)],
)
def audit_search(
    request: Request,
    principal: PrincipalDep,
    actor: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    object_id: Annotated[str, Query(max_length=128)] = "",
    result: Annotated[str, Query(max_length=16)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditRecordOut]:
    """Return the newest records, newest first, whose fields contain the given texts.

    The object ids are account, seeker and anchor ids and blind-index digests, so the
    results carry no personal value.
    """
    store = request.app.state.store
    if not isinstance(store, AuditLog):
        return []
    filters = {"actor": actor, "action": action, "object_id": object_id, "result": result}
    # NOTE: scans the whole chain; a seq-range or indexed read would scale better.
    found = [
        item
        for item in store.audit_records()
        if all(text in str(getattr(item.entry, name)) for name, text in filters.items() if text)
    ][-limit:]
    record_event(request, principal, action="audit.search", object_id="", result="ok",
                 status_code=200)  # fmt: skip
    return [
        AuditRecordOut(
            seq=item.seq, at=item.entry.at, actor=item.entry.actor, role=item.entry.role,
            org=item.entry.org, action=item.entry.action, object_id=item.entry.object_id,
            result=item.entry.result, status_code=item.entry.status_code,
        )
        for item in reversed(found)
    ]  # fmt: skip


@router.get(
    "/v1/audit/verify",
    response_model=ChainStatusOut,
    dependencies=[require(Permission.AUDIT_READ)],
)
def audit_verify_chain(request: Request, principal: PrincipalDep) -> ChainStatusOut:
    """Verify the operation log's chain across key epochs, as `doorstep audit verify` does."""
    from api.security.keys import load_key_material
    from store.audit_keys import AuditKeyMismatchError, MissingAuditKeyError, verify_epochs
    from store.audit_keys import rotations as find_rotations

    store = request.app.state.store
    if not isinstance(store, AuditLog):
        return ChainStatusOut(ok=True, checked=0, keys=0, problem_seq=None, problem_kind=None,
                              message="this store has no operation log")  # fmt: skip
    keyring = load_key_material(request.app.state.settings).audit_keyring()
    found = find_rotations(store.audit_records())
    try:
        report = verify_epochs(keyring, store.audit_records(), store.audit_head(), found)
    except (MissingAuditKeyError, AuditKeyMismatchError) as err:
        return ChainStatusOut(ok=False, checked=0, keys=len(found) + 1, problem_seq=None,
                              problem_kind="key", message=str(err))  # fmt: skip
    record_event(request, principal, action="audit.verify", object_id="", result="ok",
                 status_code=200)  # fmt: skip
    problem = report.problem
    return ChainStatusOut(
        ok=problem is None,
        checked=report.checked,
        keys=len(found) + 1,
        problem_seq=None if problem is None else problem.seq,
        problem_kind=None if problem is None else problem.kind,
        message="verified" if problem is None else problem.message,
    )
