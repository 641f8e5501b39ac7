"""The staff curation page in Debian's headless Chromium, over the stub staff routes.

Checks that every request stays on the test server, that the token never enters a URL,
that payload names show as text, and that dragging, saving, 409, 422 and the import
check behave. Screenshots go to var/screenshots/staff*.png.
"""

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import (
    FilePayload,
    Locator,
    Page,
    expect,
)
from pydantic import SecretStr

from api.app import create_app
from api.settings import AuthSettings, CacheSettings, DataSettings, Settings
from store.sqlite import SqliteStore
from tests.api.staff_login import log_in_staff
from tests.api.test_pages import XSS_PAYLOADS
from tests.api.test_staff_page import STUB_TOKEN, StubCuration, build_staff_stub_app
from tests.fix_browser import (
    SCREENSHOTS,
    PageRecord,
    foreign_requests,
    open_staff_page,
    serve,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def stub() -> StubCuration:
    return StubCuration.with_payloads()


@pytest.fixture
def staff_url(data_dir: Path, stub: StubCuration) -> Iterator[str]:
    with serve(build_staff_stub_app(data_dir, stub)) as url:
        yield url


def _sign_in(page: Page, base_url: str) -> None:
    open_staff_page(page, base_url, STUB_TOKEN)
    page.locator("#anchor-list button.anchor-item").first.wait_for()


def _open_anchor(page: Page, index: int) -> None:
    page.locator("#anchor-list button.anchor-item").nth(index).click()
    expect(page.locator("#anchor-form")).to_be_visible()
    page.locator("#history-list li").first.wait_for()


def _screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def test_staff_list_shows_payloads(
    page: tuple[Page, PageRecord], staff_url: str, stub: StubCuration
) -> None:
    page, record = page
    _sign_in(page, staff_url)

    names = page.locator("#anchor-list .anchor-name").all_inner_texts()
    assert sorted(names) == sorted("单位" + payload for payload in XSS_PAYLOADS)
    expect(page.locator("#staff-me")).to_contain_text("碑林区就业服务中心")
    expect(page.locator("#summary-state")).to_contain_text("已核实")
    expect(page.locator("#summary-state")).to_contain_text("1,234")

    _open_anchor(page, 0)
    expect(page.locator("#f-name")).to_have_value("单位" + XSS_PAYLOADS[0])
    expect(page.locator("#anchor-version")).to_have_text("版本 3")
    history = page.locator("#history-list .history-entry")
    assert history.count() == 3
    # Stored at 02:30 UTC, shown in Asia/Shanghai (UTC+8).
    expect(history.first.locator(".history-head")).to_contain_text("10:30")
    expect(history.first.locator(".history-reason")).to_have_text("核实地址" + XSS_PAYLOADS[0])
    expect(history.first.locator(".change-new")).to_have_text("地址" + XSS_PAYLOADS[0])
    # A draft may go to review or be retired.
    buttons = page.locator("#state-actions button").all_inner_texts()
    assert buttons == ["改为待审核", "改为已停用"]
    _screenshot(page, "staff.png")

    assert record.dialogs == []
    assert foreign_requests(record, staff_url) == []
    assert [url for url in record.requests if STUB_TOKEN in url] == []
    assert STUB_TOKEN not in page.content()
    staff_requests = [url for url in record.requests if "/v1/staff/" in url]
    assert staff_requests
    for url in staff_requests:
        assert "coord_sys=wgs84" in url


def test_staff_drag_and_save(
    page: tuple[Page, PageRecord], staff_url: str, stub: StubCuration
) -> None:
    page, record = page
    _sign_in(page, staff_url)
    _open_anchor(page, 0)
    lon_before = page.locator("#f-lon").input_value()
    lat_before = page.locator("#f-lat").input_value()

    box = page.locator("#map .staff-pin").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 40, y + 20, steps=5)
    page.mouse.move(x + 80, y + 40, steps=5)
    page.mouse.up()

    expect(page.locator("#pin-moved")).to_be_visible()
    lon_after = float(page.locator("#f-lon").input_value())
    lat_after = float(page.locator("#f-lat").input_value())
    assert lon_after > float(lon_before)
    assert lat_after < float(lat_before)

    page.locator("#f-reason").fill("现场核实入口位置")
    with page.expect_request(lambda request: request.method == "PATCH") as patch_info:
        page.get_by_role("button", name="保存").click()
    body = json.loads(patch_info.value.post_data or "{}")
    assert body["expected_version"] == 3
    assert body["reason"] == "现场核实入口位置"
    assert body["changes"]["coord_sys"] == "wgs84"
    assert body["changes"]["lon"] == pytest.approx(lon_after, abs=1e-6)
    assert set(body["changes"]) == {"lon", "lat", "coord_sys"}

    expect(page.locator("#save-status")).to_have_text("已保存，当前版本 4。")
    expect(page.locator("#anchor-version")).to_have_text("版本 4")
    assert page.locator("#history-list .history-entry").count() == 4
    assert stub.anchors["a0"]["lon"] == pytest.approx(lon_after, abs=1e-6)
    assert record.dialogs == []
    assert foreign_requests(record, staff_url) == []


