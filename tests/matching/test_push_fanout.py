"""Fan-out of a job to seekers: commute limit, hard requirements, score threshold."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics.pairwise import haversine_distances

from geo.crs import EARTH_RADIUS_M
from matching.candidates import JobIndex
from matching.push_fanout import SeekerHomes, digest_candidates, push_candidates
from matching.push_rules import PushRules
from matching.scoring import score_jobs

# A posting near 小寨 (WGS84), with seekers at about 0.5 km, 3 km and 25 km.
POSTING = {
    "posting_id": "p1",
    "title": "会计",
    "company": "甲公司",
    "lon": 108.9470,
    "lat": 34.2240,
    "precision": "poi",
    "education": 3,
    "experience_min_years": 2.0,
    "graduate_ok": False,
    "occupation_code": "2-06-01-01",
    "occupation_score": 0.9,
    "salary_min_month": 5000.0,
    "salary_max_month": 8000.0,
}


def _seeker(seeker_id: str, lon: float, lat: float, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "seeker_id": seeker_id,
        "home_lon": lon,
        "home_lat": lat,
        "max_commute_min": 30,
        "modes": "walk;transit",
        "education": 4,
        "experience_years": 3.0,
        "occupation_wish_code": "2-06-01-01",
        "occupation_wish_name": "会计",
        "keywords": "会计",
        "salary_wish_min": 5000.0,
        "salary_wish_max": 7000.0,
        "group": "general",
    }
    row.update(extra)
    return row


@pytest.fixture
def homes() -> SeekerHomes:
    return SeekerHomes(
        pd.DataFrame(
            [
                _seeker("near", 108.9500, 34.2260),
                _seeker("mid", 108.9600, 34.2450),
                _seeker("far", 109.2000, 34.3500),
                _seeker("low-edu", 108.9490, 34.2250, education=2),
                _seeker("junior", 108.9480, 34.2245, experience_years=0.5),
                _seeker("other-wish", 108.9495, 34.2255, occupation_wish_code="6-01-01-01",
                        occupation_wish_name="焊工", keywords="焊工"),
                _seeker("no-home", float("nan"), float("nan")),
            ]
        )
    )  # fmt: skip


def test_fanout_keeps_reachable_qualified(homes: SeekerHomes) -> None:
    found = push_candidates(POSTING, homes, PushRules(min_score=0.7))
    assert [item.seeker_id for item in found] == ["near", "mid"]
    assert found[0].score >= found[1].score
    assert found[0].commute_min <= 30


def test_fanout_threshold_drops_weak_match(homes: SeekerHomes) -> None:
    found = push_candidates(POSTING, homes, PushRules(min_score=0.3))
    assert "other-wish" in [item.seeker_id for item in found]
    strict = push_candidates(POSTING, homes, PushRules(min_score=0.7))
    assert "other-wish" not in [item.seeker_id for item in strict]


def test_fanout_graduates_skip_experience(homes: SeekerHomes) -> None:
    found = push_candidates({**POSTING, "graduate_ok": True}, homes, PushRules(min_score=0.3))
    assert "junior" in [item.seeker_id for item in found]
    assert "low-edu" not in [item.seeker_id for item in found]


def test_fanout_skips_approximate_location(homes: SeekerHomes) -> None:
    assert push_candidates({**POSTING, "precision": "district"}, homes, PushRules()) == []


def test_fanout_message_has_no_personal_field(homes: SeekerHomes) -> None:
    found = push_candidates(POSTING, homes, PushRules(min_score=0.55), limit=1)
    assert len(found) == 1
    body = found[0].messages["zh"].body
    assert body.startswith("甲公司招聘会计，")
    assert "near" not in body
    assert "108.95" not in body
    assert found[0].messages["zh"].link.endswith("/seeker?job=p1")
    assert found[0].messages["en"].link.endswith("/seeker?job=p1&lang=en")


def test_digest_lists_qualifying_jobs() -> None:
    postings = pd.DataFrame(
        [
            POSTING,
            {**POSTING, "posting_id": "p2", "education": 6},  # requires more than the seeker has
            {**POSTING, "posting_id": "p3", "lon": 109.3, "lat": 34.5},  # too far
            {**POSTING, "posting_id": "p4", "precision": "city"},
        ]
    )
    seeker = _seeker("s1", 108.9500, 34.2260)
    found = digest_candidates(seeker, JobIndex(postings), PushRules(min_score=0.55))
    assert [item.posting_id for item in found] == ["p1"]
    assert found[0].digest_lines["zh"].startswith("会计（")


def test_fanout_score_equals_score_jobs(homes: SeekerHomes) -> None:
    found = push_candidates(POSTING, homes, PushRules(min_score=0.0))
    seekers = homes.seekers.set_index("seeker_id")
    for candidate in found:
        seeker = seekers.loc[candidate.seeker_id]
        job = pd.DataFrame([{**POSTING, "estimated_commute_min": candidate.commute_min}])
        expected = score_jobs(seeker, job)["score"].iloc[0]
        assert candidate.score == pytest.approx(expected, abs=1e-12), candidate.seeker_id


def test_homes_within_matches_great_circle_distances() -> None:
    rng = np.random.default_rng(4)
    lons = rng.uniform(108.8, 109.1, 5_000)
    lats = rng.uniform(34.1, 34.4, 5_000)
    frame = pd.DataFrame(
        {"seeker_id": [f"s{i}" for i in range(5_000)], "home_lon": lons, "home_lat": lats,
         "max_commute_min": 30}
    )  # fmt: skip
    centre_lon, centre_lat = 108.95, 34.26
    homes_radians = np.radians(np.column_stack([lats, lons]))
    centre_radians = np.radians([[centre_lat, centre_lon]])
    expected = haversine_distances(homes_radians, centre_radians)[:, 0] * EARTH_RADIUS_M

    positions, distances = SeekerHomes(frame).within(centre_lon, centre_lat, 6_000.0)

    inside = np.flatnonzero(expected <= 6_000.0)
    # Only points within a millimetre of the circle may differ by rounding.
    edge = np.abs(expected - 6_000.0) < 1e-3
    assert set(positions.tolist()) ^ set(inside.tolist()) <= set(np.flatnonzero(edge).tolist())
    assert len(inside) > 500
    np.testing.assert_allclose(distances, expected[positions], rtol=0, atol=1e-3)
