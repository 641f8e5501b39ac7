"""Both pages in Debian's headless Chromium: same-origin requests only, payloads shown as text.

Run ``scripts/test-deps.sh`` first; Playwright drives /usr/bin/chromium and never
downloads a browser of its own. Screenshots go to var/screenshots/.
"""

import re
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import (
    Page,
    expect,
)

from api.app import create_app
from api.settings import DataSettings, Settings
from store.sqlite import SqliteStore
from tests.api.test_pages import (
    STUB_SEEKERS,
    XSS_PAYLOADS,
    build_stub_app,
)
from tests.fix_browser import SCREENSHOTS, PageRecord, foreign_requests, serve

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def base_url(data_dir: Path) -> Iterator[str]:
    """The pages over stub JSON routes whose anchors sit far apart (no clustering)."""
    with serve(build_stub_app(data_dir)) as url:
        yield url


@pytest.fixture(scope="module")
def paging_url(data_dir: Path) -> Iterator[str]:
    """The stub pages with a server page-size limit of 40, below the picker's 50."""
    with serve(build_stub_app(data_dir, max_page_size=40)) as url:
        yield url


@pytest.fixture(scope="module")
def clustered_url(data_dir: Path) -> Iterator[str]:
    """The stub pages whose anchor route sends grid clusters above 3 anchors in view."""
    with serve(build_stub_app(data_dir, anchor_limit=3)) as url:
        yield url


@pytest.fixture(scope="module")
def app_url(xss_store: SqliteStore) -> Iterator[str]:
    """The real application on the small store of XSS payloads."""
    settings = Settings(data=DataSettings(store_path=xss_store.path))
    with serve(create_app(settings, store=xss_store)) as url:
        yield url


def test_city_map_page(page: tuple[Page, PageRecord], base_url: str) -> None:
    browser_page, record = page
    browser_page.goto(base_url + "/")

    browser_page.locator("#stats-items dd").first.wait_for()
    markers = browser_page.locator("path.anchor-marker")
    markers.first.wait_for()
    # The stub sends the city-level anchor too (the last payload); it gets no marker.
    mapped_names = XSS_PAYLOADS[:-1]
    assert markers.count() == len(mapped_names)

    # The popup of the previous marker fades out before it leaves the page.
    popup = browser_page.locator(".leaflet-popup-content")
    popup_titles = popup.locator(".popup-title")
    seen = []
    for index in range(markers.count()):
        markers.nth(index).dispatch_event("click")
        expect(popup_titles).to_have_count(1)
        seen.append(popup_titles.inner_text())
        assert "约 ·" not in popup.inner_text()
    assert sorted(seen) == sorted(mapped_names)

    expect(browser_page.locator("#city-note")).to_have_text(
        "仅知在西安：5,174 个锚点，未在地图上标出"
    )
    assert browser_page.locator("#stats-items", has_text="仅知在西安").count() == 0
    assert browser_page.locator("#clustered-note").is_hidden()

    browser_page.get_by_label("人社/就业服务机构").check()
    hr_office = browser_page.locator(".layer-hr_offices").first
    hr_office.dispatch_event("click")
    expect(popup_titles).to_have_count(1)
    assert popup_titles.inner_text() == "人社局" + XSS_PAYLOADS[1]
    assert "hr_office" not in popup.inner_text()
    assert "地址" + XSS_PAYLOADS[0] in popup.inner_text()

    browser_page.get_by_label("产业园/孵化器").check()
    browser_page.locator(".layer-parks").first.dispatch_event("click")
    expect(popup).to_have_count(1)
    expect(popup.locator("dd").get_by_text("孵化器", exact=True)).to_have_count(1)
    assert "incubator" not in popup.inner_text()

    for name in ("metro_lines", "metro_stations"):
        title = {"metro_lines": "地铁线路", "metro_stations": "地铁站"}[name]
        browser_page.get_by_label(title).check()
        browser_page.locator(".layer-" + name).first.wait_for()
    line = browser_page.locator("path.layer-metro_lines").first
    assert line.get_attribute("stroke") == "#e4002b"

    # Six precision colours (no city), two enterprise rings and two cluster symbols; then
    # districts and 7 layers.
    assert browser_page.locator("#legend-items li").count() == 10
    assert browser_page.locator("#legend-items .swatch-key").count() == 1
    assert browser_page.locator("#legend-items .swatch-above-scale").count() == 1
    assert browser_page.locator("#legend-items", has_text="重点企业（实线外圈）").count() == 1
    assert browser_page.locator("#legend-items", has_text="仅知在西安").count() == 0
    assert browser_page.locator("#legend-layer-items li").count() == 8
    assert browser_page.locator("#legend-layer-items .symbol-hr_offices").count() == 1
    assert browser_page.get_by_text("商圈级估计").first.is_visible()
    assert browser_page.get_by_text("模拟数据").is_visible()
    browser_page.locator(".leaflet-popup-close-button").click()
    expect(popup).to_have_count(0)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(SCREENSHOTS / "city_map.png"))

    assert record.dialogs == []
    assert record.console_errors == []
    assert foreign_requests(record, base_url) == []
    anchor_requests = [url for url in record.requests if "/v1/anchors?" in url]
    assert anchor_requests
    for url in anchor_requests:
        assert "coord_sys=wgs84" in url
        assert "lang=zh" in url
        assert "include_city=false" in url


