"""Property-based requests against every operation of the OpenAPI schema, with schemathesis.

The app runs in process (schemathesis' ASGI transport, no network) on the small XSS
payload store. Each operation gets 100 generated requests, drawn from schemathesis'
valid (positive) and invalid (negative) strategies, and the only check is that no
response has a 5xx status. Staff and admin operations are sent
with a real session of the role that holds their permission, so they reach the route
rather than stopping at 401. Routes under ``/v1/auth`` are sent without a session,
because generated logouts and password changes would end it.

Generation is derandomised, so a run repeats in CI; a failure prints the request that
reproduces it. The operations are listed at collection from the schema of an app that
is built but not started, so each gets its own test id.

NOTE: schemathesis 4.32.5's pytest loader (``schemathesis.pytest.from_fixture``) fails
under pytest 9.2 (it sets ``Function._nodeid``), so each operation's hypothesis
strategy is run by hand here.
"""

from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import BaseSchema

from api.app import create_app
from api.settings import AuthSettings, CacheSettings, DataSettings, Settings
from store.identity import Role
from store.sqlite import SqliteStore
from tests.api.staff_login import StaffLogin, log_in_staff

EXAMPLES_PER_OPERATION = 100

# Path prefix -> the role whose session the operation is sent with.
SESSION_ROLES: list[tuple[str, Role]] = [
    ("/v1/staff/", Role.STATION_STAFF),
    ("/v1/admin/accounts/{account_id}/lock", Role.SECURITY_ADMIN),
    ("/v1/admin/accounts/{account_id}/devices/", Role.SYSTEM_ADMIN),
    ("/v1/admin/accounts/{account_id}/devices", Role.SECURITY_ADMIN),
    ("/v1/admin/accounts/{account_id}/roles", Role.SECURITY_ADMIN),
    ("/v1/admin/role-assignments", Role.SECURITY_ADMIN),
    ("/v1/admin/keys", Role.SECURITY_ADMIN),
    ("/v1/admin/", Role.SYSTEM_ADMIN),
    ("/v1/audit/", Role.AUDIT_ADMIN),
]


def _schema_operations() -> list[tuple[str, str]]:
    """Return (method, path) of every operation of the app's OpenAPI schema."""
    app = create_app(Settings(data=DataSettings(store_path=Path("not-opened.sqlite"))))
    return [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in sorted(item)
    ]


OPERATIONS = _schema_operations()


@pytest.fixture(scope="module")
def fuzz_app(xss_store: SqliteStore, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """The real app on the payload store, with no rate limit; schemathesis starts it."""
    folder = tmp_path_factory.mktemp("fuzz")
    settings = Settings(
        data=DataSettings(store_path=xss_store.path),
        cache=CacheSettings(rate_limit_per_minute=0),
        auth=AuthSettings(
            identity_path=folder / "identity.sqlite", sms_outbox_path=folder / "outbox.jsonl"
        ),
    )
    return create_app(settings, store=xss_store)


@pytest.fixture(scope="module")
def api_schema(fuzz_app: FastAPI) -> BaseSchema:
    """The schema loaded over the ASGI transport, which starts the app's lifespan once."""
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


# The target-list import takes an .xlsx body; schemathesis sends it as raw bytes, like
# any binary upload, and the route must return a 4xx for the fuzzed bytes.
schemathesis.serializer.alias(
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/octet-stream"
)


@pytest.fixture(scope="module")
def sessions(fuzz_app: FastAPI, api_schema: BaseSchema) -> dict[Role, StaffLogin]:
    """One logged-in account per role that the schema's protected operations need."""
    client = TestClient(fuzz_app)  # not entered: the lifespan already runs
    return {
        Role.STATION_STAFF: log_in_staff(client, "district:610103"),
        Role.SYSTEM_ADMIN: log_in_staff(client, "city", Role.SYSTEM_ADMIN, "pc-system"),
        Role.SECURITY_ADMIN: log_in_staff(client, "city", Role.SECURITY_ADMIN, "pc-security"),
        Role.AUDIT_ADMIN: log_in_staff(client, "city", Role.AUDIT_ADMIN, "pc-audit"),
    }


def session_role(path: str) -> Role | None:
    """Return the role whose session an operation on ``path`` is sent with, or None."""
    for prefix, role in SESSION_ROLES:
        if path.startswith(prefix):
            return role
    return None


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_server_error(
    api_schema: BaseSchema, sessions: dict[Role, StaffLogin], method: str, path: str
) -> None:
    operation = api_schema[path][method]
    role = session_role(path)
    auth_headers = {} if role is None else sessions[role].headers

    # Valid and invalid requests, each with the session's headers when the path needs one.
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE, headers=auth_headers),
        operation.as_strategy(GenerationMode.NEGATIVE, headers=auth_headers),
    )

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def no_server_error(case: Case) -> None:
        case.call_and_validate(checks=[not_a_server_error])

    no_server_error()


def test_operations_listed() -> None:
    assert ("GET", "/v1/jobs/nearby") in OPERATIONS
    assert ("PATCH", "/v1/staff/anchors/{anchor_id}") in OPERATIONS
    assert len(OPERATIONS) >= 30


def test_session_roles_cover_protected_paths() -> None:
    protected = [path for _, path in OPERATIONS if path.startswith(("/v1/staff/", "/v1/admin/"))]

    assert protected
    assert all(session_role(path) is not None for path in protected)
    assert session_role("/v1/audit/records") is Role.AUDIT_ADMIN
    assert session_role("/v1/jobs/nearby") is None


def test_admin_sessions_pass_permission_checks(
    fuzz_app: FastAPI, sessions: dict[Role, StaffLogin]
) -> None:
    client = TestClient(fuzz_app)

    audit = client.get("/v1/audit/records", headers=sessions[Role.AUDIT_ADMIN].headers)
    staff = client.get("/v1/staff/me", headers=sessions[Role.STATION_STAFF].headers)

    assert audit.status_code == 200, audit.text
    assert staff.status_code == 200, staff.text
