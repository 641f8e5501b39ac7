"""The three administrator pages in headless Chromium, against the real API and SQLite store.

One served app has a system, a security and an audit administrator of 雁塔区 (610113)
and one station account. Each page works for its own role and shows only a notice to
the others. Screenshots go to var/screenshots/admin*.png.
"""

import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from pydantic import SecretStr

from api.app import create_app
from api.settings import AuthSettings, DataSettings, Settings
from store.identity import Role
from store.sqlite import SqliteStore
from tests.api.staff_login import ORG_TREE, StaffLogin, log_in_staff
from tests.fix_browser import SCREENSHOTS, PageRecord, foreign_requests, serve

pytestmark = pytest.mark.browser

SECRET = "a" * 16 + "d" * 16 + "0123456789abcdef"
SECTIONS = {"system": Role.SYSTEM_ADMIN, "security": Role.SECURITY_ADMIN, "audit": Role.AUDIT_ADMIN}


@dataclass
class AdminServer:
    """A served app with one session per administrator role and a station account."""

    url: str
    admins: dict[Role, StaffLogin]
    station: StaffLogin


@pytest.fixture(scope="module")
def server(
    xss_store: SqliteStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AdminServer]:
    folder = tmp_path_factory.mktemp("admin-browser")
    copy = folder / "store.sqlite"
    shutil.copy(xss_store.path, copy)
    settings = Settings(
        data=DataSettings(store_path=copy),
        auth=AuthSettings(
            staff_token_secret=SecretStr(SECRET), identity_path=folder / "identity.sqlite"
        ),
    )
    app = create_app(settings, store=SqliteStore(copy))
    with serve(app) as url:
        client = TestClient(app)
        app.state.identity.store.seed_organisations(ORG_TREE)
        admins = {
            role: log_in_staff(client, "district:610113", role, device_id=f"pad-{role.value}")
            for role in SECTIONS.values()
        }
        station = log_in_staff(client, "station:610113001001", device_id="pad-station")
        yield AdminServer(url, admins, station)


def _open(
    page: Page, server: AdminServer, login: StaffLogin, section: str, lang: str = "zh"
) -> None:
    """Store the session as the login page does, then open an administrator page."""
    page.goto(f"{server.url}/staff/login?lang={lang}")
    page.evaluate(
        "token => window.sessionStorage.setItem('doorstep.staffToken', token)", login.token
    )
    page.evaluate("id => window.localStorage.setItem('doorstep.deviceId', id)", login.device_id)
    page.goto(f"{server.url}/admin/{section}?lang={lang}")


@pytest.mark.parametrize("section", list(SECTIONS))
def test_page_denied_to_other_admins(
    page: tuple[Page, PageRecord], server: AdminServer, section: str
) -> None:
    browser_page, record = page
    for role, login in server.admins.items():
        if role is SECTIONS[section]:
            continue
        _open(browser_page, server, login, section)
        expect(browser_page.locator("#admin-denied")).to_be_visible()
        expect(browser_page.locator(f"#panel-{section}")).to_be_hidden()
    assert not [url for url in record.requests if "/v1/admin/" in url or "/v1/audit/" in url]
    assert not record.console_errors
    assert not foreign_requests(record, server.url)


def test_system_page_disables_and_unlocks(
    page: tuple[Page, PageRecord], server: AdminServer
) -> None:
    browser_page, record = page
    _open(browser_page, server, server.admins[Role.SYSTEM_ADMIN], "system")
    row = browser_page.locator(f'#accounts tr[data-account-id="{server.station.account_id}"]')

    expect(row).to_contain_text("测*")
    row.get_by_role("button", name="停用").click()
    expect(row).to_contain_text("已停用")
    station_me = httpx2.get(server.url + "/v1/auth/me", headers=server.station.headers)
    row.get_by_role("button", name="解锁").click()
    expect(row).to_contain_text("正常")
    row.get_by_role("button", name="绑定设备").click()
    expect(browser_page.locator("#device-list")).to_contain_text("pad-station")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(SCREENSHOTS / "admin_system.png"), full_page=True)

    assert station_me.status_code == 401  # the disable ended the station session
    assert not record.console_errors
    assert not foreign_requests(record, server.url)


def test_system_page_creates_account(page: tuple[Page, PageRecord], server: AdminServer) -> None:
    browser_page, _ = page
    _open(browser_page, server, server.admins[Role.SYSTEM_ADMIN], "system", lang="en")
    form = browser_page.locator("#create-account")

    form.locator("input[name=login]").fill("wang.fang")
    form.locator("input[name=name]").fill("王芳")
    form.locator("input[name=mobile]").fill("13798765432")
    form.locator("input[name=org_id]").fill("station:610113001001")
    form.locator("select[name=role]").select_option("analyst")
    form.locator("input[name=password]").fill("Xian-Analyst-2026")
    form.get_by_role("button", name="Create").click()

    expect(browser_page.locator("#create-result")).to_contain_text("Account wang.fang created")
    expect(browser_page.locator("#accounts")).to_contain_text("wang.fang")
    expect(browser_page.locator("#accounts")).not_to_contain_text("13798765432")


def test_security_page_assigns_roles(page: tuple[Page, PageRecord], server: AdminServer) -> None:
    browser_page, record = page
    _open(browser_page, server, server.admins[Role.SECURITY_ADMIN], "security")
    expect(browser_page.locator("#key-status")).to_contain_text("audit1")
    row = browser_page.locator(f'#role-table tr[data-account-id="{server.station.account_id}"]')

    row.locator('input[value="analyst"]').check()
    row.get_by_role("button", name="保存角色").click()
    expect(browser_page.locator("#admin-status")).to_contain_text("已更新")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(SCREENSHOTS / "admin_security.png"), full_page=True)

    roles = httpx2.get(
        server.url + "/v1/admin/role-assignments",
        headers=server.admins[Role.SECURITY_ADMIN].headers,
    ).json()
    station = next(item for item in roles if item["account_id"] == server.station.account_id)
    assert station["roles"] == ["analyst", "station_staff"]
    assert not record.console_errors


def test_audit_page_searches_and_verifies(
    page: tuple[Page, PageRecord], server: AdminServer
) -> None:
    browser_page, record = page
    _open(browser_page, server, server.admins[Role.AUDIT_ADMIN], "audit")
    expect(browser_page.locator("#audit-table tbody tr").first).to_be_visible()

    browser_page.locator("#audit-search input[name=action]").fill("auth.login")
    with browser_page.expect_response(lambda reply: "action=auth.login" in reply.url):
        browser_page.get_by_role("button", name="查询").click()
    # The unfiltered list starts with the page's own audit.search record.
    expect(browser_page.locator("#audit-table tbody tr td:nth-child(5)").first).to_have_text(
        "auth.login"
    )
    actions = browser_page.locator("#audit-table tbody tr td:nth-child(5)").all_inner_texts()
    browser_page.get_by_role("button", name="校验日志链").click()
    expect(browser_page.locator("#verify-result")).to_contain_text("校验通过")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(SCREENSHOTS / "admin_audit.png"), full_page=True)

    assert actions
    assert all("auth.login" in action for action in actions)
    assert not record.console_errors
    assert not foreign_requests(record, server.url)