def test_city_map_rings_flagged_anchors(page: tuple[Page, PageRecord], base_url: str) -> None:
    browser_page, record = page
    browser_page.goto(base_url + "/")
    browser_page.locator("path.anchor-marker").first.wait_for()

    key = browser_page.locator("path.anchor-key")
    above_scale = browser_page.locator("path.anchor-above-scale")
    # The stub flags the first anchor as a key enterprise, the second as above-scale.
    assert key.count() == 1
    assert above_scale.count() == 1
    assert browser_page.locator("path.anchor-marker").count() == 5
    assert key.get_attribute("stroke") == "#1b1b1b"
    assert key.get_attribute("stroke-dasharray") is None
    assert above_scale.get_attribute("stroke-dasharray") == "3 3"
    assert above_scale.get_attribute("stroke-linecap") == "butt"

    popup = browser_page.locator(".leaflet-popup-content")
    key.dispatch_event("click")
    expect(popup).to_have_count(1)
    expect(popup.locator("dt").get_by_text("企业类别", exact=True)).to_have_count(1)
    expect(popup.locator("dd").get_by_text("重点企业", exact=True)).to_have_count(1)
    browser_page.locator(".leaflet-popup-close-button").click()
    expect(popup).to_have_count(0)
    above_scale.dispatch_event("click")
    expect(popup).to_have_count(1)
    expect(popup.locator("dd").get_by_text("规上工业企业", exact=True)).to_have_count(1)
    assert record.console_errors == []


def test_city_map_legend_in_english(page: tuple[Page, PageRecord], base_url: str) -> None:
    browser_page, record = page
    browser_page.goto(base_url + "/?lang=en")
    browser_page.locator("path.anchor-marker").first.wait_for()

    legend = browser_page.locator("#legend-items")
    expect(legend).to_contain_text("Key enterprise (solid ring)")
    expect(legend).to_contain_text("Above-scale industrial firm (dashed ring)")
    browser_page.locator("path.anchor-key").dispatch_event("click")
    expect(browser_page.locator(".leaflet-popup-content")).to_contain_text("Key enterprise")
    assert record.console_errors == []


