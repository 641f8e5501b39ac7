"""The community through-train page in Debian's headless Chromium, on the real data store."""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from api.app import create_app
from api.settings import DataSettings, Settings
from store.sqlite import SqliteStore
from tests.fix_browser import SCREENSHOTS, PageRecord, foreign_requests, serve

pytestmark = pytest.mark.browser

# Hu Yi community (胡一社区), placed at the 胡家庙街道 office POI.
HUYI = "610102009012"


@pytest.fixture(scope="module")
def tt_url(full_store: SqliteStore) -> Iterator[str]:
    with serve(
        create_app(Settings(data=DataSettings(store_path=full_store.path)), full_store)
    ) as url:
        yield url


def test_through_train_page_lists_employers(page: tuple[Page, PageRecord], tt_url: str) -> None:
    browser_page, record = page

    browser_page.goto(f"{tt_url}/through-train?community={HUYI}")

    # The first request loads the regions and plans up to 80 itineraries on a shared machine.
    expect(browser_page.locator("#tt-place")).to_contain_text("胡一社区居民委员会", timeout=90_000)
    expect(browser_page.locator("#tt-place")).to_contain_text("街道办事处")
    sections = browser_page.locator(".tt-mode")
    expect(sections).to_have_count(2)
    expect(sections.first).to_have_attribute("data-mode", "walk")
    transit = browser_page.locator(".tt-mode[data-mode=transit]")
    expect(transit.locator("h3")).to_contain_text(re.compile(r"公共交通：30分钟内可到达 [\d,]+ 家"))
    expect(transit.locator(".tt-employer").first).to_be_visible()
    expect(transit.locator(".tt-group").first).to_contain_text(re.compile(r"地铁|公交|步行"))
    markers = browser_page.locator("#map path.leaflet-interactive")
    assert markers.count() == browser_page.locator(".tt-employer").count()
    expect(browser_page.locator("#tt-print")).to_be_enabled()

    browser_page.emulate_media(media="print")
    expect(browser_page.locator("#map")).to_be_hidden()
    expect(browser_page.locator(".tt-panel")).to_be_hidden()
    expect(browser_page.locator("#tt-notice")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(SCREENSHOTS / "through-train-print.png"), full_page=True)

    assert foreign_requests(record, tt_url) == []
    assert record.console_errors == []
    assert record.dialogs == []


def test_through_train_page_in_english(page: tuple[Page, PageRecord], tt_url: str) -> None:
    browser_page, record = page

    browser_page.goto(f"{tt_url}/through-train?lang=en")
    browser_page.fill("#tt-community", HUYI)
    browser_page.uncheck("input[value=walk]")
    browser_page.fill("#tt-minutes", "20")
    browser_page.click("#tt-submit")

    sections = browser_page.locator(".tt-mode")
    expect(sections).to_have_count(1)
    expect(sections.first.locator("h3")).to_contain_text("Public transport:")
    expect(sections.first.locator("h3")).to_contain_text("within 20 min")
    expect(browser_page.locator("#tt-place")).to_contain_text("street office")
    assert record.console_errors == []


def test_language_switch_keeps_community(page: tuple[Page, PageRecord], tt_url: str) -> None:
    browser_page, record = page
    browser_page.goto(f"{tt_url}/through-train?lang=en")
    browser_page.fill("#tt-community", HUYI)
    browser_page.click("#tt-submit")
    expect(browser_page.locator("#tt-place")).to_contain_text("street office", timeout=90_000)

    browser_page.click("#lang-switch")

    expect(browser_page).to_have_url(re.compile(rf"lang=zh.*community={HUYI}"))
    expect(browser_page.locator("#tt-community")).to_have_value(HUYI)
    expect(browser_page.locator("#tt-place")).to_contain_text("街道办事处", timeout=90_000)
    browser_page.click("#lang-switch")
    expect(browser_page).to_have_url(re.compile(rf"lang=en.*community={HUYI}"))
    expect(browser_page.locator("#tt-community")).to_have_value(HUYI)
    assert record.console_errors == []


def test_through_train_page_shows_errors(page: tuple[Page, PageRecord], tt_url: str) -> None:
    browser_page, record = page

    browser_page.goto(f"{tt_url}/through-train?community=610102999999")

    expect(browser_page.locator("#tt-status")).to_contain_text("未找到该社区代码")
    expect(browser_page.locator("#tt-status")).to_have_class(re.compile("error"))
    expect(browser_page.locator(".tt-mode")).to_have_count(0)
    assert foreign_requests(record, tt_url) == []
    assert record.dialogs == []
