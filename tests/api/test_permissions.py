"""Route permissions: the start-up check, and every role × route × own/other organisation."""

import re
import sqlite3
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.app import ROUTERS, create_app
from api.permissions import (
    ROLE_PERMISSIONS,
    Permission,
    UndeclaredPermissionError,
    check_route_permissions,
    declared_permission,
)
from api.security.sms import OutboxSmsGateway
from api.settings import AuthSettings, CacheSettings, DataSettings, Settings
from store.identity import ADMIN_ROLES, CITY_ORG_ID, Organisation, Role
from store.sqlite import SqliteStore
from tests.store.test_identity_store import TREE

PASSWORD = "Xian-Station-2026"
DEVICE = "pad-01"


def test_undeclared_route_stops_start() -> None:
    app = FastAPI()
    stray = APIRouter()

    @stray.get("/v1/stray")
    def stray_route() -> dict[str, str]:
        return {}

    with pytest.raises(UndeclaredPermissionError, match="/v1/stray"):
        check_route_permissions(app, [stray])


def test_admin_permissions_disjoint() -> None:
    admins = [ROLE_PERMISSIONS[role] - {Permission.SESSION} for role in ADMIN_ROLES]
    for i, first in enumerate(admins):
        for second in admins[i + 1 :]:
            assert not first & second


