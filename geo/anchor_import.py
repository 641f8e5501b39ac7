"""Bulk import of employer anchors from CSV or Excel, checked in full before anything is applied.

Columns (English name, or the Chinese header in brackets):

==========================  =====================================================
``name`` (单位名称)           employer name, required
``credit_code`` (统一社会信用代码)  optional; checked digit by GB 32100-2015
``lon`` (经度), ``lat`` (纬度)  the employer's point, required
``coord_sys`` (坐标系)        ``wgs84``, ``gcj02`` or ``bd09``; per row, or for the
                             whole file through ``check_anchor_rows(coord_sys=...)``
``district`` (区县)           district name (碑林区, 碑林) or 6-digit code; optional,
                             but when given the point must lie inside it
``zone`` (开发区)             development zone name or alias, optional
``industry_code`` (行业代码)  GB/T 4754-2017 code, optional
``address`` (地址)            optional
``size`` (规模)               micro/small/medium/large or 微型/小型/中型/大型
``key_enterprise`` (重点企业)  是/否, 1/0, true/false; empty is 否
``above_scale_industrial`` (规上工业企业)  as ``key_enterprise``
``contact_role`` (联系部门)   a role such as 人事部, optional
``contact_phone`` (联系电话)  organisation landline or 400/800 number, optional
``shift_times`` (班次)        ``HH:MM-HH:MM`` shifts separated by ``;`` ``；`` or ``、``
==========================  =====================================================

Row numbers in the report count as a spreadsheet does: the header is row 1,
the first data row is row 2.
"""

import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import pandas as pd

from geo.anchor_checks import check_change
from geo.anchor_fields import FieldError
from geo.anchor_rules import format_message_zh
from geo.anchor_states import OutOfScopeError, StaffScope
from geo.credit_code import InvalidCreditCodeError, validate_credit_code
from geo.crs import CoordSys, axes_look_swapped, parse_coord_sys
from geo.curation import (
    AnchorChange,
    AnchorRecord,
    AnchorValidationError,
    AnchorVersion,
    blank_record,
    new_anchor,
)
from geo.errors import DoorstepError, UnknownCoordSysError
from geo.industry import IndustryCatalogue
from geo.regions import Regions
from geo.zones import DevelopmentZone, match_zone

logger = logging.getLogger(__name__)

COLUMN_ALIASES: dict[str, str] = {
    "单位名称": "name",
    "企业名称": "name",
    "统一社会信用代码": "credit_code",
    "经度": "lon",
    "纬度": "lat",
    "坐标系": "coord_sys",
    "区县": "district",
    "开发区": "zone",
    "行业代码": "industry_code",
    "地址": "address",
    "规模": "size",
    "重点企业": "key_enterprise",
    "规上工业企业": "above_scale_industrial",
    "联系部门": "contact_role",
    "联系电话": "contact_phone",
    "班次": "shift_times",
}
"""Chinese headers and the column names they stand for."""

IMPORT_COLUMNS = [
    "name",
    "credit_code",
    "lon",
    "lat",
    "coord_sys",
    "district",
    "zone",
    "industry_code",
    "address",
    "size",
    "key_enterprise",
    "above_scale_industrial",
    "contact_role",
    "contact_phone",
    "shift_times",
]

REPORT_COLUMNS = ["row", "field", "rule", "reason", "原因"]
"""Columns of :meth:`ImportReport.to_frame`: ``reason`` in English, ``原因`` in zh-CN."""

# Curation field names and the import column each one is reported under.
_REPORT_FIELD = {"pin": "lon", "district_code": "district", "zone_key": "zone"}

_TRUE = frozenset({"是", "1", "true", "yes", "y"})
_FALSE = frozenset({"否", "0", "false", "no", "n", ""})
_SHIFT_SEPARATORS = re.compile(r"[;；、,，]")


class ImportRejectedError(DoorstepError, ValueError):
    """:func:`apply_import` was called with a report that has rejected rows."""


