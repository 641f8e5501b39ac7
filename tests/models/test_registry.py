"""Model registry: tagged save and load, tamper and feature checks, newest valid model."""

import json
import logging
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from models.ranker import RankerParams, TrainedRanker, split_chronologically, train_ranker
from models.registry import (
    MANIFEST_FILE,
    MODEL_FILE,
    TAG_FILE,
    FeatureMismatchError,
    ModelIntegrityError,
    ModelNotFoundError,
    ModelRegistry,
    development_model_key,
    frame_sha256,
)
from tests.models.synthetic import SyntheticTrainingData

KEY = b"test-model-key-of-thirty-two-bytes!!"
NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def trained(training_data: SyntheticTrainingData) -> TrainedRanker:
    split = split_chronologically(training_data.frame)
    params = RankerParams(n_estimators=30, early_stopping_rounds=10)
    return train_ranker(split, training_data.feature_names, params, n_jobs=1)


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models", KEY)


def _save(registry: ModelRegistry, ranker: TrainedRanker, now: datetime = NOW) -> Path:
    # Compiled tree ranges have their own tests in test_compiled.py.
    return registry.save(
        ranker, training_data_sha256="abc", metrics={"ndcg": 0.5}, now=now, compile_trees=False
    )


def test_save_and_load_round_trip(
    registry: ModelRegistry, trained: TrainedRanker, training_data: SyntheticTrainingData
) -> None:
    path = _save(registry, trained)
    loaded = registry.load(path.name, training_data.feature_names)
    rows = training_data.frame.head(100)

    assert loaded.model_id == path.name
    np.testing.assert_allclose(loaded.predict(rows), trained.predict(rows), rtol=1e-6)


def test_manifest_records_provenance(registry: ModelRegistry, trained: TrainedRanker) -> None:
    manifest = json.loads((_save(registry, trained) / MANIFEST_FILE).read_text())

    assert manifest["feature_names"] == list(trained.feature_names)
    assert manifest["training_data_sha256"] == "abc"
    assert manifest["metrics"] == {"ndcg": 0.5}
    assert manifest["simulated"] is True
    assert manifest["created_at"] == NOW.isoformat()
    assert set(manifest["versions"]) >= {"python", "lightgbm", "numpy", "pandas"}
    assert len(manifest["git_commit"]) in (7, 40) or manifest["git_commit"] == "unknown"
    assert manifest["best_iteration"] == trained.best_iteration


@pytest.mark.parametrize("name", [MODEL_FILE, MANIFEST_FILE])
def test_changed_file_rejected(registry: ModelRegistry, trained: TrainedRanker, name: str) -> None:
    path = _save(registry, trained)
    target = path / name
    target.write_bytes(target.read_bytes().replace(b"0", b"1", 1))

    with pytest.raises(ModelIntegrityError, match=str(path / TAG_FILE)):
        registry.load(path.name, trained.feature_names)


def test_other_key_rejected(registry: ModelRegistry, trained: TrainedRanker) -> None:
    path = _save(registry, trained)
    other = ModelRegistry(registry.root, b"another-key-of-thirty-two-bytes!!!!")

    with pytest.raises(ModelIntegrityError, match="DOORSTEP_MODEL_KEY"):
        other.load(path.name, trained.feature_names)


def test_missing_tag_rejected(registry: ModelRegistry, trained: TrainedRanker) -> None:
    path = _save(registry, trained)
    (path / TAG_FILE).unlink()

    with pytest.raises(ModelIntegrityError, match="is missing"):
        registry.load(path.name, trained.feature_names)


def test_unknown_model_not_found(registry: ModelRegistry) -> None:
    with pytest.raises(ModelNotFoundError, match="'ranker-nope' not found"):
        registry.load("ranker-nope", ["a"])


def test_missing_feature_listed(registry: ModelRegistry, trained: TrainedRanker) -> None:
    path = _save(registry, trained)
    expected = [*trained.feature_names, "new_feature"]

    with pytest.raises(FeatureMismatchError, match=r"missing from the model: \['new_feature'\]"):
        registry.load(path.name, expected)


def test_extra_feature_listed(registry: ModelRegistry, trained: TrainedRanker) -> None:
    path = _save(registry, trained)
    expected = list(trained.feature_names[1:])

    with pytest.raises(FeatureMismatchError) as caught:
        registry.load(path.name, expected)
    assert caught.value.extra == [trained.feature_names[0]]
    assert caught.value.missing == []
    assert "not built by the code" in str(caught.value)


def test_reordered_features_listed(registry: ModelRegistry, trained: TrainedRanker) -> None:
    path = _save(registry, trained)
    names = list(trained.feature_names)
    swapped = [names[1], names[0], *names[2:]]

    with pytest.raises(FeatureMismatchError, match="in another order") as caught:
        registry.load(path.name, swapped)
    assert len(caught.value.reordered) == 2
    assert caught.value.reordered[0].startswith(f"{names[0]} (model position 0, code position 1)")


def test_newest_valid_skips_tampered(
    registry: ModelRegistry, trained: TrainedRanker, caplog: pytest.LogCaptureFixture
) -> None:
    older = _save(registry, trained, NOW)
    newer = _save(registry, trained, NOW + timedelta(days=1))
    (newer / MODEL_FILE).write_text("tree\n")

    with caplog.at_level(logging.WARNING, logger="models.registry"):
        loaded, skipped = registry.newest_valid(trained.feature_names)

    assert loaded is not None
    assert loaded.model_id == older.name
    assert [item.model_id for item in skipped] == [newer.name]
    assert "integrity tag" in skipped[0].reason
    assert newer.name in caplog.text


def test_newest_valid_picks_latest_created(registry: ModelRegistry, trained: TrainedRanker) -> None:
    _save(registry, trained, NOW)
    newest = _save(registry, trained, NOW + timedelta(hours=1))

    loaded, skipped = registry.newest_valid(trained.feature_names)
    assert loaded is not None
    assert loaded.model_id == newest.name
    assert skipped == []


def test_newest_valid_skips_feature_mismatch(
    registry: ModelRegistry, trained: TrainedRanker
) -> None:
    _save(registry, trained)

    loaded, skipped = registry.newest_valid(["only_feature"])
    assert loaded is None
    assert "another feature list" in skipped[0].reason


def test_empty_registry_has_no_model(registry: ModelRegistry) -> None:
    loaded, skipped = registry.newest_valid(["a"])
    assert loaded is None
    assert skipped == []


def test_empty_key_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model key is empty"):
        ModelRegistry(tmp_path, b"")


def test_frame_hash_ignores_index(training_data: SyntheticTrainingData) -> None:
    frame = training_data.frame.head(200)
    shifted = frame.set_axis(frame.index + 1000)
    changed = frame.copy()
    changed.loc[changed.index[0], "label"] = 4 - changed.loc[changed.index[0], "label"]

    assert frame_sha256(frame) == frame_sha256(shifted)
    assert frame_sha256(frame) != frame_sha256(changed)
    assert frame_sha256(frame) != frame_sha256(frame.rename(columns={"label": "grade"}))


def test_development_key_created_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "var" / "model_key"
    with caplog.at_level(logging.WARNING, logger="models.registry"):
        first = development_model_key(path)
        second = development_model_key(path)

    assert first == second
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "DOORSTEP_MODEL_KEY is not set" in caplog.text
