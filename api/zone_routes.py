"""Group zones (graduates, high-level talent, key-enterprise labour) and the fairness report.

- ``GET /v1/zones/graduates/{seeker_id}/jobs`` and ``GET /v1/zones/talent/{seeker_id}/jobs``
  (``pi.unmask``, the caller's organisation only, audited): the distances locate the
  seeker's home, as on ``/v1/seekers/{seeker_id}/recommendations``.
- ``GET /v1/zones/graduates/universities`` (``analytics.read``): graduates of each of the
  63 universities with a fitting job, per district.
- ``GET /v1/zones/enterprises`` (``anchor.read``): the key enterprises of the caller's
  district and the district's jobs, key enterprises' vacancies first.
- ``GET /v1/zones/enterprises/{anchor_id}/seekers`` (``seeker.read``): seekers of the
  caller's organisation who suit the enterprise's open posts, masked. Every read is
  audited, naming the anchor and the seeker ids and never a personal value.
- ``GET /v1/analytics/fairness`` (``analytics.read``): the newest fairness audit.
"""

import json
import logging
import threading
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BaseModel, Field

from api import presenters
from api.auth import require
from api.errors import NotFoundError, QueryLimitError
from api.permissions import Permission
from api.presenters import GROUP_LABELS
from api.regions_state import app_regions
from api.routes import (
    CoordSysDep,
    Lang,
    RecommenderDep,
    SettingsDep,
    check_page_size,
)
from api.schemas import Job
from api.security.masking import generalise_home, mask_mobile, mask_name
from api.seeker_routes import (
    SeekerIdPath,
    _codec,
    _organisation,
    _record,
    _row_in_scope,
    seeker_in_scope,
)
from api.settings import Settings
from matching.recommend import Recommender, SeekerNotFoundError
from matching.zones_enterprise import (
    KeyEnterpriseNotFoundError,
    in_region,
    key_enterprises,
    key_vacancies_first,
    suitable_seekers,
)
from matching.zones_graduates import (
    NoCampusError,
    graduate_universities,
    graduate_zone_jobs,
    load_campuses,
    university_district_counts,
)
from matching.zones_talent import talent_standing, talent_zone_jobs
from models.dataset import curated_anchors
from store.identity import Organisation

logger = logging.getLogger(__name__)

router = APIRouter(tags=["group zones"])

AnchorIdPath = Annotated[
    str, Path(max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="Anchor id.")
]
Limit = Annotated[int, Query(ge=1, description="Rows to return.")]

_counts_lock = threading.Lock()


class GraduateJob(Job):
    """A job of the graduate zone, with why it is in the zone."""

    traineeship: bool = Field(description="A traineeship (见习/实习) post.")
    major_fit: bool = Field(description="The occupation lies under the graduate's major.")
    graduate_ok: bool = Field(description="The post takes fresh graduates (应届).")


class GraduateZone(BaseModel):
    """The graduate zone of one seeker."""

    seeker_id: str
    simulated: bool
    major: str
    university: str | None = Field(description="Campus name when known; graduates only.")
    near: Literal["home", "campus"]
    items: list[GraduateJob]


class TalentJob(Job):
    """A job of the talent zone."""

    talent_post: bool = Field(description="A talent-introduction post (人才引进 …).")
    key_enterprise: bool = Field(description="The employer is a key or above-scale enterprise.")
    talent_score: float = Field(description="Zone score 0-1; distance weighs 0.10, not 0.30.")


class TalentZone(BaseModel):
    """The talent zone of one seeker, with the degree and title that qualify them."""

    seeker_id: str
    simulated: bool
    qualifies: bool
    education: int
    professional_title: str
    items: list[TalentJob]


class DistrictCount(BaseModel):
    """Graduates of one university with at least one fitting job in a district."""

    district_code: str
    district_name: str | None
    matched_graduates: int


class UniversityCount(BaseModel):
    """One university's graduates and where they have fitting jobs."""

    university: str
    moe_code: str
    graduates: int
    districts: list[DistrictCount]


class UniversityCounts(BaseModel):
    """Per-university, per-district counts of graduates with fitting jobs (simulated seekers)."""

    simulated: bool
    universities: list[UniversityCount]
    graduates_without_university: int


class KeyEnterprise(BaseModel):
    """A key enterprise of the caller's district."""

    anchor_id: str
    name: str
    district_name: str | None
    key_enterprise: bool
    above_scale_industrial: bool
    active_postings: int


class EnterpriseZoneJob(Job):
    """A job of the key-enterprise zone."""

    anchor_id: str
    key_enterprise: bool


class EnterpriseZone(BaseModel):
    """Key enterprises of the caller's district, and its jobs with theirs first."""

    enterprises: list[KeyEnterprise]
    items: list[EnterpriseZoneJob]