@dataclass(frozen=True, slots=True)
class RowError:
    """One rejected cell: the file row (header is row 1), the column and the broken rule.

    ``rule`` is a code of :data:`geo.anchor_rules.RULE_MESSAGES_ZH`, ``reason``
    the English message and ``message_zh`` the message for bureau staff.
    """

    row: int
    field: str
    rule: str
    reason: str
    message_zh: str

    @classmethod
    def of(
        cls, row: int, field: str, reason: str, *, rule: str, **rule_params: object
    ) -> "RowError":
        """Build the error of one rule, filling its zh-CN message from ``rule_params``."""
        return cls(row, field, rule, reason, format_message_zh(rule, field=field, **rule_params))


@dataclass(slots=True)
class ImportReport:
    """The outcome of checking an import table.

    ``accepted`` maps the file row to the validated change with the point in
    WGS84 degrees, and ``rejected`` lists every broken rule of every row.
    """

    accepted: dict[int, AnchorChange] = field(default_factory=dict)
    rejected: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no row was rejected, so the import may be applied."""
        return not self.rejected

    def to_frame(self) -> pd.DataFrame:
        """Return the rejected rows as a table with :data:`REPORT_COLUMNS`, sorted by row."""
        frame = pd.DataFrame(
            [
                (error.row, error.field, error.rule, error.reason, error.message_zh)
                for error in self.rejected
            ],
            columns=REPORT_COLUMNS,
        )
        return frame.sort_values(["row", "field"], kind="stable").reset_index(drop=True)


def read_anchor_table(path: Path) -> pd.DataFrame:
    """Read an import file by its suffix (``.csv`` UTF-8, ``.xlsx``) into text columns.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`IMPORT_COLUMNS` (Chinese headers renamed, missing columns
        empty), every cell a stripped string, empty cells ``""``; the index is
        the file row number.

    Raises
    ------
    DoorstepError
        For another suffix, an unreadable file, or a file without ``name``.
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        elif suffix == ".xlsx":
            raw = pd.read_excel(path, dtype=str, keep_default_na=False, engine="openpyxl")
        else:
            raise ImportRejectedError(f"import file {path.name!r} must be .csv or .xlsx")
    except (OSError, ValueError) as err:
        raise ImportRejectedError(f"cannot read import file {path.name!r}: {err}") from err

    table = raw.rename(columns=lambda header: COLUMN_ALIASES.get(str(header).strip(), header))
    table.columns = [str(column).strip() for column in table.columns]
    if "name" not in table.columns:
        raise ImportRejectedError(
            f"import file {path.name!r} has no name (单位名称) column; found {list(raw.columns)}"
        )
    table = table.reindex(columns=IMPORT_COLUMNS, fill_value="").fillna("")
    table = table.map(lambda cell: str(cell).strip())
    table.index = pd.RangeIndex(2, len(table) + 2)
    return table