def test_city_map_clusters_are_neutral(page: tuple[Page, PageRecord], base_url: str) -> None:
    browser_page, record = page
    browser_page.goto(base_url + "/")
    browser_page.locator("path.anchor-marker").first.wait_for()

    zoom_out = browser_page.locator(".leaflet-control-zoom-out")
    clusters = browser_page.locator(".anchor-cluster.leaflet-marker-icon")
    # Zoom out to the minimum zoom, where the six anchors are within a cluster radius.
    while "leaflet-disabled" not in (zoom_out.get_attribute("class") or ""):
        zoom_out.click()
        browser_page.wait_for_timeout(400)
    clusters.first.wait_for()

    counts = [int(text) for text in clusters.locator(".anchor-cluster-count").all_inner_texts()]
    assert sum(counts) + browser_page.locator("path.anchor-marker").count() == 5
    # Client clusters count the key enterprises among their markers in a badge.
    badges = [int(text) for text in clusters.locator(".anchor-cluster-key").all_inner_texts()]
    key_markers = browser_page.locator("path.anchor-key").count()
    assert sum(badges) + key_markers == 1
    for colour_class in ("marker-cluster-small", "marker-cluster-medium", "marker-cluster-large"):
        assert browser_page.locator("." + colour_class).count() == 0
    background = clusters.first.evaluate("node => getComputedStyle(node).backgroundColor")
    assert background == "rgba(84, 110, 122, 0.88)"
    assert record.console_errors == []


def test_city_map_server_clusters(page: tuple[Page, PageRecord], clustered_url: str) -> None:
    browser_page, record = page
    browser_page.goto(clustered_url + "/")

    note = browser_page.locator("#clustered-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("当前范围内共有")
    assert browser_page.locator("path.anchor-marker").count() == 0
    clusters = browser_page.locator(".anchor-cluster.leaflet-marker-icon")
    clusters.first.wait_for()
    # Client clusters add up the anchors of the server clusters they hold.
    counts = clusters.locator(".anchor-cluster-count").all_inner_texts()
    total = sum(int(text.replace(",", "")) for text in counts)
    assert total == int(re.search(r"共有 ([\d,]+) 个", note.inner_text()).group(1).replace(",", ""))
    # The stub flags one anchor in view as a key enterprise; a badge shows it.
    badges = clusters.locator(".anchor-cluster-key").all_inner_texts()
    assert [int(text) for text in badges] == [1]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(SCREENSHOTS / "city_map_clustered.png"))

    # Clicking a cluster zooms in until single anchors come back.
    for _ in range(8):
        if browser_page.locator("path.anchor-marker").count():
            break
        browser_page.locator(".anchor-cluster.leaflet-marker-icon").first.click()
        browser_page.wait_for_timeout(700)
    assert browser_page.locator("path.anchor-marker").count() > 0
    expect(note).to_be_hidden()
    assert record.console_errors == []


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
    # The city-level job is listed but has no marker.
    assert browser_page.locator("path.job-marker").count() == len(XSS_PAYLOADS) - 1

    cards = browser_page.locator("#job-list li.job")
    city_card = cards.filter(has_text="位置仅知在西安")
    assert city_card.locator(".precision").count() == 0
    assert city_card.locator(".job-place").count() == 0
    assert "仅知在西安" not in city_card.locator(".job-facts").inner_text().replace(
        "位置仅知在西安", ""
    )
    for text in cards.locator(".job-facts").all_inner_texts():
        assert "约 ·" not in text
    assert cards.locator(".job-place", has_text="碑林区 · 碑林区").count() == 0
    assert cards.locator(".job-place").filter(has_text="碑林区").first.is_visible()
    assert browser_page.locator("#job-list .salary", has_text="面议").count() == 1

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(SCREENSHOTS / "seeker.png"))

    assert record.dialogs == []
    assert record.console_errors == []
    assert foreign_requests(record, base_url) == []


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
    assert browser_page.locator("#job-list .salary", has_text="negotiable").count() == 1
    for text in browser_page.locator("#job-list .job-facts").all_inner_texts():
        assert "approx. ·" not in text
    assert browser_page.locator("#seeker-list .seeker-line", has_text="graduate").count() > 0

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(SCREENSHOTS / "seeker_en.png"))

    api_requests = [url for url in record.requests if "/v1/" in url]
    assert any("/v1/dev/seekers?" in url for url in api_requests)
    for url in api_requests:
        assert "lang=en" in url, url

    assert record.dialogs == []
    assert record.console_errors == []
    assert foreign_requests(record, base_url) == []


