"""Recruitment-bus stops from the simulated seekers of the real data store, and both tours."""

from pathlib import Path

import pandas as pd
import pytest

from geo.regions import load_regions
from geo.transit import TransitNetwork
from matching.bus_tour import tour_minutes
from matching.bus_tour_stops import community_stops, compare_tours, matched_communities
from matching.recommend import Recommender
from store.sqlite import SqliteStore

# Bell Tower (钟楼), WGS84: the depot of the test tour.
DEPOT = (108.9423, 34.2610)


@pytest.fixture(scope="module")
def recommender(full_store: SqliteStore, transit_network: TransitNetwork) -> Recommender:
    return Recommender.from_store(full_store, transit=transit_network)


def test_bus_tour_on_real_store(
    recommender: Recommender, transit_network: TransitNetwork, data_dir: Path
) -> None:
    postings = recommender.postings
    busiest = postings.loc[postings["precision"] != "city", "anchor_id"].value_counts()
    anchors = list(busiest.index[:30].astype(str))

    counts = matched_communities(recommender, anchors, top_k=20)
    stops = community_stops(load_regions(data_dir), counts, n_stops=12)
    best, greedy = compare_tours(transit_network, DEPOT, stops, budget_min=240, dwell_min=30)

    assert counts.sum() > 0
    assert list(counts) == sorted(counts, reverse=True)
    assert len(stops) == min(12, len(counts))
    assert list(stops["seekers"]) == list(counts.head(12))
    assert stops["code"].str.fullmatch(r"\d{12}").all()
    assert best.method == "ortools"
    assert greedy.method == "nearest_neighbour"
    assert best.seekers >= greedy.seekers
    assert 0 < best.minutes <= 240
    assert greedy.minutes <= 240
    assert best.seekers == int(stops["seekers"].iloc[list(best.order)].sum())


def test_compare_tours_with_no_stops(transit_network: TransitNetwork) -> None:
    stops = pd.DataFrame(columns=["code", "name", "lon", "lat", "placed_by", "seekers"])

    best, greedy = compare_tours(transit_network, DEPOT, stops, budget_min=240, dwell_min=30)

    assert (best.order, best.seekers) == ((), 0)
    assert (greedy.order, greedy.seekers) == ((), 0)
    assert tour_minutes((), [[0.0]], 30) == 0.0
