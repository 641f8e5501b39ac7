"""Benchmark inputs: the real store, the regions and random query points in Xi'an."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from api.security.seeker_pi import seeker_codec
from api.settings import Settings
from geo.regions import Regions, load_regions
from matching.recommend import Recommender
from store.build import build_store
from store.sqlite import SqliteStore

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

# Rejection sampling draws this many candidate points per wanted point and round;
# the Xi'an outline covers about 43 % of its bounding box.
_OVERSAMPLING = 3


@dataclass
class BenchInputs:
    """Everything the benchmarks read, loaded once per run.

    ``store_source`` describes where the postings and seekers came from, for the result file.
    """

    recommender: Recommender
    regions: Regions
    store_path: Path
    store_source: str

    def sizes(self) -> dict[str, Any]:
        """Return the data sizes recorded with every result file."""
        precision = self.recommender.postings["precision"].astype(str)
        return {
            "postings": len(self.recommender.postings),
            "postings_city_level": int((precision == "city").sum()),
            "seekers": int(self.recommender.n_seekers),
            "districts": len(self.regions.districts),
        }


def build_bench_store(data_dir: Path, store_path: Path, *, n_seekers: int, seed: int) -> str:
    """Build the embedded store from the real data with few seekers for the benchmarks.

    Parameters
    ----------
    data_dir
        The real data folder.
    store_path
        SQLite file to write.
    n_seekers
        Simulated seekers to generate; the recommendation benchmark needs at least as
        many as it samples.
    seed
        Seed of the seeker simulation.

    Returns
    -------
    str
        A description of the build for the result file.
    """
    logger.info("building the benchmark store %s with %d seekers", store_path, n_seekers)
    report = build_store(
        data_dir,
        store_path,
        n_seekers=n_seekers,
        seed=seed,
        protect_seekers=seeker_codec(Settings()).protect,
        progress=_log_progress,
    )
    return (
        f"real data: store.build.build_store(n_seekers={n_seekers}, seed={seed}), "
        f"{report.postings} postings, built in {report.seconds:.1f} s"
    )


def load_inputs(data_dir: Path, store_path: Path, store_source: str) -> BenchInputs:
    """Load the recommender from a built store and the regions from ``data_dir``."""
    codec = seeker_codec(Settings())
    recommender = Recommender.from_store(
        SqliteStore(store_path), exact_homes=codec.with_exact_homes
    )
    regions = load_regions(data_dir)
    return BenchInputs(recommender, regions, store_path, store_source)


def random_points_in(area: BaseGeometry, count: int, seed: int) -> tuple[FloatArray, FloatArray]:
    """Draw points uniformly in lon/lat degrees inside a WGS84 area.

    Parameters
    ----------
    area
        Polygon or MultiPolygon in WGS84 degrees.
    count
        Number of points wanted.
    seed
        Seed of `numpy.random.default_rng`, so runs query the same points.

    Returns
    -------
    lons, lats
        WGS84 degrees, ``count`` each. Uniform in degrees, not in area: at Xi'an's
        latitude the difference across the city is under 1 %.
    """
    if count < 0:
        raise ValueError(f"count {count!r} is invalid; expected at least 0")
    rng = np.random.default_rng(seed)
    min_lon, min_lat, max_lon, max_lat = area.bounds
    shapely.prepare(area)

    lons: list[FloatArray] = []
    lats: list[FloatArray] = []
    found = 0
    while found < count:
        draw = (count - found) * _OVERSAMPLING + 16
        lon = rng.uniform(min_lon, max_lon, draw)
        lat = rng.uniform(min_lat, max_lat, draw)
        inside = shapely.contains_xy(area, lon, lat)
        lons.append(lon[inside])
        lats.append(lat[inside])
        found += int(inside.sum())
    return np.concatenate(lons)[:count], np.concatenate(lats)[:count]


def _log_progress(stage: str, *counts: int) -> None:
    logger.debug("store build: %s %s", stage, counts)
