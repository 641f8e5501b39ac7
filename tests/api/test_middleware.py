"""HTTP guards on the real app: security headers, CORS, body size limit and the catch-all 500."""

import base64
import http.client
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from api.app import create_app
from api.auth import require
from api.middleware import security_headers
from api.permissions import Permission
from api.settings import (
    AuthSettings,
    CacheSettings,
    DataSettings,
    HttpSettings,
    ModelSettings,
    PrivacySettings,
    Settings,
)
from store.audit import AuditWriteError
from store.identity import Role
from store.sqlite import SqliteStore
from tests.api.staff_login import PRODUCTION_SMS, log_in_staff
from tests.fix_browser import serve

ALLOWED_ORIGIN = "https://jobs.example.cn"
OTHER_ORIGIN = "https://evil.example.com"
# Text of the exceptions the test routes raise; no response may contain it.
LEAKED_TEXT = "psycopg says: password authentication failed at /srv/secret/path"
MIB = 1024 * 1024


def _settings(store: SqliteStore, folder: Path, **http: object) -> Settings:
    return Settings(
        data=DataSettings(store_path=store.path),
        cache=CacheSettings(rate_limit_per_minute=0),
        http=HttpSettings(**http),  # type: ignore[arg-type]
        auth=AuthSettings(identity_path=folder / "identity.sqlite"),
    )


def _add_test_routes(app: FastAPI, calls: list[str]) -> None:
    """Add routes that raise, and one that reads and counts its body."""

    @app.get("/v1/test/raise", dependencies=[require(Permission.PUBLIC)])
    def raise_error() -> None:
        raise RuntimeError(LEAKED_TEXT)

    @app.get("/v1/test/audit-down", dependencies=[require(Permission.PUBLIC)])
    def audit_down() -> None:
        raise AuditWriteError(LEAKED_TEXT)

    @app.post("/v1/test/echo", dependencies=[require(Permission.PUBLIC)])
    async def echo(request: Request) -> dict[str, int]:
        calls.append("echo")
        return {"bytes": len(await request.body())}


@pytest.fixture(scope="module")
def echo_calls() -> list[str]:
    return []