class SuitableSeeker(BaseModel):
    """A seeker who suits a key enterprise's open post; personal fields masked."""

    seeker_id: str
    simulated: bool
    group_label: str
    name: str
    mobile: str
    home_label: str
    education: int
    occupation_wish_name: str
    distance_km: float = Field(description="Straight-line km from home, rounded to 0.5 km.")
    shared_levels: int = Field(description="Occupation levels shared with the best post, 2-4.")
    best_posting_id: str


class SuitableSeekers(BaseModel):
    """Seekers of the caller's organisation for one key enterprise; masked."""

    anchor_id: str
    name: str
    vacancies: int
    items: list[SuitableSeeker]


@router.get(
    "/v1/zones/graduates/{seeker_id}/jobs",
    response_model=GraduateZone,
    dependencies=[require(Permission.PI_UNMASK)],
)
def graduate_zone(
    request: Request,
    recommender: RecommenderDep,
    settings: SettingsDep,
    coord_sys: CoordSysDep,
    seeker_id: SeekerIdPath,
    near: Annotated[Literal["home", "campus"], Query(description="Search from home or campus.")] = (
        "home"
    ),
    limit: Limit = 20,
    lang: Lang = "zh",
) -> GraduateZone:
    """List a graduate's traineeships and major-matched jobs near home or campus."""
    read = _start_zone_read(request, settings, limit, "zone.graduate", seeker_id=seeker_id)
    seeker = _seeker(recommender, seeker_id)
    if str(seeker["group"]) != "graduate":
        raise QueryLimitError(
            f"seeker {seeker_id!r} is not in the graduate group",
            field="seeker_id",
            message_zh="该求职者不属于高校毕业生",
        )
    university, campus = _campus(request, seeker)
    try:
        ranked = graduate_zone_jobs(recommender.index, seeker, limit, near=near, campus=campus)
    except NoCampusError as err:
        raise QueryLimitError(str(err), field="near", message_zh="未知该毕业生的校区") from err
    jobs = presenters.jobs(ranked, coord_sys, recommender, lang)
    items = [
        GraduateJob(
            **job.model_dump(),
            traineeship=bool(row["traineeship"]),
            major_fit=bool(row["major_fit"]),
            graduate_ok=bool(row["graduate_ok"]),
        )
        for job, (_, row) in zip(jobs, ranked.iterrows(), strict=True)
    ]
    read.succeeded()
    return GraduateZone(
        seeker_id=seeker_id,
        simulated=bool(seeker["simulated"]),
        major=str(seeker.get("major") or ""),
        university=university or None,
        near=near,
        items=items,
    )


@router.get(
    "/v1/zones/talent/{seeker_id}/jobs",
    response_model=TalentZone,
    dependencies=[require(Permission.PI_UNMASK)],
)
def talent_zone(
    request: Request,
    recommender: RecommenderDep,
    settings: SettingsDep,
    coord_sys: CoordSysDep,
    seeker_id: SeekerIdPath,
    limit: Limit = 20,
    lang: Lang = "zh",
) -> TalentZone:
    """List a talent seeker's talent-introduction posts, key-enterprise jobs and fitting jobs."""
    read = _start_zone_read(request, settings, limit, "zone.talent", seeker_id=seeker_id)
    seeker = _seeker(recommender, seeker_id)
    try:
        standing = talent_standing(seeker)
    except ValueError as err:
        raise QueryLimitError(str(err), field="professional_title", message_zh="职称无效") from err
    key_ids = frozenset(_key_enterprises(request)["anchor_id"].astype(str))
    ranked = (
        talent_zone_jobs(recommender.index, seeker, limit, key_ids)
        if standing.qualifies
        else (recommender.postings.head(0))
    )
    jobs = presenters.jobs(ranked, coord_sys, recommender, lang)
    items = [
        TalentJob(
            **job.model_dump(),
            talent_post=bool(row["talent_post"]),
            key_enterprise=bool(row["key_enterprise"]),
            talent_score=float(row["talent_score"]),
        )
        for job, (_, row) in zip(jobs, ranked.iterrows(), strict=True)
    ]
    read.succeeded()
    return TalentZone(
        seeker_id=seeker_id,
        simulated=bool(seeker["simulated"]),
        qualifies=standing.qualifies,
        education=standing.education,
        professional_title=standing.title,
        items=items,
    )


