"""Background jobs: long planning requests run in a bounded in-process thread pool.

A job belongs to the staff account that started it. It moves from ``queued`` to
``running`` to ``done`` or ``failed``, counts its progress in seekers scored, and is
dropped ``ttl_s`` seconds after it finishes, or earlier when more than
``max_finished`` finished jobs are kept. At most ``workers + max_queued`` jobs are
unfinished at once; :meth:`JobRunner.submit` rejects one more with
:class:`JobQueueFullError`.

Jobs live in the memory of one service process, so a restart loses them, and with
several worker processes a poll must reach the process that accepted the job.
"""

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from api.errors import QueryLimitError, ServiceUnavailableError
from api.settings import JobSettings

logger = logging.getLogger(__name__)

# Bytes of randomness in a job id, so ids cannot be guessed.
_JOB_ID_BYTES = 16
# Seconds a rejected client should wait: a city-wide job takes about a minute.
_QUEUE_FULL_RETRY_AFTER_S = 30

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` with seekers scored so far."""

Work = Callable[[Progress], Any]
"""The job's computation; it receives the progress callback and returns the result."""

GENERIC_FAILURE = (
    "the job failed because of an internal error; start it again, and if it fails again"
    " give the job id to the service administrator"
)
GENERIC_FAILURE_ZH = (
    "任务执行失败（服务内部错误）。请重新提交；如再次失败，请将任务编号提供给系统管理员"
)


class JobState(StrEnum):
    """The state of a job."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobQueueFullError(ServiceUnavailableError):
    """Every worker is busy and the queue of waiting jobs is full."""

    def __init__(self, capacity: int, retry_after_s: int) -> None:
        super().__init__(
            f"the job queue is full ({capacity} jobs running or waiting); retry after"
            f" {retry_after_s} s, or use the synchronous route for a small max_seekers",
            f"后台任务队列已满（{capacity} 个任务正在运行或等待），请在 {retry_after_s} 秒后重试",
        )
        self.headers = {"Retry-After": str(retry_after_s)}


@dataclass(frozen=True)
class JobError:
    """The reason a job failed, in the shape of an error ``detail`` item."""

    message: str
    message_zh: str
    location: tuple[str, ...] = ()
    error_type: str = "JobFailedError"


@dataclass
class Job:
    """One background job and its outcome. Fields change only under the runner's lock."""

    job_id: str
    kind: str
    owner_id: str
    total: int
    created_at: datetime
    state: JobState = JobState.QUEUED
    done: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    result: Any = None
    error: JobError | None = None
    finished_clock: float = field(default=0.0, repr=False)


class JobRunner:
    """The bounded pool that runs jobs, and the table of jobs it keeps.

    Parameters
    ----------
    settings
        Pool size, queue length and retention of finished jobs.
    clock
        Monotonic seconds, used for expiry; `time.monotonic` by default.
    """

    def __init__(self, settings: JobSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self._executor = ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix="doorstep-job"
        )
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        # Finished job ids, oldest first, for expiry and the max_finished bound.
        self._finished: OrderedDict[str, None] = OrderedDict()

    @property
    def capacity(self) -> int:
        """Jobs that may be unfinished at once: running plus waiting."""
        return self.settings.workers + self.settings.max_queued

    def submit(self, kind: str, owner_id: str, total: int, work: Work) -> Job:
        """Queue ``work`` as a new job of ``owner_id``; ``total`` is the seekers it scores.

        Raises
        ------
        JobQueueFullError
            ``capacity`` jobs are already running or waiting.
        """
        with self._lock:
            self._expire()
            unfinished = len(self._jobs) - len(self._finished)
            if unfinished >= self.capacity:
                logger.warning(
                    "job of kind %s by %s rejected: %d jobs unfinished", kind, owner_id, unfinished
                )
                raise JobQueueFullError(self.capacity, _QUEUE_FULL_RETRY_AFTER_S)
            job = Job(
                job_id=secrets.token_urlsafe(_JOB_ID_BYTES),
                kind=kind,
                owner_id=owner_id,
                total=total,
                created_at=datetime.now(UTC),
            )
            try:
                self._executor.submit(self._run, job, work)
            except RuntimeError as err:
                # The pool was shut down because the service is stopping.
                raise ServiceUnavailableError(
                    "the service is stopping and accepts no new jobs; retry in a minute",
                    "服务正在停止，暂不接受新任务，请稍后重试",
                ) from err
            self._jobs[job.job_id] = job
        logger.info("job %s (%s) queued by %s: %d seekers", job.job_id, kind, owner_id, total)
        return job

    def get(self, job_id: str, kind: str, owner_id: str) -> Job | None:
        """Return a copy of the job, or None when it is missing, expired, or not the owner's."""
        with self._lock:
            self._expire()
            job = self._jobs.get(job_id)
            if job is None or job.kind != kind or job.owner_id != owner_id:
                return None
            return Job(**vars(job))

    def shutdown(self) -> None:
        """Cancel the waiting jobs and stop accepting new ones; running jobs finish."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run(self, job: Job, work: Work) -> None:
        with self._lock:
            job.state = JobState.RUNNING
            job.started_at = datetime.now(UTC)
        logger.info("job %s (%s) started", job.job_id, job.kind)
        try:
            result = work(lambda done, total: self._progress(job, done))
        except QueryLimitError as err:
            # An invalid field found only during the run, such as a budget too short for
            # the nearest stop; its message is written for the caller.
            logger.info("job %s (%s) rejected: %s", job.job_id, job.kind, err)
            self._finish(job, JobState.FAILED, error=_domain_error(err))
        except Exception:
            logger.exception("job %s (%s) failed", job.job_id, job.kind)
            self._finish(job, JobState.FAILED, error=JobError(GENERIC_FAILURE, GENERIC_FAILURE_ZH))
        else:
            logger.info("job %s (%s) done", job.job_id, job.kind)
            self._finish(job, JobState.DONE, result=result)

    def _progress(self, job: Job, done: int) -> None:
        with self._lock:
            # Blocks finish in order, but a smaller count must never undo a larger one.
            job.done = min(job.total, max(job.done, done))

    def _finish(
        self, job: Job, state: JobState, *, result: Any = None, error: JobError | None = None
    ) -> None:
        with self._lock:
            job.state = state
            job.result = result
            job.error = error
            job.finished_at = datetime.now(UTC)
            job.expires_at = job.finished_at + timedelta(seconds=self.settings.ttl_s)
            job.finished_clock = self.clock()
            self._finished[job.job_id] = None
            self._expire()

    def _expire(self) -> None:
        """Drop finished jobs past their time, then the oldest beyond ``max_finished``."""
        now = self.clock()
        while self._finished:
            oldest = next(iter(self._finished))
            expired = now - self._jobs[oldest].finished_clock >= self.settings.ttl_s
            if not expired and len(self._finished) <= self.settings.max_finished:
                break
            del self._finished[oldest]
            del self._jobs[oldest]


def _domain_error(err: QueryLimitError) -> JobError:
    return JobError(
        message=str(err),
        message_zh=err.message_zh,
        location=(err.location, err.field) if err.field else (err.location,),
        error_type=type(err).__name__,
    )
