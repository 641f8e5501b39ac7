"""Interim staff identity: HS256 bearer tokens naming a staff member's districts and zones.

NOTE: these signed tokens stand in for the bureau's staff login. They carry no
revocation list, so a leaked token stays valid until ``exp``; replace this
module with the real login and role checks when that exists.

A token is a JWT signed with HS256 only (the algorithm is pinned, so ``none``
and other algorithms are rejected), issued by ``doorstep`` for the audience
``doorstep-staff``, with ``exp`` required. Its claims are ``sub`` (staff id),
``org`` (organisation name), ``districts`` (6-digit codes), ``zones`` (zone
keys) and ``roles`` (must include ``station_staff``). The token and the key are
never logged.
"""

import logging
import os
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.settings import AuthSettings
from geo.anchor_states import StaffScope

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"
ISSUER = "doorstep"
AUDIENCE = "doorstep-staff"
STATION_STAFF_ROLE = "station_staff"
DEFAULT_TOKEN_HOURS = 8.0

# Bytes of a generated development key (256 bits, the HS256 key size).
_GENERATED_KEY_BYTES = 32

_secret_lock = threading.Lock()


class StaffTokenError(ValueError):
    """A staff token that is malformed, wrongly signed, expired or lacks a claim."""


class StaffTokenExpiredError(StaffTokenError):
    """A correctly signed staff token whose ``exp`` has passed."""


@dataclass(frozen=True, slots=True)
class StaffContext:
    """The authenticated staff member: account id, organisation and the scope they curate."""

    staff_id: str
    org: str
    scope: StaffScope


def issue_staff_token(
    secret: bytes,
    *,
    staff_id: str,
    org: str,
    districts: Iterable[str],
    zones: Iterable[str] = (),
    hours: float = DEFAULT_TOKEN_HOURS,
    now: datetime | None = None,
) -> str:
    """Sign a staff token valid for ``hours`` from ``now`` (UTC now by default)."""
    if hours <= 0:
        raise ValueError(f"hours {hours} is invalid; expected a number above 0")
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": staff_id,
        "iat": issued,
        "exp": issued + timedelta(hours=hours),
        "org": org,
        "districts": sorted(set(districts)),
        "zones": sorted(set(zones)),
        "roles": [STATION_STAFF_ROLE],
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_staff_token(token: str, secret: bytes) -> StaffContext:
    """Verify a staff token's signature, issuer, audience and expiry and return its context.

    Raises
    ------
    StaffTokenError
        For any failed check; the message names the check, never the token.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError as err:
        raise StaffTokenExpiredError("staff token has expired") from err
    except jwt.InvalidTokenError as err:
        raise StaffTokenError(f"staff token is invalid: {type(err).__name__}") from err

    return _context_from_claims(claims)


def _context_from_claims(claims: dict[str, Any]) -> StaffContext:
    roles = claims.get("roles")
    if not isinstance(roles, list) or STATION_STAFF_ROLE not in roles:
        raise StaffTokenError(f"staff token lacks the {STATION_STAFF_ROLE!r} role")
    districts = _string_list(claims, "districts")
    bad = [code for code in districts if not (len(code) == 6 and code.isdigit())]
    if bad:
        raise StaffTokenError(f"staff token districts {bad} are not 6-digit codes")
    org = claims.get("org")
    if not isinstance(org, str) or not org.strip():
        raise StaffTokenError("staff token lacks the org claim")

    scope = StaffScope(frozenset(districts), frozenset(_string_list(claims, "zones")))
    return StaffContext(str(claims["sub"]), org, scope)


def _string_list(claims: dict[str, Any], name: str) -> list[str]:
    value = claims.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise StaffTokenError(f"staff token claim {name!r} must be a list of strings")
    return value


def staff_token_secret(auth: AuthSettings) -> bytes:
    """Return the token key: the configured secret, or in development the key file.

    In development without ``DOORSTEP_STAFF_TOKEN_SECRET`` the key is read from
    ``auth.staff_token_secret_path``, which is created once with mode 0600, so
    ``doorstep staff-token`` and ``doorstep serve`` on one machine agree.
    """
    if auth.staff_token_secret is not None:
        return auth.staff_token_secret.get_secret_value().encode()
    if auth.environment == "production":
        # AuthSettings already rejects this; checked again so no key is ever generated here.
        raise ValueError("DOORSTEP_STAFF_TOKEN_SECRET is missing in production")
    return _development_key(auth.staff_token_secret_path)


def _development_key(path: Path) -> bytes:
    with _secret_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes().strip()
        key = secrets.token_urlsafe(_GENERATED_KEY_BYTES).encode()
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key)
        logger.info("created development staff token key file %s (mode 0600)", path)
        return key


_bearer = HTTPBearer(auto_error=False)


def _unauthorized(message_zh: str, message: str) -> HTTPException:
    detail = [
        {"loc": ["header", "Authorization"], "msg": message, "msg_zh": message_zh, "type": "401"}
    ]
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _app_secret(request: Request) -> bytes:
    """Return the app's token key, resolved on the first staff request and then kept."""
    state = request.app.state
    key: bytes | None = getattr(state, "staff_token_key", None)
    if key is None:
        key = staff_token_secret(state.settings.auth)
        state.staff_token_key = key
    return key


def current_staff(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> StaffContext:
    """Return the staff caller: the logged-in account, or in development an interim token.

    The route's :func:`api.auth.require` dependency runs first and stores a
    logged-in caller in ``request.state.principal``; its scope is the districts
    of the account's organisation subtree.
    """
    known: StaffContext | None = getattr(request.state, "staff", None)
    if known is not None:
        return known
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        staff = _context_of(request, principal.account.account_id, principal.account.org_id)
    else:
        staff = _interim_context(request, credentials)
    # The operation log names this actor even when the route later fails.
    request.state.staff = staff
    return staff


def _context_of(request: Request, account_id: str, org_id: str | None) -> StaffContext:
    store = request.app.state.identity.store
    organisation = None if org_id is None else store.organisation(org_id)
    if organisation is None:
        raise _unauthorized("账号未关联机构", "account has no organisation")
    districts = store.subtree_district_codes(organisation.org_id)
    # NOTE: anchors carry a district, not a street or community, so street and station
    # staff curate their whole district until anchors record the finer region codes.
    return StaffContext(account_id, organisation.name, StaffScope(districts))


def _interim_context(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> StaffContext:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("请先登录：缺少工作人员令牌", "missing bearer token")
    if request.app.state.settings.auth.environment != "development":
        raise _unauthorized("请先登录", "interim staff tokens are accepted in development only")
    try:
        return decode_staff_token(credentials.credentials, _app_secret(request))
    except StaffTokenError as err:
        logger.info("staff token rejected on %s: %s", request.url.path, err)
        expired = isinstance(err, StaffTokenExpiredError)
        message_zh = "工作人员令牌已过期，请重新获取" if expired else "工作人员令牌无效"
        raise _unauthorized(message_zh, str(err)) from err


StaffDep = Annotated[StaffContext, Depends(current_staff)]
