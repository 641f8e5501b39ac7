"""Time-outs, delays and limits of the settings are finite.

Sockets and ``threading.Event.wait`` raise OverflowError for an infinite or huge number
of seconds, which would fail requests instead of the start; nothing here needs one.
"""

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from api.settings import CacheSettings, DatabaseSettings, QuerySettings

FINITE: list[tuple[type[BaseSettings], str]] = [
    (QuerySettings, "max_radius_m"),
    (DatabaseSettings, "pool_timeout_s"),
    (CacheSettings, "cache_ttl_s"),
    (CacheSettings, "redis_socket_timeout_s"),
    (CacheSettings, "redis_backoff_s"),
    (CacheSettings, "redis_cooldown_s"),
]


@pytest.mark.parametrize(("group", "field"), FINITE)
@pytest.mark.parametrize("value", ["inf", "nan", "1e300"])
def test_setting_must_be_bounded(
    monkeypatch: pytest.MonkeyPatch, group: type[BaseSettings], field: str, value: str
) -> None:
    monkeypatch.setenv(f"DOORSTEP_{field.upper()}", value)
    with pytest.raises(ValidationError, match=field):
        group()
