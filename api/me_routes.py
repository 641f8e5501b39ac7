"""A seeker's own routes under their session, and the development demo's seeker login.

- ``GET /v1/me/profile`` and ``PUT /v1/me/profile`` (``seeker.self``): the caller's own
  profile, created on the first PUT (self-registration). The response masks the name and
  mobile and shows the caller their own home. A change stores the profile, its
  operation-log record and the preference-change digest push in one transaction.
- ``GET /v1/me/recommendations`` (``seeker.self``): ranked jobs with reasons, as the staff
  route gives them.
- ``PUT`` and ``DELETE /v1/me/wechat-openid`` (``seeker.self``): bind or remove the WeChat
  mini-program openid that subscription messages are sent to, stored encrypted.
- ``GET /v1/dev/seekers`` and ``POST /v1/dev/seekers/{seeker_id}/session`` (public in
  development, 404 in production): the seeker page's picker of simulated seekers and a
  session as one of them, so the demonstration works without SMS.
"""

import logging
from datetime import UTC, datetime
from pathlib import Path as PathLib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api import presenters
from api.auth import require
from api.errors import NotFoundError, ServiceUnavailableError
from api.permissions import Permission
from api.presenters import GROUP_LABELS
from api.regions_state import app_regions
from api.routes import Lang, seeker_cache_prefix
from api.schemas import MAX_OFFSET, Recommendations, SeekerList
from api.security.audit import principal_write, record_event
from api.security.identity import Principal
from api.security.masking import generalise_home, mask_mobile, mask_name
from api.seeker_accounts import (
    ProfileInput,
    SavedProfile,
    SeekerAccountService,
    remember_seeker,
    row_dict,
)
from geo.crs import CoordSys, from_wgs84, parse_coord_sys, validate_and_convert
from geo.errors import DataSourceError, InvalidCoordinateError
from matching.occupation import occupation_codes
from matching.recommend import Recommender, SeekerNotFoundError
from matching.seeker_profile import ProfileFieldError
from push.service import PushService
from store.audit import AuditWrite

logger = logging.getLogger(__name__)

router = APIRouter(tags=["my profile"])

MODES = Literal["walk", "bike", "transit", "drive"]


class HomeIn(BaseModel):
    """A home as a point, a community code, or both (the community then must contain it)."""

    model_config = ConfigDict(extra="forbid")

    lon: float | None = Field(None, description="Home longitude in coord_sys degrees.")
    lat: float | None = Field(None, description="Home latitude in coord_sys degrees.")
    coord_sys: Literal["wgs84", "gcj02", "bd09"] = "wgs84"
    community_code: str | None = Field(
        None, pattern=r"^\d{12}$", description="12-digit community (社区) code."
    )


class ProfileIn(BaseModel):
    """The caller's own profile."""

    model_config = ConfigDict(extra="forbid")

    home: HomeIn
    group: Literal["graduate", "talent", "general"] = Field(
        "general", description="graduate, talent or general; officers register assistance."
    )
    name: str | None = Field(None, max_length=40, description="Kept as stored when omitted.")
    education: int = Field(0, ge=0, le=6, description="EducationLevel value, 0 for none given.")
    experience_years: float = Field(0.0, ge=0, le=60)
    major: str = Field("", max_length=60)
    occupation_wish_code: str = Field(
        "",
        pattern=r"^(\d-\d{2}-\d{2}-\d{2})?$",
        description="Code of a level-4 occupation (细类) of the 2022 classification, e.g."
        " 2-02-10-03; empty for none.",
    )
    keywords: list[Annotated[str, Field(min_length=1, max_length=20)]] = Field(
        default=[], max_length=10
    )
    salary_wish_min: float | None = Field(None, ge=0, le=1_000_000, description="Yuan/month.")
    salary_wish_max: float | None = Field(None, ge=0, le=1_000_000, description="Yuan/month.")
    max_commute_min: int = Field(45, ge=5, le=120, description="One-way commute limit, minutes.")
    modes: list[MODES] = Field(default=["walk", "transit"], min_length=1, max_length=4)


class HomeOut(BaseModel):
    """The caller's own home, shown to them only."""

    community_code: str | None
    label: str = Field(description="District, street and community names.")
    lon: float = Field(description="Home longitude in coord_sys degrees.")
    lat: float = Field(description="Home latitude in coord_sys degrees.")
    exact: bool = Field(description="False when only a community was given.")


