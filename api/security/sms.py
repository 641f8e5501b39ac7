"""SMS gateways for one-time codes: a pluggable interface, the development outbox and HTTP.

``DOORSTEP_SMS_GATEWAY`` selects the gateway (:func:`sms_gateway`). The default
``outbox`` (:class:`OutboxSmsGateway`) sends nothing and appends one JSON line per
message to a local file (mode 0600), which a developer reads to log in. The outbox
contains codes and mobiles in plaintext, so production settings reject it. ``http``
(:class:`HttpSmsGateway`) sends through the bureau's SMS gateway with the signed
protocol of :mod:`push.sms_http`, which push SMS uses too.
"""

import json
import logging
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from push.sms_http import GatewayError, SmsHttpClient

if TYPE_CHECKING:
    from api.settings import AuthSettings

logger = logging.getLogger(__name__)


class SmsGateway(Protocol):
    """Something that delivers a text message to a mobile number."""

    def send(self, mobile: str, text: str, at: datetime) -> None:
        """Deliver ``text`` to the 11-digit ``mobile``; raise OSError when delivery fails."""
        ...


class OutboxSmsGateway:
    """Development gateway: appends ``{"at", "mobile", "text"}`` lines to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, mobile: str, text: str, at: datetime) -> None:
        """Append the message to the outbox file, creating it with mode 0600."""
        line = json.dumps(
            {"at": at.isoformat(), "mobile": mobile, "text": text}, ensure_ascii=False
        )
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        logger.info("development SMS written to outbox %s", self.path)

    def messages(self) -> list[dict[str, str]]:
        """Return every message in the outbox, oldest first."""
        if not self.path.is_file():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


class SmsDeliveryError(GatewayError):
    """The SMS gateway did not accept a one-time code; the message quotes no mobile or code."""


class HttpSmsGateway:
    """Sends one-time codes through the SMS gateway's signed HTTP API.

    Each message gets a fresh ``client_ref`` (``otc-`` and 24 hex digits) as its
    idempotency key, because two codes to one mobile are two messages.
    """

    def __init__(self, client: SmsHttpClient) -> None:
        self.client = client

    def send(self, mobile: str, text: str, at: datetime) -> None:
        """Send the message; raise SmsDeliveryError unless the gateway accepted it."""
        client_ref = f"otc-{os.urandom(12).hex()}"
        try:
            self.client.send(mobile, text, client_ref)
        except GatewayError as err:
            # The error names the gateway and the reference only: no mobile, no code.
            logger.error("SMS code %s was not sent: %s", client_ref, err)
            raise SmsDeliveryError(f"SMS code {client_ref} was not sent: {err}") from err
        logger.info("SMS code %s accepted by %s", client_ref, self.client.url)


def sms_gateway(auth: "AuthSettings") -> SmsGateway:
    """Return the gateway ``auth.sms_gateway`` selects, configured from ``auth``.

    Raises ValueError when ``http`` is selected without an endpoint or an API key
    (production settings already reject that).
    """
    if auth.sms_gateway == "outbox":
        return OutboxSmsGateway(auth.sms_outbox_path)
    if auth.sms_endpoint is None or auth.sms_api_key is None:
        raise ValueError(
            "DOORSTEP_SMS_GATEWAY=http needs DOORSTEP_SMS_ENDPOINT and DOORSTEP_SMS_API_KEY"
        )
    secret = auth.sms_signing_secret
    client = SmsHttpClient(
        auth.sms_endpoint,
        auth.sms_api_key.get_secret_value(),
        auth.sms_sign,
        signing_secret=None if secret is None else secret.get_secret_value().encode(),
        timeout_s=auth.sms_timeout_s,
        endpoint_name="DOORSTEP_SMS_ENDPOINT",
    )
    return HttpSmsGateway(client)
