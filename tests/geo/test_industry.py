"""GB/T 4754-2017 catalogue loaded from the real data file."""

import pytest

from geo.industry import IndustryCatalogue, UnknownIndustryCodeError


@pytest.mark.parametrize(
    ("code", "name", "level", "section"),
    [
        ("6513", "应用软件开发", 4, "I"),
        ("6520", "集成电路设计", 4, "I"),
        ("C", "制造业", 1, "C"),
        ("65", "软件和信息技术服务业", 2, "I"),
        ("651", "软件开发", 3, "I"),
    ],
)
def test_lookup_real_codes(
    industries: IndustryCatalogue, code: str, name: str, level: int, section: str
) -> None:
    industry = industries.validate(code)
    assert industry.name == name
    assert industry.level == level
    assert industry.section == section


def test_lowercase_section_letter(industries: IndustryCatalogue) -> None:
    assert industries.validate(" c ").code == "C"


def test_undivided_group_derived(industries: IndustryCatalogue) -> None:
    group = industries.validate("652")
    assert group.name == "集成电路设计"
    assert group.level == 3


def test_level_counts(industries: IndustryCatalogue) -> None:
    levels = [industries.validate(code).level for code in industries._by_code]
    assert levels.count(1) == 20
    assert levels.count(2) == 97
    assert levels.count(3) == 473


def test_miscoded_aircraft_row_repaired(industries: IndustryCatalogue) -> None:
    assert industries.validate("374").name == "航空、航天器及设备制造"
    assert industries.validate("3741").name == "飞机制造"


def test_path_of_class(industries: IndustryCatalogue) -> None:
    assert [item.code for item in industries.path("6513")] == ["I", "65", "651", "6513"]
    assert [item.code for item in industries.path("6520")] == ["I", "65", "652", "6520"]
    assert [item.code for item in industries.path("65")] == ["I", "65"]
    assert [item.code for item in industries.path("C")] == ["C"]


@pytest.mark.parametrize("code", ["9999", "6514", "Z", "", "65130"])
def test_unknown_codes_raise(industries: IndustryCatalogue, code: str) -> None:
    with pytest.raises(UnknownIndustryCodeError) as info:
        industries.validate(code)
    assert info.value.field == "industry_code"
    assert industries.lookup(code) is None


def test_unknown_message_format(industries: IndustryCatalogue) -> None:
    with pytest.raises(LookupError, match=r"^industry_code '9999' is not a GB/T 4754-2017 code$"):
        industries.validate("9999")