@pytest.fixture(scope="module")
def app_client(
    xss_store: SqliteStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("identity")
    # A copy, because the seeker routes of the matrix register a profile in the store.
    copy = folder / "store.sqlite"
    with sqlite3.connect(xss_store.path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    store = SqliteStore(copy)
    settings = Settings(
        data=DataSettings(store_path=copy),
        cache=CacheSettings(rate_limit_per_minute=0),
        auth=AuthSettings(
            identity_path=folder / "identity.sqlite", sms_outbox_path=folder / "outbox.jsonl"
        ),
    )
    app = create_app(settings, store=store)
    with TestClient(app) as client:
        # The test store's records lie in 碑林区, so the city subtree must include it.
        beilin = Organisation(
            "district:610103", CITY_ORG_ID, "district", "碑林区就业服务中心", "610103", "610103"
        )
        client.app.state.identity.store.seed_organisations([*TREE, beilin])  # type: ignore[attr-defined]
        yield client


def _code(client: TestClient) -> str:
    gateway = client.app.state.identity.gateway  # type: ignore[attr-defined]
    assert isinstance(gateway, OutboxSmsGateway)
    match = re.search(r"验证码 (\d{6})", gateway.messages()[-1]["text"])
    assert match is not None
    return match.group(1)


_accounts: dict[tuple[Role, str], tuple[str, dict[str, str]]] = {}


def _login_as(client: TestClient, role: Role, org_id: str) -> tuple[str, dict[str, str]]:
    """Create, bind and log in an account with one role; return its id and request headers."""
    if (role, org_id) in _accounts:
        return _accounts[(role, org_id)]
    identity = client.app.state.identity  # type: ignore[attr-defined]
    n = len(_accounts)
    if role is Role.SEEKER:
        mobile = f"1390000{n:04d}"
        assert client.post("/v1/auth/seeker/code", json={"mobile": mobile}).status_code == 202
        body = client.post("/v1/auth/seeker/verify", json={"mobile": mobile, "code": _code(client)})
        result = ("seeker", {"Authorization": f"Bearer {body.json()['token']}"})
        _accounts[(role, org_id)] = result
        return result
    login = f"user{n:03d}"
    created = identity.create_staff(
        login=login, name="王五", mobile=f"1380000{n:04d}", org_id=org_id, roles=[role],
        password=PASSWORD,
    )  # fmt: skip
    account_id = created.account.account_id
    identity.store.bind_device(account_id, DEVICE, "test", identity.clock())
    first = client.post("/v1/auth/login", json={"login": login, "password": PASSWORD})
    assert first.status_code == 200, first.text
    second = client.post(
        "/v1/auth/verify",
        json={"challenge": first.json()["challenge"], "code": _code(client), "device_id": DEVICE},
    )
    assert second.status_code == 200, second.text
    headers = {"Authorization": f"Bearer {second.json()['token']}", "X-Device-ID": DEVICE}
    _accounts[(role, org_id)] = (account_id, headers)
    return account_id, headers


def _routes() -> list[APIRoute]:
    routes: list[APIRoute] = []
    for router in ROUTERS:
        routes.extend(route for route in router.routes if isinstance(route, APIRoute))
    return routes


def _request_path(route: APIRoute, target_account: str) -> str:
    return (
        route.path.replace("{account_id}", target_account)
        .replace("{anchor_id}", "anc-none")
        .replace("{seeker_id}", "sim-000001")
        .replace("{name}", "none")
        .replace("{device}", DEVICE)
        .replace("{push_id}", "push-none")
        .replace("{posting_id}", "posting-none")
    )


SAMPLE_BODIES = {
    "/v1/admin/accounts/{account_id}/lock": {"minutes": 1},
    "/v1/admin/accounts/{account_id}/devices": {"device_id": "pad-x", "label": "x"},
    "/v1/staff/seekers/lookup": {"mobile": "13800138000"},
    "/v1/admin/accounts/{account_id}/roles": {"roles": ["station_staff"]},
    "/v1/admin/accounts": {
        "login": "matrix.user", "name": "测试", "mobile": "13700002222",
        "org_id": "district:610113", "role": "analyst", "password": PASSWORD,
    },
    "/v1/me/profile": {"home": {"lon": 108.946, "lat": 34.223}},
    "/v1/me/wechat-openid": {"openid": "oTest123456"},
    "/v1/seeker/push-consent": {"consent": True},
    "/v1/seeker/preferences": {"home_lon": 108.946, "home_lat": 34.223, "max_commute_min": 30},
    "/v1/staff/postings/{posting_id}": {"active": False},
}  # fmt: skip

PROTECTED = [
    route
    for route in _routes()
    if declared_permission(route) not in (None, Permission.PUBLIC, Permission.SESSION)
]


def test_every_route_declares_one() -> None:
    assert all(declared_permission(route) is not None for route in _routes())
    assert len(PROTECTED) >= 12


@pytest.mark.parametrize("role", list(Role), ids=str)
@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: f"{sorted(r.methods or ())[0]} {r.path}")
def test_role_route_matrix(app_client: TestClient, role: Role, route: APIRoute) -> None:
    """A role without the permission gets 403; with it, a route never answers 401 or 403."""
    permission = declared_permission(route)
    assert permission is not None
    _, headers = _login_as(app_client, role, "district:610113")
    target, _ = _login_as(app_client, Role.STATION_STAFF, "station:610113001001")
    method = sorted(route.methods or ())[0]
    response = app_client.request(
        method, _request_path(route, target), headers=headers, json=SAMPLE_BODIES.get(route.path)
    )
    if permission in ROLE_PERMISSIONS[role]:
        assert response.status_code not in (401, 403), response.text
    else:
        assert (
            response.status_code == 403
            if role is not Role.SEEKER
            else response.status_code in (401, 403)
        )


# Administrator routes on one account; the push dead-letter list is not scoped to one.
ADMIN_ROUTES = [
    route
    for route in PROTECTED
    if route.path.startswith("/v1/admin/") and "{account_id}" in route.path
]


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=lambda r: r.path)
def test_other_organisation_is_404(app_client: TestClient, route: APIRoute) -> None:
    permission = declared_permission(route)
    role = next(r for r in ADMIN_ROLES if permission in ROLE_PERMISSIONS[r])
    _, headers = _login_as(app_client, role, "district:610113")
    own, _ = _login_as(app_client, Role.STATION_STAFF, "station:610113001001")
    other, _ = _login_as(app_client, Role.STATION_STAFF, "district:610102")
    method = sorted(route.methods or ())[0]
    body = SAMPLE_BODIES.get(route.path)
    if "{device}" in route.path:
        # Another case of this module may have unbound it already.
        identity = app_client.app.state.identity  # type: ignore[attr-defined]
        for account_id in (own, other):
            identity.store.bind_device(account_id, DEVICE, "test", identity.clock())
    own_response = app_client.request(method, _request_path(route, own), headers=headers, json=body)
    other_response = app_client.request(
        method, _request_path(route, other), headers=headers, json=body
    )
    assert own_response.status_code in (200, 204), own_response.text
    assert other_response.status_code == 404
    missing = app_client.request(
        method, _request_path(route, "staff-none"), headers=headers, json=body
    )
    # Apart from the id it names, a foreign account's 404 is a missing account's 404.
    assert other_response.text.replace(other, "ID") == missing.text.replace("staff-none", "ID")


# Routes on one anchor, seeker or posting. The test store contains one of each, all in
# 碑林区 (610103): staff of 雁塔区 (610113) must get the 404 of a missing record, and
# city staff (whose subtree contains 碑林区) read them.
RECORD_ROUTES = [
    route
    for route in PROTECTED
    if any(name in route.path for name in ("{anchor_id}", "{seeker_id}", "{posting_id}"))
]

