"""Relay and stream workers on PostgreSQL and a private Redis; the embedded worker on SQLite."""

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis

from matching.push_fanout import PushCandidate
from matching.push_rules import PushRules, render_message
from push.channels import InboxChannel, SmsGatewayChannel
from push.pipeline import (
    Deliverer,
    EmbeddedWorker,
    PipelineOptions,
    StreamKeys,
    StreamRelay,
    StreamWorker,
    delete_idle_consumers,
    xadd_batch,
)
from store.postgres import Pool, PostgresStore
from store.push_outbox import PushBatch
from store.push_store import PushStore
from store.sqlite import SqliteStore, write_store
from tests.push.conftest import FakeGateway, RedisProcess
from tests.store.test_contract import _inputs

FAST = PipelineOptions(
    claim_lease_s=1.0, relay_lease_s=2.0, block_ms=100, autoclaim_idle_ms=500,
    retry_after_s=0.0, idle_sleep_s=0.05, backoff_max_s=0.2,
)  # fmt: skip


def daytime_rules(**changes: object) -> PushRules:
    """Return rules whose quiet hours start 10 hours from now, so the test never runs in them."""
    local = datetime.now(ZoneInfo("Asia/Shanghai"))
    start = (local + timedelta(hours=10)).time().replace(second=0, microsecond=0)
    end = (local + timedelta(hours=11)).time().replace(second=0, microsecond=0)
    return PushRules(quiet_start=start, quiet_end=end, **changes)  # type: ignore[arg-type]


class Directory:
    """Every simulated seeker's SMS number is derived from the seeker id."""

    def address(self, seeker_id: str, channel: str) -> str:
        return f"139{abs(hash(seeker_id)) % 10**8:08d}"


def _candidate(seeker_id: str, posting_id: str) -> PushCandidate:
    messages = {
        lang: render_message("会计", "甲公司", "地铁约20分钟", f"http://t/{posting_id}", lang)
        for lang in ("zh", "en")
    }
    return PushCandidate(
        seeker_id, posting_id, 0.9, 20.0, "transit", messages, {"zh": "a", "en": "a"}
    )  # type: ignore[arg-type]


def seed_pushes(store: PushStore, count: int, rules: PushRules, channel: str = "sms") -> list[str]:
    """Write ``count`` pushes for ``count`` consenting simulated seekers; return their ids."""
    now = datetime.now(UTC)
    seekers = [f"sim-{number:06d}" for number in range(count)]
    for seeker_id in seekers:
        store.set_consent(seeker_id, consent=True, at=now - timedelta(days=1), channel=channel)
    batch = PushBatch("test", [_candidate(s, f"p-{s}") for s in seekers], rules, now)
    return store.write_pushes(batch)


@pytest.fixture
def pg_pushes(pg_pool: Pool) -> PushStore:
    with pg_pool.connection() as connection:
        for table in ("push_inbox", "push_outbox", "push_shown", "push_consents"):
            connection.execute(f"DELETE FROM {table}")  # type: ignore[arg-type]
    return PushStore.postgres(pg_pool)


@pytest.fixture
def client(redis_server: RedisProcess) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    yield connection
    connection.close()


def _run_until(condition: "callable[[], bool]", seconds: float, *loops: object) -> bool:  # type: ignore[valid-type]
    stop = threading.Event()
    threads = [threading.Thread(target=loop.run, args=(stop,)) for loop in loops]  # type: ignore[attr-defined]
    for thread in threads:
        thread.start()
    deadline = datetime.now(UTC) + timedelta(seconds=seconds)
    try:
        while datetime.now(UTC) < deadline:
            if condition():
                return True
            stop.wait(0.05)
        return condition()
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)


def test_stream_delivers_each_once(
    pg_pushes: PushStore, client: redis.Redis, gateway: FakeGateway
) -> None:
    rules = daytime_rules(max_seekers_per_opening=100)
    ids = seed_pushes(pg_pushes, 40, rules)
    keys = StreamKeys("test:push:stream")
    sms = SmsGatewayChannel(gateway.url, "k", "西安人社", Directory())
    workers = [
        StreamWorker(Deliverer(pg_pushes, {"sms": sms}, rules, FAST), client, keys, f"w{n}")
        for n in range(2)
    ]
    relay = StreamRelay(pg_pushes, client, keys, FAST)
    done = _run_until(lambda: pg_pushes.status_counts() == {"delivered": 40}, 30, relay, *workers)
    assert done, pg_pushes.status_counts()
    assert sorted(gateway.log.sms_deliveries()) == sorted(ids)
    assert set(gateway.log.accepted_keys.values()) == {1}
    # Entries are acknowledged, never trimmed by length. On a loaded machine the relay
    # may queue a slow push a second time after its lease; the store still sends it once.
    assert client.xlen(keys.stream) >= 40
    assert client.xpending(keys.stream, keys.group)["pending"] == 0


