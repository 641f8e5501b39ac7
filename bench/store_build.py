"""Full store build: wall time and peak memory, against reading the raw 51job CSV.

Each measurement runs in a fresh process started with the ``spawn`` method. Its peak
resident set size is ``VmHWM`` from ``/proc/self/status``, the high-water mark of the
child's own address space. ``resource.getrusage(...).ru_maxrss`` is wrong in the child
on Linux because the kernel carries the parent's high-water mark across fork and exec.
Measured on Linux 6.18, a spawned child of an 800 MiB parent reported 814 MiB while its
own ``VmHWM`` was 15 MiB. ``ru_maxrss`` is the fallback where ``/proc`` is missing, and
is then an upper bound.
Both sides pay for starting Python and importing pandas; the baseline process
imports only what reading the CSV needs.
"""

import logging
import resource
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pandas as pd

from bench.result import COST, MEMORY, Comparison
from bench.timing import median

logger = logging.getLogger(__name__)

RAW_POSTINGS_CSV = Path("xian_jobs_51job2018_feilyzhang") / "xian_51job_postings_2018.csv"
SUBJECT = "store.build.build_store (n_seekers={n_seekers})"
BASELINE = "pandas.read_csv of the raw 51job 2018 CSV"

_PROC_STATUS = Path("/proc/self/status")

Measurement = tuple[float, int, int]
"""Seconds, peak resident set size in KiB and a row count, returned by a child process."""


def bench_store_build(
    data_dir: Path, *, n_seekers: int, seed: int, csv_repeats: int = 3
) -> list[Comparison]:
    """Time one full store build and its peak memory against reading the raw CSV.

    Parameters
    ----------
    data_dir
        The real data folder.
    n_seekers
        Simulated seekers to generate, 20,000 in a default build.
    seed
        Seed of the seeker simulation.
    csv_repeats
        Runs of the CSV baseline, each in its own process; the median counts.

    Returns
    -------
    list of Comparison
        Wall time in seconds, then peak resident memory in MiB.
    """
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-") as work_dir:
        store_path = Path(work_dir) / "doorstep.sqlite"
        logger.info("building the full store with %d seekers in a child process", n_seekers)
        build_seconds, build_rss_kib, postings = _in_child(
            _build_child, data_dir, store_path, n_seekers, seed
        )
        store_bytes = store_path.stat().st_size

    csv_runs = [_in_child(_read_csv_child, data_dir) for _ in range(csv_repeats)]
    csv_seconds = [seconds for seconds, _, _ in csv_runs]
    csv_rss_kib = max(rss for _, rss, _ in csv_runs)

    details = {
        "postings": postings,
        "csv_rows": csv_runs[0][2],
        "seekers": n_seekers,
        "store_file_mib": store_bytes / 2**20,
        "build_seconds": build_seconds,
        "csv_seconds": csv_seconds,
        "build_peak_rss_kib": build_rss_kib,
        "csv_peak_rss_kib": csv_rss_kib,
    }
    subject = SUBJECT.format(n_seekers=n_seekers)
    csv_median = median(csv_seconds)
    return [
        Comparison(
            benchmark="store_build",
            case="wall time",
            unit="s",
            subject=subject,
            baseline=BASELINE,
            subject_value=build_seconds,
            baseline_value=csv_median,
            ratio=build_seconds / csv_median,
            ratio_meaning=COST,
            details=details,
        ),
        Comparison(
            benchmark="store_build",
            case="peak memory",
            unit="MiB",
            subject=subject,
            baseline=BASELINE,
            subject_value=build_rss_kib / 1024,
            baseline_value=csv_rss_kib / 1024,
            ratio=build_rss_kib / csv_rss_kib,
            ratio_meaning=MEMORY,
            details=details,
        ),
    ]


def _in_child(function: Callable[..., Measurement], *args: object) -> Measurement:
    """Run ``function(*args)`` in a fresh spawned process and return what it returns."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def _build_child(data_dir: Path, store_path: Path, n_seekers: int, seed: int) -> Measurement:
    """Build the store; return seconds, peak RSS in KiB and the number of postings."""
    from api.security.seeker_pi import seeker_codec
    from api.settings import Settings
    from store.build import build_store

    protect = seeker_codec(Settings()).protect
    started = time.perf_counter()
    report = build_store(
        data_dir,
        store_path,
        n_seekers=n_seekers,
        seed=seed,
        protect_seekers=protect,
        progress=_ignore,
    )
    seconds = time.perf_counter() - started
    return seconds, _peak_rss_kib(), report.postings


def _read_csv_child(data_dir: Path) -> Measurement:
    """Read the raw CSV as the ingest does; return seconds, peak RSS in KiB and rows."""
    started = time.perf_counter()
    frame = pd.read_csv(data_dir / RAW_POSTINGS_CSV, dtype=str, keep_default_na=False)
    seconds = time.perf_counter() - started
    return seconds, _peak_rss_kib(), len(frame)


def _peak_rss_kib() -> int:
    """Return this process's peak resident set size in KiB, from ``VmHWM`` where it exists."""
    try:
        for line in _PROC_STATUS.read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _ignore(stage: str, *counts: int) -> None:
    return None
