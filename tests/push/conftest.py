"""Push pipeline fixtures: a private redis-server, fake SMS and WeChat gateways, PostgreSQL.

The Redis server is the test's own process on a free loopback port with its data in
a temporary folder, so a test may kill it, restart it or wipe its data without
touching the shared Redis on port 6379. The fake gateways listen on 127.0.0.1 and
record every request they receive.
"""

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis

from tests.store.conftest import make_database, pg_pool, pg_store, pg_url

__all__ = ["make_database", "pg_pool", "pg_store", "pg_url"]

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisProcess:
    """A private redis-server with append-only persistence, to kill and restart in tests."""

    def __init__(self, folder: Path) -> None:
        if REDIS_SERVER is None:
            pytest.skip("redis-server is not installed")
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's redis:// URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [
            str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "always",
            "--save", "", "--protected-mode", "yes",
        ]  # fmt: skip
        self.process = subprocess.Popen(  # fixed arguments, local binary
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                client.close()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start within 10 s")

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def restart(self, *, empty: bool = False) -> None:
        """Kill and start again; ``empty`` deletes the data first (a restart with no data set)."""
        self.kill()
        if empty:
            shutil.rmtree(self.folder)
        self.start()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """The test's own Redis, stopped at the end."""
    server = RedisProcess(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


@dataclass
class GatewayLog:
    """What a fake gateway received."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    accepted_keys: dict[str, int] = field(default_factory=dict)
    """SMS idempotency key to the number of requests that carried it."""
    fail_next: int = 0
    """Number of coming SMS requests to answer with HTTP 500."""
    token_count: int = 0
    delay_s: float = 0.0
    """Seconds each SMS request waits before it is answered, like a remote gateway."""
    expire_token_once: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sms_deliveries(self) -> list[str]:
        """Return the idempotency keys accepted as new messages, one per SMS handed to a phone."""
        with self.lock:
            return list(self.accepted_keys)


class _Handler(BaseHTTPRequestHandler):
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
        key = self.headers.get("Idempotency-Key") or ""
        seen = key in self.log.accepted_keys
        self.log.accepted_keys[key] = self.log.accepted_keys.get(key, 0) + 1
        self._reply(200, {"status": "duplicate" if seen else "ok"})


@dataclass
class FakeGateway:
    """A fake SMS and WeChat gateway on 127.0.0.1 and what it received."""

    url: str
    log: GatewayLog


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    """A fake gateway for one test."""
    log = GatewayLog()
    handler = type("Handler", (_Handler,), {"log": log})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield FakeGateway(f"http://127.0.0.1:{server.server_address[1]}", log)
    server.shutdown()
    server.server_close()