def test_staff_reason_required(page: tuple[Page, PageRecord], staff_url: str) -> None:
    page, _ = page
    _sign_in(page, staff_url)
    _open_anchor(page, 0)

    page.locator("#f-address").fill("新地址")
    page.get_by_role("button", name="保存").click()

    expect(page.locator("#err-reason")).to_have_text("请填写修改原因。")


def test_staff_conflict_notice(
    page: tuple[Page, PageRecord], staff_url: str, stub: StubCuration
) -> None:
    page, _ = page
    _sign_in(page, staff_url)
    _open_anchor(page, 1)
    stub.bump("a1")
    stub.bump("a1")

    page.locator("#f-address").fill("新地址")
    page.locator("#f-reason").fill("更正地址")
    page.get_by_role("button", name="保存").click()

    notice = page.locator("#conflict")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("该锚点已被他人修改（当前版本 5），请刷新后重试")
    _screenshot(page, "staff_conflict.png")
    notice.get_by_role("button", name="刷新").click()
    expect(notice).to_be_hidden()
    expect(page.locator("#anchor-version")).to_have_text("版本 5")


def test_staff_field_error_beside_field(page: tuple[Page, PageRecord], staff_url: str) -> None:
    page, _ = page
    _sign_in(page, staff_url)
    _open_anchor(page, 0)

    page.locator("#f-contact_phone").fill("call me")
    page.locator("#f-reason").fill("更新电话")
    page.get_by_role("button", name="保存").click()

    error = page.locator('#anchor-form .form-row[data-field="contact_phone"] .field-error')
    expect(error).to_have_text("联系电话须为座机或400/800号码")
    expect(page.locator("#f-contact_phone")).to_have_attribute("aria-invalid", "true")
    _screenshot(page, "staff_invalid.png")


def test_staff_rejected_token(
    page: tuple[Page, PageRecord], staff_url: str, stub: StubCuration
) -> None:
    page, _ = page
    open_staff_page(page, staff_url, "wrong-token")

    page.wait_for_url(re.compile(r"/staff/login\?lang=zh&reason=expired$"))
    expect(page.locator("#login-notice")).to_contain_text("登录已失效")
    stored = page.evaluate("window.sessionStorage.getItem('doorstep.staffToken')")
    assert stored is None


