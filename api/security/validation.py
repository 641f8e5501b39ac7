"""Validation of resident ID numbers (GB 11643-1999) and mainland mobile numbers.

A rejected value never appears in an error message or a log line: the error
names the field and the rule only.
"""

import re
from dataclasses import dataclass
from datetime import date

from geo.errors import DoorstepError

# ISO 7064 MOD 11-2 weights of the first 17 digits: 2^(17 - i) mod 11.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
# Check character for each weighted sum mod 11.
ID_CHECK_CHARACTERS = "10X98765432"

# First two digits of a GB/T 2260 region code: the provinces, plus 71 (Taiwan),
# 81 and 82 (Hong Kong, Macao) and 83, the code of residence permits issued to
# Hong Kong, Macao and Taiwan residents since 2018.
PROVINCE_CODES = frozenset(
    {
        "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36",
        "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62",
        "63", "64", "65", "71", "81", "82", "83",
    }
)  # fmt: skip

EARLIEST_BIRTH_YEAR = 1900

# Mainland mobile numbers: 11 digits, 1 then 3-9 (GSM, CDMA and virtual operators).
_MOBILE = re.compile(r"1[3-9]\d{9}")
# Separators accepted inside a typed number.
_SEPARATORS = re.compile(r"[\s\-]")

RULE_MESSAGES_ZH = {
    "missing": "{label}不能为空",
    "length": "{label}长度不正确，应为 18 位（或旧式 15 位）",
    "format": "{label}只能包含数字，18 位号码末位可为 X",
    "region": "{label}的行政区划代码无效",
    "birth_date": "{label}中的出生日期无效",
    "check_digit": "{label}的校验码不正确，请核对",
    "mobile_format": "{label}应为 11 位中国大陆手机号码",
}

FIELD_LABELS_ZH = {"id_number": "身份证号", "mobile": "手机号码"}


class PersonalFieldError(DoorstepError, ValueError):
    """A personal field broke a validation rule; the message never contains the value."""

    location = "query"
    """First element of the error's ``loc``; a route that reads the field from its body sets
    ``body``."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(f"{field} is invalid (rule {rule}): {message}")
        self.field = field
        self.rule = rule
        label = FIELD_LABELS_ZH.get(field, field)
        self.message_zh = RULE_MESSAGES_ZH[rule].format(label=label)


@dataclass(frozen=True, slots=True)
class IdNumber:
    """A valid resident ID number in its 18-character form, with the parts it encodes."""

    value: str
    region_code: str
    birth_date: date
    converted_from_15: bool
    """True when the input was the legacy 15-digit form."""


def id_check_character(first_17: str) -> str:
    """Return the ISO 7064 MOD 11-2 check character ('0'-'9' or 'X') of 17 digits."""
    if len(first_17) != 17 or not first_17.isdigit():
        raise ValueError(f"expected 17 digits, got {len(first_17)} characters")
    total = sum(int(digit) * weight for digit, weight in zip(first_17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARACTERS[total % 11]


def parse_id_number(raw: str, *, field: str = "id_number", today: date | None = None) -> IdNumber:
    """Validate a resident ID number and return it in the 18-character form.

    An 18-character number needs 17 digits, a valid check character (``X`` in
    either case for 10), a known province in its region code and a real birth
    date between 1900 and ``today``. A legacy 15-digit number (``YYMMDD`` birth
    date, no check character) is read as born in 19YY and converted to 18
    characters with the computed check character.

    Raises
    ------
    PersonalFieldError
        Naming ``field`` and one rule: missing, length, format, region,
        birth_date or check_digit.
    """
    text = _SEPARATORS.sub("", raw or "").upper()
    if not text:
        raise PersonalFieldError(field, "missing", "the value is empty")
    if len(text) not in (15, 18):
        raise PersonalFieldError(
            field, "length", f"expected 18 characters or the legacy 15, got {len(text)}"
        )

    legacy = len(text) == 15
    if legacy:
        if not text.isdigit():
            raise PersonalFieldError(field, "format", "a 15-digit number has digits only")
        first_17 = f"{text[:6]}19{text[6:]}"
        expected_check = None
    else:
        first_17, expected_check = text[:17], text[17]
        if not first_17.isdigit() or not (expected_check.isdigit() or expected_check == "X"):
            raise PersonalFieldError(
                field, "format", "expected 17 digits and a digit or X as the 18th character"
            )

    region_code = first_17[:6]
    if region_code[:2] not in PROVINCE_CODES:
        raise PersonalFieldError(
            field, "region", "the first two digits are not a known province code"
        )
    birth = _birth_date(first_17[6:14], field, today or date.today())
    check = id_check_character(first_17)
    if expected_check is not None and expected_check != check:
        raise PersonalFieldError(
            field, "check_digit", "the 18th character does not match the MOD 11-2 check"
        )
    return IdNumber(first_17 + check, region_code, birth, converted_from_15=legacy)


def _birth_date(digits: str, field: str, today: date) -> date:
    try:
        birth = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError as err:
        raise PersonalFieldError(
            field, "birth_date", "the birth date is invalid: no such calendar date"
        ) from err
    if birth.year < EARLIEST_BIRTH_YEAR or birth > today:
        raise PersonalFieldError(
            field, "birth_date", f"the birth date is outside {EARLIEST_BIRTH_YEAR}..today"
        )
    return birth


def normalise_mobile(raw: str, *, field: str = "mobile") -> str:
    """Return a mainland mobile number as 11 digits; ``+86``/``86`` and separators are dropped.

    Raises
    ------
    PersonalFieldError
        Naming ``field`` and the rule missing or mobile_format.
    """
    text = _SEPARATORS.sub("", raw or "")
    if not text:
        raise PersonalFieldError(field, "missing", "the value is empty")
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("86") and len(text) == 13:
        text = text[2:]
    if not _MOBILE.fullmatch(text):
        raise PersonalFieldError(field, "mobile_format", "expected 11 digits starting with 13-19")
    return text