def test_seeker_list_paging_and_group(page: tuple[Page, PageRecord], paging_url: str) -> None:
    browser_page, record = page
    browser_page.goto(paging_url + "/seeker")

    status = browser_page.locator("#seekers-page-status")
    expect(status).to_have_text(f"第 1 页，共 {STUB_SEEKERS} 位")
    seeker_ids = browser_page.locator("#seeker-list .seeker-id")
    assert seeker_ids.count() == 40
    assert seeker_ids.first.inner_text() == "sim-000000"
    assert browser_page.locator("#seekers-prev").is_disabled()

    browser_page.locator("#seekers-next").click()
    expect(status).to_have_text(f"第 2 页，共 {STUB_SEEKERS} 位")
    expect(seeker_ids.first).to_have_text("sim-000040")
    browser_page.locator("#seekers-next").click()
    expect(status).to_have_text(f"第 3 页，共 {STUB_SEEKERS} 位")
    assert browser_page.locator("#seekers-next").is_disabled()

    browser_page.locator("#group").select_option("talent")
    expect(status).to_have_text("第 1 页，共 30 位")
    lines = browser_page.locator("#seeker-list .seeker-line").all_inner_texts()
    assert len(lines) == 30
    assert all(line.startswith("高层次人才") for line in lines)

    seeker_requests = [url for url in record.requests if "/v1/dev/seekers?" in url]
    assert len(seeker_requests) == 4
    assert "offset=40" in seeker_requests[1]
    assert "offset=80" in seeker_requests[2]
    assert "group=talent" in seeker_requests[3]
    assert "offset=0" in seeker_requests[3]
    for url in seeker_requests:
        assert "limit=40" in url
        assert "lang=zh" in url
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(SCREENSHOTS / "seeker_group.png"))

    assert record.console_errors == []
    assert foreign_requests(record, paging_url) == []


def test_seeker_open_by_id(page: tuple[Page, PageRecord], base_url: str) -> None:
    browser_page, record = page
    browser_page.goto(base_url + "/seeker")
    browser_page.locator("#seeker-list button.seeker").first.wait_for()

    browser_page.locator("#seeker-id").fill(" sim-000080 ")
    browser_page.get_by_role("button", name="打开").click()
    expect(browser_page.locator("#seeker-summary .seeker-id")).to_have_text("sim-000080")
    browser_page.locator("#job-list .job-title").first.wait_for()
    assert any("/v1/dev/seekers/sim-000080/session?" in url for url in record.requests)
    assert any("/v1/me/recommendations?" in url for url in record.requests)

    browser_page.locator("#seeker-id").fill("sim-999999")
    browser_page.get_by_role("button", name="打开").click()
    expect(browser_page.locator("#jobs-status.error")).to_contain_text("求职者 sim-999999 不存在")

    browser_page.locator("#seeker-id").fill("   ")
    browser_page.get_by_role("button", name="打开").click()
    expect(browser_page.locator("#jobs-status.error")).to_contain_text("请输入求职者编号")
    # 404 from the recommendations request is logged by Chromium as a console error.
    assert [text for text in record.console_errors if "404" not in text] == []


def test_real_app_pages(page: tuple[Page, PageRecord], app_url: str) -> None:
    browser_page, record = page

    browser_page.goto(app_url + "/")
    browser_page.locator("#stats-items dd").first.wait_for()
    browser_page.locator(".anchor-marker, .anchor-cluster").first.wait_for()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(SCREENSHOTS / "city_map_app.png"))

    browser_page.goto(app_url + "/seeker")
    browser_page.locator("#seeker-list button.seeker").first.click()
    expect(browser_page.locator("#jobs-status")).not_to_have_text("加载中…")
    # Wait for the zoom to the results to finish, then for the job markers near home.
    expect(browser_page.locator(".leaflet-zoom-anim")).to_have_count(0)
    browser_page.locator("path.job-marker").first.wait_for()
    browser_page.screenshot(path=str(SCREENSHOTS / "seeker_app.png"))

    assert browser_page.locator("#jobs-status.error").count() == 0
    assert record.dialogs == []
    assert record.console_errors == []
    assert foreign_requests(record, app_url) == []


