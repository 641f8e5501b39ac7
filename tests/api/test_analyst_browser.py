"""The analyst dashboard in Debian's headless Chromium, on figures from the real data folder."""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.api.fix_analyst import DashboardServer
from tests.fix_browser import SCREENSHOTS, PageRecord, foreign_requests, serve

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def analyst_url(dashboard_server: DashboardServer) -> Iterator[str]:
    with serve(dashboard_server.client.app) as url:  # type: ignore[arg-type]
        yield url


def _open_dashboard(page: Page, url: str, token: str, lang: str = "zh") -> None:
    page.goto(f"{url}/staff/login?lang={lang}")
    page.evaluate("token => window.sessionStorage.setItem('doorstep.staffToken', token)", token)
    page.evaluate("id => window.localStorage.setItem('doorstep.deviceId', id)", "pad-01")
    page.goto(f"{url}/analyst?lang={lang}")


def test_dashboard_shows_figures_and_map(
    page: tuple[Page, PageRecord], analyst_url: str, dashboard_server: DashboardServer
) -> None:
    browser_page, record = page

    _open_dashboard(browser_page, analyst_url, dashboard_server.analyst.token)

    districts = browser_page.locator("table.an-districts tbody tr")
    expect(districts).to_have_count(11, timeout=30_000)
    expect(browser_page.locator("#an-circle-summary")).to_contain_text("4,307 个小区")
    expect(browser_page.locator("table.an-access tbody tr.an-city")).to_contain_text("全市")
    expect(browser_page.locator("table.an-group-scores")).to_contain_text("高校毕业生")
    expect(browser_page.locator("#an-simulated")).to_be_visible()
    expect(browser_page.locator(".leaflet-control-layers")).to_contain_text("缺口")
    expect(browser_page.locator("#an-figure-completion")).to_contain_text("尚无援助对象")
    expect(browser_page.locator("table.an-fairness-groups tbody tr")).to_have_count(4)
    expect(browser_page.locator(".an-fairness-summary")).to_contain_text(
        "172,695 次得分比较中有 0 次降分"
    )
    gaps = int((~dashboard_server.circle.places["covered"]).sum())
    stations = len(dashboard_server.circle.stations)
    # Gap places and stations are drawn; covered places are a layer switched off at first.
    expect(browser_page.locator("#map path.an-marker-gap")).to_have_count(gaps)
    expect(browser_page.locator("#map path.an-marker-station")).to_have_count(stations)
    expect(browser_page.locator("#map path.an-marker-covered")).to_have_count(0)
    overlays = browser_page.locator(".leaflet-control-layers-overlays label")
    overlays.filter(has_text="圈内").locator("input").dispatch_event("click")
    covered = int(dashboard_server.circle.places["covered"].sum())
    expect(browser_page.locator("#map path.an-marker-covered")).to_have_count(covered)
    browser_page.locator("#map path.an-marker-gap").first.dispatch_event("mouseover")
    expect(browser_page.locator(".leaflet-tooltip").first).to_contain_text("步行约")

    browser_page.locator("#an-catchment").select_option("30")
    expect(browser_page.locator("table.an-group-scores tbody tr").first).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(SCREENSHOTS / "analyst.png"), full_page=True)

    assert browser_page.evaluate("window.__xss") is None
    assert foreign_requests(record, analyst_url) == []
    assert record.console_errors == []
    assert record.dialogs == []


def test_dashboard_in_english(
    page: tuple[Page, PageRecord], analyst_url: str, dashboard_server: DashboardServer
) -> None:
    browser_page, record = page

    _open_dashboard(browser_page, analyst_url, dashboard_server.analyst.token, lang="en")

    expect(browser_page.locator("#an-circle-summary")).to_contain_text(
        re.compile(r"4,307 residential places")
    )
    expect(browser_page.locator("table.an-access tbody tr.an-city")).to_contain_text("City")
    expect(browser_page.locator("html")).to_have_attribute("lang", "en")
    assert record.console_errors == []


def test_dashboard_without_session_opens_login(
    page: tuple[Page, PageRecord], analyst_url: str
) -> None:
    browser_page, _ = page

    browser_page.goto(f"{analyst_url}/analyst")

    expect(browser_page).to_have_url(re.compile(r"/staff/login\?lang=zh&next=%2Fanalyst"))
