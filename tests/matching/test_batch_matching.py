"""Batched matching against the per-seeker path on the real data store (simulated seekers)."""

import numpy as np
import pandas as pd
import pytest

from api.security.seeker_pi import seeker_codec
from api.settings import Settings
from geo.transit import TransitNetwork
from matching.bus_tour_stops import matched_communities
from matching.recommend import Recommender
from matching.scoring import score_jobs
from matching.shuttle import SHUTTLE_PRECISIONS, ShuttleRules, matched_pairs, trip_minutes
from store.sqlite import SqliteStore

TOP_K = 10
SAMPLE = 30


@pytest.fixture(scope="module")
def street_homes(full_store: SqliteStore, transit_network: TransitNetwork) -> Recommender:
    """Seekers at their stored street-office points, as `doorstep` commands load them."""
    return Recommender.from_store(full_store, transit=transit_network)


@pytest.fixture(scope="module")
def exact_homes(full_store: SqliteStore, transit_network: TransitNetwork) -> Recommender:
    """Seekers at their decrypted exact homes, as the application loads them."""
    codec = seeker_codec(Settings())
    return Recommender.from_store(
        full_store, transit=transit_network, exact_homes=codec.with_exact_homes
    )


@pytest.fixture(scope="module")
def straight_line(full_store: SqliteStore) -> Recommender:
    """Seekers at street-office points, with straight-line commute estimates."""
    return Recommender.from_store(full_store)


def _sample(recommender: Recommender) -> pd.DataFrame:
    return recommender.seekers.sort_index().head(SAMPLE)


def _modes(seeker: pd.Series, modes: str | None) -> list[str]:
    return (modes or str(seeker["modes"] or "transit")).split(";")


def _per_seeker_top(
    recommender: Recommender, seeker: pd.Series, modes: str | None, top_k: int
) -> pd.DataFrame:
    candidates = recommender.index.for_commute(
        float(seeker["home_lon"]),
        float(seeker["home_lat"]),
        float(seeker["max_commute_min"]),
        _modes(seeker, modes),
    )
    return score_jobs(seeker, candidates).head(top_k)


@pytest.mark.parametrize("homes", ["street_homes", "exact_homes", "straight_line"])
@pytest.mark.parametrize("modes", [None, "drive"])
def test_top_matches_equal_per_seeker(
    request: pytest.FixtureRequest, homes: str, modes: str | None
) -> None:
    recommender: Recommender = request.getfixturevalue(homes)
    seekers = _sample(recommender)
    located = recommender.index.located

    matches = recommender.batch_matcher().top_matches(seekers, TOP_K, modes=modes)

    listed = set(matches["seeker_id"])
    assert matches["seeker_id"].unique().tolist() == [
        s for s in seekers["seeker_id"] if s in listed
    ]
    for seeker_id, seeker in seekers.iterrows():
        expected = _per_seeker_top(recommender, seeker, modes, TOP_K)
        got = matches.loc[matches["seeker_id"] == seeker_id]
        posting_ids = located["posting_id"].iloc[got["position"]].tolist()
        assert posting_ids == expected["posting_id"].tolist(), seeker_id
        assert np.array_equal(got["score"], expected["score"]), seeker_id
        assert np.array_equal(got["estimated_commute_min"], expected["estimated_commute_min"])


def test_homes_are_shared(street_homes: Recommender, exact_homes: Recommender) -> None:
    street = street_homes.seekers[["home_lon", "home_lat"]].drop_duplicates()
    exact = exact_homes.seekers[["home_lon", "home_lat"]].drop_duplicates()

    assert len(street) < len(street_homes.seekers) / 5
    assert len(exact) > len(street)


def test_matched_communities_equal_per_seeker(exact_homes: Recommender) -> None:
    seekers = _sample(exact_homes)
    busiest = exact_homes.postings.loc[exact_homes.postings["precision"] != "city", "anchor_id"]
    anchors = set(busiest.value_counts().index[:30].astype(str))
    expected: dict[str, int] = {}
    for _, seeker in seekers.iterrows():
        best = _per_seeker_top(exact_homes, seeker, None, 20)
        community = str(seeker["home_community_code"] or "")
        if community and best["anchor_id"].astype(str).isin(anchors).any():
            expected[community] = expected.get(community, 0) + 1
    reference = pd.Series(expected, dtype=np.int64).sort_values(ascending=False, kind="stable")
    calls: list[tuple[int, int]] = []

    counts = matched_communities(
        exact_homes, anchors, 20, seekers, progress=lambda done, total: calls.append((done, total))
    )

    assert counts.sum() > 0
    assert counts.to_dict() == reference.to_dict()
    assert counts.index.tolist() == reference.index.tolist()
    assert calls[-1] == (SAMPLE, SAMPLE)


def test_shuttle_pairs_equal_per_seeker(
    street_homes: Recommender, transit_network: TransitNetwork
) -> None:
    seekers = _sample(street_homes)
    rules = ShuttleRules()
    sites = {str(value) for value in SHUTTLE_PRECISIONS}
    expected = []
    for seeker_id, seeker in seekers.iterrows():
        candidates = street_homes.index.for_commute(
            float(seeker["home_lon"]),
            float(seeker["home_lat"]),
            float(seeker["max_commute_min"]),
            ["drive"],
        )
        transit = transit_network.matrix(
            [seeker["home_lon"]],
            [seeker["home_lat"]],
            candidates["lon"],
            candidates["lat"],
            "transit",
        )[0]
        pool = candidates.loc[
            candidates["precision"].astype(str).isin(sites) & (transit > rules.long_transit_min)
        ]
        best = score_jobs(seeker, pool).head(rules.top_k).drop_duplicates("anchor_id")
        expected += [(str(seeker_id), str(anchor)) for anchor in best["anchor_id"]]

    pairs = matched_pairs(street_homes, transit_network, seekers, rules)

    assert len(pairs) > 0
    assert list(zip(pairs["seeker_id"], pairs["anchor_id"], strict=True)) == expected


def test_trip_minutes_leave_out_car_overhead(
    street_homes: Recommender, transit_network: TransitNetwork
) -> None:
    pairs = matched_pairs(street_homes, transit_network, _sample(street_homes), ShuttleRules())

    trips = trip_minutes(transit_network, pairs.head(20))

    lons, lats = trips["home_lon"].to_numpy(), trips["home_lat"].to_numpy()
    site_lons, site_lats = trips["lon"].to_numpy(), trips["lat"].to_numpy()
    by_mode = transit_network.mode_matrices(lons, lats, site_lons, site_lats, "drive")
    drive = np.diag(by_mode["drive"]).astype(float)
    transit = np.diag(transit_network.matrix(lons, lats, site_lons, site_lats, "walk;transit"))
    overhead = transit_network.params.drive_overhead_min
    assert len(trips) == 20
    assert np.allclose(trips["drive_min"], drive - overhead)
    assert np.allclose(trips["transit_min"], transit)
    assert (trips["transit_min"] > ShuttleRules().long_transit_min).all()


def test_top_matches_rejects_bad_top_k(street_homes: Recommender) -> None:
    with pytest.raises(ValueError, match="top_k 0 is invalid"):
        street_homes.batch_matcher().top_matches(_sample(street_homes), 0)


def test_top_matches_of_no_seekers(street_homes: Recommender) -> None:
    matches = street_homes.batch_matcher().top_matches(street_homes.seekers.head(0), TOP_K)

    assert matches.empty
    assert matches.columns.tolist() == [
        "seeker_id",
        "rank",
        "position",
        "estimated_commute_min",
        "score",
    ]