class _RowChecker:
    """Check rows one by one, remembering credit codes already seen in the file."""

    def __init__(
        self,
        regions: Regions,
        zones: list[DevelopmentZone],
        industries: IndustryCatalogue,
        scope: StaffScope,
        coord_sys: str | None,
    ) -> None:
        self.regions = regions
        self.zones = zones
        self.industries = industries
        self.scope = scope
        self.coord_sys = coord_sys
        self.credit_code_rows: dict[str, int] = {}

    def check(self, row: int, cells: dict[str, str]) -> tuple[AnchorChange | None, list[RowError]]:
        errors: list[RowError] = []
        details = self._details(row, cells, errors)
        point = self._point(row, cells, errors)
        self._check_duplicate_code(row, cells["credit_code"], errors)
        if point is None:
            errors.extend(self._field_errors(row, details))
            return None, errors

        lon, lat, system = point
        try:
            record, _ = new_anchor(
                cells["name"],
                lon,
                lat,
                actor="import-check",
                reason="import check",
                regions=self.regions,
                zones=self.zones,
                industries=self.industries,
                now=_CHECK_TIME,
                scope=self.scope,
                coord_sys=system,
                details=details,
            )
        except AnchorValidationError as err:
            errors.extend(_row_errors(row, err.errors))
            return None, errors
        except OutOfScopeError as err:
            errors.append(RowError.of(row, "district", f"out of scope: {err}", rule="out_of_scope"))
            return None, errors

        if errors:
            return None, errors
        return replace(details, lon=record.lon, lat=record.lat, coord_sys=CoordSys.WGS84), errors

    def _details(self, row: int, cells: dict[str, str], errors: list[RowError]) -> AnchorChange:
        district_code = self._district_code(row, cells["district"], errors)
        zone_key = self._zone_key(row, cells["zone"], errors)
        flags = {
            name: self._flag(row, name, cells[name], errors)
            for name in ("key_enterprise", "above_scale_industrial")
        }
        shifts = tuple(part for part in _SHIFT_SEPARATORS.split(cells["shift_times"]) if part)
        return AnchorChange(
            name=cells["name"],
            district_code=district_code,
            zone_key=zone_key,
            address=cells["address"] or None,
            credit_code=cells["credit_code"] or None,
            industry_code=cells["industry_code"] or None,
            size=cells["size"] or None,
            key_enterprise=flags["key_enterprise"],
            above_scale_industrial=flags["above_scale_industrial"],
            contact_role=cells["contact_role"] or None,
            contact_phone=cells["contact_phone"] or None,
            shift_times=shifts or None,
        )

    def _district_code(self, row: int, text: str, errors: list[RowError]) -> str | None:
        if not text:
            return None
        district = self.regions.district(text) or self.regions.district_by_name(text)
        if district is None:
            errors.append(
                RowError.of(
                    row,
                    "district",
                    f"district {text!r} is not a Xi'an district",
                    rule="unknown_district",
                    value=text,
                )
            )
            return None
        return district.code

    def _zone_key(self, row: int, text: str, errors: list[RowError]) -> str | None:
        if not text:
            return None
        zone = match_zone(text, self.zones)
        if zone is None:
            errors.append(
                RowError.of(
                    row,
                    "zone",
                    f"zone {text!r} is not a development zone",
                    rule="unknown_zone",
                    value=text,
                )
            )
            return None
        return zone.key

    def _flag(self, row: int, name: str, text: str, errors: list[RowError]) -> bool:
        value = text.lower()
        if value in _TRUE:
            return True
        if value not in _FALSE:
            errors.append(
                RowError.of(
                    row, name, f"{name} {text!r} must be 是 or 否", rule="invalid_flag", value=text
                )
            )
        return False

    def _point(
        self, row: int, cells: dict[str, str], errors: list[RowError]
    ) -> tuple[float, float, CoordSys] | None:
        system = self._coord_sys(row, cells["coord_sys"], errors)
        lon = _number(row, "lon", cells["lon"], errors)
        lat = _number(row, "lat", cells["lat"], errors)
        if system is None or lon is None or lat is None:
            return None
        if axes_look_swapped(lon, lat):
            errors.append(
                RowError.of(
                    row,
                    "lon",
                    f"longitude {lon} and latitude {lat} look swapped; swap the 经度 and 纬度 "
                    f"cells of this row (expected lon {lat}, lat {lon})",
                    rule="swapped_axes",
                )
            )
            return None
        return lon, lat, system

    def _coord_sys(self, row: int, text: str, errors: list[RowError]) -> CoordSys | None:
        name = text or self.coord_sys
        if not name:
            errors.append(
                RowError.of(
                    row,
                    "coord_sys",
                    "coord_sys is missing; give it per row or for the file",
                    rule="missing_coord_sys",
                )
            )
            return None
        try:
            return parse_coord_sys(name)
        except UnknownCoordSysError as err:
            errors.append(RowError.of(row, "coord_sys", str(err), rule=err.rule, **err.rule_params))
            return None

    def _check_duplicate_code(self, row: int, text: str, errors: list[RowError]) -> None:
        if not text:
            return
        try:
            code = validate_credit_code(text)
        except InvalidCreditCodeError:
            return
        first = self.credit_code_rows.setdefault(code, row)
        if first != row:
            errors.append(
                RowError.of(
                    row,
                    "credit_code",
                    f"credit_code {code!r} duplicates row {first}",
                    rule="duplicate_credit_code",
                    first_row=first,
                )
            )

    def _field_errors(self, row: int, details: AnchorChange) -> list[RowError]:
        """Check the non-point fields of a row whose point is unusable."""
        without_place = replace(details, district_code=None, zone_key=None)
        field_errors = check_change(
            blank_record("import-check"),
            without_place,
            regions=self.regions,
            zones=[],
            industries=self.industries,
        )
        return _row_errors(row, field_errors)


