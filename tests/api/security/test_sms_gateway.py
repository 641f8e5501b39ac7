"""The HTTP SMS gateway of login codes against a fake gateway on 127.0.0.1.

The fake records every request, checks the HMAC-SHA256 signature the way a real
gateway would, and replies with the status, delay or reply a test sets.
"""

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from api.security.sms import HttpSmsGateway, OutboxSmsGateway, SmsDeliveryError, sms_gateway
from api.settings import AuthSettings
from push.channels import ChannelError, OutgoingPush, SmsGatewayChannel
from push.sms_http import SmsHttpClient
from tests.api.staff_login import PRODUCTION_SMS

SIGNING_SECRET = b"test-signing-secret-0123456789abcdef"
MOBILE = "13900000017"  # simulated
TEXT = "【家门口就业】验证码 482913，5 分钟内有效，请勿告诉他人。"
AT = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@dataclass
class Received:
    """What the fake gateway received and how it replies."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    status_code: int = 200
    reply: bytes = b'{"status": "ok"}'
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    received: Received

    def log_message(self, format: str, *args: Any) -> None:  # base class name
        return

    def do_POST(self) -> None:  # http.server's name
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        timestamp = self.headers.get("X-Sms-Timestamp", "")
        nonce = self.headers.get("X-Sms-Nonce", "")
        message = f"POST\n{self.path}\n{timestamp}\n{nonce}\n".encode() + raw
        expected = hmac.new(SIGNING_SECRET, message, hashlib.sha256).hexdigest()
        with self.received.lock:
            self.received.requests.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": json.loads(raw),
                    "signature_valid": hmac.compare_digest(
                        expected, self.headers.get("X-Sms-Signature", "")
                    ),
                }
            )
        if self.received.delay_s:
            time.sleep(self.received.delay_s)
        try:
            self.send_response(self.received.status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self.received.reply)))
            self.end_headers()
            self.wfile.write(self.received.reply)
        except BrokenPipeError:
            pass  # the client timed out and closed the connection first


@dataclass
class FakeSmsGateway:
    """A fake SMS gateway listening on a free loopback port."""

    url: str
    received: Received


@pytest.fixture
def fake() -> Iterator[FakeSmsGateway]:
    received = Received()
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Handler,), {"received": received}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield FakeSmsGateway(f"http://127.0.0.1:{server.server_address[1]}", received)
    server.shutdown()
    server.server_close()


def _gateway(url: str, *, timeout_s: float = 2.0) -> HttpSmsGateway:
    auth = AuthSettings(
        sms_gateway="http",
        sms_endpoint=url,
        sms_api_key=SecretStr("sms-key-1"),
        sms_signing_secret=SecretStr(SIGNING_SECRET.decode()),
        sms_timeout_s=timeout_s,
    )
    gateway = sms_gateway(auth)
    assert isinstance(gateway, HttpSmsGateway)
    return gateway


def test_signed_request_shape(fake: FakeSmsGateway) -> None:
    _gateway(fake.url).send(MOBILE, TEXT, AT)

    (request,) = fake.received.requests
    assert request["path"] == "/sms/send"
    assert request["signature_valid"]
    assert request["headers"]["Authorization"] == "Bearer sms-key-1"
    assert request["headers"]["Idempotency-Key"] == request["body"]["client_ref"]
    assert request["body"]["client_ref"].startswith("otc-")
    assert request["body"] == {
        "to": MOBILE,
        "sign": "家门口就业",
        "text": TEXT,
        "client_ref": request["body"]["client_ref"],
    }
    assert abs(int(request["headers"]["X-Sms-Timestamp"]) - time.time()) < 60
    assert len(request["headers"]["X-Sms-Nonce"]) == 32


def test_each_code_new_reference(fake: FakeSmsGateway) -> None:
    gateway = _gateway(fake.url)
    gateway.send(MOBILE, TEXT, AT)
    gateway.send(MOBILE, TEXT, AT)

    first, second = fake.received.requests
    assert first["body"]["client_ref"] != second["body"]["client_ref"]
    assert first["headers"]["X-Sms-Nonce"] != second["headers"]["X-Sms-Nonce"]


def test_changed_body_fails_signature(fake: FakeSmsGateway) -> None:
    client = SmsHttpClient(fake.url, "k", "家门口就业", signing_secret=b"another-secret")
    client.send(MOBILE, TEXT, "ref-1")

    assert not fake.received.requests[0]["signature_valid"]


@pytest.mark.parametrize("status_code", [400, 401, 500, 503])
def test_non_2xx_raises_clear_error(
    fake: FakeSmsGateway, status_code: int, caplog: pytest.LogCaptureFixture
) -> None:
    fake.received.status_code = status_code
    fake.received.reply = b'{"status": "error"}'

    with caplog.at_level(logging.DEBUG), pytest.raises(SmsDeliveryError) as raised:
        _gateway(fake.url).send(MOBILE, TEXT, AT)

    assert f"returned HTTP {status_code}" in str(raised.value)
    assert isinstance(raised.value, OSError)
    _assert_no_secret(str(raised.value), caplog)


def test_timeout_raises_clear_error(fake: FakeSmsGateway, caplog: pytest.LogCaptureFixture) -> None:
    fake.received.delay_s = 1.0

    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(SmsDeliveryError, match="timed out"):
        _gateway(fake.url, timeout_s=0.2).send(MOBILE, TEXT, AT)

    assert time.monotonic() - started < 0.9
    _assert_no_secret("", caplog)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b'{"status": "rejected"}', "status 'rejected'"),
        (b"[1, 2]", "not an object"),
        (b"<html>busy</html>", "JSONDecodeError"),
    ],
)
def test_unaccepted_reply_raises(
    fake: FakeSmsGateway, reply: bytes, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake.received.reply = reply

    with caplog.at_level(logging.DEBUG), pytest.raises(SmsDeliveryError, match=message) as raised:
        _gateway(fake.url).send(MOBILE, TEXT, AT)

    _assert_no_secret(str(raised.value), caplog)


def test_refused_connection_raises() -> None:
    # Port 9 (discard) on loopback has no listener in the test environment.
    with pytest.raises(SmsDeliveryError, match=r"127\.0\.0\.1:9 failed"):
        _gateway("http://127.0.0.1:9").send(MOBILE, TEXT, AT)


def test_accepted_code_not_logged(fake: FakeSmsGateway, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        _gateway(fake.url).send(MOBILE, TEXT, AT)

    assert any("accepted" in record.getMessage() for record in caplog.records)
    _assert_no_secret("", caplog)


def test_push_channel_signs_too(fake: FakeSmsGateway) -> None:
    class Directory:
        def address(self, seeker_id: str, channel: str) -> str:
            return MOBILE

    channel = SmsGatewayChannel(
        fake.url, "push-key", "西安人社", Directory(), signing_secret=SIGNING_SECRET
    )
    channel.send(OutgoingPush("push-9", "sim-000009", "新岗位", "甲公司招聘", "http://t/j"))
    fake.received.status_code = 502
    with pytest.raises(ChannelError, match=r"push push-9: gateway .* returned HTTP 502"):
        channel.send(OutgoingPush("push-9", "sim-000009", "新岗位", "甲公司招聘", "http://t/j"))

    first = fake.received.requests[0]
    assert first["signature_valid"]
    assert first["headers"]["Idempotency-Key"] == "push-9"


def test_outbox_is_default(tmp_path: Any) -> None:
    gateway = sms_gateway(AuthSettings(sms_outbox_path=tmp_path / "outbox.jsonl"))

    assert isinstance(gateway, OutboxSmsGateway)


def test_http_without_endpoint_rejected() -> None:
    with pytest.raises(ValueError, match="needs DOORSTEP_SMS_ENDPOINT"):
        sms_gateway(AuthSettings(sms_gateway="http"))


PRODUCTION_TOKEN = SecretStr("p" * 8 + "roduction-token-key-0123456789")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sms_gateway": "outbox"}, "DOORSTEP_SMS_GATEWAY=outbox is rejected in production"),
        ({"sms_endpoint": "http://127.0.0.1:9"}, "not https:// in production"),
        ({"sms_endpoint": None}, "DOORSTEP_SMS_ENDPOINT is missing"),
        ({"sms_api_key": None}, "DOORSTEP_SMS_API_KEY is missing"),
        ({"sms_signing_secret": SecretStr("short")}, "DOORSTEP_SMS_SIGNING_SECRET has 5 bytes"),
    ],
)
def test_production_rejects_sms_settings(changes: dict[str, object], message: str) -> None:
    values = {**PRODUCTION_SMS, **changes}

    with pytest.raises(ValidationError, match=message):
        AuthSettings(environment="production", staff_token_secret=PRODUCTION_TOKEN, **values)  # type: ignore[arg-type]


def test_production_accepts_http_gateway() -> None:
    auth = AuthSettings(
        environment="production",
        staff_token_secret=PRODUCTION_TOKEN,
        **PRODUCTION_SMS,  # type: ignore[arg-type]
    )

    assert isinstance(sms_gateway(auth), HttpSmsGateway)


def _assert_no_secret(error: str, caplog: pytest.LogCaptureFixture) -> None:
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for text in (error, logged):
        assert "482913" not in text
        assert MOBILE not in text
