"""The administrator routes: accounts, devices, roles, key status, log search and verify."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import AuthSettings, DataSettings, Settings
from store.identity import Role
from store.sqlite import SqliteStore
from tests.api.staff_login import ORG_TREE, PASSWORD, StaffLogin, log_in_staff


@pytest.fixture(scope="module")
def client(
    xss_store: SqliteStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("admin")
    store_copy = folder / "store.sqlite"
    store_copy.write_bytes(Path(xss_store.path).read_bytes())
    settings = Settings(
        data=DataSettings(store_path=store_copy),
        auth=AuthSettings(
            identity_path=folder / "identity.sqlite", sms_outbox_path=folder / "outbox.jsonl"
        ),
    )
    with TestClient(create_app(settings, store=SqliteStore(store_copy))) as test_client:
        test_client.app.state.identity.store.seed_organisations(ORG_TREE)  # type: ignore[attr-defined]
        yield test_client


@pytest.fixture(scope="module")
def admins(client: TestClient) -> dict[Role, StaffLogin]:
    return {
        role: log_in_staff(client, "district:610113", role, device_id=f"pad-{role.value}")
        for role in (Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN)
    }


def _create(client: TestClient, admin: StaffLogin, login: str, **changes: str) -> dict[str, str]:
    body = {
        "login": login, "name": "李明", "mobile": "13712345678", "org_id": "station:610113001001",
        "role": "station_staff", "password": PASSWORD, **changes,
    }  # fmt: skip
    response = client.post("/v1/admin/accounts", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_create_list_disable_unlock(client: TestClient, admins: dict[Role, StaffLogin]) -> None:
    system = admins[Role.SYSTEM_ADMIN]
    created = _create(client, system, "li.ming", second_factor="totp")

    listed = client.get("/v1/admin/accounts", headers=system.headers).json()
    disabled = client.post(
        f"/v1/admin/accounts/{created['account_id']}/disable", headers=system.headers
    )
    unlocked = client.post(
        f"/v1/admin/accounts/{created['account_id']}/unlock", headers=system.headers
    )

    assert created["name_masked"] == "李*"
    assert created["totp_secret"]
    assert "13712345678" not in str(listed)
    assert "li.ming" in [row["login"] for row in listed]
    assert disabled.json()["disabled"] is True
    assert unlocked.json()["disabled"] is False
    assert unlocked.json()["locked_until"] is None


def test_create_existing_login_409(client: TestClient, admins: dict[Role, StaffLogin]) -> None:
    system = admins[Role.SYSTEM_ADMIN]
    _create(client, system, "twice.made", mobile="13712340002")
    body = {
        "login": "twice.made", "name": "李明", "mobile": "13712340003",
        "org_id": "station:610113001001", "role": "station_staff", "password": PASSWORD,
    }  # fmt: skip

    response = client.post("/v1/admin/accounts", json=body, headers=system.headers)

    assert response.status_code == 409
    assert "13712340003" not in response.text


def test_other_admin_not_disabled(client: TestClient, admins: dict[Role, StaffLogin]) -> None:
    audit_admin = admins[Role.AUDIT_ADMIN]

    response = client.post(
        f"/v1/admin/accounts/{audit_admin.account_id}/disable",
        headers=admins[Role.SYSTEM_ADMIN].headers,
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "account_id"]
    assert client.get("/v1/auth/me", headers=audit_admin.headers).status_code == 200


def test_create_outside_subtree_404(client: TestClient, admins: dict[Role, StaffLogin]) -> None:
    body = {
        "login": "far.away", "name": "王", "mobile": "13712340000", "org_id": "district:610102",
        "role": "analyst", "password": PASSWORD,
    }  # fmt: skip
    response = client.post(
        "/v1/admin/accounts", json=body, headers=admins[Role.SYSTEM_ADMIN].headers
    )

    assert response.status_code == 404


def test_create_admin_role_rejected(client: TestClient, admins: dict[Role, StaffLogin]) -> None:
    body = {
        "login": "new.admin", "name": "王", "mobile": "13712340001", "org_id": "district:610113",
        "role": "security_admin", "password": PASSWORD,
    }  # fmt: skip
    response = client.post(
        "/v1/admin/accounts", json=body, headers=admins[Role.SYSTEM_ADMIN].headers
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "role"]


def test_devices_list_and_unbind(client: TestClient, admins: dict[Role, StaffLogin]) -> None:
    system = admins[Role.SYSTEM_ADMIN]
    target = log_in_staff(client, "station:610113001001", device_id="pad-target")
    path = f"/v1/admin/accounts/{target.account_id}/devices"

    before = client.get(path, headers=system.headers).json()
    unbound = client.delete(f"{path}/pad-target", headers=system.headers)
    again = client.delete(f"{path}/pad-target", headers=system.headers)
    after = client.get(path, headers=system.headers).json()

    assert [device["device_id"] for device in before] == ["pad-target"]
    assert unbound.status_code == 204
    assert again.status_code == 404
    assert after == []
    assert client.get("/v1/auth/me", headers=target.headers).status_code in (401, 403)


def test_roles_assigned_one_admin(client: TestClient, admins: dict[Role, StaffLogin]) -> None:
    security = admins[Role.SECURITY_ADMIN]
    created = _create(client, admins[Role.SYSTEM_ADMIN], "role.user", mobile="13712345679")
    path = f"/v1/admin/accounts/{created['account_id']}/roles"

    granted = client.put(path, json={"roles": ["analyst", "audit_admin"]}, headers=security.headers)
    swapped = client.put(path, json={"roles": ["system_admin"]}, headers=security.headers)
    two = client.put(
        path, json={"roles": ["system_admin", "audit_admin"]}, headers=security.headers
    )
    own = client.put(
        f"/v1/admin/accounts/{security.account_id}/roles",
        json={"roles": ["security_admin", "analyst"]},
        headers=security.headers,
    )

    assert granted.json()["roles"] == ["analyst", "audit_admin"]
    assert swapped.json()["roles"] == ["system_admin"]
    assert two.status_code == 409
    assert own.status_code == 422
    assert own.json()["detail"][0]["loc"] == ["path", "account_id"]


def test_key_status(client: TestClient, admins: dict[Role, StaffLogin]) -> None:
    response = client.get("/v1/admin/keys", headers=admins[Role.SECURITY_ADMIN].headers)

    body = response.json()
    assert response.status_code == 200, response.text
    assert body["pi_active_key"] in body["pi_key_ids"]
    assert body["account_rows_under_other_keys"] == 0
    assert body["seeker_rows_under_other_keys"] == 0
    assert body["audit_chain_key"] == body["audit_active_key"] == "audit1"
    assert body["audit_rotations"] == 0


def test_audit_search_and_verify(client: TestClient, admins: dict[Role, StaffLogin]) -> None:
    audit = admins[Role.AUDIT_ADMIN]
    _create(client, admins[Role.SYSTEM_ADMIN], "searched.user", mobile="13712345670")

    found = client.get(
        "/v1/audit/search", params={"action": "account.create"}, headers=audit.headers
    ).json()
    verified = client.get("/v1/audit/verify", headers=audit.headers).json()

    assert found
    assert {record["action"] for record in found} == {"account.create"}
    assert all(record["object_id"].startswith("account:staff-") for record in found)
    assert "13712345670" not in str(found)
    assert verified["ok"] is True, verified
    assert verified["checked"] >= len(found)


@pytest.mark.parametrize(
    ("role", "path"),
    [
        (Role.SECURITY_ADMIN, "/v1/admin/accounts"),
        (Role.AUDIT_ADMIN, "/v1/admin/accounts"),
        (Role.SYSTEM_ADMIN, "/v1/admin/keys"),
        (Role.AUDIT_ADMIN, "/v1/admin/role-assignments"),
        (Role.SYSTEM_ADMIN, "/v1/audit/search"),
        (Role.SECURITY_ADMIN, "/v1/audit/verify"),
    ],
)
def test_admins_separated(
    client: TestClient, admins: dict[Role, StaffLogin], role: Role, path: str
) -> None:
    assert client.get(path, headers=admins[role].headers).status_code == 403


def test_admin_pages_render(client: TestClient) -> None:
    for section in ("system", "security", "audit"):
        zh = client.get(f"/admin/{section}")
        en = client.get(f"/admin/{section}", params={"lang": "en"})
        assert zh.status_code == 200
        assert f'data-section="{section}"' in zh.text
        assert 'lang="zh-CN"' in zh.text
        assert 'lang="en"' in en.text
    assert client.get("/admin/root").status_code == 404
