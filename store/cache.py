"""Response caches: an in-process LRU with TTL, or Redis behind a circuit breaker.

Redis is optional and disposable. It may lose every key at any time, and when it
fails the cache reports a miss, so callers compute the response again. The same
:class:`RedisBreaker` also guards the rate limiter in :mod:`store.rate_limit`.
Every Redis key starts with ``doorstep:`` plus an optional namespace (see
:func:`key_prefix`), so several deployments or test sessions can share one server.
"""

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

T = TypeVar("T")

KEY_ROOT = "doorstep:"


@dataclass(frozen=True)
class RedisOptions:
    """Connection, retry and cool-down settings of the Redis client.

    Parameters
    ----------
    url : str
        ``redis://``, ``rediss://`` or ``unix://`` URL, optionally with a password.
    socket_timeout_s : float
        Seconds to connect, and to wait for one reply.
    retries : int
        Retries of a failed command after the first attempt (redis-py ``Retry``).
    backoff_s : float
        Base delay of the exponential backoff between retries, in seconds.
    cooldown_s : float
        Seconds the cache and the rate limiter skip Redis after it failed.
    client_name : str
        Name set with ``CLIENT SETNAME`` on every connection, shown by ``CLIENT LIST``.
    max_connections : int
        Most connections the pool opens at once.
    """

    url: str
    socket_timeout_s: float = 0.5
    retries: int = 2
    backoff_s: float = 0.05
    cooldown_s: float = 5.0
    client_name: str = "doorstep"
    max_connections: int = 32


def open_redis(options: RedisOptions) -> "redis.Redis":
    """Create a Redis client on a connection pool with socket timeouts and bounded retries.

    No connection is made here, so a Redis server that is down does not stop the
    service from starting. A failed command is retried ``options.retries`` times with
    exponential backoff starting at ``options.backoff_s`` seconds.
    """
    backoff = ExponentialBackoff(cap=options.backoff_s * 2**options.retries, base=options.backoff_s)
    pool = redis.ConnectionPool.from_url(
        options.url,
        socket_timeout=options.socket_timeout_s,
        socket_connect_timeout=options.socket_timeout_s,
        retry=Retry(backoff, options.retries),
        client_name=options.client_name,
        max_connections=options.max_connections,
    )
    logger.info(
        "redis client %r on %s: timeout %.2f s, %d retries",
        options.client_name,
        mask_redis_url(options.url),
        options.socket_timeout_s,
        options.retries,
    )
    return redis.Redis(connection_pool=pool)


def mask_redis_url(url: str) -> str:
    """Return a Redis URL without its user name and password, for logs."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


def key_prefix(namespace: str = "") -> str:
    """Return the prefix of every Redis key: ``doorstep:`` or ``doorstep:<namespace>:``."""
    return f"{KEY_ROOT}{namespace}:" if namespace else KEY_ROOT


class RedisBreaker:
    """Circuit breaker that skips Redis for ``cooldown_s`` seconds after a failure.

    It logs one WARNING when Redis starts failing and one INFO line when Redis
    responds again, not one line per request.
    """

    def __init__(
        self, cooldown_s: float, name: str = "redis", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.cooldown_s = cooldown_s
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._failing = False
        self._skip_until = 0.0

    @property
    def failing(self) -> bool:
        """Whether the last Redis command failed."""
        return self._failing

    def call(self, operation: Callable[[], T]) -> T | None:
        """Run ``operation`` on Redis, or return None while cooling down or when it fails."""
        if self._clock() < self._skip_until:
            return None
        try:
            result = operation()
        except (redis.RedisError, OSError) as err:
            self._record_failure(err)
            return None
        self._record_success()
        return result

    def _record_failure(self, err: Exception) -> None:
        with self._lock:
            self._skip_until = self._clock() + self.cooldown_s
            if self._failing:
                logger.debug("%s still failing: %s", self.name, err)
                return
            self._failing = True
        logger.warning(
            "%s failed, skipping it for %.1f s: %s: %s",
            self.name,
            self.cooldown_s,
            type(err).__name__,
            err,
        )

    def _record_success(self) -> None:
        if not self._failing:
            return
        with self._lock:
            self._failing = False
        logger.info("%s is responding again", self.name)


class ResponseCache(Protocol):
    """Store of serialised responses by key. Any entry may vanish at any time."""

    def get(self, key: str) -> bytes | None:
        """Return the cached body, or None on a miss."""
        ...

    def set(self, key: str, body: bytes) -> None:
        """Store ``body`` under ``key`` for the cache's time to live."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every entry whose key starts with ``prefix``; return how many were deleted."""
        ...


