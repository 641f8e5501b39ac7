"""Staff curation routes (完善锚点, ``/v1/staff``) over the anchor rules and the curation store.

Every route needs a logged-in staff session (:data:`api.staff_auth.StaffDep`) and
works only inside the districts of the account's organisation subtree. An anchor
outside them returns 404 with the body of a missing anchor. A new or moved pin
outside them is a 422 field error (rule ``out_of_scope``), because the point is
the caller's own input.

Every write leaves one operation-log record (:mod:`api.security.audit`): a
write that reaches the store appends it in the write's transaction, and the
middleware records every other outcome, denied and failed calls included.
NOTE: staff reads are not recorded, because no staff route returns personal
information yet.
"""

import hashlib
import json
import logging
import math
import secrets
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

import pandas as pd
from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Header,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from fastapi.responses import JSONResponse

from api.auth import require
from api.curation_schemas import (
    AnchorCreateIn,
    AnchorDetail,
    AnchorEdit,
    AnchorList,
    AnchorOut,
    AnchorPatchIn,
    CoordSysName,
    DistrictOut,
    DuplicateList,
    DuplicateOut,
    FilingOrgList,
    FilingOrgOut,
    ImportReportOut,
    ImportRowErrorOut,
    MergeIn,
    MergeOut,
    StaffMe,
    Summary,
    SummaryItem,
    ZoneOut,
    anchor_out,
    version_out,
)
from api.index_sync import IndexChangeSource, IndexSync
from api.permissions import Permission
from api.push_routes import apply_stored_changes, verified_anchor_pushes
from api.routes import CoordSysDep, RecommenderDep
from api.schemas import MAX_OFFSET
from api.security.audit import recorded_write
from api.staff_auth import FILING_LEVELS, StaffContext, StaffDep
from geo.anchor_fields import FieldError
from geo.anchor_import import (
    ImportRejectedError,
    ImportReport,
    apply_import,
    check_anchor_rows,
    read_anchor_table,
)
from geo.anchor_states import AnchorState, OutOfScopeError, StaffScope, ensure_in_scope
from geo.crs import CoordSys
from geo.curation import AnchorRecord, AnchorValidationError, apply_change, new_anchor
from geo.duplicates import InvalidMergeError, find_duplicates, plan_merge
from geo.industry import IndustryCatalogue, load_industry_catalogue
from geo.regions import Regions, load_regions
from geo.zones import DevelopmentZone, load_zones
from store.base import (
    AnchorNotFoundError,
    CurationStore,
    IdempotencyKeyConflictError,
    KeyedInsert,
)

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_IDEMPOTENCY_KEY_LENGTH = 128

MAX_IMPORT_BYTES = 2 * 1024 * 1024
IMPORT_SUFFIXES = (".csv", ".xlsx")

router = APIRouter(prefix="/v1/staff", tags=["staff curation"])

_rules_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class CurationRules:
    """Reference data of the curation rules: districts, development zones and GB/T 4754."""

    regions: Regions
    zones: list[DevelopmentZone]
    industries: IndustryCatalogue

    def keywords(self) -> dict[str, Any]:
        """Return the reference data as the keyword arguments of the curation functions."""
        return {"regions": self.regions, "zones": self.zones, "industries": self.industries}


def _rules(request: Request) -> CurationRules:
    """Load the reference data on the first staff request and keep it on the app."""
    state = request.app.state
    with _rules_lock:
        rules: CurationRules | None = getattr(state, "curation_rules", None)
        if rules is None:
            data_dir = state.settings.data.data_dir
            regions = load_regions(data_dir)
            rules = CurationRules(
                regions, load_zones(data_dir, regions), load_industry_catalogue(data_dir)
            )
            state.curation_rules = rules
            logger.info("loaded curation reference data from %s", data_dir)
    return rules


def _curation_store(request: Request) -> CurationStore:
    store = request.app.state.store
    if not isinstance(store, CurationStore):
        raise TypeError(f"store {type(store).__name__} does not implement CurationStore")
    return store


RulesDep = Annotated[CurationRules, Depends(_rules)]
CurationStoreDep = Annotated[CurationStore, Depends(_curation_store)]


def _anchor_outs(
    records: list[AnchorRecord],
    store: CurationStore,
    rules: CurationRules,
    coord_sys: CoordSys,
) -> list[AnchorOut]:
    counts = store.posting_counts([record.anchor_id for record in records])
    return [
        anchor_out(
            record,
            n_postings=counts.get(record.anchor_id, 0),
            regions=rules.regions,
            industries=rules.industries,
            coord_sys=coord_sys,
        )
        for record in records
    ]


