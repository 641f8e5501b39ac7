"""Background jobs of the through-train planning routes.

``POST /v1/tours/plan/jobs`` and ``POST /v1/shuttles/proposals/jobs`` take the same
input as ``POST /v1/tours/plan`` and ``GET /v1/shuttles/proposals``, reject invalid
input with the same 422, and return 202 with a ``Location`` to poll. The job's
``result``, once ``state`` is ``done``, is the body the synchronous route returns.
Only the staff account that started a job can read it; anyone else gets 404.
See `api.background_jobs` for the pool, the queue bound and expiry.
"""

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response, status
from pydantic import BaseModel, Field

from api.auth import require
from api.background_jobs import Job, JobError, JobRunner
from api.errors import NotFoundError
from api.permissions import Permission
from api.route_routes import TransitDep
from api.routes import enforce_rate_limit
from api.staff_auth import StaffContext, StaffDep
from api.tour_routes import (
    MAX_SEEKERS,
    MaxSeekersQuery,
    MinRidersQuery,
    OutputCoordSysQuery,
    ShuttleProposalsOut,
    TourPlanIn,
    TourPlanOut,
    shuttle_proposals_work,
    tour_plan_work,
)
from geo.crs import CoordSys

logger = logging.getLogger(__name__)

router = APIRouter(dependencies=[Depends(enforce_rate_limit)])

TOUR_PLAN_KIND = "tour_plan"
SHUTTLE_PROPOSALS_KIND = "shuttle_proposals"

# Seconds a client should wait before polling an unfinished job again.
POLL_AFTER_S = 2

JobId = Annotated[str, Path(min_length=1, max_length=64, description="Id from the 202 response.")]


class JobProgress(BaseModel):
    """Seekers scored so far; planning after the last seeker still takes a few seconds."""

    done: int
    total: int
    fraction: float = Field(
        ge=0, le=1, description="done / total; without seekers 0, and 1 once finished."
    )


class JobErrorOut(BaseModel):
    """The reason a job failed, shaped like an item of an error response's ``detail``."""

    loc: list[str]
    msg: str
    msg_zh: str
    type: str


class JobOut(BaseModel):
    """A background job: its state, progress and timestamps (UTC)."""

    id: str
    kind: str = Field(description="tour_plan or shuttle_proposals.")
    state: str = Field(description="queued, running, done or failed.")
    progress: JobProgress
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None = Field(description="When a finished job is deleted.")
    error: JobErrorOut | None = Field(description="Set when state is failed.")


class TourPlanJobOut(JobOut):
    """A tour-planning job; ``result`` is the body of ``POST /v1/tours/plan`` once done."""

    result: TourPlanOut | None


class ShuttleProposalsJobOut(JobOut):
    """A shuttle-proposal job; ``result`` is the body of ``GET /v1/shuttles/proposals``."""

    result: ShuttleProposalsOut | None


@router.post(
    "/v1/tours/plan/jobs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TourPlanJobOut,
    tags=["through-train"],
    dependencies=[require(Permission.TOUR_PLAN)],
)
def start_tour_plan_job(
    request: Request, response: Response, body: TourPlanIn, network: TransitDep, staff: StaffDep
) -> TourPlanJobOut:
    """Start planning a recruitment-bus tour in the background; poll the ``Location``."""
    total, work = tour_plan_work(request, body, network, staff)
    job = job_runner(request).submit(TOUR_PLAN_KIND, staff.staff_id, total, work)
    _accepted(request, response, "tour_plan_job", job)
    return TourPlanJobOut(**_job_fields(job), result=None)


@router.get(
    "/v1/tours/plan/jobs/{job_id}",
    name="tour_plan_job",
    response_model=TourPlanJobOut,
    tags=["through-train"],
    dependencies=[require(Permission.TOUR_PLAN)],
)
def tour_plan_job(
    request: Request, response: Response, job_id: JobId, staff: StaffDep
) -> TourPlanJobOut:
    """Return the state and progress of a tour-planning job, and its result once done."""
    job = _own_job(request, response, job_id, TOUR_PLAN_KIND, staff)
    return TourPlanJobOut(**_job_fields(job), result=job.result)


@router.post(
    "/v1/shuttles/proposals/jobs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ShuttleProposalsJobOut,
    tags=["through-train"],
    dependencies=[require(Permission.TOUR_PLAN)],
)
def start_shuttle_proposals_job(
    request: Request,
    response: Response,
    network: TransitDep,
    staff: StaffDep,
    max_seekers: MaxSeekersQuery = MAX_SEEKERS,
    min_riders: MinRidersQuery = 3,
    coord_sys: OutputCoordSysQuery = CoordSys.WGS84,
) -> ShuttleProposalsJobOut:
    """Start proposing shuttle lines in the background, with the query of the GET route."""
    total, work = shuttle_proposals_work(
        request, network, staff, max_seekers, min_riders, coord_sys
    )
    job = job_runner(request).submit(SHUTTLE_PROPOSALS_KIND, staff.staff_id, total, work)
    _accepted(request, response, "shuttle_proposals_job", job)
    return ShuttleProposalsJobOut(**_job_fields(job), result=None)


@router.get(
    "/v1/shuttles/proposals/jobs/{job_id}",
    name="shuttle_proposals_job",
    response_model=ShuttleProposalsJobOut,
    tags=["through-train"],
    dependencies=[require(Permission.TOUR_PLAN)],
)
def shuttle_proposals_job(
    request: Request, response: Response, job_id: JobId, staff: StaffDep
) -> ShuttleProposalsJobOut:
    """Return the state and progress of a shuttle-proposal job, and its result once done."""
    job = _own_job(request, response, job_id, SHUTTLE_PROPOSALS_KIND, staff)
    return ShuttleProposalsJobOut(**_job_fields(job), result=job.result)


def job_runner(request: Request) -> JobRunner:
    """Return the app's job runner, opened in the lifespan."""
    runner: JobRunner = request.app.state.through_train_jobs
    return runner


def _accepted(request: Request, response: Response, route_name: str, job: Job) -> None:
    response.headers["Location"] = request.app.url_path_for(route_name, job_id=job.job_id)
    response.headers["Retry-After"] = str(POLL_AFTER_S)


def _own_job(
    request: Request, response: Response, job_id: str, kind: str, staff: StaffContext
) -> Job:
    """Return the caller's job of ``kind``; another account's job is reported as missing."""
    job = job_runner(request).get(job_id, kind, staff.staff_id)
    if job is None:
        raise NotFoundError(
            f"job {job_id} not found; it may belong to another account, or it finished and expired",
            message_zh="未找到该任务：任务不存在、不属于当前账号或已过期",
        )
    if job.finished_at is None:
        response.headers["Retry-After"] = str(POLL_AFTER_S)
    return job


def _job_fields(job: Job) -> dict[str, Any]:
    finished_empty = job.total == 0 and job.finished_at is not None
    fraction = 1.0 if finished_empty else job.done / max(job.total, 1)
    return {
        "id": job.job_id,
        "kind": job.kind,
        "state": job.state.value,
        "progress": JobProgress(done=job.done, total=job.total, fraction=fraction),
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "expires_at": job.expires_at,
        "error": None if job.error is None else _error_out(job.error),
    }


def _error_out(error: JobError) -> JobErrorOut:
    return JobErrorOut(
        loc=list(error.location), msg=error.message, msg_zh=error.message_zh, type=error.error_type
    )
