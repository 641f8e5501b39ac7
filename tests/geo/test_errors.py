"""The rule errors of geo: one base carrying field, rule and rule_params."""

from collections.abc import Callable

import pytest

from geo.anchor_fields import AnchorFieldError, validate_shift_time
from geo.credit_code import InvalidCreditCodeError, validate_credit_code
from geo.crs import parse_coord_sys, validate_point
from geo.errors import (
    DoorstepError,
    InvalidCoordinateError,
    RuleError,
    UnknownCoordSysError,
)
from geo.industry import IndustryCatalogue, UnknownIndustryCodeError


@pytest.mark.parametrize(
    ("raise_error", "error_type", "builtin", "field", "rule", "rule_params", "message"),
    [
        (
            lambda: validate_point(200.0, 34.26, field="home"),
            InvalidCoordinateError,
            ValueError,
            "lon",
            "longitude_range",
            {"lon": "200"},
            "longitude 200 is outside -180..180",
        ),
        (
            lambda: parse_coord_sys("epsg3857"),
            UnknownCoordSysError,
            ValueError,
            "coord_sys",
            "unknown_coord_sys",
            {"value": "epsg3857"},
            "coord_sys 'epsg3857' is not one of wgs84, gcj02, bd09",
        ),
        (
            lambda: validate_credit_code("9161010", field="code"),
            InvalidCreditCodeError,
            ValueError,
            "code",
            "credit_code_length",
            {"length": 7},
            "code '9161010' has 7 characters; length must be 18",
        ),
        (
            lambda: validate_shift_time("8点到17点"),
            AnchorFieldError,
            ValueError,
            "shift_times",
            "shift_format",
            {"value": "8点到17点"},
            "shift_times '8点到17点' is not a HH:MM-HH:MM shift",
        ),
    ],
)
def test_rule_error_fields(
    raise_error: Callable[[], object],
    error_type: type[RuleError],
    builtin: type[Exception],
    field: str,
    rule: str,
    rule_params: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(error_type) as info:
        raise_error()
    error = info.value
    assert isinstance(error, RuleError)
    assert isinstance(error, DoorstepError)
    assert isinstance(error, builtin)
    assert error.field == field
    assert error.rule == rule
    assert error.rule_params == rule_params
    assert str(error) == message


def test_unknown_industry_is_lookup_rule_error(industries: IndustryCatalogue) -> None:
    with pytest.raises(UnknownIndustryCodeError) as info:
        industries.validate("9999")
    error = info.value
    assert isinstance(error, RuleError)
    assert isinstance(error, LookupError)
    assert not isinstance(error, ValueError)
    assert error.field == "industry_code"
    assert error.rule == "unknown_industry"
    assert error.rule_params == {"code": "9999"}
    assert "9999" in str(error)


def test_rule_error_defaults_without_params() -> None:
    error = InvalidCoordinateError("query point (nan, nan) is not finite")
    assert error.field == "location"
    assert error.rule == "invalid_coordinate"
    assert error.rule_params == {}
    assert InvalidCreditCodeError("bad").rule == "credit_code_length"