def _scoped_anchor(store: CurationStore, anchor_id: str, staff: StaffContext) -> AnchorRecord:
    """Return a stored anchor in the caller's scope; 404 for a missing or foreign one alike."""
    record = store.get_anchor(anchor_id)
    if record is None:
        raise AnchorNotFoundError(f"anchor {anchor_id!r} not found")
    ensure_in_scope(record, staff.scope)
    return record


def _out_of_scope_point(anchor_id: str, err: OutOfScopeError) -> AnchorValidationError:
    error = FieldError.of("lon", str(err), rule="out_of_scope")
    return AnchorValidationError(anchor_id, [error])


def _refresh_recommender(request: Request, record: AnchorRecord, merged: list[str]) -> None:
    """Move the anchor's postings in the job index and start new response-cache keys.

    The store logged the move with the write, so applying the change log moves them and
    the other service processes apply the same change within their sync interval. When
    the log gave nothing to apply, the background sync applied the move already, and
    another process may have moved the anchor again since. So the anchor is refreshed
    directly only when the log cannot be read or the store keeps none.
    """
    sync: IndexSync = request.app.state.index_sync
    with sync.lock:
        applied = apply_stored_changes(sync)
        if applied is not None and isinstance(request.app.state.store, IndexChangeSource):
            return
        # Read now, because a reload of the index may have replaced the recommender.
        request.app.state.recommender.refresh_anchor(
            record.anchor_id,
            lon=record.lon,
            lat=record.lat,
            precision=record.precision.value,
            district_code=record.district_code,
            merged_ids=merged,
        )
    request.app.state.build_id = f"{sync.build_id}-{secrets.token_hex(4)}"


@router.get("/me", response_model=StaffMe, dependencies=[require(Permission.ANCHOR_READ)])
def me(staff: StaffDep, rules: RulesDep) -> StaffMe:
    """Return the authenticated staff member, their organisation and scope."""
    districts = []
    for code in sorted(staff.scope.district_codes):
        district = rules.regions.district(code)
        districts.append(DistrictOut(code=code, name=None if district is None else district.name))
    zone_names = {zone.key: zone.name for zone in rules.zones}
    zones = [ZoneOut(key=key, name=zone_names.get(key)) for key in sorted(staff.scope.zone_keys)]
    return StaffMe(
        staff_id=staff.staff_id,
        org=staff.org,
        filing_org=staff.scope.filing_org,
        districts=districts,
        zones=zones,
    )


@router.get(
    "/filing-orgs", response_model=FilingOrgList, dependencies=[require(Permission.ANCHOR_READ)]
)
def filing_orgs(request: Request, staff: StaffDep) -> FilingOrgList:
    """List the streets and stations the caller may file anchors under, streets first."""
    subtree = request.app.state.identity.store.subtree_organisations(staff.org_id)
    items = [
        FilingOrgOut(
            org_id=org.org_id,
            name=org.name,
            level=org.level,
            parent_id=org.parent_id,
            district_code=org.district_code,
        )
        for org in subtree
        if org.level in FILING_LEVELS
    ]
    items.sort(key=lambda item: (item.level != "street", item.org_id))
    return FilingOrgList(items=items)


@router.get("/anchors", response_model=AnchorList, dependencies=[require(Permission.ANCHOR_READ)])
def list_anchors(
    staff: StaffDep,
    store: CurationStoreDep,
    rules: RulesDep,
    coord_sys: CoordSysDep,
    state: Annotated[AnchorState | None, Query(description="Curation state filter.")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Name substring.")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Anchors per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Anchors to skip.")] = 0,
) -> AnchorList:
    """List anchors in the caller's scope, by id, with optional state and name filters."""
    name = q.strip() if q else None
    records = store.anchors_for_scope(
        staff.scope, state=state, name_contains=name, limit=limit, offset=offset
    )
    total = store.count_for_scope(staff.scope, state=state, name_contains=name)
    return AnchorList(items=_anchor_outs(records, store, rules, coord_sys), total=total)


@router.get(
    "/anchors/{anchor_id}",
    response_model=AnchorDetail,
    dependencies=[require(Permission.ANCHOR_READ)],
)
def get_anchor(
    anchor_id: str,
    staff: StaffDep,
    store: CurationStoreDep,
    rules: RulesDep,
    coord_sys: CoordSysDep,
) -> AnchorDetail:
    """Return one anchor in the caller's scope with its history."""
    record = _scoped_anchor(store, anchor_id, staff)
    history = [version_out(entry) for entry in store.anchor_history(anchor_id)]
    return AnchorDetail(anchor=_anchor_outs([record], store, rules, coord_sys)[0], history=history)


