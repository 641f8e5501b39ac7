"""Delivery of stored pushes: the relay to a Redis stream, stream workers, the embedded worker.

PostgreSQL (or the SQLite file) is the record of every push; Redis only carries
push ids. The steps of one push are:

1. The relay reads due outbox rows, marks them queued, and adds one stream entry
   per push, all of a batch in one round trip (:func:`xadd_batch`). It never trims
   by length. It also re-queues rows that stayed queued or sending past the relay
   lease without being delivered, which covers entries lost when Redis restarts with
   an empty data set.
2. A worker in the consumer group reads entries (``XREADGROUP``) and first takes
   over entries another consumer left pending longer than the claim idle time
   (``XAUTOCLAIM``), so a crashed worker's entries are not stuck.
3. For each entry the worker claims the push in the store (consent, quiet hours,
   daily cap and attempt count are checked there), sends it through the seeker's
   channel, marks it delivered in the store, then acknowledges (``XACK``). A push
   already marked delivered is only acknowledged, so it is not sent again. A failed
   send is recorded. Each claim counts as an attempt, so a worker that dies while
   sending uses one up too; after ``max_attempts`` the push moves to the dead-letter
   list.

The embedded worker runs steps 1 and 3 in one thread, reading the outbox directly.
"""

import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis

from matching.push_rules import PushRules
from push.channels import Channel, ChannelError, OutgoingPush, RecipientMissingError
from store.cache import key_prefix
from store.push_store import PushStore

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Return the current time in UTC; the default clock of the pipeline."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    """Timing and batch sizes of the relay and the workers."""

    claim_lease_s: float = 30.0
    """Seconds a worker's claim on a push lasts before another worker may send it."""
    relay_lease_s: float = 60.0
    """Seconds after which a queued or sending push that is not delivered is queued again."""
    relay_batch: int = 500
    read_count: int = 50
    block_ms: int = 1000
    autoclaim_idle_ms: int = 30_000
    retry_after_s: float = 60.0
    """Delay before a failed delivery is tried again."""
    idle_sleep_s: float = 0.5
    backoff_max_s: float = 5.0
    """Maximum wait between attempts to reach Redis or the store after an error."""
    consumer_idle_s: float = 3600.0
    """Idle time after which the relay deletes a consumer of the group that has no pending
    entries, such as the consumer of a worker that died (:func:`delete_idle_consumers`)."""
    consumer_check_s: float = 300.0
    """Seconds between the relay's checks for idle consumers."""
    stream_retention_s: float = 86_400.0
    """Age after which the relay trims stream entries (``XTRIM MINID``). By then each entry
    was handled or its push was queued again from the store. The stream is never
    trimmed by length, which could drop entries no worker has read."""


@dataclass(frozen=True, slots=True)
class StreamKeys:
    """The Redis keys of the push stream."""

    stream: str
    group: str = "push-workers"

    @classmethod
    def for_namespace(cls, namespace: str = "") -> "StreamKeys":
        """Return the keys under the service's ``doorstep:[namespace:]`` prefix."""
        return cls(stream=f"{key_prefix(namespace)}push:stream")


XADD_BATCH_SCRIPT = """
local added = 0
for push_id in string.gmatch(ARGV[1], '[^\\n]+') do
    redis.call('XADD', KEYS[1], '*', 'push_id', push_id)
    added = added + 1
end
return added
"""
"""Lua script that adds one stream entry per push id to the stream KEYS[1].

ARGV[1] holds the push ids joined by newlines. One call replaces one round trip and
one reply per entry. One joined argument instead of one argument per id saves the
client encoding each id: 32,768 ids in batches of 2,000 took 40 ms instead of 63 ms on
a private local redis-server (bench/fanout.py's setting). A batch blocks Redis for the
time of its ``XADD`` calls, so batches stay at ``PipelineOptions.relay_batch`` entries.
"""


