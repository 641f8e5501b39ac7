"""Fan-out benchmark: a new job enqueues one stream entry per seeker near it.

Seekers (simulated) live at uniform random points in a 28 km × 28 km box over central
Xi'an (WGS84). A job reaches every seeker within ``radius_m`` of it, measured on the
sphere. Both designs enqueue the same entries (job id, seeker id) on a private
``redis-server`` that this benchmark starts on a free loopback port:

- subject: the seekers' homes in the push fan-out's k-d tree
  (:class:`matching.push_fanout.SeekerHomes`); with a ranker, the learned ranker's
  score of the job for every seeker found (features in one batch by
  :class:`matching.seeker_features.SeekerFeatureTable`, then the cascade, as
  :class:`matching.push_ranking.FanoutRanker` does); then the relay's batched ``XADD``
  (:func:`push.pipeline.xadd_batch`, one round trip per ``PIPELINE_BATCH`` entries
  whose ids travel as one newline-joined argument, each entry
  ``{push_id: "<job>:<seeker>"}``);
- baseline: the straightforward design, ``GEOSEARCH`` on one key holding every
  seeker, then one ``XADD`` per seeker.

With a ranker the simulated seekers take the profiles (group, wishes, education, pay)
of store seekers drawn at random, and each job is a store posting moved to the job's
point. The subject scores every seeker in the radius and still enqueues them all, so
both designs enqueue the same entries. The service enqueues only those above the
threshold, up to the posting's cap.

The notification rate is also compared with ``redis-benchmark`` running ``XADD`` on
the same server in the same run (50 clients, no pipelining, its defaults).
NOTE: Redis measures ``GEOSEARCH`` distances on a sphere of radius 6,372,797.56 m and
stores points as 52-bit geohashes. A few seekers on the circle's edge can therefore
differ between the designs, and the benchmark reports how many.
"""

import logging
import re
import shutil
import socket
import subprocess  # nosec B404 # fixed local commands only
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import redis

from bench.result import SPEED_UP, Comparison
from bench.timing import percentile
from matching.push_fanout import SeekerHomes
from matching.push_ranking import FanoutRanker
from push.pipeline import xadd_batch

logger = logging.getLogger(__name__)

BOX = (108.80, 34.15, 109.10, 34.40)
"""(min_lon, min_lat, max_lon, max_lat) of the simulated homes, WGS84 degrees."""
PIPELINE_BATCH = 2_000
RECALL_JOBS = 10
"""Jobs whose cascade is compared with scoring every seeker by the whole model, untimed."""
RECALL_TOP = 500
"""Seekers compared per job: the candidates the service keeps for a one-vacancy posting
(50 per vacancy times `push.service.CANDIDATE_HEADROOM`)."""
GEOADD_BATCH = 50_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed; the fan-out benchmark needs it")
    port = _free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
               "--save", "", "--appendonly", "no"]  # fmt: skip
    process = subprocess.Popen(  # nosec B603 # fixed argv, no shell
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return process, port
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"redis-server on port {port} did not start")


