"""Excel export and import of the assistance service, and its completion rates.

- ``GET /v1/assistance/export.xlsx`` (``assistance.ledger``): the caller's match list and
  131 ledger with Chinese headers. Names and mobiles are masked and the category
  hidden unless the caller holds ``pi.unmask`` and did not ask for ``masked=true``.
- ``POST /v1/assistance/imports`` (``assistance.ledger``): a target list as an .xlsx
  body. Every row is checked; the report names row, column and rule and never a cell
  value. Nothing is written unless ``commit=true`` and every row passes.
- ``GET /v1/analytics/assistance/completion`` (``analytics.read``): 131 completion rates
  by officer, organisation (station) and district.
"""

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.auth import require
from api.officer_routes import (
    OfficerNotFoundError,
    OfficerRoleError,
    OutsideOfficerAreaError,
    TargetSeekerNotFoundError,
    assistance_store,
    audited_failure,
    build_list_for,
    check_assignment,
    decrypt_category,
    holds_unmask,
    record,
)
from api.permissions import Permission
from api.security.audit import principal_write
from api.security.masking import mask_mobile, mask_name
from matching.assistance import (
    GUIDANCE_TOPICS,
    TRANSITIONS,
    CategoryError,
    category_label,
    completion_rates,
    is_complete,
)
from matching.assistance_xlsx import (
    ImportIssue,
    ImportRow,
    Sheet,
    header_of,
    read_target_rows,
    write_workbook,
)
from store.assistance_store import TargetAssignment
from store.audit import AuditResult

logger = logging.getLogger(__name__)

router = APIRouter(tags=["assistance officers"])

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HIDDEN = "已隐藏"

STATE_LABELS_ZH = {
    "signed_off": "已签发", "delivered": "已送达", "interested": "有意向", "declined": "已拒绝",
    "interviewed": "已面试", "hired": "已录用", "not_hired": "未录用",
}  # fmt: skip
assert set(STATE_LABELS_ZH) == set(TRANSITIONS)  # nosec B101 # every state has a label

MATCH_HEADERS = (
    "求职者编号", "模拟数据", "姓名", "援助类别", "岗位编号", "岗位名称", "用人单位",
    "所在区县代码", "通勤时间(分钟)", "公益性岗位", "夜班或倒班", "匹配分", "系统推荐",
)  # fmt: skip
LEDGER_HEADERS = (
    "求职者编号", "模拟数据", "姓名", "手机号", "援助类别", "援助员账号", "职业指导时间",
    "指导主题", "推荐岗位1", "推荐状态1", "推荐岗位2", "推荐状态2", "推荐岗位3", "推荐状态3",
    "培训机构", "培训推荐时间", "培训反馈", "131服务完成",
)  # fmt: skip


class ImportIssueOut(BaseModel):
    """A problem of one row: the worksheet row, the column header and the broken rule."""

    row: int
    column: str
    rule: str


class ImportReportOut(BaseModel):
    """The dry-run or commit report of a target-list import."""

    rows: int
    valid_rows: int
    committed: bool
    issues: list[ImportIssueOut]


class CompletionOut(BaseModel):
    """Targets, completed targets and the completion rate (0..1) of one group."""

    key: str
    targets: int
    completed: int
    rate: float


class CompletionReportOut(BaseModel):
    """131 completion rates by officer, station (the officer's organisation) and district."""

    by_officer: list[CompletionOut]
    by_station: list[CompletionOut]
    by_district: list[CompletionOut]


