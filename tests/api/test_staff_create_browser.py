"""The staff page's new-anchor form in headless Chromium, against the real API and SQLite store.

Each test serves a private copy of the payload store with a logged-in staff session of
碑林区 (610103) and checks the outcome through the staff API: how many anchors carry the new
name, and what was stored. Screenshots go to var/screenshots/staff_create*.png.
"""

import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, Request, Route, expect
from pydantic import SecretStr

from api.app import create_app
from api.settings import AuthSettings, CacheSettings, DataSettings, Settings
from geo.crs import to_wgs84
from store.sqlite import SqliteStore
from tests.api.staff_login import StaffLogin, log_in_staff
from tests.fix_browser import (
    SCREENSHOTS,
    PageRecord,
    foreign_requests,
    open_staff_page,
    serve,
)

pytestmark = pytest.mark.browser

SECRET = "s" * 16 + "t" * 16 + "0123456789abcdef"

# WGS84, about 1 km south of the Bell Tower, inside 碑林区.
BEILIN_POINT = (108.9450, 34.2500)
# GCJ-02, inside 碑林区. Its WGS84 point lies about 470 m to the south-west.
BEILIN_POINT_GCJ02 = (108.9500, 34.2480)
# WGS84, in 雁塔区, outside the session's scope.
YANTA_POINT = (108.9500, 34.2200)
# A credit code whose check character should be U, and the corrected code.
BAD_CREDIT_CODE = "91610103MA6U2XXXX1"
GOOD_CREDIT_CODE = "91610103MA6U2XXXXU"


@dataclass
class StaffServer:
    """A served app with a staff session and its store."""

    url: str
    staff: StaffLogin
    store: SqliteStore

    @property
    def token(self) -> str:
        return self.staff.token

    def headers(self) -> dict[str, str]:
        return self.staff.headers

    def anchors_named(self, name: str) -> list[dict[str, Any]]:
        """Return the anchors in the session's scope whose name is exactly ``name``."""
        response = httpx2.get(
            self.url + "/v1/staff/anchors",
            params={"q": name, "limit": 200},
            headers=self.headers(),
        )
        assert response.status_code == 200, response.text
        return [item for item in response.json()["items"] if item["name"] == name]


@contextmanager
def _serve_staff(xss_store: SqliteStore, tmp_path: Path) -> Iterator[StaffServer]:
    """Serve a copy of the payload store with a staff session of 碑林区."""
    copy = tmp_path / "store.sqlite"
    shutil.copy(xss_store.path, copy)
    store = SqliteStore(copy)
    settings = Settings(
        data=DataSettings(store_path=copy),
        cache=CacheSettings(rate_limit_per_minute=0),
        auth=AuthSettings(
            staff_token_secret=SecretStr(SECRET), identity_path=tmp_path / "identity.sqlite"
        ),
    )
    app = create_app(settings, store=store)
    with serve(app) as url:
        staff = log_in_staff(TestClient(app), org_id="district:610103")
        yield StaffServer(url, staff, store)


@pytest.fixture
def server(xss_store: SqliteStore, tmp_path: Path) -> Iterator[StaffServer]:
    with _serve_staff(xss_store, tmp_path) as staff_server:
        yield staff_server


@pytest.fixture
def anchor_posts(page: tuple[Page, PageRecord]) -> list[Request]:
    """The POST requests to /v1/staff/anchors that the page sends."""
    posts: list[Request] = []

    def on_request(request: Request) -> None:
        if request.method == "POST" and "/v1/staff/anchors?" in request.url:
            posts.append(request)

    page[0].on("request", on_request)
    return posts


def _sign_in(page: Page, server: StaffServer) -> None:
    open_staff_page(page, server.url, server.token, server.staff.device_id)
    page.locator("#anchor-list button.anchor-item").first.wait_for()


def _open_create_form(page: Page, name: str, reason: str = "现场走访发现") -> None:
    page.get_by_role("button", name="新增锚点").click()
    expect(page.locator("#create-panel")).to_be_visible()
    page.locator("#new-name").fill(name)
    page.locator("#new-reason").fill(reason)


def _type_point(page: Page, point: tuple[float, float], coord_sys: str = "wgs84") -> None:
    page.locator("#new-coord_sys").select_option(coord_sys)
    page.locator("#new-lon").fill(str(point[0]))
    page.locator("#new-lat").fill(str(point[1]))