class ProfileOut(BaseModel):
    """The caller's own profile, with the name and mobile masked."""

    seeker_id: str
    simulated: bool
    group: str
    group_label: str
    name: str
    mobile: str
    home: HomeOut
    education: int
    experience_years: float
    major: str
    occupation_wish_code: str
    keywords: list[str]
    salary_wish_min: float | None
    salary_wish_max: float | None
    max_commute_min: int
    modes: list[str]
    digest_push_id: str | None = Field(
        None, description="The digest push a change wrote; None on reads and without consent."
    )


class OpenIdIn(BaseModel):
    """A WeChat mini-program openid, as wx.login and code2Session return it."""

    model_config = ConfigDict(extra="forbid")

    openid: str = Field(min_length=6, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class SessionOut(BaseModel):
    """A development session as a simulated seeker."""

    token: str
    expires_at: datetime
    seeker_id: str


def accounts_service(request: Request) -> SeekerAccountService:
    """Return the app's seeker account service; 503 when the store has no seeker records."""
    service: SeekerAccountService | None = getattr(request.app.state, "seeker_accounts", None)
    if service is None:
        raise ServiceUnavailableError(
            "this store has no seeker records, so seeker profiles are unavailable",
            "求职者资料暂不可用",
        )
    return service


def own_seeker_id(request: Request) -> str | None:
    """Return the caller's linked seeker id, linking by mobile when possible, else None."""
    principal: Principal = request.state.principal
    return accounts_service(request).resolve(principal.account)


def _require_profile(request: Request) -> str:
    seeker_id = own_seeker_id(request)
    if seeker_id is None:
        raise NotFoundError(
            "you have no seeker profile yet; create it with PUT /v1/me/profile",
            "尚未填写求职者资料，请先填写（PUT /v1/me/profile）",
        )
    return seeker_id


def _recommender(request: Request) -> Recommender:
    recommender: Recommender = request.app.state.recommender
    return recommender


@router.get(
    "/v1/me/profile", response_model=ProfileOut, dependencies=[require(Permission.SEEKER_SELF)]
)
def get_profile(
    request: Request,
    coord_sys: Annotated[str, Query(description="wgs84, gcj02 or bd09")] = "wgs84",
    lang: Lang = "zh",
) -> ProfileOut:
    """Return the caller's own profile; the read is audited."""
    seeker_id = _require_profile(request)
    row = accounts_service(request).refreshed_row(seeker_id, _recommender(request))
    if row is None:
        raise NotFoundError("your seeker profile was deleted", "求职者资料已删除")
    body = _profile_out(request, row_dict(row), parse_coord_sys(coord_sys), lang, None)
    _record(request, "seeker.self_read", seeker_id, status.HTTP_200_OK)
    return body


@router.put(
    "/v1/me/profile", response_model=ProfileOut, dependencies=[require(Permission.SEEKER_SELF)]
)
def put_profile(request: Request, body: ProfileIn, lang: Lang = "zh") -> ProfileOut:
    """Create or replace the caller's own profile; a change sends one digest of jobs."""
    lon, lat = home_point(body.home.lon, body.home.lat, body.home.coord_sys)
    profile = ProfileInput(
        group=body.group,
        education=body.education,
        experience_years=body.experience_years,
        max_commute_min=body.max_commute_min,
        modes=list(body.modes),
        home_lon=lon,
        home_lat=lat,
        community_code=body.home.community_code,
        name=body.name,
        major=body.major,
        occupation_wish_code=body.occupation_wish_code,
        keywords=list(body.keywords),
        salary_wish_min=body.salary_wish_min,
        salary_wish_max=body.salary_wish_max,
    )
    saved = save_profile(request, profile)
    coord = parse_coord_sys(body.home.coord_sys)
    return _profile_out(request, row_dict(saved.row), coord, lang, saved.digest_push_id)


def save_profile(request: Request, profile: ProfileInput) -> SavedProfile:
    """Store the caller's profile with its audit record and digest; clear cached rankings."""
    wish_min, wish_max = profile.salary_wish_min, profile.salary_wish_max
    if wish_min is not None and wish_max is not None and wish_min > wish_max:
        raise ProfileFieldError(
            "salary_wish_max",
            "salary_wish_max is below salary_wish_min; expected max >= min",
            "期望月薪上限 salary_wish_max 不能低于下限 salary_wish_min",
        )
    state = request.app.state
    check_occupation_wish(profile.occupation_wish_code, state.settings.data.data_dir)
    principal: Principal = request.state.principal
    with state.index_sync.lock:  # a pair that one reload of the job index put in service
        recommender: Recommender = state.recommender
        pushes: PushService | None = state.push_service if state.settings.push.enabled else None
    service = accounts_service(request)

    def audit(seeker_id: str) -> AuditWrite:
        return principal_write(request, "seeker.self_update", f"seeker:{seeker_id}")

    saved = service.save(
        principal.account, profile, recommender=recommender, pushes=pushes, audit=audit
    )
    with state.index_sync.lock:
        # A reload that read the seekers before the store had the profile may have put
        # another recommender in service meanwhile; it gets the profile too.
        if state.recommender is not recommender:
            current = state.push_service if pushes is not None else None
            remember_seeker(state.recommender, current, saved.row)
    state.cache.delete_prefix(seeker_cache_prefix(saved.seeker_id))
    request.state.audit_recorded = True
    return saved


_unchecked_occupation_folders: set[PathLib] = set()
"""Data folders without the classification, each logged once."""


def check_occupation_wish(code: str, data_dir: PathLib) -> None:
    """Raise ProfileFieldError unless ``code`` is empty or a level-4 occupation code.

    The codes are those of the 2022 classification in ``data_dir``, which the postings'
    codes come from. The message never quotes the code. Without the classification
    file only the D-DD-DD-DD form (checked by the request model) applies.
    """
    if not code:
        return
    folder = data_dir.resolve()
    try:
        known = occupation_codes(folder)
    except DataSourceError as err:
        if folder not in _unchecked_occupation_folders:
            _unchecked_occupation_folders.add(folder)
            logger.warning("occupation_wish_code is checked by its form only: %s", err)
        return
    if code not in known:
        raise ProfileFieldError(
            "occupation_wish_code",
            "occupation_wish_code is not an occupation of the 2022 classification; expected"
            " the D-DD-DD-DD code of a level-4 occupation (细类), such as 2-02-10-03",
            "期望职业代码 occupation_wish_code 不是2022版职业分类大典中的职业（细类），"
            "请填写完整的细类代码，如 2-02-10-03",
        )


@router.get(
    "/v1/me/recommendations",
    response_model=Recommendations,
    dependencies=[require(Permission.SEEKER_SELF)],
)
def my_recommendations(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100, description="Jobs to return.")] = 20,
    coord_sys: Annotated[str, Query(description="wgs84, gcj02 or bd09")] = "wgs84",
    lang: Lang = "zh",
) -> Recommendations:
    """Rank jobs within the caller's commute limit, with reasons."""
    seeker_id = _require_profile(request)
    recommender = _recommender(request)
    if accounts_service(request).refreshed_row(seeker_id, recommender) is None:
        raise NotFoundError("your seeker profile was deleted", "求职者资料已删除")
    system = parse_coord_sys(coord_sys)
    try:
        seeker, ranked = recommender.recommend(seeker_id, limit, lang=lang)
    except SeekerNotFoundError as err:
        raise NotFoundError("your seeker profile was deleted", "求职者资料已删除") from err
    regions = app_regions(request.app.state)
    return Recommendations(
        seeker=presenters.seeker_detail(seeker, system, recommender, regions, lang),
        items=presenters.jobs(ranked, system, recommender, lang),
        simulated=bool(seeker["simulated"]),
    )


