"""The eraser registry: order, duplicate names, replacement and failures."""

import pytest

from api.erasers import EraserRegistry


def test_duplicate_name_rejected() -> None:
    registry = EraserRegistry()
    registry.register("cache", lambda seeker_id: None)

    with pytest.raises(ValueError, match="already registered"):
        registry.register("cache", lambda seeker_id: None)


def test_replace_keeps_order() -> None:
    calls: list[str] = []
    registry = EraserRegistry()
    registry.register("store", lambda seeker_id: calls.append("store"))
    registry.register("cache", lambda seeker_id: calls.append("cache"))

    registry.register("store", lambda seeker_id: calls.append("store2"), replace=True)
    registry.erase("sim-000001")

    assert registry.names() == ["store", "cache"]
    assert calls == ["store2", "cache"]


def test_failure_does_not_stop_others(caplog: pytest.LogCaptureFixture) -> None:
    erased: list[str] = []
    registry = EraserRegistry()

    def broken(seeker_id: str) -> None:
        raise ConnectionError("secret detail 13800138000")

    registry.register("queue", broken)
    registry.register("cache", erased.append)

    outcomes = registry.erase("sim-000007")

    assert [(o.name, o.ok, o.error) for o in outcomes] == [
        ("queue", False, "ConnectionError"),
        ("cache", True, None),
    ]
    assert erased == ["sim-000007"]
    assert "queue" in caplog.text
    assert "13800138000" not in caplog.text