RECORD_BODIES = {
    **SAMPLE_BODIES,
    "/v1/staff/anchors/{anchor_id}": {
        "expected_version": 1, "reason": "核实", "changes": {"address": "碑林区某路 1 号"},
    },
    "/v1/assistance/targets/{seeker_id}/guidance": {"topic": "policy"},
    "/v1/assistance/targets/{seeker_id}/recommendations": {"posting_ids": ["posting-none"]},
    "/v1/assistance/targets/{seeker_id}/recommendations/{posting_id}/state": {
        "state": "delivered",
    },
    "/v1/assistance/targets/{seeker_id}/training": {"institution_id": "abc123"},
    "/v1/assistance/targets/{seeker_id}/training/response": {"response": "accepted"},
    "/v1/assistance/targets/{seeker_id}/visits": {"due_on": "2030-01-01"},
}  # fmt: skip


def _holder(permission: Permission) -> Role:
    """Return a staff role that has ``permission``."""
    return next(
        role for role in Role if role is not Role.SEEKER and permission in ROLE_PERMISSIONS[role]
    )


def _record_path(route: APIRoute, store: SqliteStore) -> str:
    anchors = store.anchors_frame()
    anchor_id = str(anchors.loc[anchors["precision"] == "poi", "anchor_id"].iloc[0])
    posting_id = str(store.postings_frame()["posting_id"].iloc[0])
    return (
        route.path.replace("{anchor_id}", anchor_id)
        .replace("{seeker_id}", "sim-000001")
        .replace("{posting_id}", posting_id)
        .replace("{visit_id}", "visit-" + "0" * 16)
    )


@pytest.mark.parametrize(
    "route", RECORD_ROUTES, ids=lambda r: f"{sorted(r.methods or ())[0]} {r.path}"
)
def test_other_organisation_record_404(
    app_client: TestClient, xss_store: SqliteStore, route: APIRoute
) -> None:
    permission = declared_permission(route)
    assert permission is not None
    _, yanta = _login_as(app_client, _holder(permission), "district:610113")
    method = sorted(route.methods or ())[0]

    response = app_client.request(
        method, _record_path(route, xss_store), headers=yanta, json=RECORD_BODIES.get(route.path)
    )

    assert response.status_code == 404, response.text


@pytest.mark.parametrize(
    "path",
    [
        "/v1/staff/anchors/{anchor_id}",
        "/v1/staff/seekers/{seeker_id}",
        "/v1/staff/seekers/{seeker_id}/unmasked",
        "/v1/seekers/{seeker_id}/recommendations",
    ],
)
def test_own_organisation_record_read(
    app_client: TestClient, xss_store: SqliteStore, path: str
) -> None:
    (route,) = [r for r in RECORD_ROUTES if r.path == path and "GET" in (r.methods or ())]
    permission = declared_permission(route)
    assert permission is not None
    _, city = _login_as(app_client, _holder(permission), "city")

    response = app_client.get(_record_path(route, xss_store), headers=city)

    assert response.status_code == 200, response.text


def test_anchor_scope_from_org_tree(app_client: TestClient) -> None:
    _, yanta = _login_as(app_client, Role.STATION_STAFF, "district:610113")
    me = app_client.get("/v1/staff/me", headers=yanta).json()
    assert [item["code"] for item in me["districts"]] == ["610113"]
    _, city = _login_as(app_client, Role.ASSISTANCE_OFFICER, "city")
    city_me = app_client.get("/v1/staff/me", headers=city).json()
    assert len(city_me["districts"]) >= 2


def test_logout_revokes_token(app_client: TestClient) -> None:
    _, headers = _login_as(app_client, Role.ANALYST, "city")
    assert app_client.get("/v1/auth/me", headers=headers).status_code == 200
    assert app_client.post("/v1/auth/logout", headers=headers).status_code == 204
    again = app_client.get("/v1/auth/me", headers=headers)
    assert again.status_code == 401
    del _accounts[(Role.ANALYST, "city")]


def test_me_masks_name(app_client: TestClient) -> None:
    _, headers = _login_as(app_client, Role.STATION_STAFF, "district:610113")
    body = app_client.get("/v1/auth/me", headers=headers).json()
    assert body["name_masked"] == "王*"


def test_missing_device_header_403(app_client: TestClient) -> None:
    _, headers = _login_as(app_client, Role.STATION_STAFF, "district:610113")
    response = app_client.get("/v1/auth/me", headers={"Authorization": headers["Authorization"]})
    assert response.status_code == 403


