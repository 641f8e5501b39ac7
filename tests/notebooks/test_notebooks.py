# nbformat ships without type annotations.
# mypy: disable-error-code="no-untyped-call"
"""Execute the notebooks with small parameters and assert the metrics they record.

Parameters are injected as papermill does it. A cell assigning the test's values is
inserted right after the cell tagged ``parameters``. The executed copies, with
their outputs, are written to the test's ``tmp_path``.
"""

import json
import pickle
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from models.ranker import RankerParams
from models.training import fit_and_evaluate
from store.sqlite import SqliteStore
from tests.conftest import REPO_ROOT
from tests.models.synthetic import make_training_data

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = (
    "ingest_overview.ipynb",
    "occupation_evaluation.ipynb",
    "ranker_evaluation.ipynb",
    "coverage_accessibility.ipynb",
)
KERNEL_NAME = "python3"
CELL_TIMEOUT_S = 600

# Postings in the store built from the real data folder, after de-duplication.
EXPECTED_POSTINGS = 74_230
# Share of postings located only as "西安" (measured 0.3185 = 23,644 / 74,230).
CITY_LEVEL_SHARE_RANGE = (0.25, 0.40)

OCCUPATION_SAMPLE = 800
OCCUPATION_SEED = 42
# Exact-code accuracy on that sample: 364 of 800. All 5,891 labelled rows give 0.414.
OCCUPATION_ACCURACY_GOLDEN = 0.455
GOLDEN_TOLERANCE = 0.005


@pytest.fixture(scope="session")
def venv_kernel_specs() -> KernelSpecManager:
    """A kernel-spec manager that looks for kernel specs only under ``sys.prefix``.

    The "python3" spec is installed into ``sys.prefix`` when missing, so the kernel
    runs the virtualenv's Python with the project installed, whatever kernels the
    user or the system has registered elsewhere.
    """
    kernels_dir = Path(sys.prefix) / "share" / "jupyter" / "kernels"
    if not (kernels_dir / KERNEL_NAME / "kernel.json").is_file():
        from ipykernel.kernelspec import install

        install(prefix=sys.prefix, kernel_name=KERNEL_NAME)
    return KernelSpecManager(kernel_dirs=[str(kernels_dir)])


def inject_parameters(notebook: nbformat.NotebookNode, parameters: dict[str, Any]) -> None:
    """Insert a cell assigning ``parameters`` after the cell tagged ``parameters``."""
    tagged = [
        position
        for position, cell in enumerate(notebook.cells)
        if "parameters" in cell.get("metadata", {}).get("tags", [])
    ]
    if not tagged:
        raise ValueError(
            "notebook has no cell tagged 'parameters'. Add the tag to the cell that assigns them."
        )

    assignments = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(
        f"# Parameters injected by the test\n{assignments}",
        metadata={"tags": ["injected-parameters"]},
    )
    notebook.cells.insert(tagged[0] + 1, cell)


