"""The leak scan with a few hundred seekers, on the live PostgreSQL and Redis."""

from pathlib import Path

import pandas as pd
import redis

from api.security.leak_scan import KINDS, LeakTargets, run_leak_scan
from api.settings import CacheSettings, DataSettings, Settings
from tests.fix_redis import REDIS_URL
from tests.store.conftest import ADMIN_URL, _admin_connection


def test_targets_count_each_kind() -> None:
    seekers = pd.DataFrame(
        {
            "id_number": ["610103198605142314"],
            "mobile": ["13800138000"],
            "name": ["张伟"],
        }
    )
    targets = LeakTargets.of(seekers)
    text = "x610103198605142314 tel 13800138000, 张伟来了 残疾人 13800138001 张三"

    assert targets.count(text) == {"id_number": 1, "mobile": 1, "name": 1, "hardship_label": 1}
    assert targets.count(text, kinds=("mobile",)) == dict.fromkeys(KINDS) | {"mobile": 1}


def test_scan_finds_no_plaintext(
    admin: redis.Redis, data_dir: Path, tmp_path: Path, namespace: str
) -> None:
    _admin_connection().close()  # skips, like the PostgreSQL tests, when the server is down
    settings = Settings(
        data=DataSettings(data_dir=data_dir, store_path=tmp_path / "unused.sqlite", n_seekers=300),
        cache=CacheSettings(redis_url=REDIS_URL, redis_namespace=namespace),
    )
    steps: list[str] = []

    report = run_leak_scan(
        settings,
        n_seekers=300,
        work_dir=tmp_path / "work",
        admin_url=ADMIN_URL,
        sample=12,
        progress=steps.append,
    )

    assert steps == ["build", "sqlite", "postgres", "api", "pg_dump"]
    assert set(report.places) == {
        "sqlite_tables", "sqlite_bytes", "responses", "redis", "postgres_dump", "logs",
    }  # fmt: skip
    bytes_only = {"id_number": 0, "mobile": 0, "name": None, "hardship_label": None}
    for place, counts in report.places.items():
        expected = bytes_only if place == "sqlite_bytes" else dict.fromkeys(KINDS, 0)
        assert counts == expected, place
    assert report.requests["HTTP 200"] >= 12 * 4
    assert report.requests["HTTP 422"] == 12 * 3
    assert report.requests["unmasked reads (bodies not scanned)"] == 12
    assert report.requests["redis keys scanned"] >= 1
    assert not (tmp_path / "work").exists()
    assert not list(admin.scan_iter(match=f"doorstep:{namespace}-leakscan-*", count=1000))