def test_staff_import_rejected_rows(page: tuple[Page, PageRecord], staff_url: str) -> None:
    page, record = page
    _sign_in(page, staff_url)
    page.get_by_role("tab", name="批量导入").click()

    bad = "name,contact_phone\n单位甲,029-1\n单位乙,bad\n"
    page.locator("#import-file").set_input_files(
        files=[FilePayload(name="anchors.csv", mimeType="text/csv", buffer=bad.encode())]
    )
    page.get_by_role("button", name="检查").click()

    rows = page.locator("#import-rejected tbody tr")
    expect(rows).to_have_count(1)
    cells = rows.first.locator("td").all_inner_texts()
    assert cells == ["3", "联系电话", "联系电话无效" + XSS_PAYLOADS[0]]
    expect(page.locator("#import-commit")).to_be_disabled()
    _screenshot(page, "staff_import.png")

    good = "name,contact_phone\n单位甲,029-1\n"
    page.locator("#import-file").set_input_files(
        files=[FilePayload(name="anchors.csv", mimeType="text/csv", buffer=good.encode())]
    )
    page.get_by_role("button", name="检查").click()
    expect(page.locator("#import-status")).to_have_text("检查通过：1 行可导入。")
    expect(page.locator("#import-commit")).to_be_enabled()
    page.get_by_role("button", name="正式导入").click()
    expect(page.locator("#import-status")).to_have_text("已导入 1 行。")

    imports = [url for url in record.requests if "/v1/staff/imports" in url]
    assert ["dry_run=true" in url for url in imports] == [True, True, False]
    assert record.dialogs == []


def test_staff_duplicates_merge(page: tuple[Page, PageRecord], staff_url: str) -> None:
    page, record = page
    _sign_in(page, staff_url)
    page.get_by_role("tab", name="疑似重复").click()

    pair = page.locator("#duplicate-list li.duplicate").first
    expect(pair.locator(".anchor-name").first).to_have_text("单位" + XSS_PAYLOADS[0])
    pair.locator("input[type=radio]").nth(1).check()
    pair.locator(".merge-reason").fill("同一单位")
    with page.expect_request(lambda r: r.url.endswith("/merge") or "/merge?" in r.url) as info:
        pair.get_by_role("button", name="合并").click()
    body = json.loads(info.value.post_data or "{}")
    assert body["survivor_id"] == "a5"
    assert body["merged_ids"] == ["a0"]
    assert body["expected_versions"] == {"a5": 3, "a0": 3}
    expect(page.locator("#duplicates-status")).to_have_text("已合并，移动了 7 条招聘信息。")
    _screenshot(page, "staff_duplicates.png")
    assert record.dialogs == []
    assert foreign_requests(record, staff_url) == []


def _computed(locator: Locator, prop: str) -> str:
    value: str = locator.evaluate(f"(node) => getComputedStyle(node).{prop}")
    return value


def _map_mark(page: Page, anchor_id: str) -> Locator:
    return page.locator(f'.leaflet-marker-icon[data-anchor-id="{anchor_id}"]')


def test_staff_legend_names_states_and_precisions(
    page: tuple[Page, PageRecord], staff_url: str
) -> None:
    page, record = page
    _sign_in(page, staff_url)

    legend = page.locator("#staff-legend")
    expect(legend).to_be_visible()
    expect(legend.locator("#legend-state-title")).to_have_text("锚点状态（填充颜色）")
    expect(legend.locator("#legend-precision-title")).to_have_text("位置精度（边框和大小）")
    states = legend.locator("#legend-states .legend-item").all_inner_texts()
    assert states == ["草稿", "待审核", "已核实", "已停用", "已驳回"]
    precisions = legend.locator("#legend-precisions .legend-item").all_inner_texts()
    assert precisions == [
        "精确位置",
        "地图兴趣点",
        "楼宇/园区",
        "商圈级估计",
        "开发区级估计",
        "区县级估计",
    ]
    expect(legend.locator(".legend-note")).to_contain_text("仅知在西安")
    assert record.console_errors == []


