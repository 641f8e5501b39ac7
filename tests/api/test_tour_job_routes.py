"""Background jobs of the tour and shuttle routes, on the real data store and real sessions."""

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.background_jobs import GENERIC_FAILURE, JobRunner
from api.settings import AuthSettings, CacheSettings, DataSettings, JobSettings, Settings
from api.tour_job_routes import SHUTTLE_PROPOSALS_KIND, TOUR_PLAN_KIND
from store.identity import Role
from store.sqlite import SqliteStore
from tests.api.staff_login import StaffLogin, log_in_staff

YANTA = "610113"
DEPOT = {"lon": 108.9423, "lat": 34.2610}
TOUR_JOBS = "/v1/tours/plan/jobs"
SHUTTLE_JOBS = "/v1/shuttles/proposals/jobs"
# Seconds a test waits for a job on the 500-seeker test store before it fails.
JOB_TIMEOUT_S = 60


class SteppedClock:
    """Monotonic seconds that a test moves forward by hand."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def jobs_client(
    full_store: SqliteStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("tour-jobs")
    settings = Settings(
        data=DataSettings(store_path=full_store.path),
        auth=AuthSettings(identity_path=folder / "identity.sqlite"),
        jobs=JobSettings(workers=1, max_queued=1, ttl_s=600),
        # The tests poll far faster than the per-address limit allows a client to.
        cache=CacheSettings(rate_limit_per_minute=0),
    )
    with TestClient(create_app(settings, store=full_store)) as client:
        yield client


@pytest.fixture(scope="module")
def yanta_staff(jobs_client: TestClient) -> StaffLogin:
    return log_in_staff(jobs_client, org_id=f"district:{YANTA}")


def _runner(client: TestClient) -> JobRunner:
    runner: JobRunner = client.app.state.through_train_jobs  # type: ignore[attr-defined]
    return runner


def _tour_body(client: TestClient, **changes: Any) -> dict[str, Any]:
    postings = client.app.state.recommender.postings  # type: ignore[attr-defined]
    located = postings.loc[postings["district_code"].astype(str) == YANTA]
    anchors = list(located["anchor_id"].value_counts().index[:5].astype(str))
    body = {"anchor_ids": anchors, "depot": DEPOT, "budget_min": 480, "dwell_min": 30}
    return {**body, **changes}


def _poll(client: TestClient, location: str, staff: StaffLogin) -> list[dict[str, Any]]:
    """Poll a job until it finishes; return every body seen, the finished one last."""
    seen = []
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        response = client.get(location, headers=staff.headers)
        assert response.status_code == 200, response.text
        seen.append(response.json())
        if seen[-1]["state"] in ("done", "failed"):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"job {location} unfinished after {JOB_TIMEOUT_S} s: {seen[-1]}")


def _accepted(response: Any, prefix: str) -> str:
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["state"] in ("queued", "running")
    assert body["result"] is None
    location = response.headers["Location"]
    assert location == f"{prefix}/{body['id']}"
    return location


def test_tour_job_result_equals_sync(jobs_client: TestClient, yanta_staff: StaffLogin) -> None:
    body = _tour_body(jobs_client)

    response = jobs_client.post(TOUR_JOBS, json=body, headers=yanta_staff.headers)
    seen = _poll(jobs_client, _accepted(response, TOUR_JOBS), yanta_staff)
    direct = jobs_client.post("/v1/tours/plan", json=body, headers=yanta_staff.headers)

    assert direct.status_code == 200, direct.text
    finished = seen[-1]
    assert finished["state"] == "done", finished
    assert finished["kind"] == TOUR_PLAN_KIND
    assert finished["error"] is None
    assert finished["result"] == direct.json()
    assert finished["result"]["tours"]


def test_tour_job_progress_grows(jobs_client: TestClient, yanta_staff: StaffLogin) -> None:
    response = jobs_client.post(
        TOUR_JOBS, json=_tour_body(jobs_client), headers=yanta_staff.headers
    )
    seen = _poll(jobs_client, _accepted(response, TOUR_JOBS), yanta_staff)

    done = [item["progress"]["done"] for item in seen]
    fractions = [item["progress"]["fraction"] for item in seen]
    finished = seen[-1]
    total = finished["result"]["seekers_scored"]
    assert total > 0
    assert {item["progress"]["total"] for item in seen} == {total}
    assert done == sorted(done)
    assert fractions == sorted(fractions)
    assert finished["progress"] == {"done": total, "total": total, "fraction": 1.0}
    assert finished["created_at"] <= finished["started_at"] <= finished["finished_at"]
    assert finished["expires_at"] > finished["finished_at"]


def test_shuttle_job_result_equals_sync(jobs_client: TestClient, yanta_staff: StaffLogin) -> None:
    params = {"max_seekers": 40, "min_riders": 1, "coord_sys": "gcj02"}

    response = jobs_client.post(SHUTTLE_JOBS, params=params, headers=yanta_staff.headers)
    seen = _poll(jobs_client, _accepted(response, SHUTTLE_JOBS), yanta_staff)
    direct = jobs_client.get("/v1/shuttles/proposals", params=params, headers=yanta_staff.headers)

    assert direct.status_code == 200, direct.text
    finished = seen[-1]
    assert finished["state"] == "done", finished
    assert finished["kind"] == SHUTTLE_PROPOSALS_KIND
    assert finished["result"] == direct.json()
    assert finished["progress"] == {"done": 40, "total": 40, "fraction": 1.0}


def test_unfinished_job_asks_to_retry(jobs_client: TestClient, yanta_staff: StaffLogin) -> None:
    release = threading.Event()
    job = _runner(jobs_client).submit(
        TOUR_PLAN_KIND, yanta_staff.account_id, 10, lambda progress: release.wait(JOB_TIMEOUT_S)
    )
    try:
        response = jobs_client.get(f"{TOUR_JOBS}/{job.job_id}", headers=yanta_staff.headers)
    finally:
        release.set()

    assert response.status_code == 200, response.text
    assert response.json()["state"] in ("queued", "running")
    assert response.json()["finished_at"] is None
    assert response.headers["Retry-After"] == "2"


def test_invalid_tour_job_is_same_422(jobs_client: TestClient, yanta_staff: StaffLogin) -> None:
    body = _tour_body(jobs_client, depot={"lon": 116.4, "lat": 39.9})

    job = jobs_client.post(TOUR_JOBS, json=body, headers=yanta_staff.headers)
    direct = jobs_client.post("/v1/tours/plan", json=body, headers=yanta_staff.headers)

    assert job.status_code == 422
    assert job.json()["detail"][0]["loc"] == ["body", "depot"]
    assert job.json() == direct.json()


def test_other_district_anchor_job_is_422(jobs_client: TestClient, yanta_staff: StaffLogin) -> None:
    postings = jobs_client.app.state.recommender.postings  # type: ignore[attr-defined]
    beilin = postings.loc[postings["district_code"].astype(str) == "610103", "anchor_id"]
    body = _tour_body(jobs_client, anchor_ids=[str(beilin.iloc[0])])

    job = jobs_client.post(TOUR_JOBS, json=body, headers=yanta_staff.headers)
    direct = jobs_client.post("/v1/tours/plan", json=body, headers=yanta_staff.headers)

    assert job.status_code == 422
    assert job.json()["detail"][0]["loc"] == ["body", "anchor_ids"]
    assert job.json() == direct.json()


def test_invalid_shuttle_job_is_same_422(jobs_client: TestClient, yanta_staff: StaffLogin) -> None:
    params = {"max_seekers": 20_001}

    job = jobs_client.post(SHUTTLE_JOBS, params=params, headers=yanta_staff.headers)
    direct = jobs_client.get("/v1/shuttles/proposals", params=params, headers=yanta_staff.headers)

    assert job.status_code == 422
    assert job.json()["detail"][0]["loc"] == ["query", "max_seekers"]
    assert job.json() == direct.json()


def test_other_staff_get_404(jobs_client: TestClient, yanta_staff: StaffLogin) -> None:
    response = jobs_client.post(
        SHUTTLE_JOBS, params={"max_seekers": 5}, headers=yanta_staff.headers
    )
    location = _accepted(response, SHUTTLE_JOBS)
    _poll(jobs_client, location, yanta_staff)
    colleague = log_in_staff(jobs_client, org_id=f"district:{YANTA}")
    analyst = log_in_staff(jobs_client, org_id="city", role=Role.ANALYST)
    job_id = location.rsplit("/", 1)[1]

    for other in (colleague, analyst):
        hidden = jobs_client.get(location, headers=other.headers)
        assert hidden.status_code == 404, hidden.text
        assert "任务" in hidden.json()["detail"][0]["msg_zh"]
    wrong_kind = jobs_client.get(f"{TOUR_JOBS}/{job_id}", headers=yanta_staff.headers)
    assert wrong_kind.status_code == 404
    unknown = jobs_client.get(f"{SHUTTLE_JOBS}/no-such-job", headers=yanta_staff.headers)
    assert unknown.status_code == 404


def test_officer_cannot_start_job(jobs_client: TestClient) -> None:
    officer = log_in_staff(jobs_client, org_id=f"district:{YANTA}", role=Role.ASSISTANCE_OFFICER)

    response = jobs_client.post(TOUR_JOBS, json=_tour_body(jobs_client), headers=officer.headers)

    assert response.status_code == 403


def test_full_queue_is_503(jobs_client: TestClient, yanta_staff: StaffLogin) -> None:
    runner = _runner(jobs_client)
    release = threading.Event()
    blockers = [
        runner.submit(TOUR_PLAN_KIND, "blocker", 1, lambda progress: release.wait(JOB_TIMEOUT_S))
        for _ in range(runner.capacity)
    ]
    try:
        rejected = jobs_client.post(
            TOUR_JOBS, json=_tour_body(jobs_client), headers=yanta_staff.headers
        )
    finally:
        release.set()
    for blocker in blockers:
        _wait_finished(runner, blocker.job_id, "blocker")
    accepted = jobs_client.post(
        SHUTTLE_JOBS, params={"max_seekers": 5}, headers=yanta_staff.headers
    )

    assert rejected.status_code == 503, rejected.text
    assert rejected.headers["Retry-After"] == "30"
    detail = rejected.json()["detail"][0]
    assert "the job queue is full (2 jobs running or waiting)" in detail["msg"]
    assert "后台任务队列已满" in detail["msg_zh"]
    _poll(jobs_client, _accepted(accepted, SHUTTLE_JOBS), yanta_staff)


def test_budget_too_short_fails_job(jobs_client: TestClient, yanta_staff: StaffLogin) -> None:
    body = _tour_body(jobs_client, budget_min=60, dwell_min=120, max_seekers=20)

    response = jobs_client.post(TOUR_JOBS, json=body, headers=yanta_staff.headers)
    finished = _poll(jobs_client, _accepted(response, TOUR_JOBS), yanta_staff)[-1]

    assert finished["state"] == "failed"
    assert finished["result"] is None
    # The budget is checked after matching, so every seeker was scored.
    assert finished["progress"]["done"] == 20
    error = finished["error"]
    assert error["loc"] == ["body", "budget_min"]
    assert "too short: the nearest stop needs" in error["msg"]
    assert "时间预算" in error["msg_zh"]


def test_internal_failure_is_generic(
    jobs_client: TestClient, yanta_staff: StaffLogin, caplog: pytest.LogCaptureFixture
) -> None:
    def crash(progress: Any) -> None:
        progress(3, 10)
        raise RuntimeError("seeker S0001 mobile 13912345678 has no home")

    with caplog.at_level(logging.ERROR, logger="api.background_jobs"):
        job = _runner(jobs_client).submit(TOUR_PLAN_KIND, yanta_staff.account_id, 10, crash)
        finished = _poll(jobs_client, f"{TOUR_JOBS}/{job.job_id}", yanta_staff)[-1]

    assert finished["state"] == "failed"
    assert finished["progress"]["done"] == 3
    assert finished["error"] == {
        "loc": [],
        "msg": GENERIC_FAILURE,
        "msg_zh": finished["error"]["msg_zh"],
        "type": "JobFailedError",
    }
    assert "13912345678" not in str(finished)
    assert "Traceback" not in str(finished)
    logged = [record for record in caplog.records if job.job_id in record.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None


def test_finished_job_expires(jobs_client: TestClient, yanta_staff: StaffLogin) -> None:
    runner = _runner(jobs_client)
    clock = SteppedClock()
    runner.clock = clock
    try:
        response = jobs_client.post(
            SHUTTLE_JOBS, params={"max_seekers": 5}, headers=yanta_staff.headers
        )
        location = _accepted(response, SHUTTLE_JOBS)
        _poll(jobs_client, location, yanta_staff)
        clock.now += 599
        before_expiry = jobs_client.get(location, headers=yanta_staff.headers)
        clock.now += 1
        expired = jobs_client.get(location, headers=yanta_staff.headers)
    finally:
        runner.clock = time.monotonic

    assert before_expiry.status_code == 200
    assert expired.status_code == 404


def _wait_finished(runner: JobRunner, job_id: str, owner_id: str) -> None:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = runner.get(job_id, TOUR_PLAN_KIND, owner_id)
        if job is None or job.finished_at is not None:
            return
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} unfinished after {JOB_TIMEOUT_S} s")
