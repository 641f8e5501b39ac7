"""Assistance officers' routes: targets, the targeted match list and the 131 ledger.

Every route needs ``assistance.ledger``. An officer reads and changes only the targets
assigned to them. Any other target, of another officer or another organisation, gets
the 404 of a missing one. Assigning needs the seeker's home and the receiving officer's
organisation both inside the caller's organisation subtree.

Every write is stored together with its operation-log record in one transaction. A
write rejected by a rule (404, 409, 422) is recorded with ``record_event``. Reading a
target's assistance category, which is personal information, is recorded too. The
names shown in lists are masked, and the category label is shown only to holders of
``pi.unmask``.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status

from api.auth import require
from api.errors import NotFoundError, ServiceUnavailableError
from api.officer_schemas import (
    AssignIn,
    GuidanceIn,
    InstitutionOut,
    MatchListOut,
    MatchOut,
    RecommendationOut,
    SignOffIn,
    StateIn,
    TargetMatchesOut,
    TargetOut,
    TrainingIn,
    TrainingResponseIn,
    VisitIn,
    VisitOut,
)
from api.permissions import Permission, permissions_of
from api.routes import Lang
from api.security.audit import principal_write, record_event
from api.security.encryption import FieldContext
from api.security.identity import Principal
from api.security.masking import mask_name
from api.seeker_routes import seeker_in_scope
from geo.errors import DoorstepError
from matching.assistance import (
    GUIDANCE_TOPICS,
    RECOMMENDATIONS_PER_TARGET,
    AssistanceRules,
    CategoryError,
    LedgerConflictError,
    LedgerError,
    category_label,
    is_complete,
    parse_category,
    service_day,
)
from matching.assistance_xlsx import WorkbookError
from matching.match_list import (
    MatchList,
    TargetRequest,
    build_match_list,
    nearest_institutions,
    posting_headcounts,
)
from store.assistance_store import (
    AssistanceStore,
    RecommendationNotFoundError,
    TargetAssignment,
    TargetNotFoundError,
    VisitNotFoundError,
)
from store.audit import AuditResult
from store.identity import Organisation, Role
from store.seeker_records import SeekerStore

logger = logging.getLogger(__name__)

router = APIRouter(
    tags=["assistance officers"], dependencies=[require(Permission.ASSISTANCE_LEDGER)]
)

CATEGORY_TABLE = "assistance_targets"
CATEGORY_COLUMN = "category_enc"
INSTITUTIONS_SHOWN = 5

SeekerIdPath = Annotated[
    str, Path(max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="Seeker id of the target.")
]
PostingIdPath = Annotated[
    str, Path(max_length=128, pattern=r"^[A-Za-z0-9._:-]+$", description="Posting id.")
]
VisitIdPath = Annotated[
    str, Path(max_length=64, pattern=r"^visit-[0-9a-f]{16}$", description="Return visit id.")
]


class TargetSeekerNotFoundError(NotFoundError):
    """The seeker to assign is missing or lives outside the caller's organisation."""


class OfficerNotFoundError(NotFoundError):
    """The officer to assign to is missing or outside the caller's organisation subtree."""


class OfficerRoleError(LedgerError):
    """The account to assign to does not hold the assistance_officer role."""


class OutsideOfficerAreaError(LedgerError):
    """The seeker lives outside the organisation of the officer they would be assigned to."""


# --- routes -------------------------------------------------------------------------------


@router.get("/v1/assistance/targets", response_model=list[TargetOut])
def my_targets(request: Request, lang: Lang = "zh") -> list[TargetOut]:
    """List the caller's targets with their 131 status; reading the categories is audited."""
    store = assistance_store(request)
    targets = store.targets(_account_id(request))
    bodies = target_bodies(request, targets, lang)
    record(request, "assistance.targets.read", f"targets:{len(bodies)}", "ok", 200)
    return bodies


@router.post("/v1/assistance/targets", response_model=TargetOut, status_code=201)
def assign_target(request: Request, body: AssignIn, lang: Lang = "zh") -> TargetOut:
    """Assign a seeker of the caller's organisation to an officer of it; audited."""
    object_id = f"seeker:{body.seeker_id}"
    with audited_failure(request, "assistance.assign", object_id):
        assignment = check_assignment(request, body.seeker_id, body.officer_id, body.category)
        assistance_store(request).assign_targets(
            [assignment],
            _account_id(request),
            datetime.now(UTC),
            principal_write(request, "assistance.assign", object_id, status_code=201),
        )
    target = assistance_store(request).target(body.seeker_id)
    assert target is not None  # nosec B101 # written just above
    return target_bodies(request, [target], lang)[0]


