"""The edit panel's entrance and shuttle stop in headless Chromium, against the real API.

Each test serves a private copy of the payload store with a staff session of 碑林区
(610103), edits the first listed anchor and checks the outcome through the staff API.
Screenshots go to var/screenshots/staff_edit*.png.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright.sync_api import Page, Request, expect

from store.sqlite import SqliteStore
from tests.api.test_staff_create_browser import StaffServer, _serve_staff
from tests.fix_browser import SCREENSHOTS, PageRecord, foreign_requests, open_staff_page

pytestmark = pytest.mark.browser


@pytest.fixture
def server(xss_store: SqliteStore, tmp_path: Path) -> Iterator[StaffServer]:
    with _serve_staff(xss_store, tmp_path) as staff_server:
        yield staff_server


@pytest.fixture
def patches(page: tuple[Page, PageRecord]) -> list[Request]:
    """The PATCH requests that the page sends."""
    sent: list[Request] = []
    page[0].on(
        "request", lambda request: sent.append(request) if request.method == "PATCH" else None
    )
    return sent


def _anchor(server: StaffServer, anchor_id: str) -> dict[str, Any]:
    response = httpx2.get(f"{server.url}/v1/staff/anchors/{anchor_id}", headers=server.headers())
    assert response.status_code == 200, response.text
    anchor: dict[str, Any] = response.json()["anchor"]
    return anchor


def _patch(server: StaffServer, anchor_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Edit an anchor through the API, as another staff member would."""
    version = _anchor(server, anchor_id)["version"]
    body = {"expected_version": version, "reason": "另一位工作人员修改", "changes": changes}
    response = httpx2.patch(
        f"{server.url}/v1/staff/anchors/{anchor_id}", json=body, headers=server.headers()
    )
    assert response.status_code == 200, response.text
    anchor: dict[str, Any] = response.json()["anchor"]
    return anchor


def _sign_in(page: Page, server: StaffServer, lang: str = "zh") -> None:
    open_staff_page(page, server.url, server.token, server.staff.device_id, lang=lang)
    page.locator("#anchor-list button.anchor-item").first.wait_for()


def _open_first_anchor(page: Page) -> str:
    """Open the first listed anchor in the edit panel and return its id."""
    item = page.locator("#anchor-list button.anchor-item").first
    anchor_id = item.get_attribute("data-anchor-id")
    assert anchor_id is not None
    item.click()
    expect(page.locator("#anchor-form")).to_be_visible()
    expect(page.locator("#map .staff-pin")).to_be_visible()
    return anchor_id


def _open_anchor(page: Page, anchor_id: str) -> None:
    page.locator(f'#anchor-list button.anchor-item[data-anchor-id="{anchor_id}"]').click()
    expect(page.locator("#anchor-form")).to_be_visible()


def _pick(page: Page, field: str, dx: float, dy: float) -> None:
    """Press the field's map-pick button, then click the map dx, dy pixels from the pin."""
    box = page.locator("#map .staff-pin").bounding_box()
    assert box is not None
    page.locator(f'#anchor-form [data-field="{field}"] .pick-button:not(.clear-point)').click()
    page.mouse.click(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2 + dy)


def _save(page: Page, reason: str) -> None:
    page.locator("#f-reason").fill(reason)
    page.locator("#save").click()


def _screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def _value(page: Page, input_id: str) -> float:
    return float(page.locator(f"#{input_id}").input_value())


