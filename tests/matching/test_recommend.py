"""Tests of the recommender with the transit network on the real store."""

import numpy as np
import pytest

from geo.transit import TransitNetwork
from matching.recommend import Recommender
from store.sqlite import SqliteStore


@pytest.fixture(scope="module")
def recommender(full_store: SqliteStore, transit_network: TransitNetwork) -> Recommender:
    return Recommender.from_store(full_store, transit=transit_network)


def test_recommend_uses_network_minutes(
    recommender: Recommender, transit_network: TransitNetwork
) -> None:
    seeker_id = str(recommender.seekers["seeker_id"].iloc[0])
    seeker = recommender.seeker(seeker_id)

    _, page = recommender.recommend(seeker_id, 20)

    located = page[page["precision"] != "city"]
    assert len(located) > 0
    tried = sorted({"walk", *str(seeker["modes"]).split(";")})
    by_mode = transit_network.mode_matrices(
        [seeker["home_lon"]],
        [seeker["home_lat"]],
        located["lon"].to_numpy(),
        located["lat"].to_numpy(),
        tried,
    )
    fastest_to_point = np.min([minutes[0] for minutes in by_mode.values()], axis=0)
    # An approximate location adds minutes for its uncertainty; a point adds none.
    estimated = located["estimated_commute_min"].to_numpy()
    exact = located["uncertainty_m"].to_numpy() == 0
    assert (estimated >= fastest_to_point - 1e-4).all()
    np.testing.assert_allclose(estimated[exact], fastest_to_point[exact], rtol=1e-6)
    assert (estimated <= float(seeker["max_commute_min"])).all()
    assert set(located["commute_mode"]) <= set(tried)


def test_refresh_keeps_network(recommender: Recommender) -> None:
    anchor = recommender.postings.dropna(subset=["anchor_id"]).iloc[0]

    recommender.refresh_anchor(
        str(anchor["anchor_id"]),
        lon=float(anchor["lon"]),
        lat=float(anchor["lat"]),
        precision=str(anchor["precision"]),
        district_code=anchor["district_code"],
    )

    assert recommender.index.network is recommender.transit
    assert recommender.transit is not None


def test_recommender_without_network(full_store: SqliteStore) -> None:
    recommender = Recommender.from_store(full_store)

    assert recommender.index.network is None