@router.get("/v1/assistance/targets/{seeker_id}", response_model=TargetOut)
def my_target(request: Request, seeker_id: SeekerIdPath, lang: Lang = "zh") -> TargetOut:
    """Return one of the caller's targets with its 131 ledger; audited."""
    with audited_failure(request, "assistance.target.read", f"seeker:{seeker_id}"):
        target = _my_target(request, seeker_id)
    body = target_bodies(request, [target], lang)[0]
    record(request, "assistance.target.read", f"seeker:{seeker_id}", "ok", 200)
    return body


@router.get("/v1/assistance/match-list", response_model=MatchListOut)
def match_list(request: Request, lang: Lang = "zh") -> MatchListOut:
    """Propose recommendations for every target of the caller, respecting posting headcounts."""
    store = assistance_store(request)
    targets = store.targets(_account_id(request))
    found = _build_list(request, store, targets, lang)
    record(request, "assistance.matches.read", f"targets:{len(targets)}", "ok", 200)
    return match_list_body(found, targets, store)


@router.post("/v1/assistance/targets/{seeker_id}/guidance", response_model=TargetOut)
def record_guidance(
    request: Request, seeker_id: SeekerIdPath, body: GuidanceIn, lang: Lang = "zh"
) -> TargetOut:
    """Record the target's career guidance session; audited."""
    action, object_id = "assistance.guidance", f"seeker:{seeker_id}"
    with audited_failure(request, action, object_id):
        _my_target(request, seeker_id)
        if body.topic not in GUIDANCE_TOPICS:
            raise LedgerError(
                f"topic is unknown; expected one of {sorted(GUIDANCE_TOPICS)}",
                f"指导主题无效，可选值为 {'、'.join(sorted(GUIDANCE_TOPICS))}",
                field="topic",
            )
        target = assistance_store(request).record_guidance(
            seeker_id, body.topic, datetime.now(UTC), principal_write(request, action, object_id)
        )
    return target_bodies(request, [target], lang)[0]


@router.post("/v1/assistance/targets/{seeker_id}/recommendations", response_model=TargetOut)
def sign_off(
    request: Request, seeker_id: SeekerIdPath, body: SignOffIn, lang: Lang = "zh"
) -> TargetOut:
    """Sign off 1 to 3 recommendations for a target; a posting with no vacancy left is 409."""
    action, object_id = "assistance.sign_off", f"seeker:{seeker_id}"
    with audited_failure(request, action, object_id):
        _my_target(request, seeker_id)
        postings = _active_postings(request, body.posting_ids)
        headcounts = posting_headcounts(postings)
        pairs = [
            (str(row.posting_id), str(row.district_code or ""))
            for row in postings.itertuples(index=False)
        ]
        assistance_store(request).sign_off(
            seeker_id,
            sorted(pairs, key=lambda pair: body.posting_ids.index(pair[0])),
            headcounts,
            _account_id(request),
            datetime.now(UTC),
            principal_write(request, action, f"{object_id} postings:{','.join(body.posting_ids)}"),
        )
    target = assistance_store(request).target(seeker_id)
    assert target is not None  # nosec B101 # checked above
    return target_bodies(request, [target], lang)[0]


@router.post(
    "/v1/assistance/targets/{seeker_id}/recommendations/{posting_id}/state",
    response_model=RecommendationOut,
)
def move_recommendation(
    request: Request, seeker_id: SeekerIdPath, posting_id: PostingIdPath, body: StateIn
) -> RecommendationOut:
    """Record delivery, the target's response, the interview or the hiring outcome; audited."""
    action = "assistance.recommendation"
    object_id = f"seeker:{seeker_id} posting:{posting_id} state:{body.state}"
    with audited_failure(request, action, object_id):
        _my_target(request, seeker_id)
        row = assistance_store(request).move_recommendation(
            seeker_id, posting_id, body.state, datetime.now(UTC),
            principal_write(request, action, object_id),
        )  # fmt: skip
    return _recommendation_body(request, row)


