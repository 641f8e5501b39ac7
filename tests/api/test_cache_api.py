"""Response caching and rate limits through the API, on a live Redis and on a closed port.

Redis is ``DOORSTEP_TEST_REDIS_URL`` (default redis://127.0.0.1:6379/0). Every app
here writes under one random namespace, whose keys are deleted at the end, and
names its connections so the tests can find and kill only their own. The tests
skip when Redis is unreachable, and under CI=true the root conftest fails that skip.
"""

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import CacheSettings, DataSettings, Settings
from store.cache import key_prefix
from store.rate_limit import window_of
from store.sqlite import SqliteStore
from tests.api.staff_login import city_officer
from tests.fix_redis import REDIS_URL, closed_port_url

# The Bell Tower (钟楼), WGS84.
NEARBY = {"lon": 108.9402, "lat": 34.26, "radius_m": 2000, "page_size": 10}


class CallCounter:
    """Spy that counts calls of a bound method and passes them through."""

    def __init__(self, method: Callable[..., Any]) -> None:
        self.method = method
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.method(*args, **kwargs)


@contextmanager
def serve(store: SqliteStore, **cache: Any) -> Iterator[TestClient]:
    """Run the app on ``store`` with the given cache settings, lifespan included."""
    settings = Settings(data=DataSettings(store_path=store.path), cache=CacheSettings(**cache))
    with TestClient(create_app(settings, store=store)) as client:
        yield client


def app_of(client: TestClient) -> FastAPI:
    app = client.app
    assert isinstance(app, FastAPI)
    return app


def wait_for_fresh_window(min_left_s: int = 15) -> None:
    """Sleep into the next minute when the current one has less than ``min_left_s`` left."""
    _, left_s = window_of(time.time())
    if left_s < min_left_s:
        time.sleep(left_s + 0.1)


@pytest.fixture(scope="module")
def cached_client(full_store: SqliteStore, namespace: str) -> Iterator[TestClient]:
    """The real store served with a Redis cache and no rate limit."""
    with serve(
        full_store,
        redis_url=REDIS_URL,
        redis_namespace=namespace,
        redis_client_name=f"{namespace}-api",
        rate_limit_per_minute=0,
    ) as client:
        yield client


def own_connection_ids(admin: redis.Redis, name: str) -> set[str]:
    return {str(entry["id"]) for entry in admin.client_list() if entry.get("name") == name}


