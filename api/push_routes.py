"""Routes of "job at your doorstep" pushes: consent, the inbox, preferences, dead letters, postings.

Seeker routes act on the logged-in seeker: their push rows are keyed by the seeker id
of the profile linked to the account, or by the account id while it has no profile.
A preference change is stored in the profile and writes one digest of the jobs that now
qualify in the same transaction. Staff activate a posting in their scope, which writes
the push decisions in the same transaction. Administrators read the dead-letter list.
"""

import logging
import secrets
import sqlite3
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.auth import require
from api.errors import NotFoundError
from api.index_sync import IndexSync
from api.me_routes import accounts_service, home_point, own_seeker_id, save_profile
from api.permissions import Permission
from api.security.audit import recorded_write
from api.seeker_accounts import ProfileInput
from api.staff_auth import StaffDep
from geo.anchor_states import AnchorState, ensure_in_scope
from geo.curation import AnchorRecord
from push.service import PushService
from store.base import CurationStore
from store.push_outbox import PushBatch
from store.push_store import PushStore

logger = logging.getLogger(__name__)

router = APIRouter(tags=["pushes"])


class ConsentIn(BaseModel):
    """A seeker's consent to, or opt-out from, pushes of jobs near home."""

    model_config = ConfigDict(extra="forbid")

    # Strict, so that "yes", 1 or "on" are rejected: consent must be an explicit true.
    consent: StrictBool = Field(description="true gives explicit consent; false opts out.")
    channel: Literal["inbox", "sms", "wechat"] = Field(default="inbox")
    lang: Literal["zh", "en"] | None = Field(
        default=None,
        description="Language of the messages; omitted keeps the stored one (zh at first).",
    )


class ConsentOut(BaseModel):
    """A seeker's stored push consent."""

    consented: bool
    consented_at: datetime | None
    opted_out_at: datetime | None
    channel: str
    lang: str


class InboxMessage(BaseModel):
    """One in-app inbox message."""

    push_id: str
    title: str
    body: str
    link: str
    created_at: datetime
    read_at: datetime | None


class DeadLetter(BaseModel):
    """A push claimed ``max_attempts`` times without delivery, without its message text."""

    push_id: str
    seeker_id: str
    kind: str
    posting_id: str | None
    channel: str
    attempts: int = Field(
        description="Claims of the push; a worker that died while sending counts as one."
    )
    last_error: str | None = Field(
        description="The last failure: the gateway's HTTP status or masked status, or the"
        " claims without a recorded failure."
    )
    created_at: datetime


class PreferencesIn(BaseModel):
    """A seeker's new home, commute limit and wishes."""

    model_config = ConfigDict(extra="forbid")

    home_lon: float = Field(description="Home longitude in coord_sys degrees.")
    home_lat: float = Field(description="Home latitude in coord_sys degrees.")
    coord_sys: Literal["wgs84", "gcj02", "bd09"] = Field(default="wgs84")
    max_commute_min: int = Field(ge=5, le=120, description="One-way commute limit, minutes.")
    modes: list[Literal["walk", "bike", "transit", "drive"]] = Field(
        default=["walk", "transit"], min_length=1, max_length=4
    )
    occupation_wish_code: str | None = Field(
        default=None,
        pattern=r"^\d-\d{2}-\d{2}-\d{2}$",
        description="Code of a level-4 occupation (细类) of the 2022 classification, e.g."
        " 2-02-10-03; an unknown code or a higher level (2-02-10-00) is rejected.",
    )
    keywords: list[Annotated[str, Field(min_length=1, max_length=20)]] = Field(
        default=[], max_length=10
    )
    salary_wish_min: float | None = Field(
        default=None, ge=0, le=1_000_000, description="Yuan/month."
    )
    salary_wish_max: float | None = Field(
        default=None, ge=0, le=1_000_000, description="Yuan/month."
    )
    education: int = Field(default=0, ge=0, le=6, description="EducationLevel value.")
    experience_years: float = Field(default=0.0, ge=0, le=60)


class DigestOut(BaseModel):
    """Outcome of a preference change: at most one digest push."""

    digest_push_id: str | None = Field(description="None when nothing new qualifies or no consent.")
    jobs: int = Field(
        description="Qualifying jobs found, best first, before jobs already shown are dropped;"
        " capped at 4 x DOORSTEP_PUSH_DIGEST_SIZE (20 by default), so the true count may be"
        " higher."
    )


class PostingStateIn(BaseModel):
    """A posting's new state."""

    model_config = ConfigDict(extra="forbid")

    active: StrictBool


class PostingStateOut(BaseModel):
    """Outcome of a posting state change."""

    posting_id: str
    active: bool
    changed: bool
    pushes_written: int = Field(description="Push decisions written with the change.")
    ranked_by: str | None = Field(
        default=None,
        description="Scorer of the push candidates: a ranker model id, or baseline.",
    )


