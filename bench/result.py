"""One benchmark figure: a subject and its baseline, measured in the same run, and their ratio."""

from dataclasses import dataclass, field
from typing import Any

SPEED_UP = "speed-up: baseline time / subject time (above 1: the subject is faster)"
COST = "cost: subject time / baseline time (above 1: the subject is slower)"
MEMORY = "memory: subject peak RSS / baseline peak RSS"


class ResultMismatchError(AssertionError):
    """A subject and its baseline returned different results for the same input."""


@dataclass(frozen=True)
class Comparison:
    """A measured figure for a subject and its baseline, with their ratio.

    ``subject_value`` and ``baseline_value`` share ``unit``. ``ratio`` is computed from
    the underlying times or sizes as ``ratio_meaning`` states, so it does not depend on
    whether ``unit`` is a rate or a duration. ``details`` contains sizes, repeat counts
    and raw timings in seconds.
    """

    benchmark: str
    case: str
    unit: str
    subject: str
    baseline: str
    subject_value: float
    baseline_value: float
    ratio: float
    ratio_meaning: str
    details: dict[str, Any] = field(default_factory=dict)


def latency_comparison(
    benchmark: str,
    case: str,
    *,
    subject: str,
    baseline: str,
    subject_s: float,
    baseline_s: float,
    ratio_meaning: str,
    details: dict[str, Any],
) -> Comparison:
    """Build the comparison of two latencies given in seconds, reported in ms.

    The ratio is ``baseline / subject`` for `SPEED_UP` and ``subject / baseline`` for
    `COST`.

    Raises
    ------
    ValueError
        ``ratio_meaning`` is neither `SPEED_UP` nor `COST`.
    """
    if ratio_meaning == SPEED_UP:
        ratio = baseline_s / subject_s
    elif ratio_meaning == COST:
        ratio = subject_s / baseline_s
    else:
        raise ValueError(f"ratio_meaning {ratio_meaning!r} is invalid; expected SPEED_UP or COST")
    return Comparison(
        benchmark=benchmark,
        case=case,
        unit="ms",
        subject=subject,
        baseline=baseline,
        subject_value=subject_s * 1000,
        baseline_value=baseline_s * 1000,
        ratio=ratio,
        ratio_meaning=ratio_meaning,
        details=details,
    )
