"""Single-field rules of employer anchors: value types, phone, shift, role and text checks.

Each validator takes one field as entered on the station page or in an
import file, normalises it and raises :class:`AnchorFieldError` naming the
field and the broken rule. Messages never repeat a phone number.
"""

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from geo.anchor_rules import format_message_zh
from geo.errors import RuleError

logger = logging.getLogger(__name__)

# Digit runs shaped like a mainland mobile (11 digits from 13) or a resident ID number
# (15 digits, or 17 digits and a check character). Longer digit runs do not match.
_PERSONAL_NUMBER = re.compile(r"(?<![0-9])(?:1[3-9][0-9]{9}|[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9])")
PERSONAL_NUMBER_MASK = "***"

MAX_NAME_CHARS = 100
MAX_ADDRESS_CHARS = 200
MAX_ROLE_CHARS = 20


class EnterpriseSize(StrEnum):
    """Enterprise size class (企业规模) as the employer reports it.

    The national rule for large, medium, small and micro enterprises sets its
    bands per industry from headcount and revenue, so the class is taken as
    reported and not derived from a headcount here.
    """

    MICRO = "micro"
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


ENTERPRISE_SIZE_LABELS_ZH: dict[EnterpriseSize, str] = {
    EnterpriseSize.MICRO: "微型",
    EnterpriseSize.SMALL: "小型",
    EnterpriseSize.MEDIUM: "中型",
    EnterpriseSize.LARGE: "大型",
}


class AnchorFieldError(RuleError, ValueError):
    """One field of an anchor breaks a rule; the message never contains a phone number."""

    def __init__(self, field: str, message: str, *, rule: str, **rule_params: object) -> None:
        super().__init__(message, field, rule=rule, rule_params=rule_params)

    @property
    def message_zh(self) -> str:
        """The zh-CN message of the broken rule."""
        return format_message_zh(self.rule, field=self.field, **self.rule_params)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One failed rule of a change: field, rule code, and message in English and in zh-CN."""

    field: str
    rule: str
    message: str
    message_zh: str

    @classmethod
    def of(cls, field: str, message: str, *, rule: str, **rule_params: object) -> "FieldError":
        """Build the error of one rule, filling its zh-CN message from ``rule_params``.

        Digit runs shaped like a mobile or an ID number are masked in both messages,
        because staff sometimes type a person's number into the wrong field and the
        messages echo rejected values.
        """
        message_zh = format_message_zh(rule, field=field, **rule_params)
        return cls(
            field, rule, redact_personal_numbers(message), redact_personal_numbers(message_zh)
        )

    @classmethod
    def from_exception(cls, field: str, err: Exception) -> "FieldError":
        """Build the error of ``field`` from a raised validation error.

        An error without a ``rule`` attribute gets the generic rule ``invalid_value``.
        """
        rule = getattr(err, "rule", "invalid_value")
        rule_params: dict[str, object] = getattr(err, "rule_params", {})
        return cls.of(field, str(err), rule=rule, **rule_params)


def redact_personal_numbers(text: str) -> str:
    """Replace every mobile- or ID-number-shaped digit run in ``text`` with ``***``."""
    return _PERSONAL_NUMBER.sub(PERSONAL_NUMBER_MASK, text)


@dataclass(frozen=True, slots=True)
class ShuttleStop:
    """A pick-up stop of the employer's shuttle bus; the point is WGS84 degrees or absent."""

    name: str
    lon: float | None = None
    lat: float | None = None


_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0\d{9,11}")
_SERVICE_NUMBER = re.compile(r"[48]00\d{7}")
_PHONE_SEPARATORS = re.compile(r"[\s\-()]")
_EXTENSION = re.compile(r"(?:转|ext\.?|#)\s*(\d{1,6})$", re.IGNORECASE)
_SHIFT = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)-([01]?\d|2[0-3]):([0-5]\d)")
_PERSON_TITLES = ("先生", "女士", "小姐")