def test_autoclaim_takes_over_crashed_worker(
    pg_pushes: PushStore, client: redis.Redis, gateway: FakeGateway
) -> None:
    rules = daytime_rules()
    ids = seed_pushes(pg_pushes, 5, rules)
    keys = StreamKeys("test:push:stream")
    relay = StreamRelay(pg_pushes, client, keys, FAST)
    sms = SmsGatewayChannel(gateway.url, "k", "西安人社", Directory())
    crashed = StreamWorker(Deliverer(pg_pushes, {"sms": sms}, rules, FAST), client, keys, "crashed")
    crashed.ensure_group()
    assert relay.relay_once() == 5
    # The crashed consumer read every entry and died before handling any.
    read = client.xreadgroup(keys.group, "crashed", {keys.stream: ">"}, count=10)
    assert len(read[0][1]) == 5

    survivor = StreamWorker(Deliverer(pg_pushes, {"sms": sms}, rules, FAST), client, keys, "ok")
    done = _run_until(lambda: pg_pushes.status_counts() == {"delivered": 5}, 20, survivor)
    assert done, pg_pushes.status_counts()
    assert sorted(gateway.log.sms_deliveries()) == sorted(ids)
    assert client.xpending(keys.stream, keys.group)["pending"] == 0


def test_failing_gateway_dead_letters(
    pg_pushes: PushStore, client: redis.Redis, gateway: FakeGateway
) -> None:
    rules = daytime_rules(max_attempts=3)
    ids = seed_pushes(pg_pushes, 2, rules)
    gateway.log.fail_next = 10**6
    keys = StreamKeys("test:push:stream")
    sms = SmsGatewayChannel(gateway.url, "k", "西安人社", Directory())
    worker = StreamWorker(Deliverer(pg_pushes, {"sms": sms}, rules, FAST), client, keys, "w")
    relay = StreamRelay(pg_pushes, client, keys, FAST)
    done = _run_until(lambda: pg_pushes.status_counts() == {"dead": 2}, 30, relay, worker)
    assert done, pg_pushes.status_counts()
    dead = pg_pushes.dead_letters()
    assert sorted(row["push_id"] for row in dead) == sorted(ids)
    assert {row["attempts"] for row in dead} == {3}
    assert all("HTTP 500" in row["last_error"] for row in dead)


def test_gateway_status_mobile_masked(pg_pushes: PushStore, gateway: FakeGateway) -> None:
    rules = daytime_rules(max_attempts=1)
    [push_id] = seed_pushes(pg_pushes, 1, rules)
    mobile = Directory().address("sim-000000", "sms")
    gateway.log.reject_status = f"number {mobile} is not reachable"
    sms = SmsGatewayChannel(gateway.url, "k", "西安人社", Directory())
    assert Deliverer(pg_pushes, {"sms": sms}, rules, FAST).deliver(push_id) == "failed"
    [dead] = pg_pushes.dead_letters()
    assert dead["push_id"] == push_id
    assert mobile not in dead["last_error"]
    assert "number ########### is not reachable" in dead["last_error"]


def test_embedded_worker_fills_inbox(tmp_path: Path) -> None:
    store = PushStore.sqlite(tmp_path / "push.sqlite")
    rules = daytime_rules()
    ids = seed_pushes(store, 3, rules, channel="inbox")
    worker = EmbeddedWorker(Deliverer(store, {"inbox": InboxChannel()}, rules, FAST))
    done = _run_until(lambda: store.status_counts() == {"delivered": 3}, 20, worker)
    assert done, store.status_counts()
    inbox = store.inbox("sim-000000")
    assert [message["push_id"] for message in inbox] == [ids[0]]
    assert inbox[0]["body"] == "甲公司招聘会计，地铁约20分钟。详情：http://t/p-sim-000000"


def test_daytime_rules_avoid_now() -> None:
    rules = daytime_rules()
    assert not rules.in_quiet_hours(datetime.now(UTC))
    assert isinstance(rules.quiet_start, time)


def test_xadd_batch_keeps_id_order(redis_server: RedisProcess) -> None:
    client = redis.Redis.from_url(redis_server.url)
    ids = [f"{number:032x}" for number in range(2_500)]

    assert xadd_batch(client, "test:stream", ids) == 2_500
    assert xadd_batch(client, "test:stream", []) == 0

    entries = client.xrange("test:stream")
    assert [fields[b"push_id"].decode() for _, fields in entries] == ids


@pytest.mark.parametrize("bad", ["", "a\nb"])
def test_xadd_batch_rejects_newline_id(redis_server: RedisProcess, bad: str) -> None:
    client = redis.Redis.from_url(redis_server.url)

    with pytest.raises(ValueError, match="push_id is invalid"):
        xadd_batch(client, "test:stream", ["0" * 32, bad])

    assert client.xlen("test:stream") == 0