@router.get(
    "/v1/zones/graduates/universities",
    response_model=UniversityCounts,
    dependencies=[require(Permission.ANALYTICS_READ)],
)
def graduate_universities_counts(request: Request, recommender: RecommenderDep) -> UniversityCounts:
    """Count each university's graduates with a fitting job in reach, per district."""
    state = request.app.state
    with _counts_lock:
        cached = getattr(state, "zone_university_counts", None)
        if cached is None or cached[0] is not recommender.index:
            counts = university_district_counts(
                recommender.seekers, recommender.postings, _campuses(request)
            )
            cached = (recommender.index, counts)
            state.zone_university_counts = cached
    counts = cached[1]
    matched = counts.matched
    by_university: dict[str, list[DistrictCount]] = {}
    for university, district, count in zip(
        matched["university"].astype(str).tolist(),
        matched["district_code"].astype(str).tolist(),
        matched["matched_graduates"].astype(int).tolist(),
        strict=True,
    ):
        by_university.setdefault(university, []).append(
            DistrictCount(
                district_code=district,
                district_name=recommender.district_name(district),
                matched_graduates=count,
            )
        )
    per_campus = counts.graduates
    universities = [
        UniversityCount(
            university=university,
            moe_code=moe_code,
            graduates=graduates,
            districts=by_university.get(university, []),
        )
        for university, moe_code, graduates in zip(
            per_campus["university"].astype(str).tolist(),
            per_campus["moe_code"].astype(str).tolist(),
            per_campus["graduates"].astype(int).tolist(),
            strict=True,
        )
    ]
    return UniversityCounts(
        simulated=bool(recommender.seekers["simulated"].any()),
        universities=universities,
        graduates_without_university=counts.graduates_without_university,
    )


@router.get(
    "/v1/zones/enterprises",
    response_model=EnterpriseZone,
    dependencies=[require(Permission.ANCHOR_READ)],
)
def enterprise_zone(
    request: Request,
    recommender: RecommenderDep,
    settings: SettingsDep,
    coord_sys: CoordSysDep,
    limit: Limit = 50,
    lang: Lang = "zh",
) -> EnterpriseZone:
    """List the key enterprises of the caller's district and its jobs, theirs first."""
    check_page_size(limit, settings.query.max_page_size, field="limit")
    region = _region(request)
    enterprises = _key_enterprises(request)
    enterprises = enterprises.loc[in_region(enterprises["district_code"], region)]
    postings = recommender.postings
    local = postings.loc[
        in_region(postings["district_code"], region) & (postings["precision"] != "city")
    ]
    ordered = key_vacancies_first(local, frozenset(enterprises["anchor_id"].astype(str)))
    page = ordered.head(limit)
    jobs = presenters.jobs(page, coord_sys, recommender, lang)
    return EnterpriseZone(
        enterprises=[
            KeyEnterprise(
                anchor_id=str(row.anchor_id),
                name=str(row.name),
                district_name=recommender.district_name(row.district_code),
                key_enterprise=bool(row.key_enterprise),
                above_scale_industrial=bool(row.above_scale_industrial),
                active_postings=int((postings["anchor_id"] == row.anchor_id).sum()),
            )
            for row in enterprises.itertuples(index=False)
        ],
        items=[
            EnterpriseZoneJob(
                **job.model_dump(),
                anchor_id=str(row["anchor_id"]),
                key_enterprise=bool(row["key_enterprise"]),
            )
            for job, (_, row) in zip(jobs, page.iterrows(), strict=True)
        ],
    )


@router.get(
    "/v1/zones/enterprises/{anchor_id}/seekers",
    response_model=SuitableSeekers,
    dependencies=[require(Permission.SEEKER_READ)],
)
def enterprise_seekers(
    request: Request,
    recommender: RecommenderDep,
    settings: SettingsDep,
    anchor_id: AnchorIdPath,
    limit: Limit = 50,
    lang: Lang = "zh",
) -> SuitableSeekers:
    """List the caller's seekers who suit a key enterprise's open posts, masked; audited."""
    read = _start_zone_read(request, settings, limit, "zone.enterprise.seekers")
    organisation = _organisation(request)

    enterprises = _key_enterprises(request)
    region = _region(request)
    found = enterprises.loc[
        (enterprises["anchor_id"].astype(str) == anchor_id)
        & in_region(enterprises["district_code"], region)
    ]
    if found.empty:
        read.rejected(f"anchor:{anchor_id}")
        raise NotFoundError(
            str(KeyEnterpriseNotFoundError(f"key enterprise {anchor_id!r} not found")),
            "未找到该重点企业",
        )
    anchor = found.iloc[0]

    seekers = recommender.seekers
    scope_columns = seekers[["home_district_code", "home_street_code", "home_community_code"]]
    scoped = seekers.loc[
        [
            seeker_in_scope(organisation, {str(key): value for key, value in row.items()})
            for row in scope_columns.to_dict("records")
        ]
    ]
    match = suitable_seekers(anchor, recommender.postings, scoped, limit)
    items = [
        _suitable(request, _row(seekers, str(row.seeker_id)), row, lang)
        for row in match.seekers.itertuples(index=False)
    ]

    ids = ",".join(item.seeker_id for item in items)
    read.succeeded(f"anchor:{anchor_id} seekers:{ids}")
    return SuitableSeekers(
        anchor_id=anchor_id, name=str(anchor["name"]), vacancies=len(match.vacancies), items=items
    )