def _screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def test_create_by_map_click_double_submit(
    page: tuple[Page, PageRecord], server: StaffServer, anchor_posts: list[Request]
) -> None:
    page, record = page
    name = "碑林测试电子厂"
    _sign_in(page, server)
    # Opening an anchor zooms the map to it, so a click just below it is inside 碑林区.
    page.locator("#anchor-list button.anchor-item").first.click()
    box = page.locator("#map .staff-pin").bounding_box()
    assert box is not None
    _open_create_form(page, name)
    expect(page.locator("#map .staff-pin")).to_have_count(0)

    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 + 40)
    expect(page.locator("#map .staff-point-pin")).to_be_visible()
    lon = float(page.locator("#new-lon").input_value())
    lat = float(page.locator("#new-lat").input_value())
    assert 108.9 < lon < 109.0
    assert 34.2 < lat < 34.3
    page.locator("#new-address").fill("碑林区测试路 1 号")
    page.locator("#new-industry_code").fill("39")
    page.locator("#new-size").select_option("medium")
    page.locator("#new-key_enterprise").check()
    page.locator("#new-contact_role").fill("人事部")
    page.locator("#new-shift_times").fill("08:00-17:00，20:00-08:00")
    page.locator("#new-shuttle_name").fill("钟楼站")
    page.locator('[data-field="entrance"]').get_by_role("button", name="在地图上选取").click()
    expect(page.locator("#new-pick-status")).to_have_text("请在地图上点击入口的位置。")
    page.mouse.click(box["x"] + box["width"] / 2 + 10, box["y"] + box["height"] / 2 + 40)
    expect(page.locator("#map .staff-point-entrance")).to_be_visible()
    entrance_lon = float(page.locator("#new-entrance_lon").input_value())
    assert entrance_lon > lon
    # The entrance pick does not move the pin.
    assert float(page.locator("#new-lon").input_value()) == lon
    _screenshot(page, "staff_create_form.png")
    page.locator("#create-submit").dblclick()

    expect(page.locator("#save-status")).to_have_text(f"已创建锚点“{name}”（草稿）。")
    created = server.anchors_named(name)
    assert len(created) == 1
    anchor = created[0]
    assert anchor["state"] == "draft"
    assert anchor["precision"] == "exact"
    assert anchor["lon"] == pytest.approx(lon, abs=1e-6)
    assert anchor["industry_code"] == "39"
    assert anchor["size"] == "medium"
    assert anchor["key_enterprise"] is True
    assert anchor["shift_times"] == ["08:00-17:00", "20:00-08:00"]
    assert anchor["shuttle_stop"]["name"] == "钟楼站"
    stored = server.store.get_anchor(anchor["anchor_id"])
    assert stored is not None
    assert stored.entrance_lon == pytest.approx(entrance_lon, abs=1e-6)
    keys = {post.headers["idempotency-key"] for post in anchor_posts}
    assert len(keys) == 1

    # The new anchor is selected in the edit panel, listed and drawn as a draft.
    expect(page.locator("#create-panel")).to_be_hidden()
    expect(page.locator("#f-name")).to_have_value(name)
    expect(page.locator("#anchor-version")).to_have_text("版本 1")
    selected = page.locator('#anchor-list button.anchor-item[aria-pressed="true"]')
    expect(selected.locator(".anchor-name")).to_have_text(name)
    mark = page.locator(f'.leaflet-marker-icon[data-anchor-id="{anchor["anchor_id"]}"]')
    expect(mark).to_have_class(re.compile(r"\bmark-state-draft\b"))
    expect(mark).to_have_class(re.compile(r"\bmark-precision-exact\b"))
    fill = mark.evaluate("(node) => getComputedStyle(node).backgroundColor")
    assert fill == "rgb(86, 180, 233)"
    _screenshot(page, "staff_create_done.png")
    assert record.dialogs == []
    assert record.console_errors == []
    assert foreign_requests(record, server.url) == []


def test_create_request_replayed_once(
    page: tuple[Page, PageRecord], server: StaffServer, anchor_posts: list[Request]
) -> None:
    page, _ = page
    name = "重放测试单位"
    _sign_in(page, server)
    _open_create_form(page, name)
    _type_point(page, BEILIN_POINT)
    page.get_by_role("button", name="创建锚点").click()
    expect(page.locator("#save-status")).to_contain_text("已创建锚点")
    assert len(anchor_posts) == 1
    sent = anchor_posts[0]

    replay = httpx2.post(
        sent.url,
        content=sent.post_data_buffer,
        headers={
            **server.headers(),
            "Content-Type": "application/json",
            "Idempotency-Key": sent.headers["idempotency-key"],
        },
    )

    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    created = server.anchors_named(name)
    assert len(created) == 1
    assert replay.json()["anchor"]["anchor_id"] == created[0]["anchor_id"]


