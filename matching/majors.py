"""University majors mapped to occupations, for the graduate zone.

The data folder contains no major catalogue, so this module carries a small mapping
built by hand and labelled as such. Its keys are the 专业类 (major classes, 4-digit
codes) of the 普通高等学校本科专业目录 (Ministry of Education undergraduate major
catalogue, 2020 edition), grouped under their 学科门类 (2-digit discipline codes).
Its values are code prefixes of the 2022 occupation classification
(中华人民共和国职业分类大典, CSCO 2022): a 中类 such as ``2-05`` or a 小类 such as
``2-02-10``. A major class maps to the occupations that graduates of that class
usually enter. That judgement is an assumption, not a published crosswalk.

Major names (the simulation's ``major`` column, or a bureau's records) are looked
up first as a catalogue major name with its 6-digit code, then by the first four
digits of a code given as the major itself.
"""

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo.errors import DoorstepError

logger = logging.getLogger(__name__)

DISCIPLINES: dict[str, str] = {
    "01": "哲学",
    "02": "经济学",
    "03": "法学",
    "04": "教育学",
    "05": "文学",
    "06": "历史学",
    "07": "理学",
    "08": "工学",
    "09": "农学",
    "10": "医学",
    "12": "管理学",
    "13": "艺术学",
}
"""学科门类 of the undergraduate catalogue by 2-digit code (11 军事学 has no civilian majors)."""


@dataclass(frozen=True, slots=True)
class MajorClass:
    """A 专业类 of the undergraduate catalogue with the CSCO 2022 prefixes it maps to."""

    code: str
    name: str
    occupation_prefixes: tuple[str, ...]

    @property
    def discipline(self) -> str:
        """Return the 学科门类 name of the class, e.g. ``工学`` for ``0809``."""
        return DISCIPLINES[self.code[:2]]


def _classes(*rows: tuple[str, str, tuple[str, ...]]) -> dict[str, MajorClass]:
    return {code: MajorClass(code, name, prefixes) for code, name, prefixes in rows}


MAJOR_CLASSES: dict[str, MajorClass] = _classes(
    ("0101", "哲学类", ("2-10", "3-01")),
    ("0201", "经济学类", ("2-06-01", "2-06-07")),
    ("0202", "财政学类", ("2-06-01", "3-01")),
    ("0203", "金融学类", ("2-06-09", "2-06-10", "2-06-11", "4-05")),
    ("0204", "经济与贸易类", ("2-06-07", "4-01-03")),
    ("0301", "法学类", ("2-07", "3-03")),
    ("0302", "政治学类", ("3-01",)),
    ("0303", "社会学类", ("2-07-11", "3-01-04")),
    ("0305", "马克思主义理论类", ("2-08", "3-01")),
    ("0401", "教育学类", ("2-08", "4-13-04")),
    ("0402", "体育学类", ("2-09-07", "4-14-05")),
    ("0501", "中国语言文学类", ("2-10-02", "2-08-02")),
    ("0502", "外国语言文学类", ("2-08-02", "2-10")),
    ("0503", "新闻传播学类", ("2-10-01", "2-10-02", "2-10-04")),
    ("0601", "历史学类", ("2-10-08", "2-08-02")),
    ("0701", "数学类", ("2-08-02", "2-06-01", "2-02-38")),
    ("0702", "物理学类", ("2-01", "2-08-02")),
    ("0703", "化学类", ("2-01", "2-02-06")),
    ("0705", "地理科学类", ("2-02-02", "2-02-37")),
    ("0710", "生物科学类", ("2-01", "2-05-07")),
    ("0711", "心理学类", ("4-14-02", "2-08")),
    ("0712", "统计学类", ("2-06-01", "2-02-38")),
    ("0802", "机械类", ("2-02-07", "6-20", "6-21")),
    ("0803", "仪器类", ("2-02-29", "6-26")),
    ("0804", "材料类", ("2-02-05", "2-02-19")),
    ("0805", "能源动力类", ("2-02-12",)),
    ("0806", "电气类", ("2-02-11", "2-02-12", "6-24")),
    ("0807", "电子信息类", ("2-02-09", "2-02-10", "6-25")),
    ("0808", "自动化类", ("2-02-07", "2-02-11")),
    ("0809", "计算机类", ("2-02-10", "2-02-38", "4-04-05")),
    ("0810", "土木类", ("2-02-18", "6-29")),
    ("0811", "水利类", ("2-02-21",)),
    ("0812", "测绘类", ("2-02-02",)),
    ("0813", "化工与制药类", ("2-02-06", "6-11", "6-12")),
    ("0818", "交通运输类", ("2-02-15", "2-02-17", "4-02")),
    ("0820", "航空航天类", ("2-02-08", "2-02-16", "6-23")),
    ("0825", "环境科学与工程类", ("2-02-27", "4-09")),
    ("0827", "食品科学与工程类", ("6-02", "2-02-31")),
    ("0828", "建筑类", ("2-02-18", "2-02-37")),
    ("0829", "安全科学与工程类", ("2-02-28",)),
    ("0901", "植物生产类", ("2-03", "5-01")),
    ("0904", "动物医学类", ("2-03-06",)),
    ("1002", "临床医学类", ("2-05-01",)),
    ("1003", "口腔医学类", ("2-05-01",)),
    ("1004", "公共卫生与预防医学类", ("2-05-05", "4-14-04")),
    ("1005", "中医学类", ("2-05-02",)),
    ("1007", "药学类", ("2-05-06", "6-12")),
    ("1010", "医学技术类", ("2-05-07", "4-14-01")),
    ("1011", "护理学类", ("2-05-08",)),
    ("1201", "管理科学与工程类", ("2-02-30", "2-06-01")),
    ("1202", "工商管理类", ("2-06-03", "2-06-07", "2-06-08", "4-01-02", "4-07-02", "4-07-03")),
    ("1204", "公共管理类", ("3-01", "4-07-03")),
    ("1205", "图书情报与档案管理类", ("2-10-06", "3-01")),
    ("1206", "物流管理与工程类", ("4-02",)),
    ("1208", "电子商务类", ("4-01-06", "2-06-07")),
    ("1209", "旅游管理类", ("4-07-04", "4-03")),
    ("1302", "音乐与舞蹈学类", ("2-09-02",)),
    ("1303", "戏剧与影视学类", ("2-09-01", "2-09-03", "4-13-02")),
    ("1304", "美术学类", ("2-09-05", "2-09-06")),
    ("1305", "设计学类", ("2-09-06", "2-02-34")),
)
"""专业类 by 4-digit code: a subset of the 2020 catalogue's 93 classes, chosen to cover the
majors of Xi'an's universities that the simulation draws and their neighbours."""