@router.get("/v1/assistance/targets/{seeker_id}/institutions", response_model=list[InstitutionOut])
def training_institutions(request: Request, seeker_id: SeekerIdPath) -> list[InstitutionOut]:
    """Return the training institutions nearest the target's street office."""
    with audited_failure(request, "assistance.institutions.read", f"seeker:{seeker_id}"):
        _my_target(request, seeker_id)
    seekers = request.app.state.recommender.seekers
    if seeker_id not in seekers.index:
        raise NotFoundError(
            f"seeker {seeker_id!r} of this target is not among the loaded seekers",
            "未找到该援助对象的求职者记录",
        )
    seeker = seekers.loc[seeker_id]
    lon = float(seeker.get("home_area_lon", seeker["home_lon"]))
    lat = float(seeker.get("home_area_lat", seeker["home_lat"]))
    found = nearest_institutions(_training_layer(request), lon, lat, INSTITUTIONS_SHOWN)
    return [
        InstitutionOut(
            institution_id=str(row.institution_id),
            name=str(row.name),
            address=str(row.address),
            district_code=str(row.district_code),
            distance_m=float(str(row.distance_m)),
        )
        for row in found.itertuples(index=False)
    ]


@router.post("/v1/assistance/targets/{seeker_id}/training", response_model=TargetOut)
def offer_training(
    request: Request, seeker_id: SeekerIdPath, body: TrainingIn, lang: Lang = "zh"
) -> TargetOut:
    """Record the training offer of an institution of the training layer; audited."""
    action = "assistance.training"
    object_id = f"seeker:{seeker_id} institution:{body.institution_id}"
    with audited_failure(request, action, object_id):
        _my_target(request, seeker_id)
        layer = _training_layer(request)
        names = layer.loc[layer["baidu_uid"].astype(str) == body.institution_id, "name"]
        if names.empty:
            raise LedgerError(
                "institution_id is not in the training institutions layer",
                "培训机构不在培训机构图层中",
                field="institution_id",
            )
        target = assistance_store(request).offer_training(
            seeker_id,
            f"{body.institution_id} {names.iloc[0]}",
            datetime.now(UTC),
            principal_write(request, action, object_id),
        )
    return target_bodies(request, [target], lang)[0]


@router.post("/v1/assistance/targets/{seeker_id}/training/response", response_model=TargetOut)
def training_response(
    request: Request, seeker_id: SeekerIdPath, body: TrainingResponseIn, lang: Lang = "zh"
) -> TargetOut:
    """Record whether the target accepted the training offer; audited."""
    action, object_id = "assistance.training_response", f"seeker:{seeker_id}"
    with audited_failure(request, action, object_id):
        _my_target(request, seeker_id)
        target = assistance_store(request).record_training_response(
            seeker_id, body.response, datetime.now(UTC), principal_write(request, action, object_id)
        )
    return target_bodies(request, [target], lang)[0]


@router.post("/v1/assistance/targets/{seeker_id}/visits", response_model=VisitOut, status_code=201)
def schedule_visit(request: Request, seeker_id: SeekerIdPath, body: VisitIn) -> VisitOut:
    """Schedule a return visit of the target; audited."""
    action, object_id = "assistance.visit", f"seeker:{seeker_id}"
    with audited_failure(request, action, object_id):
        _my_target(request, seeker_id)
        visit = assistance_store(request).schedule_visit(
            seeker_id, body.due_on, datetime.now(UTC),
            principal_write(request, action, object_id, status_code=201),
        )  # fmt: skip
    return visit_body(visit, _today())


@router.post("/v1/assistance/targets/{seeker_id}/visits/{visit_id}/done", response_model=VisitOut)
def complete_visit(request: Request, seeker_id: SeekerIdPath, visit_id: VisitIdPath) -> VisitOut:
    """Mark a return visit of the target done; audited."""
    action, object_id = "assistance.visit_done", f"seeker:{seeker_id} {visit_id}"
    with audited_failure(request, action, object_id):
        _my_target(request, seeker_id)
        visit = assistance_store(request).complete_visit(
            seeker_id, visit_id, datetime.now(UTC), principal_write(request, action, object_id)
        )
    return visit_body(visit, _today())


