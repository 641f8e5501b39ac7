"""Unified social credit code validation (GB 32100-2015)."""

import pytest
from stdnum.cn import uscc

from geo.credit_code import InvalidCreditCodeError, validate_credit_code


def _with_check(first17: str) -> str:
    return first17 + uscc.calc_check_digit(first17)


# Enterprise (9), public institution (1) and a letter authority (Y) in Xi'an divisions.
VALID = [
    _with_check("91610131MA6TXXXX0"),
    _with_check("12610000435200123"),
    _with_check("Y1610103MA6W12345"),
]


@pytest.mark.parametrize("code", VALID)
def test_valid_codes_pass(code: str) -> None:
    assert validate_credit_code(code) == code


def test_compacts_spaces_and_case() -> None:
    code = VALID[0]
    messy = f" {code[:8].lower()} {code[8:].lower()} "
    assert validate_credit_code(messy) == code


def test_known_public_example_passes() -> None:
    assert validate_credit_code("91110000600037341L") == "91110000600037341L"


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("9161013", "length must be 18"),
        ("91610131MA6TXXXXOX", "invalid characters 'O'"),
        (_with_check("01610131MA6TXXXX0"), "invalid registration-authority code '0'"),
        (_with_check("9A610131MA6TXXXX0"), "positions 2-8"),
    ],
)
def test_rule_named_in_message(code: str, rule: str) -> None:
    with pytest.raises(InvalidCreditCodeError, match=rule) as info:
        validate_credit_code(code)
    assert info.value.field == "credit_code"


def test_check_digit_mismatch_names_expected() -> None:
    good = VALID[0]
    wrong = "0" if good[-1] != "0" else "1"
    with pytest.raises(InvalidCreditCodeError) as info:
        validate_credit_code(good[:-1] + wrong, field="employer_code")
    message = str(info.value)
    assert f"expected check character {good[-1]!r}" in message
    assert message.startswith("employer_code ")
    assert info.value.field == "employer_code"


def test_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        validate_credit_code("")
