"""``doorstep train`` and ``doorstep evaluate`` on a synthetic training frame.

The behaviour simulation is replaced by the synthetic frame of ``tests.models``, so
these tests check the commands, the registry and the report, not the simulation.
"""

import json
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api import cli
from models.registry import MANIFEST_FILE
from store.sqlite import SqliteStore
from tests.models.synthetic import FEATURE_NAMES, SyntheticTrainingData, make_training_data

runner = CliRunner()


@pytest.fixture
def synthetic_training(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """Serve the synthetic frame in place of the simulation; record each request."""
    requests: list[dict[str, object]] = []

    def training_data(
        store: object, settings: object, *, n_seekers: int | None, seed: int
    ) -> SyntheticTrainingData:
        requests.append({"n_seekers": n_seekers, "seed": seed})
        return make_training_data(n_queries=400, seed=seed)

    monkeypatch.setattr(cli, "_training_data", training_data)
    features = types.ModuleType("matching.features")
    features.FEATURE_NAMES = FEATURE_NAMES  # type: ignore[attr-defined]
    features.build_features = make_training_data  # type: ignore[attr-defined]  # never called
    monkeypatch.setitem(sys.modules, "matching.features", features)
    return requests


def _env(store: SqliteStore, tmp_path: Path) -> dict[str, str]:
    return {
        "DOORSTEP_STORE_PATH": str(store.path),
        "DOORSTEP_MODEL_DIR": str(tmp_path / "models"),
        "DOORSTEP_MODEL_KEY": "cli-test-model-key-with-32-bytes!",
    }


def _train(store: SqliteStore, tmp_path: Path) -> Path:
    args = ["train", "--seekers", "50", "--seed", "5", "--rounds", "40"]
    result = runner.invoke(cli.app, args, env=_env(store, tmp_path))
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "models").iterdir()
    return folder


def test_train_saves_model_and_prints_table(
    full_store: SqliteStore, tmp_path: Path, synthetic_training: list[dict[str, object]]
) -> None:
    args = ["train", "--seekers", "50", "--seed", "5", "--rounds", "40"]
    result = runner.invoke(cli.app, args, env=_env(full_store, tmp_path))

    assert result.exit_code == 0, result.output
    assert "labels are simulated" in result.output
    assert "best baseline" in result.output
    assert "saved model to" in result.output
    assert synthetic_training == [{"n_seekers": 50, "seed": 5}]
    (folder,) = (tmp_path / "models").iterdir()
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["training_command"] == {"seekers": 50, "seed": 5, "rounds": 40}
    assert manifest["metrics"]["simulated"] is True
    assert manifest["split"]["test"]["queries"] > 0


def test_evaluate_writes_report(
    full_store: SqliteStore, tmp_path: Path, synthetic_training: list[dict[str, object]]
) -> None:
    folder = _train(full_store, tmp_path)
    out_dir = tmp_path / "reports"
    result = runner.invoke(
        cli.app, ["evaluate", "--out-dir", str(out_dir)], env=_env(full_store, tmp_path)
    )

    assert result.exit_code == 0, result.output
    assert "labels are simulated" in result.output
    assert synthetic_training[-1] == {"n_seekers": 50, "seed": 5}
    (report_path,) = out_dir.iterdir()
    report = json.loads(report_path.read_text())
    assert report["model_id"] == folder.name
    assert report["same_training_data"] is True
    assert report["simulated"] is True
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert report["overall"] == manifest["metrics"]["overall"]


def test_evaluate_unknown_model_fails(
    full_store: SqliteStore, tmp_path: Path, synthetic_training: list[dict[str, object]]
) -> None:
    result = runner.invoke(
        cli.app, ["evaluate", "--model", "ranker-missing"], env=_env(full_store, tmp_path)
    )

    assert result.exit_code != 0
    assert "ranker-missing" in str(result.exception)


def test_versions_names_loaded_model(
    full_store: SqliteStore, tmp_path: Path, synthetic_training: list[dict[str, object]]
) -> None:
    folder = _train(full_store, tmp_path)
    result = runner.invoke(cli.app, ["versions"], env=_env(full_store, tmp_path))

    assert result.exit_code == 0, result.output
    assert f"model: lightgbm {folder.name}" in result.output


def test_train_and_evaluate_on_simulated_labels(full_store: SqliteStore, tmp_path: Path) -> None:
    # The real simulation and feature builder, on a few seekers of the test store.
    args = ["train", "--seekers", "60", "--seed", "7", "--rounds", "20"]
    trained = runner.invoke(cli.app, args, env=_env(full_store, tmp_path))
    assert trained.exit_code == 0, trained.output
    assert "simulated" in trained.output.lower()
    (folder,) = (tmp_path / "models").iterdir()
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["simulated"] is True

    out_dir = tmp_path / "reports"
    evaluated = runner.invoke(
        cli.app, ["evaluate", "--out-dir", str(out_dir)], env=_env(full_store, tmp_path)
    )
    assert evaluated.exit_code == 0, evaluated.output
    (report_file,) = out_dir.iterdir()
    report = json.loads(report_file.read_text())
    pool = report["pool"]
    page_queries = report["overall"]["metrics"]["model"]["n_queries"]
    assert pool["overall"]["metrics"]["model"]["n_queries"] == page_queries
    assert pool["pool"] is None
    assert "whole live pool" in evaluated.output

    recommended = runner.invoke(
        cli.app,
        ["recommend", "--seeker", "sim-000001"],
        env={**_env(full_store, tmp_path), "COLUMNS": "200"},  # no wrapped headers
    )
    assert recommended.exit_code == 0, recommended.output
    assert "模型分 model (raw)" in recommended.output
    assert "基础分 baseline 0-1" in recommended.output
