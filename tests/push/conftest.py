"""Push pipeline fixtures: a private redis-server, fake SMS and WeChat gateways, PostgreSQL.

The Redis server is the test's own process on a free loopback port with its data in
a temporary folder, so a test may kill it, restart it or wipe its data without
touching the shared Redis on port 6379. The fake gateways listen on 127.0.0.1 and
record every request they receive.
"""

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from push.fake_gateway import GatewayLog, start_gateway
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
class FakeGateway:
    """A fake SMS and WeChat gateway on 127.0.0.1 and what it received."""

    url: str
    log: GatewayLog


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    """A fake gateway for one test."""
    log = GatewayLog()
    server = start_gateway(0, log)
    yield FakeGateway(f"http://127.0.0.1:{server.server_address[1]}", log)
    server.shutdown()
    server.server_close()
