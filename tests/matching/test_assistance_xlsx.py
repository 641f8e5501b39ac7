"""Excel export and target-list import of the assistance service."""

import io
import re
import zipfile
from collections.abc import Callable

import pytest
from openpyxl import Workbook, load_workbook

from matching.assistance_xlsx import (
    MAX_IMPORT_ROWS,
    MAX_SHEET_ROWS,
    Sheet,
    WorkbookError,
    read_target_rows,
    write_workbook,
)


def _upload(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_export_has_chinese_headers() -> None:
    data = write_workbook([Sheet("131台账", ["求职者编号", "姓名"], [["sim-1", "张*"]])])

    sheet = load_workbook(io.BytesIO(data))["131台账"]
    assert [cell.value for cell in sheet[1]] == ["求职者编号", "姓名"]
    assert [cell.value for cell in sheet[2]] == ["sim-1", "张*"]
    assert sheet["A1"].font.bold


def test_export_escapes_formulas() -> None:
    data = write_workbook([Sheet("清单", ["岗位名称"], [['=HYPERLINK("x")'], ["+1"], ["普工"]])])

    sheet = load_workbook(io.BytesIO(data))["清单"]
    assert sheet["A2"].value == '\'=HYPERLINK("x")'
    assert sheet["A3"].value == "'+1"
    assert sheet["A4"].value == "普工"


def test_import_reads_rows_by_header() -> None:
    data = _upload(
        [
            ["援助类别", "求职者编号", "备注", "援助员账号"],
            ["残疾人", "sim-000001", "x", "staff-1"],
            [None, None, None, None],
            [None, " sim-000002 ", None, "staff-2"],
        ]
    )

    rows = read_target_rows(data)

    assert [row.row for row in rows] == [2, 4]
    assert rows[0].values == {
        "seeker_id": "sim-000001",
        "officer_id": "staff-1",
        "category": "残疾人",
    }
    assert rows[1].values["seeker_id"] == "sim-000002"
    assert rows[1].values["category"] == ""


def test_import_missing_header() -> None:
    with pytest.raises(WorkbookError, match="援助员账号"):
        read_target_rows(_upload([["求职者编号"], ["sim-1"]]))


def test_import_not_xlsx() -> None:
    with pytest.raises(WorkbookError, match=r"not a readable \.xlsx"):
        read_target_rows(b"seeker_id,officer_id\nsim-1,staff-1\n")


def test_import_empty() -> None:
    with pytest.raises(WorkbookError, match="empty"):
        read_target_rows(b"")


def test_import_too_many_rows() -> None:
    rows: list[list[object]] = [["求职者编号", "援助员账号"]]
    rows += [[f"sim-{i}", "staff-1"] for i in range(MAX_IMPORT_ROWS + 1)]

    with pytest.raises(WorkbookError, match=f"at most {MAX_IMPORT_ROWS}"):
        read_target_rows(_upload(rows))


def _with_part(data: bytes, name: str, change: Callable[[bytes], bytes]) -> bytes:
    """Return the workbook with one zip part rewritten by ``change``."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item.filename)
            target.writestr(item, change(content) if item.filename == name else content)
    return buffer.getvalue()


SHEET = "xl/worksheets/sheet1.xml"
TARGETS = [["求职者编号", "援助员账号"], ["sim-1", "staff-1"], ["sim-2", "staff-1"]]


@pytest.mark.parametrize(
    ("part", "change"),
    [
        (SHEET, lambda content: content[: len(content) // 2]),
        (SHEET, lambda content: b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>' + content),
        ("xl/workbook.xml", lambda content: re.sub(rb"<sheets>.*</sheets>", b"<sheets/>", content)),
    ],
    ids=["cut-xml", "entity", "no-sheet"],
)
def test_import_damaged_workbook(part: str, change: Callable[[bytes], bytes]) -> None:
    data = _with_part(_upload(TARGETS), part, change)

    with pytest.raises(WorkbookError, match=r"not a readable \.xlsx"):
        read_target_rows(data)


def test_import_ignores_declared_dimension() -> None:
    data = _with_part(
        _upload([*TARGETS, ["sim-3", "staff-1"]]),
        SHEET,
        lambda content: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:B2"', content),
    )

    assert [row.values["seeker_id"] for row in read_target_rows(data)] == [
        "sim-1",
        "sim-2",
        "sim-3",
    ]


def test_import_too_many_sheet_rows() -> None:
    rows: list[list[object]] = [["求职者编号", "援助员账号"]]
    rows += [["", ""] for _ in range(MAX_SHEET_ROWS)]

    with pytest.raises(WorkbookError, match=f"more than {MAX_SHEET_ROWS} rows"):
        read_target_rows(_upload(rows))