@router.put(
    "/v1/me/wechat-openid",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[require(Permission.SEEKER_SELF)],
)
def bind_openid(request: Request, body: OpenIdIn) -> Response:
    """Bind the WeChat mini-program openid that subscription messages go to; stored encrypted."""
    seeker_id = _require_profile(request)
    service = accounts_service(request)
    audit = principal_write(request, "seeker.openid_bind", f"seeker:{seeker_id}")
    envelope = service.openid_envelope(seeker_id, body.openid)
    service.accounts.bind_openid(seeker_id, envelope, datetime.now(UTC), audit=audit)
    request.state.audit_recorded = True
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/v1/me/wechat-openid",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[require(Permission.SEEKER_SELF)],
)
def unbind_openid(request: Request) -> Response:
    """Remove the caller's WeChat openid; WeChat pushes are then skipped."""
    seeker_id = _require_profile(request)
    audit = principal_write(request, "seeker.openid_unbind", f"seeker:{seeker_id}")
    accounts_service(request).accounts.unbind_openid(seeker_id, audit=audit)
    request.state.audit_recorded = True
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Development demonstration


def _development_only(request: Request) -> None:
    if request.app.state.settings.auth.environment == "production":
        raise NotFoundError(
            "the development seeker routes are disabled in production",
            "生产环境不提供开发演示接口",
        )


