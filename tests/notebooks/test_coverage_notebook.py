"""Execute the coverage notebook with small parameters and assert the figures it records."""

from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from geo.coverage.circle import build_service_circle
from geo.coverage.grid import WalkGridParameters
from geo.regions import load_regions
from store.sqlite import SqliteStore
from tests.notebooks.test_notebooks import execute_notebook, read_metrics, venv_kernel_specs

__all__ = ["venv_kernel_specs"]

CELL_M = 500.0
# Residential places after dropping Amap duplicates, and the HR-related offices.
EXPECTED_PLACES = 4_307
EXPECTED_STATIONS = 78
# Postings at POI (1,028) or business-area (217) precision in the 2018 data.
EXPECTED_POSTINGS_USED = 1_245


@pytest.mark.slow
def test_coverage_notebook_figures(
    data_dir: Path,
    full_store: SqliteStore,
    tmp_path: Path,
    venv_kernel_specs: KernelSpecManager,
) -> None:
    metrics_path = tmp_path / "coverage_metrics.json"
    parameters = {
        "DATA_DIR": str(data_dir),
        "STORE_PATH": str(full_store.path),
        "CELL_M": CELL_M,
        "CANDIDATES": 5,
        "SEED": 7,
        "METRICS_PATH": str(metrics_path),
    }

    execute_notebook("coverage_accessibility.ipynb", parameters, tmp_path, venv_kernel_specs)
    metrics = read_metrics(metrics_path)
    # The same data and parameters in this process give the same circle.
    circle = build_service_circle(
        data_dir, load_regions(data_dir), grid_params=WalkGridParameters(cell_m=CELL_M)
    )

    assert metrics["places"] == EXPECTED_PLACES
    assert metrics["stations"] == EXPECTED_STATIONS
    assert metrics["district_places"] == EXPECTED_PLACES
    assert metrics["covered"] == int(circle.places["covered"].sum())
    assert metrics["cells"] == len(circle.grid)
    assert metrics["best_gain"] == circle.marginal_gain(*metrics["best_candidate"]).newly_covered
    assert metrics["best_gain"] > 0
    assert metrics["seekers"] == 500
    assert metrics["simulated_seekers"] is True
    assert metrics["postings_used"] == EXPECTED_POSTINGS_USED
    assert set(metrics["group_score_45"]) <= {"general", "graduate", "talent", "assistance"}
    for catchment in ("30", "45"):
        assert metrics["seeker_weighted_score_sum"][catchment] == pytest.approx(
            metrics["postings_reached"][catchment]
        )
    assert metrics["postings_reached"]["45"] >= metrics["postings_reached"]["30"] > 0
