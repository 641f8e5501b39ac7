"""Fixed-window rate limiters, in process and on a real Redis.

The Redis tests use ``DOORSTEP_TEST_REDIS_URL`` (default redis://127.0.0.1:6379/0),
write only keys under a random namespace and delete them at the end. They skip
when Redis is unreachable, and under CI=true the root conftest fails that skip.
"""

import socket
from collections.abc import Iterator

import pytest
import redis

from store.cache import RedisBreaker, RedisOptions, key_prefix, open_redis
from store.rate_limit import (
    KEY_GRACE_S,
    WINDOW_S,
    MemoryIntervalLimiter,
    MemoryRateLimiter,
    RedisRateLimiter,
    window_of,
)
from tests.fix_redis import REDIS_URL

# A Unix time (in 2026) 10 s into a window, so six requests never straddle two windows.
WINDOW_START = 29_800_000 * WINDOW_S + 10.0


class FakeClock:
    """A wall clock that moves only when the test advances it."""

    def __init__(self, now: float = WINDOW_START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def live_client(namespace: str) -> Iterator[redis.Redis]:
    client = open_redis(RedisOptions(REDIS_URL, client_name=f"{namespace}-limit"))
    yield client
    client.close()
    client.connection_pool.disconnect()


@pytest.mark.parametrize(
    ("now", "window", "retry_after_s"),
    [(120.0, 2, 60), (150.2, 2, 30), (179.5, 2, 1), (179.999, 2, 1), (59.0, 0, 1)],
)
def test_window_of_counts_whole_minutes(now: float, window: int, retry_after_s: int) -> None:
    assert window_of(now) == (window, retry_after_s)


def test_memory_limiter_blocks_sixth_request() -> None:
    limiter = MemoryRateLimiter(5, clock=FakeClock())

    decisions = [limiter.hit("10.0.0.1") for _ in range(6)]

    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert decisions[5].count == 6
    assert decisions[5].limit == 5
    assert decisions[5].retry_after_s == WINDOW_S - 10


def test_memory_limiter_separates_addresses() -> None:
    limiter = MemoryRateLimiter(5, clock=FakeClock())
    for _ in range(6):
        limiter.hit("10.0.0.1")

    assert limiter.hit("10.0.0.2").allowed
    assert not limiter.hit("10.0.0.1").allowed


def test_memory_limiter_resets_next_window() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(5, clock=clock)
    for _ in range(6):
        limiter.hit("10.0.0.1")

    clock.now += WINDOW_S
    decision = limiter.hit("10.0.0.1")

    assert decision.allowed
    assert decision.count == 1


def test_limiter_rejects_zero_limit() -> None:
    with pytest.raises(ValueError, match="limit_per_minute 0"):
        MemoryRateLimiter(0)


def test_redis_limiter_blocks_sixth_request(live_client: redis.Redis, namespace: str) -> None:
    clock = FakeClock()
    limiter = RedisRateLimiter(
        live_client, RedisBreaker(5), 5, prefix=key_prefix(namespace), clock=clock
    )

    decisions = [limiter.hit("10.0.0.1") for _ in range(6)]

    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert decisions[5].retry_after_s == WINDOW_S - 10
    key = limiter.redis_key("10.0.0.1", int(WINDOW_START // WINDOW_S))
    assert live_client.get(key) == b"6"
    assert 0 < live_client.ttl(key) <= WINDOW_S + KEY_GRACE_S
    assert limiter.hit("10.0.0.2").allowed


def test_redis_limiter_shares_counts(live_client: redis.Redis, namespace: str) -> None:
    clock = FakeClock()
    prefix = key_prefix(namespace)
    first = RedisRateLimiter(live_client, RedisBreaker(5), 5, prefix=prefix, clock=clock)
    second = RedisRateLimiter(live_client, RedisBreaker(5), 5, prefix=prefix, clock=clock)

    for _ in range(3):
        first.hit("10.0.0.3")
    decisions = [second.hit("10.0.0.3") for _ in range(3)]

    assert [d.count for d in decisions] == [4, 5, 6]
    assert not decisions[-1].allowed


def test_redis_limiter_falls_back_when_down() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = RedisOptions(
        f"redis://127.0.0.1:{port}/0", socket_timeout_s=0.2, retries=1, backoff_s=0.01
    )
    client = open_redis(options)
    breaker = RedisBreaker(cooldown_s=60)
    limiter = RedisRateLimiter(client, breaker, 5, clock=FakeClock())

    decisions = [limiter.hit("10.0.0.1") for _ in range(6)]

    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert breaker.failing
    assert limiter.hit("10.0.0.2").allowed
    client.close()


def test_interval_limiter_counts_from_last_allowed() -> None:
    clock = FakeClock(WINDOW_START + 49.5)
    limiter = MemoryIntervalLimiter(60, clock=clock)
    assert limiter.hit("mobile-a").allowed

    clock.now += 1  # crosses a calendar-minute boundary
    refused = limiter.hit("mobile-a")
    clock.now += 58
    still_refused = limiter.hit("mobile-a")
    clock.now += 1
    allowed_again = limiter.hit("mobile-a")

    assert not refused.allowed
    assert refused.retry_after_s == 59
    assert not still_refused.allowed
    assert still_refused.retry_after_s == 1
    assert allowed_again.allowed
    assert limiter.hit("mobile-b").allowed


def test_interval_limiter_drops_expired_keys() -> None:
    clock = FakeClock()
    limiter = MemoryIntervalLimiter(60, clock=clock)
    for n in range(2000):
        limiter.hit(f"mobile-{n}")
    clock.now += 61

    assert limiter.hit("mobile-new").allowed
    assert limiter.hit("mobile-0").allowed
    assert len(limiter._next_allowed) < 1024


def test_interval_limiter_rejects_zero() -> None:
    with pytest.raises(ValueError, match="interval_s 0"):
        MemoryIntervalLimiter(0)
