"""Channel adapters against a fake gateway on 127.0.0.1 that records each request."""

import pytest

from push.channels import (
    SMS_MAX_CHARS,
    ChannelError,
    OutgoingPush,
    RecipientMissingError,
    SmsGatewayChannel,
    WeChatSubscribeChannel,
    sms_text,
)
from tests.push.conftest import FakeGateway

PUSH = OutgoingPush(
    "push-1", "sim-000001", "家门口新岗位", "甲公司招聘会计，地铁约20分钟。", "http://t/j"
)


class Directory:
    """Addresses of test seekers (simulated)."""

    def address(self, seeker_id: str, channel: str) -> str:
        if seeker_id != "sim-000001":
            raise LookupError(seeker_id)
        return "13900000000" if channel == "sms" else "openid-1"


def test_sms_request_shape(gateway: FakeGateway) -> None:
    channel = SmsGatewayChannel(gateway.url, "key-1", "西安人社", Directory())
    channel.send(PUSH)
    request = gateway.log.requests[0]
    assert request["path"] == "/sms/send"
    assert request["headers"]["Authorization"] == "Bearer key-1"
    assert request["headers"]["Idempotency-Key"] == "push-1"
    assert request["body"] == {
        "to": "13900000000",
        "sign": "西安人社",
        "text": "【西安人社】家门口新岗位\n甲公司招聘会计，地铁约20分钟。",
        "client_ref": "push-1",
    }


def test_sms_digest_keeps_title(gateway: FakeGateway) -> None:
    digest = OutgoingPush(
        "push-3",
        "sim-000001",
        "按新的求职意向，有2个岗位适合您",
        "会计（步行约8分钟）；出纳（地铁约20分钟）。详情：http://t/seeker?job=p1",
        "http://t/seeker?job=p1",
    )
    SmsGatewayChannel(gateway.url, "key-1", "西安人社", Directory()).send(digest)
    text = gateway.log.requests[0]["body"]["text"]
    assert text.startswith("【西安人社】按新的求职意向，有2个岗位适合您\n")
    assert text.endswith("详情：http://t/seeker?job=p1")


def test_sms_text_too_long_keeps_link() -> None:
    lines = "；".join(f"岗位{number}（步行约8分钟）" for number in range(60))
    long_digest = OutgoingPush(
        "push-4", "s", "按新的求职意向，有60个岗位适合您", lines, "http://t/j"
    )
    text = sms_text("西安人社", long_digest)
    assert len(text) <= SMS_MAX_CHARS
    assert text == "【西安人社】按新的求职意向，有60个岗位适合您\nhttp://t/j"


def test_sms_text_cut_to_maximum() -> None:
    text = sms_text("西安人社", PUSH, max_chars=12)
    assert len(text) == 12
    assert text.endswith("…")


def test_sms_rejected_status_masks_digits(gateway: FakeGateway) -> None:
    gateway.log.reject_status = "failed for 13900000000"
    channel = SmsGatewayChannel(gateway.url, "key-1", "西安人社", Directory())
    with pytest.raises(ChannelError) as raised:
        channel.send(PUSH)
    assert "13900000000" not in str(raised.value)
    assert "'failed for ###########'" in str(raised.value)


def test_sms_known_status_quoted(gateway: FakeGateway) -> None:
    gateway.log.reject_status = "invalid_number"
    channel = SmsGatewayChannel(gateway.url, "key-1", "西安人社", Directory())
    with pytest.raises(ChannelError, match="status 'invalid_number'"):
        channel.send(PUSH)


def test_sms_resend_counts_once(gateway: FakeGateway) -> None:
    channel = SmsGatewayChannel(gateway.url, "key-1", "西安人社", Directory())
    channel.send(PUSH)
    channel.send(PUSH)
    assert gateway.log.sms_deliveries() == ["push-1"]
    assert gateway.log.accepted_keys["push-1"] == 2


def test_sms_http_error_raises(gateway: FakeGateway) -> None:
    gateway.log.fail_next = 1
    channel = SmsGatewayChannel(gateway.url, "key-1", "西安人社", Directory())
    with pytest.raises(ChannelError, match="HTTP 500"):
        channel.send(PUSH)


def test_sms_unknown_recipient_raises(gateway: FakeGateway) -> None:
    channel = SmsGatewayChannel(gateway.url, "key-1", "西安人社", Directory())
    other = OutgoingPush("push-2", "sim-000002", "t", "b", "l")
    with pytest.raises(RecipientMissingError, match="no_sms_address"):
        channel.send(other)
    assert gateway.log.requests == []


def test_sms_endpoint_scheme_checked() -> None:
    with pytest.raises(ValueError, match="sms endpoint 'file:///etc'"):
        SmsGatewayChannel("file:///etc", "k", "s", Directory())


def test_wechat_token_and_send(gateway: FakeGateway) -> None:
    channel = WeChatSubscribeChannel(gateway.url, "wx-app", "wx-secret", "tmpl-1", Directory())
    channel.send(PUSH)
    channel.send(PUSH)
    token, first, second = gateway.log.requests
    assert token["query"] == {
        "grant_type": ["client_credential"], "appid": ["wx-app"], "secret": ["wx-secret"]
    }  # fmt: skip
    assert first["query"] == {"access_token": ["token-1"]}
    assert second["query"] == {"access_token": ["token-1"]}
    assert first["body"]["touser"] == "openid-1"
    assert first["body"]["template_id"] == "tmpl-1"
    assert first["body"]["page"] == "pages/jobs/index?push=push-1"
    assert first["body"]["data"]["thing1"] == {"value": "家门口新岗位"}
    assert len(first["body"]["data"]["thing2"]["value"]) <= 20


def test_wechat_expired_token_renewed(gateway: FakeGateway) -> None:
    gateway.log.expire_token_once = True
    channel = WeChatSubscribeChannel(gateway.url, "wx-app", "wx-secret", "tmpl-1", Directory())
    channel.send(PUSH)
    sends = [r for r in gateway.log.requests if r["path"] == "/cgi-bin/message/subscribe/send"]
    assert [r["query"]["access_token"] for r in sends] == [["token-1"], ["token-2"]]
