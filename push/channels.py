"""Delivery channels behind one interface: in-app inbox, SMS gateway, WeChat subscription message.

A channel receives a :class:`OutgoingPush`: the push id, the seeker id and the
message (title, body, link). The message contains no personal field. The recipient
address (mobile, WeChat openid) is looked up through a :class:`RecipientDirectory`
when the message is sent, so it never sits in the outbox, the stream or a log.

The HTTP adapters share :mod:`push.sms_http`, which uses the standard library's
``urllib.request`` with a timeout; an HTTP error, a timeout or an error code in the
reply raises :class:`ChannelError`, which the worker records as a failed attempt.
"""

import json
import logging
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Protocol

from geo.errors import DoorstepError
from push.sms_http import GatewayError, SmsHttpClient, check_endpoint, request_json, safe_status

logger = logging.getLogger(__name__)


class ChannelError(DoorstepError, RuntimeError):
    """A channel failed to deliver one push; the worker retries it later."""


class RecipientMissingError(ChannelError, LookupError):
    """The seeker has no address on the channel; the worker skips the push, never retries it.

    The message is a reason code such as ``no_wechat_openid``, stored as the skip reason,
    so it must never contain an address or another personal field.
    """


@dataclass(frozen=True, slots=True)
class OutgoingPush:
    """The payload a channel sends: ids and the message, with no personal field."""

    push_id: str
    seeker_id: str
    title: str
    body: str
    link: str


class RecipientDirectory(Protocol):
    """Looks up a seeker's address on one channel (mobile number, WeChat openid)."""

    def address(self, seeker_id: str, channel: str) -> str:
        """Return the address; raise RecipientMissingError when ``channel`` has none for them."""
        ...


class Channel(Protocol):
    """One way of delivering a push."""

    name: str
    """``inbox``, ``sms`` or ``wechat``: the value of ``push_consents.channel``."""

    def send(self, push: OutgoingPush) -> None:
        """Deliver one push; raise ChannelError when it was not accepted."""
        ...


class InboxChannel:
    """The in-app inbox: the store writes the message when it marks the push delivered."""

    name = "inbox"

    def send(self, push: OutgoingPush) -> None:
        """Do nothing: :func:`store.push_outbox.mark_delivered` stores the inbox row."""


def _request_json(
    url: str, body: dict[str, Any] | None, headers: dict[str, str], timeout_s: float
) -> dict[str, Any]:
    """Send a JSON request (POST with a body, GET without) and return the JSON reply."""
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    try:
        return request_json(url, data, headers, timeout_s)
    except GatewayError as err:
        raise ChannelError(str(err)) from err


def _address(directory: RecipientDirectory, push: OutgoingPush, channel: str) -> str:
    """Return the seeker's address on ``channel``; any LookupError becomes RecipientMissingError."""
    try:
        return directory.address(push.seeker_id, channel)
    except RecipientMissingError:
        raise
    except LookupError as err:
        raise RecipientMissingError(f"no_{channel}_address") from err


SMS_MAX_CHARS = 500
"""Maximum characters of one SMS, signature and its 【】 included.

Chinese SMS providers count every character (Chinese, Latin, digit, punctuation, space)
as one. They split a message longer than 70 into 67-character parts shown as one
message, and reject a send longer than 500 characters, as 蓝队云 publishes its rules.
Other gateways may set a lower maximum."""


def sms_text(sign: str, push: OutgoingPush, max_chars: int = SMS_MAX_CHARS) -> str:
    """Return the text of a push's SMS: ``【sign】``, the title and the body.

    The title names the kind of message, and for a digest how many jobs match. A text
    longer than ``max_chars`` replaces the body with the link, and is cut if it is
    still too long.
    """
    text = f"【{sign}】{push.title}\n{push.body}"
    if len(text) <= max_chars:
        return text
    shortened = f"【{sign}】{push.title}\n{push.link}"
    if len(shortened) <= max_chars:
        return shortened
    return shortened[: max_chars - 1] + "…"


