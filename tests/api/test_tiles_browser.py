"""The city map with the Amap and Tianditu tile presets in Debian's headless Chromium.

Every request that does not go to the test server is intercepted: tile requests get
a 1-pixel PNG and anything else is aborted, so the test never reaches the tile hosts.
"""

import base64
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Route
from pydantic import SecretStr

from api.app import create_app
from api.settings import DataSettings, ServerSettings, Settings
from store.sqlite import SqliteStore
from tests.fix_browser import PageRecord, foreign_requests, serve

pytestmark = pytest.mark.browser

PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
AMAP_TILE = re.compile(r"^https://webrd0[1-4]\.is\.autonavi\.com/appmaptile\?")
TIANDITU_TILE = re.compile(r"^https://t[0-7]\.tianditu\.gov\.cn/vec_w/wmts\?.*&tk=test-key$")


def _serve_with(store: SqliteStore, server: ServerSettings) -> Iterator[str]:
    # The map needs no commute model, and building it slows start-up on a busy machine.
    data = DataSettings(store_path=store.path, transit_model=False)
    settings = Settings(data=data, server=server)
    with serve(create_app(settings, store=store)) as url:
        yield url


@pytest.fixture(scope="module")
def amap_url(xss_store: SqliteStore) -> Iterator[str]:
    yield from _serve_with(xss_store, ServerSettings(tile_source="amap"))


@pytest.fixture(scope="module")
def tianditu_url(xss_store: SqliteStore) -> Iterator[str]:
    server = ServerSettings(tile_source="tianditu", tianditu_key=SecretStr("test-key"))
    yield from _serve_with(xss_store, server)


def _intercept_outside(browser_page: Page, base_url: str, tile: re.Pattern[str]) -> list[str]:
    """Fulfil tile requests with a blank PNG and abort every other request to another host."""
    served: list[str] = []

    def handle(route: Route) -> None:
        if tile.match(route.request.url):
            served.append(route.request.url)
            route.fulfill(status=200, content_type="image/png", body=PNG_1PX)
        else:
            route.abort()

    browser_page.route(lambda url: not url.startswith(base_url), handle)
    return served


def _open_map(browser_page: Page, base_url: str) -> None:
    """Open the city map and wait for its anchors and a first loaded tile."""
    with browser_page.expect_response(lambda response: "/v1/anchors?" in response.url):
        browser_page.goto(base_url + "/")
    browser_page.locator("img.leaflet-tile-loaded").first.wait_for()


def _anchor_requests(record: PageRecord) -> list[str]:
    return [url for url in record.requests if "/v1/anchors?" in url]


def test_city_map_amap_tiles(page: tuple[Page, PageRecord], amap_url: str) -> None:
    browser_page, record = page
    served = _intercept_outside(browser_page, amap_url, AMAP_TILE)

    _open_map(browser_page, amap_url)

    assert served
    outside = foreign_requests(record, amap_url)
    assert all(AMAP_TILE.match(url) for url in outside), outside
    anchors = _anchor_requests(record)
    assert anchors
    assert all("coord_sys=gcj02" in url for url in anchors)
    assert browser_page.locator(".leaflet-control-attribution", has_text="高德").count() == 1
    assert record.console_errors == []


def test_city_map_tianditu_tiles(page: tuple[Page, PageRecord], tianditu_url: str) -> None:
    browser_page, record = page
    served = _intercept_outside(browser_page, tianditu_url, TIANDITU_TILE)

    _open_map(browser_page, tianditu_url)

    assert served
    outside = foreign_requests(record, tianditu_url)
    assert all(TIANDITU_TILE.match(url) for url in outside), outside
    anchors = _anchor_requests(record)
    assert anchors
    assert all("coord_sys=wgs84" in url for url in anchors)
    assert browser_page.locator(".leaflet-control-attribution", has_text="天地图").count() == 1
    assert record.console_errors == []
