"""Fixtures for tests that drive pages in Debian's headless Chromium through Playwright.

Run ``scripts/test-deps.sh`` first: Playwright drives /usr/bin/chromium and never
downloads a browser of its own. Apps are served by uvicorn on a free 127.0.0.1 port.
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
    sync_playwright,
)

CHROMIUM = Path("/usr/bin/chromium")
_START_TIMEOUT_S = 90.0
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO_ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
TIMEOUT_MS = 15_000


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve an app with uvicorn on a free 127.0.0.1 port in a thread; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    # Generous, because app start-up loads the store and runs beside other jobs on 2 cores.
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail(f"uvicorn did not start on 127.0.0.1:{port} within {_START_TIMEOUT_S} s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


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


def foreign_requests(record: PageRecord, base_url: str) -> list[str]:
    origin = urlsplit(base_url)
    return [
        url
        for url in record.requests
        if (urlsplit(url).scheme, urlsplit(url).netloc) != (origin.scheme, origin.netloc)
    ]


def open_staff_page(
    page: Page, base_url: str, token: str, device_id: str = "pad-01", lang: str = "zh"
) -> None:
    """Store a session token and device id as the login page does, then open the station page.

    Tests of the station page itself skip the login form this way; the login page has
    its own tests in tests/api/test_login_browser.py. The token must come from a real
    login of an account that has ``device_id`` bound.
    """
    page.goto(f"{base_url}/staff/login?lang={lang}")
    page.evaluate("token => window.sessionStorage.setItem('doorstep.staffToken', token)", token)
    page.evaluate("id => window.localStorage.setItem('doorstep.deviceId', id)", device_id)
    page.goto(f"{base_url}/staff?lang={lang}")
