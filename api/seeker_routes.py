"""Staff routes over seekers' personal information, and the erasure of a seeker.

- ``GET /v1/staff/seekers/{seeker_id}`` (``seeker.read``): masked fields.
- ``GET /v1/staff/seekers/{seeker_id}/unmasked`` (``pi.unmask``): the plaintext.
- ``POST /v1/staff/seekers/lookup`` (``seeker.read``): find a seeker by ID number or
  mobile through the blind index; the value travels in the body, never in the URL.
- ``DELETE /v1/seekers/{seeker_id}`` (``seeker.delete``): erase the seeker.
- ``GET /v1/seekers`` (``seeker.read``): seekers in scope, without personal fields.
- ``GET /v1/seekers/{seeker_id}/recommendations`` (``pi.unmask``): a seeker's ranked jobs.
  Their distances and commute minutes are measured from the exact home, so a few of
  them locate it. That is why the route needs the unmask permission and is audited.

A seeker belongs to the organisation of their home community, which lies under its
street and district. Staff see only seekers inside their organisation's subtree, and
another organisation's seeker returns the 404 of a missing one. Every read of personal
information, masked or not, appends one operation-log record before the response is
sent, naming the seeker id or a blind-index entry and never a personal value. When the
record cannot be stored the response is 503 and carries no personal field.
"""

import logging
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api import presenters
from api.auth import require
from api.errors import NotFoundError, QueryLimitError, ServiceUnavailableError
from api.permissions import Permission
from api.presenters import GROUP_LABELS
from api.regions_state import app_regions
from api.routes import (
    CoordSysDep,
    Lang,
    RecommenderDep,
    SettingsDep,
    cached_json,
    check_page_size,
    seeker_cache_prefix,
)
from api.schemas import MAX_OFFSET, Recommendations, SeekerList
from api.security.audit import principal_write, record_event
from api.security.identity import Principal
from api.security.masking import generalise_home, mask_id_number, mask_mobile, mask_name
from api.security.seeker_pi import SeekerPersonal, SeekerPiCodec
from api.security.validation import PersonalFieldError, normalise_mobile, parse_id_number
from geo.regions import Regions
from matching.recommend import SeekerNotFoundError
from matching.seeker_personal import HARDSHIP_CATEGORIES
from store.audit import AuditResult
from store.identity import Organisation
from store.seeker_records import SeekerStore

logger = logging.getLogger(__name__)

router = APIRouter(tags=["seeker personal information"])

SeekerIdPath = Annotated[
    str, Path(max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="Seeker id.")
]

HIDDEN_LABELS = {"zh": "已隐藏", "en": "hidden"}


class HomeOut(BaseModel):
    """A seeker's home: community level, plus the exact point and place name when unmasked."""

    community_code: str | None
    label: str = Field(description="District, street and community names, e.g. 雁塔区 小寨路街道 …")
    lon: float | None = Field(None, description="Exact home, WGS84 degrees; unmasked only.")
    lat: float | None = Field(None, description="Exact home, WGS84 degrees; unmasked only.")
    place: str | None = Field(None, description="Compound or campus name; unmasked only.")


class SeekerPersonalOut(BaseModel):
    """A seeker's personal information, masked unless ``masked`` is false."""

    seeker_id: str
    simulated: bool
    masked: bool
    group: str
    group_label: str
    name: str
    mobile: str
    id_number: str
    hardship_category: str | None = Field(
        description="Category code when unmasked; null when masked or when the seeker has none."
    )
    hardship_label: str | None
    home: HomeOut


class SeekerLookupIn(BaseModel):
    """Exactly one of an ID number or a mobile number to look up."""

    model_config = ConfigDict(extra="forbid")

    id_number: str | None = Field(None, max_length=32)
    mobile: str | None = Field(None, max_length=32)


class EraserOutcomeOut(BaseModel):
    """The result of one eraser."""

    name: str
    ok: bool
    error: str | None