def redis_benchmark_xadd_rate(port: int, requests: int) -> float:
    """Run ``redis-benchmark`` with ``XADD`` and return its requests per second."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        raise FileNotFoundError("redis-benchmark is not installed")
    command = [binary, "-h", "127.0.0.1", "-p", str(port), "-n", str(requests), "-c", "50",
               "-q", "XADD", "bench:rb", "*", "job", "j", "seeker", "sim-0000000"]  # fmt: skip
    completed = subprocess.run(  # nosec B603 # fixed argv, no shell
        command, capture_output=True, text=True, check=True
    )
    output = completed.stdout
    match = re.search(r"([\d.]+) requests per second", output)
    if match is None:
        raise ValueError(f"redis-benchmark output has no rate: {output[-200:]!r}")
    return float(match.group(1))


class FanoutRanking:
    """The ranker the subject scores with, and the store rows the simulated seekers copy.

    Parameters
    ----------
    ranker
        The learned ranker, as the service builds it.
    profiles
        Store seekers whose columns other than the home the simulated seekers copy.
    postings
        Located store postings; each job is one of them moved to the job's point.
    """

    def __init__(self, ranker: FanoutRanker, profiles: pd.DataFrame, postings: pd.DataFrame):
        self.ranker = ranker
        self.profiles = profiles.reset_index(drop=True)
        self.postings = postings.reset_index(drop=True)
        self.scored = 0
        """Seekers that reached the whole model, summed over the timed jobs."""
        self.at_or_above_zero = 0
        """Of those, the ones whose score reaches 0, the default push threshold."""


def bench_fanout(
    n_seekers: int,
    n_jobs: int,
    baseline_jobs: int,
    radius_m: float,
    seed: int,
    ranking: FanoutRanking | None = None,
) -> list[Comparison]:
    """Time both designs on the same seekers and jobs; return jobs/s and notifications/s.

    With ``ranking`` the subject also scores every seeker it finds with the ranker.
    """
    rng = np.random.default_rng(seed)
    lons = rng.uniform(BOX[0], BOX[2], n_seekers)
    lats = rng.uniform(BOX[1], BOX[3], n_seekers)
    ids = np.array([f"sim-{number:07d}" for number in range(n_seekers)], dtype=object)
    jobs = [
        (float(lon), float(lat))
        for lon, lat in zip(
            rng.uniform(108.88, 109.02, n_jobs), rng.uniform(34.22, 34.33, n_jobs), strict=True
        )
    ]
    postings = _job_postings(ranking, jobs, rng)
    scoring_s: list[float] = []
    enqueue_s: list[float] = []

    with tempfile.TemporaryDirectory(prefix="doorstep-fanout-") as folder:
        process, port = _start_redis(Path(folder))
        try:
            client = redis.Redis(port=port)
            started = time.perf_counter()
            homes = _subject_setup(lons, lats, ids, ranking, rng)
            setup_s = time.perf_counter() - started
            _baseline_setup(client, lons, lats, ids)
            subject_s, subject_sets, baseline_s, baseline_sets = _run(
                client,
                jobs,
                lambda job: _subject(
                    client, homes, ids, job, radius_m, ranking, postings, scoring_s, enqueue_s
                ),
                baseline_jobs,
                lambda job: _baseline(client, job, radius_m),
            )
            xadd_rate = redis_benchmark_xadd_rate(port, 200_000)
            round_trip_s = _round_trip_s(client, 2_000)
            recall = (
                [] if ranking is None
                else _cascade_recall(homes, jobs[:RECALL_JOBS], postings, radius_m, ranking)
            )  # fmt: skip
        finally:
            process.kill()
            process.wait(10)

    mismatched = sum(len(a ^ b) for a, b in zip(subject_sets, baseline_sets, strict=False))
    compared = sum(len(b) for b in baseline_sets)
    notes = sum(len(found) for found in subject_sets)
    details = {
        "seekers": n_seekers, "jobs": n_jobs, "baseline_jobs": baseline_jobs, "radius_m": radius_m,
        "entries_per_job_mean": notes / n_jobs, "edge_mismatches": mismatched,
        "entries_compared": compared,
        "subject_p50_ms": percentile(subject_s, 50) * 1000,
        "subject_p99_ms": percentile(subject_s, 99) * 1000,
        "baseline_p50_ms": percentile(baseline_s, 50) * 1000,
        "baseline_p99_ms": percentile(baseline_s, 99) * 1000,
        "redis_benchmark_xadd_per_s": xadd_rate,
        "ping_round_trip_p50_us": round_trip_s * 1e6,
        "ranker": "none" if ranking is None else ranking.ranker.model_id,
        "ranker_trees": None if ranking is None else ranking.ranker.scorer.tree_count,
        "subject_setup_s": setup_s,
        "scoring_p50_ms": percentile(scoring_s, 50) * 1000 if scoring_s else None,
        "scoring_p99_ms": percentile(scoring_s, 99) * 1000 if scoring_s else None,
        "enqueue_p50_ms": percentile(enqueue_s, 50) * 1000,
        "enqueue_p99_ms": percentile(enqueue_s, 99) * 1000,
        "whole_model_rows": None if ranking is None else ranking.scored,
        "cascade_recall_jobs": len(recall),
        "cascade_recall_mean": float(np.mean(recall)) if recall else None,
        "cascade_recall_min": float(np.min(recall)) if recall else None,
        "whole_model_share_at_or_above_0": (
            None if ranking is None or not ranking.scored
            else ranking.at_or_above_zero / ranking.scored
        ),
    }  # fmt: skip
    subject_name = "k-d tree + batched XADD script"
    if ranking is not None:
        subject_name = "k-d tree + ranker scores + batched XADD script"
    subject_jobs = n_jobs / sum(subject_s)
    baseline_jobs_rate = len(baseline_s) / sum(baseline_s)
    notes_rate = notes / sum(subject_s)
    return [
        Comparison(
            "fanout", f"{n_seekers:,} seekers, {radius_m:.0f} m", "jobs/s",
            subject_name, "GEOSEARCH + one XADD per seeker",
            subject_jobs, baseline_jobs_rate, subject_jobs / baseline_jobs_rate, SPEED_UP, details,
        ),
        Comparison(
            "fanout", "notifications/s", "entries/s", subject_name,
            "redis-benchmark XADD (50 clients)", notes_rate, xadd_rate, notes_rate / xadd_rate,
            "rate ratio: subject entries/s / redis-benchmark XADD requests/s", details,
        ),
    ]  # fmt: skip


def _round_trip_s(client: redis.Redis, count: int) -> float:
    """Return the median seconds of one ``PING`` from this client, one round trip each.

    The baseline makes one round trip per seeker, so its time, and the jobs/s ratio,
    follow this figure from machine to machine.
    """
    times = []
    for _ in range(count):
        started = time.perf_counter()
        client.ping()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def _subject_setup(
    lons: np.ndarray,
    lats: np.ndarray,
    ids: np.ndarray,
    ranking: FanoutRanking | None,
    rng: np.random.Generator,
) -> SeekerHomes:
    """Index the homes and, with a ranker, build the seekers' feature table as the service does."""
    frame = pd.DataFrame(
        {"seeker_id": ids, "home_lon": lons, "home_lat": lats, "max_commute_min": 30}
    )
    if ranking is None:
        return SeekerHomes(frame)
    drawn = rng.integers(0, len(ranking.profiles), len(ids))
    profiles = ranking.profiles.iloc[drawn].reset_index(drop=True)
    profiles = profiles.drop(columns=["seeker_id", "home_lon", "home_lat"], errors="ignore")
    homes = SeekerHomes(pd.concat([frame.drop(columns="max_commute_min"), profiles], axis=1))
    logger.info("fanout: seeker feature table of %d seekers", len(homes.feature_table))
    return homes


