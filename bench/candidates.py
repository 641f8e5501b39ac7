"""Candidate retrieval: `JobIndex.within` (BallTree) against a brute-force haversine filter.

The baseline computes `geo.crs.haversine_m` from the query point to every located
posting, widens it by the posting's ``uncertainty_m`` as `JobIndex` does, and keeps
those within the radius. Both sides get the postings with a point,
that is without city-level postings, which `JobIndex` leaves out of its tree. The
subject returns a sorted DataFrame with distance columns while the baseline returns
only positions. A second figure per radius therefore times a bare scikit-learn
``BallTree.query_radius`` over the same points against the same baseline, which shows
how much of the subject's time goes to the tree and how much to building its frame.
"""

import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.neighbors import BallTree

from bench.result import SPEED_UP, Comparison, ResultMismatchError
from bench.timing import median, time_repeats
from geo.crs import EARTH_RADIUS_M, haversine_m
from geo.location import Precision
from matching.candidates import JobIndex

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

DEFAULT_RADII_M = (1_000.0, 3_000.0, 10_000.0)
SUBJECT = "JobIndex.within (BallTree)"
TREE_ONLY = "BallTree.query_radius alone (positions, no frame)"
BASELINE = "haversine_m over all located postings (numpy)"


def bench_candidates(
    postings: pd.DataFrame,
    lons: FloatArray,
    lats: FloatArray,
    *,
    radii_m: Sequence[float] = DEFAULT_RADII_M,
    repeats: int = 3,
) -> list[Comparison]:
    """Compare queries per second of `JobIndex.within` and the brute-force filter.

    Parameters
    ----------
    postings
        The postings frame (``posting_id``, WGS84 ``lon``/``lat`` in degrees,
        ``precision``), as `SqliteStore.postings_frame` returns it.
    lons, lats
        Query points, WGS84 degrees.
    radii_m
        Great-circle radii in metres, one comparison each.
    repeats
        Timed passes over all query points per radius; the median pass counts.

    Returns
    -------
    list of Comparison
        Two per radius, in queries per second: `JobIndex.within`, then the bare tree
        query, each against the brute-force filter.

    Raises
    ------
    ResultMismatchError
        When the two sides return different posting sets for any query.
    """
    index = JobIndex(postings)
    located = _located(postings)
    ids = located["posting_id"].to_numpy()
    post_lons = located["lon"].to_numpy(dtype=np.float64)
    post_lats = located["lat"].to_numpy(dtype=np.float64)
    # JobIndex widens approximate locations by their uncertainty radius; so does the baseline.
    uncertainty = (
        np.nan_to_num(located["uncertainty_m"].to_numpy(dtype=np.float64))
        if "uncertainty_m" in located.columns
        else np.zeros(len(located))
    )
    tree = BallTree(np.radians(np.column_stack([post_lats, post_lons])), metric="haversine")
    points = list(zip(lons.tolist(), lats.tolist(), strict=True))

    comparisons = []
    for radius_m in radii_m:
        # The checking pass calls both sides on every point, so it is also the warm-up.
        found = _check_same_sets(index, ids, post_lons, post_lats, uncertainty, points, radius_m)

        def subject_pass(radius_m: float = radius_m) -> None:
            for lon, lat in points:
                index.within(lon, lat, radius_m)

        def tree_pass(radius_m: float = radius_m) -> None:
            for lon, lat in points:
                tree.query_radius(np.radians([[lat, lon]]), r=radius_m / EARTH_RADIUS_M)

        def baseline_pass(radius_m: float = radius_m) -> None:
            for lon, lat in points:
                _brute_force_positions(post_lons, post_lats, lon, lat, radius_m, uncertainty)

        subject_s = time_repeats(subject_pass, repeats=repeats, warmup=0)
        tree_s = time_repeats(tree_pass, repeats=repeats)
        baseline_s = time_repeats(baseline_pass, repeats=repeats, warmup=0)
        sizes = {"queries": len(points), "located_postings": len(located), "radius_m": radius_m}
        comparisons.append(_comparison(SUBJECT, sizes, found, subject_s, baseline_s))
        comparisons.append(_comparison(TREE_ONLY, sizes, found, tree_s, baseline_s))
    return comparisons


def _located(postings: pd.DataFrame) -> pd.DataFrame:
    is_city = postings["precision"].astype(str).to_numpy() == Precision.CITY.value
    has_point = np.isfinite(postings["lon"].to_numpy(dtype=np.float64)) & np.isfinite(
        postings["lat"].to_numpy(dtype=np.float64)
    )
    located: pd.DataFrame = postings.loc[~is_city & has_point]
    return located


def _brute_force_positions(
    post_lons: FloatArray,
    post_lats: FloatArray,
    lon: float,
    lat: float,
    radius_m: float,
    uncertainty_m: FloatArray | float = 0.0,
) -> npt.NDArray[np.intp]:
    distances = np.hypot(haversine_m(lon, lat, post_lons, post_lats), uncertainty_m)
    return np.flatnonzero(distances <= radius_m)


def _check_same_sets(
    index: JobIndex,
    ids: npt.NDArray[np.object_],
    post_lons: FloatArray,
    post_lats: FloatArray,
    uncertainty: FloatArray,
    points: list[tuple[float, float]],
    radius_m: float,
) -> list[int]:
    """Compare the posting sets of both sides per query; return the result sizes."""
    sizes = []
    for lon, lat in points:
        subject = set(index.within(lon, lat, radius_m)["posting_id"])
        positions = _brute_force_positions(post_lons, post_lats, lon, lat, radius_m, uncertainty)
        baseline = set(ids[positions])
        if subject != baseline:
            raise ResultMismatchError(
                f"JobIndex.within({lon!r}, {lat!r}, {radius_m!r}) returned {len(subject)} "
                f"postings, the brute-force filter {len(baseline)}; "
                f"{len(subject ^ baseline)} differ, expected none"
            )
        sizes.append(len(subject))
    return sizes


def _comparison(
    subject: str,
    sizes: dict[str, float],
    found: list[int],
    subject_s: list[float],
    baseline_s: list[float],
) -> Comparison:
    subject_pass = median(subject_s)
    baseline_pass = median(baseline_s)
    return Comparison(
        benchmark="candidates",
        case=f"radius {sizes['radius_m'] / 1000:g} km",
        unit="queries/s",
        subject=subject,
        baseline=BASELINE,
        subject_value=sizes["queries"] / subject_pass,
        baseline_value=sizes["queries"] / baseline_pass,
        ratio=baseline_pass / subject_pass,
        ratio_meaning=SPEED_UP,
        details={
            **sizes,
            "mean_results_per_query": float(np.mean(found)) if found else 0.0,
            "same_sets_checked": len(found),
            "subject_pass_seconds": subject_s,
            "baseline_pass_seconds": baseline_s,
        },
    )