@router.get("/v1/dev/seekers", response_model=SeekerList, dependencies=[require(Permission.PUBLIC)])
def dev_seekers(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100, description="Seekers per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Seekers to skip.")] = 0,
    group: Annotated[
        Literal["graduate", "talent", "assistance", "general"] | None,
        Query(description="Only seekers of this group."),
    ] = None,
    lang: Lang = "zh",
) -> SeekerList:
    """List simulated seekers for the demo page's picker (development only; no personal field)."""
    _development_only(request)
    recommender = _recommender(request)
    simulated = recommender.seekers[recommender.seekers["simulated"].astype(bool)]
    chosen = simulated if group is None else simulated[simulated["group"] == group]
    regions = app_regions(request.app.state)
    items = [
        presenters.seeker_summary(row, recommender, regions, lang)
        for _, row in chosen.iloc[offset : offset + limit].iterrows()
    ]
    return SeekerList(items=items, total=len(chosen))


@router.post(
    "/v1/dev/seekers/{seeker_id}/session",
    response_model=SessionOut,
    dependencies=[require(Permission.PUBLIC)],
)
def dev_seeker_session(
    request: Request,
    seeker_id: Annotated[
        str, Path(max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="Seeker id.")
    ],
) -> SessionOut:
    """Log in as a simulated seeker without SMS (development only)."""
    _development_only(request)
    service = accounts_service(request)
    row = service.store.seeker_record(seeker_id)
    if row is None or not bool(row["simulated"]):
        raise NotFoundError(
            f"simulated seeker {seeker_id!r} not found", f"模拟求职者 {seeker_id} 不存在"
        )
    mobile = service.codec.reveal(row).mobile
    issued = service.identity.open_seeker_session(mobile)
    principal = service.identity.authenticate(issued.token, "seeker", None)
    linked = service.resolve(principal.account)
    record_event(request, principal, action="auth.dev_seeker_login",
                 object_id=f"seeker:{seeker_id}", result="ok", status_code=200)  # fmt: skip
    if linked != seeker_id:
        raise NotFoundError(
            f"simulated seeker {seeker_id!r} is linked to another account", "模拟求职者不可用"
        )
    return SessionOut(token=issued.token, expires_at=issued.expires_at, seeker_id=seeker_id)


# Helpers


def home_point(
    lon: float | None, lat: float | None, coord_sys: str
) -> tuple[float | None, float | None]:
    """Return a home point in WGS84, or (None, None) when neither number was given.

    The error names the rule but never the value, because a home is personal information.
    """
    if lon is None and lat is None:
        return None, None
    try:
        if lon is None or lat is None:
            raise InvalidCoordinateError("home needs both lon and lat", field="home")
        return validate_and_convert(lon, lat, coord_sys, field="home")
    except InvalidCoordinateError as err:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "loc": ["body", "home"],
                    "msg": "home needs lon and lat of a valid point inside the Xi'an area",
                    "msg_zh": "住址须填写西安市范围内有效的经纬度（lon、lat）",
                    "type": "invalid_coordinate",
                }
            ],
        ) from err


def _profile_out(
    request: Request,
    row: dict[str, Any],
    coord_sys: CoordSys,
    lang: str,
    digest_push_id: str | None,
) -> ProfileOut:
    service = accounts_service(request)
    personal = service.codec.reveal(row)
    code = str(row.get("home_community_code") or "") or None
    regions = app_regions(request.app.state)
    area = None if code is None else generalise_home(code, regions)
    label = area.label() if area is not None else ""
    lon, lat = from_wgs84(personal.home_lon, personal.home_lat, coord_sys)
    group = str(row["group"])
    return ProfileOut(
        seeker_id=str(row["seeker_id"]),
        simulated=bool(row["simulated"]),
        group=group,
        group_label=GROUP_LABELS[lang][group],
        name=mask_name(personal.name) if personal.name else "",
        mobile=mask_mobile(personal.mobile),
        home=HomeOut(
            community_code=code,
            label=label,
            lon=lon,
            lat=lat,
            exact=str(row.get("home_kind")) != "registered_community",
        ),
        education=int(row["education"]),
        experience_years=float(row["experience_years"]),
        major=str(row.get("major") or ""),
        occupation_wish_code=str(row.get("occupation_wish_code") or ""),
        keywords=[item for item in str(row.get("keywords") or "").split(";") if item],
        salary_wish_min=_number(row.get("salary_wish_min")),
        salary_wish_max=_number(row.get("salary_wish_max")),
        max_commute_min=int(row["max_commute_min"]),
        modes=[item for item in str(row.get("modes") or "").split(";") if item],
        digest_push_id=digest_push_id,
    )


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(str(value))
    return None if number != number else number


def _record(request: Request, action: str, seeker_id: str, status_code: int) -> None:
    record_event(
        request,
        request.state.principal,
        action=action,
        object_id=f"seeker:{seeker_id}",
        result="ok",
        status_code=status_code,
    )
    request.state.audit_recorded = True
