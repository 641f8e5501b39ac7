"""The officer workbench in Debian's headless Chromium, against the real API and SQLite store.

An assistance officer of 雁塔区 with three assigned targets records a guidance session,
signs off the proposed jobs, records a delivery and a training offer, exports the
workbook and checks an import file. Screenshots go to var/screenshots/officer*.png.
"""

import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook
from playwright.sync_api import FilePayload, Page, expect
from pydantic import SecretStr

from api.app import create_app
from api.settings import AuthSettings, CacheSettings, DataSettings, Settings
from store.identity import Role
from store.sqlite import SqliteStore, write_store
from tests.api.assistance_fixtures import YANTA, plaintext_seekers, store_inputs, yanta_targets
from tests.api.staff_login import StaffLogin, log_in_staff
from tests.fix_browser import SCREENSHOTS, PageRecord, foreign_requests, serve

pytestmark = pytest.mark.browser

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class OfficerServer:
    """A served app with an officer session and the officer's target ids."""

    url: str
    officer: StaffLogin
    targets: list[str]


@pytest.fixture(scope="module")
def seekers(data_dir: Path) -> pd.DataFrame:
    return plaintext_seekers(data_dir)


@pytest.fixture
def server(data_dir: Path, tmp_path: Path, seekers: pd.DataFrame) -> Iterator[OfficerServer]:
    write_store(tmp_path / "store.sqlite", **store_inputs(seekers))
    settings = Settings(
        data=DataSettings(
            data_dir=data_dir, store_path=tmp_path / "store.sqlite", transit_model=False
        ),
        cache=CacheSettings(rate_limit_per_minute=0),
        auth=AuthSettings(
            staff_token_secret=SecretStr(secrets.token_hex(32)),
            identity_path=tmp_path / "identity.sqlite",
        ),
    )
    app = create_app(settings, store=SqliteStore(tmp_path / "store.sqlite"))
    targets = [str(s) for s in yanta_targets(seekers)["seeker_id"]]
    with serve(app) as url:
        client = TestClient(app)
        officer = log_in_staff(client, f"district:{YANTA}", role=Role.ASSISTANCE_OFFICER)
        for seeker_id in targets:
            response = client.post(
                "/v1/assistance/targets",
                json={"seeker_id": seeker_id, "officer_id": officer.account_id},
                headers=officer.headers,
            )
            assert response.status_code == 201, response.text
        yield OfficerServer(url, officer, targets)


def _open(page: Page, server: OfficerServer, lang: str = "zh") -> None:
    page.goto(f"{server.url}/staff/login?lang={lang}")
    page.evaluate(
        "token => window.sessionStorage.setItem('doorstep.staffToken', token)",
        server.officer.token,
    )
    page.evaluate(
        "id => window.localStorage.setItem('doorstep.deviceId', id)", server.officer.device_id
    )
    page.goto(f"{server.url}/officer?lang={lang}")
    page.locator("#of-targets tbody tr").first.wait_for()


def _screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def _import_file(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["求职者编号", "援助员账号", "援助类别"])
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_officer_131_flow(page: tuple[Page, PageRecord], server: OfficerServer) -> None:
    page, record = page
    _open(page, server)

    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#of-title")).to_have_text("援助员工作台")
    expect(page.locator("#of-targets tbody tr")).to_have_count(3)
    first = page.locator(f"#of-targets tbody tr[data-seeker-id='{server.targets[0]}']")
    expect(first).to_contain_text("指导— · 推荐0/3 · 培训—")

    first.locator("button.of-open").click()
    page.locator("#of-guidance-form button[type=submit]").click()
    expect(page.locator("#of-guidance-done")).to_contain_text("职业规划")
    expect(page.locator("#of-matches input:checked")).to_have_count(3)
    page.locator("#of-sign-off").click()
    expect(page.locator("#of-recommendations li")).to_have_count(3)
    expect(page.locator("#of-recommendations li").first).to_contain_text("已签发")

    page.locator("#of-recommendations li").first.locator("button[data-state=delivered]").click()
    expect(page.locator("#of-recommendations li").first).to_contain_text("已送达")
    expect(page.locator("#of-visits li")).to_have_count(1)
    page.locator("#of-training-offer").click()
    expect(page.locator("#of-training-done")).to_contain_text("雁塔职业技能培训学校")
    expect(first).to_contain_text("指导✓ · 推荐1/3 · 培训✓")
    expect(page.locator("#of-due-visits")).to_contain_text("暂无到期回访")
    _screenshot(page, "officer.png")

    assert foreign_requests(record, server.url) == []
    assert record.console_errors == []
    assert all(server.officer.token not in url for url in record.requests)


def test_officer_second_target_gets_other_jobs(
    page: tuple[Page, PageRecord], server: OfficerServer
) -> None:
    page, _ = page
    _open(page, server)

    chosen: list[list[str]] = []
    for seeker_id in server.targets[:2]:
        page.locator(f"#of-targets tbody tr[data-seeker-id='{seeker_id}'] button.of-open").click()
        page.locator("#of-guidance-form button[type=submit]").click()
        expect(page.locator("#of-guidance-done")).to_be_visible()
        boxes = page.locator("#of-matches input:checked")
        expect(boxes).not_to_have_count(0)
        chosen.append([boxes.nth(i).get_attribute("value") or "" for i in range(boxes.count())])
        page.locator("#of-sign-off").click()
        expect(page.locator("#of-recommendations li")).to_have_count(len(chosen[-1]))

    # Every posting has one vacancy, so the two targets never share a posting.
    assert set(chosen[0]).isdisjoint(chosen[1])


def test_officer_export_and_import(page: tuple[Page, PageRecord], server: OfficerServer) -> None:
    page, record = page
    _open(page, server)

    with page.expect_download() as download:
        page.locator("#of-export-masked").click()
    workbook = load_workbook(io.BytesIO(download.value.path().read_bytes()))
    assert [cell.value for cell in workbook["131台账"][1]][:3] == ["求职者编号", "模拟数据", "姓名"]
    assert workbook["131台账"]["E2"].value == "已隐藏"

    upload = _import_file([[server.targets[0], server.officer.account_id, "未知类别"]])
    page.locator("#of-import-file").set_input_files(
        FilePayload(name="targets.xlsx", mimeType=XLSX, buffer=upload)
    )
    page.locator("#of-import-check").click()
    expect(page.locator("#of-import-issues li")).to_have_count(1)
    expect(page.locator("#of-import-issues li")).to_contain_text("第 2 行 · 援助类别")
    expect(page.locator("#of-import-commit")).to_be_disabled()
    assert "未知类别" not in page.locator("#of-import-issues").inner_text()
    _screenshot(page, "officer_import.png")
    assert foreign_requests(record, server.url) == []


def test_officer_page_english(page: tuple[Page, PageRecord], server: OfficerServer) -> None:
    page, _ = page
    _open(page, server, lang="en")

    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#of-title")).to_have_text("Officer workbench")
    expect(page.locator("#of-targets thead")).to_contain_text("131 progress")


def test_officer_page_without_session(page: tuple[Page, PageRecord], server: OfficerServer) -> None:
    page, record = page
    page.goto(f"{server.url}/officer")

    expect(page.locator("#of-signin")).to_be_visible()
    expect(page.locator("#of-signin-link")).to_have_attribute(
        "href", "/staff/login?lang=zh&next=/officer"
    )
    assert not any("/v1/assistance" in url for url in record.requests)