def test_edit_sets_entrance_and_stop(
    page: tuple[Page, PageRecord], server: StaffServer, patches: list[Request]
) -> None:
    page, record = page
    _sign_in(page, server)
    anchor_id = _open_first_anchor(page)
    pin_lon = _value(page, "f-lon")
    expect(page.locator("#map .staff-point-entrance")).to_have_count(0)

    _pick(page, "entrance", 0, 40)
    expect(page.locator("#map .staff-point-entrance")).to_be_visible()
    expect(page.locator("#edit-pick-status")).to_have_text("")
    page.locator("#f-shuttle_name").fill("钟楼站")
    page.locator('#anchor-form [data-field="shuttle_stop"] .pick-button:not(.clear-point)').click()
    expect(page.locator("#edit-pick-status")).to_have_text("请在地图上点击班车站点的位置。")
    _pick(page, "shuttle_stop", 40, 40)
    expect(page.locator("#map .staff-point-shuttle")).to_be_visible()
    entrance = (_value(page, "f-entrance_lon"), _value(page, "f-entrance_lat"))
    stop = (_value(page, "f-shuttle_lon"), _value(page, "f-shuttle_lat"))
    # The picks leave the pin where it was.
    assert _value(page, "f-lon") == pin_lon
    assert stop[0] > entrance[0]
    _screenshot(page, "staff_edit_points.png")
    _save(page, "现场核实入口和班车站点")

    expect(page.locator("#save-status")).to_have_text("已保存，当前版本 2。")
    changes = json.loads(patches[0].post_data or "{}")["changes"]
    assert changes["coord_sys"] == "wgs84"
    assert (changes["entrance_lon"], changes["entrance_lat"]) == entrance
    assert changes["shuttle_stop"] == {"name": "钟楼站", "lon": stop[0], "lat": stop[1]}
    assert "lon" not in changes
    saved = _anchor(server, anchor_id)
    assert saved["entrance"] == pytest.approx({"lon": entrance[0], "lat": entrance[1]}, abs=1e-6)
    assert saved["shuttle_stop"]["name"] == "钟楼站"
    assert saved["shuttle_stop"]["lon"] == pytest.approx(stop[0], abs=1e-6)

    page.reload()
    page.locator("#anchor-list button.anchor-item").first.wait_for()
    _open_anchor(page, anchor_id)
    expect(page.locator("#f-entrance_lon")).to_have_value(f"{entrance[0]:.6f}")
    expect(page.locator("#f-entrance_lat")).to_have_value(f"{entrance[1]:.6f}")
    expect(page.locator("#f-shuttle_name")).to_have_value("钟楼站")
    expect(page.locator("#f-shuttle_lon")).to_have_value(f"{stop[0]:.6f}")
    expect(page.locator("#map .staff-point-entrance")).to_be_visible()
    expect(page.locator("#map .staff-point-shuttle")).to_be_visible()
    legend = page.locator("#legend-points .legend-item").all_inner_texts()
    assert legend == ["位置（可拖动）", "入口", "班车站点"]
    _screenshot(page, "staff_edit_points_reloaded.png")
    assert record.dialogs == []
    assert record.console_errors == []
    assert foreign_requests(record, server.url) == []


def _first_anchor_id(page: Page) -> str:
    anchor_id = page.locator("#anchor-list button.anchor-item").first.get_attribute(
        "data-anchor-id"
    )
    assert anchor_id is not None
    return anchor_id


def _set_points(server: StaffServer, anchor_id: str, stop: dict[str, Any]) -> None:
    """Store an entrance about 40 m east of the pin and the given shuttle stop."""
    anchor = _anchor(server, anchor_id)
    changes = {
        "entrance_lon": anchor["lon"] + 0.0004,
        "entrance_lat": anchor["lat"],
        "shuttle_stop": stop,
    }
    _patch(server, anchor_id, changes)


def test_edit_unchanged_points_not_sent(
    page: tuple[Page, PageRecord], server: StaffServer, patches: list[Request]
) -> None:
    page, _ = page
    _sign_in(page, server)
    anchor_id = _first_anchor_id(page)
    _set_points(server, anchor_id, {"name": "钟楼站"})
    _open_anchor(page, anchor_id)
    expect(page.locator("#anchor-version")).to_have_text("版本 2")

    page.locator("#f-address").fill("碑林区测试路 2 号")
    _save(page, "更正地址")

    expect(page.locator("#save-status")).to_have_text("已保存，当前版本 3。")
    changes = json.loads(patches[0].post_data or "{}")["changes"]
    assert changes == {"address": "碑林区测试路 2 号"}
    expect(page.locator("#map .staff-point-entrance")).to_be_visible()
    # A stop with a name and no point has no marker.
    expect(page.locator("#map .staff-point-shuttle")).to_have_count(0)


def test_edit_clear_removes_points(
    page: tuple[Page, PageRecord], server: StaffServer, patches: list[Request]
) -> None:
    page, _ = page
    _sign_in(page, server)
    anchor_id = _first_anchor_id(page)
    pin = _anchor(server, anchor_id)
    _set_points(server, anchor_id, {"name": "钟楼站", "lon": pin["lon"], "lat": pin["lat"] + 0.001})
    _open_anchor(page, anchor_id)
    expect(page.locator("#map .staff-point-entrance")).to_be_visible()
    expect(page.locator("#map .staff-point-shuttle")).to_be_visible()

    for field in ("entrance", "shuttle_stop"):
        page.locator(f'#anchor-form [data-field="{field}"] .clear-point').click()
    expect(page.locator("#map .staff-point-entrance")).to_have_count(0)
    expect(page.locator("#map .staff-point-shuttle")).to_have_count(0)
    expect(page.locator("#f-shuttle_name")).to_have_value("")
    _save(page, "单位已取消班车")

    expect(page.locator("#save-status")).to_have_text("已保存，当前版本 3。")
    changes = json.loads(patches[0].post_data or "{}")["changes"]
    assert changes == {"clear": ["entrance", "shuttle_stop"]}
    saved = _anchor(server, anchor_id)
    assert saved["entrance"] is None
    assert saved["shuttle_stop"] is None
    page.reload()
    page.locator("#anchor-list button.anchor-item").first.wait_for()
    _open_anchor(page, anchor_id)
    expect(page.locator("#f-entrance_lon")).to_have_value("")
    expect(page.locator("#map .staff-point-entrance")).to_have_count(0)
    expect(page.locator("#map .staff-point-shuttle")).to_have_count(0)


