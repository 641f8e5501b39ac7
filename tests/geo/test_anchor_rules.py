"""Rule codes of anchor edits and import rows, and their zh-CN messages."""

import ast
import re
import string
from pathlib import Path

import pytest
from stdnum.cn import uscc

import geo
from geo.anchor_fields import (
    AnchorFieldError,
    FieldError,
    redact_personal_numbers,
    validate_contact_phone,
    validate_contact_role,
)
from geo.anchor_rules import FIELD_LABELS_ZH, RULE_MESSAGES_ZH, format_message_zh
from geo.anchor_states import AnchorState, InvalidTransitionError, transition
from geo.credit_code import InvalidCreditCodeError, validate_credit_code

CJK = re.compile(r"[\u4e00-\u9fff]")
SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def _template_names(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _rule_codes_in_geo() -> set[str]:
    """Collect every literal rule code in geo/: ``rule=`` arguments, defaults and assignments."""
    codes: set[str] = set()
    for path in Path(geo.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "rule":
                value: ast.expr | None = node.value
            elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
                value = node.value if node.targets[0].attr == "rule" else None
            elif isinstance(node, ast.arguments):
                named = zip(node.kwonlyargs, node.kw_defaults, strict=True)
                value = next((default for arg, default in named if arg.arg == "rule"), None)
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "getattr":
                is_rule = len(node.args) == 3 and ast.literal_eval(node.args[1]) == "rule"
                value = node.args[2] if is_rule else None
            else:
                value = None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                codes.add(value.value)
    return codes


@pytest.mark.parametrize("rule", sorted(RULE_MESSAGES_ZH))
def test_every_rule_has_chinese_message(rule: str) -> None:
    assert SNAKE_CASE.fullmatch(rule)
    template = RULE_MESSAGES_ZH[rule]
    assert CJK.search(template), f"{rule}: {template!r} has no Chinese text"

    params = {name: "X" for name in _template_names(template) - {"label"}}
    filled = format_message_zh(rule, field="name", **params)
    assert "{" not in filled
    assert "}" not in filled


def test_rule_codes_in_code_match_table() -> None:
    used = _rule_codes_in_geo()
    assert len(used) >= 40
    assert sorted(used - set(RULE_MESSAGES_ZH)) == []
    assert sorted(set(RULE_MESSAGES_ZH) - used) == []


def test_templates_take_no_phone_or_person() -> None:
    names = set().union(*(_template_names(template) for template in RULE_MESSAGES_ZH.values()))
    assert not names & {"phone", "contact_phone", "contact_role", "role", "person"}


def test_unknown_rule_raises() -> None:
    with pytest.raises(KeyError, match="'no_such_rule'"):
        format_message_zh("no_such_rule", field="name")


def test_labels_are_chinese() -> None:
    for field, label in FIELD_LABELS_ZH.items():
        assert CJK.search(label), field


def test_mobile_phone_message_zh() -> None:
    with pytest.raises(AnchorFieldError) as info:
        validate_contact_phone("139 1234 5678")
    assert info.value.rule == "mobile_phone"
    assert info.value.message_zh == "联系电话须为单位电话，不能填写手机号码"

    error = FieldError.from_exception("contact_phone", info.value)
    assert error.message_zh == "联系电话须为单位电话，不能填写手机号码"
    assert "5678" not in error.message_zh
    assert "5678" not in error.message


def test_person_role_not_echoed() -> None:
    with pytest.raises(AnchorFieldError) as info:
        validate_contact_role("王先生")
    assert info.value.rule == "role_person"
    assert "王" not in info.value.message_zh
    assert "王" not in str(info.value)


def test_check_digit_message_zh() -> None:
    first17 = "91610103MA6W00001"
    expected = uscc.calc_check_digit(first17)
    wrong = "0" if expected != "0" else "1"
    with pytest.raises(InvalidCreditCodeError) as info:
        validate_credit_code(first17 + wrong)
    error = FieldError.from_exception("credit_code", info.value)
    assert error.rule == "check_digit"
    assert error.message_zh == f"统一社会信用代码校验位错误，应为 {expected}"


def test_invalid_transition_message_zh() -> None:
    with pytest.raises(InvalidTransitionError) as info:
        transition(AnchorState.DRAFT, AnchorState.VERIFIED)
    error = FieldError.from_exception("state", info.value)
    assert error.rule == "invalid_transition"
    assert error.message_zh == "状态不能从“草稿”改为“已核实”"


def test_error_without_rule_is_generic() -> None:
    error = FieldError.from_exception("address", ValueError("bad"))
    assert error.rule == "invalid_value"
    assert error.message_zh == "地址的值无效"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("班次“13912345678”不是 HH:MM-HH:MM 格式", "班次“***”不是 HH:MM-HH:MM 格式"),
        ("credit_code '61010319900101123X' fails", "credit_code '***' fails"),
        ("legacy 610103900101123 here", "legacy *** here"),
        # A credit code, a 12-digit run and a shift stay readable.
        ("91610113MA6TXXXX01 and 123456789012 at 08:00-17:00", None),
    ],
)
def test_personal_numbers_are_masked(text: str, expected: str | None) -> None:
    assert redact_personal_numbers(text) == (text if expected is None else expected)