def xadd_batch(client: redis.Redis, stream: str, push_ids: list[str]) -> int:
    """Add one stream entry ``{push_id}`` per id in one round trip; return how many were added.

    redis-py's ``Script`` sends ``EVALSHA`` and falls back to ``EVAL`` when the server
    lost its script cache, as after a restart.

    Raises
    ------
    ValueError
        A push id is empty or contains a newline, which the joined argument cannot carry.
    """
    if not push_ids:
        return 0
    joined = "\n".join(push_ids)
    if joined.count("\n") != len(push_ids) - 1 or not all(push_ids):
        raise ValueError("push_id is invalid; expected non-empty ids without a newline")
    script = client.register_script(XADD_BATCH_SCRIPT)
    return int(script(keys=[stream], args=[joined]))


DELETE_IDLE_CONSUMERS_SCRIPT = """
local deleted = {}
local consumers = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
for _, fields in ipairs(consumers) do
    local info = {}
    for i = 1, #fields, 2 do
        info[fields[i]] = fields[i + 1]
    end
    if info['pending'] == 0 and info['idle'] >= tonumber(ARGV[2]) then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
        table.insert(deleted, info['name'])
    end
end
return deleted
"""
"""Lua script that deletes idle consumers of group ARGV[1] on stream KEYS[1]; returns their names.

A consumer is deleted when it has no pending entries and was idle at least ARGV[2] ms.

Checking and deleting in one script means no consumer gets an entry in between, so
``XGROUP DELCONSUMER`` never drops a pending entry. Redis 7.0 does not reset ``idle``
when a read returns nothing, so a live worker that saw no entry for that long is deleted
too. That is harmless: its next ``XREADGROUP`` or ``XAUTOCLAIM`` creates the consumer
again, and a read blocked at the time still receives the next entry (checked by hand
on redis-server 7.0.15).
"""


def delete_idle_consumers(client: redis.Redis, keys: "StreamKeys", idle_s: float) -> list[str]:
    """Delete the group's consumers idle at least ``idle_s`` seconds with no pending entries.

    Returns their names; an empty list when the stream or the group does not exist yet.
    """
    script = client.register_script(DELETE_IDLE_CONSUMERS_SCRIPT)
    try:
        deleted: Any = script(keys=[keys.stream], args=[keys.group, int(idle_s * 1000)])
    except redis.ResponseError as err:
        if "NOGROUP" in str(err) or "no such key" in str(err):
            return []
        raise
    names = [name.decode() if isinstance(name, bytes) else str(name) for name in deleted]
    if names:
        logger.info(
            "deleted %d idle consumers of %s on %s: %s",
            len(names),
            keys.group,
            keys.stream,
            ", ".join(names),
        )
    return names


