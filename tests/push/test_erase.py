"""Erasing a seeker's push traces from the store and the stream."""

import redis

from push.erase import erase_seeker_pushes, push_eraser
from push.pipeline import PipelineOptions, StreamKeys, StreamRelay
from store.postgres import Pool
from store.push_store import PushStore
from tests.push.conftest import RedisProcess
from tests.push.test_pipeline import daytime_rules, seed_pushes


def test_erase_removes_rows_and_entries(pg_pool: Pool, redis_server: RedisProcess) -> None:
    with pg_pool.connection() as connection:
        for table in ("push_inbox", "push_outbox", "push_shown", "push_consents"):
            connection.execute(f"DELETE FROM {table}")  # type: ignore[arg-type]
    store = PushStore.postgres(pg_pool)
    seed_pushes(store, 3, daytime_rules())
    client = redis.Redis.from_url(redis_server.url)
    keys = StreamKeys("erase:push:stream")
    assert StreamRelay(store, client, keys, PipelineOptions()).relay_once() == 3

    counts = erase_seeker_pushes(store, "sim-000001", client, keys)
    assert counts == {
        "push_digest_items": 0, "push_inbox": 0, "push_outbox": 1, "push_shown": 1,
        "push_consents": 1, "stream_entries": 1,
    }  # fmt: skip
    remaining = [fields[b"push_id"].decode() for _, fields in client.xrange(keys.stream)]
    assert sorted(remaining) == sorted(row["push_id"] for row in store.outbox_rows())
    assert store.outbox_rows("sim-000001") == []
    assert push_eraser(store, client, keys)("sim-000001")["push_outbox"] == 0


def test_erase_without_redis_keeps_going(pg_pool: Pool, redis_server: RedisProcess) -> None:
    store = PushStore.postgres(pg_pool)
    seed_pushes(store, 1, daytime_rules())
    client = redis.Redis.from_url(redis_server.url, socket_timeout=0.5)
    redis_server.kill()
    counts = erase_seeker_pushes(store, "sim-000000", client, StreamKeys("erase:push:stream"))
    assert counts["push_outbox"] == 1
    assert counts["stream_entries"] == 0