def _push_store(request: Request) -> PushStore:
    store: PushStore = request.app.state.push_store
    return store


def _push_service(request: Request) -> PushService:
    service: PushService = request.app.state.push_service
    return service


def _seeker_id(request: Request) -> str:
    """Return the caller's linked seeker id, or their account id while they have no profile."""
    service = getattr(request.app.state, "seeker_accounts", None)
    account = request.state.principal.account
    linked = None if service is None else service.resolve(account)
    return str(linked or account.account_id)


PushStoreDep = Annotated[PushStore, Depends(_push_store)]
# Ids are bounded to 64 characters, so a 404 message repeats no longer value.
PushIdPath = Annotated[
    str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="Push id.")
]
PostingIdPath = Annotated[
    str, Path(max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="Posting id.")
]
PushServiceDep = Annotated[PushService, Depends(_push_service)]
SeekerIdDep = Annotated[str, Depends(_seeker_id)]


def _consent_out(row: dict[str, Any] | None) -> ConsentOut:
    if row is None:
        return ConsentOut(
            consented=False, consented_at=None, opted_out_at=None, channel="inbox", lang="zh"
        )
    consented = row["consented_at"] is not None and row["opted_out_at"] is None
    return ConsentOut(
        consented=consented,
        consented_at=row["consented_at"],
        opted_out_at=row["opted_out_at"],
        channel=row["channel"],
        lang=row["lang"],
    )


@router.put(
    "/v1/seeker/push-consent",
    response_model=ConsentOut,
    dependencies=[require(Permission.PUSH_SEEKER)],
)
def put_consent(body: ConsentIn, seeker_id: SeekerIdDep, store: PushStoreDep) -> ConsentOut:
    """Give explicit consent to pushes (stored with its time) or opt out before the next push."""
    row = store.set_consent(
        seeker_id, consent=body.consent, at=datetime.now(UTC), channel=body.channel, lang=body.lang
    )
    logger.info("seeker %r push consent set to %s", seeker_id, body.consent)
    return _consent_out(row)


@router.get(
    "/v1/seeker/push-consent",
    response_model=ConsentOut,
    dependencies=[require(Permission.PUSH_SEEKER)],
)
def get_consent(seeker_id: SeekerIdDep, store: PushStoreDep) -> ConsentOut:
    """Return the caller's push consent."""
    return _consent_out(store.consent(seeker_id))


@router.get(
    "/v1/seeker/inbox",
    response_model=list[InboxMessage],
    dependencies=[require(Permission.PUSH_SEEKER)],
)
def inbox(
    seeker_id: SeekerIdDep,
    store: PushStoreDep,
    unread_only: Annotated[bool, Query(description="Only unread messages.")] = False,
    limit: Annotated[int, Query(ge=1, le=100, description="Messages per page.")] = 20,
) -> list[InboxMessage]:
    """List the caller's inbox messages, newest first."""
    rows = store.inbox(seeker_id, unread_only=unread_only, limit=limit)
    return [InboxMessage(**row) for row in rows]


@router.post(
    "/v1/seeker/inbox/{push_id}/read",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[require(Permission.PUSH_SEEKER)],
)
def mark_read(push_id: PushIdPath, seeker_id: SeekerIdDep, store: PushStoreDep) -> Response:
    """Mark one of the caller's inbox messages read."""
    if not store.mark_read(seeker_id, push_id, datetime.now(UTC)):
        raise NotFoundError(f"inbox message {push_id!r} not found", "消息不存在")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch(
    "/v1/seeker/preferences",
    response_model=DigestOut,
    dependencies=[require(Permission.PUSH_SEEKER)],
)
def change_preferences(body: PreferencesIn, request: Request) -> DigestOut:
    """Store new preferences in the caller's profile and send one digest of qualifying jobs."""
    seeker_id = own_seeker_id(request)
    current = None
    if seeker_id is not None:
        current = accounts_service(request).refreshed_row(seeker_id, request.app.state.recommender)
    if seeker_id is None or current is None:
        raise NotFoundError(
            "you have no seeker profile yet; create it with PUT /v1/me/profile",
            "尚未填写求职者资料，请先填写（PUT /v1/me/profile）",
        )
    lon, lat = home_point(body.home_lon, body.home_lat, body.coord_sys)
    profile = ProfileInput(
        group=str(current["group"]),
        education=body.education,
        experience_years=body.experience_years,
        max_commute_min=body.max_commute_min,
        modes=list(body.modes),
        home_lon=lon,
        home_lat=lat,
        # A new point may lie in another community, so the old one is dropped with a move.
        community_code=None if lon is not None else str(current["home_community_code"] or ""),
        major=str(current.get("major") or ""),
        occupation_wish_code=body.occupation_wish_code or "",
        keywords=list(body.keywords),
        salary_wish_min=body.salary_wish_min,
        salary_wish_max=body.salary_wish_max,
    )
    saved = save_profile(request, profile)
    return DigestOut(digest_push_id=saved.digest_push_id, jobs=saved.jobs)


