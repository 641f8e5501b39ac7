"""The staff curation page (完善锚点) without a browser, and the stub API the browser tests use.

``build_staff_stub_app`` serves the page over in-memory staff routes shaped like the
curation API: bearer-token check (401), anchors whose names are XSS payloads, a version
check on PATCH (409 with ``current_version``), a phone rule (422 with ``msg_zh`` per
field), duplicates, merge, imports and the summary.
"""

import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, get_args

from fastapi import FastAPI, Header, HTTPException, Request, UploadFile
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.curation_schemas import CoordSysName
from api.pages import load_messages, mount_assets, router
from api.settings import AuthSettings, ServerSettings, Settings
from tests.api.staff_login import PRODUCTION_SMS
from tests.api.test_pages import REPO_ROOT, XSS_PAYLOADS, _districts, _external, _references

STUB_TOKEN = "stub-staff-token-5f2c9a"

STATE_LABELS = load_messages()["zh"]["state_labels"]

# WGS84 points near the Bell Tower (钟楼), a few hundred metres apart.
STUB_POINTS = [(108.9402, 34.2600), (108.9450, 34.2580), (108.9350, 34.2630), (108.9480, 34.2650)]


def _anchor(index: int, name: str, state: str) -> dict[str, Any]:
    lon, lat = STUB_POINTS[index % len(STUB_POINTS)]
    return {
        "anchor_id": f"a{index}",
        "name": name,
        "lon": lon,
        "lat": lat,
        "precision": "exact",
        "precision_label": "精确位置",
        "state": state,
        "state_label": STATE_LABELS[state],
        "version": 3,
        "district_code": "610103",
        "district_name": "碑林区",
        "zone_key": None,
        "address": "地址" + name,
        "entrance": None,
        "credit_code": None,
        "industry_code": "C39",
        "industry_name": "计算机、通信和其他电子设备制造业",
        "size": "medium",
        "key_enterprise": False,
        "above_scale_industrial": True,
        "contact_role": "人事部",
        "contact_phone": "029-88886666",
        "shift_times": ["08:00-17:00"],
        "shuttle_stop": None,
        "n_postings": 2 + index,
    }


@dataclass
class StubCuration:
    """In-memory curation state; tests change it directly to simulate another editor."""

    anchors: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    patches: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def with_payloads(cls) -> "StubCuration":
        states = ["draft", "pending_review", "verified", "retired", "rejected", "draft"]
        stub = cls()
        for index, (payload, state) in enumerate(zip(XSS_PAYLOADS, states, strict=True)):
            anchor = _anchor(index, "单位" + payload, state)
            stub.anchors[anchor["anchor_id"]] = anchor
            stub.history[anchor["anchor_id"]] = [
                {
                    "version": version,
                    "actor": "staff-7",
                    "at": f"2026-03-0{version}T02:30:00+00:00",
                    "reason": "核实地址" + payload,
                    "state": state,
                    "changes": [{"field": "address", "old": "旧地址", "new": "地址" + payload}],
                }
                for version in (1, 2, 3)
            ]
        return stub

    def bump(self, anchor_id: str) -> None:
        """Simulate another staff member saving the anchor."""
        self.anchors[anchor_id]["version"] += 1


def _problem(status: int, msg: str, msg_zh: str, **extra: Any) -> HTTPException:
    return HTTPException(status_code=status, detail=[{"msg": msg, "msg_zh": msg_zh, **extra}])


def _check_token(authorization: str | None) -> None:
    if authorization != f"Bearer {STUB_TOKEN}":
        raise _problem(401, "missing or invalid staff token", "令牌无效")


Auth = Annotated[str | None, Header()]


def _patch_errors(changes: dict[str, Any]) -> list[dict[str, str]]:
    phone = str(changes.get("contact_phone", "0"))
    if re.fullmatch(r"[0-9-]+", phone):
        return []
    return [
        {
            "field": "contact_phone",
            "rule": "phone_format",
            "msg": "invalid phone",
            "msg_zh": "联系电话须为座机或400/800号码",
        }
    ]