@router.get("/v1/assistance/visits/due", response_model=list[VisitOut])
def due_visits(request: Request) -> list[VisitOut]:
    """List the open return visits of the caller's targets that are due today or earlier."""
    store = assistance_store(request)
    ids = [str(row["seeker_id"]) for row in store.targets(_account_id(request))]
    today = _today()
    visits = [visit_body(row, today) for row in store.visits(ids, open_only=True)]
    return [visit for visit in visits if visit.due]


# --- shared with the exchange routes ------------------------------------------------------


def assistance_store(request: Request) -> AssistanceStore:
    """Return the app's assistance store, or raise 503 when the store has none."""
    store: AssistanceStore | None = getattr(request.app.state, "assistance_store", None)
    if store is None:
        raise ServiceUnavailableError("this store has no assistance tables", "援助台账暂不可用")
    return store


def holds_unmask(request: Request) -> bool:
    """Return whether the caller holds ``pi.unmask``."""
    principal: Principal = request.state.principal
    return Permission.PI_UNMASK in permissions_of(principal.roles)


def decrypt_category(request: Request, target: dict[str, Any]) -> str:
    """Decrypt a target's category code."""
    context = FieldContext(CATEGORY_TABLE, CATEGORY_COLUMN, str(target["seeker_id"]))
    return str(request.app.state.seeker_codec.cipher.decrypt(str(target["category_enc"]), context))


def target_bodies(request: Request, targets: list[dict[str, Any]], lang: str) -> list[TargetOut]:
    """Return the response bodies of stored targets with their ledger and next visit."""
    store = assistance_store(request)
    ids = [str(row["seeker_id"]) for row in targets]
    recommendations = store.recommendations(ids)
    visits = store.visits(ids, open_only=True)
    unmask = holds_unmask(request)
    today = _today()
    bodies = []
    for target in targets:
        seeker_id = str(target["seeker_id"])
        own = [row for row in recommendations if row["seeker_id"] == seeker_id]
        next_visit = next((v["due_on"] for v in visits if v["seeker_id"] == seeker_id), None)
        bodies.append(
            TargetOut(
                seeker_id=seeker_id,
                simulated=_simulated(request, seeker_id),
                name=_masked_name(request, seeker_id),
                category_label=category_label(decrypt_category(request, target), lang)
                if unmask
                else None,
                officer_id=str(target["officer_id"]),
                org_id=str(target["org_id"]),
                district_code=str(target["district_code"]),
                guidance_at=target["guidance_at"],
                guidance_topic=target["guidance_topic"],
                recommendations=[_recommendation_body(request, row) for row in own],
                training_institution=target["training_institution"],
                training_offered_at=target["training_offered_at"],
                training_response=target["training_response"],
                next_visit_on=next_visit,
                visits=[visit_body(v, today) for v in visits if v["seeker_id"] == seeker_id],
                complete=is_complete(target, [str(row["state"]) for row in own]),
            )
        )
    return bodies


def visit_body(visit: dict[str, Any], today: date) -> VisitOut:
    """Return the response body of a stored visit."""
    return VisitOut(
        visit_id=str(visit["visit_id"]),
        seeker_id=str(visit["seeker_id"]),
        due_on=visit["due_on"],
        reason=str(visit["reason"]),
        done_at=visit["done_at"],
        due=visit["done_at"] is None and visit["due_on"] <= today,
    )


def match_list_body(
    found: MatchList, targets: list[dict[str, Any]], store: AssistanceStore
) -> MatchListOut:
    """Return the response body of a match list."""
    slots = _slots(store, targets)
    bodies = []
    for target in targets:
        seeker_id = str(target["seeker_id"])
        rows = found.rows[found.rows["seeker_id"] == seeker_id]
        matches = [
            MatchOut(
                posting_id=str(row["posting_id"]),
                title=str(row["title"]),
                company=str(row["company"]),
                district_code=None if _missing(row["district_code"]) else str(row["district_code"]),
                estimated_commute_min=None
                if _missing(row["estimated_commute_min"])
                else float(row["estimated_commute_min"]),
                public_welfare=bool(row["public_welfare"]),
                night_shift=bool(row["night_shift"]),
                match_score=float(row["match_score"]),
                proposed=bool(row["proposed"]),
            )
            for row in rows.to_dict("records")
        ]
        bodies.append(
            TargetMatchesOut(seeker_id=seeker_id, slots=slots[seeker_id], matches=matches)
        )
    return MatchListOut(
        targets=bodies,
        unknown=found.unknown,
        method="min-cost flow (OR-Tools): most recommendations, then highest total score,"
        " never more targets per posting than vacancies left",
    )


