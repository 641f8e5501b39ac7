"""The staff caller of a curation route, and the key that signs every session token.

:func:`current_staff` turns the logged-in account that :func:`api.auth.require`
authenticated into a :class:`StaffContext`: its organisation and the districts it
curates. Every staff route needs a real session opened through ``/v1/auth/login``
and ``/v1/auth/verify``; there is no session-less token. The token and the key are
never logged.
"""

import logging
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from api.settings import AuthSettings
from geo.anchor_states import StaffScope
from store.identity import Organisation

logger = logging.getLogger(__name__)

STATION_STAFF_ROLE = "station_staff"

FILING_LEVELS = frozenset({"street", "station"})
"""Organisation levels that anchors are filed under; their staff curate only those anchors."""

# Bytes of a generated development key (256 bits, the HS256 key size).
_GENERATED_KEY_BYTES = 32

_secret_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class StaffContext:
    """The authenticated staff member: account id, organisation name and id, and scope."""

    staff_id: str
    org: str
    scope: StaffScope
    org_id: str


def staff_token_secret(auth: AuthSettings) -> bytes:
    """Return the token key: the configured secret, or in development the key file.

    In development without ``DOORSTEP_STAFF_TOKEN_SECRET`` the key is read from
    ``auth.staff_token_secret_path``, which is created once with mode 0600, so every
    service process started from one folder accepts the others' tokens.
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


def _unauthorized(message_zh: str, message: str) -> HTTPException:
    detail = [
        {"loc": ["header", "Authorization"], "msg": message, "msg_zh": message_zh, "type": "401"}
    ]
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


def current_staff(request: Request) -> StaffContext:
    """Return the staff caller of a route: the account that logged in, with its scope.

    The route's :func:`api.auth.require` dependency runs first and stores the
    logged-in caller in ``request.state.principal``; its scope is the districts of
    the account's organisation subtree, and for street and station staff only the
    anchors filed under that subtree. Without a principal the request is a 401.
    """
    known: StaffContext | None = getattr(request.state, "staff", None)
    if known is not None:
        return known
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise _unauthorized("请先登录", "no logged-in staff session; log in at /staff/login")
    staff = _context_of(request, principal.account.account_id, principal.account.org_id)
    # The operation log names this actor even when the route later fails.
    request.state.staff = staff
    return staff


def _context_of(request: Request, account_id: str, org_id: str | None) -> StaffContext:
    store = request.app.state.identity.store
    organisation = None if org_id is None else store.organisation(org_id)
    if organisation is None:
        raise _unauthorized("账号未关联机构", "account has no organisation")
    districts = store.subtree_district_codes(organisation.org_id)

    def filing_district(candidate: str) -> str | None:
        # Anchors are filed under streets and stations only, and only inside the subtree.
        found: Organisation | None = store.organisation_within(candidate, organisation.org_id)
        if found is None or found.level not in FILING_LEVELS:
            return None
        return found.district_code

    if organisation.level in FILING_LEVELS:
        scope = StaffScope(
            districts,
            filing_org=organisation.org_id,
            filing_orgs=frozenset(
                found.org_id for found in store.subtree_organisations(organisation.org_id)
            ),
            filing_district=filing_district,
        )
    else:
        scope = StaffScope(districts, filing_district=filing_district)
    return StaffContext(account_id, organisation.name, scope, organisation.org_id)


StaffDep = Annotated[StaffContext, Depends(current_staff)]
