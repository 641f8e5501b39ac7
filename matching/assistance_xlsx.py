"""Excel workbooks of the assistance service: export of lists and ledgers, import of targets.

Exports are .xlsx files with Chinese column headers written by openpyxl; the caller
masks personal fields before they reach a row. Imports read a target list (one target
per row) and report every problem as (row, column, rule) without repeating the cell's
value, because the cells hold personal information.
"""

import io
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from openpyxl.utils.exceptions import InvalidFileException

from geo.errors import DoorstepError

logger = logging.getLogger(__name__)

IMPORT_COLUMNS: dict[str, tuple[str, bool]] = {
    "seeker_id": ("求职者编号", True),
    "officer_id": ("援助员账号", True),
    "category": ("援助类别", False),
}
"""Import fields by name: the Chinese header that names the column, and whether it is required."""

MAX_IMPORT_ROWS = 2_000
"""Rows of one import; a larger list is split into several files."""

MAX_IMPORT_BYTES = 1_000_000
"""Bytes of one uploaded workbook; a 2,000-row target list takes well under 100 kB.

The service's request body limit (``max_body_bytes``, 1 MiB by default) applies first.
"""

MAX_SHEET_ROWS = 10 * MAX_IMPORT_ROWS
"""Worksheet rows read, blank ones included, before an upload is rejected as too long.

A zipped sheet of identical rows is tiny but expands to hundreds of thousands of rows.
"""

# Excel refuses a cell that starts with these as text would be read as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@")


class WorkbookError(DoorstepError, ValueError):
    """The upload is not a readable .xlsx workbook, or its header row is wrong."""


@dataclass(frozen=True, slots=True)
class Sheet:
    """One worksheet to export: title, Chinese headers and rows of cell values."""

    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One data row of a target list: its 1-based worksheet row number and stripped cells."""

    row: int
    values: dict[str, str]


@dataclass(frozen=True, slots=True)
class ImportIssue:
    """A problem in one cell: the worksheet row, the column header and the rule it breaks."""

    row: int
    column: str
    rule: str


def write_workbook(sheets: Sequence[Sheet]) -> bytes:
    """Return an .xlsx file with one worksheet per sheet, headers in bold row 1."""
    workbook = Workbook()
    for default in list(workbook.worksheets):
        workbook.remove(default)
    for sheet in sheets:
        worksheet = workbook.create_sheet(sheet.title)
        worksheet.append(list(sheet.headers))
        for cell in worksheet[1]:
            cell.font = Font(bold=True)
        for row in sheet.rows:
            worksheet.append([_safe_cell(value) for value in row])
        worksheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _safe_cell(value: Any) -> Any:
    """Return a cell value that a spreadsheet cannot run as a formula (CSV/formula injection)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def read_target_rows(data: bytes) -> list[ImportRow]:
    """Read the target rows of the first worksheet of an .xlsx upload.

    Raises
    ------
    WorkbookError
        The upload is empty, too large, not an .xlsx file, lacks a required header,
        or has more than MAX_IMPORT_ROWS data rows.
    """
    if not data:
        raise WorkbookError("the upload is empty; send an .xlsx file")
    if len(data) > MAX_IMPORT_BYTES:
        raise WorkbookError(
            f"the upload has {len(data)} bytes; at most {MAX_IMPORT_BYTES} are accepted"
        )
    try:
        rows = _sheet_rows(data)
    except WorkbookError:
        raise
    except _UNREADABLE as err:
        raise WorkbookError(
            f"the upload is not a readable .xlsx workbook: {type(err).__name__}"
        ) from err
    if not rows:
        raise WorkbookError("the first worksheet is empty; row 1 must hold the column headers")
    positions = _header_positions(rows[0])
    found: list[ImportRow] = []
    for number, cells in enumerate(rows[1:], start=2):
        values = {name: _cell_text(cells, index) for name, index in positions.items()}
        if any(values.values()):
            found.append(ImportRow(number, values))
    if len(found) > MAX_IMPORT_ROWS:
        raise WorkbookError(
            f"the worksheet has {len(found)} target rows; at most {MAX_IMPORT_ROWS} per import"
        )
    return found


# What openpyxl and the XML parser under it raise for a damaged or hostile file: a bad
# zip, missing parts, cut or malformed XML (SyntaxError covers ParseError), forbidden
# entities (defusedxml raises ValueError subclasses) and a workbook without sheets.
_UNREADABLE = (
    InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError, IndexError,
    TypeError, SyntaxError,
)  # fmt: skip


def _sheet_rows(data: bytes) -> list[tuple[Any, ...]]:
    """Return the first worksheet's rows, at most MAX_SHEET_ROWS of them.

    The sheet's declared dimension is ignored, because openpyxl's read-only mode would
    otherwise stop at it and drop later rows without a word.
    """
    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()
        rows: list[tuple[Any, ...]] = []
        for cells in sheet.iter_rows(values_only=True):
            if len(rows) == MAX_SHEET_ROWS:
                raise WorkbookError(
                    f"the worksheet has more than {MAX_SHEET_ROWS} rows; at most"
                    f" {MAX_IMPORT_ROWS} target rows are accepted per import"
                )
            rows.append(cells)
        return rows
    finally:
        workbook.close()


def _header_positions(header: Sequence[Any]) -> dict[str, int]:
    texts = [str(cell).strip() if cell is not None else "" for cell in header]
    positions: dict[str, int] = {}
    for name, (label, required) in IMPORT_COLUMNS.items():
        if label in texts:
            positions[name] = texts.index(label)
        elif required:
            raise WorkbookError(
                f"row 1 lacks the column header {label!r} ({name}); expected headers"
                f" {[label for label, _ in IMPORT_COLUMNS.values()]}"
            )
    return positions


def _cell_text(cells: Sequence[Any], index: int) -> str:
    if index >= len(cells) or cells[index] is None:
        return ""
    return str(cells[index]).strip()


def header_of(name: str) -> str:
    """Return the Chinese column header of an import field."""
    return IMPORT_COLUMNS[name][0]
