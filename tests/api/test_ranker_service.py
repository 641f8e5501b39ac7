"""The service's ranker: the newest valid model orders recommendations, else the baseline.

The feature builder here is a stand-in module registered as ``matching.features``
that fills the synthetic feature columns from the candidate frame, so these tests
check the wiring, not the features.
"""

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.ranking import load_ranker
from api.settings import DataSettings, ModelSettings, Settings
from matching.recommend import Recommender
from models.ranker import RankerParams, split_chronologically, train_ranker
from models.registry import MODEL_FILE, ModelRegistry
from store.sqlite import SqliteStore
from tests.models.synthetic import FEATURE_NAMES, make_training_data

KEY = "service-test-model-key-32-bytes-long"


def _stand_in_features(seeker_rows: pd.DataFrame, candidates: pd.DataFrame) -> pd.DataFrame:
    """Fill the synthetic feature columns from candidate commute and distance."""
    assert len(seeker_rows) == 1
    features = pd.DataFrame(0.0, index=candidates.index, columns=list(FEATURE_NAMES))
    features["commute_min"] = candidates["estimated_commute_min"].to_numpy()
    features["distance_m"] = candidates["distance_m"].to_numpy()
    return features.astype(np.float32)


@pytest.fixture
def stand_in_features(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("matching.features")
    module.FEATURE_NAMES = FEATURE_NAMES  # type: ignore[attr-defined]
    module.build_features = _stand_in_features  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "matching.features", module)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = make_training_data(n_queries=300, seed=11)
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
def model_client(
    full_store: SqliteStore, model_folder: Path, stand_in_features: None
) -> Iterator[TestClient]:
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


def test_recommendations_follow_model_score(model_client: TestClient) -> None:
    app = model_client.app
    recommender: Recommender = app.state.recommender  # type: ignore[attr-defined]
    _, ranked = recommender.recommend("sim-000001", 20)

    scores = ranked["model_score"].to_numpy()
    assert len(ranked) == 20
    assert np.all(np.diff(scores) <= 0)
    response = model_client.get("/v1/seekers/sim-000001/recommendations", params={"limit": 5})
    assert response.status_code == 200
    ids = [item["posting_id"] for item in response.json()["items"]]
    assert ids == list(ranked["posting_id"].head(5))


def test_tampered_model_keeps_baseline(
    full_store: SqliteStore, model_folder: Path, tmp_path: Path, stand_in_features: None
) -> None:
    copy = tmp_path / "models" / model_folder.name
    copy.mkdir(parents=True)
    for source in model_folder.iterdir():
        (copy / source.name).write_bytes(source.read_bytes())
    (copy / MODEL_FILE).write_text("tree\n")

    status, scorer = load_ranker(_settings(full_store, copy.parent))

    assert scorer is None
    assert status.kind == "baseline"
    assert "1 skipped" in status.reason


def test_missing_registry_keeps_baseline(full_store: SqliteStore, tmp_path: Path) -> None:
    status, scorer = load_ranker(_settings(full_store, tmp_path / "absent"))

    assert scorer is None
    assert "no model registry" in status.reason