class SmsGatewayChannel:
    """An SMS gateway's HTTP API through :class:`push.sms_http.SmsHttpClient`.

    The client sends ``POST {endpoint}/sms/send`` with a bearer key, the push id as
    ``Idempotency-Key`` and, when ``signing_secret`` is set, an HMAC-SHA256 signature.
    A reply ``{"status": "ok"}`` or ``{"status": "duplicate"}`` (the key was already
    accepted) counts as delivered.

    NOTE: sending a push at most once to the handset needs a gateway that honours the
    idempotency key. Without that, a worker that dies between the gateway's reply and
    marking the push delivered causes one resend.
    """

    name = "sms"

    def __init__(
        self,
        endpoint: str,
        api_key: str,
        sign: str,
        directory: RecipientDirectory,
        timeout_s: float = 5.0,
        signing_secret: bytes | None = None,
    ) -> None:
        self._client = SmsHttpClient(
            endpoint,
            api_key,
            sign,
            signing_secret=signing_secret,
            timeout_s=timeout_s,
            endpoint_name="sms endpoint",
        )
        self._sign = sign
        self._directory = directory

    def send(self, push: OutgoingPush) -> None:
        """Send one SMS; raise ChannelError unless the gateway accepted it."""
        mobile = _address(self._directory, push, self.name)
        try:
            self._client.send(mobile, sms_text(self._sign, push), push.push_id)
        except GatewayError as err:
            raise ChannelError(f"push {push.push_id}: {err}") from err


class WeChatSubscribeChannel:
    """WeChat mini-program subscription messages (订阅消息).

    Gets an access token from ``GET {api_base}/cgi-bin/token?grant_type=client_credential
    &appid=..&secret=..`` and caches it until shortly before ``expires_in``; sends with
    ``POST {api_base}/cgi-bin/message/subscribe/send?access_token=..`` and the body
    ``{"touser", "template_id", "page", "data", "miniprogram_state", "lang"}``. A reply
    with ``errcode`` 0 is delivered; 40001 or 42001 (invalid or expired token) fetches a
    new token and sends once more. The template's fields are ``thing1`` (title, at most
    20 characters) and ``thing2`` (body, at most 20 characters), as the platform limits
    ``thing`` values.

    NOTE: this API takes no idempotency key, so a worker that dies between the reply and
    marking the push delivered causes one resend on this channel.
    """

    name = "wechat"

    def __init__(
        self,
        api_base: str,
        app_id: str,
        app_secret: str,
        template_id: str,
        directory: RecipientDirectory,
        page: str = "pages/jobs/index",
        miniprogram_state: str = "formal",
        timeout_s: float = 5.0,
    ) -> None:
        self._base = check_endpoint(api_base, "wechat api base")
        self._app_id = app_id
        self._app_secret = app_secret
        self._template_id = template_id
        self._directory = directory
        self._page = page
        self._state = miniprogram_state
        self._timeout_s = timeout_s
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def send(self, push: OutgoingPush) -> None:
        """Send one subscription message; raise ChannelError unless ``errcode`` is 0."""
        openid = _address(self._directory, push, self.name)
        body = {
            "touser": openid,
            "template_id": self._template_id,
            "page": f"{self._page}?push={urllib.parse.quote(push.push_id)}",
            "data": {"thing1": {"value": push.title[:20]}, "thing2": {"value": push.body[:20]}},
            "miniprogram_state": self._state,
            "lang": "zh_CN",
        }
        reply = self._send_once(body, fresh_token=False)
        if reply.get("errcode") in (40001, 42001):
            reply = self._send_once(body, fresh_token=True)
        errcode = reply.get("errcode", 0)
        if errcode != 0:
            # errmsg is masked like an SMS status, because the error is shown to administrators.
            code = str(errcode) if isinstance(errcode, int) else safe_status(errcode)
            raise ChannelError(
                f"push {push.push_id}: WeChat errcode {code} {safe_status(reply.get('errmsg'))!r}"
            )

    def _send_once(self, body: dict[str, Any], *, fresh_token: bool) -> dict[str, Any]:
        token = self._access_token(fresh=fresh_token)
        url = (
            f"{self._base}/cgi-bin/message/subscribe/send?access_token={urllib.parse.quote(token)}"
        )
        return _request_json(url, body, {}, self._timeout_s)

    def _access_token(self, *, fresh: bool) -> str:
        with self._lock:
            if self._token is not None and not fresh and time.monotonic() < self._token[1]:
                return self._token[0]
            query = urllib.parse.urlencode(
                {
                    "grant_type": "client_credential",
                    "appid": self._app_id,
                    "secret": self._app_secret,
                }
            )
            reply = _request_json(f"{self._base}/cgi-bin/token?{query}", None, {}, self._timeout_s)
            token = reply.get("access_token")
            if not isinstance(token, str):
                raise ChannelError(f"WeChat token request failed: errcode {reply.get('errcode')}")
            # Renew five minutes early, as the platform's tokens last 7,200 s.
            lifetime = float(reply.get("expires_in", 7200)) - 300.0
            self._token = (token, time.monotonic() + max(lifetime, 60.0))
            logger.info("WeChat access token renewed for app %s", self._app_id)
            return token
