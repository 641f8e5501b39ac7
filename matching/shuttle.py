"""Commuter shuttle proposals (定制公交): home and work clusters that justify a shuttle line.

A line is worth proposing where many seekers are matched to jobs that a direct ride
would bring within reach but public transport does not. The steps:

1. **Matches**: each seeker's ``top_k`` best-scored postings among those a car
   reaches within their commute limit (the recommender's baseline path, as for the
   recruitment bus), kept at employer sites located to a development zone or better
   (`SHUTTLE_PRECISIONS`).
2. **Riders**: a matched pair qualifies when its walk-and-transit trip takes more
   than `ShuttleRules.long_transit_min` and the shuttle ride (driving minutes times
   `ShuttleRules.shuttle_detour` plus `ShuttleRules.access_min`) takes at most
   `ShuttleRules.max_ride_min` and saves at least `ShuttleRules.min_saving_min`.
3. **Clusters**: qualifying homes and employer sites are clustered separately with
   DBSCAN on EPSG:4545 metres (scikit-learn), so a line links one pick-up area with
   one work area.
4. **Lines**: each (home cluster, work cluster) pair with at least
   `ShuttleRules.min_riders` distinct seekers is a proposal; its expected riders are
   those seekers.

The stored seekers are simulated, and their home point is their street office, so
the proposals show the method, not real demand.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.cluster import DBSCAN

from geo.coverage.access import LOCATED_PRECISIONS
from geo.crs import from_metric, to_metric
from geo.location import Precision
from matching.recommend import Recommender
from matching.scoring import score_jobs

if TYPE_CHECKING:
    from geo.transit import TransitNetwork

logger = logging.getLogger(__name__)

SHUTTLE_PRECISIONS = LOCATED_PRECISIONS | {Precision.ZONE}
"""Posting precisions a line can end at. Development zones (高新, 经开 …) count, because a
shuttle to a zone's centre is how zones are usually served, and a business-area or
better location is rare in the postings."""


@dataclass(frozen=True)
class ShuttleRules:
    """Thresholds of a shuttle proposal; docs/through-train.md gives the reasons.

    Minutes are door-to-door minutes; radii are metres in EPSG:4545.
    """

    long_transit_min: float = 45.0
    max_ride_min: float = 40.0
    min_saving_min: float = 15.0
    shuttle_detour: float = 1.3
    access_min: float = 8.0
    home_radius_m: float = 1_500.0
    work_radius_m: float = 1_000.0
    min_riders: int = 3
    top_k: int = 10

    def __post_init__(self) -> None:
        for name in ("long_transit_min", "max_ride_min", "home_radius_m", "work_radius_m"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} {value!r} is invalid; expected a number > 0")
        if self.shuttle_detour < 1:
            raise ValueError(f"shuttle_detour {self.shuttle_detour!r} is invalid; expected >= 1")
        if self.min_riders < 1 or self.top_k < 1:
            raise ValueError("min_riders and top_k are invalid; expected integers >= 1")


@dataclass(frozen=True)
class ShuttleLine:
    """A proposed line: pick-up and work area centres (WGS84) and its expected riders."""

    home_lon: float
    home_lat: float
    work_lon: float
    work_lat: float
    riders: int
    transit_min: float
    shuttle_min: float
    employers: tuple[str, ...]
    home_districts: tuple[str, ...]


def matched_pairs(
    recommender: Recommender,
    seekers: pd.DataFrame,
    top_k: int,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """List each seeker's matched postings at located employer sites.

    Candidates are the postings a car reaches within the seeker's commute limit, so
    jobs that only a direct ride brings within reach are included.

    Returns
    -------
    pandas.DataFrame
        ``seeker_id``, ``home_lon``, ``home_lat``, ``home_district_code``, ``anchor_id``,
        ``company``, ``lon``, ``lat`` (WGS84 degrees), one row per seeker and site.
    """
    located = {str(value) for value in SHUTTLE_PRECISIONS}
    rows = []
    for done, (seeker_id, seeker) in enumerate(seekers.iterrows(), start=1):
        candidates = recommender.index.for_commute(
            float(seeker["home_lon"]),
            float(seeker["home_lat"]),
            float(seeker["max_commute_min"]),
            ["drive"],
        )
        if not candidates.empty:
            best = score_jobs(seeker, candidates).head(top_k)
            best = best.loc[best["precision"].astype(str).isin(located)]
            for _, job in best.drop_duplicates("anchor_id").iterrows():
                rows.append(
                    {
                        "seeker_id": str(seeker_id),
                        "home_lon": float(seeker["home_lon"]),
                        "home_lat": float(seeker["home_lat"]),
                        "home_district_code": str(seeker["home_district_code"]),
                        "anchor_id": str(job["anchor_id"]),
                        "company": str(job["company"]),
                        "lon": float(job["lon"]),
                        "lat": float(job["lat"]),
                    }
                )
        if progress is not None:
            progress(done, len(seekers))
    columns = ["seeker_id", "home_lon", "home_lat", "home_district_code", "anchor_id"]
    return pd.DataFrame(rows, columns=[*columns, "company", "lon", "lat"])


def trip_minutes(network: "TransitNetwork", pairs: pd.DataFrame) -> pd.DataFrame:
    """Add ``transit_min`` (walk and transit) and ``drive_min`` to each home-site pair.

    Minutes are computed once per distinct home and site and read per pair.
    """
    homes = pairs[["home_lon", "home_lat"]].drop_duplicates().reset_index(drop=True)
    sites = pairs[["lon", "lat"]].drop_duplicates().reset_index(drop=True)
    transit = network.matrix(
        homes["home_lon"], homes["home_lat"], sites["lon"], sites["lat"], "walk;transit"
    )
    drive = network.mode_matrices(
        homes["home_lon"], homes["home_lat"], sites["lon"], sites["lat"], "drive"
    )["drive"]
    home_index = pairs.merge(homes.reset_index(), on=["home_lon", "home_lat"], how="left")["index"]
    site_index = pairs.merge(sites.reset_index(), on=["lon", "lat"], how="left")["index"]
    return pairs.assign(
        transit_min=np.asarray(transit, dtype=np.float64)[
            home_index.to_numpy(), site_index.to_numpy()
        ],
        drive_min=np.asarray(drive, dtype=np.float64)[home_index.to_numpy(), site_index.to_numpy()],
    )


def riders(pairs: pd.DataFrame, rules: ShuttleRules) -> pd.DataFrame:
    """Keep the pairs whose transit trip is long but whose shuttle ride would be short.

    Adds ``shuttle_min``: driving minutes times the detour of collecting riders, plus
    the walk to the pick-up point.
    """
    shuttle = pairs["drive_min"] * rules.shuttle_detour + rules.access_min
    qualifies = (
        (pairs["transit_min"] > rules.long_transit_min)
        & (shuttle <= rules.max_ride_min)
        & (pairs["transit_min"] - shuttle >= rules.min_saving_min)
    )
    return pairs.assign(shuttle_min=shuttle).loc[qualifies].reset_index(drop=True)


def cluster_points(
    lons: npt.ArrayLike, lats: npt.ArrayLike, radius_m: float
) -> npt.NDArray[np.int64]:
    """Label WGS84 points by DBSCAN on EPSG:4545 metres; every point joins a cluster.

    ``min_samples`` is 1, so a lone point is its own cluster and the rider threshold,
    not the clustering, decides which lines are proposed.
    """
    x, y = to_metric(np.asarray(lons, dtype=np.float64), np.asarray(lats, dtype=np.float64))
    if len(x) == 0:
        return np.empty(0, dtype=np.int64)
    labels = DBSCAN(eps=radius_m, min_samples=1).fit_predict(np.column_stack([x, y]))
    return np.asarray(labels, dtype=np.int64)


def propose_lines(qualifying: pd.DataFrame, rules: ShuttleRules) -> list[ShuttleLine]:
    """Group qualifying pairs by home and work cluster into lines, most riders first.

    Parameters
    ----------
    qualifying
        Rows of :func:`riders`.
    rules
        Cluster radii and the minimum riders of a line.
    """
    if qualifying.empty:
        return []
    frame = qualifying.assign(
        home_cluster=cluster_points(
            qualifying["home_lon"], qualifying["home_lat"], rules.home_radius_m
        ),
        work_cluster=cluster_points(qualifying["lon"], qualifying["lat"], rules.work_radius_m),
    )
    lines = []
    for _, line in frame.groupby(["home_cluster", "work_cluster"]):
        seekers = line["seeker_id"].nunique()
        if seekers < rules.min_riders:
            continue
        home_x, home_y = to_metric(line["home_lon"], line["home_lat"])
        work_x, work_y = to_metric(line["lon"], line["lat"])
        home_lon, home_lat = from_metric(np.mean(home_x), np.mean(home_y))
        work_lon, work_lat = from_metric(np.mean(work_x), np.mean(work_y))
        lines.append(
            ShuttleLine(
                home_lon=round(float(home_lon), 6),
                home_lat=round(float(home_lat), 6),
                work_lon=round(float(work_lon), 6),
                work_lat=round(float(work_lat), 6),
                riders=int(seekers),
                transit_min=round(float(line["transit_min"].median()), 1),
                shuttle_min=round(float(line["shuttle_min"].median()), 1),
                employers=tuple(line["company"].value_counts().index[:5].astype(str)),
                home_districts=tuple(sorted(line["home_district_code"].astype(str).unique())),
            )
        )
    lines.sort(key=lambda item: (-item.riders, item.home_lon, item.work_lon))
    logger.info("%d shuttle lines from %d qualifying pairs", len(lines), len(qualifying))
    return lines


def propose_shuttles(
    recommender: Recommender,
    network: "TransitNetwork",
    seekers: pd.DataFrame,
    rules: ShuttleRules | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[ShuttleLine], int]:
    """Propose shuttle lines for ``seekers``; return the lines and the qualifying pairs.

    Steps: :func:`matched_pairs`, :func:`trip_minutes`, :func:`riders`,
    :func:`propose_lines`.
    """
    rules = rules or ShuttleRules()
    pairs = matched_pairs(recommender, seekers, rules.top_k, progress)
    if pairs.empty:
        return [], 0
    qualifying = riders(trip_minutes(network, pairs), rules)
    return propose_lines(qualifying, rules), len(qualifying)
