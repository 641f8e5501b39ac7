"""Bulk anchor import: reading CSV and xlsx, the dry-run report and all-or-nothing apply."""

from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from stdnum.cn import uscc

from geo.anchor_import import (
    ImportRejectedError,
    apply_import,
    check_anchor_rows,
    read_anchor_table,
)
from geo.anchor_states import AnchorState, StaffScope
from geo.crs import from_wgs84
from geo.industry import IndustryCatalogue
from geo.regions import Regions
from geo.zones import DevelopmentZone

NOW = datetime(2024, 5, 6, tzinfo=UTC)
SCOPE = StaffScope(frozenset({"610103", "610113"}))


def _code(first17: str) -> str:
    return first17 + uscc.calc_check_digit(first17)


GOOD_CODE = _code("91610103MA6W00001")
OTHER_CODE = _code("91610103MA6W00002")
BAD_CHECK = GOOD_CODE[:-1] + ("0" if GOOD_CODE[-1] != "0" else "1")
GCJ_LON, GCJ_LAT = from_wgs84(108.9402, 34.2600, "gcj02")

HEADER = ["单位名称", "统一社会信用代码", "经度", "纬度", "坐标系", "区县", "行业代码", "联系电话"]
ROWS = [
    # row 2: good, WGS84 near 钟楼
    [
        "钟楼软件有限公司",
        GOOD_CODE,
        "108.9402",
        "34.2600",
        "wgs84",
        "碑林区",
        "6513",
        "029-87654321",
    ],
    # row 3: good, GCJ-02 of the same point, no district given
    ["钟楼设计有限公司", "", f"{GCJ_LON:.7f}", f"{GCJ_LAT:.7f}", "gcj02", "", "6520", ""],
    # row 4: bad check digit
    ["甲公司", BAD_CHECK, "108.9402", "34.2600", "wgs84", "碑林区", "", ""],
    # row 5: 雁塔 point declared 碑林
    ["乙公司", "", "108.9480", "34.2230", "wgs84", "碑林区", "", ""],
    # row 6: swapped axes
    ["丙公司", "", "34.2600", "108.9402", "wgs84", "碑林区", "", ""],
    # row 7: unknown industry code
    ["丁公司", "", "108.9402", "34.2600", "wgs84", "碑林区", "9999", ""],
    # row 8: unknown coord_sys
    ["戊公司", "", "108.9402", "34.2600", "mercator", "碑林区", "", ""],
    # row 9: out of scope (新城区 610102)
    ["己公司", "", "109.0000", "34.2700", "wgs84", "新城区", "", ""],
    # row 10: credit code repeated from row 2
    ["庚公司", GOOD_CODE, "108.9402", "34.2600", "wgs84", "碑林区", "", ""],
    # row 11: mobile number
    ["辛公司", OTHER_CODE, "108.9402", "34.2600", "wgs84", "碑林区", "", "13912345678"],
]
EXPECTED = [
    (4, "credit_code"),
    (5, "district"),
    (6, "lon"),
    (7, "industry_code"),
    (8, "coord_sys"),
    (9, "district"),
    (10, "credit_code"),
    (11, "contact_phone"),
]


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    pd.DataFrame(rows, columns=HEADER).to_csv(path, index=False, encoding="utf-8")
    return path