@router.patch(
    "/anchors/{anchor_id}",
    response_model=AnchorEdit,
    dependencies=[require(Permission.ANCHOR_WRITE)],
)
def patch_anchor(
    anchor_id: str,
    body: AnchorPatchIn,
    request: Request,
    staff: StaffDep,
    store: CurationStoreDep,
    rules: RulesDep,
    coord_sys: CoordSysDep,
) -> AnchorEdit:
    """Apply one versioned edit to an anchor in the caller's scope and return it in coord_sys."""
    record = _scoped_anchor(store, anchor_id, staff)
    try:
        updated, entry = apply_change(
            record,
            body.changes.to_change(),
            actor=staff.staff_id,
            reason=body.reason,
            expected_version=body.expected_version,
            now=datetime.now(UTC),
            scope=staff.scope,
            **rules.keywords(),
        )
    except OutOfScopeError as err:
        raise _out_of_scope_point(anchor_id, err) from err
    pushes = verified_anchor_pushes(request, record, updated)
    with recorded_write(request, staff, "anchor.update", f"anchor:{anchor_id}") as audit:
        store.save_anchor_change(
            updated, entry, expected_version=body.expected_version, audit=audit, pushes=pushes
        )

    moved = {"lon", "lat", "precision", "district_code"} & {item.field for item in entry.changes}
    if moved:
        _refresh_recommender(request, updated, [])
    anchor = _anchor_outs([updated], store, rules, coord_sys)[0]
    return AnchorEdit(anchor=anchor, version=version_out(entry))


@router.post(
    "/anchors",
    response_model=AnchorEdit,
    status_code=status.HTTP_201_CREATED,
    dependencies=[require(Permission.ANCHOR_WRITE)],
)
def create_anchor(
    body: AnchorCreateIn,
    request: Request,
    response: Response,
    staff: StaffDep,
    store: CurationStoreDep,
    rules: RulesDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_KEY_HEADER,
            description="1-128 printable ASCII characters; a retry with the same key and"
            " body returns the first anchor instead of creating another (24 hours).",
        ),
    ] = None,
) -> AnchorEdit:
    """Create a draft anchor at a point in the caller's scope, once per idempotency key."""
    if idempotency_key is not None:
        _check_idempotency_key(idempotency_key)
    try:
        record, entry = new_anchor(
            body.name,
            body.lon,
            body.lat,
            actor=staff.staff_id,
            reason=body.reason,
            now=datetime.now(UTC),
            scope=staff.scope,
            coord_sys=body.coord_sys,
            details=body.details_change(),
            **rules.keywords(),
        )
    except OutOfScopeError as err:
        raise _out_of_scope_point("new", err) from err
    created = status.HTTP_201_CREATED
    object_id = f"anchor:{record.anchor_id}"
    if idempotency_key is None:
        with recorded_write(
            request, staff, "anchor.create", object_id, status_code=created
        ) as audit:
            store.insert_anchor(record, entry, audit=audit)
        anchor = _anchor_outs([record], store, rules, CoordSys.WGS84)[0]
        return AnchorEdit(anchor=anchor, version=version_out(entry))

    try:
        with recorded_write(
            request, staff, "anchor.create", object_id, status_code=created
        ) as audit:
            outcome = store.insert_anchor_once(
                record,
                entry,
                staff_id=staff.staff_id,
                key=idempotency_key,
                body_hash=_body_hash(body),
                audit=audit,
            )
    except IdempotencyKeyConflictError as err:
        raise _idempotency_error(
            "Idempotency-Key was used with a different request body",
            "同一个 Idempotency-Key 不能用于不同的请求内容",
        ) from err
    if not outcome.replayed:
        anchor = _anchor_outs([record], store, rules, CoordSys.WGS84)[0]
        return AnchorEdit(anchor=anchor, version=version_out(entry))
    response.headers[REPLAYED_HEADER] = "true"
    return _replayed_edit(outcome, store, rules)


def _check_idempotency_key(key: str) -> None:
    """Reject a key that is empty, longer than 128 characters or not printable ASCII."""
    printable = all(" " <= char <= "~" for char in key)
    if not (1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH and printable):
        raise _idempotency_error(
            f"Idempotency-Key of length {len(key)} is invalid;"
            f" expected 1-{MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters",
            f"Idempotency-Key 须为 1-{MAX_IDEMPOTENCY_KEY_LENGTH} 个可打印的 ASCII 字符",
        )