_CHECK_TIME = datetime.fromisoformat("2000-01-01T00:00:00+08:00")


def _row_errors(row: int, errors: Iterable[FieldError]) -> list[RowError]:
    return [
        RowError(
            row,
            _REPORT_FIELD.get(error.field, error.field),
            error.rule,
            error.message,
            error.message_zh,
        )
        for error in errors
    ]


def _number(row: int, name: str, text: str, errors: list[RowError]) -> float | None:
    try:
        value = float(text)
    except ValueError:
        errors.append(
            RowError.of(
                row, name, f"{name} {text!r} is not a number", rule="not_a_number", value=text
            )
        )
        return None
    if math.isnan(value):
        errors.append(RowError.of(row, name, f"{name} is missing", rule="missing_number"))
        return None
    return value


def check_anchor_rows(
    table: pd.DataFrame,
    *,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
    scope: StaffScope,
    coord_sys: str | None = None,
) -> ImportReport:
    """Check every row of an import table and collect every broken rule (the dry run).

    Parameters
    ----------
    table
        From :func:`read_anchor_table`: columns :data:`IMPORT_COLUMNS`, index the file row.
    regions, zones, industries
        Reference data, as for :func:`geo.curation.apply_change`.
    scope
        The importing staff member's scope; every point must be in it.
    coord_sys
        Coordinate system of rows whose ``coord_sys`` cell is empty.

    Returns
    -------
    ImportReport
        Accepted rows with their points converted to WGS84, and one
        :class:`RowError` per broken rule: invalid credit code or check digit,
        point outside the declared district (named), swapped axes (with the
        swap to make), unknown industry code, unknown or missing coord_sys,
        out of scope, a credit code repeated within the file, and the other
        field rules of :mod:`geo.anchor_fields`.
    """
    checker = _RowChecker(regions, zones, industries, scope, coord_sys)
    report = ImportReport()
    for row, cells in zip(table.index, table.to_dict("records"), strict=True):
        change, errors = checker.check(
            int(row), {str(key): str(value) for key, value in cells.items()}
        )
        report.rejected.extend(errors)
        if change is not None:
            report.accepted[int(row)] = change

    logger.info(
        "import check: %d rows accepted, %d errors", len(report.accepted), len(report.rejected)
    )
    return report


def apply_import(
    report: ImportReport,
    *,
    actor: str,
    reason: str,
    regions: Regions,
    zones: list[DevelopmentZone],
    industries: IndustryCatalogue,
    scope: StaffScope,
    now: datetime,
) -> list[tuple[AnchorRecord, AnchorVersion]]:
    """Create one draft anchor per accepted row, only when the whole report is clean.

    Returns
    -------
    list of (AnchorRecord, AnchorVersion)
        In file row order; the store writes them in one transaction.

    Raises
    ------
    ImportRejectedError
        If the report has any rejected row: the import is all or nothing.
    """
    if not report.ok:
        raise ImportRejectedError(
            f"import has {len(report.rejected)} rejected cells; fix the file and check it again"
        )

    created = []
    for change in report.accepted.values():
        assert change.name is not None  # nosec B101 # type narrowing only
        assert change.lon is not None  # nosec B101 # type narrowing only
        assert change.lat is not None  # nosec B101 # type narrowing only
        created.append(
            new_anchor(
                change.name,
                change.lon,
                change.lat,
                actor=actor,
                reason=reason,
                regions=regions,
                zones=zones,
                industries=industries,
                now=now,
                scope=scope,
                details=change,
            )
        )
    logger.info("import applied by %r: %d anchors created", actor, len(created))
    return created
