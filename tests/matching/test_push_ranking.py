"""Fan-out with the learned ranker: threshold, cap, shown-job scale and baseline fallback.

The model is a real LightGBM booster fitted here on random feature rows whose label
falls for talent-group seekers, so a seeker can match a job well by the baseline
formula and still score low with the model. Seekers are simulated.
"""

from dataclasses import replace
from datetime import UTC, datetime

import lightgbm
import numpy as np
import pandas as pd
import pytest

from matching.cascade import RankingCascade
from matching.features import FEATURE_NAMES, build_features
from matching.push_fanout import SeekerHomes, calibrate_model_threshold, push_candidates
from matching.push_ranking import FanoutRanker
from matching.push_rules import PushRules
from models.registry import LoadedModel
from models.serving import ModelScorer
from push.service import PushService
from tests.matching.test_push_fanout import POSTING, _seeker

AT = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
TALENT = FEATURE_NAMES.index("seeker_is_talent")


@pytest.fixture(scope="module")
def ranker() -> FanoutRanker:
    """A 30-tree model scoring about +1 for general seekers and -1 for talent seekers."""
    rng = np.random.default_rng(3)
    rows = rng.uniform(0, 1, (4_000, len(FEATURE_NAMES))).astype(np.float32)
    rows[:, TALENT] = rng.integers(0, 2, len(rows))
    labels = 1.0 - 2.0 * rows[:, TALENT]
    params = {"objective": "regression", "verbose": -1, "min_data_in_leaf": 5, "seed": 3}
    booster = lightgbm.train(
        params,
        lightgbm.Dataset(rows, labels, feature_name=list(FEATURE_NAMES)),
        num_boost_round=30,
    )
    model = LoadedModel(
        "test-talent-averse",
        None,
        {"feature_names": list(FEATURE_NAMES)},
        booster,  # type: ignore[arg-type]
    )
    return FanoutRanker(ModelScorer(model, build_features), model.model_id)


def _seekers() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _seeker("near-talent", 108.9500, 34.2260, group="talent"),
            _seeker("mid", 108.9600, 34.2450, group="general"),
            _seeker("near-general", 108.9490, 34.2250, group="general"),
            _seeker("far", 109.2000, 34.3500, group="general"),
        ]
    )


@pytest.fixture
def homes() -> SeekerHomes:
    return SeekerHomes(_seekers())


def test_high_baseline_low_model_not_pushed(homes: SeekerHomes, ranker: FanoutRanker) -> None:
    rules = PushRules(min_score=0.7, min_model_score=0.0)
    baseline = {item.seeker_id: item.score for item in push_candidates(POSTING, homes, rules)}
    assert baseline["near-talent"] >= 0.7
    assert baseline["near-talent"] >= baseline["mid"]

    ranked = push_candidates(POSTING, homes, rules, ranker=ranker)
    ids = [item.seeker_id for item in ranked]
    assert "near-talent" not in ids
    assert set(ids) == {"mid", "near-general"}


def test_model_scores_on_model_scale(homes: SeekerHomes, ranker: FanoutRanker) -> None:
    rules = PushRules(min_model_score=-10.0)
    ranked = push_candidates(POSTING, homes, rules, ranker=ranker)
    scores = {item.seeker_id: item.score for item in ranked}
    assert scores["near-talent"] < -0.5
    assert scores["mid"] > 0.5
    assert [item.score for item in ranked] == sorted(scores.values(), reverse=True)


def test_model_threshold_is_applied(homes: SeekerHomes, ranker: FanoutRanker) -> None:
    everyone = push_candidates(POSTING, homes, PushRules(min_model_score=-10.0), ranker=ranker)
    nobody = push_candidates(POSTING, homes, PushRules(min_model_score=10.0), ranker=ranker)
    assert len(everyone) == 3
    assert nobody == []


def test_model_scores_equal_direct_prediction(homes: SeekerHomes, ranker: FanoutRanker) -> None:
    ranked = push_candidates(POSTING, homes, PushRules(min_model_score=-10.0), ranker=ranker)
    seekers = homes.seekers.set_index("seeker_id", drop=False)
    for candidate in ranked:
        seeker = seekers.loc[candidate.seeker_id]
        distance = ranker_distance(seeker)
        row = pd.DataFrame(
            [
                {
                    **POSTING,
                    "published_on": None,
                    "distance_m": distance,
                    "estimated_commute_min": candidate.commute_min,
                }
            ]
        )
        features = build_features(pd.DataFrame([seeker.to_dict()]), row)
        expected = ranker.scorer.predict_array(features.to_numpy(dtype=np.float32))[0]
        assert candidate.score == pytest.approx(expected, abs=1e-9), candidate.seeker_id


def ranker_distance(seeker: pd.Series) -> float:
    """Return great-circle metres from a seeker's home to the test posting."""
    from sklearn.metrics.pairwise import haversine_distances

    from geo.crs import EARTH_RADIUS_M

    home = np.radians([[seeker["home_lat"], seeker["home_lon"]]])
    job = np.radians([[POSTING["lat"], POSTING["lon"]]])
    return float(haversine_distances(home, job)[0, 0] * EARTH_RADIUS_M)


def test_shown_scores_match_fanout_scores(homes: SeekerHomes, ranker: FanoutRanker) -> None:
    ranked = push_candidates(POSTING, homes, PushRules(min_model_score=-10.0), ranker=ranker)
    pairs = [(item.seeker_id, "p1") for item in ranked] + [("gone", "p1"), ("mid", "p404")]
    shown = ranker.shown_scores(
        homes.feature_table, homes.positions, homes.seekers, {"p1": POSTING}, pairs
    )
    assert set(shown) == {(item.seeker_id, "p1") for item in ranked}
    for item in ranked:
        assert shown[(item.seeker_id, "p1")] == pytest.approx(item.score, abs=1e-9)


