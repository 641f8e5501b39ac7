"""Industry classification GB/T 4754-2017 (国民经济行业分类) with code lookup and hierarchy.

Codes have four levels: a section letter (门类, ``C``), a 2-digit division
(大类, ``65``), a 3-digit group (中类, ``651``) and a 4-digit class (小类,
``6513``). The source file lists a group that the standard does not subdivide
only once, as its class ending in 0 (``6520`` 集成电路设计 for group ``652``).
The catalogue derives those groups from their class, with the class's name, so
all 473 groups of the standard can be looked up.

The source file carries one known defect: class ``3741`` 飞机制造 is listed
with the group code ``374``, and the real group ``374`` 航空、航天器及设备制造
appears on the row before it. The loader restores the class code and logs a warning.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from geo.errors import DataSourceError, RuleError

logger = logging.getLogger(__name__)

INDUSTRY_FILE = "industry_gbt4754_2017/gbt4754_2017.csv"

_COLUMNS = ["code", "level", "section", "division", "group", "class", "name"]

# (code as listed, name as listed) -> the class code the row belongs to.
_MISCODED_ROWS: dict[tuple[str, str], str] = {("374", "飞机制造"): "3741"}

LEVEL_LABELS_ZH: dict[int, str] = {1: "门类", 2: "大类", 3: "中类", 4: "小类"}


@dataclass(frozen=True, slots=True)
class Industry:
    """One GB/T 4754-2017 code: level 1 门类 (letter), 2 大类, 3 中类 or 4 小类 (digits)."""

    code: str
    name: str
    level: int
    section: str


class UnknownIndustryCodeError(RuleError, LookupError):
    """A code that is not in GB/T 4754-2017; ``field`` names the input field."""

    def __init__(self, message: str, field: str = "industry_code", *, code: str = "") -> None:
        super().__init__(message, field, rule="unknown_industry", rule_params={"code": code})


def normalise_industry_code(value: object) -> str:
    """Strip spaces and upper-case a section letter; digits are kept as text (``"01"``)."""
    return "".join(str(value).split()).upper()


class IndustryCatalogue:
    """Lookup of GB/T 4754-2017 codes by code text.

    Parameters
    ----------
    industries
        Every code of the classification, each once.
    """

    def __init__(self, industries: list[Industry]) -> None:
        self._by_code = {industry.code: industry for industry in industries}

    def __len__(self) -> int:
        return len(self._by_code)

    def __contains__(self, code: object) -> bool:
        return normalise_industry_code(code) in self._by_code

    def lookup(self, code: str) -> Industry | None:
        """Return the industry with ``code`` (spaces ignored, letter case-insensitive), or None."""
        return self._by_code.get(normalise_industry_code(code))

    def validate(self, code: str, *, field: str = "industry_code") -> Industry:
        """Look up a code and raise when it is not in the classification.

        Parameters
        ----------
        code
            Section letter, 2-, 3- or 4-digit code.
        field
            Name of the input field, quoted in the message and stored on the error.

        Returns
        -------
        Industry

        Raises
        ------
        UnknownIndustryCodeError
            If the code is not a GB/T 4754-2017 code.
        """
        industry = self.lookup(code)
        if industry is None:
            raise UnknownIndustryCodeError(
                f"{field} {normalise_industry_code(code)!r} is not a GB/T 4754-2017 code",
                field=field,
                code=normalise_industry_code(code),
            )
        return industry

    def path(self, code: str) -> list[Industry]:
        """List the hierarchy of a code from its section down to the code itself.

        Parameters
        ----------
        code
            Any valid code.

        Returns
        -------
        list of Industry
            Section, division, group and class as far as ``code`` goes, e.g.
            ``6513`` gives I, 65, 651, 6513 and ``65`` gives I, 65.

        Raises
        ------
        UnknownIndustryCodeError
            If ``code`` is not a GB/T 4754-2017 code.
        """
        industry = self.validate(code)
        if industry.level == 1:
            return [industry]

        prefixes = [industry.section, *(industry.code[:length] for length in (2, 3, 4))]
        ancestors = prefixes[: industry.level]
        return [self._by_code[prefix] for prefix in ancestors]

    def section_of(self, code: str) -> str:
        """Return the section letter of a valid code."""
        return self.validate(code).section


def _read_rows(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except OSError as err:
        raise DataSourceError(f"cannot read industry codes {path}: {err}") from err
    missing = [column for column in _COLUMNS if column not in table.columns]
    if missing:
        raise DataSourceError(f"{path} lacks columns {missing}; found {list(table.columns)}")
    stripped: pd.DataFrame = table[_COLUMNS].apply(lambda column: column.str.strip())
    return stripped


def _repair_miscoded_rows(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    for (listed_code, name), class_code in _MISCODED_ROWS.items():
        wrong = (table["code"] == listed_code) & (table["name"] == name)
        if wrong.any() and class_code not in set(table["code"]):
            logger.warning(
                "industry row %r %r is class %r listed under its group code; restored",
                listed_code,
                name,
                class_code,
            )
            table.loc[wrong, ["code", "level", "class"]] = [class_code, "4", class_code]
    return table


def _industries_from_rows(table: pd.DataFrame) -> list[Industry]:
    rows = table[["code", "name", "level", "section"]].to_numpy().tolist()
    industries = [
        Industry(str(code), str(name), int(level), str(section))
        for code, name, level, section in rows
    ]
    listed = {industry.code for industry in industries}

    # A group the standard does not subdivide is listed only as its class ending in 0.
    for industry in list(industries):
        group = industry.code[:3]
        if industry.level == 4 and group not in listed and industry.code.endswith("0"):
            industries.append(Industry(group, industry.name, 3, industry.section))
            listed.add(group)
    return industries


def load_industry_catalogue(data_dir: Path) -> IndustryCatalogue:
    """Load GB/T 4754-2017 from ``data_dir / INDUSTRY_FILE``.

    Parameters
    ----------
    data_dir
        The data folder containing ``industry_gbt4754_2017/gbt4754_2017.csv``.

    Returns
    -------
    IndustryCatalogue
        With the current data file: 20 sections, 97 divisions, 473 groups
        (198 derived) and 1,381 classes (3741 restored).

    Raises
    ------
    DataSourceError
        If the file is missing, lacks a column, or lists a code twice after repair.
    """
    path = data_dir / INDUSTRY_FILE
    table = _repair_miscoded_rows(_read_rows(path))

    duplicated = sorted(set(table.loc[table["code"].duplicated(), "code"]))
    if duplicated:
        raise DataSourceError(f"{path} lists codes {duplicated} more than once")

    industries = _industries_from_rows(table)
    logger.info("loaded %d GB/T 4754-2017 codes from %s", len(industries), path)
    return IndustryCatalogue(industries)
