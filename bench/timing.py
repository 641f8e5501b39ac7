"""Wall-clock measurement: warm-up calls, repeated timings and their summary statistics."""

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def time_repeats(call: Callable[[], Any], *, repeats: int, warmup: int = 1) -> list[float]:
    """Time ``call`` ``repeats`` times after ``warmup`` untimed calls.

    Parameters
    ----------
    call
        A function without arguments; its return value is discarded.
    repeats
        Number of timed calls, at least 1.
    warmup
        Number of untimed calls made first, so caches, lazy imports and prepared
        geometries do not count in the first timing.

    Returns
    -------
    list of float
        Seconds per timed call, measured with `time.perf_counter`.
    """
    if repeats < 1:
        raise ValueError(f"repeats {repeats!r} is invalid; expected at least 1")
    for _ in range(warmup):
        call()

    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def time_each(calls: list[Callable[[], Any]]) -> list[float]:
    """Time each call once, in order, and return the seconds per call."""
    seconds = []
    for call in calls:
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def median(seconds: list[float]) -> float:
    """Return the median of a non-empty list of timings."""
    if not seconds:
        raise ValueError("no timings to summarise; expected at least one")
    return float(statistics.median(seconds))


def percentile(seconds: list[float], q: float) -> float:
    """Return the ``q``-th percentile (0..100, linear interpolation) of the timings."""
    if not seconds:
        raise ValueError("no timings to summarise; expected at least one")
    return float(np.percentile(np.asarray(seconds, dtype=np.float64), q))