def test_create_retry_after_network_error(
    page: tuple[Page, PageRecord], server: StaffServer, anchor_posts: list[Request]
) -> None:
    page, _ = page
    name = "断网重试单位"
    _sign_in(page, server)
    _open_create_form(page, name)
    _type_point(page, BEILIN_POINT)
    lost: list[int] = []

    def lose_first_answer(route: Route) -> None:
        # The server handles the first POST, but its response never reaches the page.
        if route.request.method == "POST" and not lost:
            lost.append(route.fetch().status)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/v1/staff/anchors?*", lose_first_answer)
    page.get_by_role("button", name="创建锚点").click()

    expect(page.locator("#create-status")).to_contain_text("未能确认锚点是否已创建（网络中断）")
    assert lost == [201]
    assert len(server.anchors_named(name)) == 1
    _screenshot(page, "staff_create_retry.png")

    with page.expect_response(lambda response: response.request.method == "POST") as answer:
        page.get_by_role("button", name="创建锚点").click()
    assert answer.value.status == 201
    assert answer.value.headers["idempotent-replayed"] == "true"
    expect(page.locator("#save-status")).to_have_text(f"已创建锚点“{name}”（草稿）。")
    assert len(server.anchors_named(name)) == 1
    keys = [post.headers["idempotency-key"] for post in anchor_posts]
    assert len(keys) == 2
    assert keys[0] == keys[1]


def test_create_bad_credit_code_beside_field(
    page: tuple[Page, PageRecord], server: StaffServer, anchor_posts: list[Request]
) -> None:
    page, _ = page
    name = "信用代码测试单位"
    _sign_in(page, server)
    _open_create_form(page, name)
    _type_point(page, BEILIN_POINT)
    page.locator("#new-credit_code").fill(BAD_CREDIT_CODE)
    page.get_by_role("button", name="创建锚点").click()

    error = page.locator('#create-form .form-row[data-field="credit_code"] .field-error')
    expect(error).to_have_text("统一社会信用代码校验位错误，应为 U")
    expect(page.locator("#new-credit_code")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#create-status")).to_have_text("未通过检查，请按提示更正。")
    assert server.anchors_named(name) == []
    _screenshot(page, "staff_create_invalid.png")

    page.locator("#new-credit_code").fill(GOOD_CREDIT_CODE)
    page.get_by_role("button", name="创建锚点").click()
    expect(page.locator("#save-status")).to_contain_text("已创建锚点")
    assert [anchor["credit_code"] for anchor in server.anchors_named(name)] == [GOOD_CREDIT_CODE]
    # A changed form is a new attempt, so it gets a new key.
    keys = [post.headers["idempotency-key"] for post in anchor_posts]
    assert len(keys) == 2
    assert keys[0] != keys[1]


def test_create_out_of_scope_point(page: tuple[Page, PageRecord], server: StaffServer) -> None:
    page, _ = page
    name = "雁塔测试单位"
    _sign_in(page, server)
    _open_create_form(page, name)
    _type_point(page, YANTA_POINT)
    page.get_by_role("button", name="创建锚点").click()

    expect(page.locator("#new-point-error")).to_have_text("坐标不在您负责的区县或开发区范围内")
    expect(page.locator("#new-lon")).to_have_attribute("aria-invalid", "true")
    assert server.anchors_named(name) == []


def test_create_typed_gcj02_point(
    page: tuple[Page, PageRecord], server: StaffServer, anchor_posts: list[Request]
) -> None:
    page, _ = page
    name = "高德坐标测试单位"
    _sign_in(page, server)
    _open_create_form(page, name)
    _type_point(page, BEILIN_POINT_GCJ02, "gcj02")
    page.locator("#new-entrance_lon").fill(str(BEILIN_POINT_GCJ02[0] + 0.001))
    page.locator("#new-entrance_lat").fill(str(BEILIN_POINT_GCJ02[1]))
    page.locator("#new-entrance_lat").blur()

    # The basemap is WGS84, so a GCJ-02 point is not drawn before the API converts it.
    expect(page.locator("#map .staff-point-pin")).to_have_count(0)
    expect(page.locator("#new-pick-status")).to_contain_text("创建后才显示在地图上")
    page.get_by_role("button", name="创建锚点").click()
    expect(page.locator("#save-status")).to_contain_text("已创建锚点")

    body = json.loads(anchor_posts[0].post_data or "{}")
    assert body["coord_sys"] == "gcj02"
    assert (body["lon"], body["lat"]) == BEILIN_POINT_GCJ02
    assert body["details"]["entrance_lon"] == pytest.approx(BEILIN_POINT_GCJ02[0] + 0.001)
    stored = server.store.get_anchor(server.anchors_named(name)[0]["anchor_id"])
    assert stored is not None
    expected = to_wgs84(*BEILIN_POINT_GCJ02, "gcj02")
    assert stored.lon == pytest.approx(expected[0], abs=1e-6)
    assert stored.lat == pytest.approx(expected[1], abs=1e-6)
    assert abs(stored.lon - BEILIN_POINT_GCJ02[0]) > 0.003
