"""Validation of the DOORSTEP_PUSH_ settings."""

import pytest
from pydantic import ValidationError

from api.settings import PushSettings


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_min_model_score_must_be_finite(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DOORSTEP_PUSH_MIN_MODEL_SCORE", value)
    with pytest.raises(ValidationError, match="min_model_score"):
        PushSettings()


def test_min_model_score_accepts_negative(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOORSTEP_PUSH_MIN_MODEL_SCORE", "-3")
    assert PushSettings().min_model_score == -3.0


def test_empty_quiet_hours_name_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOORSTEP_PUSH_QUIET_START", "08:00")
    with pytest.raises(ValidationError) as raised:
        PushSettings()
    message = str(raised.value)
    assert "DOORSTEP_PUSH_QUIET_START" in message
    assert "DOORSTEP_PUSH_QUIET_END" in message


@pytest.mark.parametrize(
    "variable",
    ["DOORSTEP_PUSH_CLAIM_LEASE_S", "DOORSTEP_PUSH_RELAY_LEASE_S", "DOORSTEP_PUSH_RETRY_AFTER_S"],
)
@pytest.mark.parametrize("value", ["inf", "1e300", "86401"])
def test_delivery_timing_at_most_a_day(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable.removeprefix("DOORSTEP_PUSH_").lower()):
        PushSettings()
