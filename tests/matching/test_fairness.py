"""The fairness audit and the hardship-blind serving rule, with a trained model and a known one."""

import json
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from api.security.seeker_pi import seeker_codec
from api.settings import Settings
from matching.fairness import AuditOptions, FairnessReport, run_audit
from matching.features import FEATURE_NAMES, build_features
from matching.hardship_blind import blind_matrix, score_with_channel
from matching.posting_context import attach_posting_context
from matching.recommend import Recommender
from matching.seeker_simulation import GROUPS
from models.dataset import build_training_data
from models.ranker import RankerParams, split_chronologically, train_ranker
from models.registry import ModelRegistry
from models.serving import ModelScorer, serving_context
from store.sqlite import SqliteStore

SMALL = AuditOptions(seekers=12, check_seekers=6, page_size=10, max_candidates=80, seed=3)


class PenalisingScorer:
    """A linear ranker that lowers every score of a seeker flagged as an assistance target.

    It replaces a tree model that learned a negative sign for the flag, which is
    what the serving rule must neutralise whatever the training data teaches.
    """

    model_id = "test-penalising"

    def features(self, seeker: pd.Series, candidates: pd.DataFrame) -> pd.DataFrame:
        return build_features(pd.DataFrame([seeker.to_dict()]), candidates.reset_index(drop=True))

    def predict(self, features: pd.DataFrame) -> npt.NDArray[np.float64]:
        commute = features["commute_fastest_min"].fillna(60.0).to_numpy(np.float64)
        flag = features["seeker_is_assistance"].to_numpy(np.float64)
        fit = features["group_policy_fit"].to_numpy(np.float64)
        return -commute / 60.0 - 0.5 * flag + 0.3 * fit

    def score(self, seeker: pd.Series, candidates: pd.DataFrame) -> npt.NDArray[np.float64]:
        return self.predict(self.features(seeker, candidates))

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(0.0, index=features.index, columns=[*FEATURE_NAMES, "bias"])


@pytest.fixture(scope="module")
def recommender(full_store: SqliteStore) -> Recommender:
    return Recommender.from_store(full_store, exact_homes=seeker_codec(Settings()).with_exact_homes)


@pytest.fixture(scope="module")
def context(full_store: SqliteStore, recommender: Recommender) -> pd.DataFrame:
    return attach_posting_context(recommender.postings, recommender.seekers, None).set_index(
        "posting_id"
    )


@pytest.fixture(scope="module")
def trained_scorer(
    full_store: SqliteStore,
    recommender: Recommender,
    tmp_path_factory: pytest.TempPathFactory,
) -> ModelScorer:
    """A LightGBM ranker trained on simulated labels of the test store's seekers."""
    data = build_training_data(full_store, n_seekers=80, seed=5, progress=False)
    ranker = train_ranker(
        split_chronologically(data.frame), FEATURE_NAMES, RankerParams(n_estimators=30), n_jobs=1
    )
    registry = ModelRegistry(
        tmp_path_factory.mktemp("registry"), b"fairness-test-key-32-bytes-long!"
    )
    registry.save(ranker, training_data_sha256="simulated", metrics={})
    model, _ = registry.newest_valid(FEATURE_NAMES)
    assert model is not None
    context = serving_context(recommender.postings, recommender.seekers, None)
    return ModelScorer(model, build_features, context)


def _welfare_frame() -> pd.DataFrame:
    frame = pd.DataFrame(
        np.zeros((3, len(FEATURE_NAMES)), dtype=np.float32), columns=list(FEATURE_NAMES)
    )
    frame["seeker_is_assistance"] = np.float32(1.0)
    frame["public_welfare_post"] = np.asarray([0.0, 1.0, 0.0], dtype=np.float32)
    frame["group_policy_fit"] = frame["public_welfare_post"]
    frame["commute_fastest_min"] = np.asarray([10.0, 20.0, 30.0], dtype=np.float32)
    return frame


def test_channel_only_raises_scores() -> None:
    scorer = PenalisingScorer()
    flagged = _welfare_frame()
    unflagged = flagged.assign(seeker_is_assistance=np.float32(0.0), group_policy_fit=np.float32(0))

    scores, used = score_with_channel(scorer.predict, flagged)

    base = scorer.predict(unflagged)
    assert scores[0] == pytest.approx(base[0])
    assert scores[2] == pytest.approx(base[2])
    assert scores[1] == pytest.approx(base[1] + 0.3)
    assert used["group_policy_fit"].tolist() == [0.0, 1.0, 0.0]
    assert (used["seeker_is_assistance"] == 0.0).all()