class ErasureOut(BaseModel):
    """The result of a seeker's erasure; ``complete`` is false when an eraser failed."""

    seeker_id: str
    deleted_from_store: bool = Field(description="False when the row was already gone.")
    complete: bool
    erasers: list[EraserOutcomeOut]


@router.get(
    "/v1/staff/seekers/{seeker_id}",
    response_model=SeekerPersonalOut,
    dependencies=[require(Permission.SEEKER_READ)],
)
def seeker_masked(
    request: Request, seeker_id: SeekerIdPath, lang: Lang = "zh"
) -> SeekerPersonalOut:
    """Return one seeker's personal information, masked; the read is audited."""
    row = _row_in_scope(request, seeker_id, "seeker.read")
    body = _body(request, row, masked=True, lang=lang)
    _record(request, "seeker.read", f"seeker:{seeker_id}", "ok", status.HTTP_200_OK)
    return body


@router.get(
    "/v1/staff/seekers/{seeker_id}/unmasked",
    response_model=SeekerPersonalOut,
    dependencies=[require(Permission.PI_UNMASK)],
)
def seeker_unmasked(
    request: Request, seeker_id: SeekerIdPath, lang: Lang = "zh"
) -> SeekerPersonalOut:
    """Return one seeker's personal information unmasked; the read is audited."""
    row = _row_in_scope(request, seeker_id, "seeker.unmask")
    body = _body(request, row, masked=False, lang=lang)
    _record(request, "seeker.unmask", f"seeker:{seeker_id}", "ok", status.HTTP_200_OK)
    return body


@router.post(
    "/v1/staff/seekers/lookup",
    response_model=SeekerPersonalOut,
    dependencies=[require(Permission.SEEKER_READ)],
)
def seeker_lookup(request: Request, lookup: SeekerLookupIn, lang: Lang = "zh") -> SeekerPersonalOut:
    """Find a seeker by ID number or mobile through the blind index; return it masked."""
    column, digest = _index_entry(request, lookup)
    reference = f"{column}:{digest}"
    seeker_id = _seeker_store(request).seeker_id_by_index(column, digest)
    row = None if seeker_id is None else _seeker_store(request).seeker_record(seeker_id)
    if row is None or not seeker_in_scope(_organisation(request), row):
        result: AuditResult = "rejected" if row is None else "denied"
        _record(request, "seeker.lookup", reference, result, status.HTTP_404_NOT_FOUND)
        raise NotFoundError(
            f"no seeker of your organisation has this {column.removesuffix('_index')}",
            "未找到该求职者",
        )
    body = _body(request, row, masked=True, lang=lang)
    _record(request, "seeker.lookup", f"seeker:{seeker_id} {reference}", "ok", status.HTTP_200_OK)
    return body


@router.delete(
    "/v1/seekers/{seeker_id}",
    response_model=ErasureOut,
    dependencies=[require(Permission.SEEKER_DELETE)],
    responses={500: {"model": ErasureOut, "description": "An eraser failed; repeat the delete."}},
)
def seeker_delete(request: Request, seeker_id: SeekerIdPath) -> Any:
    """Erase a seeker from the store, the in-memory index and the response cache; audited."""
    store = _seeker_store(request)
    row = store.seeker_record(seeker_id)
    if row is not None and not seeker_in_scope(_organisation(request), row):
        _record(request, "seeker.delete", f"seeker:{seeker_id}", "denied", 404)
        raise _not_found(seeker_id)
    deleted = store.delete_seeker(
        seeker_id, audit=principal_write(request, "seeker.delete", f"seeker:{seeker_id}")
    )
    outcomes = request.app.state.erasers.erase(seeker_id)
    complete = all(outcome.ok for outcome in outcomes)
    if not complete:
        failed = ",".join(outcome.name for outcome in outcomes if not outcome.ok)
        _record(request, "seeker.erase", f"seeker:{seeker_id} failed:{failed}", "failed", 500)
    body = ErasureOut(
        seeker_id=seeker_id,
        deleted_from_store=deleted,
        complete=complete,
        erasers=[EraserOutcomeOut(name=o.name, ok=o.ok, error=o.error) for o in outcomes],
    )
    code = status.HTTP_200_OK if complete else status.HTTP_500_INTERNAL_SERVER_ERROR
    return JSONResponse(status_code=code, content=body.model_dump())


