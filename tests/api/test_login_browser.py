"""Staff login page and station page sign-out in headless Chromium, against the real API.

Each test serves a private copy of the payload store with its own identity database
and SMS outbox, creates a station staff account in 碑林区 (610103) and binds the
browser's generated device id the way a security administrator would. Screenshots go
to var/screenshots/login*.png.
"""

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Page, expect

from api.app import create_app
from api.security.identity import IdentityService
from api.security.passwords import hash_password
from api.security.sms import OutboxSmsGateway
from api.settings import AuthSettings, CacheSettings, DataSettings, Settings
from store.identity import CITY_ORG_ID, Organisation, Role
from store.sqlite import SqliteStore
from tests.api.test_middleware import _production_settings
from tests.fix_browser import SCREENSHOTS, PageRecord, foreign_requests, serve
from tests.store.test_identity_store import TREE

pytestmark = pytest.mark.browser

LOGIN = "zhang.wei"
PASSWORD = "Xian-Station-2026"
BEILIN = Organisation(
    "district:610103", CITY_ORG_ID, "district", "碑林区就业服务中心", "610103", "610103"
)


@dataclass
class LoginServer:
    """A served app, its identity service and the created staff account."""

    url: str
    identity: IdentityService
    account_id: str

    def codes(self) -> list[str]:
        """Return every SMS code in the development outbox, oldest first."""
        gateway = self.identity.gateway
        assert isinstance(gateway, OutboxSmsGateway)
        found = [re.search(r"验证码 (\d{6})", item["text"]) for item in gateway.messages()]
        return [match.group(1) for match in found if match is not None]


@pytest.fixture
def server(xss_store: SqliteStore, tmp_path: Path) -> Iterator[LoginServer]:
    copy = tmp_path / "store.sqlite"
    shutil.copy(xss_store.path, copy)
    settings = Settings(
        data=DataSettings(store_path=copy),
        cache=CacheSettings(rate_limit_per_minute=0),
        auth=AuthSettings(
            identity_path=tmp_path / "identity.sqlite", sms_outbox_path=tmp_path / "outbox.jsonl"
        ),
    )
    app = create_app(settings, store=SqliteStore(copy))
    with serve(app) as url:
        identity: IdentityService = app.state.identity
        identity.store.seed_organisations([*TREE, BEILIN])
        created = identity.create_staff(
            login=LOGIN, name="张伟", mobile="13800138000", org_id=BEILIN.org_id,
            roles=[Role.STATION_STAFF], password=PASSWORD,
        )  # fmt: skip
        yield LoginServer(url, identity, created.account.account_id)


def _open_login(page: Page, server: LoginServer, bind: bool = True, query: str = "") -> str:
    """Open the login page and return its device id, bound to the account unless ``bind``."""
    page.goto(server.url + "/staff/login" + query)
    device = page.locator("#device-id").inner_text()
    assert re.fullmatch(r"web-[0-9a-f]{16}", device)
    if bind:
        identity = server.identity
        identity.store.bind_device(server.account_id, device, "test", identity.clock())
    return device


def _enter_password(page: Page, password: str = PASSWORD) -> None:
    page.locator("#login-name").fill(LOGIN)
    page.locator("#login-password").fill(password)
    page.get_by_role("button", name="下一步").click()


def _enter_code(page: Page, server: LoginServer) -> None:
    """Wait for the code step, then submit the newest code of the outbox."""
    expect(page.locator("#code-form")).to_be_visible()
    page.locator("#login-code").fill(server.codes()[-1])
    page.get_by_role("button", name="登录", exact=True).click()


def _sign_in(page: Page, server: LoginServer) -> str:
    """Log in through the page and return the device id."""
    device = _open_login(page, server)
    _enter_password(page)
    _enter_code(page, server)
    page.wait_for_url(re.compile(r"/staff\?lang=zh$"))
    page.locator("#anchor-list button.anchor-item").first.wait_for()
    return device


