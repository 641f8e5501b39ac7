"""SMS gateways for one-time codes: a pluggable interface and the development outbox.

A deployment plugs in the bureau's SMS provider by implementing
:class:`SmsGateway`. The default :class:`OutboxSmsGateway` sends nothing and
appends one JSON line per message to a local file (mode 0600), which a developer
reads to log in. The outbox contains codes and mobiles in plaintext, so it is
rejected in production.
"""

import json
import logging
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Protocol

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


class UnconfiguredSmsGateway:
    """Production placeholder that sends nothing, because the outbox keeps codes in plaintext."""

    def send(self, mobile: str, text: str, at: datetime) -> None:
        """Raise OSError, because no SMS provider is configured."""
        raise OSError("no SMS gateway is configured; SMS codes cannot be sent")
