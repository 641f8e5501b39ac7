"""The job runner itself: its bound on finished jobs and its progress counter."""

import time
from collections.abc import Iterator

import pytest

from api.background_jobs import Job, JobRunner, JobState, Progress
from api.errors import ServiceUnavailableError
from api.settings import JobSettings

TIMEOUT_S = 10


@pytest.fixture
def runner() -> Iterator[JobRunner]:
    jobs = JobRunner(JobSettings(workers=1, max_queued=2, ttl_s=600, max_finished=2))
    yield jobs
    jobs.shutdown()


def _finished(runner: JobRunner, job_id: str) -> Job:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        job = runner.get(job_id, "test", "owner")
        assert job is not None, f"job {job_id} disappeared"
        if job.finished_at is not None:
            return job
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} unfinished after {TIMEOUT_S} s")


def test_oldest_finished_job_dropped(runner: JobRunner) -> None:
    ids = []
    for value in range(3):
        job = runner.submit("test", "owner", 1, lambda progress, value=value: value)
        _finished(runner, job.job_id)
        ids.append(job.job_id)

    assert runner.get(ids[0], "test", "owner") is None
    assert [runner.get(job_id, "test", "owner") is not None for job_id in ids[1:]] == [True, True]


def test_progress_never_decreases(runner: JobRunner) -> None:
    def work(progress: Progress) -> str:
        progress(5, 10)
        progress(3, 10)
        return "ok"

    job = _finished(runner, runner.submit("test", "owner", 10, work).job_id)

    assert job.state is JobState.DONE
    assert job.result == "ok"
    assert job.done == 5


def test_progress_capped_at_total(runner: JobRunner) -> None:
    job = _finished(
        runner, runner.submit("test", "owner", 10, lambda progress: progress(50, 10)).job_id
    )

    assert job.done == 10


def test_job_of_other_owner_hidden(runner: JobRunner) -> None:
    job = _finished(runner, runner.submit("test", "owner", 1, lambda progress: None).job_id)

    assert runner.get(job.job_id, "test", "someone-else") is None
    assert runner.get(job.job_id, "other-kind", "owner") is None


def test_shut_down_runner_rejects(runner: JobRunner) -> None:
    runner.shutdown()

    with pytest.raises(ServiceUnavailableError, match="the service is stopping"):
        runner.submit("test", "owner", 1, lambda progress: None)
