"""Response caches: the in-process LRU, the Redis cache on a real server, and the breaker.

The Redis tests use ``DOORSTEP_TEST_REDIS_URL`` (default redis://127.0.0.1:6379/0),
write only keys under a random namespace and delete them at the end. They skip
when Redis is unreachable, and under CI=true the root conftest fails that skip.
"""

import logging
from collections.abc import Iterator

import pytest
import redis

from store.cache import (
    MemoryCache,
    RedisBreaker,
    RedisCache,
    RedisOptions,
    build_identity,
    cache_key,
    fetch_or_compute,
    key_prefix,
    mask_redis_url,
    open_redis,
)
from tests.fix_redis import REDIS_URL, closed_port_url


class FakeClock:
    """A monotonic clock that moves only when the test advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def live_client(namespace: str) -> Iterator[redis.Redis]:
    client = open_redis(RedisOptions(REDIS_URL, client_name=f"{namespace}-cache"))
    yield client
    client.close()
    client.connection_pool.disconnect()


def test_memory_cache_expires_after_ttl() -> None:
    clock = FakeClock()
    cache = MemoryCache(ttl_s=10, clock=clock)
    cache.set("a", b"1")

    clock.now += 9.9
    assert cache.get("a") == b"1"
    clock.now += 0.1
    assert cache.get("a") is None
    assert len(cache) == 0


def test_memory_cache_evicts_least_recent() -> None:
    cache = MemoryCache(ttl_s=60, max_entries=2)
    cache.set("a", b"1")
    cache.set("b", b"2")
    assert cache.get("a") == b"1"  # "b" is now the least recently used

    cache.set("c", b"3")

    assert cache.get("b") is None
    assert cache.get("a") == b"1"
    assert cache.get("c") == b"3"
    assert len(cache) == 2


def test_memory_cache_rejects_zero_size() -> None:
    with pytest.raises(ValueError, match="max_entries 0"):
        MemoryCache(ttl_s=60, max_entries=0)


def test_cache_key_ignores_parameter_order() -> None:
    first = cache_key("jobs_nearby", "b1", {"lon": 108.94, "lat": 34.26, "lang": "zh"})
    second = cache_key("jobs_nearby", "b1", {"lang": "zh", "lat": 34.26, "lon": 108.94})

    assert first == second
    assert first.startswith("jobs_nearby:b1:")


def test_cache_key_changes_with_query_and_build() -> None:
    base = cache_key("jobs_nearby", "b1", {"lon": 108.94, "lang": "zh"})

    assert cache_key("jobs_nearby", "b1", {"lon": 108.94, "lang": "en"}) != base
    assert cache_key("jobs_nearby", "b2", {"lon": 108.94, "lang": "zh"}) != base
    assert cache_key("seeker_recommendations", "b1", {"lon": 108.94, "lang": "zh"}) != base


def test_build_identity_follows_meta() -> None:
    meta = {"postings": 10, "anchors_by_precision": {"poi": 3}}

    assert build_identity(meta) == build_identity(dict(meta))
    assert build_identity(meta) != build_identity({**meta, "postings": 11})


def test_key_prefix_adds_namespace() -> None:
    assert key_prefix() == "doorstep:"
    assert key_prefix("staging") == "doorstep:staging:"


def test_mask_redis_url_drops_password() -> None:
    masked = mask_redis_url("redis://user:s3cret@127.0.0.1:6379/2")

    assert "s3cret" not in masked
    assert masked == "redis://127.0.0.1:6379/2"


def test_fetch_or_compute_computes_once() -> None:
    cache = MemoryCache(ttl_s=60)
    calls: list[int] = []

    def compute() -> bytes:
        calls.append(1)
        return b"body"

    assert fetch_or_compute(cache, "k", compute) == b"body"
    assert fetch_or_compute(cache, "k", compute) == b"body"
    assert len(calls) == 1


def test_breaker_warns_once_then_recovers(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    breaker = RedisBreaker(cooldown_s=5, name="redis test", clock=clock)
    attempts: list[int] = []

    def failing() -> int:
        attempts.append(1)
        raise redis.ConnectionError("connection refused")

    with caplog.at_level(logging.DEBUG, logger="store.cache"):
        assert breaker.call(failing) is None
        assert breaker.call(failing) is None  # skipped while cooling down
        clock.now += 5
        assert breaker.call(failing) is None  # tried again, failed again
        clock.now += 5
        assert breaker.call(lambda: 42) == 42

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(attempts) == 2
    assert len(warnings) == 1
    assert "redis test failed" in warnings[0].getMessage()
    assert len(infos) == 1
    assert "responding again" in infos[0].getMessage()
    assert not breaker.failing


def test_redis_cache_round_trip(live_client: redis.Redis, namespace: str) -> None:
    breaker = RedisBreaker(cooldown_s=5)
    cache = RedisCache(live_client, breaker, ttl_s=30, prefix=key_prefix(namespace))

    assert cache.get("round-trip") is None
    cache.set("round-trip", "岗位".encode())

    assert cache.get("round-trip") == "岗位".encode()
    full_key = cache.redis_key("round-trip")
    assert full_key == f"doorstep:{namespace}:cache:round-trip"
    ttl_ms = live_client.pttl(full_key)
    assert 0 < ttl_ms <= 30_000
    assert not breaker.failing


def test_redis_cache_misses_when_redis_is_down(caplog: pytest.LogCaptureFixture) -> None:
    options = RedisOptions(closed_port_url(), socket_timeout_s=0.2, retries=1, backoff_s=0.01)
    client = open_redis(options)
    breaker = RedisBreaker(cooldown_s=60)
    cache = RedisCache(client, breaker, ttl_s=30)

    with caplog.at_level(logging.WARNING, logger="store.cache"):
        cache.set("k", b"body")
        results = [cache.get("k") for _ in range(5)]

    assert results == [None] * 5
    assert breaker.failing
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    client.close()
