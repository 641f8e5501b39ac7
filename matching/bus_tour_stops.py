"""Stops of a recruitment-bus tour: communities with the most seekers matched to the employers.

Matches come from the recommender's baseline path on the stored seekers, which are
simulated: a seeker is matched when a posting of the chosen employers is among the
``top_k`` best-scored postings within their commute limit. Seekers are counted by
their home community, which the simulation draws too.
"""

import logging
from collections.abc import Callable, Collection

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo.regions import Regions
from matching.bus_tour import Tour, nearest_neighbour_tour, plan_tour
from matching.recommend import Recommender
from matching.through_train import RoutePlanner, place_community

logger = logging.getLogger(__name__)


def matched_communities(
    recommender: Recommender,
    anchor_ids: Collection[str],
    top_k: int = 20,
    seekers: pd.DataFrame | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.Series:
    """Count the simulated seekers matched to the employers, by home community code.

    ``seekers`` limits the count to those rows of ``recommender.seekers``; all of them
    by default. Matches come from `Recommender.batch_matcher`, which gives the same top
    ``top_k`` as scoring each seeker's `JobIndex.for_commute` candidates with
    `score_jobs`. ``progress(done, total)`` is called as blocks of seekers finish.

    Returns
    -------
    pandas.Series
        Seekers per 12-digit community code, most first, ties in seeker order;
        seekers without a home community are left out.
    """
    seekers = recommender.seekers if seekers is None else seekers
    simulated = seekers.loc[seekers["simulated"].astype(bool)]
    # The matcher and the anchors come from one index, because a posting change may
    # replace the recommender's index between two reads of it.
    matcher = recommender.batch_matcher()
    anchors = matcher.index.located["anchor_id"].astype(str).to_numpy()
    # A seeker who reaches no posting of the employers cannot have one in their top.
    employers = np.isin(anchors, list(anchor_ids))
    matches = matcher.top_matches(simulated, top_k, required=employers, progress=progress)
    hits = matches.loc[np.isin(anchors[matches["position"].to_numpy()], list(anchor_ids))]
    matched = simulated.loc[simulated["seeker_id"].astype(str).isin(hits["seeker_id"])]
    communities = pd.Series(
        [str(code or "") for code in matched.get("home_community_code", [])], dtype=object
    )
    communities = communities.loc[communities != ""]
    counts = communities.groupby(communities, sort=False).size().astype(np.int64)
    logger.info("%d simulated seekers matched in %d communities", counts.sum(), len(counts))
    return counts.sort_values(ascending=False, kind="stable").rename(None).rename_axis(None)


def community_stops(regions: Regions, counts: pd.Series, n_stops: int) -> pd.DataFrame:
    """Place the ``n_stops`` communities with the most matched seekers (see `place_community`).

    Returns
    -------
    pandas.DataFrame
        Columns ``code``, ``name``, ``lon``, ``lat``, ``placed_by`` and ``seekers``.
    """
    rows = []
    for code, seekers in counts.head(n_stops).items():
        place = place_community(regions, str(code))
        rows.append(
            {
                "code": place.code,
                "name": place.name,
                "lon": place.lon,
                "lat": place.lat,
                "placed_by": place.placed_by,
                "seekers": int(seekers),
            }
        )
    return pd.DataFrame(rows, columns=["code", "name", "lon", "lat", "placed_by", "seekers"])


def compare_tours(
    network: RoutePlanner,
    depot: tuple[float, float],
    stops: pd.DataFrame,
    budget_min: float,
    dwell_min: float,
) -> tuple[Tour, Tour]:
    """Plan the OR-Tools tour and the nearest-neighbour tour over ``stops`` by car.

    Driving minutes come from the transit model's drive mode. Returns the OR-Tools tour
    first.
    """
    driving = driving_minutes(network, depot, stops)
    seekers = stops["seekers"].to_numpy(dtype=np.int64)
    return (
        plan_tour(driving, seekers, budget_min, dwell_min),
        nearest_neighbour_tour(driving, seekers, budget_min, dwell_min),
    )


def driving_minutes(
    network: RoutePlanner, depot: tuple[float, float], stops: pd.DataFrame
) -> npt.NDArray[np.float64]:
    """Return the driving-minute matrix of the depot (row 0) and ``stops`` (WGS84 lon, lat)."""
    lons = np.concatenate([[depot[0]], stops["lon"].to_numpy(dtype=float)])
    lats = np.concatenate([[depot[1]], stops["lat"].to_numpy(dtype=float)])
    driving = network.mode_matrices(lons, lats, lons, lats, "drive")["drive"].astype(np.float64)
    np.fill_diagonal(driving, 0.0)
    return driving


def shortest_visit_minutes(driving: npt.NDArray[np.float64], dwell_min: float) -> float:
    """Return the minutes of the cheapest one-stop tour: there, the dwell, and back.

    A time budget below this visits no stop at all. Returns ``inf`` without stops.
    """
    if driving.shape[0] < 2:
        return float("inf")
    round_trips = driving[0, 1:] + driving[1:, 0] + dwell_min
    return float(round_trips.min())