def _job_postings(
    ranking: FanoutRanking | None, jobs: list[tuple[float, float]], rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Return one store posting per job, moved to the job's point; empty without a ranker."""
    if ranking is None:
        return []
    drawn = rng.integers(0, len(ranking.postings), len(jobs))
    rows = ranking.postings.iloc[drawn].to_dict("records")
    return [
        {**{str(key): value for key, value in row.items()}, "lon": lon, "lat": lat}
        for row, (lon, lat) in zip(rows, jobs, strict=True)
    ]


def _baseline_setup(
    client: redis.Redis, lons: np.ndarray, lats: np.ndarray, ids: np.ndarray
) -> None:
    for start in range(0, len(ids), GEOADD_BATCH):
        values: list[Any] = []
        for lon, lat, name in zip(
            lons[start : start + GEOADD_BATCH],
            lats[start : start + GEOADD_BATCH],
            ids[start : start + GEOADD_BATCH],
            strict=True,
        ):
            values += [float(lon), float(lat), name]
        client.geoadd("bench:homes", values)


def _run(
    client: redis.Redis,
    jobs: list[tuple[float, float]],
    subject: Callable[[tuple[float, float]], list[str]],
    baseline_jobs: int,
    baseline: Callable[[tuple[float, float]], list[str]],
) -> tuple[list[float], list[set[str]], list[float], list[set[str]]]:
    """Time the subject on every job and the baseline on the first ``baseline_jobs`` of them.

    Each baseline job runs right after the subject's run of the same job, spread over
    the run. So both designs see the same load from other processes, which moves the
    baseline's round trips far more than the subject's work.
    """
    subject_s: list[float] = []
    subject_found: list[set[str]] = []
    baseline_s: list[float] = []
    baseline_found: list[set[str]] = []
    every = max(len(jobs) // max(baseline_jobs, 1), 1)
    for number, job in enumerate(jobs):
        elapsed, seekers = _timed(client, subject, job)
        subject_s.append(elapsed)
        subject_found.append(seekers)
        if number % 10 == 0:
            logger.info("fanout job %d: %d entries in %.3f s", number, len(seekers), elapsed)
        if number % every == 0 and len(baseline_s) < baseline_jobs:
            elapsed, seekers = _timed(client, baseline, jobs[len(baseline_s)])
            baseline_s.append(elapsed)
            baseline_found.append(seekers)
            logger.info("fanout baseline job: %d entries in %.3f s", len(seekers), elapsed)
    client.delete("bench:stream")
    return subject_s, subject_found, baseline_s, baseline_found


def _timed(
    client: redis.Redis,
    enqueue: Callable[[tuple[float, float]], list[str]],
    job: tuple[float, float],
) -> tuple[float, set[str]]:
    """Return the seconds ``enqueue`` takes for one job on an empty stream, and its seekers."""
    client.delete("bench:stream")
    started = time.perf_counter()
    seekers = enqueue(job)
    return time.perf_counter() - started, set(seekers)


def _subject(
    client: redis.Redis,
    homes: SeekerHomes,
    ids: np.ndarray,
    job: tuple[float, float],
    radius_m: float,
    ranking: FanoutRanking | None = None,
    postings: list[dict[str, Any]] | None = None,
    scoring_s: list[float] | None = None,
    enqueue_s: list[float] | None = None,
) -> list[str]:
    positions, distances = homes.within(job[0], job[1], radius_m)
    if ranking is not None and postings:
        started = time.perf_counter()
        posting = postings[len(scoring_s or [])]
        minutes = _walk_minutes(distances)
        _, scores = ranking.ranker.scores(
            homes.feature_table, posting, positions, distances, minutes
        )
        if scoring_s is not None:
            scoring_s.append(time.perf_counter() - started)
        ranking.scored += len(scores)
        ranking.at_or_above_zero += int((scores >= 0.0).sum())
    # Every simulated home is located, so the tree's positions are positions in ``ids``;
    # reading them from ``homes.seekers`` would copy two million ids per job.
    started = time.perf_counter()
    seekers: list[str] = ids[positions].tolist()
    push_ids = [f"j:{seeker}" for seeker in seekers]
    for start in range(0, len(push_ids), PIPELINE_BATCH):
        xadd_batch(client, "bench:stream", push_ids[start : start + PIPELINE_BATCH])
    if enqueue_s is not None:
        enqueue_s.append(time.perf_counter() - started)
    return seekers


def _cascade_recall(
    homes: SeekerHomes,
    jobs: list[tuple[float, float]],
    postings: list[dict[str, Any]],
    radius_m: float,
    ranking: FanoutRanking,
) -> list[float]:
    """Return per job the share of the whole model's best seekers the cascade also ranks best.

    Both sides take their best `RECALL_TOP` seekers. The cascade narrows rows with the
    model's first trees, so it can drop a seeker the whole model would rank high. The
    share measures how often that happens.
    """
    shares = []
    for job, posting in zip(jobs, postings, strict=False):
        positions, distances = homes.within(job[0], job[1], radius_m)
        if len(positions) <= RECALL_TOP:
            continue
        minutes = _walk_minutes(distances)
        table = homes.feature_table
        all_rows, every = ranking.ranker.scores(
            table, posting, positions, distances, minutes, every_row=True
        )
        cascade_rows, cascade = ranking.ranker.scores(table, posting, positions, distances, minutes)
        best = set(all_rows[np.argsort(-every, kind="stable")[:RECALL_TOP]].tolist())
        found = set(cascade_rows[np.argsort(-cascade, kind="stable")[:RECALL_TOP]].tolist())
        shares.append(len(best & found) / RECALL_TOP)
    return shares


def _walk_minutes(distances: np.ndarray) -> np.ndarray:
    """Return straight-line walking minutes, the commute input of the scores."""
    from matching.candidates import StraightLineCommute

    minutes: np.ndarray = StraightLineCommute().minutes(distances, "walk")
    return minutes


def _baseline(client: redis.Redis, job: tuple[float, float], radius_m: float) -> list[str]:
    members = client.geosearch(
        "bench:homes", longitude=job[0], latitude=job[1], radius=radius_m, unit="m"
    )
    seekers = [member.decode() for member in members]  # type: ignore[union-attr]
    for seeker in seekers:
        client.xadd("bench:stream", {"job": "j", "seeker": seeker})
    return seekers