def test_real_app_district_summary(page: tuple[Page, PageRecord], app_url: str) -> None:
    browser_page, record = page

    browser_page.goto(app_url + "/")
    browser_page.locator("#stats-items dd").first.wait_for()
    browser_page.locator(".anchor-marker, .anchor-cluster").first.wait_for()
    # The south-west of the whole-city view lies in a county far from the payload anchors,
    # so the click lands on a district polygon rather than on a marker.
    browser_page.locator("path.leaflet-interactive").first.wait_for()
    browser_page.evaluate("window.scrollTo(0, 0)")
    box = browser_page.locator("#map").bounding_box()
    assert box is not None
    browser_page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.75)

    popup = browser_page.locator(".leaflet-popup .district-summary")
    popup.wait_for()
    expect(popup.locator("h3")).not_to_be_empty()
    assert record.dialogs == []
    assert record.console_errors == []


def test_real_app_payload_district_counts(app_url: str) -> None:
    body = httpx2.get(app_url + "/v1/stats/districts").json()
    beilin = [item for item in body["items"] if item["district_code"] == "610103"]
    assert sum(item["n"] for item in beilin) == 6
    assert {item["state_label"] for item in beilin} == {"草稿"}


# Records every Content-Security-Policy violation of the page, before its own scripts run.
CSP_LISTENER = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.cspViolations.push(event.effectiveDirective + " " + event.blockedURI);
});
"""


@pytest.mark.parametrize(
    ("path", "ready"),
    [
        ("/", "#stats-items dd"),
        ("/seeker", "#seeker-list button.seeker"),
        ("/staff/login", "#password-form"),
        ("/docs", ".swagger-ui .info .title"),
    ],
)
def test_real_app_pages_obey_csp(
    page: tuple[Page, PageRecord], app_url: str, path: str, ready: str
) -> None:
    browser_page, record = page
    browser_page.add_init_script(CSP_LISTENER)

    browser_page.goto(app_url + path)
    browser_page.locator(ready).first.wait_for()
    browser_page.wait_for_load_state("networkidle")

    assert browser_page.evaluate("window.cspViolations") == []
    assert record.console_errors == []
    assert foreign_requests(record, app_url) == []


def test_csp_listener_sees_inline_style(page: tuple[Page, PageRecord], app_url: str) -> None:
    browser_page, record = page
    browser_page.add_init_script(CSP_LISTENER)
    browser_page.goto(app_url + "/staff/login")
    browser_page.locator("#password-form").wait_for()

    browser_page.evaluate(
        "() => { const s = document.createElement('style');"
        " s.textContent = 'body { color: red; }'; document.head.appendChild(s); }"
    )

    browser_page.wait_for_function("window.cspViolations.length > 0")
    assert browser_page.evaluate("window.cspViolations") == ["style-src-elem inline"]
    assert any("Content Security Policy" in text for text in record.console_errors)


def test_push_link_opens_job(page: tuple[Page, PageRecord], app_url: str) -> None:
    browser_page, record = page

    browser_page.goto(app_url + "/seeker?job=xss-0")
    card = browser_page.locator("#job-list li.job.pushed")
    card.wait_for()

    expect(browser_page.locator("#seeker-summary h3")).to_have_text("推送给您的岗位")
    assert card.locator(".job-title").inner_text() == XSS_PAYLOADS[0]
    browser_page.locator("path.job-marker").first.wait_for()
    assert record.dialogs == []
    assert record.console_errors == []


def test_push_link_to_closed_job(page: tuple[Page, PageRecord], app_url: str) -> None:
    browser_page, record = page

    browser_page.goto(app_url + "/seeker?job=no-such-job&lang=en")

    expect(browser_page.locator("#jobs-status")).to_have_text(
        "This job is no longer open. Click the map to see other jobs nearby."
    )
    assert browser_page.locator("#jobs-status.error").count() == 0
    assert browser_page.locator("#job-list li.job").count() == 0
    # The 404 of the job request is logged by Chromium as a console error.
    assert [text for text in record.console_errors if "404" not in text] == []
