"""Compiled tree ranges: equal to LightGBM, hash-checked, and optional in the registry."""

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import lightgbm
import numpy as np
import numpy.typing as npt
import pytest

from matching.features import build_features
from models.compiled import (
    COMPILED_FOLDER,
    CompiledTrees,
    CompiledTreesError,
    TreeRange,
    cascade_ranges,
    compile_tree_ranges,
)
from models.ranker import RankerParams, TrainedRanker, split_chronologically, train_ranker
from models.registry import MANIFEST_FILE, ModelIntegrityError, ModelRegistry
from models.serving import ModelScorer
from tests.models.synthetic import SyntheticTrainingData

KEY = b"test-model-key-of-thirty-two-bytes!!"
FEATURES = 6
TREES = 24


@pytest.fixture(scope="module")
def booster() -> lightgbm.Booster:
    """A regression model of `TREES` trees that splits on NaN and on zero."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3_000, FEATURES))
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.1] = 0.0
    y = np.nan_to_num(x[:, 0]) * 2 + np.isnan(x[:, 1]) + (x[:, 2] == 0.0) + rng.normal(size=3_000)
    data = lightgbm.Dataset(x, y)
    params = {"objective": "regression", "num_leaves": 15, "verbose": -1, "seed": 3}
    return lightgbm.train(params, data, num_boost_round=TREES)


@pytest.fixture(scope="module")
def rows() -> npt.NDArray[np.float32]:
    """Rows with NaN, zeros, infinities and values beyond every threshold, as float32."""
    rng = np.random.default_rng(4)
    x = rng.normal(scale=3.0, size=(2_000, FEATURES)).astype(np.float32)
    x[rng.random(x.shape) < 0.15] = np.nan
    x[rng.random(x.shape) < 0.15] = 0.0
    x[0, :] = np.inf
    x[1, :] = -np.inf
    return x


@pytest.fixture(scope="module")
def compiled_folder(
    booster: lightgbm.Booster, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[dict[str, object]]]:
    folder = tmp_path_factory.mktemp("compiled")
    entries = compile_tree_ranges(booster, cascade_ranges([5, 12], TREES), folder)
    return folder, entries


def test_cascade_ranges_cover_skipped_stages() -> None:
    ranges = cascade_ranges([15, 60], 200)

    assert ranges == [
        TreeRange(0, 15),
        TreeRange(0, 60),
        TreeRange(0, 200),
        TreeRange(15, 60),
        TreeRange(60, 200),
    ]


def test_cascade_ranges_drop_stages_past_model() -> None:
    assert cascade_ranges([15, 60], 40) == [TreeRange(0, 15), TreeRange(0, 40), TreeRange(15, 40)]
    assert cascade_ranges([15, 60], 10) == [TreeRange(0, 10)]


def test_tree_range_rejects_empty() -> None:
    with pytest.raises(ValueError, match=r"tree range 5\.\.5 is invalid"):
        TreeRange(5, 5)


def test_compiled_sums_equal_lightgbm(
    booster: lightgbm.Booster,
    rows: npt.NDArray[np.float32],
    compiled_folder: tuple[Path, list[dict[str, object]]],
) -> None:
    folder, entries = compiled_folder
    compiled = CompiledTrees.load(folder, entries)

    assert len(compiled.ranges) == 5
    for tree_range in compiled.ranges:
        expected = booster.predict(
            rows,
            start_iteration=tree_range.start,
            num_iteration=tree_range.stop - tree_range.start,
            raw_score=True,
        )
        actual = compiled.predict(rows, tree_range.start, tree_range.stop)
        assert actual is not None
        assert actual.dtype == np.float64
        np.testing.assert_array_equal(actual, expected, err_msg=str(tree_range))


def test_compiled_unknown_range_returns_none(
    rows: npt.NDArray[np.float32], compiled_folder: tuple[Path, list[dict[str, object]]]
) -> None:
    compiled = CompiledTrees.load(*compiled_folder)

    assert compiled.predict(rows, 5, TREES - 1) is None


def test_compiled_changed_library_rejected(
    compiled_folder: tuple[Path, list[dict[str, object]]], tmp_path: Path
) -> None:
    folder, entries = compiled_folder
    name = str(entries[0]["file"])
    changed = bytearray((folder / name).read_bytes())
    changed[-1] ^= 0xFF
    (tmp_path / name).write_bytes(bytes(changed))

    with pytest.raises(CompiledTreesError, match="SHA-256"):
        CompiledTrees.load(tmp_path, entries[:1])


def test_compiled_renamed_range_rejected(
    compiled_folder: tuple[Path, list[dict[str, object]]],
) -> None:
    folder, entries = compiled_folder
    moved = {**entries[0], "stop": 7}

    with pytest.raises(CompiledTreesError, match=r"does not match its range 0\.\.7"):
        CompiledTrees.load(folder, [moved])


@pytest.fixture(scope="module")
def ranker(training_data: SyntheticTrainingData) -> TrainedRanker:
    split = split_chronologically(training_data.frame)
    params = RankerParams(n_estimators=40, early_stopping_rounds=40)
    return train_ranker(split, training_data.feature_names, params, n_jobs=1)


@pytest.fixture(scope="module")
def saved_model(ranker: TrainedRanker, tmp_path_factory: pytest.TempPathFactory) -> Path:
    registry = ModelRegistry(tmp_path_factory.mktemp("models"), KEY)
    return registry.save(ranker, training_data_sha256="abc", metrics={})


def test_registry_saves_compiled_ranges(
    saved_model: Path, ranker: TrainedRanker, training_data: SyntheticTrainingData
) -> None:
    manifest = json.loads((saved_model / MANIFEST_FILE).read_text())
    loaded = ModelRegistry(saved_model.parent, KEY).load(
        saved_model.name, training_data.feature_names
    )
    trees = loaded.booster.num_trees()

    assert [(e["start"], e["stop"]) for e in manifest["compiled"]["libraries"]] == [
        (r.start, r.stop) for r in cascade_ranges([15, 60], trees)
    ]
    assert set(manifest["compiled"]["versions"]) == {"treelite", "tl2cgen"}
    assert loaded.compiled is not None
    assert loaded.compiled.ranges == tuple(cascade_ranges([15, 60], trees))


def test_scorer_compiled_equals_lightgbm(
    saved_model: Path, training_data: SyntheticTrainingData
) -> None:
    loaded = ModelRegistry(saved_model.parent, KEY).load(
        saved_model.name, training_data.feature_names
    )
    features = training_data.frame.loc[:, list(training_data.feature_names)].to_numpy(np.float32)
    compiled_scorer = ModelScorer(loaded, build_features)
    plain = ModelScorer(replace(loaded, compiled=None), build_features)

    assert loaded.compiled is not None
    for tree_range in loaded.compiled.ranges:
        np.testing.assert_array_equal(
            compiled_scorer.predict_array(features, tree_range.stop, start=tree_range.start),
            plain.predict_array(features, tree_range.stop, start=tree_range.start),
        )


def test_registry_changed_library_rejects_model(
    saved_model: Path, training_data: SyntheticTrainingData, tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(saved_model, tmp_path / saved_model.name))
    library = next((copy / COMPILED_FOLDER).iterdir())
    library.write_bytes(library.read_bytes() + b"\0")

    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        ModelRegistry(tmp_path, KEY).load(copy.name, training_data.feature_names)


def test_registry_missing_library_falls_back(
    saved_model: Path,
    training_data: SyntheticTrainingData,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    copy = Path(shutil.copytree(saved_model, tmp_path / saved_model.name))
    next((copy / COMPILED_FOLDER).iterdir()).unlink()

    with caplog.at_level(logging.WARNING, logger="models.registry"):
        loaded = ModelRegistry(tmp_path, KEY).load(copy.name, training_data.feature_names)

    assert loaded.compiled is None
    assert "scoring with LightGBM alone" in caplog.text


def test_registry_without_compiler_saves_plain_model(
    ranker: TrainedRanker,
    training_data: SyntheticTrainingData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    registry = ModelRegistry(tmp_path / "models", KEY)

    with caplog.at_level(logging.WARNING, logger="models.registry"):
        path = registry.save(ranker, training_data_sha256="abc", metrics={})
    loaded = registry.load(path.name, training_data.feature_names)

    assert "compiled" not in json.loads((path / MANIFEST_FILE).read_text())
    assert not (path / COMPILED_FOLDER).exists()
    assert loaded.compiled is None
    assert "gcc not found on PATH" in caplog.text