def test_channel_keeps_blind_score_when_lower() -> None:
    flagged = _welfare_frame()

    def punishes_fit(features: pd.DataFrame) -> npt.NDArray[np.float64]:
        return -features["group_policy_fit"].to_numpy(np.float64)

    scores, used = score_with_channel(punishes_fit, flagged)

    assert scores.tolist() == [0.0, 0.0, 0.0]
    assert used["group_policy_fit"].tolist() == [0.0, 0.0, 0.0]


def test_blind_matrix_clears_flag() -> None:
    matrix = _welfare_frame().to_numpy(np.float32)

    blind, channel = blind_matrix(matrix)

    assert channel.tolist() == [False, True, False]
    assert (blind[:, FEATURE_NAMES.index("seeker_is_assistance")] == 0).all()
    assert (blind[:, FEATURE_NAMES.index("group_policy_fit")] == 0).all()
    assert matrix[1, FEATURE_NAMES.index("group_policy_fit")] == 1.0


def test_audit_catches_and_rule_prevents_drops(
    recommender: Recommender, context: pd.DataFrame
) -> None:
    recommender.scorer = PenalisingScorer()
    try:
        report = run_audit(recommender, context, SMALL)
    finally:
        recommender.scorer = None

    check = report.no_drop
    assert check.seekers == SMALL.check_seekers
    assert check.pairs > 0
    assert check.unblinded_dropped_pairs > 0
    assert check.unblinded_max_drop == pytest.approx(0.5)
    assert check.dropped_pairs == 0
    assert check.passed


def test_audit_with_trained_model(
    recommender: Recommender, context: pd.DataFrame, trained_scorer: ModelScorer
) -> None:
    recommender.scorer = trained_scorer
    try:
        report = run_audit(recommender, context, SMALL)
    finally:
        recommender.scorer = None

    assert report.ranker == trained_scorer.model_id
    assert report.no_drop.pairs > 0
    assert report.no_drop.dropped_pairs == 0
    assert report.no_drop.max_drop == 0.0


def test_feature_table_path_ignores_flag(
    recommender: Recommender, trained_scorer: ModelScorer
) -> None:
    recommender.scorer = trained_scorer
    try:
        seeker = recommender.seekers.loc[recommender.seekers["group"] == "general"].iloc[0]
        flagged = seeker.copy()
        flagged["group"] = "assistance"

        page = recommender.rank(flagged, 20)
        located = recommender.index.rows(
            recommender.index.reachable(
                float(seeker["home_lon"]),
                float(seeker["home_lat"]),
                float(seeker["max_commute_min"]),
                str(seeker["modes"]),
            )
        )
        on_page = located.set_index("posting_id").loc[page["posting_id"]].reset_index()
        unflagged = recommender.candidate_scores(seeker, on_page)
    finally:
        recommender.scorer = None

    assert recommender._feature_table is not None
    assert len(page) == 20
    assert np.allclose(page["model_score"].to_numpy(), unflagged, rtol=0, atol=1e-9)


def test_baseline_exposure_same_for_every_group(
    recommender: Recommender, context: pd.DataFrame
) -> None:
    report = run_audit(recommender, context, SMALL)
    by_group = report.by_group.set_index("group")

    assert sorted(by_group.index) == sorted(GROUPS)
    assert (by_group["seekers"] == SMALL.seekers).all()
    columns = ["exposure_per_seeker", "small_employer_share", "few_postings_employer_share"]
    assert np.allclose(by_group.loc["assistance", columns], by_group.loc["general", columns])
    assert report.exposure.groupby("group")["seekers"].sum().eq(SMALL.seekers).all()
    assert report.exposure["home_district_share"].between(0, 1).all()


def test_report_json_has_no_nan(recommender: Recommender, context: pd.DataFrame) -> None:
    report: FairnessReport = run_audit(
        recommender, context, AuditOptions(seekers=4, check_seekers=2, page_size=5)
    )

    text = json.dumps(report.to_dict(), allow_nan=False)
    body: dict[str, Any] = json.loads(text)

    assert body["simulated"] is True
    assert body["no_drop"]["passed"] is True
    assert {row["group"] for row in body["by_group"]} == set(GROUPS)