def _idempotency_error(message: str, message_zh: str) -> HTTPException:
    detail = [
        {
            "loc": ["header", IDEMPOTENCY_KEY_HEADER],
            "msg": message,
            "msg_zh": message_zh,
            "type": "idempotency_key",
        }
    ]
    return HTTPException(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)


def _body_hash(body: AnchorCreateIn) -> str:
    """Return the SHA-256 of the parsed body, so key order and spacing do not change it."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replayed_edit(outcome: KeyedInsert, store: CurationStore, rules: CurationRules) -> AnchorEdit:
    """Rebuild the first response of a replayed creation from the stored anchor and history."""
    # NOTE: an anchor edited since its creation is returned as it is stored now,
    # with its creation entry (version 1) as ``version``.
    record = store.get_anchor(outcome.anchor_id)
    history = store.anchor_history(outcome.anchor_id)
    if record is None or not history:
        raise AnchorNotFoundError(f"anchor {outcome.anchor_id!r} of a stored idempotency key")
    anchor = _anchor_outs([record], store, rules, CoordSys.WGS84)[0]
    return AnchorEdit(anchor=anchor, version=version_out(history[0]))


@router.get(
    "/duplicates", response_model=DuplicateList, dependencies=[require(Permission.ANCHOR_READ)]
)
def duplicates(
    staff: StaffDep,
    store: CurationStoreDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Maximum pairs returned.")] = 50,
) -> DuplicateList:
    """List candidate duplicate anchor pairs among the caller's active anchors."""
    total = store.count_for_scope(staff.scope)
    records = store.anchors_for_scope(staff.scope, limit=total)
    active = [record for record in records if record.state is not AnchorState.RETIRED]
    frame = pd.DataFrame(
        {
            "anchor_id": [record.anchor_id for record in active],
            "name": [record.name for record in active],
            "lon": [record.lon for record in active],
            "lat": [record.lat for record in active],
            "credit_code": [record.credit_code for record in active],
        }
    )
    pairs = find_duplicates(frame).head(limit) if len(frame) else frame
    names = dict(zip(frame["anchor_id"], frame["name"], strict=True)) if len(frame) else {}
    items = []
    for row in pairs.to_dict("records"):
        distance = float(row["distance_m"])
        items.append(
            DuplicateOut(
                anchor_id_a=str(row["anchor_id_a"]),
                anchor_id_b=str(row["anchor_id_b"]),
                name_a=names[row["anchor_id_a"]],
                name_b=names[row["anchor_id_b"]],
                reason=str(row["reason"]),
                distance_m=None if math.isnan(distance) else round(distance, 1),
                similarity=round(float(row["similarity"]), 3),
            )
        )
    return DuplicateList(items=items)


@router.post(
    "/anchors/merge", response_model=MergeOut, dependencies=[require(Permission.ANCHOR_WRITE)]
)
def merge_anchors(
    body: MergeIn,
    request: Request,
    staff: StaffDep,
    store: CurationStoreDep,
    rules: RulesDep,
    recommender: RecommenderDep,
) -> MergeOut:
    """Merge duplicate anchors into a survivor, moving their postings to it."""
    ids = [body.survivor_id, *body.merged_ids]
    records = {anchor_id: _scoped_anchor(store, anchor_id, staff) for anchor_id in ids}
    missing = sorted(set(body.merged_ids) - set(body.expected_versions))
    if missing:
        raise InvalidMergeError(f"expected_versions lacks merged anchors {missing}")

    # NOTE: the merge history entries carry the domain's fixed reason and the
    # operation log has no reason field, so body.reason is only logged.
    logger.info("merge by %r into %r: %s", staff.staff_id, body.survivor_id, body.reason)
    plan = plan_merge(
        body.survivor_id,
        body.merged_ids,
        recommender.postings[["posting_id", "anchor_id"]],
        records=records,
        actor=staff.staff_id,
        now=datetime.now(UTC),
    )
    object_id = f"anchor:{body.survivor_id}<-" + ",".join(body.merged_ids)
    with recorded_write(request, staff, "anchor.merge", object_id) as audit:
        moved = store.apply_merge(plan, expected_versions=body.expected_versions, audit=audit)

    survivor = records[body.survivor_id]
    _refresh_recommender(request, survivor, list(plan.merged_ids))
    fresh = store.get_anchor(body.survivor_id) or survivor
    return MergeOut(
        moved_postings=moved, survivor=_anchor_outs([fresh], store, rules, CoordSys.WGS84)[0]
    )