def test_sms_code_429_with_retry_after(app_client: TestClient) -> None:
    statuses = [
        app_client.post("/v1/auth/seeker/code", json={"mobile": "13700001111"}) for _ in range(100)
    ]
    assert [r.status_code for r in statuses].count(202) == 1
    limited = [r for r in statuses if r.status_code == 429]
    assert len(limited) == 99
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)


def test_lockout_over_http_is_audited(app_client: TestClient) -> None:
    identity = app_client.app.state.identity  # type: ignore[attr-defined]
    identity.create_staff(
        login="locked.user", name="赵六", mobile="13600001111", org_id="city",
        roles=[Role.ANALYST], password=PASSWORD,
    )  # fmt: skip
    codes = [
        app_client.post(
            "/v1/auth/login", json={"login": "locked.user", "password": "Wrong-Pass-99"}
        ).status_code
        for _ in range(5)
    ]
    assert codes == [401, 401, 401, 401, 423]
    records = list(app_client.app.state.store.audit_records())  # type: ignore[attr-defined]
    actions = [(r.entry.action, r.entry.actor) for r in records[-5:]]
    assert actions[-1] == ("auth.lockout", "login:locked.user")
    assert actions[0] == ("auth.login", "login:locked.user")


def test_lockout_body_names_minutes(app_client: TestClient) -> None:
    identity = app_client.app.state.identity  # type: ignore[attr-defined]
    identity.create_staff(
        login="locked.minutes", name="钱七", mobile="13600002222", org_id="city",
        roles=[Role.ANALYST], password=PASSWORD,
    )  # fmt: skip
    for _ in range(4):
        app_client.post("/v1/auth/login", json={"login": "locked.minutes", "password": "Wrong-1x"})
    locked = app_client.post(
        "/v1/auth/login", json={"login": "locked.minutes", "password": "Wrong-1x"}
    )

    assert locked.status_code == 423
    assert locked.headers["Retry-After"] == str(30 * 60)
    detail = locked.json()["detail"][0]
    assert detail["type"] == "AccountLockedError"
    assert detail["msg_zh"] == "账号已锁定，请在 30 分钟后重试"


def test_wrong_code_body_differs(app_client: TestClient) -> None:
    identity = app_client.app.state.identity  # type: ignore[attr-defined]
    identity.create_staff(
        login="wrong.code", name="孙八", mobile="13600003333", org_id="city",
        roles=[Role.ANALYST], password=PASSWORD,
    )  # fmt: skip
    wrong_password = app_client.post(
        "/v1/auth/login", json={"login": "wrong.code", "password": "Wrong-1x"}
    )
    first = app_client.post("/v1/auth/login", json={"login": "wrong.code", "password": PASSWORD})
    wrong = f"{(int(_code(app_client)) + 1) % 1_000_000:06d}"
    wrong_code = app_client.post(
        "/v1/auth/verify",
        json={"challenge": first.json()["challenge"], "code": wrong, "device_id": DEVICE},
    )

    assert wrong_password.status_code == 401
    assert wrong_password.json()["detail"][0]["msg_zh"] == "账号或密码错误"
    assert wrong_code.status_code == 401
    assert wrong_code.json()["detail"][0]["type"] == "WrongCodeError"
    assert wrong_code.json()["detail"][0]["msg_zh"] == "验证码错误，请核对后重新输入"


def test_sms_429_message_names_seconds(app_client: TestClient) -> None:
    app_client.post("/v1/auth/seeker/code", json={"mobile": "13700002222"})
    limited = app_client.post("/v1/auth/seeker/code", json={"mobile": "13700002222"})

    assert limited.status_code == 429
    seconds = limited.headers["Retry-After"]
    assert limited.json()["detail"][0]["msg_zh"] == f"验证码发送过于频繁，请在 {seconds} 秒后重试"


@pytest.mark.parametrize("path", ["/v1/auth/me", "/v1/staff/me"])
def test_oversized_device_header_403(app_client: TestClient, path: str) -> None:
    """A device id longer than any bound one is a denial, not a skipped permission check."""
    _, headers = _login_as(app_client, Role.STATION_STAFF, "district:610113")
    oversized = {"Authorization": headers["Authorization"], "X-Device-ID": "x" * 129}

    response = app_client.get(path, headers=oversized)

    assert response.status_code == 403, response.text
    assert response.json()["detail"][0]["type"] == "DeviceNotBoundError"
