"""Both pages in Debian's headless Chromium: same-origin requests only, payloads shown as text.

Run ``scripts/test-deps.sh`` first; Playwright drives /usr/bin/chromium and never
downloads a browser of its own. Screenshots go to var/screenshots/.
"""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Request,
    expect,
    sync_playwright,
)

from api.app import create_app
from api.settings import DataSettings, Settings
from store.sqlite import SqliteStore
from tests.api.test_pages import XSS_PAYLOADS, build_stub_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
TIMEOUT_MS = 15_000


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _serve(app: FastAPI) -> Iterator[str]:
    """Serve an app with uvicorn on a free 127.0.0.1 port in a thread; yield its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail(f"uvicorn did not start on 127.0.0.1:{port} within 10 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def base_url(data_dir: Path) -> Iterator[str]:
    """The pages over stub JSON routes whose anchors sit far apart (no clustering)."""
    with _serve(build_stub_app(data_dir)) as url:
        yield url


@pytest.fixture(scope="module")
def app_url(xss_store: SqliteStore) -> Iterator[str]:
    """The real application on the small store of XSS payloads."""
    settings = Settings(data=DataSettings(store_path=xss_store.path))
    with _serve(create_app(settings, store=xss_store)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found; run scripts/test-deps.sh to install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class PageRecord:
    """What a page did while the test drove it."""

    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, PageRecord]]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    record = PageRecord()

    def on_dialog(dialog: Dialog) -> None:
        record.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            record.console_errors.append(message.text)

    def on_request(request: Request) -> None:
        record.requests.append(request.url)

    opened.on("dialog", on_dialog)
    opened.on("console", on_console)
    opened.on("request", on_request)
    yield opened, record
    context.close()


def _foreign_requests(record: PageRecord, base_url: str) -> list[str]:
    origin = urlsplit(base_url)
    return [
        url
        for url in record.requests
        if (urlsplit(url).scheme, urlsplit(url).netloc) != (origin.scheme, origin.netloc)
    ]


def test_city_map_page(page: tuple[Page, PageRecord], base_url: str) -> None:
    browser_page, record = page
    browser_page.goto(base_url + "/")

    browser_page.locator("#stats-items dd").first.wait_for()
    markers = browser_page.locator("path.anchor-marker")
    markers.first.wait_for()
    assert markers.count() == len(XSS_PAYLOADS)

    # The popup of the previous marker fades out before it leaves the page.
    popup_titles = browser_page.locator(".leaflet-popup-content .popup-title")
    seen = []
    for index in range(markers.count()):
        markers.nth(index).dispatch_event("click")
        expect(popup_titles).to_have_count(1)
        seen.append(popup_titles.inner_text())
    assert sorted(seen) == sorted(XSS_PAYLOADS)

    browser_page.get_by_label("人社/就业服务机构").check()
    hr_office = browser_page.locator("path.layer-hr_offices").first
    hr_office.dispatch_event("click")
    expect(popup_titles).to_have_count(1)
    assert popup_titles.inner_text() == "人社局" + XSS_PAYLOADS[1]

    assert browser_page.locator("#legend-items li").count() == 7
    assert browser_page.get_by_text("商圈级估计").first.is_visible()
    assert browser_page.get_by_text("模拟数据").is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(SCREENSHOTS / "city_map.png"))

    assert record.dialogs == []
    assert record.console_errors == []
    assert _foreign_requests(record, base_url) == []
    assert any("/v1/anchors?" in url and "coord_sys=wgs84" in url for url in record.requests)


def test_seeker_page_recommendations(page: tuple[Page, PageRecord], base_url: str) -> None:
    browser_page, record = page
    browser_page.goto(base_url + "/seeker")

    seekers = browser_page.locator("#seeker-list button.seeker")
    seekers.first.wait_for()
    assert seekers.first.locator(".badge").inner_text() == "模拟"
    seekers.first.click()

    titles = browser_page.locator("#job-list .job-title")
    titles.first.wait_for()
    assert sorted(titles.all_inner_texts()) == sorted(XSS_PAYLOADS)
    companies = browser_page.locator("#job-list .job-company").all_inner_texts()
    assert sorted(companies) == sorted("公司" + payload for payload in XSS_PAYLOADS)
    assert browser_page.locator("#job-list .distance", has_text="位置仅知在西安").count() == 1
    assert browser_page.locator("#job-list .distance", has_text="约1.2公里").count() == 1
    assert browser_page.locator("path.job-marker").count() == len(XSS_PAYLOADS)

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(SCREENSHOTS / "seeker.png"))

    assert record.dialogs == []
    assert record.console_errors == []
    assert _foreign_requests(record, base_url) == []


def test_seeker_page_map_click(page: tuple[Page, PageRecord], base_url: str) -> None:
    browser_page, record = page
    browser_page.goto(base_url + "/seeker?lang=en")
    browser_page.locator("#seeker-list button.seeker").first.wait_for()

    browser_page.locator("#map").click(position={"x": 300, "y": 300})

    browser_page.locator("#job-list .job-title").first.wait_for()
    assert browser_page.locator("#job-list .job-title").count() == len(XSS_PAYLOADS)
    assert browser_page.get_by_text("Page 1, 6 jobs").is_visible()
    nearby = [url for url in record.requests if "/v1/jobs/nearby?" in url]
    assert len(nearby) == 1
    assert "radius_m=3000" in nearby[0]
    assert "coord_sys=wgs84" in nearby[0]
    assert "lang=en" in nearby[0]

    assert record.dialogs == []
    assert record.console_errors == []
    assert _foreign_requests(record, base_url) == []


def test_real_app_pages(page: tuple[Page, PageRecord], app_url: str) -> None:
    browser_page, record = page

    browser_page.goto(app_url + "/")
    browser_page.locator("#stats-items dd").first.wait_for()
    browser_page.locator(".anchor-marker, .marker-cluster").first.wait_for()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(SCREENSHOTS / "city_map_app.png"))

    browser_page.goto(app_url + "/seeker")
    browser_page.locator("#seeker-list button.seeker").first.click()
    expect(browser_page.locator("#jobs-status")).not_to_have_text("加载中…")
    browser_page.screenshot(path=str(SCREENSHOTS / "seeker_app.png"))

    assert browser_page.locator("#jobs-status.error").count() == 0
    assert record.dialogs == []
    assert record.console_errors == []
    assert _foreign_requests(record, app_url) == []
