"""The base of push job links: DOORSTEP_PUSH_LINK_BASE, else the server's host and port."""

import logging

import pytest

from api.settings import DEFAULT_LINK_BASE, PushSettings, ServerSettings, Settings


@pytest.fixture(autouse=True)
def _no_link_base(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DOORSTEP_PUSH_LINK_BASE", "DOORSTEP_HOST", "DOORSTEP_PORT"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", 8000, "http://127.0.0.1:8000"),
        ("jobs.xa.local", 9001, "http://jobs.xa.local:9001"),
        ("::1", 8080, "http://[::1]:8080"),
        ("0.0.0.0", 8000, "http://127.0.0.1:8000"),  # nosec B104 # a setting value, not bound
        ("::", 8443, "http://127.0.0.1:8443"),
    ],
)
def test_link_base_follows_server(host: str, port: int, expected: str) -> None:
    settings = Settings(server=ServerSettings(host=host, port=port))
    assert settings.push.link_base == expected
    assert settings.push.rules().job_link("p 1") == f"{expected}/seeker?job=p%201"


def test_link_base_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOORSTEP_PORT", "9123")
    assert Settings().push.rules().link_base == "http://127.0.0.1:9123"


def test_explicit_link_base_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOORSTEP_PUSH_LINK_BASE", "https://jobs.example.cn")
    monkeypatch.setenv("DOORSTEP_PORT", "9123")
    assert Settings().push.rules().link_base == "https://jobs.example.cn"


def test_wildcard_host_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="api.settings"):
        Settings(server=ServerSettings(host="0.0.0.0"))  # nosec B104 # a setting value
    assert "DOORSTEP_PUSH_LINK_BASE" in caplog.text


def test_bare_push_settings_default() -> None:
    assert PushSettings().rules().link_base == DEFAULT_LINK_BASE


def test_link_base_needs_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOORSTEP_PUSH_LINK_BASE", "jobs.example.cn")
    with pytest.raises(ValueError, match="link_base"):
        PushSettings()