def test_staff_marks_fill_by_state(
    page: tuple[Page, PageRecord], staff_url: str, stub: StubCuration
) -> None:
    page, _ = page
    _sign_in(page, staff_url)

    fills = {}
    for anchor_id, anchor in stub.anchors.items():
        mark = _map_mark(page, anchor_id)
        swatch = page.locator(f'#legend-states [data-state="{anchor["state"]}"] .anchor-mark')
        fill = (_computed(mark, "backgroundColor"), _computed(mark, "backgroundImage"))
        assert fill == (
            _computed(swatch, "backgroundColor"),
            _computed(swatch, "backgroundImage"),
        ), anchor_id
        fills[anchor["state"]] = fill
        muted = anchor["state"] in ("retired", "rejected")
        assert (float(_computed(mark, "opacity")) < 1) == muted, anchor_id

    assert len(set(fills.values())) == 5
    assert fills["draft"][0] == "rgb(86, 180, 233)"
    assert fills["pending_review"][0] == "rgb(230, 159, 0)"
    assert fills["verified"][0] == "rgb(0, 158, 115)"
    # The marks overlap at the fitted zoom, so the hover is dispatched to the mark itself.
    _map_mark(page, "a2").dispatch_event("mouseover")
    expect(page.locator(".leaflet-tooltip")).to_have_text("单位${alert(1)}（已核实 · 精确位置）")
    # The list item carries the same mark as the map.
    item_mark = page.locator('#anchor-list button[data-anchor-id="a2"] .anchor-mark')
    assert _computed(item_mark, "backgroundColor") == fills["verified"][0]


def test_staff_marks_ring_by_precision(
    page: tuple[Page, PageRecord], staff_url: str, stub: StubCuration
) -> None:
    page, _ = page
    stub.anchors["a1"]["precision"] = "district"
    stub.anchors["a2"]["precision"] = "building"
    _sign_in(page, staff_url)

    rings = {}
    for anchor_id in ("a0", "a1", "a2"):
        precision = stub.anchors[anchor_id]["precision"]
        mark = _map_mark(page, anchor_id)
        swatch = page.locator(f'#legend-precisions [data-precision="{precision}"] .anchor-mark')
        expect(mark).to_have_class(re.compile(rf"\bmark-precision-{precision}\b"))
        ring = (_computed(mark, "borderTopStyle"), _computed(mark, "width"))
        assert ring == (_computed(swatch, "borderTopStyle"), _computed(swatch, "width"))
        rings[precision] = ring

    assert rings["exact"] == ("solid", "16px")
    assert rings["building"] == ("dotted", "16px")
    assert rings["district"] == ("dashed", "28px")
    # An anchor known only as Xi'an has no point, so it has no mark.
    stub.anchors["a3"]["precision"] = "city"
    page.get_by_role("button", name="搜索").click()
    expect(_map_mark(page, "a3")).to_have_count(0)
    _screenshot(page, "staff_legend.png")


def test_staff_legend_and_form_english(page: tuple[Page, PageRecord], staff_url: str) -> None:
    page, _ = page
    open_staff_page(page, staff_url, STUB_TOKEN, lang="en")
    page.locator("#anchor-list button.anchor-item").first.wait_for()

    # The stub API sends Chinese labels, as the real one does; the page shows its own.
    first_item = page.locator("#anchor-list button.anchor-item").first
    expect(first_item.locator(".badge")).to_have_text("draft")
    expect(first_item.locator(".anchor-facts")).to_contain_text("Exact location")
    legend = page.locator("#staff-legend")
    expect(legend.locator("#legend-state-title")).to_have_text("Anchor state (fill colour)")
    states = legend.locator("#legend-states .legend-item").all_inner_texts()
    assert states == ["draft", "pending review", "verified", "retired", "rejected"]
    expect(legend.locator('[data-precision="district"]')).to_have_text("District estimate")

    page.get_by_role("button", name="Add anchor").click()
    panel = page.locator("#create-panel")
    expect(panel.get_by_role("heading", name="New anchor")).to_be_visible()
    expect(panel.get_by_label("Stop name")).to_be_visible()
    expect(page.locator("#new-coord_sys option:checked")).to_have_text("WGS84 (GPS, Tianditu)")
    panel.get_by_role("button", name="Create anchor").click()
    expect(page.locator("#new-name-error")).to_have_text("Enter the name.")
    expect(page.locator("#new-reason-error")).to_have_text(
        "Enter the reason for adding this anchor."
    )