@router.get(
    "/v1/analytics/fairness",
    dependencies=[require(Permission.ANALYTICS_READ)],
)
def fairness_report(settings: SettingsDep) -> dict[str, Any]:
    """Return the newest fairness audit written by `doorstep fairness` (simulated seekers)."""
    path = settings.model.fairness_report_path
    try:
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise NotFoundError(
            f"no fairness report at {path}; run `doorstep fairness`",
            "尚无公平性审计报告，请先运行 doorstep fairness",
        ) from err
    return report


@dataclass(frozen=True)
class _ZoneRead:
    """The audit record of one zone read, written once the route has its outcome."""

    request: Request
    action: str
    object_id: str

    def succeeded(self, object_id: str | None = None) -> None:
        """Record the read as ``ok`` (200), naming ``object_id`` in place of the default."""
        object_id = object_id or self.object_id
        _record(self.request, self.action, object_id, "ok", status.HTTP_200_OK)

    def rejected(self, object_id: str) -> None:
        """Record the read as ``rejected`` (404) because its object was not found."""
        _record(self.request, self.action, object_id, "rejected", status.HTTP_404_NOT_FOUND)


def _start_zone_read(
    request: Request,
    settings: Settings,
    limit: int,
    action: str,
    *,
    seeker_id: str | None = None,
) -> _ZoneRead:
    """Check ``limit`` against the page-size maximum and the seeker against the caller's scope.

    An unknown seeker, or one outside the caller's scope, is recorded under ``action``
    and raises NotFoundError, as on the seeker routes.
    """
    check_page_size(limit, settings.query.max_page_size, field="limit")
    if seeker_id is not None:
        _row_in_scope(request, seeker_id, action)
    return _ZoneRead(request, action, f"seeker:{seeker_id}" if seeker_id is not None else "")


def _seeker(recommender: Recommender, seeker_id: str) -> pd.Series:
    try:
        return recommender.seeker(seeker_id)
    except SeekerNotFoundError as err:
        raise NotFoundError(str(err), f"求职者 {seeker_id} 不存在") from err


def _row(seekers: pd.DataFrame, seeker_id: str) -> pd.Series:
    row: pd.Series = seekers.loc[[seeker_id]].iloc[0]
    return row


def _campuses(request: Request) -> pd.DataFrame:
    state = request.app.state
    campuses: pd.DataFrame | None = getattr(state, "zone_campuses", None)
    if campuses is None:
        campuses = load_campuses(state.settings.data.data_dir)
        state.zone_campuses = campuses
    return campuses


def _campus(request: Request, seeker: pd.Series) -> tuple[str, tuple[float, float] | None]:
    campuses = _campuses(request)
    name = str(graduate_universities(pd.DataFrame([seeker]), campuses).iloc[0])
    if not name:
        return "", None
    row = campuses.loc[campuses["university"] == name].iloc[0]
    return name, (float(row["lon"]), float(row["lat"]))


def _key_enterprises(request: Request) -> pd.DataFrame:
    store = request.app.state.store
    return key_enterprises(curated_anchors(store), store.anchors_frame())


def _region(request: Request) -> str | None:
    """Return the district code of the caller's organisation, None for the city bureau."""
    organisation: Organisation | None = _organisation(request)
    if organisation is None or organisation.level == "city":
        return None
    return organisation.district_code or organisation.region_code[:6]


def _suitable(request: Request, row: pd.Series, match: Any, lang: str) -> SuitableSeeker:
    personal = _codec(request).reveal({str(key): value for key, value in row.items()})
    code = row.get("home_community_code") or None
    area = None if code is None else generalise_home(str(code), app_regions(request.app.state))
    return SuitableSeeker(
        seeker_id=str(row["seeker_id"]),
        simulated=bool(row["simulated"]),
        group_label=GROUP_LABELS[lang][str(row["group"])],
        name=mask_name(personal.name),
        mobile=mask_mobile(personal.mobile),
        home_label=area.label() if area is not None else "",
        education=int(row["education"]),
        occupation_wish_name=str(row.get("occupation_wish_name") or ""),
        distance_km=round(float(match.distance_m) / 500.0) * 0.5,
        shared_levels=int(match.shared_levels),
        best_posting_id=str(match.best_posting_id),
    )
