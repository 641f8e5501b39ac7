"""Recommendation latency: `Recommender.recommend` against `Recommender.nearby`.

For each sampled seeker the subject ranks a page of postings within the seeker's
commute limit (candidates, score, reasons). The baseline is the anonymous nearby
search at the same home with a fixed radius, which finds and explains postings but
does not score them. Each call is timed once per seeker, so p50 and p95 are taken
over seekers.
"""

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np

from bench.result import COST, Comparison, latency_comparison
from bench.timing import percentile, time_each
from matching.recommend import Recommender

logger = logging.getLogger(__name__)

SUBJECT = "Recommender.recommend(seeker_id, {limit})"
BASELINE = "Recommender.nearby(home, {radius_km:g} km)"


def sample_seeker_ids(recommender: Recommender, count: int, seed: int) -> list[str]:
    """Draw ``count`` distinct seeker ids without replacement, reproducibly.

    Raises
    ------
    ValueError
        When the store has fewer seekers than ``count``.
    """
    ids = recommender.seekers["seeker_id"].astype(str).to_numpy()
    if count > len(ids):
        raise ValueError(
            f"{count} seekers requested but the store has {len(ids)}; "
            f"build it with at least {count} seekers"
        )
    rng = np.random.default_rng(seed)
    return [str(seeker_id) for seeker_id in rng.choice(ids, size=count, replace=False)]


def bench_recommend(
    recommender: Recommender,
    seeker_ids: Sequence[str],
    *,
    limit: int = 20,
    radius_m: float = 3_000.0,
    warmup: int = 5,
) -> list[Comparison]:
    """Compare p50 and p95 latency of `Recommender.recommend` and `Recommender.nearby`.

    Parameters
    ----------
    recommender
        Built over the benchmark store.
    seeker_ids
        Seekers to time, one call per side each.
    limit
        Page size passed to ``recommend``.
    radius_m
        Great-circle radius in metres of the ``nearby`` baseline around each home.
    warmup
        Number of seekers, from the start, called untimed on both sides first.

    Returns
    -------
    list of Comparison
        The p50 comparison, then the p95 one, in milliseconds.

    Raises
    ------
    AssertionError
        When ``recommend`` returns more than ``limit`` rows or rows without reasons.
    """
    homes = [_home(recommender, seeker_id) for seeker_id in seeker_ids]
    for seeker_id, (lon, lat) in zip(seeker_ids[:warmup], homes[:warmup], strict=True):
        recommender.recommend(seeker_id, limit)
        recommender.nearby(lon, lat, radius_m)

    subject_s, page_rows = _time_recommend(recommender, seeker_ids, limit)
    baseline_s = time_each([_nearby_call(recommender, home, radius_m) for home in homes])

    details = {
        "seekers": len(seeker_ids),
        "limit": limit,
        "radius_m": radius_m,
        "mean_page_rows": float(np.mean(page_rows)) if page_rows else 0.0,
        "subject_seconds": subject_s,
        "baseline_seconds": baseline_s,
    }
    subject = SUBJECT.format(limit=limit)
    baseline = BASELINE.format(radius_km=radius_m / 1000)
    return [_comparison(q, subject, baseline, subject_s, baseline_s, details) for q in (50.0, 95.0)]


def _home(recommender: Recommender, seeker_id: str) -> tuple[float, float]:
    seeker = recommender.seeker(seeker_id)
    return float(seeker["home_lon"]), float(seeker["home_lat"])


def _time_recommend(
    recommender: Recommender, seeker_ids: Sequence[str], limit: int
) -> tuple[list[float], list[int]]:
    """Time one ``recommend`` call per seeker and check each page after its timing."""
    seconds = []
    page_rows = []
    for seeker_id in seeker_ids:
        started = time.perf_counter()
        _, page = recommender.recommend(seeker_id, limit)
        seconds.append(time.perf_counter() - started)

        if len(page) > limit:
            raise AssertionError(
                f"recommend({seeker_id!r}, {limit}) returned {len(page)} rows, "
                f"expected at most {limit}"
            )
        if "reasons" not in page.columns:
            raise AssertionError(f"recommend({seeker_id!r}, {limit}) returned no 'reasons' column")
        page_rows.append(len(page))
    return seconds, page_rows


def _nearby_call(
    recommender: Recommender, home: tuple[float, float], radius_m: float
) -> Callable[[], object]:
    return lambda: recommender.nearby(home[0], home[1], radius_m)


def _comparison(
    q: float,
    subject: str,
    baseline: str,
    subject_s: list[float],
    baseline_s: list[float],
    details: dict[str, object],
) -> Comparison:
    return latency_comparison(
        "recommend",
        f"p{q:g} over {len(subject_s)} seekers",
        subject=subject,
        baseline=baseline,
        subject_s=percentile(subject_s, q),
        baseline_s=percentile(baseline_s, q),
        ratio_meaning=COST,
        details=details,
    )
