"""Ordinal education levels shared by postings and seekers."""

from enum import IntEnum


class EducationLevel(IntEnum):
    """Education on an ordinal scale; ``ANY`` on a posting means no requirement."""

    ANY = 0
    JUNIOR_HIGH = 1  # 初中及以下
    SENIOR_HIGH = 2  # 高中 / 中专 / 中技 / 职高
    COLLEGE = 3  # 大专
    BACHELOR = 4  # 本科
    MASTER = 5  # 硕士
    DOCTOR = 6  # 博士


EDUCATION_LABELS_ZH: dict[EducationLevel, str] = {
    EducationLevel.ANY: "学历不限",
    EducationLevel.JUNIOR_HIGH: "初中及以下",
    EducationLevel.SENIOR_HIGH: "高中/中专",
    EducationLevel.COLLEGE: "大专",
    EducationLevel.BACHELOR: "本科",
    EducationLevel.MASTER: "硕士",
    EducationLevel.DOCTOR: "博士",
}