def _write_xlsx(path: Path, rows: list[list[str]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


@pytest.mark.parametrize("writer", [_write_csv, _write_xlsx])
def test_report_lists_expected_cells(
    tmp_path: Path,
    writer: object,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
) -> None:
    suffix = ".csv" if writer is _write_csv else ".xlsx"
    path = writer(tmp_path / f"anchors{suffix}", ROWS)  # type: ignore[operator]
    table = read_anchor_table(path)
    report = check_anchor_rows(
        table, regions=regions, zones=zones, industries=industries, scope=SCOPE
    )
    frame = report.to_frame()
    assert list(zip(frame["row"], frame["field"], strict=True)) == EXPECTED
    assert sorted(report.accepted) == [2, 3]
    assert not report.ok


def test_reasons_name_rule(
    tmp_path: Path, regions: Regions, zones: list[DevelopmentZone], industries: IndustryCatalogue
) -> None:
    table = read_anchor_table(_write_csv(tmp_path / "a.csv", ROWS))
    report = check_anchor_rows(
        table, regions=regions, zones=zones, industries=industries, scope=SCOPE
    )
    reasons = dict(zip(report.to_frame()["row"], report.to_frame()["reason"], strict=True))
    assert "expected check character" in reasons[4]
    assert "碑林区" in reasons[5]
    assert "expected lon 108.9402, lat 34.26" in reasons[6]
    assert "'9999' is not a GB/T 4754-2017 code" in reasons[7]
    assert "mercator" in reasons[8]
    assert "out of scope" in reasons[9]
    assert "duplicates row 2" in reasons[10]
    assert "13912345678" not in reasons[11]


def test_report_reasons_in_chinese(
    tmp_path: Path, regions: Regions, zones: list[DevelopmentZone], industries: IndustryCatalogue
) -> None:
    table = read_anchor_table(_write_csv(tmp_path / "a.csv", ROWS))
    report = check_anchor_rows(
        table, regions=regions, zones=zones, industries=industries, scope=SCOPE
    )
    frame = report.to_frame()
    assert list(frame.columns) == ["row", "field", "rule", "reason", "原因"]
    rules = dict(zip(frame["row"], frame["rule"], strict=True))
    assert rules == {
        4: "check_digit",
        5: "outside_district",
        6: "swapped_axes",
        7: "unknown_industry",
        8: "unknown_coord_sys",
        9: "out_of_scope",
        10: "duplicate_credit_code",
        11: "mobile_phone",
    }
    reasons_zh = dict(zip(frame["row"], frame["原因"], strict=True))
    assert reasons_zh[4] == f"统一社会信用代码校验位错误，应为 {GOOD_CODE[-1]}"
    assert reasons_zh[5] == "坐标不在所填区县（碑林区）范围内，实际位于雁塔区"
    assert reasons_zh[6] == "经纬度疑似颠倒，请交换后重试"
    assert reasons_zh[7] == "行业代码“9999”不是 GB/T 4754-2017 中的代码"
    assert reasons_zh[8] == "坐标系“mercator”无效，须为 wgs84、gcj02 或 bd09"
    assert reasons_zh[9] == "坐标不在您负责的区县或开发区范围内"
    assert reasons_zh[10] == "统一社会信用代码与第 2 行重复"
    assert reasons_zh[11] == "联系电话须为单位电话，不能填写手机号码"
    assert "13912345678" not in reasons_zh[11]


def test_gcj02_row_converted(
    tmp_path: Path, regions: Regions, zones: list[DevelopmentZone], industries: IndustryCatalogue
) -> None:
    table = read_anchor_table(_write_csv(tmp_path / "a.csv", ROWS[:2]))
    report = check_anchor_rows(
        table, regions=regions, zones=zones, industries=industries, scope=SCOPE
    )
    assert report.ok
    change = report.accepted[3]
    assert change.lon == pytest.approx(108.9402, abs=1e-6)
    assert change.lat == pytest.approx(34.2600, abs=1e-6)


def test_file_coord_sys_default(
    tmp_path: Path, regions: Regions, zones: list[DevelopmentZone], industries: IndustryCatalogue
) -> None:
    rows = [[*ROWS[0][:4], "", *ROWS[0][5:]]]
    table = read_anchor_table(_write_csv(tmp_path / "a.csv", rows))
    missing = check_anchor_rows(
        table, regions=regions, zones=zones, industries=industries, scope=SCOPE
    )
    assert [(error.row, error.field) for error in missing.rejected] == [(2, "coord_sys")]
    given = check_anchor_rows(
        table, regions=regions, zones=zones, industries=industries, scope=SCOPE, coord_sys="wgs84"
    )
    assert given.ok


def test_apply_all_or_nothing(
    tmp_path: Path, regions: Regions, zones: list[DevelopmentZone], industries: IndustryCatalogue
) -> None:
    options = {"regions": regions, "zones": zones, "industries": industries, "scope": SCOPE}
    bad = check_anchor_rows(read_anchor_table(_write_csv(tmp_path / "b.csv", ROWS)), **options)  # type: ignore[arg-type]
    with pytest.raises(ImportRejectedError):
        apply_import(bad, actor="staff-1", reason="批量导入", now=NOW, **options)  # type: ignore[arg-type]

    good = check_anchor_rows(read_anchor_table(_write_csv(tmp_path / "g.csv", ROWS[:2])), **options)  # type: ignore[arg-type]
    created = apply_import(good, actor="staff-1", reason="批量导入", now=NOW, **options)  # type: ignore[arg-type]
    assert [record.state for record, _ in created] == [AnchorState.DRAFT] * 2
    assert created[0][0].credit_code == GOOD_CODE
    assert created[1][0].industry_code == "6520"


def test_unknown_suffix_rejected(tmp_path: Path) -> None:
    path = tmp_path / "anchors.txt"
    path.write_text("name\n", encoding="utf-8")
    with pytest.raises(ImportRejectedError, match=r"csv or \.xlsx"):
        read_anchor_table(path)
