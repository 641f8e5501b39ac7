"""Validation of the unified social credit code (统一社会信用代码, GB 32100-2015).

A credit code has 18 characters from the alphabet ``0-9`` and ``A-Y`` without
``I``, ``O``, ``S``, ``V`` and ``Z``:

- position 1, the registration-authority code (登记管理部门代码), e.g. ``9`` for
  market regulation (工商), ``1`` for public institutions (机构编制), ``5`` for civil
  affairs (民政);
- position 2, the entity type within that authority (a digit);
- positions 3-8, the 6-digit administrative division code of the registering office;
- positions 9-17, the organisation code;
- position 18, the check character.

The check character is computed by ``stdnum.cn.uscc.calc_check_digit``
(python-stdnum). ``stdnum.cn.uscc.validate`` is not used as is: it requires the
first 8 characters to be digits, so it rejects the letter authorities ``A``,
``N`` and ``Y`` that GB 32100 allows, and its exceptions do not say which rule
failed. The checks below run in a fixed order, and the error names the first
rule broken.

A credit code identifies an organisation, not a person, so error messages quote it.
"""

import logging

from stdnum.cn import uscc

from geo.errors import RuleError

logger = logging.getLogger(__name__)

CREDIT_CODE_LENGTH = 18

CREDIT_CODE_ALPHABET = frozenset("0123456789ABCDEFGHJKLMNPQRTUWXY")
"""Characters allowed in a credit code (digits and letters without I, O, S, V, Z)."""

REGISTRATION_AUTHORITY_CODES: dict[str, str] = {
    "1": "机构编制",
    "2": "外交",
    "3": "司法行政",
    "4": "文化",
    "5": "民政",
    "6": "旅游",
    "7": "宗教",
    "8": "工会",
    "9": "工商",
    "A": "中央军委改革和编制办公室",
    "N": "农业",
    "Y": "其他",
}
"""Registration-authority codes (first character) with the authority's name."""


class InvalidCreditCodeError(RuleError, ValueError):
    """A credit code breaks one of the GB 32100-2015 rules; ``field`` names the input field."""

    def __init__(
        self,
        message: str,
        field: str = "credit_code",
        *,
        rule: str = "credit_code_length",
        rule_params: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message, field, rule=rule, rule_params=rule_params)


def validate_credit_code(value: str, *, field: str = "credit_code") -> str:
    """Validate a unified social credit code and return its compact form.

    Parameters
    ----------
    value
        The code as entered. Spaces and hyphens are removed and letters are
        upper-cased before the checks, as ``stdnum.cn.uscc.compact`` does.
    field
        Name of the input field, quoted in the message and stored on the error.

    Returns
    -------
    str
        The 18-character upper-case code.

    Raises
    ------
    InvalidCreditCodeError
        For the first broken rule, in this order: length is not 18, a character
        outside :data:`CREDIT_CODE_ALPHABET`, unknown registration-authority
        code, entity type or division code not digits, check character mismatch
        (the message gives the expected character).
    """
    code = uscc.compact(str(value))

    if len(code) != CREDIT_CODE_LENGTH:
        raise InvalidCreditCodeError(
            f"{field} {code!r} has {len(code)} characters; length must be {CREDIT_CODE_LENGTH}",
            field=field,
            rule="credit_code_length",
            rule_params={"length": len(code)},
        )

    invalid = sorted({char for char in code if char not in CREDIT_CODE_ALPHABET})
    if invalid:
        raise InvalidCreditCodeError(
            f"{field} {code!r} contains invalid characters {''.join(invalid)!r}; "
            "allowed are digits and letters except I, O, S, V, Z",
            field=field,
            rule="credit_code_characters",
            rule_params={"chars": "".join(invalid)},
        )

    if code[0] not in REGISTRATION_AUTHORITY_CODES:
        expected = "".join(REGISTRATION_AUTHORITY_CODES)
        raise InvalidCreditCodeError(
            f"{field} {code!r} has invalid registration-authority code {code[0]!r}; "
            f"expected one of {expected}",
            field=field,
            rule="credit_code_authority",
            rule_params={"char": code[0]},
        )

    if not code[1:8].isdigit():
        raise InvalidCreditCodeError(
            f"{field} {code!r} has invalid characters in positions 2-8; "
            "the entity type and the division code must be digits",
            field=field,
            rule="credit_code_digits",
        )

    expected_check = uscc.calc_check_digit(code[:-1])
    if code[-1] != expected_check:
        raise InvalidCreditCodeError(
            f"{field} {code!r} fails the check digit: expected check character "
            f"{expected_check!r}, found {code[-1]!r}",
            field=field,
            rule="check_digit",
            rule_params={"expected": expected_check},
        )
    return code