def test_nearby_second_request_from_redis(
    cached_client: TestClient, admin: redis.Redis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    recommender = app_of(cached_client).state.recommender
    spy = CallCounter(recommender.nearby)
    monkeypatch.setattr(recommender, "nearby", spy)
    query = {**NEARBY, "radius_m": 2500}

    first = cached_client.get("/v1/jobs/nearby", params=query)
    keys = list(admin.scan_iter(match=f"{key_prefix(namespace)}cache:jobs_nearby:*"))
    second = cached_client.get("/v1/jobs/nearby", params=query)

    assert first.status_code == 200, first.text
    assert first.json()["total"] > 0
    assert len(keys) == 1
    assert second.status_code == 200
    assert second.json() == first.json()
    assert spy.calls == 1


def test_nearby_key_rounds_coordinates(
    cached_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    recommender = app_of(cached_client).state.recommender
    spy = CallCounter(recommender.nearby)
    monkeypatch.setattr(recommender, "nearby", spy)

    first = cached_client.get("/v1/jobs/nearby", params={**NEARBY, "lon": 108.94020001})
    second = cached_client.get("/v1/jobs/nearby", params={**NEARBY, "lon": 108.94019999})
    other_lang = cached_client.get("/v1/jobs/nearby", params={**NEARBY, "lang": "en"})

    assert first.status_code == second.status_code == other_lang.status_code == 200
    assert second.json() == first.json()
    assert spy.calls == 2  # the English request is a different key


def test_recommendations_cached_not_errors(
    cached_client: TestClient, admin: redis.Redis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    recommender = app_of(cached_client).state.recommender
    spy = CallCounter(recommender.recommend)
    monkeypatch.setattr(recommender, "recommend", spy)
    headers = city_officer(cached_client)
    seeker_id = cached_client.get("/v1/dev/seekers").json()["items"][0]["seeker_id"]
    path = f"/v1/seekers/{seeker_id}/recommendations"

    first = cached_client.get(path, params={"limit": 7}, headers=headers)
    second = cached_client.get(path, params={"limit": 7}, headers=headers)
    unknown = "/v1/seekers/sim-999999/recommendations"
    missing = [cached_client.get(unknown, headers=headers) for _ in range(2)]

    assert first.status_code == 200, first.text
    assert second.json() == first.json()
    assert [r.status_code for r in missing] == [404, 404]
    assert spy.calls == 1  # one computed body; an unknown seeker is rejected before ranking
    pattern = f"{key_prefix(namespace)}cache:seeker_recommendations:*"
    assert len(list(admin.scan_iter(match=pattern))) == 1


def test_killed_connections_reconnect(
    cached_client: TestClient, admin: redis.Redis, namespace: str
) -> None:
    name = f"{namespace}-api"
    assert cached_client.get("/v1/jobs/nearby", params=NEARBY).status_code == 200
    killed = own_connection_ids(admin, name)
    assert killed, f"no Redis connection named {name!r}"

    for connection_id in killed:
        admin.client_kill_filter(_id=connection_id)
    after_kill = cached_client.get("/v1/jobs/nearby", params=NEARBY)
    reconnected = cached_client.get("/v1/jobs/nearby", params=NEARBY)

    assert after_kill.status_code == 200
    assert reconnected.status_code == 200
    assert reconnected.json() == after_kill.json()
    current = own_connection_ids(admin, name)
    assert current
    assert not current & killed
    assert not app_of(cached_client).state.cache.breaker.failing


def test_every_route_answers_with_redis_down(
    full_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = {"redis_url": closed_port_url(), "redis_retries": 1, "redis_backoff_s": 0.01}
    with serve(full_store, **down, rate_limit_per_minute=0) as client:
        recommender = app_of(client).state.recommender
        spy = CallCounter(recommender.nearby)
        monkeypatch.setattr(recommender, "nearby", spy)
        seeker_id = client.get("/v1/dev/seekers").json()["items"][0]["seeker_id"]
        headers = city_officer(client)
        paths = [
            "/health",
            "/v1/jobs/nearby",
            "/v1/jobs/nearby",
            "/v1/dev/seekers",
            "/v1/seekers",
            f"/v1/seekers/{seeker_id}/recommendations",
            "/v1/anchors",
            "/v1/layers",
            "/v1/layers/metro_stations",
            "/v1/stats",
        ]
        statuses = {
            path: client.get(path, params=NEARBY, headers=headers).status_code for path in paths
        }

        assert statuses == dict.fromkeys(paths, 200)
        assert spy.calls == 2  # nothing was cached
        assert app_of(client).state.cache.breaker.failing


def assert_limited(response: Any) -> None:
    """Check a 429 response: Retry-After in 1..60 and the same number in msg_zh."""
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    (detail,) = response.json()["detail"]
    assert detail["msg_zh"] == f"请求过于频繁，请在 {retry_after} 秒后重试"
    assert re.search(r"retry after \d+ s", detail["msg"])


def test_sixth_request_limited_in_redis(
    full_store: SqliteStore, admin: redis.Redis, namespace: str
) -> None:
    wait_for_fresh_window()
    with serve(
        full_store, redis_url=REDIS_URL, redis_namespace=namespace, rate_limit_per_minute=5
    ) as client:
        statuses = [client.get("/v1/stats").status_code for _ in range(5)]
        sixth = client.get("/v1/stats")
        other = TestClient(client.app, client=("10.9.8.7", 50000)).get("/v1/stats")
        health = client.get("/health")
        page = client.get("/")

    assert statuses == [200] * 5
    assert_limited(sixth)
    assert other.status_code == 200
    assert health.status_code == 200
    assert page.status_code == 200
    window, _ = window_of(time.time())
    assert admin.get(f"{key_prefix(namespace)}rate:testclient:{window}") == b"6"


@pytest.mark.parametrize("redis_down", [True, False], ids=["redis-down", "no-redis"])
def test_sixth_request_limited_in_process(full_store: SqliteStore, redis_down: bool) -> None:
    settings: dict[str, Any] = {"rate_limit_per_minute": 5}
    if redis_down:
        settings |= {"redis_url": closed_port_url(), "redis_backoff_s": 0.01}
    wait_for_fresh_window()
    with serve(full_store, **settings) as client:
        statuses = [client.get("/v1/stats").status_code for _ in range(5)]
        sixth = client.get("/v1/stats")
        other = TestClient(client.app, client=("10.9.8.7", 50000)).get("/v1/stats")

    assert statuses == [200] * 5
    assert_limited(sixth)
    assert other.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/auth/login", {"login": "nobody.here", "password": "x"}),
        ("GET", "/v1/staff/me", None),
    ],
    ids=["staff-login", "staff-me"],
)
def test_login_and_staff_routes_limited(
    full_store: SqliteStore, method: str, path: str, body: dict[str, str] | None
) -> None:
    wait_for_fresh_window()
    with serve(full_store, rate_limit_per_minute=5) as client:
        statuses = [client.request(method, path, json=body).status_code for _ in range(5)]
        sixth = client.request(method, path, json=body)

    assert 429 not in statuses
    assert_limited(sixth)
