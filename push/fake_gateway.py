"""A fake SMS and WeChat gateway on 127.0.0.1, for tests and manual trials of the channels.

It speaks the protocol of :mod:`push.sms_http` (``POST /sms/send``) and the two WeChat
calls of :class:`push.channels.WeChatSubscribeChannel` (``GET /cgi-bin/token`` and
``POST /cgi-bin/message/subscribe/send``), records every request in a
:class:`GatewayLog`, and checks no key or signature. Run it by hand with::

    python -m push.fake_gateway --port 8900

then set ``DOORSTEP_PUSH_SMS_ENDPOINT=http://127.0.0.1:8900`` and any
``DOORSTEP_PUSH_SMS_API_KEY``. Each SMS it receives is printed with the recipient's
digits masked. It listens on 127.0.0.1 only.
"""

import argparse
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class GatewayLog:
    """The requests a fake gateway received, and its replies to the next SMS requests."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    accepted_keys: dict[str, int] = field(default_factory=dict)
    """SMS idempotency key to the number of requests that carried it."""
    fail_next: int = 0
    """Number of coming SMS requests that get HTTP 500."""
    reject_status: str | None = None
    """When set, every SMS request gets HTTP 200 with this status, which is not accepted."""
    token_count: int = 0
    delay_s: float = 0.0
    """Seconds each SMS request waits for its reply, like a remote gateway."""
    expire_token_once: bool = False
    echo: bool = False
    """Print each SMS received, with the recipient masked (the command-line mode)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sms_deliveries(self) -> list[str]:
        """Return the idempotency keys accepted as new messages, one per SMS handed to a phone."""
        with self.lock:
            return list(self.accepted_keys)


class GatewayHandler(BaseHTTPRequestHandler):
    """Request handler; :func:`start_gateway` subclasses it with its own ``log``."""

    log: GatewayLog

    def log_message(self, format: str, *args: Any) -> None:  # base class name
        return

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # http.server's name
        parts = urlsplit(self.path)
        if parts.path != "/cgi-bin/token":
            self._reply(404, {"errcode": 404})
            return
        query = parse_qs(parts.query)
        with self.log.lock:
            self.log.token_count += 1
            token = f"token-{self.log.token_count}"
            self.log.requests.append({"path": parts.path, "query": query})
        self._reply(200, {"access_token": token, "expires_in": 7200})

    def do_POST(self) -> None:  # http.server's name
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.log.delay_s:
            time.sleep(self.log.delay_s)
        record = {"path": parts.path, "query": parse_qs(parts.query), "body": body,
                  "headers": dict(self.headers)}  # fmt: skip
        with self.log.lock:
            self.log.requests.append(record)
            if parts.path == "/sms/send":
                self._sms(body)
                return
            if parts.path == "/cgi-bin/message/subscribe/send":
                if self.log.expire_token_once:
                    self.log.expire_token_once = False
                    self._reply(200, {"errcode": 42001, "errmsg": "access_token expired"})
                    return
                self._reply(200, {"errcode": 0, "errmsg": "ok"})
                return
        self._reply(404, {"status": "not found"})

    def _sms(self, body: dict[str, Any]) -> None:
        if self.log.fail_next > 0:
            self.log.fail_next -= 1
            self._reply(500, {"status": "error"})
            return
        if self.log.reject_status is not None:
            self._reply(200, {"status": self.log.reject_status})
            return
        key = self.headers.get("Idempotency-Key") or ""
        seen = key in self.log.accepted_keys
        self.log.accepted_keys[key] = self.log.accepted_keys.get(key, 0) + 1
        if self.log.echo:
            to = re.sub(r"\d(?=\d{4})", "*", str(body.get("to", "")))
            print(
                f"SMS {key} to {to}{' (duplicate)' if seen else ''}:\n{body.get('text')}\n",
                flush=True,
            )
        self._reply(200, {"status": "duplicate" if seen else "ok"})


def start_gateway(port: int = 0, log: GatewayLog | None = None) -> ThreadingHTTPServer:
    """Start a fake gateway on 127.0.0.1:``port`` (0 picks a free port) in a daemon thread.

    The caller stops it with ``shutdown()`` and ``server_close()``; the handler's log
    is ``server.RequestHandlerClass.log``.
    """
    handler = type("Handler", (GatewayHandler,), {"log": log or GatewayLog()})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    """Run a fake gateway in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--port", type=int, default=8900, help="TCP port on 127.0.0.1 (default 8900)."
    )
    args = parser.parse_args()
    server = start_gateway(args.port, GatewayLog(echo=True))
    print(f"fake SMS/WeChat gateway on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