def test_edit_stale_version_shows_409(page: tuple[Page, PageRecord], server: StaffServer) -> None:
    page, _ = page
    _sign_in(page, server)
    anchor_id = _open_first_anchor(page)
    _patch(server, anchor_id, {"address": "碑林区测试路 3 号"})

    _pick(page, "entrance", 0, 40)
    _save(page, "现场核实入口")

    notice = page.locator("#conflict")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("该锚点已被他人修改（当前版本 2），请刷新后重试")
    _screenshot(page, "staff_edit_conflict.png")
    assert _anchor(server, anchor_id)["entrance"] is None
    notice.locator("#conflict-refresh").click()
    expect(page.locator("#anchor-version")).to_have_text("版本 2")
    expect(page.locator("#f-entrance_lon")).to_have_value("")
    expect(page.locator("#map .staff-point-entrance")).to_have_count(0)


@pytest.mark.parametrize(
    ("lang", "entrance_error", "stop_error"),
    [
        ("zh", "入口距离定位点", "班车站点不能为空"),
        ("en", "the entrance is", "shuttle_stop must not be empty"),
    ],
)
def test_edit_point_errors_beside_fields(
    page: tuple[Page, PageRecord],
    server: StaffServer,
    lang: str,
    entrance_error: str,
    stop_error: str,
) -> None:
    page, _ = page
    _sign_in(page, server, lang)
    anchor_id = _open_first_anchor(page)
    pin = (_value(page, "f-lon"), _value(page, "f-lat"))

    # About 1.8 km east of the pin, beyond the 1 km limit, and a stop without a name.
    page.locator("#f-entrance_lon").fill(f"{pin[0] + 0.02:.6f}")
    page.locator("#f-entrance_lat").fill(f"{pin[1]:.6f}")
    page.locator("#f-shuttle_lon").fill(f"{pin[0]:.6f}")
    page.locator("#f-shuttle_lat").fill(f"{pin[1] + 0.001:.6f}")
    _save(page, "现场核实")

    expect(page.locator("#err-entrance")).to_contain_text(entrance_error)
    expect(page.locator("#err-shuttle_stop")).to_contain_text(stop_error)
    expect(page.locator("#f-entrance_lon")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-shuttle_name")).to_have_attribute("aria-invalid", "true")
    _screenshot(page, f"staff_edit_invalid_{lang}.png")
    assert _anchor(server, anchor_id)["version"] == 1


def test_edit_non_number_not_sent(
    page: tuple[Page, PageRecord], server: StaffServer, patches: list[Request]
) -> None:
    page, _ = page
    _sign_in(page, server)
    _open_first_anchor(page)

    page.locator("#f-entrance_lon").fill("东经108度")
    page.locator("#f-entrance_lat").fill("34.25")
    _save(page, "现场核实")

    expect(page.locator("#err-entrance")).to_have_text("经度须为以度为单位的数字，如 108.94。")
    expect(page.locator("#save-status")).to_have_text("修改未通过检查，请按提示更正。")
    assert patches == []


def test_edit_files_anchor_under_street(
    page: tuple[Page, PageRecord], server: StaffServer, patches: list[Request]
) -> None:
    page, _ = page
    _sign_in(page, server)
    anchor_id = _open_first_anchor(page)
    select = page.locator("#f-filed_org")
    expect(select).to_have_value("")

    select.select_option("street:610103001")
    _save(page, "交由南院门街道维护")

    expect(page.locator("#save-status")).to_have_text("已保存，当前版本 2。")
    changes = json.loads(patches[0].post_data or "{}")["changes"]
    assert changes == {"filed_org": "street:610103001"}
    assert _anchor(server, anchor_id)["filed_org"] == "street:610103001"

    page.reload()
    page.locator("#anchor-list button.anchor-item").first.wait_for()
    _open_anchor(page, anchor_id)
    expect(select).to_have_value("street:610103001")
    select.select_option("")
    _save(page, "收回区县维护")

    expect(page.locator("#save-status")).to_have_text("已保存，当前版本 3。")
    assert json.loads(patches[-1].post_data or "{}")["changes"] == {"clear": ["filed_org"]}
    assert _anchor(server, anchor_id)["filed_org"] is None
