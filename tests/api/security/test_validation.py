"""ID number (GB 11643-1999) and mobile number validation, and errors that never echo the value."""

from datetime import date

import pytest
from stdnum.cn import ric

from api.security.validation import (
    PersonalFieldError,
    id_check_character,
    normalise_mobile,
    parse_id_number,
)

TODAY = date(2026, 12, 4)


def _valid(first_17: str) -> str:
    return first_17 + id_check_character(first_17)


# Region 610103 is 西安市碑林区; the sequence numbers are made up.
VALID = _valid("61010319900307123")
# 17 digits whose check character is X, found by searching sequence numbers.
WITH_X = next(
    _valid(f"610113198512{day:02d}456")
    for day in range(1, 29)
    if id_check_character(f"610113198512{day:02d}456") == "X"
)


def test_check_character_matches_stdnum() -> None:
    for first_17 in ("61010319900307123", "11010519491231002", "44030420000229987"):
        number = _valid(first_17)
        assert ric.validate(number) == number


def test_check_character_known_value() -> None:
    # The GB 11643-1999 example: 11010519491231002 has the check character X.
    assert id_check_character("11010519491231002") == "X"


def test_valid_number_parsed() -> None:
    parsed = parse_id_number(VALID, today=TODAY)
    assert parsed.value == VALID
    assert parsed.region_code == "610103"
    assert parsed.birth_date == date(1990, 3, 7)
    assert not parsed.converted_from_15


def test_x_accepted_in_either_case() -> None:
    assert parse_id_number(WITH_X, today=TODAY).value == WITH_X
    assert parse_id_number(WITH_X.lower(), today=TODAY).value == WITH_X


def test_separators_ignored() -> None:
    spaced = f"{VALID[:6]} {VALID[6:14]} {VALID[14:]}"
    assert parse_id_number(spaced, today=TODAY).value == VALID


def test_legacy_15_digits_converted() -> None:
    legacy = "610103" + "900307" + "123"
    parsed = parse_id_number(legacy, today=TODAY)
    assert parsed.value == VALID
    assert parsed.converted_from_15
    assert parsed.birth_date == date(1990, 3, 7)


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("", "missing"),
        ("6101031990030712", "length"),
        ("61010319900307123X1", "length"),
        ("61010319900307A23" + "1", "format"),
        ("6101031990030712Y", "length"),
        ("61010319900307123Y", "format"),
        (_valid("99010319900307123"), "region"),
        (_valid("61010319900230123"), "birth_date"),
        (_valid("61010318990101123"), "birth_date"),
        (_valid("61010320300101123"), "birth_date"),
        ("61010319900307" + "12A4", "format"),
        ("61010390023012" + "3", "birth_date"),
    ],
)
def test_invalid_number_names_rule(value: str, rule: str) -> None:
    with pytest.raises(PersonalFieldError) as caught:
        parse_id_number(value, today=TODAY)
    assert caught.value.rule == rule
    assert caught.value.field == "id_number"


def test_wrong_check_character_rejected() -> None:
    wrong = VALID[:17] + ("0" if VALID[17] != "0" else "1")
    with pytest.raises(PersonalFieldError) as caught:
        parse_id_number(wrong, today=TODAY)
    assert caught.value.rule == "check_digit"


def test_error_never_echoes_value() -> None:
    wrong = VALID[:17] + ("0" if VALID[17] != "0" else "1")
    with pytest.raises(PersonalFieldError) as caught:
        parse_id_number(wrong, field="seeker.id_number", today=TODAY)
    message = f"{caught.value} {caught.value.message_zh}"
    assert wrong not in message
    assert VALID[:14] not in message
    assert "seeker.id_number" in str(caught.value)
    assert "校验码" in caught.value.message_zh


@pytest.mark.parametrize(
    "value", ["13812341234", "138 1234 1234", "138-1234-1234", "+8613812341234", "8613812341234"]
)
def test_mobile_normalised(value: str) -> None:
    assert normalise_mobile(value) == "13812341234"


@pytest.mark.parametrize("value", ["12812341234", "1381234123", "138123412345", "02988881234"])
def test_invalid_mobile_rejected(value: str) -> None:
    with pytest.raises(PersonalFieldError) as caught:
        normalise_mobile(value)
    assert caught.value.rule == "mobile_format"
    assert value not in str(caught.value)
    assert value not in caught.value.message_zh