@router.get(
    "/v1/seekers",
    response_model=SeekerList,
    tags=["seekers"],
    dependencies=[require(Permission.SEEKER_READ)],
)
def seekers(
    request: Request,
    recommender: RecommenderDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, description="Seekers per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Seekers to skip.")] = 0,
    group: Annotated[
        Literal["graduate", "talent", "assistance", "general"] | None,
        Query(description="Only seekers of this group."),
    ] = None,
    lang: Lang = "zh",
) -> SeekerList:
    """List the seekers of the caller's organisation, optionally of one group; no personal field."""
    check_page_size(limit, settings.query.max_page_size, field="limit")
    chosen = _frame_in_scope(_organisation(request), recommender.seekers)
    if group is not None:
        chosen = chosen[chosen["group"] == group]
    regions = app_regions(request.app.state)
    items = [
        presenters.seeker_summary(row, recommender, regions, lang)
        for _, row in chosen.iloc[offset : offset + limit].iterrows()
    ]
    return SeekerList(items=items, total=len(chosen))


@router.get(
    "/v1/seekers/{seeker_id}/recommendations",
    response_model=Recommendations,
    tags=["seekers"],
    dependencies=[require(Permission.PI_UNMASK)],
)
def seeker_recommendations(
    request: Request,
    recommender: RecommenderDep,
    settings: SettingsDep,
    coord_sys: CoordSysDep,
    seeker_id: SeekerIdPath,
    limit: Annotated[int, Query(ge=1, description="Jobs to return.")] = 20,
    lang: Lang = "zh",
) -> Response:
    """Rank jobs within a seeker's commute limit, with reasons; the read is audited."""
    check_page_size(limit, settings.query.max_page_size, field="limit")
    _row_in_scope(request, seeker_id, "seeker.recommendations")

    def recommendations() -> Recommendations:
        try:
            seeker, ranked = recommender.recommend(seeker_id, limit, lang=lang)
        except SeekerNotFoundError as err:
            raise _not_found(seeker_id) from err
        return Recommendations(
            seeker=presenters.seeker_detail(
                seeker, coord_sys, recommender, app_regions(request.app.state), lang
            ),
            items=presenters.jobs(ranked, coord_sys, recommender, lang),
            simulated=bool(seeker["simulated"]),
        )

    query = {
        "seeker_id": seeker_id,
        "limit": limit,
        "coord_sys": coord_sys.value,
        "lang": lang,
        "ranker": recommender.ranker_id,
    }
    prefix = seeker_cache_prefix(seeker_id).rstrip(":")
    response = cached_json(request, prefix, query, recommendations)
    _record(request, "seeker.recommendations", f"seeker:{seeker_id}", "ok", status.HTTP_200_OK)
    return response


def _frame_in_scope(organisation: Organisation | None, frame: pd.DataFrame) -> pd.DataFrame:
    """Return the seekers whose home lies in the organisation's subtree (as :func:`_in_scope`)."""
    if organisation is None:
        return frame.iloc[0:0]
    if organisation.level == "city":
        return frame
    column = SCOPE_COLUMNS.get(organisation.level)
    if column is None or column not in frame.columns:
        return frame.iloc[0:0]
    return frame[frame[column].astype(str) == organisation.region_code]


SCOPE_COLUMNS = {
    "district": "home_district_code",
    "street": "home_street_code",
    "station": "home_community_code",
}
"""The seeker column that an organisation level's region code is compared with."""


def _seeker_store(request: Request) -> SeekerStore:
    store = request.app.state.store
    if not isinstance(store, SeekerStore):
        raise ServiceUnavailableError(
            f"store {type(store).__name__} has no seeker records", "求职者数据暂不可用"
        )
    return store


