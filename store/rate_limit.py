"""Fixed-window rate limits per client address: in process, or shared through Redis.

A window is one calendar minute of the clock (``floor(time / 60)``). The Redis
limiter counts with ``INCR`` and ``EXPIRE`` in one ``MULTI``/``EXEC`` transaction.
While Redis is unavailable it counts in process instead, so each service process
then enforces the limit on its own.
"""

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from store.cache import KEY_ROOT, RedisBreaker

logger = logging.getLogger(__name__)

WINDOW_S = 60

# A window's Redis key outlives the window by this much, so that clocks of several
# service processes that differ by a few seconds still read the same counter.
KEY_GRACE_S = 60


@dataclass(frozen=True)
class RateDecision:
    """Outcome of one request against the limit.

    Attributes
    ----------
    allowed : bool
        Whether the request is within the limit.
    count : int
        Requests of this client in the current window, this one included.
    limit : int
        Requests allowed per window.
    retry_after_s : int
        Whole seconds until the next window starts (at least 1).
    """

    allowed: bool
    count: int
    limit: int
    retry_after_s: int


class RateLimiter(Protocol):
    """Counter of requests per client address and window."""

    def hit(self, client: str) -> RateDecision:
        """Count one request of ``client`` and return whether it is allowed."""
        ...


def window_of(now: float) -> tuple[int, int]:
    """Return the window number of a Unix time in seconds, and whole seconds until it ends."""
    window = math.floor(now / WINDOW_S)
    retry_after_s = max(1, math.ceil((window + 1) * WINDOW_S - now))
    return window, retry_after_s


def _check_limit(limit_per_minute: int) -> None:
    if limit_per_minute < 1:
        raise ValueError(
            f"limit_per_minute {limit_per_minute} is invalid; expected at least 1"
            " (turn rate limiting off by not creating a limiter)"
        )


class MemoryRateLimiter:
    """Rate limiter that counts in this process's memory.

    Counters of a past window are dropped when the next window starts, so memory
    grows with the number of clients seen in one minute.
    """

    def __init__(self, limit_per_minute: int, clock: Callable[[], float] = time.time) -> None:
        _check_limit(limit_per_minute)
        self.limit = limit_per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._window = -1
        self._counts: dict[str, int] = {}

    def hit(self, client: str) -> RateDecision:
        """Count one request of ``client`` in the current window."""
        window, retry_after_s = window_of(self._clock())
        with self._lock:
            if window != self._window:
                self._window = window
                self._counts = {}
            count = self._counts.get(client, 0) + 1
            self._counts[client] = count
        return RateDecision(count <= self.limit, count, self.limit, retry_after_s)


class RedisRateLimiter:
    """Rate limiter shared by every process through Redis, with an in-process fallback.

    The key of a client's window is ``<prefix>rate:<client>:<window>``. When Redis
    fails or the breaker skips it, :attr:`fallback` counts the request instead.
    """

    def __init__(
        self,
        client: "redis.Redis",
        breaker: RedisBreaker,
        limit_per_minute: int,
        prefix: str = KEY_ROOT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_limit(limit_per_minute)
        self.client = client
        self.breaker = breaker
        self.limit = limit_per_minute
        self.prefix = f"{prefix}rate:"
        self.fallback = MemoryRateLimiter(limit_per_minute, clock)
        self._clock = clock

    def redis_key(self, client: str, window: int) -> str:
        """Return the Redis key that counts ``client``'s requests in ``window``."""
        return f"{self.prefix}{client}:{window}"

    def hit(self, client: str) -> RateDecision:
        """Count one request of ``client`` in Redis, or in process while Redis is unavailable."""
        window, retry_after_s = window_of(self._clock())
        key = self.redis_key(client, window)

        count = self.breaker.call(lambda: self._increment(key))
        if count is None:
            return self.fallback.hit(client)
        return RateDecision(count <= self.limit, count, self.limit, retry_after_s)

    def _increment(self, key: str) -> int:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, WINDOW_S + KEY_GRACE_S, nx=True)
            results: list[Any] = pipe.execute()
        return int(results[0])
