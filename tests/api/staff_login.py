"""Open real staff sessions through the login routes, for tests of the staff routes.

Each call creates a TOTP account, binds its device and logs in with
``POST /v1/auth/login`` and ``POST /v1/auth/verify``, exactly as the login page
does, so a test exercises the same session, device and permission checks as
production. TOTP is used so no test depends on an SMS gateway.
"""

import secrets
from dataclasses import dataclass

import pyotp
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.security.identity import AuthenticationError
from store.identity import CITY_ORG_ID, Organisation, Role
from tests.store.test_identity_store import TREE

PASSWORD = "Xian-Station-2026"

# SMS settings that production accepts; the loopback endpoint is never contacted here.
PRODUCTION_SMS: dict[str, object] = {
    "sms_gateway": "http",
    "sms_endpoint": "https://127.0.0.1:9",
    "sms_api_key": SecretStr("sms-key-1"),
    "sms_signing_secret": SecretStr("s" * 8 + "ms-signing-0123456789abcdefghij"),
}
DEVICE = "pad-01"

# The identity tests' tree plus 碑林区, whose anchors the curation tests hold out of scope,
# and one more street in each, for the filing tests of street staff.
ORG_TREE = [
    *TREE,
    Organisation(
        "district:610103", CITY_ORG_ID, "district", "碑林区就业服务中心", "610103", "610103"
    ),
    Organisation(
        "street:610113002",
        "district:610113",
        "street",
        "大雁塔街道劳动保障所",
        "610113002",
        "610113",
    ),
    Organisation(
        "street:610103001",
        "district:610103",
        "street",
        "南院门街道劳动保障所",
        "610103001",
        "610103",
    ),
]


@dataclass(frozen=True, slots=True)
class StaffLogin:
    """A logged-in staff account: its id, session token, device and request headers."""

    account_id: str
    token: str
    device_id: str

    @property
    def headers(self) -> dict[str, str]:
        """The headers of an authenticated staff request."""
        return {"Authorization": f"Bearer {self.token}", "X-Device-ID": self.device_id}


def log_in_staff(
    client: TestClient,
    org_id: str = "district:610113",
    role: Role = Role.STATION_STAFF,
    device_id: str = DEVICE,
) -> StaffLogin:
    """Create a staff account in ``org_id`` with ``role`` and log it in on ``client``'s app."""
    identity = client.app.state.identity  # type: ignore[attr-defined]
    identity.store.seed_organisations(ORG_TREE)
    login = f"staff.{secrets.token_hex(5)}"
    created = identity.create_staff(
        login=login, name="测试员", mobile=f"139{secrets.randbelow(10**8):08d}", org_id=org_id,
        roles=[role], password=PASSWORD, second_factor="totp",
    )  # fmt: skip
    account_id = created.account.account_id
    identity.store.bind_device(account_id, device_id, "test", identity.clock())

    first = client.post("/v1/auth/login", json={"login": login, "password": PASSWORD})
    assert first.status_code == 200, first.text
    code = pyotp.TOTP(created.totp_secret).at(identity.clock())
    second = client.post(
        "/v1/auth/verify",
        json={"challenge": first.json()["challenge"], "code": code, "device_id": device_id},
    )
    assert second.status_code == 200, second.text
    return StaffLogin(account_id, second.json()["token"], device_id)


# Sessions by identity store, organisation and name, reused while they stay valid.
_sessions: dict[tuple[str, str, str], StaffLogin] = {}


def reuse_staff_login(
    client: TestClient, org_id: str, name: str, role: Role = Role.STATION_STAFF
) -> StaffLogin:
    """Return the live session ``name`` of ``org_id`` on the client's identity store, or a new one.

    Every login hashes and checks an argon2 password (about half a second each), so
    tests that start a fresh app per case keep their accounts in one identity store
    and reuse the sessions. A session that ended, or whose token another key signed,
    is replaced by a new login.
    """
    identity = client.app.state.identity  # type: ignore[attr-defined]
    key = (identity.store.describe(), org_id, name)
    known = _sessions.get(key)
    if known is not None:
        try:
            identity.authenticate(known.token, "staff", known.device_id)
            return known
        except AuthenticationError:
            del _sessions[key]
    _sessions[key] = log_in_staff(client, org_id, role=role)
    return _sessions[key]


def city_officer(client: TestClient) -> dict[str, str]:
    """Return the headers of a city-wide assistance officer, who may read every seeker."""
    return reuse_staff_login(client, CITY_ORG_ID, "city-officer", Role.ASSISTANCE_OFFICER).headers