def _add_staff_routes(app: FastAPI, stub: StubCuration) -> None:
    @app.get("/v1/staff/me")
    def me(authorization: Auth = None) -> dict[str, Any]:
        _check_token(authorization)
        return {
            "staff_id": "staff-7",
            "org": "碑林区就业服务中心",
            "districts": [{"code": "610103", "name": "碑林区"}],
            "zones": [],
            "filing_org": None,
        }

    @app.get("/v1/staff/filing-orgs")
    def filing_orgs(authorization: Auth = None) -> dict[str, Any]:
        _check_token(authorization)
        street = {"org_id": "street:610103001", "name": "南院门街道劳动保障所", "level": "street"}
        return {"items": [{**street, "parent_id": "district:610103", "district_code": "610103"}]}

    @app.get("/v1/staff/anchors")
    def anchors(
        authorization: Auth = None, state: str = "", q: str = "", limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        _check_token(authorization)
        found = [
            a
            for a in stub.anchors.values()
            if (not state or a["state"] == state) and q in a["name"]
        ]
        return {"items": found[offset : offset + limit], "total": len(found)}

    @app.get("/v1/staff/anchors/{anchor_id}")
    def anchor(anchor_id: str, authorization: Auth = None) -> dict[str, Any]:
        _check_token(authorization)
        return {"anchor": stub.anchors[anchor_id], "history": stub.history[anchor_id]}

    @app.patch("/v1/staff/anchors/{anchor_id}")
    async def patch(anchor_id: str, request: Request, authorization: Auth = None) -> dict[str, Any]:
        _check_token(authorization)
        body = await request.json()
        stub.patches.append(body)
        record = stub.anchors[anchor_id]
        if body["expected_version"] != record["version"]:
            raise _problem(
                409, "stale version", "锚点已被他人修改", current_version=record["version"]
            )
        errors = _patch_errors(body["changes"])
        if errors:
            raise _problem(422, "invalid change", "锚点修改无效", errors=errors)
        changes = {k: v for k, v in body["changes"].items() if k in record}
        history = [{"field": k, "old": record[k], "new": v} for k, v in changes.items()]
        record.update(changes, version=record["version"] + 1)
        entry = {
            "version": record["version"],
            "actor": "staff-7",
            "at": "2026-03-05T01:00:00Z",
            "reason": body["reason"],
            "state": record["state"],
            "changes": history,
        }
        stub.history[anchor_id].append(entry)
        return {"anchor": record, "version": entry}

    @app.get("/v1/staff/duplicates")
    def duplicates(authorization: Auth = None) -> dict[str, Any]:
        _check_token(authorization)
        a, b = stub.anchors["a0"], stub.anchors["a5"]
        pair = {
            "anchor_id_a": "a0",
            "anchor_id_b": "a5",
            "name_a": a["name"],
            "name_b": b["name"],
            "reason": "名称相近",
            "distance_m": 42.4,
            "similarity": 0.91,
        }
        return {"items": [pair]}

    @app.post("/v1/staff/anchors/merge")
    async def merge(request: Request, authorization: Auth = None) -> dict[str, Any]:
        _check_token(authorization)
        body = await request.json()
        return {"moved_postings": 7, "survivor": stub.anchors[body["survivor_id"]]}

    @app.post("/v1/staff/imports")
    async def imports(file: UploadFile, dry_run: bool = True, authorization: Auth = None) -> Any:
        _check_token(authorization)
        text = (await file.read()).decode("utf-8")
        rejected = [
            {
                "row": number,
                "field": "contact_phone",
                "rule": "phone_format",
                "reason": "invalid phone",
                "reason_zh": "联系电话无效" + XSS_PAYLOADS[0],
            }
            for number, line in enumerate(text.splitlines(), start=1)
            if "bad" in line
        ]
        accepted = len(text.splitlines()) - 1 - len(rejected)
        return {"ok": not rejected, "accepted": accepted, "rejected": rejected}

    @app.get("/v1/staff/summary")
    def summary(authorization: Auth = None) -> dict[str, Any]:
        _check_token(authorization)
        return {
            "items": [
                {
                    "district_code": "610103",
                    "district_name": "碑林区",
                    "precision": "exact",
                    "state": "draft",
                    "n": 2,
                },
                {
                    "district_code": "610103",
                    "district_name": "碑林区",
                    "precision": "district",
                    "state": "verified",
                    "n": 1234,
                },
            ]
        }


def build_staff_stub_app(data_dir: Path, stub: StubCuration) -> FastAPI:
    """Build an app with the page router, the assets, the districts layer and stub staff routes."""
    districts = _districts(data_dir)
    app = FastAPI()
    app.state.settings = Settings(server=ServerSettings(tile_url=""))

    @app.get("/v1/layers/districts")
    def district_layer(coord_sys: str = "wgs84") -> dict[str, Any]:
        return districts

    _add_staff_routes(app, stub)
    app.include_router(router)
    mount_assets(app, REPO_ROOT)
    return app


def test_staff_page_defaults_to_chinese(client: TestClient) -> None:
    response = client.get("/staff")

    assert response.status_code == 200
    assert '<html lang="zh-CN">' in response.text
    assert "<title>完善锚点" in response.text
    assert "疑似重复" in response.text
    assert "批量导入" in response.text
    assert 'href="/staff?lang=zh" aria-current="page"' in response.text
    # Staff curate real employers; the simulated-seekers note belongs to the other pages.
    assert "模拟数据" not in response.text


def test_staff_page_english(client: TestClient) -> None:
    response = client.get("/staff", params={"lang": "en"})

    assert response.status_code == 200
    assert '<html lang="en">' in response.text
    assert "Curate anchors" in response.text
    assert "完善锚点" not in response.text


def test_staff_page_unknown_lang(client: TestClient) -> None:
    response = client.get("/staff", params={"lang": "fr"})

    assert response.status_code == 422
    assert 'href="/staff?lang=en"' in response.text


def test_staff_page_sets_csp(client: TestClient) -> None:
    policy = client.get("/staff").headers["content-security-policy"]

    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy


def test_staff_page_same_origin_only(client: TestClient) -> None:
    html = client.get("/staff").text
    references = _references(html)

    assert "/static/staff-page.js" in references
    assert "/assets/leaflet/leaflet.js" in references
    assert _external(references) == []
    assert client.get("/static/staff-page.js").status_code == 200


def test_staff_page_has_no_token_field(client: TestClient) -> None:
    html = client.get("/staff").text

    assert '<input id="token"' not in html
    assert '<button type="button" id="logout">退出登录</button>' in html
    assert html.index("/static/staff-session.js") < html.index("/static/staff-page.js")


def test_login_page_chinese(client: TestClient) -> None:
    response = client.get("/staff/login")

    assert response.status_code == 200
    assert "<title>工作人员登录" in response.text
    password = re.search(r'<input id="login-password"[^>]*>', response.text)
    assert password is not None
    assert 'type="password"' in password.group(0)
    assert 'autocomplete="one-time-code"' in response.text
    references = _references(response.text)
    assert "/static/staff-login.js" in references
    assert _external(references) == []
    assert client.get("/static/staff-login.js").status_code == 200


def test_login_page_english(client: TestClient) -> None:
    response = client.get("/staff/login", params={"lang": "en"})

    assert response.status_code == 200
    assert "<title>Staff sign-in" in response.text
    assert "工作人员登录" not in response.text


def test_login_page_has_no_inline_script(client: TestClient) -> None:
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", client.get("/staff/login").text, re.S)

    executable = [attrs for attrs, body in scripts if "src=" not in attrs and body.strip()]
    assert all('type="application/json"' in attrs for attrs in executable)
    assert "script-src 'self'" in client.get("/staff/login").headers["content-security-policy"]


def test_login_page_names_outbox_in_development(client: TestClient) -> None:
    html = client.get("/staff/login").text
    outbox = AuthSettings().sms_outbox_path.resolve()

    assert f"<code>{outbox}</code>" in html


def test_login_page_hides_outbox_in_production(data_dir: Path) -> None:
    app = build_staff_stub_app(data_dir, StubCuration.with_payloads())
    production = AuthSettings(
        environment="production",
        staff_token_secret=SecretStr(secrets.token_urlsafe(48)),
        **PRODUCTION_SMS,  # type: ignore[arg-type]
    )
    # Only the auth part is in production; a whole production Settings needs every key.
    app.state.settings.auth = production

    html = TestClient(app).get("/staff/login").text

    assert 'id="outbox-note"' not in html
    assert "sms_outbox" not in html


def test_staff_page_has_no_inline_script(client: TestClient) -> None:
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", client.get("/staff").text, re.S)

    assert scripts
    for attributes, body in scripts:
        if body.strip():
            assert 'type="application/json"' in attributes


def test_staff_page_form_fields(client: TestClient) -> None:
    html = client.get("/staff").text

    for name in (
        "name",
        "address",
        "lon",
        "lat",
        "credit_code",
        "industry_code",
        "size",
        "key_enterprise",
        "above_scale_industrial",
        "contact_role",
        "contact_phone",
        "shift_times",
        "reason",
    ):
        assert f'id="f-{name}"' in html, name
    for label in ("规上工业企业", "修改原因", "草稿", "待审核", "已核实", "已停用", "已驳回"):
        assert label in html


def test_staff_page_legend(client: TestClient) -> None:
    html = client.get("/staff").text

    assert "锚点状态（填充颜色）" in html
    assert "位置精度（边框和大小）" in html
    for state in STATE_LABELS:
        assert f"anchor-mark mark-legend-state mark-state-{state}" in html, state
    for precision in ("exact", "poi", "building", "business_area", "zone", "district"):
        assert f"mark-precision-{precision}" in html, precision
    # City-level anchors are never drawn, so the legend explains them in a note instead.
    assert "mark-precision-city" not in html


def test_staff_page_create_form_fields(client: TestClient) -> None:
    html = client.get("/staff").text

    for name in (
        "name",
        "lon",
        "lat",
        "coord_sys",
        "address",
        "entrance_lon",
        "entrance_lat",
        "credit_code",
        "industry_code",
        "size",
        "key_enterprise",
        "above_scale_industrial",
        "contact_role",
        "contact_phone",
        "shift_times",
        "shuttle_name",
        "shuttle_lon",
        "shuttle_lat",
        "district_code",
        "zone_key",
        "reason",
    ):
        assert f'id="new-{name}"' in html, name
    options = re.findall(r'<select id="new-coord_sys".*?</select>', html, re.S)
    assert len(options) == 1
    assert re.findall(r'<option value="(\w+)"', options[0]) == ["wgs84", "gcj02", "bd09"]
    assert '<option value="wgs84" selected>' in options[0]
    assert "/static/staff-create.js" in _references(html)


def test_staff_create_form_english(client: TestClient) -> None:
    html = client.get("/staff", params={"lang": "en"}).text

    assert "Anchor state (fill colour)" in html
    assert "Add anchor" in html
    assert "GCJ-02 (Amap, Tencent)" in html
    assert "新增锚点" not in html


def test_staff_coord_sys_labels_match_api() -> None:
    messages = load_messages()

    for lang in ("zh", "en"):
        assert set(messages[lang]["staff_coord_sys_labels"]) == set(get_args(CoordSysName))


def test_staff_messages_in_both_languages() -> None:
    messages = load_messages()

    assert set(messages["zh"]["state_labels"]) == set(messages["en"]["state_labels"])
    assert messages["zh"]["login_error_locked"].replace("{minutes}", "30") == (
        "账号已锁定，请在 30 分钟后重试。"
    )
    assert messages["zh"]["staff_conflict"].replace("{version}", "5") == (
        "该锚点已被他人修改（当前版本 5），请刷新后重试"
    )


def test_staff_stub_rejects_missing_token(data_dir: Path) -> None:
    client = TestClient(build_staff_stub_app(data_dir, StubCuration.with_payloads()))

    assert client.get("/v1/staff/me").status_code == 401
    headers = {"Authorization": f"Bearer {STUB_TOKEN}"}
    assert client.get("/v1/staff/me", headers=headers).status_code == 200
    assert client.get("/staff").status_code == 200