def validate_contact_phone(value: str, *, field: str = "contact_phone") -> str:
    """Validate an organisation phone number and return it without separators.

    Parameters
    ----------
    value
        A landline with its area code (``029-88886666``, ``02988886666转123``) or
        a 400/800 number. A ``+86``/``0086`` prefix and spaces, hyphens and
        brackets are ignored.
    field
        Name of the input field.

    Returns
    -------
    str
        Digits only, with ``-`` and the extension when one was given.

    Raises
    ------
    AnchorFieldError
        For a mobile number (1[3-9] and 9 digits), which belongs to a person,
        and for anything else that is not a landline or 400/800 number. The
        message never repeats the number.
    """
    text = unicodedata.normalize("NFKC", value).strip()
    extension_match = _EXTENSION.search(text)
    extension = extension_match.group(1) if extension_match else None
    if extension_match:
        text = text[: extension_match.start()]

    digits = _PHONE_SEPARATORS.sub("", text).removeprefix("+86").removeprefix("0086")
    if _MOBILE.fullmatch(digits):
        raise AnchorFieldError(
            field,
            f"{field} must be an organisation phone, not a mobile number",
            rule="mobile_phone",
        )
    if not (_LANDLINE.fullmatch(digits) or _SERVICE_NUMBER.fullmatch(digits)):
        raise AnchorFieldError(
            field,
            f"{field} must be a landline with its area code (029 and 8 digits in Xi'an) "
            "or a 400/800 number",
            rule="phone_format",
        )
    return digits if extension is None else f"{digits}-{extension}"


def validate_shift_time(value: str, *, field: str = "shift_times") -> str:
    """Validate one ``HH:MM-HH:MM`` shift (24-hour clock) and return it normalised.

    Full-width digits, colons and dashes are accepted and spaces ignored. An
    end earlier than the start is an overnight shift. Equal start and end
    raise :class:`AnchorFieldError`, as does any other format.
    """
    text = re.sub(r"\s", "", unicodedata.normalize("NFKC", value)).replace("—", "-")
    text = text.replace("–", "-").replace("~", "-")
    match = _SHIFT.fullmatch(text)
    if match is None:
        raise AnchorFieldError(
            field, f"{field} {value!r} is not a HH:MM-HH:MM shift", rule="shift_format", value=value
        )
    start_hour, start_minute, end_hour, end_minute = (int(part) for part in match.groups())
    shift = f"{start_hour:02d}:{start_minute:02d}-{end_hour:02d}:{end_minute:02d}"
    if shift[:5] == shift[6:]:
        raise AnchorFieldError(
            field,
            f"{field} {value!r} starts and ends at the same time",
            rule="shift_same_time",
            value=shift,
        )
    return shift


def validate_shift_times(values: Iterable[str], *, field: str = "shift_times") -> tuple[str, ...]:
    """Validate each shift with :func:`validate_shift_time`; duplicates raise too."""
    shifts = tuple(validate_shift_time(value, field=field) for value in values)
    if len(set(shifts)) != len(shifts):
        raise AnchorFieldError(field, f"{field} lists the same shift twice", rule="shift_repeated")
    return shifts


def validate_contact_role(value: str, *, field: str = "contact_role") -> str:
    """Validate a contact role such as 人事部 or HR经理, which must not name a person.

    Raises
    ------
    AnchorFieldError
        If the role is empty, longer than ``MAX_ROLE_CHARS``, contains a digit
        (a phone number does not belong here) or ends in 先生, 女士 or 小姐.
    """
    role = unicodedata.normalize("NFKC", value).strip()
    if not role or len(role) > MAX_ROLE_CHARS:
        raise AnchorFieldError(
            field,
            f"{field} must have 1 to {MAX_ROLE_CHARS} characters",
            rule="role_length",
            max_chars=MAX_ROLE_CHARS,
        )
    if any(char.isdigit() for char in role):
        raise AnchorFieldError(
            field, f"{field} must name a role, without digits", rule="role_digits"
        )
    if role.endswith(_PERSON_TITLES):
        raise AnchorFieldError(
            field,
            f"{field} must name a role such as 人事部 or HR经理, not a person",
            rule="role_person",
        )
    return role


def validate_text(value: str, *, field: str, max_chars: int, required: bool = True) -> str:
    """Strip a free-text field and check it is non-empty (when required) and short enough."""
    text = unicodedata.normalize("NFKC", value).strip()
    if required and not text:
        raise AnchorFieldError(field, f"{field} must not be empty", rule="text_empty")
    if len(text) > max_chars:
        raise AnchorFieldError(
            field,
            f"{field} has {len(text)} characters, maximum {max_chars}",
            rule="text_too_long",
            max_chars=max_chars,
        )
    return text


def parse_enterprise_size(value: EnterpriseSize | str, *, field: str = "size") -> EnterpriseSize:
    """Parse a size class from its value (``small``) or Chinese label (``小型``, ``小``)."""
    text = str(value).strip().lower()
    for size, label in ENTERPRISE_SIZE_LABELS_ZH.items():
        if text in (size.value, label, label.removesuffix("型")):
            return size
    expected = ", ".join(size.value for size in EnterpriseSize)
    raise AnchorFieldError(
        field,
        f"{field} {value!r} is not one of {expected} (微型/小型/中型/大型)",
        rule="unknown_size",
        value=value,
    )
