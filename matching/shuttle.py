"""Commuter shuttle proposals (定制公交): home and work clusters that justify a shuttle line.

A line is worth proposing where many seekers are matched to jobs that a direct ride
would bring within reach but public transport does not. The steps:

1. **Matches**: each seeker's ``top_k`` best-scored postings among those a car
   reaches within their commute limit, at employer sites located to a development
   zone or better (`SHUTTLE_PRECISIONS`), whose walk-and-transit trip takes more than
   `ShuttleRules.long_transit_min`. Both filters come before the top ``top_k``, so
   nearby postings that transit serves do not fill it.
2. **Riders**: a matched pair qualifies when its walk-and-transit trip takes more
   than `ShuttleRules.long_transit_min` and the shuttle ride (in-vehicle driving
   minutes times `ShuttleRules.shuttle_detour` plus `ShuttleRules.access_min`) takes
   at most `ShuttleRules.max_ride_min` and saves at least
   `ShuttleRules.min_saving_min`. Each seeker keeps only their best-scored
   qualifying match.
3. **Clusters**: qualifying homes and employer sites are clustered separately with
   DBSCAN on EPSG:4545 metres (scikit-learn), so a line links one pick-up area with
   one work area.
4. **Lines**: each (home cluster, work cluster) pair with at least
   `ShuttleRules.min_riders` distinct seekers is a proposal; its expected riders are
   those seekers.

The stored seekers are simulated. The commands match them from their street-office
point and the application from their simulated exact home, so the proposals show the
method, not real demand.
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

if TYPE_CHECKING:
    from geo.transit import TransitNetwork

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

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
    network: "TransitNetwork",
    seekers: pd.DataFrame,
    rules: ShuttleRules,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """List each seeker's matched postings that transit serves badly, by employer site.

    A seeker's candidates are the postings a car reaches within their commute limit, at
    sites located to a development zone or better (`SHUTTLE_PRECISIONS`), whose
    walk-and-transit trip from the home takes more than ``rules.long_transit_min``.
    The matches are the ``rules.top_k`` best-scored of them (`Recommender.batch_matcher`,
    equal to `score_jobs` on each seeker's candidates). Without the transit condition
    the nearest postings, which transit serves well, take every place in the top.

    Returns
    -------
    pandas.DataFrame
        ``seeker_id``, ``home_lon``, ``home_lat``, ``home_district_code``, ``anchor_id``,
        ``company``, ``lon``, ``lat`` (WGS84 degrees), one row per seeker and site.
    """
    located = recommender.index.located
    sites = located["precision"].astype(str).isin({str(value) for value in SHUTTLE_PRECISIONS})
    site_mask = sites.to_numpy()

    def poorly_served(lons: FloatArray, lats: FloatArray) -> npt.NDArray[np.bool_]:
        transit = network.matrix(lons, lats, located["lon"], located["lat"], "walk;transit")
        return site_mask[None, :] & (transit > rules.long_transit_min)

    matches = recommender.batch_matcher().top_matches(
        seekers, rules.top_k, modes="drive", eligible=poorly_served, progress=progress
    )
    jobs = located.iloc[matches["position"].to_numpy()].reset_index(drop=True)
    homes = seekers.set_index(seekers["seeker_id"].astype(str)).loc[matches["seeker_id"]]
    pairs = pd.DataFrame(
        {
            "seeker_id": matches["seeker_id"].astype(str).to_numpy(),
            "home_lon": homes["home_lon"].to_numpy(dtype=np.float64),
            "home_lat": homes["home_lat"].to_numpy(dtype=np.float64),
            "home_district_code": homes["home_district_code"].astype(str).to_numpy(),
            "anchor_id": jobs["anchor_id"].astype(str).to_numpy(),
            "company": jobs["company"].astype(str).to_numpy(),
            "lon": jobs["lon"].to_numpy(dtype=np.float64),
            "lat": jobs["lat"].to_numpy(dtype=np.float64),
        }
    )
    return pairs.drop_duplicates(["seeker_id", "anchor_id"]).reset_index(drop=True)


def trip_minutes(network: "TransitNetwork", pairs: pd.DataFrame) -> pd.DataFrame:
    """Add ``transit_min`` (walk and transit) and ``drive_min`` to each home-site pair.

    ``drive_min`` is the in-vehicle part of a car trip: the transit model's driving
    minutes less its fixed overhead for reaching and parking a car
    (``network.params.drive_overhead_min``), which a shuttle rider does not spend.
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
    rows, columns = home_index.to_numpy(), site_index.to_numpy()
    in_vehicle = np.asarray(drive, dtype=np.float64) - network.params.drive_overhead_min
    return pairs.assign(
        transit_min=np.asarray(transit, dtype=np.float64)[rows, columns],
        drive_min=np.clip(in_vehicle, 0.0, None)[rows, columns],
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
    """Propose shuttle lines for ``seekers``; return the lines and the seekers who qualify.

    Each seeker counts once, at their best-scored qualifying match, so the riders of
    all lines add up to at most the returned count.

    Steps: :func:`matched_pairs`, :func:`trip_minutes`, :func:`riders`,
    :func:`propose_lines`.
    """
    rules = rules or ShuttleRules()
    pairs = matched_pairs(recommender, network, seekers, rules, progress)
    if pairs.empty:
        return [], 0
    qualifying = riders(trip_minutes(network, pairs), rules)
    # A seeker takes one job, so they ride only to their best-scored qualifying match.
    # Pairs are in rank order within each seeker.
    qualifying = qualifying.drop_duplicates("seeker_id").reset_index(drop=True)
    return propose_lines(qualifying, rules), len(qualifying)