class MemoryCache:
    """In-process LRU cache whose entries expire ``ttl_s`` seconds after they are set.

    The size bound counts entries, not bytes. Thread-safe, because FastAPI runs
    synchronous routes in a thread pool.
    """

    def __init__(
        self, ttl_s: float, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries {max_entries} is invalid; expected at least 1")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bytes | None:
        """Return the cached body and mark it recently used, or None if missing or expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, body = entry
            if self._clock() >= expires_at:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return body

    def set(self, key: str, body: bytes) -> None:
        """Store ``body``, evicting the least recently used entries over ``max_entries``."""
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl_s, body)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every entry whose key starts with ``prefix``; return how many were deleted."""
        with self._lock:
            doomed = [key for key in self._entries if key.startswith(prefix)]
            for key in doomed:
                del self._entries[key]
        return len(doomed)


class RedisCache:
    """Cache in Redis with ``SET ... PX``, where a failed Redis command counts as a miss."""

    def __init__(
        self, client: "redis.Redis", breaker: RedisBreaker, ttl_s: float, prefix: str = KEY_ROOT
    ) -> None:
        self.client = client
        self.breaker = breaker
        self.ttl_s = ttl_s
        self.prefix = f"{prefix}cache:"

    def redis_key(self, key: str) -> str:
        """Return the full Redis key of a cache key."""
        return self.prefix + key

    def get(self, key: str) -> bytes | None:
        """Return the cached body, or None on a miss or while Redis is unavailable."""
        body: Any = self.breaker.call(lambda: self.client.get(self.redis_key(key)))
        return body if isinstance(body, bytes) else None

    def set(self, key: str, body: bytes) -> None:
        """Store ``body`` for ``ttl_s`` seconds (at least 1). A failed write is dropped."""
        ttl_ms = max(1000, round(self.ttl_s * 1000))
        self.breaker.call(lambda: self.client.set(self.redis_key(key), body, px=ttl_ms))

    def delete_prefix(self, prefix: str) -> int:
        """Delete every entry whose key starts with ``prefix``; return how many were deleted.

        Unlike a lookup, a failure raises, because an erasure must not pass silently.

        Raises
        ------
        redis.RedisError
            Redis failed or is unavailable.
        """
        pattern = _glob_escape(self.redis_key(prefix)) + "*"
        keys = list(self.client.scan_iter(match=pattern, count=500))
        if not keys:
            return 0
        return int(self.client.delete(*keys))


def _glob_escape(text: str) -> str:
    """Escape the glob characters of Redis ``MATCH`` patterns."""
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)


def cache_key(kind: str, build_id: str, params: Mapping[str, object]) -> str:
    """Return the cache key of one query: its kind, the store build and a hash of its parameters.

    ``params`` must already be normalised (coordinates converted to WGS84 and rounded),
    because equal queries must give equal keys.
    """
    canonical = json.dumps(params, sort_keys=True, ensure_ascii=False, default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    return f"{kind}:{build_id}:{digest}"


def build_identity(meta: Mapping[str, Any]) -> str:
    """Return a short hash of the store's build metadata, which changes with every build."""
    canonical = json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def fetch_or_compute(cache: ResponseCache, key: str, compute: Callable[[], bytes]) -> bytes:
    """Return the cached body of ``key``, or compute it, store it and return it."""
    body = cache.get(key)
    if body is not None:
        return body

    body = compute()
    cache.set(key, body)
    return body
