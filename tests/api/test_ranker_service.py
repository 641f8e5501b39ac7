"""The service's ranker: the newest valid model orders recommendations, else the baseline.

The model is trained on simulated labels for a few seekers of the test store with the
real feature builder, so these tests also check that the request path computes the
features as training does.
"""

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.ranking import load_ranker
from api.settings import DataSettings, ModelSettings, Settings
from geo.transit import TransitNetwork
from matching.features import FEATURE_NAMES, build_features
from matching.model_reasons import REASON_FEATURES
from matching.recommend import Recommender
from matching.scoring import score_jobs
from models.dataset import build_training_data
from models.ranker import RankerParams, split_chronologically, train_ranker
from models.registry import MODEL_FILE, ModelRegistry
from models.serving import ModelScorer
from store.sqlite import SqliteStore
from tests.api.staff_login import city_officer

KEY = "service-test-model-key-32-bytes-long"


@pytest.fixture(scope="module")
def model_folder(
    full_store: SqliteStore,
    transit_network: TransitNetwork,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    data = build_training_data(
        full_store, n_seekers=80, seed=11, progress=False, network=transit_network
    )
    split = split_chronologically(data.frame)
    ranker = train_ranker(split, FEATURE_NAMES, RankerParams(n_estimators=20), n_jobs=1)
    registry = ModelRegistry(tmp_path_factory.mktemp("registry"), KEY.encode())
    return registry.save(ranker, training_data_sha256="synthetic", metrics={})


def _settings(store: SqliteStore, model_dir: Path) -> Settings:
    return Settings(
        data=DataSettings(store_path=store.path),
        model=ModelSettings(model_dir=model_dir, model_key=SecretStr(KEY)),
    )


@pytest.fixture
def model_client(full_store: SqliteStore, model_folder: Path) -> Iterator[TestClient]:
    app = create_app(_settings(full_store, model_folder.parent), store=full_store)
    with TestClient(app) as client:
        yield client


def test_health_without_model_reports_baseline(real_client: TestClient) -> None:
    ranker = real_client.get("/health").json()["ranker"]

    assert ranker["kind"] == "baseline"
    assert ranker["model_id"] is None
    assert ranker["reason"]


def test_health_reports_loaded_model(model_client: TestClient, model_folder: Path) -> None:
    ranker = model_client.get("/health").json()["ranker"]

    assert ranker["kind"] == "lightgbm"
    assert ranker["model_id"] == model_folder.name


def test_push_fanout_uses_loaded_model(model_client: TestClient, model_folder: Path) -> None:
    push_ranker = model_client.get("/health").json()["push_ranker"]
    service = model_client.app.state.push_service  # type: ignore[attr-defined]

    assert push_ranker["kind"] == "lightgbm"
    assert push_ranker["model_id"] == model_folder.name
    assert service.ranker_id == model_folder.name
    postings = model_client.app.state.recommender.postings  # type: ignore[attr-defined]
    located = postings[postings["precision"].isin(["exact", "poi", "building"])]
    batch = service.job_batch("t", located.head(3).to_dict("records"), datetime.now(UTC))
    assert batch.ranker == model_folder.name
    assert "calibrated to pass as many pairs" in service.threshold_note
    threshold = service.ranker.threshold
    assert threshold is not None
    assert all(item.score >= threshold for item in batch.candidates)


def test_recommendations_follow_model_score(model_client: TestClient) -> None:
    app = model_client.app
    recommender: Recommender = app.state.recommender  # type: ignore[attr-defined]
    _, ranked = recommender.recommend("sim-000001", 20)

    scores = ranked["model_score"].to_numpy()
    assert len(ranked) == 20
    assert np.all(np.diff(scores) <= 0)
    response = model_client.get(
        "/v1/seekers/sim-000001/recommendations",
        params={"limit": 5},
        headers=city_officer(model_client),
    )
    assert response.status_code == 200
    ids = [item["posting_id"] for item in response.json()["items"]]
    assert ids == list(ranked["posting_id"].head(5))


def test_request_features_match_training(model_client: TestClient) -> None:
    recommender: Recommender = model_client.app.state.recommender  # type: ignore[attr-defined]
    scorer = recommender.scorer
    assert isinstance(scorer, ModelScorer)
    assert scorer.context is not None
    seeker = recommender.seeker("sim-000001")
    candidates = recommender.index.for_commute(
        seeker["home_lon"], seeker["home_lat"], seeker["max_commute_min"], seeker["modes"]
    )
    located = candidates.loc[candidates["precision"] != "city"].head(200).reset_index(drop=True)
    context = scorer.context.posting_context.reindex(located["posting_id"]).reset_index(drop=True)

    features = build_features(
        pd.DataFrame([seeker.to_dict()]),
        pd.concat([located, context], axis=1),
        as_of=scorer.context.as_of,
    )

    # The context features come from the service's table, not NaN as without it.
    assert features["competition_seekers"].notna().all()
    assert features["employer_active_postings"].notna().all()
    # Posting age is measured near the end of the data, within the ages training saw.
    assert scorer.context.as_of.year == 2018
    assert features["posting_age_days"].median() < 365
    assert np.allclose(scorer.score(seeker, located), scorer.model.predict(features))


def test_service_ranks_from_feature_table(model_client: TestClient) -> None:
    recommender: Recommender = model_client.app.state.recommender  # type: ignore[attr-defined]
    scorer = recommender.scorer
    assert isinstance(scorer, ModelScorer)
    # The table is built at startup, so the first request does not pay for it.
    assert recommender._feature_table is not None
    assert recommender._feature_table[0] is recommender.index
    seeker = recommender.seeker("sim-000001")
    candidates = recommender.index.for_commute(
        seeker["home_lon"],
        seeker["home_lat"],
        seeker["max_commute_min"],
        seeker["modes"],
        min_results=20,
    )
    scored = score_jobs(seeker, candidates).reset_index(drop=True)
    from_frames = recommender._rank_by_model(scorer, seeker, scored, 20, "zh")

    _, ranked = recommender.recommend("sim-000001", 20)

    assert list(ranked["posting_id"]) == list(from_frames["posting_id"])
    assert np.allclose(ranked["model_score"], from_frames["model_score"], rtol=0, atol=1e-9)
    assert list(ranked["reasons"]) == list(from_frames["reasons"])


def test_tampered_model_keeps_baseline(
    full_store: SqliteStore, model_folder: Path, tmp_path: Path
) -> None:
    # The model folder has a compiled/ sub-folder, so the whole tree is copied.
    copy = Path(shutil.copytree(model_folder, tmp_path / "models" / model_folder.name))
    (copy / MODEL_FILE).write_text("tree\n")

    status, scorer = load_ranker(_settings(full_store, copy.parent))

    assert scorer is None
    assert status.kind == "baseline"
    assert "1 skipped" in status.reason


def test_missing_registry_keeps_baseline(full_store: SqliteStore, tmp_path: Path) -> None:
    status, scorer = load_ranker(_settings(full_store, tmp_path / "absent"))

    assert scorer is None
    assert "no model registry" in status.reason


def _group_sums(scorer: ModelScorer, seeker: pd.Series, ranked: pd.DataFrame) -> pd.DataFrame:
    """Sum LightGBM's own contributions per reason group, computed apart from the service."""
    features = scorer.features(seeker, ranked)
    values = scorer.model.booster.predict(
        features.loc[:, list(FEATURE_NAMES)].astype(np.float32), pred_contrib=True
    )
    frame = pd.DataFrame(np.asarray(values)[:, :-1], columns=list(FEATURE_NAMES))
    return pd.DataFrame(
        {key: frame.loc[:, list(names)].sum(axis=1) for key, names in REASON_FEATURES.items()}
    )


def test_model_reasons_are_top_positive_groups(model_client: TestClient) -> None:
    recommender: Recommender = model_client.app.state.recommender  # type: ignore[attr-defined]
    scorer = recommender.scorer
    assert isinstance(scorer, ModelScorer)
    stated = 0
    for seeker_id in ("sim-000001", "sim-000002", "sim-000003", "sim-000004"):
        seeker, ranked = recommender.recommend(seeker_id, 20)
        sums = _group_sums(scorer, seeker, ranked)

        assert (ranked["reason_source"] == "model").all()
        for position, keys in enumerate(ranked["reason_keys"]):
            assert len(keys) <= 3
            row_sums = sums.iloc[position]
            # Every stated group raised the score, and they come largest first.
            assert all(row_sums[key] > 0 for key in keys), (seeker_id, position, keys)
            assert list(keys) == sorted(keys, key=lambda key: -row_sums[key])
            # Skipped groups are those without a true text, never larger positive ones.
            positive = [key for key in row_sums.sort_values(ascending=False).index]
            ordered = [key for key in positive if key in keys]
            assert ordered == list(keys)
            stated += len(keys)
    assert stated > 0


def test_model_reasons_in_english(model_client: TestClient) -> None:
    path = "/v1/seekers/sim-000002/recommendations"

    headers = city_officer(model_client)
    zh = model_client.get(path, params={"limit": 5}, headers=headers).json()["items"]
    en = model_client.get(path, params={"limit": 5, "lang": "en"}, headers=headers).json()["items"]

    assert [item["reason_keys"] for item in zh] == [item["reason_keys"] for item in en]
    assert any(item["reasons"] for item in en)
    for item in en:
        assert item["reason_source"] == "model"
        assert all(reason.isascii() or "（" not in reason for reason in item["reasons"])
    for zh_item, en_item in zip(zh, en, strict=True):
        assert len(zh_item["reasons"]) == len(en_item["reasons"])
        if zh_item["reasons"]:
            assert zh_item["reasons"] != en_item["reasons"]


def test_baseline_reasons_without_model(real_client: TestClient) -> None:
    body = real_client.get(
        "/v1/seekers/sim-000001/recommendations",
        params={"limit": 5},
        headers=city_officer(real_client),
    ).json()

    for item in body["items"]:
        assert item["reason_source"] == "baseline"
        assert item["reason_keys"] is None
        assert item["reasons"]