@pytest.fixture(scope="module")
def app(
    xss_store: SqliteStore, tmp_path_factory: pytest.TempPathFactory, echo_calls: list[str]
) -> FastAPI:
    """The real app with default HTTP settings and the test routes."""
    built = create_app(_settings(xss_store, tmp_path_factory.mktemp("guards")))
    _add_test_routes(built, echo_calls)
    return built


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def cors_client(
    xss_store: SqliteStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The real app allowing one other origin, with credentials."""
    settings = _settings(
        xss_store,
        tmp_path_factory.mktemp("cors"),
        cors_allow_origins=[ALLOWED_ORIGIN],
        cors_allow_credentials=True,
    )
    with TestClient(create_app(settings, store=xss_store)) as test_client:
        yield test_client


# --- security headers ----------------------------------------------------------------------


def _assert_security_headers(headers: "http.client.HTTPMessage | dict[str, str]") -> None:
    lowered = {key.lower(): value for key, value in dict(headers).items()}
    policy = lowered["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert lowered["x-content-type-options"] == "nosniff"
    assert lowered["referrer-policy"] == "same-origin"
    assert "camera=()" in lowered["permissions-policy"]
    assert "geolocation=()" in lowered["permissions-policy"]
    assert lowered["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in lowered


@pytest.mark.parametrize(
    "path", ["/health", "/", "/staff/login", "/docs", "/static/pages.css", "/no-such-page"]
)
def test_headers_on_every_response(client: TestClient, path: str) -> None:
    _assert_security_headers(client.get(path).headers)  # type: ignore[arg-type]


def test_headers_on_validation_error(client: TestClient) -> None:
    response = client.get("/v1/jobs/nearby", params={"lon": "east"})

    assert response.status_code == 422
    _assert_security_headers(response.headers)  # type: ignore[arg-type]


def test_headers_on_500(client: TestClient) -> None:
    response = client.get("/v1/test/raise")

    assert response.status_code == 500
    _assert_security_headers(response.headers)  # type: ignore[arg-type]


def test_frame_ancestors_setting() -> None:
    same_site = security_headers(Settings(http=HttpSettings(frame_ancestors="'self'")))
    portal = security_headers(
        Settings(http=HttpSettings(frame_ancestors="https://portal.example.cn"))
    )

    assert "frame-ancestors 'self'" in dict(same_site)["Content-Security-Policy"]
    assert dict(same_site)["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors https://portal.example.cn" in dict(portal)["Content-Security-Policy"]
    assert "X-Frame-Options" not in dict(portal)


@pytest.mark.parametrize("value", ["*", "'none'; script-src *", "http://portal.example.cn", ""])
def test_frame_ancestors_rejects_value(value: str) -> None:
    with pytest.raises(ValidationError, match="frame_ancestors"):
        HttpSettings(frame_ancestors=value)


def _production_settings(folder: Path, store: SqliteStore) -> Settings:
    # The payload store was encrypted with the development key, which stays listed
    # beside the active production key, as after a rotation.
    development = json.loads(Path(os.environ["DOORSTEP_PI_KEY_PATH"]).read_text())["encryption"]
    return Settings(
        data=DataSettings(store_path=store.path),
        cache=CacheSettings(rate_limit_per_minute=0),
        auth=AuthSettings(
            environment="production",
            staff_token_secret=SecretStr("p" * 8 + "roduction-token-key-0123456789"),
            **PRODUCTION_SMS,  # type: ignore[arg-type]
            identity_path=folder / "identity.sqlite",
        ),
        model=ModelSettings(model_key=SecretStr("m" * 8 + "odel-key-0123456789abcdefghij")),
        privacy=PrivacySettings(
            pi_keys=SecretStr(
                f"k1:{base64.b64encode(b'0123456789abcdef').decode()},dev1:{development}"
            ),
            pi_index_key=SecretStr("i" * 8 + "ndex-key-0123456789abcdefghij"),
            audit_key=SecretStr("a" * 8 + "udit-key-0123456789abcdefghij"),
        ),
    )


@pytest.fixture(scope="module")
def production_client(
    xss_store: SqliteStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    settings = _production_settings(tmp_path_factory.mktemp("production"), xss_store)
    with TestClient(create_app(settings, store=xss_store)) as test_client:
        yield test_client


def test_hsts_only_in_production(client: TestClient, production_client: TestClient) -> None:
    assert "strict-transport-security" not in client.get("/health").headers
    assert production_client.get("/health").headers["strict-transport-security"] == (
        "max-age=31536000; includeSubDomains"
    )


# --- API documentation ---------------------------------------------------------------------


def test_docs_open_in_development(client: TestClient) -> None:
    schema = client.get("/openapi.json")
    page = client.get("/docs")

    assert schema.status_code == 200
    assert "/v1/jobs/nearby" in schema.json()["paths"]
    assert page.status_code == 200
    assert '"login_required": false' in page.text


def test_docs_page_has_no_inline_script(client: TestClient) -> None:
    html = client.get("/docs").text

    assert "<script>" not in html
    assert '<script src="/static/api-docs.js"></script>' in html
    assert "cdn" not in html.lower()


def test_schema_needs_staff_session_in_production(production_client: TestClient) -> None:
    anonymous = production_client.get("/openapi.json")
    staff = log_in_staff(production_client)
    signed_in = production_client.get("/openapi.json", headers=staff.headers)

    assert anonymous.status_code == 401
    assert "paths" not in anonymous.text
    assert signed_in.status_code == 200
    assert "/v1/staff/anchors" in signed_in.json()["paths"]


def test_schema_denied_to_audit_admin_in_production(production_client: TestClient) -> None:
    auditor = log_in_staff(production_client, "city", Role.AUDIT_ADMIN)

    response = production_client.get("/openapi.json", headers=auditor.headers)

    assert response.status_code == 403
    assert "paths" not in response.text


def test_docs_page_asks_login_in_production(production_client: TestClient) -> None:
    page = production_client.get("/docs")

    assert page.status_code == 200
    assert '"login_required": true' in page.text
    assert "/v1/" not in page.text


# --- CORS ------------------------------------------------------------------------------------


def test_cors_off_by_default(client: TestClient) -> None:
    preflight = client.options(
        "/v1/jobs/nearby",
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    simple = client.get("/health", headers={"Origin": ALLOWED_ORIGIN})

    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


def test_cors_preflight_allowed_origin(cors_client: TestClient) -> None:
    response = cors_client.options(
        "/v1/jobs/nearby",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization, X-Device-ID",
        },
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "x-device-id" in allowed
    _assert_security_headers(response.headers)  # type: ignore[arg-type]


def test_cors_preflight_other_origin(cors_client: TestClient) -> None:
    response = cors_client.options(
        "/v1/jobs/nearby",
        headers={"Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "GET"},
    )

    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_cors_simple_request(cors_client: TestClient) -> None:
    allowed = cors_client.get("/health", headers={"Origin": ALLOWED_ORIGIN})
    other = cors_client.get("/health", headers={"Origin": OTHER_ORIGIN})

    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "X-Request-ID" in allowed.headers["access-control-expose-headers"]
    assert "access-control-allow-origin" not in other.headers


def test_cors_wildcard_with_credentials_rejected() -> None:
    with pytest.raises(ValidationError, match="cannot be combined"):
        HttpSettings(cors_allow_origins=["*"], cors_allow_credentials=True)


def test_cors_origins_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOORSTEP_CORS_ALLOW_ORIGINS", f"{ALLOWED_ORIGIN}, http://127.0.0.1:9000")

    assert HttpSettings().cors_allow_origins == [ALLOWED_ORIGIN, "http://127.0.0.1:9000"]


@pytest.mark.parametrize(
    "origin", ["https://jobs.example.cn/", "https://jobs.example.cn/app", "jobs.example.cn"]
)
def test_cors_origin_with_path_rejected(origin: str) -> None:
    with pytest.raises(ValidationError, match="DOORSTEP_CORS_ALLOW_ORIGINS entry"):
        HttpSettings(cors_allow_origins=[origin])


# --- body size limit -------------------------------------------------------------------------


def test_declared_large_body_is_413(client: TestClient, echo_calls: list[str]) -> None:
    before = len(echo_calls)

    response = client.post("/v1/test/echo", content=b"x" * (MIB + 1))

    assert response.status_code == 413
    detail = response.json()["detail"][0]
    assert detail["type"] == "RequestTooLargeError"
    assert detail["msg"] == "request body is larger than 1048576 bytes; send a smaller body"
    assert detail["msg_zh"] == "请求内容过大，不能超过 1 MiB，请减小后重试"
    assert len(echo_calls) == before


def test_body_at_limit_accepted(client: TestClient) -> None:
    response = client.post("/v1/test/echo", content=b"x" * MIB)

    assert response.status_code == 200
    assert response.json() == {"bytes": MIB}


def test_large_json_body_is_413(client: TestClient) -> None:
    body = b'{"login": "' + b"a" * (2 * MIB) + b'", "password": "x"}'

    response = client.post(
        "/v1/auth/login", content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413


def test_import_route_allows_larger_body(client: TestClient) -> None:
    files = {"file": ("anchors.csv", b"x" * (2 * MIB), "text/csv")}

    response = client.post("/v1/staff/imports", files=files)

    # Over the 1 MiB default but under the import limit, so the permission check returns 401.
    assert response.status_code == 401


def test_import_body_over_its_limit_is_413(client: TestClient) -> None:
    files = {"file": ("anchors.csv", b"x" * (3 * MIB), "text/csv")}

    response = client.post("/v1/staff/imports", files=files)

    assert response.status_code == 413
    assert "3 MiB" in response.json()["detail"][0]["msg_zh"]


def _post_chunked(base_url: str, path: str, chunks: list[bytes]) -> tuple[int, bytes]:
    """POST ``chunks`` with Transfer-Encoding: chunked and no Content-Length."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.request(
            "POST",
            path,
            body=iter(chunks),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_chunked_body_over_limit_is_413(app: FastAPI, echo_calls: list[str]) -> None:
    chunks = [b"x" * (256 * 1024)] * 5  # 1.25 MiB in total, no Content-Length

    with serve(app) as url:
        status, body = _post_chunked(url, "/v1/test/echo", chunks)
        small_status, small_body = _post_chunked(url, "/v1/test/echo", [b"x" * 1000] * 3)

    assert status == 413
    assert b"RequestTooLargeError" in body
    assert small_status == 200
    assert small_body == b'{"bytes":3000}'


def test_chunked_json_over_limit_is_413(app: FastAPI) -> None:
    chunks = [b'{"login": "', *([b"a" * (512 * 1024)] * 3), b'", "password": "x"}']

    with serve(app) as url:
        status, body = _post_chunked(url, "/v1/auth/login", chunks)

    assert status == 413
    assert "请求内容过大".encode() in body


# --- no stack traces -------------------------------------------------------------------------


def test_unhandled_error_is_500_with_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="api.middleware"):
        response = client.get("/v1/test/raise", headers={"X-Request-ID": "req-boom-1"})

    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "req-boom-1"
    detail = response.json()["detail"][0]
    assert detail["request_id"] == "req-boom-1"
    assert detail["msg_zh"] == "服务内部错误，请稍后重试。报告问题时请提供请求编号 req-boom-1"
    assert detail["msg"] == "internal server error; quote request id req-boom-1 when reporting it"
    assert LEAKED_TEXT not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    logged = [record for record in caplog.records if "req-boom-1" in record.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None


def test_unhandled_error_generates_request_id(client: TestClient) -> None:
    response = client.get("/v1/test/raise")

    assert response.status_code == 500
    assert response.json()["detail"][0]["request_id"] == response.headers["X-Request-ID"]


def test_domain_5xx_hides_error_text(client: TestClient) -> None:
    response = client.get("/v1/test/audit-down")

    assert response.status_code == 503
    detail = response.json()["detail"][0]
    assert LEAKED_TEXT not in response.text
    assert detail["msg_zh"] == "操作日志暂不可用，操作未执行，请稍后重试"
    assert detail["request_id"] == response.headers["X-Request-ID"]


def test_seeker_demo_routes_closed_in_production(production_client: TestClient) -> None:
    picker = production_client.get("/v1/dev/seekers")
    session = production_client.post("/v1/dev/seekers/sim-000001/session")
    staff_list = production_client.get("/v1/seekers")
    matches = production_client.get("/v1/seekers/sim-000001/recommendations")

    assert picker.status_code == 404
    assert session.status_code == 404
    assert "生产环境" in session.json()["detail"][0]["msg_zh"]
    assert staff_list.status_code == 401
    assert matches.status_code == 401