@router.get(
    "/v1/admin/push/dead-letters",
    response_model=list[DeadLetter],
    dependencies=[require(Permission.PUSH_ADMIN)],
)
def dead_letters(
    store: PushStoreDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Pushes per page.")] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Pushes to skip.")] = 0,
) -> list[DeadLetter]:
    """List pushes that failed every delivery attempt, oldest first."""
    return [DeadLetter(**row) for row in store.dead_letters(limit, offset)]


@router.patch(
    "/v1/staff/postings/{posting_id}",
    response_model=PostingStateOut,
    dependencies=[require(Permission.ANCHOR_WRITE)],
)
def set_posting_state(
    posting_id: PostingIdPath,
    body: PostingStateIn,
    request: Request,
    staff: StaffDep,
    pushes: PushServiceDep,
) -> PostingStateOut:
    """Activate or deactivate a posting in the caller's scope; activation writes its pushes."""
    store = request.app.state.store
    if not isinstance(store, CurationStore):
        raise TypeError(f"store {type(store).__name__} does not implement CurationStore")
    posting = store.posting_for_push(posting_id)
    anchor = None if posting is None else store.get_anchor(str(posting["anchor_id"]))
    if posting is None or anchor is None:
        raise NotFoundError(f"posting {posting_id!r} not found", "岗位不存在")
    ensure_in_scope(anchor, staff.scope)

    batch = None
    if body.active and request.app.state.settings.push.enabled:
        batch = pushes.job_batch(f"posting.active:{posting_id}", [posting], datetime.now(UTC))
    with recorded_write(request, staff, "posting.update", f"posting:{posting_id}") as audit:
        changed = store.set_posting_active(posting_id, body.active, audit=audit, pushes=batch)
    refresh_recommendations(request, posting_id, body.active, posting)
    written = len(batch.written) if batch is not None and changed else 0
    return PostingStateOut(
        posting_id=posting_id,
        active=body.active,
        changed=changed,
        pushes_written=written,
        ranked_by=None if batch is None else batch.ranker,
    )


def refresh_recommendations(
    request: Request, posting_id: str, active: bool, posting: dict[str, Any]
) -> None:
    """Add or remove the posting in the job index and start new response-cache keys.

    Runs after the store committed. The stored change log is applied first
    (:class:`api.index_sync.IndexSync`), which the other service processes apply within
    their sync interval. The posting is then set directly to its stored state as well,
    so this process follows at once even when the request repeats a state the store
    already had. Another process's write committed after this request's wins, as it
    does in the store. Only when the store cannot be read is the requested state set.
    """
    state = request.app.state
    sync: IndexSync = state.index_sync
    # Under the sync's lock, so no change applied meanwhile is undone with a stale read.
    with sync.lock:
        stored = None
        if apply_stored_changes(sync) is not None:
            stored = _stored_posting(state.store, posting_id)
        row = {**posting, "active": active} if stored is None else stored
        changed = state.recommender.set_posting_active(posting_id, bool(row["active"]), row)
    if changed:
        state.build_id = f"{sync.build_id}-{secrets.token_hex(4)}"


def _stored_posting(store: CurationStore, posting_id: str) -> dict[str, Any] | None:
    """Return the posting as stored now, or None when the store cannot be read."""
    try:
        return store.posting_for_push(posting_id)
    except (psycopg.Error, sqlite3.Error) as err:
        logger.warning("reading posting %r after its write failed: %s", posting_id, err)
        return None


def apply_stored_changes(sync: IndexSync) -> int | None:
    """Apply the stored job-index changes after a write; return how many, None on a store error.

    The write has committed, so its response must not fail because of the read. The
    error is logged, and the background sync applies the changes on its next check.
    """
    try:
        return sync.catch_up()
    except (psycopg.Error, sqlite3.Error) as err:
        logger.warning("applying stored job-index changes failed, left to the sync: %s", err)
        return None


def verified_anchor_pushes(
    request: Request, before: AnchorRecord, after: AnchorRecord
) -> PushBatch | None:
    """Return the push batch of an anchor edit that makes it verified, or None.

    The anchor's active postings are fanned out at the edited point and precision.
    """
    if after.state != AnchorState.VERIFIED or before.state == AnchorState.VERIFIED:
        return None
    state = request.app.state
    if not state.settings.push.enabled:
        return None
    postings = state.recommender.postings
    rows = postings[postings["anchor_id"] == after.anchor_id].to_dict("records")
    placed = [
        {**row, "lon": after.lon, "lat": after.lat, "precision": after.precision.value}
        for row in rows
    ]
    service: PushService = state.push_service
    return service.job_batch(f"anchor.verified:{after.anchor_id}", placed, datetime.now(UTC))