def execute_notebook(
    name: str,
    parameters: dict[str, Any],
    output_dir: Path,
    spec_manager: KernelSpecManager,
) -> Path:
    """Execute ``notebooks/<name>`` in the notebooks folder and write the executed copy."""
    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    inject_parameters(notebook, parameters)

    kernel_manager = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=spec_manager)
    client = NotebookClient(
        notebook,
        km=kernel_manager,
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    executed = output_dir / name
    try:
        # nbclient stops a kernel whose manager it did not create only when cleanup_kc is set.
        client.execute(cleanup_kc=True)
    finally:
        nbformat.write(notebook, executed)
    return executed


def read_metrics(path: Path) -> dict[str, Any]:
    metrics: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return metrics


@pytest.mark.slow
def test_ingest_overview_metrics(
    data_dir: Path,
    full_store: SqliteStore,
    tmp_path: Path,
    venv_kernel_specs: KernelSpecManager,
) -> None:
    metrics_path = tmp_path / "ingest_metrics.json"
    parameters = {
        "DATA_DIR": str(data_dir),
        "STORE_PATH": str(full_store.path),
        "N_SEEKERS": 500,
        "METRICS_PATH": str(metrics_path),
    }

    execute_notebook("ingest_overview.ipynb", parameters, tmp_path, venv_kernel_specs)
    metrics = read_metrics(metrics_path)

    assert metrics["postings"] == EXPECTED_POSTINGS
    assert sum(metrics["postings_by_precision"].values()) == metrics["postings"]
    assert sum(metrics["anchors_by_precision"].values()) == metrics["anchors"]
    assert metrics["anchors"] == len(full_store.anchors_frame())
    low, high = CITY_LEVEL_SHARE_RANGE
    assert low <= metrics["share_city_level"] <= high
    assert metrics["seekers"] == 500


def test_occupation_evaluation_golden(
    data_dir: Path, tmp_path: Path, venv_kernel_specs: KernelSpecManager
) -> None:
    metrics_path = tmp_path / "occupation_metrics.json"
    parameters = {
        "DATA_DIR": str(data_dir),
        "SAMPLE": OCCUPATION_SAMPLE,
        "SEED": OCCUPATION_SEED,
        "METRICS_PATH": str(metrics_path),
    }

    execute_notebook("occupation_evaluation.ipynb", parameters, tmp_path, venv_kernel_specs)
    metrics = read_metrics(metrics_path)

    assert metrics["n"] == OCCUPATION_SAMPLE
    assert metrics["accuracy"] == pytest.approx(OCCUPATION_ACCURACY_GOLDEN, abs=GOLDEN_TOLERANCE)
    assert metrics["accuracy_major"] >= metrics["accuracy"]
    assert metrics["accuracy_middle"] >= metrics["accuracy"]


RANKER_ROUNDS = 60


def test_ranker_evaluation_metrics(tmp_path: Path, venv_kernel_specs: KernelSpecManager) -> None:
    data = make_training_data(n_queries=400, seed=9)
    frame_path = tmp_path / "training.pickle"
    with frame_path.open("wb") as handle:
        pickle.dump(
            {"frame": data.frame, "feature_names": data.feature_names, "params": data.params},
            handle,
        )
    metrics_path = tmp_path / "ranker_metrics.json"
    parameters = {
        "TRAINING_FRAME_PATH": str(frame_path),
        "ROUNDS": RANKER_ROUNDS,
        "METRICS_PATH": str(metrics_path),
    }

    execute_notebook("ranker_evaluation.ipynb", parameters, tmp_path, venv_kernel_specs)
    metrics = read_metrics(metrics_path)
    # The same data and parameters in this process give the same model and report.
    expected = fit_and_evaluate(data, RankerParams(n_estimators=RANKER_ROUNDS), n_jobs=1)
    overall = expected.report.overall

    assert metrics["simulated"] is True
    assert metrics["n_rows"] == len(data.frame)
    assert metrics["best_iteration"] == expected.ranker.best_iteration
    assert metrics["ndcg_at_10"]["model"] == pytest.approx(overall.metrics["model"].ndcg_at_10)
    assert metrics["ndcg_at_10"]["baseline"] == pytest.approx(
        overall.metrics["baseline"].ndcg_at_10
    )
    assert metrics["ratio"] == pytest.approx(overall.ndcg_ratio)
    assert set(metrics["group_ratio"]) == {"graduate", "talent", "assistance", "general"}
    assert metrics["goal_met"] == expected.report.goal_met
    assert metrics["top_feature"] in data.feature_names


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_committed_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]

    assert code_cells, f"{name} has no code cell"
    assert all(cell.outputs == [] for cell in code_cells), f"{name} was saved with outputs"
    assert all(cell.execution_count is None for cell in code_cells)


def test_inject_parameters_after_tagged_cell() -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import json"),
            nbformat.v4.new_code_cell("SAMPLE = None", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell("print(SAMPLE)"),
        ]
    )

    inject_parameters(notebook, {"SAMPLE": 800, "DATA_DIR": "/data"})

    assert len(notebook.cells) == 4
    assert notebook.cells[2].source.splitlines()[1:] == ["SAMPLE = 800", "DATA_DIR = '/data'"]
    assert notebook.cells[3].source == "print(SAMPLE)"


def test_inject_parameters_without_tag_raises() -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("SAMPLE = None")])

    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        inject_parameters(notebook, {"SAMPLE": 800})
