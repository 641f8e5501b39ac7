"""Point-to-district lookup: `Regions.districts_at` (STRtree) against per-polygon tests.

Three baselines, all without a spatial index and all applying the rule of
`Regions.districts_at` (a point covered by several districts gets the lowest code):

- vectorised: ``shapely.covers(polygon, points)`` once per district, 13 calls over
  all points; this is the fair baseline.
- vectorised over prepared polygons: the same calls on copies of the polygons made
  with `shapely.prepare`, so GEOS indexes each polygon's edges once. The copies keep
  the subject's own polygons unprepared.
- Python loop: ``polygon.covers(point)`` for each point and district, stopping at
  the first match. Timed on a sample of the points because it is slow; its rate is
  per point, so it compares with the others.
"""

import logging

import numpy as np
import numpy.typing as npt
import shapely

from bench.result import SPEED_UP, Comparison, ResultMismatchError
from bench.timing import median, time_repeats
from geo.regions import Regions

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]

SUBJECT = "Regions.districts_at (STRtree)"
VECTORISED = "shapely.covers per district (13 vectorised calls)"
PREPARED = "shapely.covers per prepared district (13 vectorised calls)"
PYTHON_LOOP = "polygon.covers(point) in a Python loop"


def bench_districts(
    regions: Regions,
    lons: FloatArray,
    lats: FloatArray,
    *,
    repeats: int = 5,
    loop_sample: int = 2_000,
) -> list[Comparison]:
    """Compare points per second of `Regions.districts_at` and the three baselines.

    Parameters
    ----------
    regions
        The loaded regions (district polygons in WGS84 degrees).
    lons, lats
        Points to look up, WGS84 degrees.
    repeats
        Timed runs per side; the median counts.
    loop_sample
        Number of points, from the start, that the Python-loop baseline is timed on.

    Returns
    -------
    list of Comparison
        The subject against the vectorised, the prepared and the Python-loop
        baselines, in points per second.

    Raises
    ------
    ResultMismatchError
        When a baseline assigns any point a different district code than the subject.
    """
    codes = regions.districts["code"].to_numpy()
    polygons = regions.districts.geometry.to_numpy()
    points = shapely.points(lons, lats)
    sample = points[: min(loop_sample, len(points))]
    prepared = shapely.from_wkb(shapely.to_wkb(polygons))
    shapely.prepare(prepared)

    subject = regions.districts_at(lons, lats)
    _check_same(subject, _covers_vectorised(polygons, codes, points), VECTORISED)
    _check_same(subject, _covers_vectorised(prepared, codes, points), PREPARED)
    _check_same(subject[: len(sample)], _covers_loop(polygons, codes, sample), PYTHON_LOOP)

    subject_s = time_repeats(lambda: regions.districts_at(lons, lats), repeats=repeats)
    vector_s = time_repeats(lambda: _covers_vectorised(polygons, codes, points), repeats=repeats)
    prepared_s = time_repeats(lambda: _covers_vectorised(prepared, codes, points), repeats=repeats)
    loop_s = time_repeats(lambda: _covers_loop(polygons, codes, sample), repeats=repeats)

    sizes = {
        "points": len(points),
        "points_in_a_district": int(np.sum(subject != None)),  # noqa: E711 (element-wise)
        "districts": len(polygons),
    }
    return [
        _comparison(VECTORISED, sizes, subject_s, len(points), vector_s, len(points)),
        _comparison(PREPARED, sizes, subject_s, len(points), prepared_s, len(points)),
        _comparison(PYTHON_LOOP, sizes, subject_s, len(points), loop_s, len(sample)),
    ]


def _covers_vectorised(
    polygons: npt.NDArray[np.object_], codes: ObjectArray, points: npt.NDArray[np.object_]
) -> ObjectArray:
    result = np.full(len(points), None, dtype=object)
    # Codes are sorted, so filling only unassigned points keeps the lowest code.
    for polygon, code in zip(polygons, codes, strict=True):
        hit = shapely.covers(polygon, points) & (result == None)  # noqa: E711 (element-wise)
        result[hit] = code
    return result


def _covers_loop(
    polygons: npt.NDArray[np.object_], codes: ObjectArray, points: npt.NDArray[np.object_]
) -> ObjectArray:
    result = np.full(len(points), None, dtype=object)
    for position, point in enumerate(points):
        for polygon, code in zip(polygons, codes, strict=True):
            if polygon.covers(point):
                result[position] = code
                break
    return result


def _check_same(subject: ObjectArray, baseline: ObjectArray, name: str) -> None:
    differ = np.flatnonzero(subject != baseline)
    if len(differ):
        first = int(differ[0])
        raise ResultMismatchError(
            f"{name} assigned {len(differ)} of {len(subject)} points another district than "
            f"Regions.districts_at, expected none; first at position {first}: "
            f"{baseline[first]!r} instead of {subject[first]!r}"
        )


def _comparison(
    baseline: str,
    sizes: dict[str, int],
    subject_s: list[float],
    subject_points: int,
    baseline_s: list[float],
    baseline_points: int,
) -> Comparison:
    subject_per_point = median(subject_s) / subject_points
    baseline_per_point = median(baseline_s) / baseline_points
    return Comparison(
        benchmark="districts",
        case=f"{sizes['points']:,} points",
        unit="points/s",
        subject=SUBJECT,
        baseline=baseline,
        subject_value=1.0 / subject_per_point,
        baseline_value=1.0 / baseline_per_point,
        ratio=baseline_per_point / subject_per_point,
        ratio_meaning=SPEED_UP,
        details={
            **sizes,
            "baseline_points_timed": baseline_points,
            "subject_seconds": subject_s,
            "baseline_seconds": baseline_s,
        },
    )