@router.post(
    "/imports", response_model=ImportReportOut, dependencies=[require(Permission.ANCHOR_WRITE)]
)
async def import_anchors(
    request: Request,
    staff: StaffDep,
    store: CurationStoreDep,
    rules: RulesDep,
    file: Annotated[UploadFile, File(description=".csv (UTF-8) or .xlsx, at most 2 MB.")],
    dry_run: Annotated[bool, Query(description="Check only; false applies a clean file.")] = True,
    coord_sys: Annotated[
        CoordSysName | None, Query(description="System of rows whose coord_sys cell is empty.")
    ] = None,
    reason: Annotated[str, Form(max_length=500)] = "批量导入",
) -> Any:
    """Check an anchor import file, and apply it all or nothing unless dry_run."""
    content = await file.read(MAX_IMPORT_BYTES + 1)
    table = _import_table(file.filename or "", content)
    report = check_anchor_rows(table, scope=staff.scope, coord_sys=coord_sys, **rules.keywords())
    body = _report_out(report)
    if dry_run:
        return body
    if not report.ok:
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content=body.model_dump()
        )

    created = apply_import(
        report,
        actor=staff.staff_id,
        reason=reason,
        scope=staff.scope,
        now=datetime.now(UTC),
        **rules.keywords(),
    )
    # The uploaded file is named by the SHA-256 of its bytes, its first 16 hex digits.
    object_id = f"import:{hashlib.sha256(content).hexdigest()[:16]}"
    with recorded_write(request, staff, "anchor.import", object_id) as audit:
        store.apply_import(created, audit=audit)
    return body


def _import_table(filename: str, content: bytes) -> pd.DataFrame:
    """Read an uploaded import file through a temporary file with the upload's suffix."""
    suffix = FilePath(filename).suffix.lower()
    if suffix not in IMPORT_SUFFIXES:
        raise ImportRejectedError(
            f"import file type {suffix or '(none)'!r} is not accepted; expected .csv or .xlsx"
        )
    if len(content) > MAX_IMPORT_BYTES:
        raise ImportRejectedError(
            f"import file is larger than {MAX_IMPORT_BYTES} bytes; split it into smaller files"
        )
    with tempfile.TemporaryDirectory() as folder:
        path = FilePath(folder) / f"upload{suffix}"
        path.write_bytes(content)
        return read_anchor_table(path)


def _report_out(report: ImportReport) -> ImportReportOut:
    rejected = [
        ImportRowErrorOut(
            row=error.row,
            field=error.field,
            rule=error.rule,
            reason=error.reason,
            reason_zh=error.message_zh,
        )
        for error in sorted(report.rejected, key=lambda error: (error.row, error.field))
    ]
    return ImportReportOut(ok=report.ok, accepted=len(report.accepted), rejected=rejected)


@router.get("/summary", response_model=Summary, dependencies=[require(Permission.ANCHOR_READ)])
def summary(staff: StaffDep, store: CurationStoreDep, rules: RulesDep) -> Summary:
    """Count the anchors in the caller's scope by district, precision and state."""
    # NOTE: counts are by district only, so anchors filed under one of the caller's
    # zones but lying in another district are not counted here.
    if staff.scope.by_filing:
        mine = _filed_counts(store, staff.scope)
    else:
        counts = store.precision_state_counts("district")
        mine = counts[counts["district_code"].isin(sorted(staff.scope.district_codes))]
    items = []
    for row in mine.to_dict("records"):
        code = str(row["district_code"])
        district = rules.regions.district(code)
        items.append(
            SummaryItem(
                district_code=code,
                district_name=None if district is None else district.name,
                precision=str(row["precision"]),
                state=str(row["state"]),
                n=int(row["n"]),
            )
        )
    return Summary(items=items)


def _filed_counts(store: CurationStore, scope: StaffScope) -> pd.DataFrame:
    """Count a street's or station's own anchors by district, precision and state."""
    records = store.anchors_for_scope(scope, limit=store.count_for_scope(scope))
    frame = pd.DataFrame(
        {
            "district_code": [record.district_code for record in records],
            "precision": [record.precision.value for record in records],
            "state": [record.state.value for record in records],
        }
    )
    columns = ["district_code", "precision", "state"]
    return frame.groupby(columns, dropna=True).size().rename("n").reset_index()