MAJOR_CODES: dict[str, str] = {
    "计算机科学与技术": "080901",
    "软件工程": "080902",
    "网络工程": "080903",
    "电子信息工程": "080701",
    "通信工程": "080703",
    "机械设计制造及其自动化": "080202",
    "电气工程及其自动化": "080601",
    "自动化": "080801",
    "航空航天工程": "082001",
    "土木工程": "081001",
    "环境工程": "082502",
    "会计学": "120203K",
    "财务管理": "120204",
    "市场营销": "120202",
    "人力资源管理": "120206",
    "工商管理": "120201K",
    "临床医学": "100201K",
    "护理学": "101101",
    "药学": "100701",
    "汉语言文学": "050101",
    "英语": "050201",
    "新闻学": "050301",
    "数学与应用数学": "070101",
    "统计学": "071201",
    "视觉传达设计": "130502",
    "法学": "030101K",
    "金融学": "020301K",
    "物流管理": "120601",
}
"""Catalogue code of common major names (2020 edition; a trailing K marks a controlled major)."""


class UnknownMajorError(DoorstepError, LookupError):
    """A major name or code that the mapping does not cover."""


def major_class(major: str) -> MajorClass:
    """Return the 专业类 of a major given by catalogue name or by its code.

    Parameters
    ----------
    major
        A name of `MAJOR_CODES` (``软件工程``), a 6-digit major code (``080902``,
        an optional trailing ``K`` or ``T``) or a 4-digit class code (``0809``).

    Raises
    ------
    UnknownMajorError
        When neither the name nor the code's first four digits are mapped.
    """
    text = major.strip()
    code = MAJOR_CODES.get(text, text)
    found = MAJOR_CLASSES.get(code[:4]) if code[:4].isdigit() else None
    if found is None:
        raise UnknownMajorError(
            f"major {major!r} is not in the major-to-occupation mapping; expected a name of"
            " matching.majors.MAJOR_CODES or a catalogue code whose class is mapped"
        )
    return found


def occupation_prefixes(major: str) -> tuple[str, ...]:
    """Return the CSCO 2022 code prefixes a major leads to; empty for an unknown or blank major."""
    if not major.strip():
        return ()
    try:
        return major_class(major).occupation_prefixes
    except UnknownMajorError:
        logger.warning("major %r is not mapped to occupations; no major match for it", major)
        return ()


def major_fits(major: str, occupation_codes: pd.Series) -> npt.NDArray[np.bool_]:
    """Return which occupation codes lie under one of the major's prefixes.

    Parameters
    ----------
    major
        As for :func:`major_class`; an unknown or blank major fits nothing.
    occupation_codes
        CSCO 2022 codes ``D-DD-DD-DD``; empty or missing codes fit nothing.
    """
    codes = occupation_codes.fillna("").astype(str)
    fits = np.zeros(len(codes), dtype=bool)
    for prefix in occupation_prefixes(major):
        fits |= (codes.str.startswith(f"{prefix}-") | (codes == prefix)).to_numpy(dtype=bool)
    return fits
