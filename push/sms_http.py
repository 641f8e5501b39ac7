"""The SMS gateway's HTTP protocol, shared by push messages and staff login codes.

One request sends one message: ``POST {endpoint}/sms/send`` with the JSON body
``{"to", "sign", "text", "client_ref"}`` and these headers:

- ``Authorization: Bearer <api key>``, which names the client;
- ``Idempotency-Key: <client_ref>``, so a resent request is delivered once;
- with a signing secret, ``X-Sms-Timestamp`` (Unix seconds), ``X-Sms-Nonce`` (32 hex
  digits) and ``X-Sms-Signature``: the lowercase hex HMAC-SHA256, under the secret,
  of ``POST\\n/sms/send\\n{timestamp}\\n{nonce}\\n`` followed by the body bytes. The
  gateway recomputes it, rejects a stale timestamp and a reused nonce, and so refuses
  a request that was changed or replayed.

A reply ``{"status": "ok"}`` or ``{"status": "duplicate"}`` (the key was accepted
before) counts as delivered. A timeout, a connection error, a non-2xx status, a reply
that is not a JSON object or any other status raises :class:`GatewayError`, whose
message names the gateway's host and the failure but never the recipient or the text.
The message is stored as the push's ``last_error`` and shown on the dead-letter list,
so a status the gateway returns is quoted only through :func:`safe_status`.
"""

import hashlib
import hmac
import json
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from geo.errors import DoorstepError

SEND_PATH = "/sms/send"

ACCEPTED_STATUSES = frozenset({"ok", "duplicate"})


KNOWN_ERROR_STATUSES = frozenset(
    {"error", "rejected", "invalid_number", "blacklisted", "rate_limited", "unauthorized",
     "invalid_signature", "insufficient_balance", "content_rejected"}
)  # fmt: skip
"""Error statuses quoted as the gateway sent them; any other status is masked."""

MAX_STATUS_CHARS = 40
"""Characters of an unknown status kept in an error message."""

_DIGITS = re.compile(r"\d")


def safe_status(status: object) -> str:
    """Return a gateway status safe to store and show to administrators.

    A status in :data:`KNOWN_ERROR_STATUSES` is returned as it is. Any other value has
    every digit replaced by ``#`` and is cut to :data:`MAX_STATUS_CHARS`, because a
    gateway may echo the recipient's mobile number in it.
    """
    if isinstance(status, str) and status in KNOWN_ERROR_STATUSES:
        return status
    if status is None:
        return "missing"
    text = _DIGITS.sub("#", str(status))
    return text if len(text) <= MAX_STATUS_CHARS else text[:MAX_STATUS_CHARS] + "…"


class GatewayError(DoorstepError, OSError):
    """An HTTP gateway (SMS, WeChat) did not accept a request; the error quotes no body."""


def check_endpoint(url: str, field: str) -> str:
    """Return ``url`` without a trailing slash; raise ValueError unless it is http(s)."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"{field} {url!r} is invalid; expected an http:// or https:// URL")
    return url.rstrip("/")


def request_signature(secret: bytes, timestamp: str, nonce: str, body: bytes) -> str:
    """Return the hex HMAC-SHA256 that the ``X-Sms-Signature`` header carries."""
    message = f"POST\n{SEND_PATH}\n{timestamp}\n{nonce}\n".encode() + body
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def request_json(
    url: str, body: bytes | None, headers: dict[str, str], timeout_s: float
) -> dict[str, Any]:
    """Send a JSON request (POST with a body, GET without) and return the JSON object reply.

    Raises GatewayError on a timeout, a connection error, a non-2xx status or a
    reply that is not a JSON object. The error names the host, never the body.
    """
    host = urllib.parse.urlsplit(url).netloc
    request = urllib.request.Request(  # the scheme is checked by check_endpoint
        url, data=body, headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:  # nosec B310 # http(s) only
            payload = json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as err:
        err.close()  # the error keeps the reply and its socket open
        raise GatewayError(f"gateway {host} returned HTTP {err.code}") from err
    except TimeoutError as err:
        raise GatewayError(f"gateway {host} timed out after {timeout_s:g} s") from err
    except urllib.error.URLError as err:
        if isinstance(err.reason, TimeoutError):
            raise GatewayError(f"gateway {host} timed out after {timeout_s:g} s") from err
        raise GatewayError(f"gateway {host} failed: {err.reason}") from err
    except (OSError, json.JSONDecodeError) as err:
        raise GatewayError(f"gateway {host} failed: {type(err).__name__}") from err
    if not isinstance(payload, dict):
        raise GatewayError(f"gateway {host} returned JSON that is not an object")
    return payload


class SmsHttpClient:
    """Sends one SMS per call through the gateway's ``/sms/send`` endpoint."""

    def __init__(
        self,
        endpoint: str,
        api_key: str,
        sign: str,
        *,
        signing_secret: bytes | None = None,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        endpoint_name: str = "SMS endpoint",
    ) -> None:
        self.url = check_endpoint(endpoint, endpoint_name) + SEND_PATH
        self.sign = sign
        self._api_key = api_key
        self._signing_secret = signing_secret
        self._timeout_s = timeout_s
        self._clock = clock

    def send(self, to: str, text: str, client_ref: str) -> None:
        """Send ``text`` to the mobile ``to``; raise GatewayError unless it was accepted."""
        body = json.dumps(
            {"to": to, "sign": self.sign, "text": text, "client_ref": client_ref},
            ensure_ascii=False,
        ).encode()
        headers = {"Authorization": f"Bearer {self._api_key}", "Idempotency-Key": client_ref}
        if self._signing_secret is not None:
            timestamp = str(int(self._clock()))
            nonce = secrets.token_hex(16)
            headers["X-Sms-Timestamp"] = timestamp
            headers["X-Sms-Nonce"] = nonce
            headers["X-Sms-Signature"] = request_signature(
                self._signing_secret, timestamp, nonce, body
            )
        reply = request_json(self.url, body, headers, self._timeout_s)
        status = reply.get("status")
        if status not in ACCEPTED_STATUSES:
            host = urllib.parse.urlsplit(self.url).netloc
            raise GatewayError(
                f"gateway {host} did not accept message {client_ref}:"
                f" status {safe_status(status)!r}"
            )