def test_staff_create_checks_required_fields(page: tuple[Page, PageRecord], staff_url: str) -> None:
    page, _ = page
    posts: list[str] = []
    page.on(
        "request", lambda request: posts.append(request.url) if request.method == "POST" else None
    )
    _sign_in(page, staff_url)
    page.get_by_role("button", name="新增锚点").click()

    page.locator("#new-entrance_lon").fill("东经108度")
    page.get_by_role("button", name="创建锚点").click()

    expect(page.locator("#new-name-error")).to_have_text("请填写名称。")
    expect(page.locator("#new-point-error")).to_have_text("请在地图上点击选择位置，或输入经纬度。")
    expect(page.locator("#new-entrance-error")).to_have_text(
        "经度须为以度为单位的数字，如 108.94。"
    )
    expect(page.locator("#new-reason-error")).to_have_text("请填写新增原因。")
    expect(page.locator("#new-name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#create-status")).to_have_text("未通过检查，请按提示更正。")
    assert posts == []
    # The stub token serves no development zone, so the zone choice stays hidden.
    expect(page.locator("#new-zone_key")).to_be_hidden()
    assert page.locator("#new-district_code option").all_inner_texts() == [
        "按位置自动判断",
        "碑林区",
    ]

    page.get_by_role("button", name="取消").click()
    expect(page.locator("#create-panel")).to_be_hidden()
    expect(page.locator("#editor-hint")).to_be_visible()


def test_staff_real_app_drag_saves(
    page: tuple[Page, PageRecord], xss_store_copy: SqliteStore, tmp_path: Path
) -> None:
    """The page against the real API and SQLite store: a dragged pin is saved and versioned."""
    page, record = page
    secret = "s" * 16 + "t" * 16 + "0123456789abcdef"
    settings = Settings(
        data=DataSettings(store_path=xss_store_copy.path),
        cache=CacheSettings(rate_limit_per_minute=0),
        auth=AuthSettings(
            staff_token_secret=SecretStr(secret), identity_path=tmp_path / "identity.sqlite"
        ),
    )
    anchors = xss_store_copy.anchors_frame()
    in_district = anchors[anchors["district_code"] == "610103"]
    app = create_app(settings, store=xss_store_copy)

    with serve(app) as url:
        staff = log_in_staff(TestClient(app), org_id="district:610103")
        token = staff.token
        open_staff_page(page, url, token, staff.device_id)
        page.locator("#anchor-list button.anchor-item").first.wait_for()
        assert page.locator("#anchor-list button.anchor-item").count() == len(in_district)

        page.locator("#anchor-list button.anchor-item").first.click()
        expect(page.locator("#anchor-form")).to_be_visible()
        version_before = page.locator("#anchor-version").inner_text()
        box = page.locator("#map .staff-pin").bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 10, y + 5, steps=5)
        page.mouse.move(x + 20, y + 10, steps=5)
        page.mouse.up()
        expect(page.locator("#pin-moved")).to_be_visible()

        page.locator("#f-reason").fill("现场核实")
        page.get_by_role("button", name="保存").click()
        expect(page.locator("#save-status")).to_contain_text("已保存")
        _screenshot(page, "staff_real_app.png")

    saved = [xss_store_copy.get_anchor(a) for a in in_district["anchor_id"]]
    moved = [record_ for record_ in saved if record_ is not None and record_.version == 2]
    assert version_before == "版本 1"
    assert len(moved) == 1
    assert moved[0].precision == "exact"
    assert len(xss_store_copy.anchor_history(moved[0].anchor_id)) >= 1
    assert all(token not in url_ for url_ in record.requests)
    assert record.dialogs == []


@pytest.fixture
def xss_store_copy(xss_store: SqliteStore, tmp_path: Path) -> SqliteStore:
    """A private copy of the payload store, so saving does not change the shared one."""
    copy = tmp_path / "store.sqlite"
    shutil.copy(xss_store.path, copy)
    return SqliteStore(copy)