def test_service_names_ranker_in_batch(ranker: FanoutRanker) -> None:
    rules = PushRules(min_score=0.5, min_model_score=0.0)
    service = PushService(
        rules, _seekers(), ranker=ranker, postings=lambda: pd.DataFrame([POSTING])
    )
    batch = service.job_batch("posting.active:p1", [POSTING], AT)
    assert batch.ranker == "test-talent-averse"
    assert batch.score_shown is not None
    assert {item.seeker_id for item in batch.candidates} == {"mid", "near-general"}
    assert batch.score_shown([("mid", "p1")])[("mid", "p1")] > 0.5


def test_service_falls_back_to_baseline() -> None:
    service = PushService(PushRules(min_score=0.5), _seekers())
    batch = service.job_batch("posting.active:p1", [POSTING], AT)
    assert batch.ranker == "baseline"
    assert batch.score_shown is None
    assert "near-talent" in {item.seeker_id for item in batch.candidates}
    assert all(0.5 <= item.score <= 1.0 for item in batch.candidates)


def test_service_limits_candidates_by_cap(ranker: FanoutRanker) -> None:
    rules = PushRules(max_seekers_per_opening=1, min_model_score=-10.0)
    service = PushService(rules, _seekers(), ranker=ranker)
    one = service.job_batch("t", [POSTING], AT)
    assert len(one.candidates) == 3  # cap 1 x headroom 10 keeps all three in reach
    assert {item.headcount for item in one.candidates} == {1}
    staffed = service.job_batch("t", [{**POSTING, "headcount": 4}], AT)
    assert {item.headcount for item in staffed.candidates} == {4}


def test_posting_cap_scales_with_headcount() -> None:
    rules = PushRules(max_seekers_per_opening=20, max_seekers_per_posting=50)
    assert rules.posting_cap(1) == 20
    assert rules.posting_cap(2) == 40
    assert rules.posting_cap(3) == 50
    assert rules.posting_cap(0) == 20


def test_ranker_rejects_other_feature_order(ranker: FanoutRanker) -> None:
    model = LoadedModel(
        "reordered",
        None,
        {"feature_names": list(reversed(FEATURE_NAMES))},
        ranker.scorer.model.booster,  # type: ignore[arg-type, attr-defined]
    )
    with pytest.raises(ValueError, match="feature columns"):
        FanoutRanker(ModelScorer(model, build_features), "reordered")


def test_calibrated_threshold_keeps_volume(homes: SeekerHomes, ranker: FanoutRanker) -> None:
    everyone = push_candidates(POSTING, homes, PushRules(min_score=0.0))
    second_best = sorted(item.score for item in everyone)[-2]
    rules = PushRules(min_score=second_best)
    baseline = push_candidates(POSTING, homes, rules)
    calibrated = replace(ranker)

    calibrated.threshold = calibrate_model_threshold(
        pd.DataFrame([POSTING]), homes, rules, calibrated
    )
    ranked = push_candidates(POSTING, homes, rules, ranker=calibrated)

    assert len(baseline) == 2
    assert calibrated.threshold is not None
    assert len(ranked) == len(baseline)
    assert "near-talent" not in {item.seeker_id for item in ranked}


def test_uncalibrated_ranker_pushes_nothing(homes: SeekerHomes, ranker: FanoutRanker) -> None:
    uncalibrated = replace(ranker, threshold=None)
    assert push_candidates(POSTING, homes, PushRules(), ranker=uncalibrated) == []


def test_calibration_without_passing_pair(homes: SeekerHomes, ranker: FanoutRanker) -> None:
    postings = pd.DataFrame([POSTING])
    assert calibrate_model_threshold(postings, homes, PushRules(min_score=1.0), ranker) is None
    district = pd.DataFrame([{**POSTING, "precision": "district"}])
    assert calibrate_model_threshold(district, homes, PushRules(), ranker) is None


def test_service_calibrates_on_first_batch(ranker: FanoutRanker) -> None:
    calibrated = replace(ranker, threshold=None)
    postings = pd.DataFrame([POSTING])
    service = PushService(
        PushRules(min_score=0.5), _seekers(), ranker=calibrated, postings=lambda: postings
    )
    assert "not calibrated yet" in service.threshold_note

    batch = service.job_batch("posting.active:p1", [POSTING], AT)

    assert calibrated.threshold is not None
    assert "calibrated to pass as many pairs" in service.threshold_note
    assert batch.candidates
    assert all(item.score >= calibrated.threshold for item in batch.candidates)


def test_small_fanout_skips_cascade(homes: SeekerHomes, ranker: FanoutRanker) -> None:
    # A one-row stage would keep one of the three seekers in reach.
    narrow = replace(ranker, cascade=RankingCascade.of((1, 1)))
    positions = np.arange(3, dtype=np.intp)
    distances = np.array([300.0, 2_300.0, 250.0])
    minutes = distances / 80.0

    rows, scores = narrow.scores(homes.feature_table, POSTING, positions, distances, minutes)
    cut_rows, _ = replace(narrow, exact_rows=2).scores(
        homes.feature_table, POSTING, positions, distances, minutes
    )
    _, every = ranker.scores(
        homes.feature_table, POSTING, positions, distances, minutes, every_row=True
    )

    assert rows.tolist() == [0, 1, 2]
    np.testing.assert_allclose(scores, every)
    assert len(cut_rows) == 1