@router.get(
    "/v1/assistance/export.xlsx",
    dependencies=[require(Permission.ASSISTANCE_LEDGER)],
    response_class=Response,
    responses={200: {"content": {XLSX_TYPE: {}}, "description": "The .xlsx workbook."}},
)
def export_workbook(
    request: Request,
    masked: Annotated[bool, Query(description="Mask personal fields even with pi.unmask.")] = False,
) -> Response:
    """Export the caller's match list and 131 ledger as .xlsx; audited."""
    unmask = holds_unmask(request) and not masked
    store = assistance_store(request)
    targets = store.targets(_account_id(request))
    people = {str(row["seeker_id"]): _person(request, row, unmask) for row in targets}
    sheets = [
        Sheet("匹配清单", MATCH_HEADERS, _match_rows(request, targets, people)),
        Sheet("131台账", LEDGER_HEADERS, _ledger_rows(request, targets, people)),
    ]
    body = write_workbook(sheets)
    action = "assistance.export.unmasked" if unmask else "assistance.export"
    record(request, action, f"targets:{len(targets)}", "ok", status.HTTP_200_OK)
    filename = f"assistance-{datetime.now(UTC):%Y%m%d}.xlsx"
    return Response(
        content=body,
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post(
    "/v1/assistance/imports",
    dependencies=[require(Permission.ASSISTANCE_LEDGER)],
    response_model=ImportReportOut,
    responses={422: {"model": ImportReportOut, "description": "Rows failed; nothing written."}},
    openapi_extra={
        "requestBody": {"content": {XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def import_targets(
    request: Request,
    commit: Annotated[bool, Query(description="Write the targets when every row passes.")] = False,
) -> Any:
    """Check an .xlsx target list and report every row problem; write only on commit."""
    data = await request.body()
    # Parsing and the store writes block, so they run in the thread pool, not the event loop.
    return await run_in_threadpool(_import_targets, request, data, commit)


def _import_targets(request: Request, data: bytes, commit: bool) -> JSONResponse:
    with audited_failure(request, "assistance.import", "import"):
        rows = read_target_rows(data)
    assignments, issues = _check_rows(request, rows)
    written = commit and not issues and bool(assignments)
    if written:
        assistance_store(request).assign_targets(
            assignments,
            _account_id(request),
            datetime.now(UTC),
            principal_write(request, "assistance.import", f"import:{len(assignments)} targets"),
        )
    else:
        result: AuditResult = "rejected" if issues else "ok"
        record(request, "assistance.import.check", f"import:{len(rows)} rows", result, 200)
    report = ImportReportOut(
        rows=len(rows),
        valid_rows=len(assignments),
        committed=written,
        issues=[ImportIssueOut(row=i.row, column=i.column, rule=i.rule) for i in issues],
    )
    code = status.HTTP_422_UNPROCESSABLE_CONTENT if issues and commit else status.HTTP_200_OK
    return JSONResponse(status_code=code, content=report.model_dump())


@router.get(
    "/v1/analytics/assistance/completion",
    dependencies=[require(Permission.ANALYTICS_READ)],
    response_model=CompletionReportOut,
)
def completion(request: Request) -> CompletionReportOut:
    """Return 131 completion rates by officer, station and district."""
    store = assistance_store(request)
    targets = store.targets()
    states: dict[str, list[str]] = {}
    for row in store.recommendations():
        states.setdefault(str(row["seeker_id"]), []).append(str(row["state"]))
    frame = pd.DataFrame(
        {
            "officer_id": [str(t["officer_id"]) for t in targets],
            "org_id": [str(t["org_id"]) for t in targets],
            "district_code": [str(t["district_code"]) for t in targets],
            "complete": [is_complete(t, states.get(str(t["seeker_id"]), [])) for t in targets],
        }
    )
    return CompletionReportOut(
        by_officer=_rates(frame, "officer_id"),
        by_station=_rates(frame, "org_id"),
        by_district=_rates(frame, "district_code"),
    )


def _rates(frame: pd.DataFrame, by: str) -> list[CompletionOut]:
    rates = completion_rates(frame, by)
    return [
        CompletionOut(
            key=str(row[by]),
            targets=int(row["targets"]),
            completed=int(row["completed"]),
            rate=float(row["rate"]),
        )
        for row in rates.to_dict("records")
    ]


def _check_rows(
    request: Request, rows: list[ImportRow]
) -> tuple[list[TargetAssignment], list[ImportIssue]]:
    """Check every row; return the assignments of the passing rows and the issues."""
    assignments: list[TargetAssignment] = []
    issues: list[ImportIssue] = []
    seen: set[str] = set()
    for row in rows:
        row_issues = _required_issues(row.row, row.values, seen)
        if not row_issues:
            issue = _assignment_issue(request, row, assignments)
            row_issues += [] if issue is None else [issue]
        seen.add(row.values.get("seeker_id", ""))
        issues.extend(row_issues)
    return assignments, issues


def _required_issues(number: int, values: dict[str, str], seen: set[str]) -> list[ImportIssue]:
    issues = []
    for name in ("seeker_id", "officer_id"):
        if not values.get(name):
            issues.append(ImportIssue(number, header_of(name), "必填 (required)"))
    seeker_id = values.get("seeker_id", "")
    if seeker_id and seeker_id in seen:
        rule = "重复：同一求职者只能出现一次 (duplicate seeker)"
        issues.append(ImportIssue(number, header_of("seeker_id"), rule))
    return issues


def _assignment_issue(
    request: Request, row: ImportRow, assignments: list[TargetAssignment]
) -> ImportIssue | None:
    """Append the row's assignment, or return its issue; no message repeats a cell value."""
    values = row.values
    try:
        assignments.append(
            check_assignment(
                request, values["seeker_id"], values["officer_id"], values.get("category") or None
            )
        )
    except TargetSeekerNotFoundError:
        rule = "未找到：求职者不在本机构辖区 (seeker not found in your organisation)"
        return ImportIssue(row.row, header_of("seeker_id"), rule)
    except OfficerNotFoundError:
        rule = "未找到：援助员不在本机构及下级机构 (officer not found in your organisation)"
        return ImportIssue(row.row, header_of("officer_id"), rule)
    except OfficerRoleError:
        rule = "该账号不是就业援助员 (account lacks the assistance_officer role)"
        return ImportIssue(row.row, header_of("officer_id"), rule)
    except OutsideOfficerAreaError:
        rule = "求职者不在该援助员的机构辖区 (seeker lives outside the officer's organisation)"
        return ImportIssue(row.row, header_of("officer_id"), rule)
    except CategoryError:
        rule = "援助类别无效或缺失 (unknown or missing assistance category)"
        return ImportIssue(row.row, header_of("category"), rule)
    return None


def _person(request: Request, target: dict[str, Any], unmask: bool) -> dict[str, str]:
    """Return the target's name, mobile and category label, masked unless ``unmask``."""
    row = request.app.state.store.seeker_record(str(target["seeker_id"]))
    personal = None if row is None else request.app.state.seeker_codec.reveal(row)
    if personal is None:
        return {"name": "", "mobile": "", "category": ""}
    if not unmask:
        return {
            "name": mask_name(personal.name),
            "mobile": mask_mobile(personal.mobile),
            "category": HIDDEN,
        }
    label = category_label(decrypt_category(request, target), "zh") or ""
    return {"name": personal.name, "mobile": personal.mobile, "category": label}


def _match_rows(
    request: Request, targets: list[dict[str, Any]], people: dict[str, dict[str, str]]
) -> list[list[Any]]:
    found = build_list_for(request, targets, "zh")
    seekers = request.app.state.recommender.seekers
    rows = []
    for match in found.rows.to_dict("records"):
        seeker_id = str(match["seeker_id"])
        person = people[seeker_id]
        commute = match["estimated_commute_min"]
        simulated = seeker_id in seekers.index and bool(seekers.loc[seeker_id, "simulated"])
        rows.append(
            [
                seeker_id, "是" if simulated else "否", person["name"], person["category"],
                match["posting_id"],
                match["title"], match["company"], match["district_code"],
                None if pd.isna(commute) else round(float(commute)),
                "是" if match["public_welfare"] else "否", "是" if match["night_shift"] else "否",
                round(float(match["match_score"]), 3), "是" if match["proposed"] else "否",
            ]
        )  # fmt: skip
    return rows


def _ledger_rows(
    request: Request, targets: list[dict[str, Any]], people: dict[str, dict[str, str]]
) -> list[list[Any]]:
    store = assistance_store(request)
    recommendations = store.recommendations([str(t["seeker_id"]) for t in targets])
    seekers = request.app.state.recommender.seekers
    rows = []
    for target in targets:
        seeker_id = str(target["seeker_id"])
        own = [r for r in recommendations if r["seeker_id"] == seeker_id]
        slots: list[Any] = []
        for position in range(3):
            item = own[position] if position < len(own) else None
            slots += (
                [None, None]
                if item is None
                else [item["posting_id"], STATE_LABELS_ZH[item["state"]]]
            )
        topic = GUIDANCE_TOPICS.get(str(target["guidance_topic"] or ""), ("", ""))[0]
        simulated = seeker_id in seekers.index and bool(seekers.loc[seeker_id, "simulated"])
        person = people[seeker_id]
        rows.append(
            [
                seeker_id, "是" if simulated else "否", person["name"], person["mobile"],
                person["category"], target["officer_id"], _excel_time(target["guidance_at"]),
                topic, *slots, target["training_institution"],
                _excel_time(target["training_offered_at"]),
                {"accepted": "接受", "declined": "拒绝"}.get(target["training_response"] or "", ""),
                "是" if is_complete(target, [str(r["state"]) for r in own]) else "否",
            ]
        )  # fmt: skip
    return rows


def _excel_time(value: datetime | None) -> str | None:
    """Return a UTC time as text, because Excel cells hold no time zone."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _account_id(request: Request) -> str:
    return str(request.state.principal.account.account_id)
