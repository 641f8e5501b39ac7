"""Fixed-window rate limits per client address: in process, or shared through Redis.

A window is one calendar minute of the clock (``floor(time / 60)``). The Redis
limiter counts with ``INCR`` and ``EXPIRE`` in one ``MULTI``/``EXEC`` transaction.
While Redis is unavailable it counts in process instead, so each service process
then enforces the limit on its own.

The interval limiters allow one event per key every N seconds, counted from the
last allowed event, for limits such as one SMS code per mobile per minute.
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


class MemoryIntervalLimiter:
    """Allow one event per key every ``interval_s`` seconds, counted from the last allowed one.

    Unlike the fixed-window limiters, two events can never pass a few seconds apart
    on either side of a minute boundary. A denied event does not restart the interval.
    """

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.time) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s {interval_s} is invalid; expected a number above 0")
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._next_allowed: dict[str, float] = {}
        self._next_sweep = 0.0

    def hit(self, client: str) -> RateDecision:
        """Allow ``client`` when its interval has passed; ``count`` is 1 if allowed, else 2."""
        now = self._clock()
        with self._lock:
            next_allowed = self._next_allowed.get(client)
            if next_allowed is not None and now < next_allowed:
                return RateDecision(False, 2, 1, max(1, math.ceil(next_allowed - now)))
            self._drop_expired(now)
            self._next_allowed[client] = now + self.interval_s
        return RateDecision(True, 1, 1, max(1, math.ceil(self.interval_s)))

    def _drop_expired(self, now: float) -> None:
        # Once _SWEEP_THRESHOLD keys are held, drop the expired ones at most once per
        # interval, so a hit scans the whole table rarely rather than every time.
        if len(self._next_allowed) < _SWEEP_THRESHOLD or now < self._next_sweep:
            return
        self._next_sweep = now + self.interval_s
        self._next_allowed = {
            key: next_allowed
            for key, next_allowed in self._next_allowed.items()
            if next_allowed > now
        }


# Keys held by MemoryIntervalLimiter before it drops the expired ones.
_SWEEP_THRESHOLD = 1024


class RedisIntervalLimiter:
    """Interval limiter shared by every process through Redis, with an in-process fallback.

    An allowed event sets ``<prefix>interval:<client>`` with ``SET NX PX``, so the key's
    time to live, on the Redis server's clock, is the time left until the next event.
    """

    def __init__(
        self,
        client: "redis.Redis",
        breaker: RedisBreaker,
        interval_s: float,
        prefix: str = KEY_ROOT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.breaker = breaker
        self.fallback = MemoryIntervalLimiter(interval_s, clock)
        self.interval_ms = max(1, round(interval_s * 1000))
        self.prefix = f"{prefix}interval:"

    def redis_key(self, client: str) -> str:
        """Return the Redis key that marks ``client``'s last allowed event."""
        return f"{self.prefix}{client}"

    def hit(self, client: str) -> RateDecision:
        """Allow ``client`` when its key is absent in Redis, or in process while Redis fails."""
        remaining_ms = self.breaker.call(lambda: self._claim(self.redis_key(client)))
        if remaining_ms is None:
            return self.fallback.hit(client)
        if remaining_ms == 0:
            return RateDecision(True, 1, 1, max(1, math.ceil(self.interval_ms / 1000)))
        return RateDecision(False, 2, 1, max(1, math.ceil(remaining_ms / 1000)))

    def _claim(self, key: str) -> int:
        """Set the key if absent and return 0, else return its remaining time to live in ms."""
        if self.client.set(key, b"1", nx=True, px=self.interval_ms):
            return 0
        remaining: Any = self.client.pttl(key)
        # PTTL is -2 when the key expired between the two commands: retry in 1 ms.
        return int(remaining) if int(remaining) > 0 else 1