def _screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def test_login_edit_logout(page: tuple[Page, PageRecord], server: LoginServer) -> None:
    browser_page, record = page
    device = _open_login(browser_page, server)
    outbox_note = browser_page.locator("#outbox-note")
    _enter_password(browser_page)

    expect(browser_page.locator("#code-hint")).to_have_text(
        "验证码已发送到账号绑定的手机，5 分钟内有效，只能使用一次。"
    )
    expect(outbox_note).to_be_visible()
    gateway = server.identity.gateway
    assert isinstance(gateway, OutboxSmsGateway)
    expect(outbox_note.locator("code")).to_have_text(str(gateway.path.resolve()))
    _screenshot(browser_page, "login_code.png")
    browser_page.locator("#login-code").fill(server.codes()[-1])
    browser_page.get_by_role("button", name="登录", exact=True).click()
    browser_page.wait_for_url(re.compile(r"/staff\?lang=zh$"))

    expect(browser_page.locator("#staff-me")).to_contain_text("碑林区就业服务中心")
    item = browser_page.locator("#anchor-list button.anchor-item").first
    item.click()
    expect(browser_page.locator("#anchor-form")).to_be_visible()
    browser_page.locator("#f-address").fill("碑林区测试路 1 号")
    browser_page.locator("#f-reason").fill("现场核实地址")
    browser_page.get_by_role("button", name="保存").click()
    expect(browser_page.locator("#save-status")).to_contain_text("已保存")

    token = browser_page.evaluate("window.sessionStorage.getItem('doorstep.staffToken')")
    assert token
    headers = {"Authorization": f"Bearer {token}", "X-Device-ID": device}
    anchor_id = item.get_attribute("data-anchor-id")
    saved = httpx2.get(f"{server.url}/v1/staff/anchors/{anchor_id}", headers=headers)
    assert saved.json()["anchor"]["address"] == "碑林区测试路 1 号"

    browser_page.get_by_role("button", name="退出登录").click()
    browser_page.wait_for_url(re.compile(r"/staff/login\?lang=zh&reason=logout$"))
    expect(browser_page.locator("#login-notice")).to_have_text("您已退出登录。")
    assert browser_page.evaluate("window.sessionStorage.getItem('doorstep.staffToken')") is None
    assert httpx2.get(f"{server.url}/v1/staff/me", headers=headers).status_code == 401

    assert not [url for url in record.requests if token in url]
    assert foreign_requests(record, server.url) == []
    assert record.console_errors == []


def test_login_lockout_after_5_failures(page: tuple[Page, PageRecord], server: LoginServer) -> None:
    browser_page, _ = page
    _open_login(browser_page, server)
    error = browser_page.locator("#login-error")
    for _ in range(4):
        _enter_password(browser_page, "Wrong-Password-1")
        expect(error).to_have_text("登录名或密码错误。连续错误 5 次，账号将被锁定 30 分钟。")
        browser_page.evaluate("document.getElementById('login-error').textContent = ''")

    _enter_password(browser_page, "Wrong-Password-1")
    expect(error).to_have_text("账号已锁定，请在 30 分钟后重试。")
    # The right password is refused while the account is locked, and sends no code.
    _enter_password(browser_page)
    expect(error).to_have_text(re.compile(r"^账号已锁定，请在 (29|30) 分钟后重试。$"))
    assert server.codes() == []
    _screenshot(browser_page, "login_locked.png")


def test_login_wrong_sms_code(page: tuple[Page, PageRecord], server: LoginServer) -> None:
    browser_page, _ = page
    _open_login(browser_page, server)
    _enter_password(browser_page)
    expect(browser_page.locator("#code-form")).to_be_visible()
    right = server.codes()[-1]
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    browser_page.locator("#login-code").fill(wrong)
    browser_page.get_by_role("button", name="登录", exact=True).click()
    expect(browser_page.locator("#login-error")).to_have_text("验证码错误，请核对后重新输入。")
    expect(browser_page.locator("#code-form")).to_be_visible()
    _screenshot(browser_page, "login_wrong_code.png")

    # The code stays usable after one wrong attempt.
    browser_page.locator("#login-code").fill(right)
    browser_page.get_by_role("button", name="登录", exact=True).click()
    browser_page.wait_for_url(re.compile(r"/staff\?lang=zh$"))