class Deliverer:
    """Claims, sends and marks one push; shared by the stream workers and the embedded worker."""

    def __init__(
        self,
        store: PushStore,
        channels: Mapping[str, Channel],
        rules: PushRules,
        options: PipelineOptions,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.channels = dict(channels)
        self.rules = rules
        self.options = options
        self.clock = clock

    def deliver(self, push_id: str) -> str:
        """Deliver one push if the rules allow it now.

        Returns ``delivered``, ``failed``, ``skipped`` (the seeker has no address on the
        channel), or the claim's action when nothing was sent.
        """
        lease = timedelta(seconds=self.options.claim_lease_s)
        claim = self.store.claim(push_id, self.clock(), self.rules, lease)
        if claim.action != "send" or claim.push is None:
            return claim.action
        push = claim.push
        channel = self.channels.get(str(push["channel"]))
        try:
            if channel is None:
                raise ChannelError(f"push {push_id}: channel {push['channel']!r} is not configured")
            channel.send(_outgoing(push))
        except RecipientMissingError as err:
            # Retrying cannot help until the seeker adds an address, so the push ends here.
            self.store.mark_skipped(push_id, f"no_contact:{err}", int(push["attempts"]))
            logger.info("push %s skipped: the seeker has no %s address", push_id, push["channel"])
            return "skipped"
        except ChannelError as err:
            retry = timedelta(seconds=self.options.retry_after_s)
            state = self.store.mark_failed(push_id, str(err), self.clock(), self.rules, retry)
            logger.warning(
                "push %s attempt %d failed (%s): %s", push_id, push["attempts"], state, err
            )
            return "failed"
        self.store.mark_delivered(push, self.clock())
        return "delivered"


def _outgoing(push: Mapping[str, Any]) -> OutgoingPush:
    return OutgoingPush(
        push_id=str(push["push_id"]),
        seeker_id=str(push["seeker_id"]),
        title=str(push["title"]),
        body=str(push["body"]),
        link=str(push["link"]),
    )


class Backoff:
    """Exponential wait after repeated errors, capped, reset by a success; logs once per streak."""

    def __init__(self, name: str, max_s: float) -> None:
        self.name = name
        self.max_s = max_s
        self.failures = 0

    def failed(self, err: Exception, stop: threading.Event) -> None:
        """Log the error (the first of a streak at WARNING) and wait before the next try."""
        self.failures += 1
        level = logging.WARNING if self.failures == 1 else logging.DEBUG
        logger.log(level, "%s failed (%d in a row), retrying: %s", self.name, self.failures, err)
        stop.wait(min(self.max_s, 0.1 * 2 ** min(self.failures, 10)))

    def succeeded(self) -> None:
        """Reset the streak, logging the recovery."""
        if self.failures:
            logger.info("%s recovered after %d failures", self.name, self.failures)
        self.failures = 0


class StreamRelay:
    """Moves due outbox rows to the Redis stream in batches."""

    def __init__(
        self,
        store: PushStore,
        client: redis.Redis,
        keys: StreamKeys,
        options: PipelineOptions,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.client = client
        self.keys = keys
        self.options = options
        self.clock = clock
        self._consumers_checked: float | None = None

    def relay_once(self) -> int:
        """Queue one batch of due pushes on the stream; return how many were added.

        The rows are marked queued before the ``XADD`` calls. If Redis fails in
        between, the rows are queued again after the relay lease, so none is lost.
        """
        lease = timedelta(seconds=self.options.relay_lease_s)
        rows = self.store.due_for_relay(self.clock(), lease, self.options.relay_batch)
        if not rows:
            return 0
        xadd_batch(self.client, self.keys.stream, [str(row["push_id"]) for row in rows])
        oldest_ms = int((time.time() - self.options.stream_retention_s) * 1000)
        self.client.xtrim(self.keys.stream, minid=f"{max(oldest_ms, 0)}-0", approximate=True)
        logger.debug("relayed %d pushes to %s", len(rows), self.keys.stream)
        return len(rows)

    def delete_idle_consumers(self) -> list[str]:
        """Delete idle consumers without pending entries once per ``consumer_check_s``."""
        now = time.monotonic()
        last = self._consumers_checked
        if last is not None and now - last < self.options.consumer_check_s:
            return []
        self._consumers_checked = now
        return delete_idle_consumers(self.client, self.keys, self.options.consumer_idle_s)

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set, backing off while Redis or the store fails.

        At start and then every ``consumer_check_s`` it also deletes idle consumers.
        """
        backoff = Backoff("push relay", self.options.backoff_max_s)
        logger.info("push relay started on %s", self.keys.stream)
        while not stop.is_set():
            try:
                self.delete_idle_consumers()
                moved = self.relay_once()
            except (redis.RedisError, OSError, psycopg.Error, sqlite3.Error) as err:
                backoff.failed(err, stop)
                continue
            backoff.succeeded()
            if moved < self.options.relay_batch:
                stop.wait(self.options.idle_sleep_s)
        logger.info("push relay stopped")


class StreamWorker:
    """One consumer of the push stream's group."""

    def __init__(
        self,
        deliverer: Deliverer,
        client: redis.Redis,
        keys: StreamKeys,
        consumer: str | None = None,
    ) -> None:
        self.deliverer = deliverer
        self.client = client
        self.keys = keys
        self.consumer = (
            consumer or f"{socket.gethostname()}-{threading.get_native_id()}-{time.time_ns()}"
        )
        self.options = deliverer.options

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) unless it exists, reading from the start."""
        try:
            self.client.xgroup_create(self.keys.stream, self.keys.group, id="0", mkstream=True)
            logger.info("created consumer group %s on %s", self.keys.group, self.keys.stream)
        except redis.ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise

    def work_once(self) -> int:
        """Reclaim stale entries, read new ones, deliver them; return how many were handled."""
        reply: Any = self.client.xautoclaim(
            self.keys.stream,
            self.keys.group,
            self.consumer,
            min_idle_time=self.options.autoclaim_idle_ms,
            start_id="0-0",
            count=self.options.read_count,
        )
        # Redis 7 replies [next start id, claimed entries, ids deleted meanwhile].
        entries = [entry for entry in reply[1] if entry and entry[1]]
        if not entries:
            read: Any = self.client.xreadgroup(
                self.keys.group,
                self.consumer,
                {self.keys.stream: ">"},
                count=self.options.read_count,
                block=self.options.block_ms,
            )
            entries = [entry for _, stream_entries in read for entry in stream_entries]
        for entry_id, fields in entries:
            self._handle(entry_id, fields)
        return len(entries)

    def _handle(self, entry_id: bytes | str, fields: Mapping[Any, Any]) -> None:
        push_id = fields.get(b"push_id", fields.get("push_id"))
        if push_id is not None:
            self.deliverer.deliver(push_id.decode() if isinstance(push_id, bytes) else str(push_id))
        self.client.xack(self.keys.stream, self.keys.group, entry_id)

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; recreate the group when Redis lost it."""
        backoff = Backoff(f"push worker {self.consumer}", self.options.backoff_max_s)
        logger.info("push worker %s started on %s", self.consumer, self.keys.stream)
        self._recreate_group(backoff, stop)
        while not stop.is_set():
            try:
                self.work_once()
            except redis.ResponseError as err:
                # After a restart with an empty data set the stream and its group are gone.
                if "NOGROUP" in str(err) or "no such key" in str(err):
                    self._recreate_group(backoff, stop)
                    continue
                backoff.failed(err, stop)
                continue
            except (redis.RedisError, OSError, psycopg.Error, sqlite3.Error) as err:
                # An entry whose delivery failed stays pending, and XAUTOCLAIM hands it out again.
                backoff.failed(err, stop)
                continue
            backoff.succeeded()
        logger.info("push worker %s stopped", self.consumer)

    def _recreate_group(self, backoff: Backoff, stop: threading.Event) -> None:
        try:
            self.ensure_group()
        except (redis.RedisError, OSError) as err:
            backoff.failed(err, stop)


class EmbeddedWorker:
    """The embedded store's worker: reads due pushes from the outbox, delivers them in-process."""

    def __init__(self, deliverer: Deliverer) -> None:
        self.deliverer = deliverer

    def work_once(self) -> int:
        """Deliver one batch of due pushes; return how many were handled."""
        options = self.deliverer.options
        lease = timedelta(seconds=options.relay_lease_s)
        now = self.deliverer.clock()
        if not self.deliverer.store.has_due(now, lease):
            return 0
        rows = self.deliverer.store.due_for_relay(now, lease, options.relay_batch)
        for row in rows:
            self.deliverer.deliver(str(row["push_id"]))
        return len(rows)

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set, sleeping while nothing is due."""
        logger.info("embedded push worker started on %s", self.deliverer.store.label)
        while not stop.is_set():
            try:
                handled = self.work_once()
            except Exception:  # the thread must outlive a failed batch; the rows stay stored
                logger.exception("embedded push worker batch failed; retrying")
                stop.wait(self.deliverer.options.backoff_max_s)
                continue
            if handled == 0:
                stop.wait(self.deliverer.options.idle_sleep_s)
        logger.info("embedded push worker stopped")