def build_list_for(request: Request, targets: list[dict[str, Any]], lang: str) -> MatchList:
    """Build the match list of stored targets (used by the export too)."""
    return _build_list(request, assistance_store(request), targets, lang)


def check_assignment(
    request: Request, seeker_id: str, officer_id: str, category: str | None
) -> TargetAssignment:
    """Return the assignment of a seeker to an officer, or raise naming the broken rule.

    Raises NotFoundError when the seeker or the officer is missing or outside the
    caller's organisation subtree, and LedgerError when the officer lacks the role or
    the seeker's home lies outside the officer's organisation.
    """
    organisation = _organisation(request)
    row = _seeker_store(request).seeker_record(seeker_id)
    if row is None or not seeker_in_scope(organisation, row):
        raise TargetSeekerNotFoundError(f"seeker {seeker_id!r} not found", "未找到该求职者")
    identity = request.app.state.identity.store
    officer = identity.account(officer_id)
    if (
        officer is None
        or officer.org_id is None
        or organisation is None
        or not identity.is_within(officer.org_id, organisation.org_id)
    ):
        raise OfficerNotFoundError(f"officer {officer_id!r} not found", "未找到该援助员")
    if Role.ASSISTANCE_OFFICER not in officer.roles:
        raise OfficerRoleError(f"account {officer_id!r} does not hold the assistance_officer role")
    if not seeker_in_scope(identity.organisation(officer.org_id), row):
        raise OutsideOfficerAreaError(
            f"seeker {seeker_id!r} lives outside the organisation {officer.org_id!r} of the officer"
        )
    code = _category_code(request, row, category)
    context = FieldContext(CATEGORY_TABLE, CATEGORY_COLUMN, seeker_id)
    return TargetAssignment(
        seeker_id=seeker_id,
        officer_id=officer_id,
        org_id=officer.org_id,
        district_code=str(row.get("home_district_code") or ""),
        category_enc=request.app.state.seeker_codec.cipher.encrypt(code, context),
    )


_NOT_FOUND = (NotFoundError, TargetNotFoundError, RecommendationNotFoundError, VisitNotFoundError)
"""The errors that the routes return as 404."""


@contextmanager
def audited_failure(request: Request, action: str, object_id: str) -> Iterator[None]:
    """Record a write rejected by a rule, with its status, and re-raise the error."""
    try:
        yield
    except _NOT_FOUND:
        # Another officer's target is recorded as "denied", a missing one as "rejected".
        # Both return the same 404. Other LookupErrors are bugs and reach the 500 handler.
        result: AuditResult = getattr(request.state, "assistance_result", "rejected")
        record(request, action, object_id, result, status.HTTP_404_NOT_FOUND)
        raise
    except LedgerConflictError:
        record(request, action, object_id, "conflict", status.HTTP_409_CONFLICT)
        raise
    except (LedgerError, WorkbookError):
        record(request, action, object_id, "rejected", status.HTTP_422_UNPROCESSABLE_CONTENT)
        raise


def record(
    request: Request, action: str, object_id: str, result: AuditResult, status_code: int
) -> None:
    """Append one operation-log record of the caller's request."""
    record_event(
        request,
        request.state.principal,
        action=action,
        object_id=object_id,
        result=result,
        status_code=status_code,
    )


# --- helpers ------------------------------------------------------------------------------


def _account_id(request: Request) -> str:
    principal: Principal = request.state.principal
    return principal.account.account_id


def _organisation(request: Request) -> Organisation | None:
    principal: Principal = request.state.principal
    if principal.account.org_id is None:
        return None
    found: Organisation | None = request.app.state.identity.store.organisation(
        principal.account.org_id
    )
    return found


def _seeker_store(request: Request) -> SeekerStore:
    store = request.app.state.store
    if not isinstance(store, SeekerStore):
        raise ServiceUnavailableError(
            f"store {type(store).__name__} has no seeker records", "求职者数据暂不可用"
        )
    return store