def test_login_unbound_device(page: tuple[Page, PageRecord], server: LoginServer) -> None:
    browser_page, _ = page
    device = _open_login(browser_page, server, bind=False)
    _enter_password(browser_page)
    _enter_code(browser_page, server)

    expect(browser_page.locator("#login-error")).to_have_text(
        f"本设备（{device}）尚未绑定到该账号。请把设备编号交给安全管理员绑定后，重新登录。"
    )
    expect(browser_page.locator("#password-form")).to_be_visible()
    # The id is kept in localStorage, so the one given to the administrator stays valid.
    browser_page.reload()
    expect(browser_page.locator("#device-id")).to_have_text(device)


def test_station_page_401_returns_to_login(
    page: tuple[Page, PageRecord], server: LoginServer
) -> None:
    browser_page, _ = page
    _sign_in(browser_page, server)
    server.identity.store.revoke_account_sessions(
        server.account_id, server.identity.clock(), "locked"
    )

    browser_page.get_by_role("button", name="搜索").click()
    browser_page.wait_for_url(re.compile(r"/staff/login\?lang=zh&reason=expired$"))
    expect(browser_page.locator("#login-notice")).to_contain_text("登录已失效")
    assert browser_page.evaluate("window.sessionStorage.getItem('doorstep.staffToken')") is None


def test_station_page_without_token(page: tuple[Page, PageRecord], server: LoginServer) -> None:
    browser_page, _ = page
    browser_page.goto(server.url + "/staff?lang=en")
    browser_page.wait_for_url(re.compile(r"/staff/login\?lang=en$"))
    expect(browser_page.locator("#login-title")).to_have_text("Staff sign-in")


def test_login_forces_password_change(page: tuple[Page, PageRecord], server: LoginServer) -> None:
    browser_page, _ = page
    long_ago = server.identity.clock() - timedelta(days=91)
    server.identity.store.set_password(server.account_id, hash_password(PASSWORD), long_ago)
    _open_login(browser_page, server)
    _enter_password(browser_page)
    _enter_code(browser_page, server)

    change = browser_page.locator("#change-form")
    expect(change).to_be_visible()
    browser_page.locator("#change-current").fill(PASSWORD)
    browser_page.locator("#change-new").fill("short")
    browser_page.locator("#change-confirm").fill("short")
    browser_page.get_by_role("button", name="修改密码并继续").click()
    expect(browser_page.locator("#login-error")).to_contain_text("新密码不符合要求")

    browser_page.locator("#change-new").fill("Beilin-Station-2027")
    browser_page.locator("#change-confirm").fill("Beilin-Station-2027")
    browser_page.get_by_role("button", name="修改密码并继续").click()
    browser_page.wait_for_url(re.compile(r"/staff\?lang=zh$"))
    browser_page.locator("#anchor-list button.anchor-item").first.wait_for()


@pytest.mark.parametrize(
    ("query", "landing"),
    [
        ("?next=/docs", r"/docs\?lang=zh$"),
        ("?next=https://example.com/", r"/staff\?lang=zh$"),
        ("?next=//example.com/staff", r"/staff\?lang=zh$"),
    ],
)
def test_login_returns_to_allowed_page(
    page: tuple[Page, PageRecord], server: LoginServer, query: str, landing: str
) -> None:
    browser_page, record = page
    _open_login(browser_page, server, query=query)
    _enter_password(browser_page)
    _enter_code(browser_page, server)

    browser_page.wait_for_url(re.compile(landing))
    assert browser_page.url.startswith(server.url)
    assert foreign_requests(record, server.url) == []


def test_docs_sends_to_login_in_production(
    page: tuple[Page, PageRecord], xss_store: SqliteStore, tmp_path: Path
) -> None:
    browser_page, _ = page
    settings = _production_settings(tmp_path, xss_store)
    with serve(create_app(settings, store=xss_store)) as url:
        browser_page.goto(url + "/docs")

        browser_page.wait_for_url(re.compile(r"/staff/login\?lang=zh&reason=expired&next=%2Fdocs$"))
        expect(browser_page.locator("#login-notice")).to_be_visible()