def _digest_of_three(store: PushStore, rules: PushRules) -> str:
    """Write one inbox digest listing p1, p2 and p3 for sim-000001; return its push id."""
    now = datetime.now(UTC)
    store.set_consent("sim-000001", consent=True, at=now - timedelta(days=1), channel="inbox")
    candidates = [
        dataclasses.replace(
            _candidate("sim-000001", posting_id), digest_lines={"zh": posting_id, "en": posting_id}
        )
        for posting_id in ("p1", "p2", "p3")
    ]
    push_id = store.write_digest("sim-000001", PushBatch("d", candidates, rules, now))
    assert push_id is not None
    return push_id


def test_embedded_digest_drops_closed_job(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    write_store(path, **_inputs())
    pushes = PushStore.sqlite(path)
    rules = daytime_rules()
    push_id = _digest_of_three(pushes, rules)
    assert SqliteStore(path).set_posting_active("p2", False)
    worker = EmbeddedWorker(Deliverer(pushes, {"inbox": InboxChannel()}, rules, FAST))
    done = _run_until(lambda: pushes.status_counts() == {"delivered": 1}, 20, worker)
    assert done, pushes.status_counts()
    inbox = pushes.inbox("sim-000001")
    assert [message["push_id"] for message in inbox] == [push_id]
    assert inbox[0]["title"] == "按新的求职意向，有2个岗位适合您"
    assert inbox[0]["body"] == "p1；p3。详情：http://127.0.0.1:8000/seeker?job=p1"


def test_stream_skips_digest_of_closed_jobs(pg_store: PostgresStore, client: redis.Redis) -> None:
    pg_store.replace_all(**_inputs())
    with pg_store.pool.connection() as connection:
        for table in ("push_inbox", "push_outbox", "push_shown", "push_consents"):
            connection.execute(f"DELETE FROM {table}")  # type: ignore[arg-type]
    pushes = PushStore.postgres(pg_store.pool)
    rules = daytime_rules()
    push_id = _digest_of_three(pushes, rules)
    for posting_id in ("p1", "p2", "p3"):
        assert pg_store.set_posting_active(posting_id, False)
    keys = StreamKeys("test:push:stream")
    worker = StreamWorker(Deliverer(pushes, {"inbox": InboxChannel()}, rules, FAST), client, keys)
    relay = StreamRelay(pushes, client, keys, FAST)
    done = _run_until(lambda: pushes.status_counts() == {"skipped": 1}, 20, relay, worker)
    assert done, pushes.status_counts()
    assert pushes.outbox_rows()[0]["skip_reason"] == "posting_inactive"
    assert pushes.inbox("sim-000001") == []
    assert [row["push_id"] for row in pushes.outbox_rows()] == [push_id]


def test_idle_consumers_deleted(pg_pushes: PushStore, client: redis.Redis) -> None:
    rules = daytime_rules()
    seed_pushes(pg_pushes, 1, rules)
    keys = StreamKeys("test:push:stream")
    relay = StreamRelay(pg_pushes, client, keys, FAST)
    assert delete_idle_consumers(client, keys, 0) == []  # no group yet
    client.xgroup_create(keys.stream, keys.group, id="0", mkstream=True)
    client.xgroup_createconsumer(keys.stream, keys.group, "dead-empty")
    assert relay.relay_once() == 1
    # dead-pending read the entry and died before acknowledging it.
    assert len(client.xreadgroup(keys.group, "dead-pending", {keys.stream: ">"})[0][1]) == 1
    threading.Event().wait(0.3)
    client.xgroup_createconsumer(keys.stream, keys.group, "live")

    assert delete_idle_consumers(client, keys, 0.2) == ["dead-empty"]
    names = {info["name"] for info in client.xinfo_consumers(keys.stream, keys.group)}
    assert names == {b"dead-pending", b"live"}
    assert client.xpending(keys.stream, keys.group)["pending"] == 1


def test_relay_checks_consumers_periodically(pg_pushes: PushStore, client: redis.Redis) -> None:
    keys = StreamKeys("test:push:stream")
    options = dataclasses.replace(FAST, consumer_idle_s=0.0, consumer_check_s=3600.0)
    relay = StreamRelay(pg_pushes, client, keys, options)
    client.xgroup_create(keys.stream, keys.group, id="0", mkstream=True)
    client.xgroup_createconsumer(keys.stream, keys.group, "first")
    assert relay.delete_idle_consumers() == ["first"]
    client.xgroup_createconsumer(keys.stream, keys.group, "second")
    assert relay.delete_idle_consumers() == []  # checked less than consumer_check_s ago
    assert len(client.xinfo_consumers(keys.stream, keys.group)) == 1
