"""Tests of the behaviour simulation on hand-made postings and seekers (labels simulated)."""

import numpy as np
import pandas as pd
import pytest

from geo.transit import TransitNetwork
from matching.candidates import JobIndex
from models.behaviour import (
    LABEL_APPLIED,
    LABEL_CLICKED,
    LABEL_HIRED,
    LABEL_INTERVIEWED,
    draw_labels,
    draw_taste,
    posting_traits,
    utility,
)
from models.simulation import (
    IMPRESSION_COLUMNS,
    UNSHOWN_POSITION,
    BehaviourParameters,
    simulate_interactions,
)

HOME_LON, HOME_LAT = 108.95, 34.25
# About 0.009 degrees of latitude per km here.
NEAR_LAT, FAR_LAT = HOME_LAT + 0.009, HOME_LAT + 0.07


def _postings(n_per_place: int = 30) -> pd.DataFrame:
    """Identical postings, half about 1 km and half about 7.8 km north of the homes."""
    rows = []
    for place, lat in (("near", NEAR_LAT), ("far", FAR_LAT)):
        for i in range(n_per_place):
            rows.append(
                {
                    "posting_id": f"{place}-{i:03d}",
                    "title": "会计",
                    "categories": "财务",
                    "experience_text": "",
                    "lon": HOME_LON,
                    "lat": lat,
                    "precision": "poi",
                    "uncertainty_m": 0.0,
                    "district_code": "610113",
                    "occupation_code": "2-06-03-01",
                    "occupation_score": 1.0,
                    "education": 3,
                    "experience_min_years": 0.0,
                    "experience_max_years": float("nan"),
                    "graduate_ok": True,
                    "salary_min_month": 5000.0,
                    "salary_max_month": 7000.0,
                    # Publication dates spread over three weeks.
                    "published_on": f"2018-09-{1 + i % 21:02d}",
                    "employer_size_class": float("nan"),
                    "key_enterprise": float("nan"),
                    "employer_active_postings": 1.0,
                    "competition_seekers": 100.0,
                }
            )
    return pd.DataFrame(rows)


def _seekers(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "seeker_id": [f"sim-{i:06d}" for i in range(1, n + 1)],
            "group": "general",
            "education": 4,
            "experience_years": 2.0,
            "occupation_wish_code": "2-06-03-01",
            "occupation_wish_name": "会计专业人员",
            "keywords": "会计",
            "salary_wish_min": 5000.0,
            "salary_wish_max": 7000.0,
            "max_commute_min": 60,
            "modes": "walk;transit",
            "home_lon": HOME_LON,
            "home_lat": HOME_LAT,
        }
    )


@pytest.fixture(scope="module")
def impressions() -> pd.DataFrame:
    return simulate_interactions(_postings(), _seekers(), seed=3)


def test_columns_and_labels(impressions: pd.DataFrame) -> None:
    assert tuple(impressions.columns) == IMPRESSION_COLUMNS
    assert impressions["label"].dtype == np.int8
    assert set(impressions["label"].unique()) <= {0, 1, 2, 3, 4}
    assert impressions["position"].between(1, 20).all()
    assert impressions["label_if_examined"].dtype == np.int8


def test_same_seed_same_frame(impressions: pd.DataFrame) -> None:
    again = simulate_interactions(_postings(), _seekers(), seed=3)
    pd.testing.assert_frame_equal(impressions, again)


def test_other_seed_other_frame(impressions: pd.DataFrame) -> None:
    other = simulate_interactions(_postings(), _seekers(), seed=4)
    assert not impressions.equals(other)


@pytest.mark.parametrize("column", ["label", "label_if_examined"])
def test_funnel_is_monotone(impressions: pd.DataFrame, column: str) -> None:
    labels = impressions[column]
    counts = [int((labels >= stage).sum()) for stage in range(5)]
    assert counts[0] == len(impressions)
    assert counts[0] >= counts[1] >= counts[2] >= counts[3] >= counts[4]
    assert counts[1] > 0  # some clicks, so the check is not vacuous


def test_never_shown_before_publication(impressions: pd.DataFrame) -> None:
    published = _postings().set_index("posting_id")["published_on"]
    shown_on = pd.to_datetime(impressions["posting_id"].map(published))
    assert (impressions["query_time"] >= shown_on).all()
    assert impressions["query_time"].nunique() > 1


def test_query_id_is_seeker_and_day(impressions: pd.DataFrame) -> None:
    expected = impressions["seeker_id"] + "@" + impressions["query_time"].dt.strftime("%Y-%m-%d")
    assert (impressions["query_id"] == expected).all()
    assert not impressions.duplicated(["query_id", "posting_id"]).any()


def test_nearer_jobs_hired_more() -> None:
    """At the same positions and with the same tastes, near postings reach hire more often."""
    params = BehaviourParameters()
    postings = _postings(1)
    seeker = _seekers(1).iloc[0]
    traits = posting_traits(postings, np.random.default_rng(0), params)
    rng = np.random.default_rng(1)

    n = 20_000
    rows = np.repeat(np.arange(2), n)  # row 0 near, row 1 far
    positions = np.ones(2 * n, dtype=np.int64)
    commute = np.where(rows == 0, 5.0, 40.0)
    taste = draw_taste(rng, params)
    value = utility(seeker, taste, traits, rows, commute, params)
    labels = draw_labels(
        rng, seeker, taste, traits, rows, positions, value, np.full(2 * n, 100.0), params
    ).logged
    near, far = labels[rows == 0], labels[rows == 1]
    assert (near == LABEL_HIRED).mean() > 1.5 * (far == LABEL_HIRED).mean()
    assert (near >= LABEL_APPLIED).mean() > (far >= LABEL_APPLIED).mean()