def _codec(request: Request) -> SeekerPiCodec:
    codec: SeekerPiCodec = request.app.state.seeker_codec
    return codec


def _organisation(request: Request) -> Organisation | None:
    principal: Principal = request.state.principal
    org_id = principal.account.org_id
    if org_id is None:
        return None
    organisation: Organisation | None = request.app.state.identity.store.organisation(org_id)
    return organisation


def seeker_in_scope(organisation: Organisation | None, row: dict[str, Any]) -> bool:
    """Return whether the seeker's home community lies in the organisation's subtree."""
    if organisation is None:
        return False
    if organisation.level == "city":
        return True
    column = SCOPE_COLUMNS.get(organisation.level)
    return column is not None and str(row.get(column) or "") == organisation.region_code


def _row_in_scope(request: Request, seeker_id: str, action: str) -> dict[str, Any]:
    row = _seeker_store(request).seeker_record(seeker_id)
    if row is None or not seeker_in_scope(_organisation(request), row):
        result: AuditResult = "rejected" if row is None else "denied"
        _record(request, action, f"seeker:{seeker_id}", result, status.HTTP_404_NOT_FOUND)
        raise _not_found(seeker_id)
    return row


def _not_found(seeker_id: str) -> NotFoundError:
    # Another organisation's seeker gets exactly the body of a missing one.
    return NotFoundError(f"seeker {seeker_id!r} not found", "未找到该求职者")


def _index_entry(request: Request, lookup: SeekerLookupIn) -> tuple[str, str]:
    given = [name for name in ("id_number", "mobile") if getattr(lookup, name)]
    if len(given) != 1:
        raise QueryLimitError(
            "the lookup body needs exactly one of id_number or mobile",
            field="",
            message_zh="请只填写身份证号 id_number 或手机号 mobile 中的一项",
            location="body",
        )
    index = _codec(request).index
    try:
        if lookup.id_number:
            id_number = parse_id_number(lookup.id_number).value
            return "id_number_index", index.digest("id_number", id_number)
        assert lookup.mobile is not None  # nosec B101 # narrowed by the check above
        return "mobile_index", index.digest("mobile", normalise_mobile(lookup.mobile))
    except PersonalFieldError as err:
        err.location = "body"
        raise


def _body(request: Request, row: dict[str, Any], *, masked: bool, lang: str) -> SeekerPersonalOut:
    personal = _codec(request).reveal(row)
    regions = app_regions(request.app.state)
    home = _home(row, personal, regions, masked=masked)
    category = personal.hardship_category or None
    labels = HARDSHIP_CATEGORIES.get(category or "")
    label = None if labels is None else labels[0 if lang == "zh" else 1]
    group = str(row["group"])
    return SeekerPersonalOut(
        seeker_id=str(row["seeker_id"]),
        simulated=bool(row["simulated"]),
        masked=masked,
        group=group,
        group_label=GROUP_LABELS[lang][group],
        name=mask_name(personal.name) if masked else personal.name,
        mobile=mask_mobile(personal.mobile) if masked else personal.mobile,
        id_number=mask_id_number(personal.id_number) if masked else personal.id_number,
        hardship_category=None if masked else category,
        hardship_label=(HIDDEN_LABELS[lang] if category else None) if masked else label,
        home=home,
    )


def _home(
    row: dict[str, Any], personal: SeekerPersonal, regions: Regions, *, masked: bool
) -> HomeOut:
    code = row.get("home_community_code") or None
    area = None if code is None else generalise_home(str(code), regions)
    label = area.label() if area is not None else ""
    if masked:
        return HomeOut(community_code=code, label=label, lon=None, lat=None, place=None)
    return HomeOut(
        community_code=code,
        label=label,
        lon=personal.home_lon,
        lat=personal.home_lat,
        place=personal.home_label,
    )


def _record(
    request: Request, action: str, object_id: str, result: AuditResult, status_code: int
) -> None:
    record_event(
        request,
        request.state.principal,
        action=action,
        object_id=object_id,
        result=result,
        status_code=status_code,
    )
    request.state.audit_recorded = True
