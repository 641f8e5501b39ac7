"""Fixtures for tests against the live Redis (``DOORSTEP_TEST_REDIS_URL``).

Each test module writes under its own random key namespace, whose keys are deleted
afterwards (SCAN + DEL, never FLUSHDB: the server is shared). The tests skip when
Redis is unreachable, and under CI=true the root conftest turns that skip into a failure.
"""

import os
import secrets
import socket
from collections.abc import Iterator

import pytest
import redis

from store.cache import key_prefix

REDIS_URL = os.environ.get("DOORSTEP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def closed_port_url() -> str:
    """Return a redis:// URL on a loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="module")
def admin() -> Iterator[redis.Redis]:
    """A plain client on the live Redis, for inspecting keys and connections."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as err:
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {err}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def namespace(admin: redis.Redis) -> Iterator[str]:
    """The module's random key namespace; its keys are deleted afterwards."""
    name = f"doorstep-test-{secrets.token_hex(4)}"
    yield name
    for key in admin.scan_iter(match=f"{key_prefix(name)}*", count=500):
        admin.delete(key)