def _my_target(request: Request, seeker_id: str) -> dict[str, Any]:
    """Return the caller's target, or raise the 404 of a missing one for anyone else's."""
    target = assistance_store(request).target(seeker_id)
    if target is None or target["officer_id"] != _account_id(request):
        request.state.assistance_result = "rejected" if target is None else "denied"
        raise NotFoundError(f"assistance target {seeker_id!r} not found", "未找到该援助对象")
    return target


def _category_code(request: Request, row: dict[str, Any], category: str | None) -> str:
    if category:
        return parse_category(category)
    stored = request.app.state.seeker_codec.reveal(row).hardship_category
    if not stored:
        raise CategoryError(
            "the seeker has no stored assistance category; give the category of the target"
        )
    return str(stored)


def _masked_name(request: Request, seeker_id: str) -> str:
    row = _seeker_store(request).seeker_record(seeker_id)
    if row is None:
        return ""
    return mask_name(request.app.state.seeker_codec.reveal(row).name)


def _simulated(request: Request, seeker_id: str) -> bool:
    seekers = request.app.state.recommender.seekers
    return bool(seekers.loc[seeker_id, "simulated"]) if seeker_id in seekers.index else False


def _recommendation_body(request: Request, row: dict[str, Any]) -> RecommendationOut:
    posting = _postings_by_id(request, [str(row["posting_id"])]).get(str(row["posting_id"]))
    return RecommendationOut(
        posting_id=str(row["posting_id"]),
        title=None if posting is None else str(posting["title"]),
        company=None if posting is None else str(posting["company"]),
        state=str(row["state"]),
        signed_off_at=row["signed_off_at"],
        delivered_at=row["delivered_at"],
    )


def _postings_by_id(request: Request, posting_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Return posting id to title and company of those ``posting_ids`` that are active."""
    postings = request.app.state.recommender.postings
    found = postings.loc[postings["posting_id"].astype(str).isin(posting_ids)]
    return {
        str(row["posting_id"]): row
        for row in found[["posting_id", "title", "company"]].to_dict("records")
    }


def _active_postings(request: Request, posting_ids: list[str]) -> Any:
    if len(set(posting_ids)) < len(posting_ids):
        raise LedgerError(
            "posting_ids repeats a posting; sign off 1 to 3 distinct postings",
            "推荐岗位重复，请选择 1 至 3 个不同的岗位",
            field="posting_ids",
        )
    postings = request.app.state.recommender.postings
    found = postings[postings["posting_id"].astype(str).isin(posting_ids)]
    missing = sorted(set(posting_ids) - set(found["posting_id"].astype(str)))
    if missing:
        raise LedgerError(
            f"posting(s) {missing} are not active postings",
            "所选岗位已下线或不存在",
            field="posting_ids",
        )
    return found


def _training_layer(request: Request) -> Any:
    state = request.app.state
    layer = getattr(state, "training_layer", None)
    if layer is None:
        try:
            layer = state.store.layer_frame("training")
        except (DoorstepError, LookupError) as err:
            raise ServiceUnavailableError(
                f"the training layer is not loaded: {err}", "培训机构图层暂不可用"
            ) from err
        state.training_layer = layer
    return layer


def _slots(store: AssistanceStore, targets: list[dict[str, Any]]) -> dict[str, int]:
    ids = [str(row["seeker_id"]) for row in targets]
    signed: dict[str, int] = dict.fromkeys(ids, 0)
    for row in store.recommendations(ids):
        signed[str(row["seeker_id"])] += 1
    return {seeker_id: max(RECOMMENDATIONS_PER_TARGET - n, 0) for seeker_id, n in signed.items()}


def _build_list(
    request: Request, store: AssistanceStore, targets: list[dict[str, Any]], lang: str
) -> MatchList:
    slots = _slots(store, targets)
    requests = [
        TargetRequest(
            str(row["seeker_id"]), decrypt_category(request, row), slots[str(row["seeker_id"])]
        )
        for row in targets
    ]
    recommender = request.app.state.recommender
    headcounts = posting_headcounts(recommender.postings)
    return build_match_list(
        recommender, requests, headcounts, store.holding_counts(), AssistanceRules(), lang
    )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _today() -> date:
    return service_day(datetime.now(UTC))