def test_nearer_jobs_clicked_more_end_to_end() -> None:
    impressions = simulate_interactions(_postings(), _seekers(150), seed=5)
    near = impressions["posting_id"].str.startswith("near")
    positive = impressions["label"] >= LABEL_CLICKED
    assert positive[near].mean() > positive[~near].mean()


def test_position_bias_visible() -> None:
    params = BehaviourParameters()
    postings = _postings(1)
    seeker = _seekers(1).iloc[0]
    traits = posting_traits(postings, np.random.default_rng(0), params)
    rng = np.random.default_rng(2)
    n = 20_000
    rows = np.zeros(2 * n, dtype=np.int64)
    positions = np.repeat(np.asarray([1, 10], dtype=np.int64), n)
    taste = draw_taste(rng, params)
    value = utility(seeker, taste, traits, rows, np.full(2 * n, 10.0), params)
    labels = draw_labels(
        rng, seeker, taste, traits, rows, positions, value, np.zeros(2 * n), params
    )
    first, tenth = labels.logged[positions == 1], labels.logged[positions == 10]
    assert (first >= LABEL_CLICKED).mean() > 5 * (tenth >= LABEL_CLICKED).mean()

    # Without examination the position makes no difference beyond sampling noise.
    unbiased_first = (labels.if_examined[positions == 1] >= LABEL_CLICKED).mean()
    unbiased_tenth = (labels.if_examined[positions == 10] >= LABEL_CLICKED).mean()
    assert unbiased_first == pytest.approx(unbiased_tenth, abs=0.02)
    # At position 1 every posting is examined, so both labels agree there.
    np.testing.assert_array_equal(first, labels.if_examined[positions == 1])


def test_interview_needs_application() -> None:
    params = BehaviourParameters()
    postings = _postings(1)
    seeker = _seekers(1).iloc[0]
    traits = posting_traits(postings, np.random.default_rng(0), params)
    rng = np.random.default_rng(4)
    n = 5_000
    rows = np.zeros(n, dtype=np.int64)
    taste = draw_taste(rng, params)
    value = utility(seeker, taste, traits, rows, np.full(n, 10.0), params)
    labels = draw_labels(
        rng, seeker, taste, traits, rows, np.ones(n, dtype=np.int64), value, np.zeros(n), params
    ).logged
    # Every funnel stage occurs, and each is rarer than the one before.
    rates = [
        (labels >= stage).mean()
        for stage in (LABEL_CLICKED, LABEL_APPLIED, LABEL_INTERVIEWED, LABEL_HIRED)
    ]
    assert all(rate > 0 for rate in rates)
    assert rates == sorted(rates, reverse=True)
    assert rates[-1] < rates[0]


def test_parameters_serialise() -> None:
    values = BehaviourParameters().to_dict()
    assert (
        values["commute_decay_per_min"]["assistance"] > values["commute_decay_per_min"]["general"]
    )
    assert isinstance(values["occupation_interest"], list)


def test_network_minutes_match_job_index(transit_network: TransitNetwork) -> None:
    postings = _postings(n_per_place=10)
    seekers = _seekers(n=5)

    shown = simulate_interactions(postings, seekers, seed=5, network=transit_network)

    # The service's candidate step gives the same minutes for the same home and posting.
    found = JobIndex(postings, network=transit_network).for_commute(
        HOME_LON, HOME_LAT, 60, "walk;transit"
    )
    expected = found.set_index("posting_id")["estimated_commute_min"]
    assert len(shown) > 0
    np.testing.assert_allclose(
        shown["commute_min"].to_numpy(), expected.loc[shown["posting_id"]].to_numpy()
    )
    straight = simulate_interactions(postings, seekers, seed=5)
    assert not np.allclose(straight["commute_min"].mean(), shown["commute_min"].mean())


def test_progress_silent_without_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    # capsys's stderr is not a terminal, like a CI log, so tqdm must not draw a bar there.
    simulate_interactions(_postings(), _seekers(20), seed=3, progress=True)

    assert capsys.readouterr().err == ""


def test_unshown_rows_keep_impressions(impressions: pd.DataFrame) -> None:
    rows = simulate_interactions(_postings(), _seekers(), seed=3, include_unshown=True)
    shown = rows[rows["position"] != UNSHOWN_POSITION].reset_index(drop=True)
    pd.testing.assert_frame_equal(shown, impressions)


def test_unshown_rows_live_and_unlogged() -> None:
    rows = simulate_interactions(_postings(), _seekers(), seed=3, include_unshown=True)
    unshown = rows[rows["position"] == UNSHOWN_POSITION]
    assert len(unshown) > 0  # the fixture's pools hold more live postings than a page
    assert (unshown["label"] == 0).all()
    assert unshown["label_if_examined"].between(0, 4).all()
    published = _postings().set_index("posting_id")["published_on"]
    assert (unshown["query_time"] >= pd.to_datetime(unshown["posting_id"].map(published))).all()
    shown_pairs = set(zip(rows["query_id"], rows["posting_id"], strict=True))
    assert len(shown_pairs) == len(rows)  # no posting both shown and unshown in a session
    pages = rows[rows["position"] != UNSHOWN_POSITION].groupby("query_id").size()
    assert (pages[unshown["query_id"].unique()] == BehaviourParameters().page_size).all()
